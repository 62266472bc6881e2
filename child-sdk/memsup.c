/* memsup.c: the child SDK, the worker's end of the channel to memsup.
 * It owns the handshake, stats reports (allocator figures and gauges), the
 * answers to save and purge requests, and the mapping of a restored state.
 * Framing and CRC-32C live in wire.c; memsup's end is supervisor/channel.c.
 * The SDK never prints, exits or raises: the worker is the user's program.
 */
#include "memsup.h"
#include "memsup_wire.h"

#include <cjson/cJSON.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef MEMSUP_VERSION
#define MEMSUP_VERSION "0.1.0"
#endif
#define GAUGES_MAX 64
#define GAUGE_NAME_MAX 64
#define STATE_BUF (1 << 20)
#define WELCOME_TIMEOUT_MS 2000
#define DEFAULT_INTERVAL_MS 50
#define SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

typedef int (*mallctl_fn)(const char*, void*, size_t*, void*, size_t);

struct memsup_state {
  int fd;
  uint8_t* buf; /* STATE_BUF bytes; small writes gather here */
  size_t used;
  uint32_t crc;
  uint64_t bytes;
  int err; /* first write error; later writes return it */
};

/* One channel per process, so the state is global.  Lock order: proc_mu,
 * then mu.  proc_mu serialises frame handling and saves (the input buffer
 * and the save callback); mu guards everything else and is held only
 * briefly, so a worker thread setting a gauge never waits for a save. */
static struct {
  pthread_mutex_t mu, proc_mu;
  int fd;   /* -1 when not connected */
  int gone; /* memsup closed the channel: calls return -EPIPE */
  int interval_ms;
  uint64_t limit, gen;
  char metric[16];
  memsup_save_fn save_fn;
  void* save_arg;
  int allocator_known;
  mallctl_fn mallctl; /* NULL: glibc malloc */
  memsup_heap_t heap;
  struct {
    char name[GAUGE_NAME_MAX];
    double value;
  } gauges[GAUGES_MAX];
  size_t ngauges;
  uint64_t last_report_ms;
  /* The state from the welcome, until memsup_ready(). */
  int has_state, restore_called, restore_err, state_fd;
  uint64_t state_bytes, restored_unix_us;
  uint32_t state_crc;
  void* map;
  int thread_started;
  pthread_t thread;
  size_t nin;
  uint8_t in[MEMSUP_FRAME_HDR + MEMSUP_FRAME_MAX];
  /* cJSON may print a few bytes past what it needs, hence the slack. */
  char out[MEMSUP_FRAME_HDR + MEMSUP_FRAME_MAX + 16];
} g = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .proc_mu = PTHREAD_MUTEX_INITIALIZER,
       .fd = -1,
       .state_fd = -1,
       .interval_ms = DEFAULT_INTERVAL_MS};

/* Set while this thread runs the save callback, whose calls back into
 * memsup_process() or memsup_checkpoint() would deadlock on proc_mu. */
static _Thread_local int in_save;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t unix_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Stops using the channel: memsup has gone or speaks another protocol.
 * The restored state, if any, stays usable.  Caller holds mu. */
static void disable(int gone) {
  if (g.fd >= 0) close(g.fd);
  g.fd = -1;
  g.gone |= gone;
}

/* What a call returns when there is no channel: nothing to do when the
 * worker runs without memsup, -EPIPE once memsup has gone.  Caller holds
 * mu. */
static int idle_err(void) { return g.gone ? -EPIPE : 0; }

/* Caller holds mu. */
static void read_heap(memsup_heap_t* h) {
  if (!g.allocator_known) {
    /* A worker linked with -ljemalloc (unprefixed on Debian) exports
     * mallctl; looking it up at run time keeps jemalloc out of the SDK. */
#ifndef MEMSUP_NO_JEMALLOC
    g.mallctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mallctl");
#endif
    g.heap.allocator = g.mallctl ? "jemalloc" : "glibc";
    g.allocator_known = 1;
  }
  h->allocator = g.heap.allocator;
  if (g.mallctl) {
    static const char* const names[] = {"stats.allocated", "stats.active",
                                        "stats.resident", "stats.retained",
                                        "stats.mapped"};
    uint64_t* out[] = {&h->allocated, &h->active, &h->resident,
                       &h->retained, &h->mapped};
    uint64_t epoch = 1;
    /* Statistics are cached until epoch is written.  A jemalloc built
     * without stats answers ENOENT: report zeros rather than fail. */
    g.mallctl("epoch", NULL, NULL, &epoch, sizeof(epoch));
    for (size_t i = 0; i < 5; i++) {
      size_t v = 0, sz = sizeof(v);
      *out[i] = g.mallctl(names[i], &v, &sz, NULL, 0) == 0 ? v : 0;
    }
    return;
  }
  struct mallinfo2 mi = mallinfo2();
  h->allocated = mi.uordblks + mi.hblkhd;
  h->active = h->allocated;
  h->resident = mi.arena + mi.hblkhd;
  h->retained = mi.fordblks;
  h->mapped = mi.hblkhd + mi.arena;
}

/* Writes json as one frame, with pass_fd attached when >= 0.  With
 * nonblock, a full socket drops the frame (-EAGAIN) rather than block the
 * worker; a frame once started is always finished, or the stream would
 * lose its framing.  Returns 0, -EAGAIN, -EMSGSIZE or -EPIPE (memsup gone:
 * the channel is then disabled).  Caller holds mu. */
static int send_frame(const cJSON* json, int pass_fd, int nonblock) {
  size_t len, sent = 0;
  int err;

  if (g.fd < 0) return idle_err();
  if (!cJSON_PrintPreallocated((cJSON*)json, g.out + MEMSUP_FRAME_HDR,
                               sizeof(g.out) - MEMSUP_FRAME_HDR, 0))
    return -EMSGSIZE;
  len = strlen(g.out + MEMSUP_FRAME_HDR);
  err = memsup_wire_header((uint8_t*)g.out, len);
  if (err) return err;
  len += MEMSUP_FRAME_HDR;

  while (sent < len) {
    /* MSG_DONTWAIT whatever the fd's flags, so waiting is our choice. */
    ssize_t n = memsup_wire_send(g.fd, g.out + sent, len - sent,
                                 sent == 0 ? pass_fd : -1, MSG_DONTWAIT);
    if (n >= 0) {
      sent += (size_t)n;
      continue;
    }
    if (n == -EAGAIN || n == -EWOULDBLOCK) {
      if (nonblock && sent == 0) return -EAGAIN;
      struct pollfd p = {.fd = g.fd, .events = POLLOUT};
      if (poll(&p, 1, -1) < 0 && errno != EINTR) return -errno;
      continue;
    }
    err = (int)n;
    if (err == -EPIPE || err == -ECONNRESET || err == -ENOTCONN) {
      disable(1);
      return -EPIPE;
    }
    return err;
  }
  return 0;
}

/* Builds and sends a stats report.  Caller holds mu. */
static int report_locked(void) {
  cJSON* msg = cJSON_CreateObject();
  cJSON* heap = cJSON_AddObjectToObject(msg, "heap");
  cJSON* gauges = g.ngauges ? cJSON_AddObjectToObject(msg, "gauges") : NULL;
  int err = -ENOMEM;

  g.last_report_ms = now_ms();
  read_heap(&g.heap);
  if (!cJSON_AddStringToObject(msg, "t", MEMSUP_MSG_STATS) || heap == NULL ||
      (g.ngauges && gauges == NULL))
    goto end;
  cJSON_AddNumberToObject(heap, "allocated", (double)g.heap.allocated);
  cJSON_AddNumberToObject(heap, "active", (double)g.heap.active);
  cJSON_AddNumberToObject(heap, "resident", (double)g.heap.resident);
  cJSON_AddNumberToObject(heap, "retained", (double)g.heap.retained);
  cJSON_AddNumberToObject(heap, "mapped", (double)g.heap.mapped);
  for (size_t i = 0; i < g.ngauges; i++)
    cJSON_AddNumberToObject(gauges, g.gauges[i].name, g.gauges[i].value);
  err = send_frame(msg, -1, 1);
end:
  cJSON_Delete(msg);
  return err;
}

/* Reads what the socket holds into g.in.  A descriptor that arrives is
 * stored in *fd_out when that is given and free, and closed otherwise.
 * Returns the bytes read, 0 when nothing is waiting, or -EPIPE when memsup
 * has gone.  Caller holds proc_mu and mu. */
static int recv_some(int* fd_out) {
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(4 * sizeof(int))];
  } cm;
  struct iovec iov = {g.in + g.nin, sizeof(g.in) - g.nin};
  struct msghdr mh = {.msg_iov = &iov,
                      .msg_iovlen = 1,
                      .msg_control = cm.buf,
                      .msg_controllen = sizeof(cm.buf)};
  ssize_t n;

  if (g.fd < 0) return -EPIPE;
  do
    n = recvmsg(g.fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
  if (n < 0 && errno != ECONNRESET) return -errno;
  if (n <= 0) {
    disable(1);
    return -EPIPE;
  }
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < nfd; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (fd_out && *fd_out < 0)
        *fd_out = fd;
      else
        close(fd);
    }
  }
  g.nin += (size_t)n;
  return (int)n;
}

static void drop_input(size_t n) {
  memmove(g.in, g.in + n, g.nin - n);
  g.nin -= n;
}

/* Parses the next whole JSON frame in g.in and removes it, skipping
 * garbage, oversized headers and frames of another version or kind.
 * Returns NULL when more bytes are needed (or the payload is not JSON: the
 * caller ignores that frame).  Caller holds proc_mu. */
static cJSON* next_frame(int* more) {
  for (;;) {
    uint32_t len = 0;
    uint8_t version;
    uint8_t* m;
    *more = 1;
    switch (memsup_wire_peek(g.in, g.nin, &len, &version)) {
      case MEMSUP_WIRE_NEED_MORE:
        *more = 0;
        return NULL;
      case MEMSUP_WIRE_FRAME: {
        cJSON* j = cJSON_ParseWithLength((char*)g.in + MEMSUP_FRAME_HDR, len);
        drop_input(MEMSUP_FRAME_HDR + len);
        return j;
      }
      case MEMSUP_WIRE_BAD_MAGIC:
        m = memchr(g.in + 1, 'm', g.nin - 1);
        drop_input(m ? (size_t)(m - g.in) : g.nin);
        break;
      case MEMSUP_WIRE_TOO_BIG:
        drop_input(MEMSUP_FRAME_HDR);
        break;
      case MEMSUP_WIRE_BAD_VERSION:
      case MEMSUP_WIRE_UNKNOWN_KIND:
        if (g.nin < MEMSUP_FRAME_HDR + len) {
          *more = 0;
          return NULL;
        }
        drop_input(MEMSUP_FRAME_HDR + len);
        break;
    }
  }
}

static const char* msg_type(const cJSON* j) {
  const cJSON* t = cJSON_GetObjectItemCaseSensitive(j, "t");
  return cJSON_IsString(t) ? t->valuestring : "";
}

static double num_or(const cJSON* j, const char* name, double dflt) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(j, name);
  return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* A non-negative integer member, or 0 when absent, negative or too big
 * (converting those from double would be undefined). */
static uint64_t u64_of(const cJSON* j, const char* name) {
  double v = num_or(j, name, -1);
  return v >= 0 && v < 18446744073709551616.0 ? (uint64_t)v : 0;
}

/* Takes the settings and the state announcement from a welcome.  Caller
 * holds mu; g.state_fd holds any descriptor that came before it. */
static int take_welcome(const cJSON* j) {
  const cJSON* metric = cJSON_GetObjectItemCaseSensitive(j, "metric");
  const cJSON* st = cJSON_GetObjectItemCaseSensitive(j, "state");
  double iv = num_or(j, "interval_ms", DEFAULT_INTERVAL_MS);

  if (num_or(j, "v", 0) != MEMSUP_WIRE_VERSION) return -EPROTO;
  g.interval_ms = iv >= 1 && iv <= 3600000 ? (int)iv : DEFAULT_INTERVAL_MS;
  g.limit = u64_of(j, "limit");
  g.gen = u64_of(j, "gen");
  if (cJSON_IsString(metric))
    snprintf(g.metric, sizeof(g.metric), "%s", metric->valuestring);
  if (cJSON_IsObject(st)) {
    /* A state announced without its memfd is lost: restore says corrupt. */
    g.has_state = 1;
    g.state_bytes = u64_of(st, "bytes");
    g.state_crc = (uint32_t)u64_of(st, "crc32c");
  } else if (g.state_fd >= 0) {
    close(g.state_fd);
    g.state_fd = -1;
  }
  return 0;
}

/* Reads frames until the welcome, for at most WELCOME_TIMEOUT_MS.  Frames
 * after it stay buffered for memsup_process().  Caller holds both locks. */
static int wait_welcome(void) {
  uint64_t deadline = now_ms() + WELCOME_TIMEOUT_MS;
  for (;;) {
    int more = 1, err;
    while (more) {
      cJSON* j = next_frame(&more);
      err = strcmp(msg_type(j), MEMSUP_MSG_WELCOME) == 0 ? take_welcome(j) : 1;
      cJSON_Delete(j);
      if (err <= 0) return err;
    }
    uint64_t now = now_ms();
    if (now >= deadline) return -ETIMEDOUT;
    struct pollfd p = {.fd = g.fd, .events = POLLIN};
    if (poll(&p, 1, (int)(deadline - now)) < 0 && errno != EINTR)
      return -errno;
    err = recv_some(&g.state_fd);
    if (err < 0) return err;
  }
}

int memsup_init(void) {
  const char* env = getenv(MEMSUP_FD_ENV);
  cJSON* hello = NULL;
  struct stat sb;
  char* end;
  long fd;
  int err = 0;

  pthread_mutex_lock(&g.proc_mu);
  pthread_mutex_lock(&g.mu);
  if (g.fd >= 0 || env == NULL) goto end;
  errno = 0;
  fd = strtol(env, &end, 10);
  if (errno || end == env || *end || fd < 0 || fd > INT_MAX) {
    err = -EINVAL;
    goto end;
  }
  /* The worker's own children must not inherit the channel: neither the
   * descriptor nor the variable naming it (fd 3 may be another file
   * there). */
  unsetenv(MEMSUP_FD_ENV);
  /* A stale variable may name some other file of the worker's: leave any
   * descriptor that is not a socket alone. */
  err = fstat((int)fd, &sb) < 0 ? -errno : S_ISSOCK(sb.st_mode) ? 0 : -ENOTSOCK;
  if (err == 0 && fcntl((int)fd, F_SETFD, FD_CLOEXEC) < 0) err = -errno;
  if (err) goto end;
  g.fd = (int)fd;
  read_heap(&g.heap);
  hello = cJSON_CreateObject();
  if (!cJSON_AddStringToObject(hello, "t", MEMSUP_MSG_HELLO) ||
      !cJSON_AddNumberToObject(hello, "v", MEMSUP_WIRE_VERSION) ||
      !cJSON_AddNumberToObject(hello, "pid", getpid()) ||
      !cJSON_AddStringToObject(hello, "allocator", g.heap.allocator) ||
      !cJSON_AddStringToObject(hello, "sdk", MEMSUP_VERSION)) {
    err = -ENOMEM;
    goto fail;
  }
  err = send_frame(hello, -1, 0);
  if (err == 0) err = wait_welcome();
  if (err == 0) goto end;
fail:
  disable(0);
  if (g.state_fd >= 0) close(g.state_fd);
  g.state_fd = -1;
  g.has_state = 0;
end:
  pthread_mutex_unlock(&g.mu);
  pthread_mutex_unlock(&g.proc_mu);
  cJSON_Delete(hello);
  return err;
}

int memsup_active(void) {
  pthread_mutex_lock(&g.mu);
  int active = g.fd >= 0;
  pthread_mutex_unlock(&g.mu);
  return active;
}

int memsup_fd(void) {
  pthread_mutex_lock(&g.mu);
  int fd = g.fd;
  pthread_mutex_unlock(&g.mu);
  return fd;
}

int memsup_interval_ms(void) {
  pthread_mutex_lock(&g.mu);
  int ms = g.interval_ms;
  pthread_mutex_unlock(&g.mu);
  return ms;
}

void memsup_on_save(memsup_save_fn fn, void* arg) {
  pthread_mutex_lock(&g.mu);
  g.save_fn = fn;
  g.save_arg = arg;
  pthread_mutex_unlock(&g.mu);
}

static int write_all(int fd, const uint8_t* p, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static int flush(memsup_state_t* st) {
  int err = write_all(st->fd, st->buf, st->used);
  st->used = 0;
  return err;
}

int memsup_state_write(memsup_state_t* st, const void* buf, size_t len) {
  const uint8_t* p = buf;
  if (st == NULL || (p == NULL && len > 0)) return -EINVAL;
  if (st->err) return st->err;
  st->crc = memsup_crc32c(st->crc, p, len);
  st->bytes += len;
  /* Big chunks go straight to the memfd: copying them through the buffer
   * would halve the throughput of a large handoff. */
  if (len >= STATE_BUF) {
    st->err = flush(st);
    if (st->err == 0) st->err = write_all(st->fd, p, len);
    return st->err;
  }
  while (len > 0) {
    size_t n = STATE_BUF - st->used < len ? STATE_BUF - st->used : len;
    memcpy(st->buf + st->used, p, n);
    st->used += n;
    p += n;
    len -= n;
    if (st->used == STATE_BUF && (st->err = flush(st)) != 0) break;
  }
  return st->err;
}

/* Runs the save callback into a fresh sealed memfd and sends it as a
 * "state" message; on failure sends "save_failed" when reply_failure is
 * set.  Returns 0 or the error of the save or of the send.  Caller holds
 * proc_mu (not mu: the callback may take its time and set gauges). */
static int save(uint64_t seq, const char* kind, int reply_failure) {
  memsup_state_t st = {.fd = -1};
  memsup_save_fn fn;
  void* arg;
  cJSON* msg = cJSON_CreateObject();
  char ebuf[128];
  const char* why = "no save callback registered";
  int err = -ENOSYS, sent;

  pthread_mutex_lock(&g.mu);
  fn = g.save_fn;
  arg = g.save_arg;
  pthread_mutex_unlock(&g.mu);
  if (fn == NULL) goto send;
  st.fd = memfd_create("memsup-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (st.fd < 0) {
    err = -errno;
    goto fail;
  }
  st.buf = malloc(STATE_BUF);
  if (st.buf == NULL) {
    err = -ENOMEM;
    goto fail;
  }
  in_save = 1;
  err = fn(&st, arg);
  in_save = 0;
  if (err > 0) err = 0;
  if (err == 0) err = st.err;
  if (err == 0) err = flush(&st);
  /* Sealed, the bytes cannot change under memsup or the next worker. */
  if (err == 0 && fcntl(st.fd, F_ADD_SEALS, SEALS) < 0) err = -errno;
fail:
  if (err) why = strerror_r(-err, ebuf, sizeof(ebuf));
send:
  cJSON_AddStringToObject(msg, "t",
                          err ? MEMSUP_MSG_SAVE_FAILED : MEMSUP_MSG_STATE);
  cJSON_AddNumberToObject(msg, "seq", (double)seq);
  if (err) {
    cJSON_AddStringToObject(msg, "error", why);
  } else {
    cJSON_AddStringToObject(msg, "kind", kind);
    cJSON_AddNumberToObject(msg, "bytes", (double)st.bytes);
    cJSON_AddNumberToObject(msg, "crc32c", st.crc);
  }
  sent = 0;
  if (err == 0 || reply_failure) {
    pthread_mutex_lock(&g.mu);
    sent = send_frame(msg, err ? -1 : st.fd, 0);
    pthread_mutex_unlock(&g.mu);
  }
  cJSON_Delete(msg);
  free(st.buf);
  if (st.fd >= 0) close(st.fd);
  return err ? err : sent;
}

static int purge(uint64_t seq) {
  memsup_heap_t before, after;
  cJSON* msg = cJSON_CreateObject();
  int err;

  pthread_mutex_lock(&g.mu);
  read_heap(&before);
  if (g.mallctl)
    g.mallctl("arena.4096.purge", NULL, NULL, NULL, 0); /* all arenas */
  else
    malloc_trim(0);
  read_heap(&after);
  cJSON_AddStringToObject(msg, "t", MEMSUP_MSG_PURGED);
  cJSON_AddNumberToObject(msg, "seq", (double)seq);
  cJSON_AddNumberToObject(msg, "resident_before", (double)before.resident);
  cJSON_AddNumberToObject(msg, "resident_after", (double)after.resident);
  err = send_frame(msg, -1, 0);
  /* memsup judges the purge by the next figures: send them now. */
  if (err == 0 && report_locked() == -EPIPE) err = -EPIPE;
  pthread_mutex_unlock(&g.mu);
  cJSON_Delete(msg);
  return err;
}

/* Handles one message from memsup.  Unknown types are ignored so that a
 * newer memsup can talk to this SDK.  Returns -EPIPE when memsup has gone;
 * a failed save is memsup's business (it got save_failed), not ours. */
static int handle(const cJSON* j) {
  const char* t = msg_type(j);
  int err = 0;
  if (strcmp(t, MEMSUP_MSG_SAVE) == 0)
    err = save(u64_of(j, "seq"), "save", 1);
  else if (strcmp(t, MEMSUP_MSG_PURGE) == 0)
    err = purge(u64_of(j, "seq"));
  return err == -EPIPE ? err : 0;
}

/* One pass of the SDK's work, called when memsup_fd() is readable and at
 * least every interval_ms: read whatever memsup sent (buffering partial
 * frames), answer save and purge requests, then send a stats report if
 * interval_ms has passed since the last one.  It never waits for input. */
int memsup_process(void) {
  int err = 0, more, n = 1;
  if (in_save) return -EDEADLK;
  pthread_mutex_lock(&g.proc_mu);
  /* Bounded, so a flood from memsup cannot keep the caller here. */
  for (int round = 0; round < 64 && n > 0 && err == 0; round++) {
    pthread_mutex_lock(&g.mu);
    n = g.fd < 0 ? idle_err() : recv_some(NULL);
    pthread_mutex_unlock(&g.mu);
    do {
      cJSON* j = next_frame(&more);
      if (j) err = handle(j);
      cJSON_Delete(j);
    } while (more && err == 0);
  }
  if (err == 0 && n < 0) err = n;
  pthread_mutex_lock(&g.mu);
  if (err == 0 && g.fd >= 0 &&
      now_ms() - g.last_report_ms >= (uint64_t)g.interval_ms)
    err = report_locked() == -EPIPE ? -EPIPE : 0;
  pthread_mutex_unlock(&g.mu);
  pthread_mutex_unlock(&g.proc_mu);
  return err;
}

int memsup_checkpoint(void) {
  int err;
  if (in_save) return -EDEADLK;
  pthread_mutex_lock(&g.proc_mu);
  pthread_mutex_lock(&g.mu);
  err = g.fd < 0 ? idle_err() : 1;
  pthread_mutex_unlock(&g.mu);
  if (err == 1) err = save(0, "checkpoint", 0);
  pthread_mutex_unlock(&g.proc_mu);
  return err;
}

int memsup_report(void) {
  pthread_mutex_lock(&g.mu);
  int err = g.fd < 0 ? idle_err() : report_locked();
  pthread_mutex_unlock(&g.mu);
  return err;
}
int memsup_gauge_set(const char* name, double value) {
  size_t i;
  int err = 0;
  if (name == NULL || *name == '\0' || !isfinite(value)) return -EINVAL;
  if (strlen(name) >= GAUGE_NAME_MAX) return -ENAMETOOLONG;
  pthread_mutex_lock(&g.mu);
  for (i = 0; i < g.ngauges && strcmp(g.gauges[i].name, name) != 0; i++) {
  }
  if (i == GAUGES_MAX) {
    err = -E2BIG;
  } else {
    if (i == g.ngauges) strcpy(g.gauges[g.ngauges++].name, name);
    g.gauges[i].value = value;
  }
  pthread_mutex_unlock(&g.mu);
  return err;
}

int memsup_heap_read(memsup_heap_t* out) {
  if (out == NULL) return -EINVAL;
  pthread_mutex_lock(&g.mu);
  read_heap(&g.heap);
  *out = g.heap;
  pthread_mutex_unlock(&g.mu);
  return 0;
}

int memsup_restore(const void** data, size_t* len) {
  struct stat sb;
  int err = 0;

  if (data == NULL || len == NULL) return -EINVAL;
  pthread_mutex_lock(&g.mu);
  if (!g.has_state) {
    err = -ENOENT;
    goto end;
  }
  if (g.restore_called) {
    err = g.restore_err;
    goto out;
  }
  g.restore_called = 1;
  if (g.state_fd < 0 || fstat(g.state_fd, &sb) < 0 ||
      (uint64_t)sb.st_size != g.state_bytes) {
    err = -EBADMSG;
  } else if (g.state_bytes > 0) {
    g.map = mmap(NULL, g.state_bytes, PROT_READ, MAP_PRIVATE, g.state_fd, 0);
    if (g.map == MAP_FAILED) {
      g.map = NULL;
      err = -errno;
    }
  }
  if (err == 0 && memsup_crc32c(0, g.map, g.state_bytes) != g.state_crc) {
    err = -EBADMSG;
    if (g.map) munmap(g.map, g.state_bytes);
    g.map = NULL;
  }
  g.restore_err = err;
  if (err == 0) g.restored_unix_us = unix_us();
out:
  if (err == 0) {
    *data = g.map ? g.map : (const void*)"";
    *len = g.state_bytes;
  }
end:
  pthread_mutex_unlock(&g.mu);
  return err;
}

int memsup_ready(void) {
  cJSON* msg = NULL;
  const char* how = "none";
  int err = 0;

  pthread_mutex_lock(&g.mu);
  if (g.has_state && g.restore_called)
    how = g.restore_err == 0 ? "restored"
          : g.restore_err == -EBADMSG ? "corrupt" : "none";
  if (g.map) munmap(g.map, g.state_bytes);
  if (g.state_fd >= 0) close(g.state_fd);
  g.map = NULL;
  g.state_fd = -1;
  g.has_state = 0;
  /* Stats go first so that memsup's "after" figures, taken when ready
   * arrives, include heap-in-use after the restore. */
  if (g.fd >= 0) report_locked();
  msg = cJSON_CreateObject();
  cJSON_AddStringToObject(msg, "t", MEMSUP_MSG_READY);
  cJSON_AddStringToObject(msg, "restore", how);
  /* When this worker held the verified bytes: the end of the handoff, for
   * memsup's log and the benchmarks. */
  if (g.restored_unix_us)
    cJSON_AddNumberToObject(msg, "restored_unix_us", (double)g.restored_unix_us);
  err = send_frame(msg, -1, 0);
  pthread_mutex_unlock(&g.mu);
  cJSON_Delete(msg);
  return err;
}

/* The helper thread: wait for input or the next report, then do the work,
 * until memsup goes away. */
static void* thread_main(void* arg) {
  (void)arg;
  for (;;) {
    struct pollfd p = {.fd = memsup_fd(), .events = POLLIN};
    if (p.fd < 0) break;
    poll(&p, 1, memsup_interval_ms());
    if (memsup_process() == -EPIPE) break;
  }
  return NULL;
}

int memsup_start_thread(void) {
  sigset_t all, old;
  int err = 0;

  pthread_mutex_lock(&g.mu);
  if (g.fd < 0 || g.thread_started) goto end;
  /* Signals stay with the worker's own threads, which may rely on EINTR or
   * sigwait; the helper starts with all of them blocked. */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  err = -pthread_create(&g.thread, NULL, thread_main, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  g.thread_started = err == 0;
end:
  pthread_mutex_unlock(&g.mu);
  return err;
}
