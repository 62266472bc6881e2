/* test_wire.c: the wire format (memsup_wire.h), message decoding and the
 * channel, on real socketpairs, real memfds and a real uv loop.  The test
 * plays the worker by writing to the other end of the pair.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <dirent.h>

#include <cmocka.h>

#include "channel.h"
#include "memsup_wire.h"

/* ---- helpers ---------------------------------------------------------- */

/* Builds header + payload into buf and returns the frame's length. */
static size_t frame(uint8_t* buf, const char* json) {
  size_t n = strlen(json);
  assert_int_equal(memsup_wire_header(buf, n), 0);
  memcpy(buf + MEMSUP_FRAME_HDR, json, n);
  return MEMSUP_FRAME_HDR + n;
}

static void write_all(int fd, const void* buf, size_t len) {
  const uint8_t* p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    assert_true(n > 0);
    p += n;
    len -= (size_t)n;
  }
}

/* Sends one frame with fd attached the way the SDK does. */
static void send_frame_fd(int sock, const char* json, int fd) {
  uint8_t buf[512];
  size_t len = frame(buf, json);
  assert_int_equal(memsup_wire_send(sock, buf, len, fd, 0), (ssize_t)len);
}

/* A sealed memfd holding text, as the SDK makes a state. */
static int sealed_memfd(const char* text) {
  int fd = memfd_create("state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  assert_true(fd >= 0);
  write_all(fd, text, strlen(text));
  assert_int_equal(
      fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW), 0);
  return fd;
}

static void assert_fd_holds(int fd, const char* text) {
  char buf[256] = {0};
  assert_int_equal(pread(fd, buf, sizeof(buf) - 1, 0), (ssize_t)strlen(text));
  assert_string_equal(buf, text);
}

/* Reads one frame from a blocking socket: payload into buf (NUL added),
 * a descriptor that came with it into *fd (-1 if none). */
static size_t read_frame(int sock, char* buf, size_t cap, int* fd) {
  uint8_t hdr[MEMSUP_FRAME_HDR];
  union {
    struct cmsghdr align;
    char b[CMSG_SPACE(sizeof(int) * 4)];
  } cbuf;
  struct iovec iov = {hdr, sizeof(hdr)};
  struct msghdr mh;
  uint32_t len = 0;
  uint8_t version = 0;
  memset(&mh, 0, sizeof(mh));
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = cbuf.b;
  mh.msg_controllen = sizeof(cbuf.b);
  *fd = -1;
  if (recvmsg(sock, &mh, MSG_WAITALL | MSG_CMSG_CLOEXEC) != sizeof(hdr))
    return 0;
  struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
  if (c != NULL && c->cmsg_type == SCM_RIGHTS)
    memcpy(fd, CMSG_DATA(c), sizeof(int));
  memsup_wire_status_t st = memsup_wire_peek(hdr, sizeof(hdr), &len, &version);
  if (st != MEMSUP_WIRE_NEED_MORE && st != MEMSUP_WIRE_FRAME) return 0;
  if (len + 1 > cap || recv(sock, buf, len, MSG_WAITALL) != (ssize_t)len)
    return 0;
  buf[len] = '\0';
  return len;
}

/* Writes a buffer from a thread, so the test can send more than the
 * socket holds while the loop reads it. */
typedef struct {
  pthread_t tid;
  int fd;
  uint8_t* buf;
  size_t len;
} writer_t;

static void* writer_main(void* arg) {
  writer_t* w = arg;
  write_all(w->fd, w->buf, w->len);
  return NULL;
}

static void writer_join(writer_t* w) {
  assert_int_equal(pthread_join(w->tid, NULL), 0);
  free(w->buf);
}

/* stderr captured into a temporary file, for checking log lines. */
static FILE* cap_file;
static int cap_saved = -1;

static void capture_start(void) {
  fflush(stderr);
  cap_file = tmpfile();
  assert_non_null(cap_file);
  cap_saved = dup(2);
  dup2(fileno(cap_file), 2);
}

static char* capture_stop(void) {
  static char text[8192];
  fflush(stderr);
  dup2(cap_saved, 2);
  close(cap_saved);
  rewind(cap_file);
  text[fread(text, 1, sizeof(text) - 1, cap_file)] = '\0';
  fclose(cap_file);
  return text;
}

static int count_str(const char* hay, const char* needle) {
  int n = 0;
  for (const char* p = hay; (p = strstr(p, needle)) != NULL; p++) n++;
  return n;
}

static int open_fds(void) {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  assert_non_null(d);
  while (readdir(d) != NULL) n++;
  closedir(d);
  return n;
}

/* ---- CRC-32C and framing ------------------------------------------------ */

static void crc32c_matches_known_answers(void** state) {
  (void)state;
  const char* s = "123456789";
  assert_int_equal(memsup_crc32c(0, s, 9), 0xE3069283u);
  assert_int_equal(memsup_crc32c(0, "", 0), 0);
  /* Long enough for the 8-byte loop, split at an odd place. */
  uint8_t buf[1000];
  for (size_t i = 0; i < sizeof(buf); i++) buf[i] = (uint8_t)(i * 7 + 3);
  uint32_t one = memsup_crc32c(0, buf, sizeof(buf));
  uint32_t split = memsup_crc32c(memsup_crc32c(0, buf, 333), buf + 333, 667);
  assert_int_equal(one, split);
  assert_int_not_equal(one, memsup_crc32c(0, buf, sizeof(buf) - 1));
}

static void wire_peek_reports_every_status(void** state) {
  (void)state;
  uint8_t buf[64];
  uint32_t len = 0;
  uint8_t v = 0;
  size_t n = frame(buf, "{\"t\":\"x\"}");
  assert_int_equal(memsup_wire_peek(buf, 0, &len, &v), MEMSUP_WIRE_NEED_MORE);
  assert_int_equal(memsup_wire_peek(buf, 1, &len, &v), MEMSUP_WIRE_NEED_MORE);
  assert_int_equal(memsup_wire_peek(buf, 7, &len, &v), MEMSUP_WIRE_NEED_MORE);
  assert_int_equal(memsup_wire_peek(buf, n - 1, &len, &v),
                   MEMSUP_WIRE_NEED_MORE);
  assert_int_equal(memsup_wire_peek(buf, n, &len, &v), MEMSUP_WIRE_FRAME);
  assert_int_equal(len, n - MEMSUP_FRAME_HDR);
  assert_int_equal(v, MEMSUP_WIRE_VERSION);
  buf[3] = 'B';
  assert_int_equal(memsup_wire_peek(buf, n, &len, &v),
                   MEMSUP_WIRE_UNKNOWN_KIND);
  buf[2] = 9;
  assert_int_equal(memsup_wire_peek(buf, n, &len, &v),
                   MEMSUP_WIRE_BAD_VERSION);
  assert_int_equal(v, 9);
  buf[4] = 0x7f;
  assert_int_equal(memsup_wire_peek(buf, n, &len, &v), MEMSUP_WIRE_TOO_BIG);
  assert_int_equal(memsup_wire_peek((const uint8_t*)"xs", 2, &len, &v),
                   MEMSUP_WIRE_BAD_MAGIC);
  assert_int_equal(memsup_wire_peek((const uint8_t*)"mx", 2, &len, &v),
                   MEMSUP_WIRE_BAD_MAGIC);
  assert_int_equal(memsup_wire_header(buf, MEMSUP_FRAME_MAX + 1), -EMSGSIZE);
}

/* ---- decoding ----------------------------------------------------------- */

/* Decodes json from an exact-size heap copy (no NUL after it), so reading
 * past the payload would show up under ASan. */
static int decode(const char* json, ms_msg_t* m) {
  size_t n = strlen(json);
  char* copy = malloc(n + 1);
  assert_non_null(copy);
  memcpy(copy, json, n);
  int r = ms_msg_decode(copy, n, m);
  free(copy);
  return r;
}

static void decode_reads_hello(void** state) {
  (void)state;
  ms_msg_t m;
  assert_int_equal(decode("{\"t\":\"hello\",\"v\":1,\"pid\":4242,"
                          "\"allocator\":\"jemalloc\",\"sdk\":\"0.1.0\"}", &m), 0);
  assert_int_equal(m.type, MS_MSG_HELLO);
  assert_int_equal(m.version, 1);
  assert_int_equal(m.pid, 4242);
  assert_string_equal(m.allocator, "jemalloc");
}

static void decode_reads_stats_with_heap_and_gauges(void** state) {
  (void)state;
  ms_msg_t m;
  assert_int_equal(
      decode("{\"t\":\"stats\",\"heap\":{\"allocated\":100,\"active\":200,"
             "\"resident\":300,\"retained\":400,\"mapped\":500},"
             "\"gauges\":{\"cache.entries\":12.5,\"q\":-3}}", &m), 0);
  assert_int_equal(m.type, MS_MSG_STATS);
  assert_int_equal(m.has_heap, 1);
  assert_int_equal(m.allocated, 100);
  assert_int_equal(m.active, 200);
  assert_int_equal(m.resident, 300);
  assert_int_equal(m.retained, 400);
  assert_int_equal(m.mapped, 500);
  assert_int_equal(m.ngauges, 2);
  assert_string_equal(m.gauges[0].name, "cache.entries");
  assert_true(m.gauges[0].value == 12.5);
  assert_true(m.gauges[1].value == -3);
  assert_int_equal(decode("{\"t\":\"stats\",\"heap\":null}", &m), 0);
  assert_int_equal(m.has_heap, 0);
  assert_int_equal(m.ngauges, 0);
}

static void decode_reads_state_save_failed_purged_ready(void** state) {
  (void)state;
  ms_msg_t m;
  assert_int_equal(decode("{\"t\":\"state\",\"seq\":7,\"kind\":\"save\","
                          "\"bytes\":268435456,\"crc32c\":4294967295}", &m), 0);
  assert_int_equal(m.type, MS_MSG_STATE);
  assert_int_equal(m.seq, 7);
  assert_string_equal(m.kind, "save");
  assert_int_equal(m.bytes, 268435456);
  assert_int_equal(m.crc32c, 0xFFFFFFFFu);
  assert_int_equal(decode("{\"t\":\"state\",\"seq\":0,\"kind\":\"checkpoint\","
                          "\"bytes\":0,\"crc32c\":0}", &m), 0);
  assert_string_equal(m.kind, "checkpoint");

  assert_int_equal(
      decode("{\"t\":\"save_failed\",\"seq\":3,\"error\":\"disk full\"}", &m), 0);
  assert_int_equal(m.type, MS_MSG_SAVE_FAILED);
  assert_int_equal(m.seq, 3);
  assert_string_equal(m.text, "disk full");

  assert_int_equal(decode("{\"t\":\"purged\",\"seq\":4,\"resident_before\":"
                          "9000,\"resident_after\":1000}", &m), 0);
  assert_int_equal(m.type, MS_MSG_PURGED);
  assert_int_equal(m.seq, 4);
  assert_int_equal(m.purge_before, 9000);
  assert_int_equal(m.purge_after, 1000);

  assert_int_equal(decode("{\"t\":\"ready\",\"restore\":\"corrupt\"}", &m), 0);
  assert_int_equal(m.type, MS_MSG_READY);
  assert_string_equal(m.text, "corrupt");  assert_int_equal(m.restored_unix_us, 0);
  assert_int_equal(decode("{\"t\":\"ready\",\"restore\":\"restored\","
                          "\"restored_unix_us\":1795307843534479}", &m), 0);
  assert_int_equal(m.restored_unix_us, 1795307843534479ull);
  assert_int_equal(decode("{\"t\":\"ready\",\"restored_unix_us\":-1}", &m),
                   -EBADMSG);
}

static void decode_passes_unknown_type_and_truncates_strings(void** state) {
  (void)state;
  ms_msg_t m;
  assert_int_equal(decode(" {\"t\":\"sparkle\",\"x\":[1,{}]}\n", &m), 0);
  assert_int_equal(m.type, MS_MSG_UNKNOWN);
  assert_string_equal(m.t, "sparkle");
  /* Unknown members of a known type are ignored too. */
  assert_int_equal(decode("{\"t\":\"ready\",\"later\":{\"a\":1}}", &m), 0);
  assert_int_equal(m.type, MS_MSG_READY);
  assert_string_equal(m.text, "");
  assert_int_equal(decode("{\"t\":\"hello\",\"v\":1,\"allocator\":"
                          "\"a-very-long-allocator-name\"}", &m), 0);
  assert_int_equal(strlen(m.allocator), sizeof(m.allocator) - 1);
  assert_memory_equal(m.allocator, "a-very-long-all", sizeof(m.allocator) - 1);
}

static void decode_rejects_each_malformed_message(void** state) {
  (void)state;
  static const char* bad[] = {
      "",
      "not json",
      "[1,2]",
      "\"hello\"",
      "{}",
      "{\"t\":1}",
      "{\"t\":null}",
      "{\"t\":\"ready\"} x",
      "{\"t\":\"ready\"}{\"t\":\"ready\"}",
      "{\"t\":\"hello\"}",
      "{\"t\":\"hello\",\"v\":\"1\"}",
      "{\"t\":\"hello\",\"v\":1,\"pid\":\"42\"}",
      "{\"t\":\"hello\",\"v\":1,\"allocator\":7}",
      "{\"t\":\"stats\",\"heap\":[1]}",
      "{\"t\":\"stats\",\"heap\":{\"allocated\":-1}}",
      "{\"t\":\"stats\",\"gauges\":[1]}",
      "{\"t\":\"state\",\"seq\":1,\"kind\":\"save\",\"bytes\":-1,\"crc32c\":0}",
      "{\"t\":\"state\",\"seq\":1,\"kind\":\"save\",\"bytes\":1.5,\"crc32c\":0}",
      "{\"t\":\"state\",\"seq\":1,\"kind\":\"save\",\"bytes\":1e400,\"crc32c\":0}",
      "{\"t\":\"state\",\"seq\":1,\"kind\":\"save\",\"bytes\":1e30,\"crc32c\":0}",
      ("{\"t\":\"state\",\"seq\":1,\"kind\":\"save\",\"bytes\":1,"
       "\"crc32c\":4294967296}"),
      "{\"t\":\"state\",\"seq\":1,\"kind\":\"nap\",\"bytes\":1,\"crc32c\":0}",
      "{\"t\":\"state\",\"seq\":1,\"kind\":5,\"bytes\":1,\"crc32c\":0}",
      "{\"t\":\"state\",\"kind\":\"save\",\"bytes\":1,\"crc32c\":0}",
      "{\"t\":\"state\",\"seq\":1,\"kind\":\"save\",\"crc32c\":0}",
      "{\"t\":\"save_failed\",\"seq\":1,\"error\":false}",
      "{\"t\":\"purged\",\"seq\":1,\"resident_before\":\"1\"}",
      "{\"t\":\"ready\",\"restore\":1}",
  };
  ms_msg_t m;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (decode(bad[i], &m) != -EBADMSG) fail_msg("accepted: %s", bad[i]);
}

/* The optional heap-profile pair: hello's "prof" flag (boolean or absent)
 * and memsup's prof request, whose path must be absolute and must fit
 * whole (a cut path would dump elsewhere). */
static void decode_reads_hello_prof_and_the_prof_request(void** state) {
  (void)state;
  memsup_msg_t m;
  char w[600];
  snprintf(w, sizeof(w), "{\"t\":\"hello\",\"v\":1,\"prof\":true}");
  assert_int_equal(memsup_msg_decode(w, strlen(w), MEMSUP_FROM_WORKER, &m), 0);
  assert_int_equal(m.prof, 1);
  snprintf(w, sizeof(w), "{\"t\":\"hello\",\"v\":1}");
  assert_int_equal(memsup_msg_decode(w, strlen(w), MEMSUP_FROM_WORKER, &m), 0);
  assert_int_equal(m.prof, 0);
  snprintf(w, sizeof(w), "{\"t\":\"hello\",\"v\":1,\"prof\":1}");
  assert_int_equal(memsup_msg_decode(w, strlen(w), MEMSUP_FROM_WORKER, &m),
                   -EBADMSG);
  snprintf(w, sizeof(w), "{\"t\":\"prof\",\"path\":\"/var/log/a.1.2.end.heap\"}");
  assert_int_equal(memsup_msg_decode(w, strlen(w), MEMSUP_FROM_MEMSUP, &m), 0);
  assert_int_equal(m.type, MEMSUP_T_PROF);
  assert_string_equal(m.path, "/var/log/a.1.2.end.heap");
  /* memsup does not take it from a worker. */
  assert_int_equal(memsup_msg_decode(w, strlen(w), MEMSUP_FROM_WORKER, &m), 0);
  assert_int_equal(m.type, MEMSUP_T_UNKNOWN);
  static const char* const bad[] = {
      "{\"t\":\"prof\"}",
      "{\"t\":\"prof\",\"path\":null}",
      "{\"t\":\"prof\",\"path\":7}",
      "{\"t\":\"prof\",\"path\":\"relative.heap\"}",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (memsup_msg_decode(bad[i], strlen(bad[i]), MEMSUP_FROM_MEMSUP, &m) !=
        -EBADMSG)
      fail_msg("accepted: %s", bad[i]);
  int n = snprintf(w, sizeof(w), "{\"t\":\"prof\",\"path\":\"/");
  for (int i = 0; i < MEMSUP_PROF_PATH_MAX; i++) w[n++] = 'a';
  snprintf(w + n, sizeof(w) - (size_t)n, "\"}");
  assert_int_equal(memsup_msg_decode(w, strlen(w), MEMSUP_FROM_MEMSUP, &m),
                   -EBADMSG);
}

/* The SDK's direction, through the same decoder and the same rules. */
static void decode_reads_welcome_save_and_purge_for_the_sdk(void** state) {
  (void)state;
  memsup_msg_t m;
  const char* w = "{\"t\":\"welcome\",\"v\":1,\"gen\":3,\"interval_ms\":20,"
                  "\"metric\":\"heap\",\"limit\":134217728,\"soft_limit\":0,"
                  "\"state\":{\"bytes\":11,\"crc32c\":4294967295,"
                  "\"kind\":\"disk\"}}";
  assert_int_equal(memsup_msg_decode(w, strlen(w), MEMSUP_FROM_MEMSUP, &m), 0);
  assert_int_equal(m.type, MEMSUP_T_WELCOME);
  assert_int_equal(m.version, 1);
  assert_int_equal(m.gen, 3);
  assert_int_equal(m.interval_ms, 20);
  assert_string_equal(m.metric, "heap");
  assert_int_equal(m.limit, 134217728);
  assert_true(m.has_state);
  assert_int_equal(m.bytes, 11);
  assert_int_equal(m.crc32c, 4294967295u);
  assert_string_equal(m.kind, "disk");
  w = "{\"t\":\"welcome\",\"v\":1,\"state\":null}";
  assert_int_equal(memsup_msg_decode(w, strlen(w), MEMSUP_FROM_MEMSUP, &m), 0);
  assert_false(m.has_state);
  /* Another version: nothing else is checked, the caller refuses it. */
  w = "{\"t\":\"welcome\",\"v\":2,\"state\":\"elsewhere\"}";
  assert_int_equal(memsup_msg_decode(w, strlen(w), MEMSUP_FROM_MEMSUP, &m), 0);
  assert_int_equal(m.version, 2);
  w = "{\"t\":\"save\",\"seq\":9007199254740991}";
  assert_int_equal(memsup_msg_decode(w, strlen(w), MEMSUP_FROM_MEMSUP, &m), 0);
  assert_int_equal(m.type, MEMSUP_T_SAVE);
  assert_int_equal(m.seq, 9007199254740991ull);
  w = "{\"t\":\"purge\",\"seq\":4}";
  assert_int_equal(memsup_msg_decode(w, strlen(w), MEMSUP_FROM_MEMSUP, &m), 0);
  assert_int_equal(m.type, MEMSUP_T_PURGE);
  /* Each end knows only the other's types. */
  w = "{\"t\":\"hello\",\"v\":1}";
  assert_int_equal(memsup_msg_decode(w, strlen(w), MEMSUP_FROM_MEMSUP, &m), 0);
  assert_int_equal(m.type, MEMSUP_T_UNKNOWN);
  w = "{\"t\":\"save\",\"seq\":1}";
  assert_int_equal(decode(w, &m), 0);
  assert_int_equal(m.type, MS_MSG_UNKNOWN);
}

static void decode_rejects_malformed_messages_from_memsup(void** state) {
  (void)state;
  static const char* bad[] = {
      "{\"t\":\"welcome\"}",
      "{\"t\":\"welcome\",\"v\":1} trailing",
      "{\"t\":\"welcome\",\"v\":1,\"gen\":-1}",
      "{\"t\":\"welcome\",\"v\":1,\"interval_ms\":0.5}",
      "{\"t\":\"welcome\",\"v\":1,\"metric\":3}",
      "{\"t\":\"welcome\",\"v\":1,\"limit\":\"1G\"}",
      "{\"t\":\"welcome\",\"v\":1,\"state\":5}",
      "{\"t\":\"welcome\",\"v\":1,\"state\":{\"bytes\":1,\"crc32c\":1}}",
      "{\"t\":\"welcome\",\"v\":1,\"state\":{\"bytes\":1,\"crc32c\":"
      "4294967296,\"kind\":\"save\"}}",
      "{\"t\":\"welcome\",\"v\":1,\"state\":{\"bytes\":1,\"crc32c\":1,"
      "\"kind\":\"nap\"}}",
      "{\"t\":\"save\"}",
      "{\"t\":\"save\",\"seq\":-1}",
      "{\"t\":\"purge\",\"seq\":\"4\"}",
  };
  memsup_msg_t m;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (memsup_msg_decode(bad[i], strlen(bad[i]), MEMSUP_FROM_MEMSUP, &m) !=
        -EBADMSG)
      fail_msg("accepted: %s", bad[i]);
}

/* The shared reader on its own: events in order, and nothing after a
 * header of another version. */
static void reader_reports_events_and_stops_at_another_version(void** state) {
  (void)state;
  memsup_reader_t r;
  memsup_frame_t f;
  uint8_t buf[256];
  size_t n = 0;
  memcpy(buf, "junk", 4);
  n = 4 + frame(buf + 4, "{\"t\":\"save\",\"seq\":1}");
  n += frame(buf + n, "{}");
  buf[n - 2 - MEMSUP_FRAME_HDR + 2] = 7; /* that frame's version */
  n += frame(buf + n, "{\"t\":\"purge\",\"seq\":2}");
  assert_int_equal(memsup_reader_init(&r), 0);
  assert_int_equal(memsup_reader_put(&r, buf, n), n);
  assert_int_equal(memsup_reader_next(&r, &f), MEMSUP_READ_GARBAGE);
  assert_int_equal(memsup_reader_next(&r, &f), MEMSUP_READ_FRAME);
  assert_memory_equal(f.payload, "{\"t\":\"save\"", 11);
  assert_int_equal(memsup_reader_next(&r, &f), MEMSUP_READ_BAD_VERSION);
  assert_int_equal(f.version, 7);
  assert_int_equal(memsup_reader_next(&r, &f), MEMSUP_READ_STOPPED);
  assert_int_equal(memsup_reader_put(&r, buf, n), 0);
  memsup_reader_free(&r);
}

static void decode_keeps_first_64_of_100_gauges(void** state) {
  (void)state;
  char json[4096] = "{\"t\":\"stats\",\"gauges\":{";
  ms_msg_t m;
  for (int i = 0; i < 100; i++)
    sprintf(json + strlen(json), "%s\"g%d\":%d", i ? "," : "", i, i);
  strcat(json, "}}");
  assert_int_equal(decode(json, &m), 0);
  assert_int_equal(m.ngauges, MS_GAUGES_MAX);
  assert_string_equal(m.gauges[0].name, "g0");
  assert_string_equal(m.gauges[63].name, "g63");
  assert_true(m.gauges[63].value == 63);
}

static void decode_skips_long_and_non_numeric_gauges(void** state) {
  (void)state;
  char json[512], name63[64], name64[65];
  ms_msg_t m;
  memset(name63, 'a', 63);
  name63[63] = '\0';
  memset(name64, 'b', 64);
  name64[64] = '\0';
  snprintf(json, sizeof(json),
           "{\"t\":\"stats\",\"gauges\":{\"%s\":1,\"s\":\"x\",\"%s\":2,"
           "\"ok\":3}}", name64, name63);
  assert_int_equal(decode(json, &m), 0);
  assert_int_equal(m.ngauges, 2);
  assert_string_equal(m.gauges[0].name, name63);
  assert_string_equal(m.gauges[1].name, "ok");
}

/* ---- channel ------------------------------------------------------------ */

typedef struct {
  uv_loop_t loop;
  uv_timer_t tick; /* wakes uv_run(ONCE) so run_until can time out */
  int peer;        /* the worker's end */
  ms_channel_t* ch;
  int msgs, eofs, closed, ticks;
  int by_type[8];
  ms_msg_type_t order[8];
  ms_msg_t last;
  int fds[16], nfds; /* descriptors delivered with messages */
  ms_msg_type_t fd_type[16]; /* the type of the message each came with */
} fx_t;

static void on_message(ms_channel_t* ch, const ms_msg_t* msg, int fd,
                       void* arg) {
  fx_t* fx = arg;
  assert_ptr_equal(ch, fx->ch);
  if (fx->msgs < 8) fx->order[fx->msgs] = msg->type;
  fx->msgs++;
  fx->by_type[msg->type]++;
  fx->last = *msg;
  if (fd >= 0) {
    fx->fd_type[fx->nfds] = msg->type;
    fx->fds[fx->nfds++] = fd;
  }
}

static void on_eof(ms_channel_t* ch, void* arg) {
  fx_t* fx = arg;
  assert_ptr_equal(ch, fx->ch);
  fx->eofs++;
}

static const ms_channel_cb_t fx_cb = {on_message, on_eof};

static void tick_cb(uv_timer_t* t) { ((fx_t*)t->data)->ticks++; }
static void closed_cb(void* arg) { ((fx_t*)arg)->closed++; }

static int setup(void** state) {
  fx_t* fx = calloc(1, sizeof(*fx));
  int parent;
  assert_non_null(fx);
  assert_int_equal(uv_loop_init(&fx->loop), 0);
  assert_int_equal(ms_channel_pair(&parent, &fx->peer), 0);
  assert_int_equal(fcntl(fx->peer, F_GETFL) & O_NONBLOCK, 0);
  assert_int_equal(ms_channel_open(&fx->loop, parent, &fx_cb, fx, &fx->ch), 0);
  uv_timer_init(&fx->loop, &fx->tick);
  fx->tick.data = fx;
  uv_timer_start(&fx->tick, tick_cb, 1, 1);
  *state = fx;
  return 0;
}

static void close_channel(fx_t* fx) {
  ms_channel_close(fx->ch, closed_cb, fx);
  fx->ch = NULL;
  while (fx->closed == 0) uv_run(&fx->loop, UV_RUN_ONCE);
}

static int teardown(void** state) {
  fx_t* fx = *state;
  if (fx->ch != NULL) close_channel(fx);
  assert_int_equal(fx->closed, 1);
  uv_close((uv_handle_t*)&fx->tick, NULL);
  assert_int_equal(uv_run(&fx->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&fx->loop), 0);
  if (fx->peer >= 0) close(fx->peer);
  for (int i = 0; i < fx->nfds; i++) close(fx->fds[i]);
  free(fx);
  return 0;
}

/* Runs the loop until *counter reaches n; fails after 10 s. */
static void run_until(fx_t* fx, const int* counter, int n) {
  uint64_t deadline = uv_hrtime() + 10000000000ull;
  while (*counter < n) {
    if (uv_hrtime() > deadline) fail_msg("timed out waiting for %d", n);
    uv_run(&fx->loop, UV_RUN_ONCE);
  }
}

/* A few more loop turns, for asserting that nothing else happens. */
static void run_idle(fx_t* fx) {
  int until = fx->ticks + 20;
  run_until(fx, &fx->ticks, until);
}

static ms_channel_stats_t stats_of(fx_t* fx) {
  ms_channel_stats_t s;
  ms_channel_get_stats(fx->ch, &s);
  return s;
}

static void channel_delivers_frame_written_one_byte_at_a_time(void** state) {
  fx_t* fx = *state;
  uint8_t buf[128];
  size_t n = frame(buf, "{\"t\":\"ready\",\"restore\":\"none\"}");
  for (size_t i = 0; i < n; i++) {
    write_all(fx->peer, buf + i, 1);
    while (stats_of(fx).bytes_in < i + 1) uv_run(&fx->loop, UV_RUN_ONCE);
    assert_int_equal(fx->msgs, i + 1 < n ? 0 : 1);
  }
  run_idle(fx);
  assert_int_equal(fx->msgs, 1);
  assert_string_equal(fx->last.text, "none");
}

static void channel_delivers_two_frames_from_one_write(void** state) {
  fx_t* fx = *state;
  uint8_t buf[256];
  size_t n = frame(buf, "{\"t\":\"hello\",\"v\":1,\"pid\":1}");
  n += frame(buf + n, "{\"t\":\"ready\"}");
  write_all(fx->peer, buf, n);
  run_until(fx, &fx->msgs, 2);
  assert_int_equal(fx->order[0], MS_MSG_HELLO);
  assert_int_equal(fx->order[1], MS_MSG_READY);
  assert_int_equal(stats_of(fx).frames, 2);
}

static void channel_resyncs_after_garbage(void** state) {
  fx_t* fx = *state;
  uint8_t buf[256];
  const char junk[] = "xyz\0mm\x01 more junk";
  memcpy(buf, junk, sizeof(junk));
  size_t n = sizeof(junk) + frame(buf + sizeof(junk), "{\"t\":\"ready\"}");
  write_all(fx->peer, buf, n);
  run_until(fx, &fx->msgs, 1);
  assert_int_equal(fx->last.type, MS_MSG_READY);
  assert_int_equal(stats_of(fx).bad_frames, 1);
}

/* Random garbage contains "ms" now and then; what follows it is noise, not
 * a version to give up on or a length to skip. */
static void channel_treats_implausible_header_inside_garbage_as_garbage(
    void** state) {
  fx_t* fx = *state;
  uint8_t buf[256];
  const char junk[] = "junk ms\x07J\x00\x00\x00\x01 ms\x01J\xff\xff\xff\xff";
  memcpy(buf, junk, sizeof(junk) - 1);
  size_t n = sizeof(junk) - 1 + frame(buf + sizeof(junk) - 1, "{\"t\":\"ready\"}");
  write_all(fx->peer, buf, n);
  run_until(fx, &fx->msgs, 1);
  assert_int_equal(fx->last.type, MS_MSG_READY);
  assert_int_equal(fx->eofs, 0);
  assert_int_equal(stats_of(fx).bad_frames, 1);
}

static void channel_skips_oversized_frame_by_its_length(void** state) {
  fx_t* fx = *state;
  writer_t w = {.fd = fx->peer};
  size_t big = MEMSUP_FRAME_MAX + 1, n = 0;
  w.buf = malloc(MEMSUP_FRAME_HDR + big + 256);
  assert_non_null(w.buf);
  memsup_wire_header(w.buf, 0);
  w.buf[4] = (uint8_t)(big >> 24);
  w.buf[5] = (uint8_t)(big >> 16);
  w.buf[6] = (uint8_t)(big >> 8);
  w.buf[7] = (uint8_t)big;
  /* The oversized payload is full of valid stats frames: resyncing inside
   * it instead of skipping it would deliver them. */
  for (n = MEMSUP_FRAME_HDR; n + 64 < MEMSUP_FRAME_HDR + big;)
    n += frame(w.buf + n, "{\"t\":\"stats\"}");
  memset(w.buf + n, 'm', MEMSUP_FRAME_HDR + big - n);
  w.len = MEMSUP_FRAME_HDR + big;
  w.len += frame(w.buf + w.len, "{\"t\":\"hello\",\"v\":1}");
  assert_int_equal(pthread_create(&w.tid, NULL, writer_main, &w), 0);
  run_until(fx, &fx->msgs, 1);
  writer_join(&w);
  run_idle(fx);
  assert_int_equal(fx->msgs, 1);
  assert_int_equal(fx->last.type, MS_MSG_HELLO);
  assert_int_equal(stats_of(fx).bad_frames, 1);
}

static void channel_ends_on_wrong_frame_version(void** state) {
  fx_t* fx = *state;
  uint8_t buf[256];
  size_t n = frame(buf, "{\"t\":\"hello\",\"v\":2}");
  buf[2] = 2;
  n += frame(buf + n, "{\"t\":\"ready\"}");
  capture_start();
  write_all(fx->peer, buf, n);
  run_until(fx, &fx->eofs, 1);
  run_idle(fx);
  const char* log = capture_stop();
  assert_int_equal(fx->eofs, 1);
  assert_int_equal(fx->msgs, 0);
  assert_int_equal(count_str(log, "worker speaks protocol version 2, memsup "
                                  "speaks 1: channel ignored"), 1);
}

static void channel_skips_unknown_types_and_kinds(void** state) {
  fx_t* fx = *state;
  uint8_t buf[256];
  size_t n = frame(buf, "{\"t\":\"from-the-future\"}");
  size_t k = n;
  n += frame(buf + n, "[\"binary\"]");
  buf[k + 3] = 'B';
  n += frame(buf + n, "{\"t\":\"ready\"}");
  write_all(fx->peer, buf, n);
  run_until(fx, &fx->msgs, 1);
  run_idle(fx);
  assert_int_equal(fx->msgs, 1);
  assert_int_equal(fx->last.type, MS_MSG_READY);
  assert_int_equal(stats_of(fx).unknown, 2);
  assert_int_equal(stats_of(fx).bad_json, 0);
}

static void channel_logs_bad_json_five_times_then_once_more(void** state) {
  fx_t* fx = *state;
  uint8_t buf[512];
  size_t n = 0;
  for (int i = 0; i < 10; i++) n += frame(buf + n, "{not json");
  n += frame(buf + n, "{\"t\":\"ready\"}");
  capture_start();
  write_all(fx->peer, buf, n);
  run_until(fx, &fx->msgs, 1);
  const char* log = capture_stop();
  assert_int_equal(stats_of(fx).bad_json, 10);
  assert_int_equal(count_str(log, "bad message from worker: {not json"), 5);
  assert_int_equal(count_str(log, "further bad messages from worker "
                                  "suppressed"), 1);
}

static void channel_hands_memfd_to_state_message(void** state) {
  fx_t* fx = *state;
  int mfd = sealed_memfd("saved state");
  send_frame_fd(fx->peer, "{\"t\":\"state\",\"seq\":5,\"kind\":\"save\","
                "\"bytes\":11,\"crc32c\":1}", mfd);
  close(mfd);
  run_until(fx, &fx->msgs, 1);
  assert_int_equal(fx->last.type, MS_MSG_STATE);
  assert_int_equal(fx->last.seq, 5);
  assert_int_equal(fx->nfds, 1);
  assert_int_equal(fx->fd_type[0], MS_MSG_STATE);
  assert_fd_holds(fx->fds[0], "saved state");
  assert_true(fcntl(fx->fds[0], F_GETFD) & FD_CLOEXEC);
}

static void channel_keeps_fd_for_next_state_message(void** state) {
  fx_t* fx = *state;
  uint8_t buf[256];
  int mfd = sealed_memfd("early");
  send_frame_fd(fx->peer, "{\"t\":\"hello\",\"v\":1}", mfd);
  close(mfd);
  write_all(fx->peer, buf, frame(buf, "{\"t\":\"state\",\"seq\":0,\"kind\":"
                                      "\"checkpoint\",\"bytes\":5,\"crc32c\":1}"));
  run_until(fx, &fx->msgs, 2);
  assert_int_equal(fx->order[0], MS_MSG_HELLO);
  assert_int_equal(fx->order[1], MS_MSG_STATE);
  assert_int_equal(fx->nfds, 1);
  assert_int_equal(fx->fd_type[0], MS_MSG_STATE); /* the hello did not */
  assert_fd_holds(fx->fds[0], "early");
}

static void channel_closes_unclaimed_and_surplus_fds(void** state) {
  fx_t* fx = *state;
  int before = open_fds();
  for (int i = 0; i < 9; i++) {
    int mfd = sealed_memfd("x");
    send_frame_fd(fx->peer, "{\"t\":\"ready\"}", mfd);
    close(mfd);
  }
  run_until(fx, &fx->msgs, 9);
  assert_int_equal(fx->nfds, 0);
  assert_int_equal(stats_of(fx).lost_fds, 1);
  assert_int_equal(open_fds(), before + 8);
  close_channel(fx);
  assert_int_equal(open_fds(), before - 1); /* and the channel's socket */
}

/* The worker sends 20,000 stats as fast as it can.  memsup must hand on
 * far fewer, account for every one, and keep its loop turning. */
static void channel_survives_stats_flood(void** state) {
  fx_t* fx = *state;
  writer_t w = {.fd = fx->peer};
  const int flood = 20000;
  uint8_t one[64];
  size_t n = frame(one, "{\"t\":\"stats\"}");
  w.buf = malloc(n * flood + 64);
  assert_non_null(w.buf);
  for (int i = 0; i < flood; i++) memcpy(w.buf + i * n, one, n);
  w.len = n * flood + frame(w.buf + n * flood, "{\"t\":\"ready\"}");
  capture_start();
  int ticks = fx->ticks;
  assert_int_equal(pthread_create(&w.tid, NULL, writer_main, &w), 0);
  while (fx->by_type[MS_MSG_READY] == 0) run_until(fx, &fx->msgs, fx->msgs + 1);
  writer_join(&w);
  const char* log = capture_stop();
  ms_channel_stats_t s = stats_of(fx);
  assert_true(fx->by_type[MS_MSG_STATS] < flood / 10);
  assert_true(s.dropped_stats > 0);
  assert_int_equal(fx->by_type[MS_MSG_STATS] + s.dropped_stats, flood);
  assert_int_equal(s.frames, flood + 1);
  assert_true(fx->ticks - ticks >= 10); /* timers ran during the flood */
  assert_int_equal(count_str(log, "stats flood from worker: reading paused"),
                   1);
}

/* A worker writes 1 MiB that holds no frame, then a real one.  memsup
 * reads it in windows (pausing when a window's bytes are used up), says
 * so once, and still gets the frame. */
static void channel_bounds_a_garbage_flood_by_bytes(void** state) {
  fx_t* fx = *state;
  writer_t w = {.fd = fx->peer};
  const size_t junk = 1 << 20;
  w.buf = malloc(junk + 64);
  assert_non_null(w.buf);
  memset(w.buf, 'x', junk);
  w.len = junk + frame(w.buf + junk, "{\"t\":\"ready\"}");
  capture_start();
  int ticks = fx->ticks;
  assert_int_equal(pthread_create(&w.tid, NULL, writer_main, &w), 0);
  run_until(fx, &fx->msgs, 1);
  writer_join(&w);
  const char* log = capture_stop();
  ms_channel_stats_t s = stats_of(fx);
  assert_int_equal(fx->last.type, MS_MSG_READY);
  assert_int_equal(s.bad_frames, 1);
  assert_int_equal(s.bytes_in, junk + MEMSUP_FRAME_HDR + 13);
  assert_true(fx->ticks - ticks >= 10); /* timers ran during the flood */
  assert_int_equal(count_str(log, "byte flood from worker: reading paused"),
                   1);
}

/* A header announcing 1 MiB, a payload made of valid frames, then a real
 * frame: the payload is skipped by its length within the byte budget. */
static void channel_skips_huge_frame_within_byte_budget(void** state) {
  fx_t* fx = *state;
  writer_t w = {.fd = fx->peer};
  const size_t big = 1 << 20;
  uint8_t one[64];
  size_t n = frame(one, "{\"t\":\"hello\",\"v\":1}");
  w.buf = malloc(MEMSUP_FRAME_HDR + big + 64);
  assert_non_null(w.buf);
  memsup_wire_header(w.buf, 0);
  w.buf[4] = 0x00, w.buf[5] = 0x10, w.buf[6] = 0, w.buf[7] = 0; /* 1 MiB */
  for (size_t off = 0; off + n <= big; off += n)
    memcpy(w.buf + MEMSUP_FRAME_HDR + off, one, n);
  memset(w.buf + MEMSUP_FRAME_HDR + big - big % n, ' ', big % n);
  w.len = MEMSUP_FRAME_HDR + big +
          frame(w.buf + MEMSUP_FRAME_HDR + big, "{\"t\":\"ready\"}");
  capture_start();
  assert_int_equal(pthread_create(&w.tid, NULL, writer_main, &w), 0);
  run_until(fx, &fx->msgs, 1);
  writer_join(&w);
  const char* log = capture_stop();
  assert_int_equal(fx->order[0], MS_MSG_READY); /* no hello from inside */
  assert_int_equal(stats_of(fx).bad_frames, 1);
  assert_int_equal(count_str(log, "byte flood from worker: reading paused"),
                   1);
}

static void channel_reports_peer_close_once(void** state) {
  fx_t* fx = *state;
  uint8_t buf[64];
  write_all(fx->peer, buf, frame(buf, "{\"t\":\"ready\"}"));
  close(fx->peer);
  fx->peer = -1;
  run_until(fx, &fx->eofs, 1);
  run_idle(fx);
  assert_int_equal(fx->msgs, 1); /* data before the close still arrives */
  assert_int_equal(fx->eofs, 1);
}

/* A worker that dies with our frames unread resets the socket (EPOLLERR,
 * ECONNRESET); what it sent before dying must still be delivered. */
static void channel_delivers_frames_before_connection_reset(void** state) {
  fx_t* fx = *state;
  uint8_t buf[64];
  cJSON* msg = cJSON_CreateObject();
  cJSON_AddStringToObject(msg, "t", MEMSUP_MSG_PURGE);
  assert_int_equal(ms_channel_send(fx->ch, msg, -1), 0);
  cJSON_Delete(msg);
  write_all(fx->peer, buf, frame(buf, "{\"t\":\"ready\"}"));
  close(fx->peer);
  fx->peer = -1;
  capture_start();
  run_until(fx, &fx->eofs, 1);
  run_idle(fx);
  const char* log = capture_stop();
  assert_int_equal(fx->msgs, 1);
  assert_int_equal(fx->eofs, 1);
  assert_null(strstr(log, "warning"));
}

static void channel_send_passes_fd_with_frame(void** state) {
  fx_t* fx = *state;
  char payload[256];
  int got = -1;
  int mfd = sealed_memfd("state for you");
  cJSON* msg = cJSON_CreateObject();
  cJSON_AddStringToObject(msg, "t", MEMSUP_MSG_WELCOME);
  cJSON_AddNumberToObject(msg, "v", 1);
  assert_int_equal(ms_channel_send(fx->ch, msg, mfd), 0);
  cJSON_Delete(msg);
  assert_true(fcntl(mfd, F_GETFD) >= 0); /* still the caller's */
  assert_true(read_frame(fx->peer, payload, sizeof(payload), &got) > 0);
  assert_string_equal(payload, "{\"t\":\"welcome\",\"v\":1}");
  assert_true(got >= 0);
  assert_fd_holds(got, "state for you");
  close(got);
  close(mfd);
}

static void channel_send_after_peer_closed_is_epipe(void** state) {
  fx_t* fx = *state;
  cJSON* msg = cJSON_CreateObject();
  cJSON_AddStringToObject(msg, "t", MEMSUP_MSG_SAVE);
  close(fx->peer);
  fx->peer = -1;
  assert_int_equal(ms_channel_send(fx->ch, msg, -1), -EPIPE);
  assert_int_equal(ms_channel_send(fx->ch, msg, -1), -EPIPE);
  cJSON_Delete(msg);
}

/* Reads frames "seq" 0..n-1 on a thread while the loop sends. */
typedef struct {
  pthread_t tid;
  int sock, n, ok;
  int done; /* set last */
  char fd_text[32];
  int fd_seq;
} reader_t;

static void* reader_main(void* arg) {
  reader_t* r = arg;
  static char payload[MEMSUP_FRAME_MAX + 1];
  r->ok = 1;
  for (int i = 0; i < r->n; i++) {
    int fd = -1;
    size_t len = read_frame(r->sock, payload, sizeof(payload), &fd);
    cJSON* m = cJSON_ParseWithLength(payload, len);
    cJSON* seq = cJSON_GetObjectItemCaseSensitive(m, "seq");
    cJSON* pad = cJSON_GetObjectItemCaseSensitive(m, "pad");
    if (!cJSON_IsNumber(seq) || seq->valuedouble != i || !cJSON_IsString(pad) ||
        strlen(pad->valuestring) != 30000)
      r->ok = 0;
    if (fd >= 0) {
      r->fd_seq = i;
      if (pread(fd, r->fd_text, sizeof(r->fd_text) - 1, 0) < 0) r->ok = 0;
      close(fd);
    }
    cJSON_Delete(m);
  }
  __atomic_store_n(&r->done, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

static void channel_send_queues_while_socket_is_full(void** state) {
  fx_t* fx = *state;
  reader_t r = {.sock = fx->peer, .n = 64, .fd_seq = -1};
  char* pad = malloc(30001);
  memset(pad, 'p', 30000);
  pad[30000] = '\0';
  /* 64 frames of 30 KB are far more than a socketpair holds, so most wait
   * in the queue; frame 40 carries a memfd closed right after the call. */
  for (int i = 0; i < r.n; i++) {
    cJSON* msg = cJSON_CreateObject();
    cJSON_AddStringToObject(msg, "t", MEMSUP_MSG_SAVE);
    cJSON_AddNumberToObject(msg, "seq", i);
    cJSON_AddStringToObject(msg, "pad", pad);
    int mfd = i == 40 ? sealed_memfd("queued fd") : -1;
    assert_int_equal(ms_channel_send(fx->ch, msg, mfd), 0);
    if (mfd >= 0) close(mfd);
    cJSON_Delete(msg);
  }
  free(pad);
  assert_int_equal(pthread_create(&r.tid, NULL, reader_main, &r), 0);
  while (!__atomic_load_n(&r.done, __ATOMIC_SEQ_CST))
    run_until(fx, &fx->ticks, fx->ticks + 1);
  assert_int_equal(pthread_join(r.tid, NULL), 0);
  assert_int_equal(r.ok, 1);
  assert_int_equal(r.fd_seq, 40);
  assert_string_equal(r.fd_text, "queued fd");
}

static void channel_send_rejects_oversized_message(void** state) {
  fx_t* fx = *state;
  char* big = malloc(MEMSUP_FRAME_MAX + 1);
  memset(big, 'x', MEMSUP_FRAME_MAX);
  big[MEMSUP_FRAME_MAX] = '\0';
  cJSON* msg = cJSON_CreateObject();
  cJSON_AddStringToObject(msg, "t", big);
  assert_int_equal(ms_channel_send(fx->ch, msg, -1), -EMSGSIZE);
  cJSON_Delete(msg);
  free(big);
}

int main(void) {
#define CH(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(crc32c_matches_known_answers),
      cmocka_unit_test(wire_peek_reports_every_status),
      cmocka_unit_test(decode_reads_hello),
      cmocka_unit_test(decode_reads_stats_with_heap_and_gauges),
      cmocka_unit_test(decode_reads_state_save_failed_purged_ready),
      cmocka_unit_test(decode_passes_unknown_type_and_truncates_strings),
      cmocka_unit_test(decode_rejects_each_malformed_message),
      cmocka_unit_test(decode_reads_welcome_save_and_purge_for_the_sdk),
      cmocka_unit_test(decode_rejects_malformed_messages_from_memsup),
      cmocka_unit_test(reader_reports_events_and_stops_at_another_version),
      cmocka_unit_test(decode_keeps_first_64_of_100_gauges),
      cmocka_unit_test(decode_reads_hello_prof_and_the_prof_request),
      cmocka_unit_test(decode_skips_long_and_non_numeric_gauges),
      CH(channel_delivers_frame_written_one_byte_at_a_time),
      CH(channel_delivers_two_frames_from_one_write),
      CH(channel_resyncs_after_garbage),
      CH(channel_treats_implausible_header_inside_garbage_as_garbage),
      CH(channel_skips_oversized_frame_by_its_length),
      CH(channel_ends_on_wrong_frame_version),
      CH(channel_skips_unknown_types_and_kinds),
      CH(channel_logs_bad_json_five_times_then_once_more),
      CH(channel_hands_memfd_to_state_message),
      CH(channel_keeps_fd_for_next_state_message),
      CH(channel_closes_unclaimed_and_surplus_fds),
      CH(channel_survives_stats_flood),
      CH(channel_bounds_a_garbage_flood_by_bytes),
      CH(channel_skips_huge_frame_within_byte_budget),
      CH(channel_reports_peer_close_once),
      CH(channel_delivers_frames_before_connection_reset),
      CH(channel_send_passes_fd_with_frame),
      CH(channel_send_after_peer_closed_is_epipe),
      CH(channel_send_queues_while_socket_is_full),
      CH(channel_send_rejects_oversized_message),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
