/* channel.c: memsup's end of the worker channel.  Owns the parent end of
 * the socketpair, its uv_poll_t, a frame reader (wire.c: the reassembly
 * buffer and descriptors that arrived with SCM_RIGHTS), the flood window
 * and the queue of unsent frames.  What a message means (restart, handoff,
 * stats) is left to child.c and its callers.
 */
#include "channel.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "memsup_wire.h"

#define BATCH_FRAMES 256 /* frames decoded per callback */
/* What memsup reads from one worker per window, whatever the bytes are
 * (docs/protocol.md, "Floods"): reaching either budget stops reading until
 * the window ends, which bounds memsup's CPU per worker to about 1 % of a
 * core.  128 KiB per 100 ms holds the largest frame twice over and 12
 * times what a worker with 64 gauges sends at the default 50 ms. */
#define WINDOW_MS 100
#define WINDOW_BYTES (128 * 1024)
#define WINDOW_FRAMES 500
#define LOG_MAX 5 /* lines per kind of problem, then one "suppressed" */

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
  uv_timer_t timer; /* end of a flood pause; resuming a batch cut short */
  int fd;
  int events; /* what poll is started with; 0 when stopped */
  ms_channel_cb_t cb;
  void* arg;
  /* input: the frame reader memsup shares with the SDK (wire.c) */
  memsup_reader_t rd;
  int reading, paused;
  uint64_t seen_lost, seen_truncated; /* rd's counters already reported */
  ms_msg_t msg[2]; /* decode target and a held-back stats message */
  int cur, held;   /* indexes into msg; held is -1 when none */
  uint64_t window_start, window_bytes, window_frames;
  int flood_logged[2]; /* frames, bytes */
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

int ms_msg_decode(const char* payload, size_t len, ms_msg_t* out) {
  return memsup_msg_decode(payload, len, MEMSUP_FROM_WORKER, out);
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
static int pump(ms_channel_t* ch, int budgeted);
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
  update_poll(ch);
  if (!ch->closing && ch->cb.on_eof != NULL) ch->cb.on_eof(ch, ch->arg);
}

static void timer_cb(uv_timer_t* t) {
  ms_channel_t* ch = t->data;
  ch->paused = 0;
  update_poll(ch);
  pump(ch, 1);
}

/* ---- the flood bound --------------------------------------------------- */

/* Starts a new window when the current one has ended. */
static void roll_window(ms_channel_t* ch) {
  uint64_t now = uv_now(ch->loop);
  if (now - ch->window_start < WINDOW_MS) return;
  ch->window_start = now;
  ch->window_bytes = 0;
  ch->window_frames = 0;
}

/* Stops reading until the window ends.  What memsup spends on a worker is
 * then bounded by what it reads per window, whatever the worker writes:
 * garbage, one 4 GiB "frame" skipped by its length, 64 KiB stats or tiny
 * frames.  Meanwhile the worker's sends block, or fail with EAGAIN. */
static void pause_reading(ms_channel_t* ch, int bytes) {
  uint64_t now = uv_now(ch->loop), end = ch->window_start + WINDOW_MS;
  if (ch->paused) return;
  if (!ch->flood_logged[bytes]) {
    if (bytes)
      ms_warn("byte flood from worker: reading paused (more than %d KiB in "
              "%d ms; further pauses not logged)", WINDOW_BYTES / 1024,
              WINDOW_MS);
    else
      ms_warn("stats flood from worker: reading paused (more than %d frames "
              "in %d ms; further pauses not logged)", WINDOW_FRAMES,
              WINDOW_MS);
  }
  ch->flood_logged[bytes] = 1;
  ch->paused = 1;
  update_poll(ch);
  uv_timer_start(&ch->timer, timer_cb, end > now ? end - now : 0, 0);
}

/* ---- input ------------------------------------------------------------ */

static void flush_stats(ms_channel_t* ch) {
  int i = ch->held;
  if (i < 0 || ch->closing) return;
  ch->held = -1;
  ch->cb.on_message(ch, &ch->msg[i], -1, ch->arg);
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
  ch->cb.on_message(ch, m,
                    m->type == MS_MSG_STATE ? memsup_reader_take_fd(&ch->rd)
                                            : -1,
                    ch->arg);
}

/* Handles the events of the bytes buffered so far, at most budget frames
 * (and, when budgeted, at most WINDOW_FRAMES per window).  Returns the
 * budget left.  The reassembly itself is the shared reader's. */
static size_t drain(ms_channel_t* ch, size_t budget, int budgeted) {
  memsup_frame_t f;
  while (ch->reading && !ch->closing && !ch->paused && budget > 0) {
    memsup_read_t ev = memsup_reader_next(&ch->rd, &f);
    if (ev == MEMSUP_READ_MORE) break;
    switch (ev) {
      case MEMSUP_READ_GARBAGE:
        ch->stats.bad_frames++;
        complain(ch, BAD_FRAME, "garbage on worker channel: resyncing");
        continue;
      case MEMSUP_READ_BAD_VERSION:
      case MEMSUP_READ_STOPPED:
        ms_warn("worker speaks protocol version %u, memsup speaks %d: channel "
                "ignored", f.version, MEMSUP_WIRE_VERSION);
        stop_reading(ch);
        return budget;
      case MEMSUP_READ_TOO_BIG:
        ch->stats.bad_frames++;
        complain(ch, BAD_FRAME, "frame of %u bytes from worker (max %d): "
                 "skipped", f.len, MEMSUP_FRAME_MAX);
        continue;
      default:
        break;
    }
    budget--;
    ch->stats.frames++;
    if (ev == MEMSUP_READ_UNKNOWN_KIND) {
      ch->stats.unknown++;
      complain(ch, BAD_TYPE, "frame of unknown kind 0x%02x from worker: "
               "skipped", f.kind);
    } else {
      handle_frame(ch, f.payload, f.len);
    }
    if (budgeted && ++ch->window_frames >= WINDOW_FRAMES) pause_reading(ch, 0);
  }
  flush_stats(ch);
  return budget;
}

/* Counts what the last receive did with descriptors, and says so. */
static void note_fds(ms_channel_t* ch) {
  if (ch->rd.lost_fds > ch->seen_lost)
    complain(ch, LOST_FD, "more than %d unclaimed descriptors from worker: "
             "closed one", MEMSUP_FD_QUEUE);
  if (ch->rd.truncated > ch->seen_truncated)
    complain(ch, LOST_FD, "descriptors from worker truncated (MSG_CTRUNC)");
  ch->stats.lost_fds += (ch->rd.lost_fds - ch->seen_lost) +
                        (ch->rd.truncated - ch->seen_truncated);
  ch->seen_lost = ch->rd.lost_fds;
  ch->seen_truncated = ch->rd.truncated;
}

/* One readable event: finish frames left from a cut batch, read once, and
 * handle what came in, BATCH_FRAMES frames at most.  A batch cut at the
 * limit resumes from a zero timer so other handles get their turn; the
 * poll alone would not fire again if the socket is already empty.
 * Unbudgeted (a dead worker's last bytes) the window does not apply.
 * Returns 1 when there may be more to read, 0 when not or reading ended. */
static int pump(ms_channel_t* ch, int budgeted) {
  size_t budget;
  ssize_t n = 0;
  if (budgeted) roll_window(ch);
  budget = drain(ch, BATCH_FRAMES, budgeted);
  if (budget > 0 && ch->reading && !ch->paused && !ch->closing) {
    size_t max = 0;
    if (budgeted) {
      if (ch->window_bytes >= WINDOW_BYTES) {
        pause_reading(ch, 1);
        return 0;
      }
      max = WINDOW_BYTES - ch->window_bytes;
    }
    n = memsup_reader_recv(&ch->rd, ch->fd, max, 0);
    note_fds(ch);
    if (n > 0) {
      ch->stats.bytes_in += (uint64_t)n;
      ch->window_bytes += (uint64_t)n;
      budget = drain(ch, budget, budgeted);
    } else if (n == 0 || n == -ECONNRESET) {
      stop_reading(ch);
      return 0;
    } else if (n != -EAGAIN && n != -ENOBUFS) {
      ms_warn("read worker channel: %s", strerror((int)-n));
      stop_reading(ch);
      return 0;
    }
  }
  if (budget == 0 && ch->reading && !ch->paused && !ch->closing)
    uv_timer_start(&ch->timer, timer_cb, 0, 0);
  return (n > 0 || budget == 0) && ch->reading && !ch->closing && !ch->paused;
}

size_t ms_channel_feed(ms_channel_t* ch, const uint8_t* data, size_t n) {
  if (!ch->reading || ch->closing) return 0;
  n = memsup_reader_put(&ch->rd, data, n);
  ch->stats.bytes_in += n;
  drain(ch, SIZE_MAX, 0);
  return ch->reading ? n : 0;
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
    ch->paused = 0;
    while (pump(ch, 0)) continue;
    stop_reading(ch);
    return;
  }
  if (events & UV_WRITABLE) {
    err = flush_out(ch);
    if (err < 0 && err != -EPIPE)
      ms_warn("send to worker: %s", strerror(-err));
  }
  if ((events & UV_READABLE) && !ch->closing) pump(ch, 1);
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
  if (ch == NULL || memsup_reader_init(&ch->rd) < 0) goto fail;
  ch->loop = loop;
  ch->fd = fd;
  ch->cb = *cb;
  ch->arg = arg;
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
  if (ch != NULL) memsup_reader_free(&ch->rd);
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
  memsup_reader_free(&ch->rd);
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
  /* Unclaimed descriptors go now; the buffer, which a callback up the
   * stack may still be reading, goes in close_cb. */
  for (int fd; (fd = memsup_reader_take_fd(&ch->rd)) >= 0;) close(fd);
  drop_output(ch);
}
