/* badpeer.c: a hostile or buggy worker for memsup's bad-input tests.  It
 * speaks the raw protocol on $MEMSUP_FD (only the wire helpers come from
 * the SDK), misbehaves in the way --mode names, then stays alive printing
 * "badpeer alive" every second and leaking at --leak-mib-per-s, so memsup
 * must still supervise it (and restart it on the limit).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "memsup_wire.h"

#define MIB (1024 * 1024)
#define SMALL_STATE 4096
#define SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
#define STATS "{\"t\":\"stats\",\"heap\":{\"allocated\":1048576,\"active\":" \
              "1048576,\"resident\":2097152,\"retained\":0,\"mapped\":2097152}}"

static const char* const modes[] = {
    "garbage",  "badjson",  "toobig",   "unknown",    "flood",   "badversion",
    "bigstate", "badcrc",   "unsealed", "ignoresave", "diesave", "closechan"};
enum { GARBAGE, BADJSON, TOOBIG, UNKNOWN, FLOOD, BADVERSION, BIGSTATE, BADCRC,
       UNSEALED, IGNORESAVE, DIESAVE, CLOSECHAN, NMODES };

static int mode = -1, chan = -1;
static double leak_mib_per_s;
static unsigned long long big_bytes = 1ull << 30;
static size_t nin;
static uint8_t in[MEMSUP_FRAME_HDR + MEMSUP_FRAME_MAX];

static void usage(void) {
  fprintf(stderr,
          "usage: badpeer --mode garbage|badjson|toobig|unknown|flood|"
          "badversion|\n  bigstate|badcrc|unsealed|ignoresave|diesave|closechan"
          "\n  [--bytes N] [--leak-mib-per-s N]\n");
  exit(2);
}

static void die(const char* what) {
  fprintf(stderr, "badpeer: %s: %s\n", what, strerror(errno));
  exit(111);
}

/* Writes all of p, waiting when the socket is full.  Returns -1 once memsup
 * has gone; the caller then just carries on. */
static int send_all(const void* p, size_t n, int pass_fd) {
  size_t off = 0;
  while (off < n && chan >= 0) {
    ssize_t k = memsup_wire_send(chan, (const char*)p + off, n - off,
                                 off == 0 ? pass_fd : -1, 0);
    if (k == -EAGAIN) {
      struct pollfd pf = {.fd = chan, .events = POLLOUT};
      poll(&pf, 1, 100);
      continue;
    }
    if (k < 0) return -1;
    off += (size_t)k;
  }
  return off == n ? 0 : -1;
}

/* A whole frame: header and payload. */
static size_t frame(uint8_t* out, const char* json) {
  size_t len = strlen(json);
  memsup_wire_header(out, len);
  memcpy(out + MEMSUP_FRAME_HDR, json, len);
  return MEMSUP_FRAME_HDR + len;
}

static int send_json(const char* json, int pass_fd) {
  static uint8_t buf[MEMSUP_FRAME_HDR + 4096];
  return send_all(buf, frame(buf, json), pass_fd);
}

/* Returns the next message from memsup (the caller deletes it), or NULL
 * when none came within timeout_ms.  Descriptors that come along (a
 * welcome's state) are closed: badpeer restores nothing. */
static cJSON* read_msg(int timeout_ms) {
  for (;;) {
    uint32_t len;
    uint8_t ver;
    memsup_wire_status_t st = memsup_wire_peek(in, nin, &len, &ver);
    if (st == MEMSUP_WIRE_FRAME) {
      cJSON* j = cJSON_ParseWithLength((char*)in + MEMSUP_FRAME_HDR, len);
      nin -= MEMSUP_FRAME_HDR + len;
      memmove(in, in + MEMSUP_FRAME_HDR + len, nin);
      if (j) return j;
      continue;
    }
    if (st != MEMSUP_WIRE_NEED_MORE) nin = 0; /* memsup never sends junk */
    struct pollfd pf = {.fd = chan, .events = POLLIN};
    if (chan < 0 || poll(&pf, 1, timeout_ms) <= 0) return NULL;
    union {
      struct cmsghdr h;
      char buf[CMSG_SPACE(4 * sizeof(int))];
    } cm;
    struct iovec iov = {in + nin, sizeof(in) - nin};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf)};
    ssize_t n = recvmsg(chan, &mh, MSG_CMSG_CLOEXEC);
    if (n <= 0) {
      close(chan); /* memsup has gone: nothing more to misbehave on */
      chan = -1;
      return NULL;
    }
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
      for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        close(fd);
      }
    nin += (size_t)n;
  }
}

/* A memfd of size bytes (pattern for small ones, sparse zeros for big
 * ones), sealed when asked; *crc receives its real CRC-32C. */
static int make_state(unsigned long long size, int seal, uint32_t* crc) {
  static uint8_t buf[MIB];
  int fd = memfd_create("badpeer-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) die("memfd_create");
  if (size <= sizeof(buf)) {
    for (size_t i = 0; i < size; i++) buf[i] = (uint8_t)(i * 7);
    if (write(fd, buf, size) != (ssize_t)size) die("write state");
    *crc = memsup_crc32c(0, buf, size);
  } else {
    if (ftruncate(fd, (off_t)size) < 0) die("ftruncate state");
    memset(buf, 0, sizeof(buf));
    *crc = 0;
    for (unsigned long long off = 0; off < size; off += sizeof(buf))
      *crc = memsup_crc32c(*crc, buf, size - off < sizeof(buf) ? size - off
                                                               : sizeof(buf));
  }
  if (seal && fcntl(fd, F_ADD_SEALS, SEALS) < 0) die("seal state");
  return fd;
}

/* Answers a save request the way --mode says; other modes answer
 * correctly so that memsup's restart path is not held up. */
static void on_save(unsigned long long seq) {
  char msg[256];
  uint32_t crc;
  unsigned long long size = mode == BIGSTATE ? big_bytes : SMALL_STATE;
  if (mode == IGNORESAVE) return;
  int fd = make_state(size, mode != UNSEALED, &crc);
  if (mode == BADCRC) crc ^= 0xdeadbeef;
  snprintf(msg, sizeof(msg),
           "{\"t\":\"state\",\"seq\":%llu,\"kind\":\"save\",\"bytes\":%llu,"
           "\"crc32c\":%u}", seq, size, crc);
  if (mode == DIESAVE) {
    uint8_t buf[512];
    send_all(buf, frame(buf, msg) / 2, -1);
    _exit(3);
  }
  send_json(msg, fd);
  close(fd);
}

static void handshake(void) {
  char hello[128];
  snprintf(hello, sizeof(hello),
           "{\"t\":\"hello\",\"v\":%d,\"pid\":%d,\"allocator\":\"glibc\","
           "\"sdk\":\"badpeer\"}", mode == BADVERSION ? 99 : 1, (int)getpid());
  send_json(hello, -1);
  if (mode == BADVERSION) return;
  cJSON* w = read_msg(2000);
  const cJSON* t = cJSON_GetObjectItemCaseSensitive(w, "t");
  if (!cJSON_IsString(t) || strcmp(t->valuestring, "welcome") != 0) {
    fprintf(stderr, "badpeer: no welcome from memsup\n");
    exit(111);
  }
  cJSON_Delete(w);
  if (mode == CLOSECHAN) {
    close(chan);
    chan = -1;
    return;
  }
  send_json("{\"t\":\"ready\",\"restore\":\"none\"}", -1);
}

static void misbehave(void) {
  uint8_t* buf = malloc(MIB + 64);
  unsigned seed = (unsigned)getpid();
  size_t n;
  if (buf == NULL) die("malloc");
  switch (mode) {
    case GARBAGE:
      for (n = 0; n < 10000; n++) buf[n] = (uint8_t)rand_r(&seed);
      send_all(buf, n, -1);
      break;
    case BADJSON:
      send_json("{\"t\":\"stats\",\"heap\":{\"allocated\":", -1);
      send_json("[\"t\",\"stats\"]", -1);
      break;
    case TOOBIG:
      /* A header claiming 1 MiB, and 1 MiB of filler with no 'm' in it,
       * so a reader that skips the payload and one that resyncs on the
       * magic both land on the stats frame that follows. */
      memsup_wire_header(buf, 0);
      buf[4] = 0, buf[5] = 0x10, buf[6] = 0, buf[7] = 0;
      memset(buf + MEMSUP_FRAME_HDR, 'x', MIB);
      send_all(buf, MEMSUP_FRAME_HDR + MIB, -1);
      break;
    case UNKNOWN:
      send_json("{\"t\":\"frobnicate\",\"v\":1}", -1);
      break;
    case FLOOD:
      n = frame(buf, STATS);
      for (int i = 0; i < 50000 && chan >= 0; i++) send_all(buf, n, -1);
      break;
  }
  if (mode <= UNKNOWN) send_json(STATS, -1); /* the channel still works */
  free(buf);
}

int main(int argc, char** argv) {
  static const struct option longopts[] = {
      {"mode", required_argument, NULL, 'm'},
      {"bytes", required_argument, NULL, 'b'},
      {"leak-mib-per-s", required_argument, NULL, 'l'},
      {NULL, 0, NULL, 0}};
  const char* env = getenv(MEMSUP_FD_ENV);
  char* end;
  int c;

  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
      case 'm':
        for (int i = 0; i < NMODES; i++)
          if (strcmp(optarg, modes[i]) == 0) mode = i;
        break;
      case 'b':
        big_bytes = strtoull(optarg, &end, 10);
        if (end == optarg || *end) usage();
        break;
      case 'l':
        leak_mib_per_s = strtod(optarg, &end);
        if (end == optarg || *end || leak_mib_per_s < 0) usage();
        break;
      default:
        usage();
    }
  }
  if (mode < 0 || optind != argc) usage();
  if (env == NULL) {
    fprintf(stderr, "badpeer: $%s is not set: run me under memsup\n",
            MEMSUP_FD_ENV);
    return 2;
  }
  chan = atoi(env);
  setvbuf(stdout, NULL, _IOLBF, 0);

  handshake();
  misbehave();

  /* Alive: leak every 100 ms, say so every second, answer saves (the
   * stats modes also keep reporting, to show the channel survived). */
  size_t leak = (size_t)(leak_mib_per_s * MIB / 10);
  for (unsigned tick = 0;; tick++) {
    cJSON* m = read_msg(100);
    if (m) {
      const cJSON* t = cJSON_GetObjectItemCaseSensitive(m, "t");
      const cJSON* seq = cJSON_GetObjectItemCaseSensitive(m, "seq");
      if (cJSON_IsString(t) && strcmp(t->valuestring, "save") == 0)
        on_save(cJSON_IsNumber(seq) && seq->valuedouble >= 0
                    ? (unsigned long long)seq->valuedouble
                    : 0);
      cJSON_Delete(m);
      continue; /* reads do not count as ticks */
    }
    if (chan < 0) usleep(100000);
    if (leak > 0) {
      char* p = malloc(leak);
      if (p) memset(p, 'L', leak); /* never freed, on purpose */
    }
    if (tick % 10 == 0) {
      printf("badpeer alive\n");
      if (mode <= UNKNOWN) send_json(STATS, -1);
    }
  }
}
