/* driver.c: the protocol conformance suite for every child SDK.  It plays
 * memsup's side of docs/protocol.md against a conformance worker built with
 * one SDK (worker_c.c, worker.py, goworker/) and checks what comes back
 * with memsup's own code: frames with memsup_wire_peek(), messages with
 * ms_msg_decode() (channel.c) and states with ms_state_verify() (handoff.c).
 *
 *   conformance [-c CASE] -- WORKER ARGS...    (exit 0 when all cases pass)
 *
 * Each case starts a fresh worker on a socketpair at fd 3 with MEMSUP_FD=3
 * and reads its stdout.  Every conformance worker does the same, so one
 * suite serves all SDKs:
 *   init; print "init active=A"; register a save callback returning
 *   "conformance counter=N\n" (failing when CONF_FAIL_SAVE is set);
 *   restore: print "restore restored N" (counter = N), "restore corrupt"
 *   or "restore none"; counter += 1; gauge "conf.counter" = counter;
 *   ready; print "ready"; checkpoint, print "checkpoint sent|failed";
 *   start the SDK's helper (thread or goroutine); then every 20 ms: when
 *   memsup has gone, print "gone", call report, checkpoint, gauge_set and
 *   process (none may fail the worker), print "after-gone alive".
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "channel.h"
#include "handoff.h"
#include "log.h"
#include "memsup_wire.h"

/* Deadlines only bound waiting (a case passes as soon as the worker
 * answers); they are long because a loaded CI machine can take seconds to
 * start a Python interpreter. */
#define WAIT_MS 10000
#define INTERVAL_MS 50

typedef struct {
  pid_t pid;
  int sock; /* memsup's end of the channel, -1 once closed */
  int out;  /* the worker's stdout */
  uint8_t in[MEMSUP_FRAME_HDR + MEMSUP_FRAME_MAX + 4096];
  size_t nin;
  char lines[16384]; /* everything the worker printed */
  size_t nlines;
  int fds[8]; /* descriptors received, oldest first (memsup's queue) */
  int nfds;
  int eof;
  char raw[512]; /* payload of the last message, for failure reports */
  int stats;     /* stats messages seen */
  double gauge;  /* last conf.counter gauge */
  uint64_t allocated;
  uint64_t asked[16]; /* seqs of the save and purge requests sent */
  int nasked;
} worker_t;

static char* const* worker_argv;
static char failure[1024];
static int failed;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Records the first failure of a case; later checks of the case still run
 * but say nothing, so the report names the cause, not its echoes. */
__attribute__((format(printf, 1, 2))) static int fail(const char* fmt, ...) {
  if (!failed) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(failure, sizeof(failure), fmt, ap);
    va_end(ap);
  }
  failed = 1;
  return -1;
}

#define CHECK(cond, ...)                   \
  do {                                     \
    if (!(cond)) return fail(__VA_ARGS__); \
  } while (0)

static int start(worker_t* w, const char* const* env_extra, int channel) {
  int sv[2] = {-1, -1}, pipefd[2];
  memset(w, 0, sizeof(*w));
  w->sock = -1;
  w->out = -1;
  if (channel && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return fail("socketpair: %s", strerror(errno));
  if (pipe2(pipefd, O_CLOEXEC) < 0) return fail("pipe: %s", strerror(errno));
  fflush(NULL);
  w->pid = fork();
  if (w->pid == 0) {
    if (dup2(pipefd[1], 1) < 0) _exit(111);
    if (channel) {
      if (dup2(sv[1], 3) < 0) _exit(111);
      setenv(MEMSUP_FD_ENV, "3", 1);
    } else {
      close(3);
      unsetenv(MEMSUP_FD_ENV);
    }
    for (int i = 0; env_extra && env_extra[i]; i++) putenv((char*)env_extra[i]);
    execvp(worker_argv[0], worker_argv);
    dprintf(2, "conformance: exec %s: %s\n", worker_argv[0], strerror(errno));
    _exit(127);
  }
  close(pipefd[1]);
  if (channel) close(sv[1]);
  w->out = pipefd[0];
  w->sock = sv[0];
  if (w->pid < 0) return fail("fork: %s", strerror(errno));
  fcntl(w->out, F_SETFL, O_NONBLOCK);
  return 0;
}

static void stop(worker_t* w) {
  if (w->pid > 0) {
    kill(w->pid, SIGKILL);
    waitpid(w->pid, NULL, 0);
  }
  if (w->sock >= 0) close(w->sock);
  if (w->out >= 0) close(w->out);
  w->pid = 0;
  w->sock = w->out = -1;
  w->nfds = 0;
  for (int i = 0; i < w->nfds; i++) close(w->fds[i]);
}

static void read_out(worker_t* w) {
  ssize_t n;
  while (w->nlines < sizeof(w->lines) - 1 &&
         (n = read(w->out, w->lines + w->nlines,
                   sizeof(w->lines) - 1 - w->nlines)) > 0)
    w->nlines += (size_t)n;
  w->lines[w->nlines] = '\0';
}

/* Waits until the worker printed a line starting with prefix. */
static int wait_line(worker_t* w, const char* line, int ms) {
  char needle[128];
  snprintf(needle, sizeof(needle), "%s\n", line);
  for (int64_t end = now_ms() + ms;;) {
    read_out(w);
    if (strncmp(w->lines, needle, strlen(needle)) == 0) return 0;
    char nl_needle[130];
    snprintf(nl_needle, sizeof(nl_needle), "\n%s", needle);
    if (strstr(w->lines, nl_needle)) return 0;
    if (now_ms() >= end)
      return fail("worker did not print \"%s\"; it printed:\n%s", line,
                  w->lines);
    sleep_ms(5);
  }
}

/* Reads what the channel holds, waiting up to ms; keeps descriptors in
 * the queue.  Returns bytes read, 0 on timeout, -1 at end of channel. */
static int recv_some(worker_t* w, int ms) {
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(8 * sizeof(int))];
  } cm;
  struct pollfd p = {.fd = w->sock, .events = POLLIN};
  if (w->eof) return -1;
  if (poll(&p, 1, ms) <= 0) return 0;
  struct iovec iov = {w->in + w->nin, sizeof(w->in) - w->nin};
  struct msghdr mh = {.msg_iov = &iov,
                      .msg_iovlen = 1,
                      .msg_control = cm.buf,
                      .msg_controllen = sizeof(cm.buf)};
  ssize_t n = recvmsg(w->sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&mh); n >= 0 && c;
       c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (w->nfds < 8)
        w->fds[w->nfds++] = fd;
      else
        close(fd);
    }
  }
  if (n <= 0) {
    w->eof = 1;
    return -1;
  }
  w->nin += (size_t)n;
  return (int)n;
}

/* The next message the worker sent, decoded by memsup's decoder, waiting
 * up to ms.  A state takes the oldest queued descriptor (*fd, else -1).
 * Returns 1 with a message, 0 on timeout, -1 at end of channel; a frame
 * memsup would reject fails the case. */
static int next_msg(worker_t* w, int ms, ms_msg_t* msg, int* fd) {
  int64_t end = now_ms() + ms;
  *fd = -1;
  for (;;) {
    uint32_t len = 0;
    uint8_t version = 0;
    memsup_wire_status_t s = memsup_wire_peek(w->in, w->nin, &len, &version);
    if (s == MEMSUP_WIRE_FRAME) {
      size_t n = len < sizeof(w->raw) - 1 ? len : sizeof(w->raw) - 1;
      memcpy(w->raw, w->in + MEMSUP_FRAME_HDR, n);
      w->raw[n] = '\0';
      int err = ms_msg_decode((char*)w->in + MEMSUP_FRAME_HDR, len, msg);
      memmove(w->in, w->in + MEMSUP_FRAME_HDR + len,
              w->nin - MEMSUP_FRAME_HDR - len);
      w->nin -= MEMSUP_FRAME_HDR + len;
      if (err) return fail("memsup rejects the worker's message: %s", w->raw);
      /* An answer names a request memsup made (0: a checkpoint). */
      if ((msg->type == MS_MSG_STATE || msg->type == MS_MSG_SAVE_FAILED ||
           msg->type == MS_MSG_PURGED) &&
          msg->seq != 0) {
        int k = 0;
        while (k < w->nasked && w->asked[k] != msg->seq) k++;
        if (k == w->nasked)
          return fail("worker answered a request never made: %s", w->raw);
      }
      if (msg->type == MS_MSG_STATE && w->nfds > 0) {
        *fd = w->fds[0];
        memmove(w->fds, w->fds + 1, (size_t)--w->nfds * sizeof(int));
      }
      if (msg->type == MS_MSG_STATS) {
        w->stats++;
        w->allocated = msg->allocated;
        for (size_t i = 0; i < msg->ngauges; i++)
          if (strcmp(msg->gauges[i].name, "conf.counter") == 0)
            w->gauge = msg->gauges[i].value;
      }
      return 1;
    }
    if (s != MEMSUP_WIRE_NEED_MORE)
      return fail("worker sent a bad frame header (status %d, version %u)",
                  (int)s, version);
    int left = (int)(end - now_ms());
    if (left <= 0) return 0;
    if (recv_some(w, left) < 0) return -1;
  }
}

/* Waits for a message of type (and seq, when seq >= 0); others are
 * skipped (stats are counted).  The caller owns *fd. */
static int expect(worker_t* w, ms_msg_type_t type, long long seq, ms_msg_t* msg,
                  int* fd, const char* what) {
  int64_t end = now_ms() + WAIT_MS;
  for (;;) {
    int left = (int)(end - now_ms());
    int r = left > 0 ? next_msg(w, left, msg, fd) : 0;
    if (r < 0 && failed) return -1;
    if (r < 0) return fail("channel closed while waiting for %s", what);
    if (r == 0) return fail("no %s within %d ms", what, WAIT_MS);
    if (msg->type == type && (seq < 0 || msg->seq == (uint64_t)seq)) return 0;
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
}

static int send_raw(worker_t* w, const void* buf, size_t len, int pass_fd) {
  ssize_t n = memsup_wire_send(w->sock, buf, len, pass_fd, 0);
  CHECK(n == (ssize_t)len, "send to worker: %s",
        strerror(n < 0 ? (int)-n : EIO));
  return 0;
}

/* Sends a JSON frame built from a printf format. */
__attribute__((format(printf, 3, 4))) static int send_json(worker_t* w,
                                                           int pass_fd,
                                                           const char* fmt,
                                                           ...) {
  uint8_t buf[4096];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf((char*)buf + MEMSUP_FRAME_HDR,
                    sizeof(buf) - MEMSUP_FRAME_HDR, fmt, ap);
  va_end(ap);
  memsup_wire_header(buf, (size_t)n);
  return send_raw(w, buf, MEMSUP_FRAME_HDR + (size_t)n, pass_fd);
}

/* Sends memsup's request t ("save" or "purge") with seq. */
static int ask(worker_t* w, const char* t, int seq) {
  if (w->nasked < 16) w->asked[w->nasked++] = (uint64_t)seq;
  return send_json(w, -1, "{\"t\":\"%s\",\"seq\":%d}", t, seq);
}

/* The hello, checked: v 1, the worker's pid, an allocator, an sdk. */
static int take_hello(worker_t* w) {
  ms_msg_t m;
  int fd, r = next_msg(w, WAIT_MS, &m, &fd);
  if (fd >= 0) close(fd);
  if (r <= 0 && failed) return -1;
  CHECK(r > 0, "no hello within %d ms", WAIT_MS);
  /* The worker speaks first, and first of all it says hello. */
  CHECK(m.type == MS_MSG_HELLO, "first message is not hello: %s", w->raw);
  CHECK(m.version == 1, "hello v %d", m.version);
  CHECK(m.pid == w->pid, "hello pid %ld, worker is %d", m.pid, (int)w->pid);
  CHECK(m.allocator[0] != '\0', "hello without allocator: %s", w->raw);
  cJSON* j = cJSON_Parse(w->raw);
  int has_sdk = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "sdk"));
  cJSON_Delete(j);
  CHECK(has_sdk, "hello without sdk version: %s", w->raw);
  return 0;
}

static const char welcome_fmt[] =
    "{\"t\":\"welcome\",\"v\":%d,\"gen\":1,\"interval_ms\":%d,"
    "\"metric\":\"footprint\",\"limit\":134217728,\"soft_limit\":0,"
    "\"state\":%s%s}";

/* Starts a worker and completes the handshake; state is the welcome's
 * state member and state_fd its memfd (or -1). */
static int handshake(worker_t* w, const char* state, int state_fd,
                     const char* const* env) {
  if (start(w, env, 1) || take_hello(w)) return -1;
  return send_json(w, state_fd, welcome_fmt, 1, INTERVAL_MS, state, "");
}

static int expect_ready(worker_t* w, const char* restore) {
  ms_msg_t m;
  int fd;
  if (expect(w, MS_MSG_READY, -1, &m, &fd, "ready")) return -1;
  CHECK(strcmp(m.text, restore) == 0, "ready says restore \"%s\", not \"%s\"",
        m.text, restore);
  CHECK((m.restored_unix_us > 0) == (strcmp(restore, "restored") == 0),
        "ready restored_unix_us %llu with restore \"%s\"",
        (unsigned long long)m.restored_unix_us, restore);
  return 0;
}

/* A state message with its memfd, verified the way memsup does, holding
 * "conformance counter=N\n". */
static int expect_state(worker_t* w, long long seq, const char* kind,
                        long long counter) {
  ms_msg_t m;
  int fd, err;
  char want[64], got[64] = {0};
  if (expect(w, MS_MSG_STATE, seq, &m, &fd, kind)) return -1;
  CHECK(strcmp(m.kind, kind) == 0, "state kind \"%s\", not \"%s\"", m.kind,
        kind);
  CHECK(fd >= 0, "state %s arrived without a descriptor", kind);
  err = ms_state_verify(fd, m.bytes, m.crc32c, 1 << 30);
  int n = snprintf(want, sizeof(want), "conformance counter=%lld\n", counter);
  ssize_t r = pread(fd, got, sizeof(got) - 1, 0);
  close(fd);
  CHECK(err == 0, "memsup rejects the %s state: %s (%s)", kind, strerror(-err),
        w->raw);
  CHECK(r == n && m.bytes == (uint64_t)n && strcmp(got, want) == 0,
        "%s state holds \"%s\", expected \"%s\"", kind, got, want);
  return 0;
}

/* ---- the cases ---------------------------------------------------------- */

static int case_handshake(worker_t* w) {
  if (handshake(w, "null", -1, NULL) ||
      wait_line(w, "init active=1", WAIT_MS) ||
      wait_line(w, "restore none", WAIT_MS))
    return -1;
  return expect_ready(w, "none");
}

static int case_stats_and_gauges(worker_t* w) {
  ms_msg_t m;
  int fd;
  if (handshake(w, "null", -1, NULL) || expect_ready(w, "none")) return -1;
  /* ready is preceded by a stats report; more follow every interval. */
  int before = w->stats;
  CHECK(before >= 1, "no stats before ready");
  int64_t end = now_ms() + WAIT_MS;
  while (w->stats < before + 3 && now_ms() < end) {
    if (next_msg(w, 100, &m, &fd) < 0) return fail("channel closed");
    if (fd >= 0) close(fd);
  }
  CHECK(w->stats >= before + 3, "only %d stats in %d ms at interval_ms %d",
        w->stats - before, WAIT_MS, INTERVAL_MS);
  CHECK(w->allocated > 0, "stats heap.allocated is 0: %s", w->raw);
  CHECK(w->gauge == 1, "gauge conf.counter is %g, not 1", w->gauge);
  return 0;
}

static int case_checkpoint(worker_t* w) {
  if (handshake(w, "null", -1, NULL) || expect_ready(w, "none")) return -1;
  return expect_state(w, 0, "checkpoint", 1) ||
         wait_line(w, "checkpoint sent", WAIT_MS);
}

static int case_save(worker_t* w) {
  if (handshake(w, "null", -1, NULL) || expect_ready(w, "none")) return -1;
  if (ask(w, "save", 7)) return -1;
  return expect_state(w, 7, "save", 1);
}

static int case_save_failed(worker_t* w) {
  static const char* const env[] = {"CONF_FAIL_SAVE=1", NULL};
  ms_msg_t m;
  int fd;
  if (handshake(w, "null", -1, env) || expect_ready(w, "none") ||
      wait_line(w, "checkpoint failed", WAIT_MS))
    return -1;
  if (ask(w, "save", 8)) return -1;
  if (expect(w, MS_MSG_SAVE_FAILED, 8, &m, &fd, "save_failed 8")) return -1;
  CHECK(m.text[0] != '\0', "save_failed without an error: %s", w->raw);
  return 0;
}

static int case_restore(worker_t* w) {
  static const char text[] = "conformance counter=41\n";
  char state[128];
  int fd = ms_state_memfd(text, sizeof(text) - 1);
  CHECK(fd >= 0, "memfd: %s", strerror(-fd));
  snprintf(state, sizeof(state),
           "{\"bytes\":%zu,\"crc32c\":%u,\"kind\":\"save\"}", sizeof(text) - 1,
           memsup_crc32c(0, text, sizeof(text) - 1));
  int err = handshake(w, state, fd, NULL);
  close(fd);
  if (err || wait_line(w, "restore restored 41", WAIT_MS) ||
      expect_ready(w, "restored"))
    return -1;
  if (ask(w, "save", 3)) return -1;
  return expect_state(w, 3, "save", 42);
}

/* The bytes fail their CRC: the worker must not use them. */
static int case_corrupt_state(worker_t* w) {
  static const char text[] = "conformance counter=41\n";
  char state[128];
  int fd = ms_state_memfd(text, sizeof(text) - 1);
  CHECK(fd >= 0, "memfd: %s", strerror(-fd));
  snprintf(state, sizeof(state),
           "{\"bytes\":%zu,\"crc32c\":%u,\"kind\":\"save\"}", sizeof(text) - 1,
           memsup_crc32c(0, text, sizeof(text) - 1) ^ 1u);
  int err = handshake(w, state, fd, NULL);
  close(fd);
  if (err || wait_line(w, "restore corrupt", WAIT_MS) ||
      expect_ready(w, "corrupt"))
    return -1;
  if (ask(w, "save", 4)) return -1;
  return expect_state(w, 4, "save", 1);
}

/* A state announced without its memfd, or of the wrong size. */
static int case_state_without_fd_or_wrong_size(worker_t* w) {
  if (handshake(w, "{\"bytes\":5,\"crc32c\":1,\"kind\":\"save\"}", -1, NULL) ||
      wait_line(w, "restore corrupt", WAIT_MS) || expect_ready(w, "corrupt"))
    return -1;
  stop(w);
  static const char text[] = "conformance counter=41\n";
  char state[128];
  int fd = ms_state_memfd(text, sizeof(text) - 1);
  CHECK(fd >= 0, "memfd: %s", strerror(-fd));
  snprintf(state, sizeof(state),
           "{\"bytes\":%zu,\"crc32c\":%u,\"kind\":\"disk\"}", sizeof(text),
           memsup_crc32c(0, text, sizeof(text) - 1));
  int err = handshake(w, state, fd, NULL);
  close(fd);
  if (err || wait_line(w, "restore corrupt", WAIT_MS)) return -1;
  return expect_ready(w, "corrupt");
}

static int case_purge(worker_t* w) {
  ms_msg_t m;
  int fd;
  if (handshake(w, "null", -1, NULL) || expect_ready(w, "none")) return -1;
  if (ask(w, "purge", 5)) return -1;
  if (expect(w, MS_MSG_PURGED, 5, &m, &fd, "purged 5")) return -1;
  cJSON* j = cJSON_Parse(w->raw);
  int ok =
      cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "resident_before")) &&
      cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "resident_after"));
  cJSON_Delete(j);
  CHECK(ok, "purged without resident_before/after: %s", w->raw);
  /* memsup judges a purge by the figures that follow it. */
  return expect(w, MS_MSG_STATS, -1, &m, &fd, "stats after purged");
}

/* Everything a newer memsup might send, then a save that must still be
 * answered, and only it. */
static int case_unknown_types_and_fields(worker_t* w) {
  uint8_t buf[256];
  static const char fake[] = "{\"t\":\"save\",\"seq\":99}";
  ms_msg_t m;
  int fd;
  if (start(w, NULL, 1) || take_hello(w)) return -1;
  if (send_json(w, -1, welcome_fmt, 1, INTERVAL_MS, "null",
                ",\"future\":{\"x\":[1,2,{\"y\":null}]},\"extra\":\"z\"") ||
      wait_line(w, "init active=1", WAIT_MS) || expect_ready(w, "none"))
    return -1;
  if (send_json(w, -1, "{\"t\":\"frobnicate\",\"seq\":1,\"data\":[true]}"))
    return -1;
  /* A frame of an unknown kind whose payload looks like a save: skipped by
   * its length, so never answered. */
  memsup_wire_header(buf, sizeof(fake) - 1);
  buf[3] = 'B';
  memcpy(buf + MEMSUP_FRAME_HDR, fake, sizeof(fake) - 1);
  if (send_raw(w, buf, MEMSUP_FRAME_HDR + sizeof(fake) - 1, -1)) return -1;
  /* Garbage, then a payload that is not JSON. */
  if (send_raw(w, "xyz\0\1", 5, -1)) return -1;
  memsup_wire_header(buf, 9);
  memcpy(buf + MEMSUP_FRAME_HDR, "not json!", 9);
  if (send_raw(w, buf, MEMSUP_FRAME_HDR + 9, -1)) return -1;
  w->asked[w->nasked++] = 11;
  if (send_json(w, -1,
                "{\"t\":\"save\",\"seq\":11,\"why\":\"limit\",\"more\":{}}"))
    return -1;
  if (expect_state(w, 11, "save", 1)) return -1;
  /* Nothing answers the fake save. */
  int64_t end = now_ms() + 300;
  while (now_ms() < end) {
    int r = next_msg(w, 50, &m, &fd);
    if (fd >= 0) close(fd);
    if (r < 0) return fail("channel closed after unknown input");
    CHECK(!(r == 1 && m.type == MS_MSG_STATE), "worker answered %s", w->raw);
  }
  return 0;
}

/* Frames split at every byte and merged into one write. */
static int case_split_and_merged_frames(worker_t* w) {
  uint8_t buf[256];
  ms_msg_t m;
  int fd;
  if (handshake(w, "null", -1, NULL) || expect_ready(w, "none")) return -1;
  int n = snprintf((char*)buf + MEMSUP_FRAME_HDR, 64,
                   "{\"t\":\"purge\",\"seq\":21}");
  memsup_wire_header(buf, (size_t)n);
  w->asked[w->nasked++] = 21;
  w->asked[w->nasked++] = 22;
  w->asked[w->nasked++] = 23;
  for (int i = 0; i < MEMSUP_FRAME_HDR + n; i++) {
    if (send_raw(w, buf + i, 1, -1)) return -1;
    sleep_ms(2);
  }
  if (expect(w, MS_MSG_PURGED, 21, &m, &fd, "purged 21")) return -1;
  size_t len = 0;
  for (int seq = 22; seq <= 23; seq++) {
    n = snprintf((char*)buf + len + MEMSUP_FRAME_HDR, 64,
                 seq == 22 ? "{\"t\":\"purge\",\"seq\":%d}"
                           : "{\"t\":\"save\",\"seq\":%d}",
                 seq);
    memsup_wire_header(buf + len, (size_t)n);
    len += MEMSUP_FRAME_HDR + (size_t)n;
  }
  if (send_raw(w, buf, len, -1)) return -1;
  if (expect(w, MS_MSG_PURGED, 22, &m, &fd, "purged 22")) return -1;
  return expect_state(w, 23, "save", 1);
}

/* A welcome of another version: the SDK turns itself off, the worker runs. */
static int case_welcome_other_version(worker_t* w) {
  ms_msg_t m;
  int fd;
  if (start(w, NULL, 1) || take_hello(w)) return -1;
  if (send_json(w, -1, welcome_fmt, 2, INTERVAL_MS, "null", "")) return -1;
  if (wait_line(w, "init active=0", WAIT_MS) || wait_line(w, "ready", WAIT_MS))
    return -1;
  int r = next_msg(w, WAIT_MS, &m, &fd);
  if (fd >= 0) close(fd);
  CHECK(r < 0, "worker went on talking after a version-2 welcome: %s", w->raw);
  CHECK(waitpid(w->pid, NULL, WNOHANG) == 0, "worker exited");
  return 0;
}

/* memsup goes away: the worker notices, every call stays harmless, and
 * it keeps running. */
static int case_memsup_gone(worker_t* w) {
  if (handshake(w, "null", -1, NULL) || expect_ready(w, "none")) return -1;
  close(w->sock);
  w->sock = -1;
  if (wait_line(w, "gone", WAIT_MS) ||
      wait_line(w, "after-gone alive", WAIT_MS))
    return -1;
  sleep_ms(200);
  CHECK(waitpid(w->pid, NULL, WNOHANG) == 0, "worker died after memsup left");
  return 0;
}

/* memsup never answers the hello: init gives up (2 s) and the worker runs. */
static int case_no_welcome(worker_t* w) {
  if (start(w, NULL, 1) || take_hello(w)) return -1;
  if (wait_line(w, "init active=0", WAIT_MS) || wait_line(w, "ready", WAIT_MS))
    return -1;
  CHECK(waitpid(w->pid, NULL, WNOHANG) == 0, "worker exited");
  return 0;
}

/* Not started by memsup: everything is a no-op and the worker runs. */
static int case_without_memsup(worker_t* w) {
  if (start(w, NULL, 0)) return -1;
  if (wait_line(w, "init active=0", WAIT_MS) ||
      wait_line(w, "restore none", WAIT_MS) || wait_line(w, "ready", WAIT_MS))
    return -1;
  sleep_ms(100);
  CHECK(waitpid(w->pid, NULL, WNOHANG) == 0, "worker exited");
  return 0;
}

static const struct {
  const char* name;
  int (*fn)(worker_t*);
} cases[] = {
    {"handshake", case_handshake},
    {"stats_and_gauges", case_stats_and_gauges},
    {"checkpoint", case_checkpoint},
    {"save", case_save},
    {"save_failed", case_save_failed},
    {"restore", case_restore},
    {"corrupt_state", case_corrupt_state},
    {"state_without_fd_or_wrong_size", case_state_without_fd_or_wrong_size},
    {"purge", case_purge},
    {"unknown_types_and_fields", case_unknown_types_and_fields},
    {"split_and_merged_frames", case_split_and_merged_frames},
    {"welcome_other_version", case_welcome_other_version},
    {"memsup_gone", case_memsup_gone},
    {"no_welcome", case_no_welcome},
    {"without_memsup", case_without_memsup},
};

int main(int argc, char** argv) {
  const char* only = NULL;
  int i = 1, nfail = 0, nrun = 0;
  if (i + 1 < argc && strcmp(argv[i], "-c") == 0) {
    only = argv[i + 1];
    i += 2;
  }
  if (i >= argc || strcmp(argv[i], "--") != 0 || i + 1 >= argc) {
    fprintf(stderr, "usage: conformance [-c CASE] -- WORKER [ARGS...]\n");
    return 100;
  }
  worker_argv = argv + i + 1;
  signal(SIGPIPE, SIG_IGN);
  ms_log_set_verbosity(-1);
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
    worker_t w;
    if (only && strcmp(only, cases[k].name) != 0) continue;
    failed = 0;
    cases[k].fn(&w);
    stop(&w);
    nrun++;
    if (failed) {
      nfail++;
      printf("FAIL %s: %s\n", cases[k].name, failure);
    } else {
      printf("ok   %s\n", cases[k].name);
    }
    fflush(stdout);
  }
  printf("%d of %d cases passed (%s)\n", nrun - nfail, nrun, worker_argv[0]);
  return nfail || nrun == 0 ? 1 : 0;
}
