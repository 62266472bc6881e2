/* channel.c: memsup's end of the worker channel.  Owns the parent end of
 * the socketpair, its uv_poll_t, the reassembly buffer, descriptors that
 * arrived with SCM_RIGHTS and the queue of unsent frames.  What a message
 * means (restart, handoff, stats) is left to child.c and its callers.
 */
#include "channel.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "memsup_wire.h"

#define FD_QUEUE 8         /* descriptors waiting for their state message */
#define BATCH_FRAMES 256   /* frames decoded per callback */
#define FLOOD_FRAMES 5000  /* more than this within FLOOD_WINDOW_MS ... */
#define FLOOD_WINDOW_MS 1000
#define FLOOD_PAUSE_MS 100 /* ... stops reading for this long */
#define LOG_MAX 5          /* lines per kind of problem, then one "suppressed" */
#define IN_START 16384

enum { BAD_FRAME, BAD_JSON, BAD_TYPE, LOST_FD, NPROBLEMS };
static const char* problem_names[NPROBLEMS] = {
    "bad frames", "bad messages", "unknown message types", "lost descriptors"};

typedef struct out_s {
  struct out_s* next;
  int fd;          /* our dup of pass_fd, sent with byte 0; -1 after that */
  size_t len, off; /* frame bytes, bytes already sent */
  uint8_t data[];
} out_t;

struct ms_channel_s {
  uv_loop_t* loop;
  uv_poll_t poll;
  uv_timer_t timer; /* flood pause, and resuming a batch cut at the limit */
  int fd;
  int events; /* what poll is started with; 0 when stopped */
  ms_channel_cb_t cb;
  void* arg;
  /* input */
  uint8_t* in;
  size_t len, cap;
  uint64_t skip; /* payload bytes of an oversized frame still to drop */
  int garbage;   /* inside a run of bytes that are not a frame */
  int reading, paused;
  int fds[FD_QUEUE];
  size_t nfds;
  ms_msg_t msg[2]; /* decode target and a held-back stats message */
  int cur, held;   /* indexes into msg; held is -1 when none */
  uint64_t window_start, window_frames;
  int flood_logged;
  unsigned complaints[NPROBLEMS];
  ms_channel_stats_t stats;
  /* output */
  out_t* out_head;
  out_t** out_tail;
  int gone; /* the worker's end is closed: sends fail with -EPIPE */
  /* teardown */
  int closing, pending_closes;
  void (*closed_cb)(void* arg);
  void* closed_arg;
};

/* ---- decoding --------------------------------------------------------- */

static void copy_str(char* dst, size_t cap, const char* src) {
  size_t n = strnlen(src, cap - 1);
  memcpy(dst, src, n);
  dst[n] = '\0';
}

/* The member name of obj, or NULL when absent or null (null means "not
 * sent", so an optional member may be written either way). */
static const cJSON* member(const cJSON* obj, const char* name) {
  const cJSON* it = cJSON_GetObjectItemCaseSensitive(obj, name);
  return cJSON_IsNull(it) ? NULL : it;
}

/* Reads an integer member in [0, limit).  cJSON keeps numbers as doubles,
 * so fractions, infinities and values past limit are rejected here before
 * the cast, which would otherwise be undefined. */
static int get_uint(const cJSON* obj, const char* name, int required,
                    double limit, uint64_t* v) {
  const cJSON* it = member(obj, name);
  *v = 0;
  if (it == NULL) return required ? -EBADMSG : 0;
  if (!cJSON_IsNumber(it)) return -EBADMSG;
  double d = it->valuedouble;
  if (!isfinite(d) || d < 0 || d >= limit || d != (double)(uint64_t)d)
    return -EBADMSG;
  *v = (uint64_t)d;
  return 0;
}

static int get_str(const cJSON* obj, const char* name, int required,
                   char* dst, size_t cap) {
  const cJSON* it = member(obj, name);
  dst[0] = '\0';
  if (it == NULL) return required ? -EBADMSG : 0;
  if (!cJSON_IsString(it)) return -EBADMSG;
  copy_str(dst, cap, it->valuestring);
  return 0;
}

static int get_stats(const cJSON* root, ms_msg_t* out) {
  const cJSON* heap = member(root, "heap");
  const cJSON* gauges = member(root, "gauges");
  const cJSON* it;
  if (heap != NULL) {
    if (!cJSON_IsObject(heap) ||
        get_uint(heap, "allocated", 0, 0x1p64, &out->allocated) ||
        get_uint(heap, "active", 0, 0x1p64, &out->active) ||
        get_uint(heap, "resident", 0, 0x1p64, &out->resident) ||
        get_uint(heap, "retained", 0, 0x1p64, &out->retained) ||
        get_uint(heap, "mapped", 0, 0x1p64, &out->mapped))
      return -EBADMSG;
    out->has_heap = 1;
  }
  if (gauges == NULL) return 0;
  if (!cJSON_IsObject(gauges)) return -EBADMSG;
  /* Gauges are the worker's own names: a bad one is skipped, not fatal. */
  cJSON_ArrayForEach(it, gauges) {
    if (out->ngauges == MS_GAUGES_MAX) break;
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) ||
        strlen(it->string) >= MS_GAUGE_NAME_MAX)
      continue;
    strcpy(out->gauges[out->ngauges].name, it->string);
    out->gauges[out->ngauges++].value = it->valuedouble;
  }
  return 0;
}

static const struct {
  const char* t;
  ms_msg_type_t type;
} msg_types[] = {
    {MEMSUP_MSG_HELLO, MS_MSG_HELLO},
    {MEMSUP_MSG_STATS, MS_MSG_STATS},
    {MEMSUP_MSG_STATE, MS_MSG_STATE},
    {MEMSUP_MSG_SAVE_FAILED, MS_MSG_SAVE_FAILED},
    {MEMSUP_MSG_PURGED, MS_MSG_PURGED},
    {MEMSUP_MSG_READY, MS_MSG_READY},
};

int ms_msg_decode(const char* payload, size_t len, ms_msg_t* out) {
  cJSON* root = NULL;
  const cJSON* t;
  const char* end = NULL;
  uint64_t v, pid, crc;
  int err = -EBADMSG;

  memset(out, 0, sizeof(*out));
  /* The payload is not NUL-terminated, so require_null_terminated would
   * reject every frame; bytes after the object are checked here instead. */
  root = cJSON_ParseWithLengthOpts(payload, len, &end, 0);
  if (!cJSON_IsObject(root)) goto end;
  for (; end < payload + len; end++)
    if (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\r') goto end;
  t = cJSON_GetObjectItemCaseSensitive(root, "t");
  if (!cJSON_IsString(t)) goto end;
  copy_str(out->t, sizeof(out->t), t->valuestring);
  out->type = MS_MSG_UNKNOWN;
  for (size_t i = 0; i < sizeof(msg_types) / sizeof(msg_types[0]); i++)
    if (strcmp(t->valuestring, msg_types[i].t) == 0) out->type = msg_types[i].type;

  switch (out->type) {
  case MS_MSG_HELLO:
    if (get_uint(root, "v", 1, 0x1p31, &v) ||
        get_uint(root, "pid", 0, 0x1p31, &pid) ||
        get_str(root, "allocator", 0, out->allocator, sizeof(out->allocator)))
      goto end;
    out->version = (int)v;
    out->pid = (long)pid;
    break;
  case MS_MSG_STATS:
    if (get_stats(root, out)) goto end;
    break;
  case MS_MSG_STATE:
    if (get_uint(root, "seq", 1, 0x1p64, &out->seq) ||
        get_str(root, "kind", 1, out->kind, sizeof(out->kind)) ||
        get_uint(root, "bytes", 1, 0x1p64, &out->bytes) ||
        get_uint(root, "crc32c", 1, 0x1p32, &crc))
      goto end;
    if (strcmp(out->kind, "save") != 0 && strcmp(out->kind, "checkpoint") != 0)
      goto end;
    out->crc32c = (uint32_t)crc;
    break;
  case MS_MSG_SAVE_FAILED:
    if (get_uint(root, "seq", 0, 0x1p64, &out->seq) ||
        get_str(root, "error", 0, out->text, sizeof(out->text)))
      goto end;
    break;
  case MS_MSG_PURGED:
    if (get_uint(root, "seq", 0, 0x1p64, &out->seq) ||
        get_uint(root, "resident_before", 0, 0x1p64, &out->purge_before) ||
        get_uint(root, "resident_after", 0, 0x1p64, &out->purge_after))
      goto end;
    break;
  case MS_MSG_READY:
    if (get_str(root, "restore", 0, out->text, sizeof(out->text)) ||
        get_uint(root, "restored_unix_us", 0, 9007199254740992.0,
                 &out->restored_unix_us))
      goto end;
    break;
  case MS_MSG_UNKNOWN:
    break;
  }
  err = 0;

end:
  cJSON_Delete(root);
  return err;
}

/* ---- problems, logged a bounded number of times ------------------------ */

/* A worker that sends garbage in a loop must not fill memsup's log: each
 * kind of problem is logged LOG_MAX times per channel, then once more to
 * say the rest are suppressed.  The counters keep counting. */
static void complain(ms_channel_t* ch, int kind, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void complain(ms_channel_t* ch, int kind, const char* fmt, ...) {
  char line[256];
  va_list ap;
  unsigned n = ch->complaints[kind]++;
  if (n > LOG_MAX) return;
  if (n == LOG_MAX) {
    ms_warn("further %s from worker suppressed", problem_names[kind]);
    return;
  }
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  ms_warn("%s", line);
}

/* Worker bytes made safe to print: at most 40, non-printables as '?'. */
static const char* printable(const char* s, size_t n, char buf[48]) {
  size_t k;
  for (k = 0; k < n && k < 40; k++)
    buf[k] = (s[k] >= 0x20 && s[k] < 0x7f) ? s[k] : '?';
  strcpy(buf + k, n > 40 ? "..." : "");
  return buf;
}

/* ---- polling ---------------------------------------------------------- */

static void poll_cb(uv_poll_t* h, int status, int events);
static int pump(ms_channel_t* ch);
static void flush_stats(ms_channel_t* ch);

static void update_poll(ms_channel_t* ch) {
  int ev = 0, err = 0;
  if (ch->closing) return;
  if (ch->reading && !ch->paused) ev |= UV_READABLE;
  if (ch->out_head != NULL) ev |= UV_WRITABLE;
  if (ev == ch->events) return;
  ch->events = ev;
  if (ev != 0)
    err = uv_poll_start(&ch->poll, ev, poll_cb);
  else
    uv_poll_stop(&ch->poll);
  if (err < 0) ms_warn("poll worker channel: %s", uv_strerror(err));
}

/* The worker has gone, the socket failed or it speaks another protocol:
 * nothing more is read, and the owner hears about it once. */
static void stop_reading(ms_channel_t* ch) {
  if (!ch->reading) return;
  flush_stats(ch); /* what came before the end still counts */
  ch->reading = 0;
  ch->len = 0;
  update_poll(ch);
  if (!ch->closing && ch->cb.on_eof != NULL) ch->cb.on_eof(ch, ch->arg);
}

static void timer_cb(uv_timer_t* t) {
  ms_channel_t* ch = t->data;
  ch->paused = 0;
  update_poll(ch);
  pump(ch);
}

/* A flood is a worker sending stats far faster than anyone could use them
 * (a report call in a hot loop).  Counting frames per one-second window
 * costs nothing; pausing the poll lets the worker's sends block or fail
 * instead of memsup spending its loop on them. */
static void count_frame(ms_channel_t* ch) {
  uint64_t now = uv_now(ch->loop);
  ch->stats.frames++;
  if (now - ch->window_start >= FLOOD_WINDOW_MS) {
    ch->window_start = now;
    ch->window_frames = 0;
  }
  if (++ch->window_frames <= FLOOD_FRAMES || ch->paused) return;
  if (!ch->flood_logged) ms_warn("stats flood from worker: reading paused");
  ch->flood_logged = 1;
  ch->paused = 1;
  update_poll(ch);
  uv_timer_start(&ch->timer, timer_cb, FLOOD_PAUSE_MS, 0);
}

/* ---- input ------------------------------------------------------------ */

static void flush_stats(ms_channel_t* ch) {
  int i = ch->held;
  if (i < 0 || ch->closing) return;
  ch->held = -1;
  ch->cb.on_message(ch, &ch->msg[i], -1, ch->arg);
}

static int take_fd(ms_channel_t* ch) {
  int fd;
  if (ch->nfds == 0) return -1;
  fd = ch->fds[0];
  memmove(ch->fds, ch->fds + 1, --ch->nfds * sizeof(int));
  return fd;
}

static void handle_frame(ms_channel_t* ch, const uint8_t* payload,
                         uint32_t len) {
  ms_msg_t* m = &ch->msg[ch->cur];
  char buf[48];
  if (ms_msg_decode((const char*)payload, len, m) < 0) {
    ch->stats.bad_json++;
    complain(ch, BAD_JSON, "bad message from worker: %s",
             printable((const char*)payload, len, buf));
    return;
  }
  if (m->type == MS_MSG_UNKNOWN) {
    ch->stats.unknown++;
    complain(ch, BAD_TYPE, "unknown message type \"%s\" from worker: ignored",
             printable(m->t, strlen(m->t), buf));
    return;
  }
  /* Only the newest of consecutive stats matters: hold it back and let a
   * later one replace it, which keeps a flood cheap to digest. */
  if (m->type == MS_MSG_STATS) {
    if (ch->held >= 0) ch->stats.dropped_stats++;
    ch->held = ch->cur;
    ch->cur ^= 1;
    return;
  }
  flush_stats(ch);
  if (ch->closing) return;
  ch->cb.on_message(ch, m, m->type == MS_MSG_STATE ? take_fd(ch) : -1,
                    ch->arg);
}

/* Handles complete frames at the front of the input buffer, at most budget
 * of them, then moves what is left to the front.  Returns the budget left.
 * This is the whole reassembly logic; ms_channel_feed drives it too. */
static size_t drain(ms_channel_t* ch, size_t budget) {
  size_t pos = 0;
  uint32_t len;
  uint8_t version;
  while (ch->reading && !ch->closing && pos < ch->len) {
    uint8_t* p = ch->in + pos;
    size_t n = ch->len - pos;
    if (ch->skip > 0) {
      size_t k = n < ch->skip ? n : (size_t)ch->skip;
      pos += k;
      ch->skip -= k;
      continue;
    }
    if (budget == 0) break;
    memsup_wire_status_t st = memsup_wire_peek(p, n, &len, &version);
    if (st == MEMSUP_WIRE_NEED_MORE) break;
    /* Inside a run of garbage an "ms" is only a candidate frame start: one
     * whose header is also implausible (another version, a huge length) is
     * more garbage.  Believing it would drop the channel for a version
     * mismatch or skip up to 4 GiB of real frames. */
    if (ch->garbage &&
        (st == MEMSUP_WIRE_BAD_VERSION || st == MEMSUP_WIRE_TOO_BIG))
      st = MEMSUP_WIRE_BAD_MAGIC;
    if (st == MEMSUP_WIRE_BAD_MAGIC) {
      /* Resync on the next 'm'.  A run of garbage is one bad frame. */
      uint8_t* m = memchr(p + 1, 'm', n - 1);
      pos += m ? (size_t)(m - p) : n;
      if (!ch->garbage) {
        ch->stats.bad_frames++;
        complain(ch, BAD_FRAME, "garbage on worker channel: resyncing");
      }
      ch->garbage = 1;
      continue;
    }
    ch->garbage = 0;
    if (st == MEMSUP_WIRE_BAD_VERSION) {
      ms_warn("worker speaks protocol version %u, memsup speaks %d: channel "
              "ignored", version, MEMSUP_WIRE_VERSION);
      stop_reading(ch);
      return budget;
    }
    if (st == MEMSUP_WIRE_TOO_BIG) {
      /* Dropping the payload by its length keeps us in step with the
       * sender; resyncing inside it could mistake its bytes for frames. */
      ch->stats.bad_frames++;
      complain(ch, BAD_FRAME, "frame of %u bytes from worker (max %d): "
               "skipped", len, MEMSUP_FRAME_MAX);
      pos += MEMSUP_FRAME_HDR;
      ch->skip = len;
      continue;
    }
    pos += MEMSUP_FRAME_HDR + len;
    budget--;
    count_frame(ch);
    if (st == MEMSUP_WIRE_UNKNOWN_KIND) {
      ch->stats.unknown++;
      complain(ch, BAD_TYPE, "frame of unknown kind 0x%02x from worker: "
               "skipped", p[3]);
      continue;
    }
    handle_frame(ch, p + MEMSUP_FRAME_HDR, len);
  }
  if (ch->reading) {
    memmove(ch->in, ch->in + pos, ch->len - pos);
    ch->len -= pos;
  }
  flush_stats(ch);
  return budget;
}

/* Makes room for at least one more byte.  The buffer never needs more than
 * one whole frame: a full one always starts with something drain() can
 * act on. */
static int grow(ms_channel_t* ch) {
  size_t cap = ch->cap * 2;
  uint8_t* p;
  if (ch->len < ch->cap) return 0;
  if (cap > MEMSUP_FRAME_HDR + MEMSUP_FRAME_MAX)
    cap = MEMSUP_FRAME_HDR + MEMSUP_FRAME_MAX;
  if (cap == ch->cap || (p = realloc(ch->in, cap)) == NULL) return -ENOMEM;
  ch->in = p;
  ch->cap = cap;
  return 0;
}

static void keep_fds(ms_channel_t* ch, struct msghdr* mh) {
  struct cmsghdr* c;
  for (c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (ch->nfds < FD_QUEUE) {
        ch->fds[ch->nfds++] = fd;
        continue;
      }
      close(fd);
      ch->stats.lost_fds++;
      complain(ch, LOST_FD, "more than %d unclaimed descriptors from worker: "
               "closed one", FD_QUEUE);
    }
  }
  if (mh->msg_flags & MSG_CTRUNC) {
    /* The kernel closed the descriptors that did not fit. */
    ch->stats.lost_fds++;
    complain(ch, LOST_FD, "descriptors from worker truncated (MSG_CTRUNC)");
  }
}

/* One recvmsg into the free end of the buffer.  Returns bytes read, 0 at
 * EOF, -EAGAIN when there is nothing, or another negative errno. */
static ssize_t receive(ms_channel_t* ch) {
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * FD_QUEUE)];
  } cbuf;
  struct iovec iov;
  struct msghdr mh;
  ssize_t n;
  if (grow(ch) < 0) return -ENOMEM;
  iov.iov_base = ch->in + ch->len;
  iov.iov_len = ch->cap - ch->len;
  memset(&mh, 0, sizeof(mh));
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = cbuf.buf;
  mh.msg_controllen = sizeof(cbuf.buf);
  do
    n = recvmsg(ch->fd, &mh, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  keep_fds(ch, &mh);
  ch->len += (size_t)n;
  ch->stats.bytes_in += (uint64_t)n;
  return n;
}

/* One readable event: finish frames left from a cut batch, read once, and
 * handle what came in, BATCH_FRAMES frames at most.  A batch cut at the
 * limit resumes from a zero timer so other handles get their turn; the
 * poll alone would not fire again if the socket is already empty.
 * Returns 1 when there may be more to read, 0 when not or reading ended. */
static int pump(ms_channel_t* ch) {
  size_t budget = drain(ch, BATCH_FRAMES);
  ssize_t n = 0;
  if (budget > 0 && ch->reading && !ch->paused && !ch->closing) {
    n = receive(ch);
    if (n > 0) {
      budget = drain(ch, budget);
    } else if (n == 0 || n == -ECONNRESET) {
      stop_reading(ch);
      return 0;
    } else if (n != -EAGAIN) {
      ms_warn("read worker channel: %s", strerror((int)-n));
      stop_reading(ch);
      return 0;
    }
  }
  if (budget == 0 && ch->reading && !ch->paused && !ch->closing)
    uv_timer_start(&ch->timer, timer_cb, 0, 0);
  return (n > 0 || budget == 0) && ch->reading && !ch->closing;
}

size_t ms_channel_feed(ms_channel_t* ch, const uint8_t* data, size_t n) {
  if (!ch->reading || ch->closing || grow(ch) < 0) return 0;
  if (n > ch->cap - ch->len) n = ch->cap - ch->len;
  memcpy(ch->in + ch->len, data, n);
  ch->len += n;
  ch->stats.bytes_in += n;
  drain(ch, SIZE_MAX);
  return n;
}

/* ---- output ----------------------------------------------------------- */

static void drop_output(ms_channel_t* ch) {
  while (ch->out_head != NULL) {
    out_t* o = ch->out_head;
    ch->out_head = o->next;
    if (o->fd >= 0) close(o->fd);
    free(o);
  }
  ch->out_tail = &ch->out_head;
}

/* Sends queued frames until the socket is full.  Returns 0, or the
 * negative errno that made the front frame fail (it is dropped; after
 * EPIPE everything is, since nobody will read it). */
static int flush_out(ms_channel_t* ch) {
  int err = 0;
  while (ch->out_head != NULL) {
    out_t* o = ch->out_head;
    /* A descriptor rides on the frame's first byte, so the worker receives
     * it with the frame's header. */
    ssize_t n = memsup_wire_send(ch->fd, o->data + o->off, o->len - o->off,
                                 o->fd, MSG_DONTWAIT);
    if (n == -EWOULDBLOCK) break;
    if (n < 0) {
      err = (n == -EPIPE || n == -ECONNRESET) ? -EPIPE : (int)n;
      ch->out_head = o->next;
      if (ch->out_head == NULL) ch->out_tail = &ch->out_head;
      if (o->fd >= 0) close(o->fd);
      free(o);
      if (err == -EPIPE) {
        ch->gone = 1;
        drop_output(ch);
      }
      break;
    }
    if (o->fd >= 0) close(o->fd);
    o->fd = -1;
    o->off += (size_t)n;
    if (o->off < o->len) break;
    ch->out_head = o->next;
    if (ch->out_head == NULL) ch->out_tail = &ch->out_head;
    free(o);
  }
  update_poll(ch);
  return err;
}

int ms_channel_send(ms_channel_t* ch, const cJSON* msg, int pass_fd) {
  char* text = NULL;
  out_t* o = NULL;
  size_t len;
  int err, was_empty;

  if (ch->gone || ch->closing) return -EPIPE;
  text = cJSON_PrintUnformatted(msg);
  if (text == NULL) {
    err = -ENOMEM;
    goto end;
  }
  len = strlen(text);
  if (len > MEMSUP_FRAME_MAX) {
    err = -EMSGSIZE;
    goto end;
  }
  o = malloc(sizeof(*o) + MEMSUP_FRAME_HDR + len);
  if (o == NULL) {
    err = -ENOMEM;
    goto end;
  }
  o->next = NULL;
  o->fd = -1;
  o->off = 0;
  o->len = MEMSUP_FRAME_HDR + len;
  memsup_wire_header(o->data, len);
  memcpy(o->data + MEMSUP_FRAME_HDR, text, len);
  /* Our own copy: the caller's descriptor is only borrowed, and the frame
   * may wait in the queue after this call returns. */
  if (pass_fd >= 0 && (o->fd = fcntl(pass_fd, F_DUPFD_CLOEXEC, 0)) < 0) {
    err = -errno;
    goto end;
  }
  was_empty = ch->out_head == NULL;
  *ch->out_tail = o;
  ch->out_tail = &o->next;
  o = NULL;
  err = was_empty ? flush_out(ch) : 0;

end:
  cJSON_free(text);
  if (o != NULL) {
    if (o->fd >= 0) close(o->fd);
    free(o);
  }
  return err;
}

/* ---- lifetime --------------------------------------------------------- */

/* Writable/readable events on the socket.  Writes go first so a frame
 * queued for the worker leaves even while it floods us. */
static void poll_cb(uv_poll_t* h, int status, int events) {
  ms_channel_t* ch = h->data;
  int err;
  if (status < 0) {
    /* libuv stops the handle and says UV_EBADF on EPOLLERR, which a unix
     * socket raises when the worker died with our frames unread.  What
     * it sent before dying is still queued: read it all, then end. */
    ch->events = 0;
    while (pump(ch)) continue;
    stop_reading(ch);
    return;
  }
  if (events & UV_WRITABLE) {
    err = flush_out(ch);
    if (err < 0 && err != -EPIPE)
      ms_warn("send to worker: %s", strerror(-err));
  }
  if ((events & UV_READABLE) && !ch->closing) pump(ch);
}

int ms_channel_pair(int* parent, int* child) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
    return -errno;
  /* O_NONBLOCK belongs to the open file, which the worker's fd 3 shares
   * after dup2: the SDK expects a blocking socket. */
  if (fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) & ~O_NONBLOCK) < 0) {
    int err = -errno;
    close(sv[0]);
    close(sv[1]);
    return err;
  }
  *parent = sv[0];
  *child = sv[1];
  return 0;
}

/* Why uv_poll_t and not uv_pipe_t: a libuv IPC pipe only passes handle
 * types libuv knows (TCP, pipes, UDP) and would reject or mistype the
 * memfds that carry a worker's state, so the socket is read with our own
 * recvmsg and libuv only tells us when. */
int ms_channel_open(uv_loop_t* loop, int fd, const ms_channel_cb_t* cb,
                    void* arg, ms_channel_t** out) {
  ms_channel_t* ch = calloc(1, sizeof(*ch));
  int err = -ENOMEM;
  if (ch == NULL || (ch->in = malloc(IN_START)) == NULL) goto fail;
  ch->loop = loop;
  ch->fd = fd;
  ch->cb = *cb;
  ch->arg = arg;
  ch->cap = IN_START;
  ch->reading = 1;
  ch->held = -1;
  ch->out_tail = &ch->out_head;
  ch->window_start = uv_now(loop);
  err = uv_poll_init(loop, &ch->poll, fd);
  if (err < 0) goto fail;
  uv_timer_init(loop, &ch->timer);
  ch->poll.data = ch;
  ch->timer.data = ch;
  err = uv_poll_start(&ch->poll, UV_READABLE, poll_cb);
  if (err < 0) {
    ms_channel_close(ch, NULL, NULL); /* closes fd, frees ch later */
    return err;
  }
  ch->events = UV_READABLE;
  *out = ch;
  return 0;

fail:
  if (ch != NULL) free(ch->in);
  free(ch);
  close(fd);
  return err;
}

void ms_channel_get_stats(const ms_channel_t* ch, ms_channel_stats_t* out) {
  *out = ch->stats;
}

static void close_cb(uv_handle_t* h) {
  ms_channel_t* ch = h->data;
  if (--ch->pending_closes > 0) return;
  void (*cb)(void*) = ch->closed_cb;
  void* arg = ch->closed_arg;
  free(ch->in);
  free(ch);
  if (cb != NULL) cb(arg);
}

void ms_channel_close(ms_channel_t* ch, void (*closed_cb)(void* arg),
                      void* arg) {
  ch->closing = 1;
  ch->closed_cb = closed_cb;
  ch->closed_arg = arg;
  ch->pending_closes = 2;
  /* uv_close stops the poll before the fd goes, so epoll never watches a
   * number that close() has freed for reuse. */
  uv_close((uv_handle_t*)&ch->poll, close_cb);
  uv_close((uv_handle_t*)&ch->timer, close_cb);
  close(ch->fd);
  ch->fd = -1;
  while (ch->nfds > 0) close(take_fd(ch));
  drop_output(ch);
}
