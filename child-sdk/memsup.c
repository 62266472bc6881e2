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
#include <stdbool.h>
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
#ifndef STATE_BUF /* the fuzz target makes it small: one per save */
#define STATE_BUF (1 << 20)
#endif
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

/* One channel per process, so the state is global.  Four locks, always
 * taken in this order, none of them held while waiting for memsup except
 * send_mu, and mu never held across anything slow:
 * - proc_mu serialises reading and handling frames (the reader, the save
 *   callback); held across a save, which may take its time.
 * - restore_mu guards the state from the welcome until memsup_ready(); held
 *   across mapping and checksumming it (256 MiB: tens of ms).
 * - send_mu owns the socket's write side and g.out: a frame once started
 *   is finished before the next begins, so it is held across the wait for
 *   room in the socket.  Stats reports only try it and are dropped when
 *   another frame is on its way.
 * - mu guards everything else and is held only briefly, so a thread
 *   setting a gauge never waits for a save, a send or a purge.
 * g.fd changes only with all three held, so it is stable under any one. */
static struct {
  pthread_mutex_t mu, send_mu, proc_mu, restore_mu;
  int fd;   /* -1 when not connected */
  int gone; /* memsup closed the channel: calls return -EPIPE (mu) */
  int interval_ms;
  uint64_t limit, gen;
  char metric[16];
  memsup_save_fn save_fn;
  void* save_arg;
  memsup_heap_t heap;
  struct {
    char name[GAUGE_NAME_MAX];
    double value;
  } gauges[GAUGES_MAX];
  size_t ngauges;
  uint64_t last_report_ms;
  /* The state from the welcome, until memsup_ready() (restore_mu). */
  int has_state, restore_called, restore_err, state_fd;
  uint64_t state_bytes, restored_unix_us;
  uint32_t state_crc;
  void* map;
  int thread_started;
  pthread_t thread;
  memsup_reader_t rd; /* proc_mu: the reader memsup uses too (wire.c) */
  memsup_msg_t in;    /* proc_mu: the message being handled */
  /* send_mu.  cJSON may print a few bytes past what it needs. */
  char out[MEMSUP_FRAME_HDR + MEMSUP_FRAME_MAX + 16];
} g = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .send_mu = PTHREAD_MUTEX_INITIALIZER,
       .proc_mu = PTHREAD_MUTEX_INITIALIZER,
       .restore_mu = PTHREAD_MUTEX_INITIALIZER,
       .fd = -1,
       .state_fd = -1,
       .interval_ms = DEFAULT_INTERVAL_MS};

/* Set while this thread runs the save callback, whose calls back into
 * memsup_process() or memsup_checkpoint() would deadlock on proc_mu. */
static _Thread_local int in_save;

/* The allocator, found once: mallctl and mallinfo2 are thread-safe, so
 * reading heap figures needs none of the SDK's locks. */
static pthread_once_t alloc_once = PTHREAD_ONCE_INIT;
static mallctl_fn alloc_mallctl; /* NULL: glibc malloc */
static const char* alloc_name = "glibc";

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

/* Connected and memsup still there.  Caller holds mu (or all locks). */
static int connected(void) { return g.fd >= 0 && !g.gone; }

/* What a call returns when not connected: nothing to do when the worker
 * runs without memsup, -EPIPE once memsup has gone.  Caller holds mu. */
static int idle_err(void) { return g.gone ? -EPIPE : 0; }

/* Memsup has gone.  Any thread may find out; the descriptor is closed
 * later by one holding all locks (release_channel). */
static void mark_gone(void) {
  pthread_mutex_lock(&g.mu);
  g.gone = 1;
  pthread_mutex_unlock(&g.mu);
}

/* Stops using the channel: memsup has gone (gone) or speaks another
 * protocol.  The restored state, if any, stays usable.  Caller holds
 * proc_mu; takes send_mu and mu. */
static void release_channel(int gone) {
  pthread_mutex_lock(&g.send_mu);
  pthread_mutex_lock(&g.mu);
  if (g.fd >= 0) close(g.fd);
  g.fd = -1;
  g.gone |= gone;
  pthread_mutex_unlock(&g.mu);
  pthread_mutex_unlock(&g.send_mu);
  memsup_reader_free(&g.rd);
}

static void find_allocator(void) {
  /* A worker linked with -ljemalloc (unprefixed on Debian) exports
   * mallctl; looking it up at run time keeps jemalloc out of the SDK. */
#ifndef MEMSUP_NO_JEMALLOC
  alloc_mallctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mallctl");
#endif
  alloc_name = alloc_mallctl ? "jemalloc" : "glibc";
}

/* 1 when jemalloc is the allocator and was started with profiling on
 * (MALLOC_CONF=prof:true): then prof.dump works. */
static int can_prof(void) {
  bool on = false;
  size_t sz = sizeof(on);
  return alloc_mallctl && alloc_mallctl("opt.prof", &on, &sz, NULL, 0) == 0 &&
         on;
}

/* Reads the allocator's figures now.  Needs no lock. */
static void read_heap(memsup_heap_t* h) {
  pthread_once(&alloc_once, find_allocator);
  h->allocator = alloc_name;
  if (alloc_mallctl) {
    static const char* const names[] = {"stats.allocated", "stats.active",
                                        "stats.resident", "stats.retained",
                                        "stats.mapped"};
    uint64_t* out[] = {&h->allocated, &h->active, &h->resident,
                       &h->retained, &h->mapped};
    uint64_t epoch = 1;
    /* Statistics are cached until epoch is written.  A jemalloc built
     * without stats answers ENOENT: report zeros rather than fail. */
    alloc_mallctl("epoch", NULL, NULL, &epoch, sizeof(epoch));
    for (size_t i = 0; i < 5; i++) {
      size_t v = 0, sz = sizeof(v);
      *out[i] = alloc_mallctl(names[i], &v, &sz, NULL, 0) == 0 ? v : 0;
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

/* Writes json as one frame on fd, with pass_fd attached when >= 0.  With
 * nonblock, a full socket drops the frame (-EAGAIN) rather than block the
 * worker; a frame once started is always finished, or the stream would
 * lose its framing: that wait happens with send_mu only.  Returns 0,
 * -EAGAIN, -EMSGSIZE or -EPIPE (memsup gone).  Caller holds send_mu. */
static int send_frame(int fd, const cJSON* json, int pass_fd, int nonblock) {
  size_t len, sent = 0;
  int err;

  if (!cJSON_PrintPreallocated((cJSON*)json, g.out + MEMSUP_FRAME_HDR,
                               sizeof(g.out) - MEMSUP_FRAME_HDR, 0))
    return -EMSGSIZE;
  len = strlen(g.out + MEMSUP_FRAME_HDR);
  err = memsup_wire_header((uint8_t*)g.out, len);
  if (err) return err;
  len += MEMSUP_FRAME_HDR;

  while (sent < len) {
    /* MSG_DONTWAIT whatever the fd's flags, so waiting is our choice. */
    ssize_t n = memsup_wire_send(fd, g.out + sent, len - sent,
                                 sent == 0 ? pass_fd : -1, MSG_DONTWAIT);
    if (n >= 0) {
      sent += (size_t)n;
      continue;
    }
    if (n == -EAGAIN || n == -EWOULDBLOCK) {
      if (nonblock && sent == 0) return -EAGAIN;
      struct pollfd p = {.fd = fd, .events = POLLOUT};
      if (poll(&p, 1, -1) < 0 && errno != EINTR) return -errno;
      continue;
    }
    err = (int)n;
    if (err == -EPIPE || err == -ECONNRESET || err == -ENOTCONN) {
      mark_gone();
      return -EPIPE;
    }
    return err;
  }
  return 0;
}

/* Sends json on the channel.  Takes send_mu (nonblock: only if free, else
 * -EAGAIN, as for a full socket), so the caller must hold neither it nor
 * mu. */
static int send_msg(const cJSON* json, int pass_fd, int nonblock) {
  int err;
  if (json == NULL) return -ENOMEM;
  if (nonblock) {
    if (pthread_mutex_trylock(&g.send_mu) != 0) return -EAGAIN;
  } else {
    pthread_mutex_lock(&g.send_mu);
  }
  pthread_mutex_lock(&g.mu);
  err = connected() ? 1 : idle_err();
  pthread_mutex_unlock(&g.mu);
  if (err == 1) err = send_frame(g.fd, json, pass_fd, nonblock);
  pthread_mutex_unlock(&g.send_mu);
  return err;
}

/* Builds a stats report from the figures read now.  Caller holds mu. */
static cJSON* stats_msg(void) {
  cJSON* msg = cJSON_CreateObject();
  cJSON* heap = cJSON_AddObjectToObject(msg, "heap");
  cJSON* gauges = g.ngauges ? cJSON_AddObjectToObject(msg, "gauges") : NULL;

  g.last_report_ms = now_ms();
  read_heap(&g.heap);
  if (!cJSON_AddStringToObject(msg, "t", MEMSUP_MSG_STATS) || heap == NULL ||
      (g.ngauges && gauges == NULL)) {
    cJSON_Delete(msg);
    return NULL;
  }
  cJSON_AddNumberToObject(heap, "allocated", (double)g.heap.allocated);
  cJSON_AddNumberToObject(heap, "active", (double)g.heap.active);
  cJSON_AddNumberToObject(heap, "resident", (double)g.heap.resident);
  cJSON_AddNumberToObject(heap, "retained", (double)g.heap.retained);
  cJSON_AddNumberToObject(heap, "mapped", (double)g.heap.mapped);
  for (size_t i = 0; i < g.ngauges; i++)
    cJSON_AddNumberToObject(gauges, g.gauges[i].name, g.gauges[i].value);
  return msg;
}

/* Sends a stats report, dropped (-EAGAIN) rather than waited for.  Caller
 * holds no lock but perhaps proc_mu. */
static int report(void) {
  cJSON* msg;
  int err;
  pthread_mutex_lock(&g.mu);
  if (!connected()) {
    err = idle_err();
    pthread_mutex_unlock(&g.mu);
    return err;
  }
  msg = stats_msg();
  pthread_mutex_unlock(&g.mu);
  err = send_msg(msg, -1, 1);
  cJSON_Delete(msg);
  return err;
}

/* Closes descriptors memsup did not mean for anyone: after the welcome it
 * sends none.  Caller holds proc_mu. */
static void drop_fds(void) {
  for (int fd; (fd = memsup_reader_take_fd(&g.rd)) >= 0;) close(fd);
}

/* The next message from memsup into g.in, through the reader memsup uses
 * for the other direction: garbage, oversized and unknown-kind frames are
 * skipped the same way, and a frame that breaks the decoding rules is
 * dropped.  Returns 1 with a message, 0 when more bytes are needed, or
 * -EPROTO when memsup speaks another version (the reader has stopped).
 * Caller holds proc_mu. */
static int next_msg(void) {
  memsup_frame_t f;
  for (;;) {
    switch (memsup_reader_next(&g.rd, &f)) {
      case MEMSUP_READ_MORE:
        return 0;
      case MEMSUP_READ_BAD_VERSION:
      case MEMSUP_READ_STOPPED:
        return -EPROTO;
      case MEMSUP_READ_FRAME:
        if (memsup_msg_decode((const char*)f.payload, f.len,
                              MEMSUP_FROM_MEMSUP, &g.in) == 0)
          return 1;
        /* A malformed welcome still ends the wait for one. */
        if (g.in.type == MEMSUP_T_WELCOME) return -EBADMSG;
        break;
      default:
        break;
    }
  }
}

/* Takes the settings and the state announcement from the welcome in g.in.
 * Caller holds proc_mu, restore_mu and mu; the state's memfd is in the
 * reader's queue. */
static void take_welcome(void) {
  const memsup_msg_t* w = &g.in;
  g.interval_ms = w->interval_ms >= 1 && w->interval_ms <= 3600000
                      ? (int)w->interval_ms
                      : DEFAULT_INTERVAL_MS;
  g.limit = w->limit;
  g.gen = w->gen;
  snprintf(g.metric, sizeof(g.metric), "%s", w->metric);
  if (w->has_state) {
    /* A state announced without its memfd is lost: restore says corrupt. */
    g.has_state = 1;
    g.state_bytes = w->bytes;
    g.state_crc = w->crc32c;
    g.state_fd = memsup_reader_take_fd(&g.rd);
  }
  drop_fds();
}

/* Reads frames from fd until the welcome, for at most WELCOME_TIMEOUT_MS.
 * Frames after it stay buffered for memsup_process().  Returns 0 with the
 * welcome in g.in, or a negative errno.  Caller holds proc_mu. */
static int wait_welcome(int fd) {
  uint64_t deadline = now_ms() + WELCOME_TIMEOUT_MS;
  for (;;) {
    int got;
    while ((got = next_msg()) > 0)
      if (g.in.type == MEMSUP_T_WELCOME)
        return g.in.version == MEMSUP_WIRE_VERSION ? 0 : -EPROTO;
    if (got < 0) return got;
    uint64_t now = now_ms();
    if (now >= deadline) return -ETIMEDOUT;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, (int)(deadline - now)) < 0 && errno != EINTR)
      return -errno;
    ssize_t n = memsup_reader_recv(&g.rd, fd, 0, MSG_DONTWAIT);
    if (n == 0 || n == -ECONNRESET) {
      mark_gone();
      return -EPIPE;
    }
    if (n < 0 && n != -EAGAIN) return (int)n;
  }
}

int memsup_init(void) {
  const char* env;
  cJSON* hello = NULL;
  memsup_heap_t heap;
  struct stat sb;
  char* end;
  long fd;
  int err = 0;

  pthread_mutex_lock(&g.proc_mu);
  pthread_mutex_lock(&g.mu);
  env = getenv(MEMSUP_FD_ENV);
  err = g.fd >= 0 || env == NULL ? 1 : 0;
  pthread_mutex_unlock(&g.mu);
  if (err) {
    err = 0;
    goto end;
  }
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
  /* Until the welcome has come, fd is this function's alone: other threads
   * see no channel and do not wait for the handshake. */
  err = memsup_reader_init(&g.rd);
  if (err) goto fail;
  read_heap(&heap);
  hello = cJSON_CreateObject();
  if (!cJSON_AddStringToObject(hello, "t", MEMSUP_MSG_HELLO) ||
      !cJSON_AddNumberToObject(hello, "v", MEMSUP_WIRE_VERSION) ||
      !cJSON_AddNumberToObject(hello, "pid", getpid()) ||
      !cJSON_AddStringToObject(hello, "allocator", heap.allocator) ||
      !cJSON_AddBoolToObject(hello, "prof", can_prof()) ||
      !cJSON_AddStringToObject(hello, "sdk", MEMSUP_VERSION)) {
    err = -ENOMEM;
    goto fail;
  }
  pthread_mutex_lock(&g.send_mu);
  err = send_frame((int)fd, hello, -1, 0);
  pthread_mutex_unlock(&g.send_mu);
  if (err == 0) err = wait_welcome((int)fd);
  if (err) goto fail;
  pthread_mutex_lock(&g.restore_mu);
  pthread_mutex_lock(&g.send_mu);
  pthread_mutex_lock(&g.mu);
  g.fd = (int)fd;
  g.heap = heap;
  take_welcome();
  pthread_mutex_unlock(&g.mu);
  pthread_mutex_unlock(&g.send_mu);
  pthread_mutex_unlock(&g.restore_mu);
  goto end;
fail:
  close((int)fd);
  memsup_reader_free(&g.rd);
end:
  pthread_mutex_unlock(&g.proc_mu);
  cJSON_Delete(hello);
  return err;
}

int memsup_active(void) {
  pthread_mutex_lock(&g.mu);
  int active = connected();
  pthread_mutex_unlock(&g.mu);
  return active;
}

int memsup_fd(void) {
  pthread_mutex_lock(&g.mu);
  int fd = connected() ? g.fd : -1;
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
  if (err == 0 || reply_failure) sent = send_msg(msg, err ? -1 : st.fd, 0);
  cJSON_Delete(msg);
  free(st.buf);
  if (st.fd >= 0) close(st.fd);
  return err ? err : sent;
}

/* Asks the allocator to return free memory and says what it gained.
 * Caller holds proc_mu only: a trim of a big heap takes its time, and
 * gauges must stay settable meanwhile. */
static int purge(uint64_t seq) {
  memsup_heap_t before, after;
  cJSON* msg = cJSON_CreateObject();
  int err;

  read_heap(&before);
  if (alloc_mallctl)
    alloc_mallctl("arena.4096.purge", NULL, NULL, NULL, 0); /* all arenas */
  else
    malloc_trim(0);
  read_heap(&after);
  cJSON_AddStringToObject(msg, "t", MEMSUP_MSG_PURGED);
  cJSON_AddNumberToObject(msg, "seq", (double)seq);
  cJSON_AddNumberToObject(msg, "resident_before", (double)before.resident);
  cJSON_AddNumberToObject(msg, "resident_after", (double)after.resident);
  err = send_msg(msg, -1, 0);
  /* memsup judges the purge by the next figures: send them now. */
  if (err == 0 && report() == -EPIPE) err = -EPIPE;
  cJSON_Delete(msg);
  return err;
}

/* Handles the message in g.in.  Types this SDK does not know, or that come
 * too late (a second welcome), are ignored so that a newer memsup can talk
 * to it.  Returns -EPIPE when memsup has gone; a failed save is memsup's
 * business (it got save_failed), not ours.  Caller holds proc_mu. */
/* memsup asked for a heap profile: jemalloc writes it before mallctl
 * returns, so when memsup sees the answer to a save that follows, the file
 * is whole.  Nothing is answered: a failed dump (no profiling, disk full)
 * shows as a missing file, which memsup's reader reports. */
static void prof_dump(const char* path) {
  if (alloc_mallctl && path[0] == '/')
    alloc_mallctl("prof.dump", NULL, NULL, &path, sizeof(path));
}

static int handle(void) {
  int err = 0;
  if (g.in.type == MEMSUP_T_SAVE)
    err = save(g.in.seq, "save", 1);
  else if (g.in.type == MEMSUP_T_PURGE)
    err = purge(g.in.seq);
  else if (g.in.type == MEMSUP_T_PROF)
    prof_dump(g.in.path);
  return err == -EPIPE ? err : 0;
}

/* Ends a call that holds proc_mu: a channel memsup has left is closed here,
 * by the one caller that may (all locks), not by whichever thread noticed. */
static void proc_done(void) {
  pthread_mutex_lock(&g.mu);
  int gone = g.gone && g.fd >= 0;
  pthread_mutex_unlock(&g.mu);
  if (gone) release_channel(1);
  pthread_mutex_unlock(&g.proc_mu);
}

/* One pass of the SDK's work, called when memsup_fd() is readable and at
 * least every interval_ms: read whatever memsup sent (buffering partial
 * frames), answer save and purge requests, then send a stats report if
 * interval_ms has passed since the last one.  It never waits for input. */
int memsup_process(void) {
  int err = 0, due;
  ssize_t n = 1;
  if (in_save) return -EDEADLK;
  pthread_mutex_lock(&g.proc_mu);
  pthread_mutex_lock(&g.mu);
  err = connected() ? 0 : idle_err();
  due = connected() ? 1 : 0;
  pthread_mutex_unlock(&g.mu);
  /* Bounded, so a flood from memsup cannot keep the caller here. */
  for (int round = 0; due && round < 64 && n > 0 && err == 0; round++) {
    int got;
    n = memsup_reader_recv(&g.rd, g.fd, 0, MSG_DONTWAIT);
    /* What came before an end of file still counts. */
    /* -EBADMSG (a malformed welcome, long after ours) is just dropped. */
    while (err == 0 && (got = next_msg()) != 0 && got != -EPROTO)
      if (got > 0) err = handle();
    drop_fds();
    if (err == 0 && got == -EPROTO) {
      /* memsup speaks another version: as for such a welcome, the worker
       * goes on without it. */
      release_channel(0);
      err = -EPROTO;
    } else if (err == 0 && (n == 0 || n == -ECONNRESET)) {
      mark_gone();
      err = -EPIPE;
    } else if (err == 0 && n < 0 && n != -EAGAIN) {
      err = (int)n;
    }
  }
  pthread_mutex_lock(&g.mu);
  due = err == 0 && connected() &&
        now_ms() - g.last_report_ms >= (uint64_t)g.interval_ms;
  pthread_mutex_unlock(&g.mu);
  if (due && report() == -EPIPE) err = -EPIPE;
  proc_done();
  return err;
}

int memsup_checkpoint(void) {
  int err;
  if (in_save) return -EDEADLK;
  pthread_mutex_lock(&g.proc_mu);
  pthread_mutex_lock(&g.mu);
  err = connected() ? 1 : idle_err();
  pthread_mutex_unlock(&g.mu);
  if (err == 1) err = save(0, "checkpoint", 0);
  proc_done();
  return err;
}

int memsup_report(void) { return report(); }

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
  read_heap(out);
  pthread_mutex_lock(&g.mu);
  g.heap = *out;
  pthread_mutex_unlock(&g.mu);
  return 0;
}

int memsup_restore(const void** data, size_t* len) {
  struct stat sb;
  int err = 0;

  if (data == NULL || len == NULL) return -EINVAL;
  pthread_mutex_lock(&g.restore_mu);
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
  pthread_mutex_unlock(&g.restore_mu);
  return err;
}

int memsup_ready(void) {
  cJSON* msg = NULL;
  const char* how = "none";
  int err = 0;

  pthread_mutex_lock(&g.restore_mu);
  if (g.has_state && g.restore_called)
    how = g.restore_err == 0 ? "restored"
          : g.restore_err == -EBADMSG ? "corrupt" : "none";
  if (g.map) munmap(g.map, g.state_bytes);
  if (g.state_fd >= 0) close(g.state_fd);
  g.map = NULL;
  g.state_fd = -1;
  g.has_state = 0;
  msg = cJSON_CreateObject();
  cJSON_AddStringToObject(msg, "t", MEMSUP_MSG_READY);
  cJSON_AddStringToObject(msg, "restore", how);
  /* When this worker held the verified bytes: the end of the handoff, for
   * memsup's log and the benchmarks. */
  if (g.restored_unix_us)
    cJSON_AddNumberToObject(msg, "restored_unix_us", (double)g.restored_unix_us);
  pthread_mutex_unlock(&g.restore_mu);
  /* Stats go first so that memsup's "after" figures, taken when ready
   * arrives, include heap-in-use after the restore. */
  report();
  err = send_msg(msg, -1, 0);
  cJSON_Delete(msg);
  return err;
}

/* The helper thread: wait for input or the next report, then do the work,
 * until memsup goes away. */
static void* thread_main(void* arg) {
  (void)arg;
  for (;;) {
    struct pollfd p = {.fd = memsup_fd(), .events = POLLIN};
    if (p.fd < 0) {
      memsup_process(); /* closes a channel another thread found dead */
      break;
    }
    poll(&p, 1, memsup_interval_ms());
    if (memsup_process() == -EPIPE) break;
  }
  return NULL;
}

int memsup_start_thread(void) {
  sigset_t all, old;
  int err = 0;

  pthread_mutex_lock(&g.mu);
  if (!connected() || g.thread_started) goto end;
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
