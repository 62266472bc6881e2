/* test_sdk.c: the child SDK against a scripted memsup.  Each test forks a
 * worker that runs real SDK calls on its end of a socketpair ($MEMSUP_FD);
 * the test process plays memsup with plain socket I/O and the wire
 * helpers, so both the bytes on the wire and the worker's results are
 * checked; every frame must also pass memsup's own decoder.  A worker reports a failed check by its exit status.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "channel.h"
#include "memsup.h"
#include "memsup_wire.h"

/* Checks inside the forked worker: print where, exit non-zero. */
#define CHECK(c)                                                       \
  do {                                                                 \
    if (!(c)) {                                                        \
      fprintf(stderr, "worker check failed, line %d: %s\n", __LINE__, #c); \
      return 1;                                                        \
    }                                                                  \
  } while (0)

/* ASan replaces malloc, and its allocator leaves mallinfo2() at zero.
 * gcc says so with __SANITIZE_ADDRESS__, clang with __has_feature. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifdef UNDER_ASAN
#define HEAP_MIN 0
#else
#define HEAP_MIN 1
#endif

#define SAVE_BYTES ((size_t)3 * 1024 * 1024 + 123)

typedef struct {
  int fd;
  pid_t pid;
  size_t n;
  uint8_t buf[MEMSUP_FRAME_HDR + MEMSUP_FRAME_MAX];
  ms_msg_t msg; /* the last frame as memsup decodes it */
} peer_t;

static peer_t peer;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fill(uint8_t* p, size_t off, size_t n) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)((off + i) * 31 + (off + i) / 4093);
}

static int matches(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != (uint8_t)(i * 31 + i / 4093)) return 0;
  return 1;
}

/* A sealed memfd holding n pattern bytes, as memsup would hand over. */
static int state_memfd(size_t n) {
  int fd = memfd_create("test-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  uint8_t* p = malloc(n + 1);
  assert_true(fd >= 0 && p != NULL);
  fill(p, 0, n);
  assert_int_equal(write(fd, p, n), (ssize_t)n);
  assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK |
                                              F_SEAL_GROW | F_SEAL_SEAL), 0);
  free(p);
  return fd;
}

static uint32_t pattern_crc(size_t n) {
  uint8_t* p = malloc(n + 1);
  fill(p, 0, n);
  uint32_t crc = memsup_crc32c(0, p, n);
  free(p);
  return crc;
}

/* Forks a worker running fn with $MEMSUP_FD naming its end.  The worker
 * end is not close-on-exec, so the test sees memsup_init() set it. */
static void start(int (*fn)(void)) {
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  fflush(NULL);
  peer.pid = fork();
  assert_true(peer.pid >= 0);
  if (peer.pid == 0) {
    char num[16];
    close(sv[0]);
    snprintf(num, sizeof(num), "%d", sv[1]);
    setenv(MEMSUP_FD_ENV, num, 1);
    signal(SIGPIPE, SIG_DFL); /* so a stray SIGPIPE would kill the worker */
    alarm(20);                /* watchdog: a hung worker fails the test */
    _exit(fn());
  }
  close(sv[1]);
  fcntl(sv[0], F_SETFD, FD_CLOEXEC);
  peer.fd = sv[0];
  peer.n = 0;
}

/* Closes memsup's end and asserts the worker exited 0 by itself. */
static void finish(void) {
  int status;
  if (peer.fd >= 0) close(peer.fd);
  peer.fd = -1;
  assert_int_equal(waitpid(peer.pid, &status, 0), peer.pid);
  if (WIFSIGNALED(status)) fail_msg("worker killed by signal %d", WTERMSIG(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

static void send_text(const char* json, int pass_fd) {
  size_t len = strlen(json);
  uint8_t frame[MEMSUP_FRAME_HDR + 4096];
  assert_true(len <= 4096);
  assert_int_equal(memsup_wire_header(frame, len), 0);
  memcpy(frame + MEMSUP_FRAME_HDR, json, len);
  assert_int_equal(
      memsup_wire_send(peer.fd, frame, MEMSUP_FRAME_HDR + len, pass_fd, 0),
      (ssize_t)(MEMSUP_FRAME_HDR + len));
}

/* Reads the next frame within timeout_s and returns it parsed (the caller
 * deletes it), with a descriptor that came with it in *fd (or -1). */
static cJSON* recv_json(double timeout_s, int* fd) {
  double deadline = now_s() + timeout_s;
  *fd = -1;
  for (;;) {
    uint32_t len;
    uint8_t ver;
    memsup_wire_status_t st = memsup_wire_peek(peer.buf, peer.n, &len, &ver);
    if (st == MEMSUP_WIRE_FRAME) {
      const char* payload = (char*)peer.buf + MEMSUP_FRAME_HDR;
      cJSON* j = cJSON_ParseWithLength(payload, len);
      assert_non_null(j);
      assert_int_equal(ms_msg_decode(payload, len, &peer.msg), 0);
      peer.n -= MEMSUP_FRAME_HDR + len;
      memmove(peer.buf, peer.buf + MEMSUP_FRAME_HDR + len, peer.n);
      return j;
    }
    assert_int_equal(st, MEMSUP_WIRE_NEED_MORE);
    struct pollfd p = {.fd = peer.fd, .events = POLLIN};
    int left = (int)((deadline - now_s()) * 1000);
    if (left <= 0 || poll(&p, 1, left) <= 0) fail_msg("no frame from worker");
    union {
      struct cmsghdr h;
      char buf[CMSG_SPACE(sizeof(int))];
    } cm;
    struct iovec iov = {peer.buf + peer.n, sizeof(peer.buf) - peer.n};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf)};
    ssize_t n = recvmsg(peer.fd, &mh, MSG_CMSG_CLOEXEC);
    if (n <= 0) fail_msg("worker closed the channel");
    struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
    if (c && c->cmsg_type == SCM_RIGHTS) memcpy(fd, CMSG_DATA(c), sizeof(int));
    peer.n += (size_t)n;
  }
}

static const char* str(const cJSON* j, const char* name) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(j, name);
  return cJSON_IsString(v) ? v->valuestring : "(missing)";
}

static double num(const cJSON* j, const char* name) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(j, name);
  return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* Waits for a message of type t, skipping periodic stats reports.  The
 * wait only catches a worker that never answers: generous, because a
 * loaded machine (and ASan) can take seconds to fill and checksum the
 * 256 MiB state of checkpoint_of_256_mib_arrives_whole. */
static cJSON* expect(const char* t, int* fd) {
  for (;;) {
    cJSON* j = recv_json(60, fd);
    if (strcmp(str(j, "t"), t) == 0) return j;
    if (strcmp(str(j, "t"), "stats") != 0) fail_msg("want %s, got %s", t, str(j, "t"));
    cJSON_Delete(j);
    if (*fd >= 0) close(*fd);
  }
}

static void expect_ready(const char* restore) {
  int fd;
  cJSON* j = expect("ready", &fd);
  assert_string_equal(str(j, "restore"), restore);
  assert_int_equal(fd, -1);
  cJSON_Delete(j);
}

/* Reads hello, checks it, and answers with welcome (state_json may be
 * "null"); state_fd, when >= 0, travels with the welcome. */
static void handshake(const char* state_json, int state_fd) {
  char welcome[512];
  int fd;
  cJSON* hello = expect("hello", &fd);
  assert_int_equal(num(hello, "v"), 1);
  assert_int_equal(num(hello, "pid"), peer.pid);
  assert_string_equal(str(hello, "allocator"), "glibc");
  assert_string_equal(str(hello, "sdk"), "0.1.0");
  assert_int_equal(peer.msg.type, MS_MSG_HELLO);
  assert_int_equal(peer.msg.pid, peer.pid);
  cJSON_Delete(hello);
  snprintf(welcome, sizeof(welcome),
           "{\"t\":\"welcome\",\"v\":1,\"gen\":2,\"interval_ms\":20,"
           "\"metric\":\"footprint\",\"limit\":134217728,\"soft_limit\":0,"
           "\"state\":%s}", state_json);
  send_text(welcome, state_fd);
  if (state_fd >= 0) close(state_fd);
}

/* Worker side: answer memsup until it goes away. */
static int serve(void) {
  for (;;) {
    struct pollfd p = {.fd = memsup_fd(), .events = POLLIN};
    CHECK(p.fd >= 0);
    poll(&p, 1, memsup_interval_ms());
    int err = memsup_process();
    if (err == -EPIPE) return 0;
    CHECK(err == 0);
  }
}

static int init_ready_serve(void) {
  CHECK(memsup_init() == 0);
  CHECK(memsup_ready() == 0);
  return serve();
}

static void sdk_is_a_noop_without_memsup_fd(void** state) {
  (void)state;
  const void* data = NULL;
  size_t len = 0;
  memsup_heap_t heap;
  unsetenv(MEMSUP_FD_ENV);
  assert_int_equal(memsup_init(), 0);
  assert_int_equal(memsup_active(), 0);
  assert_int_equal(memsup_fd(), -1);
  assert_int_equal(memsup_restore(&data, &len), -ENOENT);
  assert_int_equal(memsup_report(), 0);
  assert_int_equal(memsup_process(), 0);
  assert_int_equal(memsup_checkpoint(), 0);
  assert_int_equal(memsup_ready(), 0);
  assert_int_equal(memsup_start_thread(), 0);
  assert_int_equal(memsup_heap_read(&heap), 0);
  assert_string_equal(heap.allocator, "glibc");
}

static void sdk_refuses_garbage_or_foreign_memsup_fd(void** state) {
  (void)state;
  const char* bad[] = {"", "three", "3x", "-1", "99999999999"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    setenv(MEMSUP_FD_ENV, bad[i], 1);
    assert_int_equal(memsup_init(), -EINVAL);
    assert_int_equal(memsup_active(), 0);
  }
  /* A stale variable naming a file that is not a socket: left alone. */
  int fd = open("/dev/null", O_RDONLY);
  char num[16];
  snprintf(num, sizeof(num), "%d", fd);
  setenv(MEMSUP_FD_ENV, num, 1);
  assert_int_equal(memsup_init(), -ENOTSOCK);
  assert_int_equal(fcntl(fd, F_GETFD), 0); /* still open, flags untouched */
  close(fd);
  setenv(MEMSUP_FD_ENV, "999", 1);
  assert_int_equal(memsup_init(), -EBADF);
  assert_int_equal(memsup_active(), 0);
}

static int restore_pattern_worker(void) {
  const void* data;
  size_t len;
  CHECK(memsup_init() == 0);
  CHECK(memsup_active() == 1);
  CHECK(memsup_interval_ms() == 20);
  CHECK(getenv(MEMSUP_FD_ENV) == NULL);
  CHECK(fcntl(memsup_fd(), F_GETFD) & FD_CLOEXEC);
  CHECK(memsup_restore(&data, &len) == 0);
  CHECK(len == 300000 && matches(data, len));
  CHECK(memsup_ready() == 0);
  CHECK(memsup_restore(&data, &len) == -ENOENT); /* released by ready */
  return serve();
}

static void handshake_restores_the_exact_state_bytes(void** state) {
  (void)state;
  char st[128];
  start(restore_pattern_worker);
  snprintf(st, sizeof(st), "{\"bytes\":300000,\"crc32c\":%u,\"kind\":\"save\"}",
           pattern_crc(300000));
  handshake(st, state_memfd(300000));
  expect_ready("restored");
  finish();
}

static int restore_corrupt_worker(void) {
  const void* data;
  size_t len;
  CHECK(memsup_init() == 0);
  CHECK(memsup_restore(&data, &len) == -EBADMSG);
  CHECK(memsup_ready() == 0);
  return serve();
}

static void restore_reports_corrupt_state_on_crc_mismatch(void** state) {
  (void)state;
  char st[128];
  start(restore_corrupt_worker);
  snprintf(st, sizeof(st), "{\"bytes\":4096,\"crc32c\":%u,\"kind\":\"save\"}",
           pattern_crc(4096) ^ 1);
  handshake(st, state_memfd(4096));
  expect_ready("corrupt");
  finish();
}

static void restore_reports_corrupt_state_on_size_mismatch(void** state) {
  (void)state;
  char st[128];
  start(restore_corrupt_worker);
  snprintf(st, sizeof(st), "{\"bytes\":4097,\"crc32c\":%u,\"kind\":\"save\"}",
           pattern_crc(4096));
  handshake(st, state_memfd(4096));
  expect_ready("corrupt");
  finish();
}

static int restore_empty_worker(void) {
  const void* data = NULL;
  size_t len = 1;
  CHECK(memsup_init() == 0);
  CHECK(memsup_restore(&data, &len) == 0);
  CHECK(data != NULL && len == 0);
  CHECK(memsup_ready() == 0);
  return serve();
}

static void restore_accepts_a_zero_byte_state(void** state) {
  (void)state;
  start(restore_empty_worker);
  handshake("{\"bytes\":0,\"crc32c\":0,\"kind\":\"save\"}", state_memfd(0));
  expect_ready("restored");
  finish();
}

static int restore_none_worker(void) {
  const void* data;
  size_t len;
  CHECK(memsup_init() == 0);
  CHECK(memsup_restore(&data, &len) == -ENOENT);
  CHECK(memsup_ready() == 0);
  return serve();
}

static void welcome_without_state_restores_nothing(void** state) {
  (void)state;
  start(restore_none_worker);
  handshake("null", -1);
  expect_ready("none");
  finish();
}

static int version_worker(void) {
  CHECK(memsup_init() == -EPROTO);
  CHECK(memsup_active() == 0);
  CHECK(memsup_report() == 0); /* inactive, not gone */
  return 0;
}

static void welcome_of_another_version_leaves_sdk_inactive(void** state) {
  (void)state;
  int fd;
  start(version_worker);
  cJSON_Delete(expect("hello", &fd));
  send_text("{\"t\":\"welcome\",\"v\":2,\"state\":null}", -1);
  finish();
}

static int timeout_worker(void) {
  double t0 = now_s();
  CHECK(memsup_init() == -ETIMEDOUT);
  double took = now_s() - t0;
  /* It waited for the welcome (lower bound); the upper bound only says it
   * did not hang, with room for a loaded machine. */
  CHECK(took >= 1.9 && took < 30.0);
  CHECK(memsup_active() == 0);
  return 0;
}

static void init_times_out_without_welcome(void** state) {
  (void)state;
  int fd;
  int status;
  start(timeout_worker);
  cJSON_Delete(expect("hello", &fd));
  /* Keep our end open: the worker must give up by itself. */
  assert_int_equal(waitpid(peer.pid, &status, 0), peer.pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  close(peer.fd);
}

/* Writes the pattern in chunks of awkward sizes, so the buffered path, the
 * buffer-full flush and the direct path for big chunks all run. */
static int save_pattern(memsup_state_t* st, void* arg) {
  (void)arg;
  uint8_t* p = malloc(SAVE_BYTES);
  size_t chunks[] = {1, 4000, 2 * 1024 * 1024, 700 * 1024, SAVE_BYTES};
  size_t off = 0;
  int err = 0;
  if (p == NULL) return -ENOMEM;
  fill(p, 0, SAVE_BYTES);
  for (size_t i = 0; i < 5 && err == 0 && off < SAVE_BYTES; i++) {
    size_t n = chunks[i] < SAVE_BYTES - off ? chunks[i] : SAVE_BYTES - off;
    err = memsup_state_write(st, p + off, n);
    off += n;
  }
  free(p);
  return err;
}

static int save_worker(void) {
  memsup_on_save(save_pattern, NULL);
  return init_ready_serve();
}

/* Expects a state message and checks the memfd: size, seals, bytes, crc. */
static void expect_state(uint64_t seq, const char* kind, size_t bytes) {
  int fd;
  struct stat sb;
  cJSON* j = expect("state", &fd);
  assert_true(fd >= 0);
  assert_int_equal(num(j, "seq"), seq);
  assert_string_equal(str(j, "kind"), kind);
  assert_int_equal(num(j, "bytes"), bytes);
  assert_int_equal(fstat(fd, &sb), 0);
  assert_int_equal(sb.st_size, bytes);
  int seals = fcntl(fd, F_GET_SEALS);
  assert_int_equal(seals & (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW),
                   F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW);
  uint8_t* p = mmap(NULL, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  assert_true(p != MAP_FAILED);
  assert_true(matches(p, bytes));
  assert_int_equal(num(j, "crc32c"), memsup_crc32c(0, p, bytes));
  munmap(p, bytes);
  close(fd);
  cJSON_Delete(j);
}

static void save_request_returns_sealed_memfd_with_matching_crc(void** state) {
  (void)state;
  start(save_worker);
  handshake("null", -1);
  expect_ready("none");
  send_text("{\"t\":\"save\",\"seq\":7}", -1);
  expect_state(7, "save", SAVE_BYTES);
  finish();
}

static void process_reassembles_split_frames_after_garbage(void** state) {
  (void)state;
  const char* save = "{\"t\":\"save\",\"seq\":11}";
  uint8_t frame[64];
  size_t len = strlen(save);
  start(save_worker);
  handshake("null", -1);
  expect_ready("none");
  /* Noise, an unknown type, then a save in three pieces. */
  assert_int_equal(write(peer.fd, "xyzm\x01", 5), 5);
  send_text("{\"t\":\"future\",\"seq\":1}", -1);
  memsup_wire_header(frame, len);
  memcpy(frame + MEMSUP_FRAME_HDR, save, len);
  assert_int_equal(write(peer.fd, frame, 3), 3);
  usleep(30000);
  assert_int_equal(write(peer.fd, frame + 3, 10), 10);
  usleep(30000);
  assert_int_equal(write(peer.fd, frame + 13, MEMSUP_FRAME_HDR + len - 13),
                   (ssize_t)(MEMSUP_FRAME_HDR + len - 13));
  expect_state(11, "save", SAVE_BYTES);
  finish();
}

/* A header announcing more than 64 KiB is skipped by its length, as memsup
 * does: a save frame inside that payload is not acted on. */
static void process_skips_oversized_frame_by_its_length(void** state) {
  (void)state;
  static uint8_t big[MEMSUP_FRAME_HDR + 70000];
  uint8_t inner[64];
  const char* save = "{\"t\":\"save\",\"seq\":99}";
  size_t n = strlen(save);
  start(save_worker);
  handshake("null", -1);
  expect_ready("none");
  memsup_wire_header(inner, n);
  memcpy(inner + MEMSUP_FRAME_HDR, save, n);
  memsup_wire_header(big, 0);
  big[4] = 0, big[5] = 0x01, big[6] = 0x11, big[7] = 0x70; /* 70,000 */
  for (size_t off = 0; off + MEMSUP_FRAME_HDR + n <= 70000;
       off += MEMSUP_FRAME_HDR + n)
    memcpy(big + MEMSUP_FRAME_HDR + off, inner, MEMSUP_FRAME_HDR + n);
  assert_int_equal(write(peer.fd, big, sizeof(big)), (ssize_t)sizeof(big));
  send_text("{\"t\":\"save\",\"seq\":12}", -1);
  expect_state(12, "save", SAVE_BYTES);
  finish();
}

static int version_later_worker(void) {
  CHECK(memsup_init() == 0);
  CHECK(memsup_ready() == 0);
  struct pollfd p = {.fd = memsup_fd(), .events = POLLIN};
  CHECK(poll(&p, 1, 5000) == 1);
  CHECK(memsup_process() == -EPROTO);
  CHECK(memsup_active() == 0);
  CHECK(memsup_fd() == -1);
  CHECK(memsup_report() == 0); /* as without memsup, not gone */
  CHECK(memsup_process() == 0);
  return 0;
}

/* After the welcome, a frame of another version ends the channel for the
 * SDK as it does for memsup: the worker carries on without it. */
static void frame_of_another_version_leaves_sdk_inactive(void** state) {
  (void)state;
  uint8_t f[64];
  const char* save = "{\"t\":\"save\",\"seq\":1}";
  size_t n = strlen(save);
  start(version_later_worker);
  handshake("null", -1);
  expect_ready("none");
  memsup_wire_header(f, n);
  f[2] = 2;
  memcpy(f + MEMSUP_FRAME_HDR, save, n);
  assert_int_equal(write(peer.fd, f, MEMSUP_FRAME_HDR + n),
                   (ssize_t)(MEMSUP_FRAME_HDR + n));
  /* The worker closes its end. */
  for (;;) {
    ssize_t k = read(peer.fd, peer.buf, sizeof(peer.buf));
    if (k <= 0) break;
  }
  finish();
}

static int go_fd = -1; /* the worker's end of a pipe to the test */

static void* ready_main(void* arg) {
  *(int*)arg = memsup_ready();
  return NULL;
}

/* memsup does not read for a while, so the socket fills and memsup_ready()
 * waits on one thread; another thread's gauges and queries must not wait
 * with it (the SDK's mutex is not held across that wait). */
static int blocked_send_worker(void) {
  pthread_t t;
  int ready_err = 1;
  CHECK(memsup_init() == 0);
  for (int i = 0; i < 100000 && memsup_report() != -EAGAIN; i++) {
  }
  CHECK(memsup_report() == -EAGAIN); /* full: stats are dropped */
  CHECK(pthread_create(&t, NULL, ready_main, &ready_err) == 0);
  usleep(100000);
  CHECK(memsup_gauge_set("queue.depth", 3) == 0);
  CHECK(memsup_active() == 1);
  memsup_heap_t h;
  CHECK(memsup_heap_read(&h) == 0);
  /* Tells memsup to start reading. */
  CHECK(write(go_fd, "go", 2) == 2);
  CHECK(pthread_join(t, NULL) == 0);
  CHECK(ready_err == 0);
  return 0;
}

static void gauges_are_not_held_up_by_a_blocked_send(void** state) {
  (void)state;
  int go[2];
  char buf[2];
  assert_int_equal(pipe(go), 0);
  go_fd = go[1];
  start(blocked_send_worker);
  close(go[1]);
  handshake("null", -1);
  assert_int_equal(read(go[0], buf, 2), 2);
  close(go[0]);
  expect_ready("none");
  finish();
}

static void save_without_callback_sends_save_failed(void** state) {
  (void)state;
  int fd;
  start(init_ready_serve);
  handshake("null", -1);
  expect_ready("none");
  send_text("{\"t\":\"save\",\"seq\":9}", -1);
  cJSON* j = expect("save_failed", &fd);
  assert_int_equal(num(j, "seq"), 9);
  assert_int_equal(fd, -1);
  assert_string_equal(str(j, "error"), "no save callback registered");
  cJSON_Delete(j);
  finish();
}

static int save_eio(memsup_state_t* st, void* arg) {
  (void)arg;
  memsup_state_write(st, "partial", 7);
  return -EIO;
}

static int save_error_worker(void) {
  memsup_on_save(save_eio, NULL);
  return init_ready_serve();
}

static void save_callback_error_sends_save_failed(void** state) {
  (void)state;
  int fd;
  start(save_error_worker);
  handshake("null", -1);
  expect_ready("none");
  send_text("{\"t\":\"save\",\"seq\":12}", -1);
  cJSON* j = expect("save_failed", &fd);
  assert_int_equal(num(j, "seq"), 12);
  assert_int_equal(fd, -1);
  assert_string_equal(str(j, "error"), strerror(EIO));
  cJSON_Delete(j);
  finish();
}

static int checkpoint_worker(void) {
  memsup_on_save(save_pattern, NULL);
  CHECK(memsup_init() == 0);
  CHECK(memsup_ready() == 0);
  CHECK(memsup_checkpoint() == 0);
  return serve();
}

static void checkpoint_sends_state_with_seq_zero(void** state) {
  (void)state;
  start(checkpoint_worker);
  handshake("null", -1);
  expect_ready("none");
  expect_state(0, "checkpoint", SAVE_BYTES);
  finish();
}

static void purge_request_gets_purged_reply_then_stats(void** state) {
  (void)state;
  int fd;
  start(init_ready_serve);
  handshake("null", -1);
  expect_ready("none");
  send_text("{\"t\":\"purge\",\"seq\":4}", -1);
  cJSON* j = expect("purged", &fd);
  assert_int_equal(num(j, "seq"), 4);
  assert_true(num(j, "resident_before") >= HEAP_MIN);
  assert_true(num(j, "resident_after") >= 0);
  cJSON_Delete(j);
  /* The stats right after the reply: not an interval report. */
  j = recv_json(0.01, &fd);
  assert_string_equal(str(j, "t"), "stats");
  cJSON_Delete(j);
  finish();
}

static int gauge_worker(void) {
  char name[80];
  memset(name, 'x', 64);
  name[64] = '\0';
  CHECK(memsup_gauge_set(name, 1) == -ENAMETOOLONG);
  CHECK(memsup_gauge_set("", 1) == -EINVAL);
  CHECK(memsup_gauge_set("requests", 1) == 0);
  CHECK(memsup_gauge_set("requests", 42) == 0); /* updates, not adds */
  CHECK(memsup_gauge_set("cache.entries", 7.5) == 0);
  for (int i = 2; i < 64; i++) {
    snprintf(name, sizeof(name), "g%d", i);
    CHECK(memsup_gauge_set(name, i) == 0);
  }
  CHECK(memsup_gauge_set("one.too.many", 1) == -E2BIG);
  CHECK(memsup_init() == 0);
  CHECK(memsup_report() == 0);
  return serve();
}

static void stats_carry_heap_figures_and_gauges(void** state) {
  (void)state;
  int fd;
  start(gauge_worker);
  handshake("null", -1);
  cJSON* j = expect("stats", &fd);
  const cJSON* heap = cJSON_GetObjectItemCaseSensitive(j, "heap");
  const cJSON* gauges = cJSON_GetObjectItemCaseSensitive(j, "gauges");
  assert_true(num(heap, "allocated") >= HEAP_MIN);
  assert_true(num(heap, "resident") >= num(heap, "allocated"));
  assert_true(num(heap, "mapped") >= HEAP_MIN);
  assert_true(num(heap, "active") >= 0 && num(heap, "retained") >= 0);
  assert_int_equal(cJSON_GetArraySize(gauges), 64);
  assert_true(num(gauges, "requests") == 42);
  assert_true(num(gauges, "cache.entries") == 7.5);
  assert_true(num(gauges, "g63") == 63);
  cJSON_Delete(j);
  finish();
}

static void process_sends_stats_every_interval(void** state) {
  (void)state;
  int fd, count = 0;
  start(init_ready_serve);
  handshake("null", -1); /* interval_ms 20 */
  expect_ready("none");
  double t0 = now_s();
  while (now_s() - t0 < 0.5) {
    cJSON* j = recv_json(1, &fd);
    count += strcmp(str(j, "t"), "stats") == 0;
    cJSON_Delete(j);
  }
  assert_in_range(count, 10, 30);
  finish();
}

static int gone_worker(void) {
  CHECK(memsup_init() == 0);
  CHECK(memsup_ready() == 0);
  struct pollfd p = {.fd = memsup_fd(), .events = POLLIN};
  CHECK(poll(&p, 1, 5000) == 1); /* memsup closed its end */
  CHECK(memsup_report() == -EPIPE);
  CHECK(memsup_active() == 0);
  CHECK(memsup_fd() == -1);
  CHECK(memsup_process() == -EPIPE);
  CHECK(memsup_checkpoint() == -EPIPE);
  CHECK(memsup_gauge_set("still.works", 1) == 0);
  return 0;
}

static void memsup_gone_gives_epipe_without_sigpipe(void** state) {
  (void)state;
  start(gone_worker);
  handshake("null", -1);
  expect_ready("none");
  finish();
}

static int thread_worker(void) {
  memsup_on_save(save_pattern, NULL);
  CHECK(memsup_init() == 0);
  CHECK(memsup_ready() == 0);
  CHECK(memsup_start_thread() == 0);
  while (memsup_active()) usleep(10000); /* a blocking worker's main */
  return 0;
}

static void helper_thread_answers_save_requests(void** state) {
  (void)state;
  start(thread_worker);
  handshake("null", -1);
  expect_ready("none");
  send_text("{\"t\":\"save\",\"seq\":21}", -1);
  expect_state(21, "save", SAVE_BYTES);
  finish();
}

/* 256 MiB in one write, as a big worker would hand it over. */
static uint8_t* big;
#define BIG_BYTES ((size_t)256 * 1024 * 1024)

static int save_big(memsup_state_t* st, void* arg) {
  (void)arg;
  return memsup_state_write(st, big, BIG_BYTES);
}

static int big_worker(void) {
  big = malloc(BIG_BYTES);
  CHECK(big != NULL);
  fill(big, 0, BIG_BYTES);
  memsup_on_save(save_big, NULL);
  CHECK(memsup_init() == 0);
  CHECK(memsup_ready() == 0);
  /* Speed is measured in bench/ (BENCHMARKS.md), never asserted here:
   * this machine is shared and noisy.  Here: a big state arrives whole. */
  CHECK(memsup_checkpoint() == 0);
  return serve();
}

static void checkpoint_of_256_mib_arrives_whole(void** state) {
  (void)state;
  start(big_worker);
  handshake("null", -1);
  expect_ready("none");
  expect_state(0, "checkpoint", BIG_BYTES);
  finish();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(sdk_is_a_noop_without_memsup_fd),
      cmocka_unit_test(sdk_refuses_garbage_or_foreign_memsup_fd),
      cmocka_unit_test(handshake_restores_the_exact_state_bytes),
      cmocka_unit_test(restore_reports_corrupt_state_on_crc_mismatch),
      cmocka_unit_test(restore_reports_corrupt_state_on_size_mismatch),
      cmocka_unit_test(restore_accepts_a_zero_byte_state),
      cmocka_unit_test(welcome_without_state_restores_nothing),
      cmocka_unit_test(welcome_of_another_version_leaves_sdk_inactive),
      cmocka_unit_test(init_times_out_without_welcome),
      cmocka_unit_test(save_request_returns_sealed_memfd_with_matching_crc),
      cmocka_unit_test(process_reassembles_split_frames_after_garbage),
      cmocka_unit_test(process_skips_oversized_frame_by_its_length),
      cmocka_unit_test(frame_of_another_version_leaves_sdk_inactive),
      cmocka_unit_test(gauges_are_not_held_up_by_a_blocked_send),
      cmocka_unit_test(save_without_callback_sends_save_failed),
      cmocka_unit_test(save_callback_error_sends_save_failed),
      cmocka_unit_test(checkpoint_sends_state_with_seq_zero),
      cmocka_unit_test(purge_request_gets_purged_reply_then_stats),
      cmocka_unit_test(stats_carry_heap_figures_and_gauges),
      cmocka_unit_test(process_sends_stats_every_interval),
      cmocka_unit_test(memsup_gone_gives_epipe_without_sigpipe),
      cmocka_unit_test(helper_thread_answers_save_requests),
      cmocka_unit_test(checkpoint_of_256_mib_arrives_whole),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
