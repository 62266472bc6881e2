/* wire.c: frame headers, the frame reader, the message decoder and
 * CRC-32C, compiled into both the SDK and memsup so the two sides cannot
 * disagree about the format or about what to do with bad bytes.  Sockets
 * and buffers belong to the callers; nothing here logs.
 */
#include "memsup_wire.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A channel that only ever carries small messages never needs the whole
 * 64 KiB; the buffer grows to the largest frame actually seen. */
#define READER_START 16384
#define READER_MAX (MEMSUP_FRAME_HDR + MEMSUP_FRAME_MAX)

int memsup_wire_header(uint8_t hdr[MEMSUP_FRAME_HDR], size_t len) {
  if (len > MEMSUP_FRAME_MAX) return -EMSGSIZE;
  hdr[0] = 'm';
  hdr[1] = 's';
  hdr[2] = MEMSUP_WIRE_VERSION;
  hdr[3] = MEMSUP_FRAME_JSON;
  hdr[4] = (uint8_t)(len >> 24);
  hdr[5] = (uint8_t)(len >> 16);
  hdr[6] = (uint8_t)(len >> 8);
  hdr[7] = (uint8_t)len;
  return 0;
}

memsup_wire_status_t memsup_wire_peek(const uint8_t* buf, size_t n,
                                      uint32_t* len, uint8_t* version) {
  if (n < 1) return MEMSUP_WIRE_NEED_MORE;
  if (buf[0] != 'm') return MEMSUP_WIRE_BAD_MAGIC;
  if (n < 2) return MEMSUP_WIRE_NEED_MORE;
  if (buf[1] != 's') return MEMSUP_WIRE_BAD_MAGIC;
  if (n < MEMSUP_FRAME_HDR) return MEMSUP_WIRE_NEED_MORE;
  *len = ((uint32_t)buf[4] << 24) | ((uint32_t)buf[5] << 16) |
         ((uint32_t)buf[6] << 8) | (uint32_t)buf[7];
  *version = buf[2];
  if (*len > MEMSUP_FRAME_MAX) return MEMSUP_WIRE_TOO_BIG;
  if (buf[2] != MEMSUP_WIRE_VERSION) return MEMSUP_WIRE_BAD_VERSION;
  if (n - MEMSUP_FRAME_HDR < *len) return MEMSUP_WIRE_NEED_MORE;
  if (buf[3] != MEMSUP_FRAME_JSON) return MEMSUP_WIRE_UNKNOWN_KIND;
  return MEMSUP_WIRE_FRAME;
}

ssize_t memsup_wire_send(int sock, const void* buf, size_t len, int pass_fd,
                         int flags) {
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } cm;
  struct iovec iov = {(void*)buf, len};
  struct msghdr mh;
  ssize_t n;
  memset(&mh, 0, sizeof(mh));
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (pass_fd >= 0) {
    memset(&cm, 0, sizeof(cm)); /* no uninitialised padding on the wire */
    mh.msg_control = cm.buf;
    mh.msg_controllen = sizeof(cm.buf);
    struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
  }
  do
    n = sendmsg(sock, &mh, flags | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : n;
}

/* ---- the frame reader --------------------------------------------------- */

int memsup_reader_init(memsup_reader_t* r) {
  memset(r, 0, sizeof(*r));
  r->buf = malloc(READER_START);
  if (r->buf == NULL) return -ENOMEM;
  r->cap = READER_START;
  return 0;
}

void memsup_reader_free(memsup_reader_t* r) {
  int fd;
  while ((fd = memsup_reader_take_fd(r)) >= 0) close(fd);
  free(r->buf);
  r->buf = NULL;
  r->len = r->cap = r->pos = 0;
}

int memsup_reader_take_fd(memsup_reader_t* r) {
  int fd;
  if (r->nfds == 0) return -1;
  fd = r->fds[0];
  memmove(r->fds, r->fds + 1, --r->nfds * sizeof(int));
  return fd;
}

/* Moves unconsumed bytes to the front and grows a full buffer.  Returns the
 * free space.  A buffer of READER_MAX bytes is never full of an incomplete
 * frame (a header's length is at most MEMSUP_FRAME_MAX), so a full one
 * always holds an event for memsup_reader_next. */
static size_t make_room(memsup_reader_t* r) {
  if (r->pos > 0) {
    memmove(r->buf, r->buf + r->pos, r->len - r->pos);
    r->len -= r->pos;
    r->pos = 0;
  }
  if (r->len == r->cap && r->cap < READER_MAX) {
    size_t cap = r->cap * 2 > READER_MAX ? READER_MAX : r->cap * 2;
    uint8_t* p = realloc(r->buf, cap);
    if (p != NULL) {
      r->buf = p;
      r->cap = cap;
    }
  }
  return r->cap - r->len;
}

static void keep_fds(memsup_reader_t* r, struct msghdr* mh) {
  for (struct cmsghdr* c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (r->nfds < MEMSUP_FD_QUEUE) {
        r->fds[r->nfds++] = fd;
      } else {
        close(fd);
        r->lost_fds++;
      }
    }
  }
  /* The kernel has closed the descriptors that did not fit. */
  if (mh->msg_flags & MSG_CTRUNC) r->truncated++;
}

ssize_t memsup_reader_recv(memsup_reader_t* r, int sock, size_t max,
                           int flags) {
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * MEMSUP_FD_QUEUE)];
  } cm;
  struct iovec iov;
  struct msghdr mh;
  size_t room;
  ssize_t n;

  if (r->buf == NULL) return -ENOMEM;
  room = make_room(r);
  if (room == 0) return -ENOBUFS;
  if (max > 0 && max < room) room = max;
  iov.iov_base = r->buf + r->len;
  iov.iov_len = room;
  memset(&mh, 0, sizeof(mh));
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = cm.buf;
  mh.msg_controllen = sizeof(cm.buf);
  do
    n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  keep_fds(r, &mh);
  r->len += (size_t)n;
  return n;
}

size_t memsup_reader_put(memsup_reader_t* r, const void* data, size_t n) {
  size_t room;
  if (r->stopped || r->buf == NULL) return 0;
  room = make_room(r);
  if (n > room) n = room;
  if (n > 0) memcpy(r->buf + r->len, data, n);
  r->len += n;
  return n;
}

memsup_read_t memsup_reader_next(memsup_reader_t* r, memsup_frame_t* f) {
  memset(f, 0, sizeof(*f));
  if (r->stopped) return MEMSUP_READ_STOPPED;
  for (;;) {
    uint8_t* p = r->buf + r->pos;
    size_t n = r->len - r->pos;
    uint32_t len = 0;
    uint8_t version = 0;
    if (r->skip > 0) {
      size_t k = n < r->skip ? n : (size_t)r->skip;
      r->pos += k;
      r->skip -= k;
      if (r->skip > 0) return MEMSUP_READ_MORE;
      continue;
    }
    memsup_wire_status_t st = memsup_wire_peek(p, n, &len, &version);
    if (st == MEMSUP_WIRE_NEED_MORE) return MEMSUP_READ_MORE;
    /* Inside a run of garbage an "ms" is only a candidate frame start: one
     * whose header is also implausible (another version, a huge length) is
     * more garbage.  Believing it would end the channel for a version
     * mismatch or skip up to 4 GiB of real frames. */
    if (r->garbage &&
        (st == MEMSUP_WIRE_BAD_VERSION || st == MEMSUP_WIRE_TOO_BIG))
      st = MEMSUP_WIRE_BAD_MAGIC;
    if (st == MEMSUP_WIRE_BAD_MAGIC) {
      /* Resync on the next 'm'.  A run of garbage is one event. */
      uint8_t* m = memchr(p + 1, 'm', n - 1);
      r->pos += m ? (size_t)(m - p) : n;
      if (r->garbage) continue;
      r->garbage = 1;
      return MEMSUP_READ_GARBAGE;
    }
    r->garbage = 0;
    f->len = len;
    f->version = version;
    f->kind = p[3];
    switch (st) {
      case MEMSUP_WIRE_BAD_VERSION:
        r->stopped = 1;
        return MEMSUP_READ_BAD_VERSION;
      case MEMSUP_WIRE_TOO_BIG:
        /* Dropping the payload by its length keeps the reader in step
         * with the sender; resyncing inside it could take its bytes for
         * frames. */
        r->pos += MEMSUP_FRAME_HDR;
        r->skip = len;
        return MEMSUP_READ_TOO_BIG;
      case MEMSUP_WIRE_UNKNOWN_KIND:
        r->pos += MEMSUP_FRAME_HDR + len;
        return MEMSUP_READ_UNKNOWN_KIND;
      default:
        f->payload = p + MEMSUP_FRAME_HDR;
        r->pos += MEMSUP_FRAME_HDR + len;
        return MEMSUP_READ_FRAME;
    }
  }
}

/* ---- the message decoder ------------------------------------------------ */

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

/* Reads "v" into out->version; 1 when the rest must not be read. */
static int get_version(const cJSON* root, memsup_msg_t* out) {
  uint64_t v;
  if (get_uint(root, "v", 1, 0x1p31, &v)) return -EBADMSG;
  out->version = (int)v;
  return v != MEMSUP_WIRE_VERSION;
}

static int get_stats(const cJSON* root, memsup_msg_t* out) {
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
    if (out->ngauges == MEMSUP_GAUGES_MAX) break;
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) ||
        strlen(it->string) >= MEMSUP_GAUGE_NAME_MAX)
      continue;
    strcpy(out->gauges[out->ngauges].name, it->string);
    out->gauges[out->ngauges++].value = it->valuedouble;
  }
  return 0;
}

static int one_of(const char* s, const char* a, const char* b, const char* c) {
  return strcmp(s, a) == 0 || strcmp(s, b) == 0 || (c && strcmp(s, c) == 0);
}

/* state {seq, kind, bytes, crc32c} from a worker, or welcome's "state"
 * object {bytes, crc32c, kind} from memsup. */
static int get_state(const cJSON* obj, memsup_msg_t* out, int welcome) {
  uint64_t crc;
  if ((!welcome && get_uint(obj, "seq", 1, 0x1p64, &out->seq)) ||
      get_str(obj, "kind", 1, out->kind, sizeof(out->kind)) ||
      get_uint(obj, "bytes", 1, 0x1p64, &out->bytes) ||
      get_uint(obj, "crc32c", 1, 0x1p32, &crc))
    return -EBADMSG;
  if (!one_of(out->kind, "save", "checkpoint", welcome ? "disk" : NULL))
    return -EBADMSG;
  out->crc32c = (uint32_t)crc;
  return 0;
}

static int get_welcome(const cJSON* root, memsup_msg_t* out) {
  const cJSON* st = member(root, "state");
  int err = get_version(root, out);
  if (err) return err < 0 ? err : 0;
  if (get_uint(root, "gen", 0, 0x1p64, &out->gen) ||
      get_uint(root, "interval_ms", 0, 0x1p53, &out->interval_ms) ||
      get_str(root, "metric", 0, out->metric, sizeof(out->metric)) ||
      get_uint(root, "limit", 0, 0x1p64, &out->limit) ||
      get_uint(root, "soft_limit", 0, 0x1p64, &out->soft_limit))
    return -EBADMSG;
  if (st == NULL) return 0;
  if (!cJSON_IsObject(st) || get_state(st, out, 1)) return -EBADMSG;
  out->has_state = 1;
  return 0;
}

static const struct {
  const char* t;
  memsup_msg_type_t type;
  memsup_dir_t dir;
} msg_types[] = {
    {MEMSUP_MSG_HELLO, MEMSUP_T_HELLO, MEMSUP_FROM_WORKER},
    {MEMSUP_MSG_STATS, MEMSUP_T_STATS, MEMSUP_FROM_WORKER},
    {MEMSUP_MSG_STATE, MEMSUP_T_STATE, MEMSUP_FROM_WORKER},
    {MEMSUP_MSG_SAVE_FAILED, MEMSUP_T_SAVE_FAILED, MEMSUP_FROM_WORKER},
    {MEMSUP_MSG_PURGED, MEMSUP_T_PURGED, MEMSUP_FROM_WORKER},
    {MEMSUP_MSG_READY, MEMSUP_T_READY, MEMSUP_FROM_WORKER},
    {MEMSUP_MSG_WELCOME, MEMSUP_T_WELCOME, MEMSUP_FROM_MEMSUP},
    {MEMSUP_MSG_SAVE, MEMSUP_T_SAVE, MEMSUP_FROM_MEMSUP},
    {MEMSUP_MSG_PURGE, MEMSUP_T_PURGE, MEMSUP_FROM_MEMSUP},
    {MEMSUP_MSG_PROF, MEMSUP_T_PROF, MEMSUP_FROM_MEMSUP},
};

static int decode_members(const cJSON* root, memsup_msg_t* out) {
  uint64_t pid;
  int err;
  switch (out->type) {
    case MEMSUP_T_HELLO:
      err = get_version(root, out);
      if (err) return err < 0 ? err : 0;
      if (get_uint(root, "pid", 0, 0x1p31, &pid) ||
          get_str(root, "allocator", 0, out->allocator, sizeof(out->allocator)))
        return -EBADMSG;
      out->pid = (long)pid;
      /* "prof" (optional, newer SDKs): a boolean. */
      if (member(root, "prof") != NULL) {
        if (!cJSON_IsBool(member(root, "prof"))) return -EBADMSG;
        out->prof = cJSON_IsTrue(member(root, "prof"));
      }
      return 0;
    case MEMSUP_T_STATS:
      return get_stats(root, out);
    case MEMSUP_T_STATE:
      return get_state(root, out, 0);
    case MEMSUP_T_SAVE_FAILED:
      return get_uint(root, "seq", 0, 0x1p64, &out->seq) ||
                     get_str(root, "error", 0, out->text, sizeof(out->text))
                 ? -EBADMSG
                 : 0;
    case MEMSUP_T_PURGED:
      return get_uint(root, "seq", 0, 0x1p64, &out->seq) ||
                     get_uint(root, "resident_before", 0, 0x1p64,
                              &out->purge_before) ||
                     get_uint(root, "resident_after", 0, 0x1p64,
                              &out->purge_after)
                 ? -EBADMSG
                 : 0;
    case MEMSUP_T_READY:
      return get_str(root, "restore", 0, out->text, sizeof(out->text)) ||
                     get_uint(root, "restored_unix_us", 0, 0x1p53,
                              &out->restored_unix_us)
                 ? -EBADMSG
                 : 0;
    case MEMSUP_T_WELCOME:
      return get_welcome(root, out);
    case MEMSUP_T_SAVE:
    case MEMSUP_T_PURGE:
      return get_uint(root, "seq", 1, 0x1p64, &out->seq);
    case MEMSUP_T_PROF: {
      /* A path cut short would dump somewhere memsup does not look. */
      const cJSON* path = member(root, "path");
      if (!cJSON_IsString(path) || path->valuestring[0] != '/' ||
          strlen(path->valuestring) >= sizeof(out->path))
        return -EBADMSG;
      return get_str(root, "path", 1, out->path, sizeof(out->path));
    }
    case MEMSUP_T_UNKNOWN:
      return 0;
  }
  return 0;
}

int memsup_msg_decode(const char* payload, size_t len, memsup_dir_t dir,
                      memsup_msg_t* out) {
  cJSON* root = NULL;
  const cJSON* t;
  const char* end = NULL;
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
  out->type = MEMSUP_T_UNKNOWN;
  for (size_t i = 0; i < sizeof(msg_types) / sizeof(msg_types[0]); i++)
    if (msg_types[i].dir == dir && strcmp(t->valuestring, msg_types[i].t) == 0)
      out->type = msg_types[i].type;
  err = decode_members(root, out) ? -EBADMSG : 0;
end:
  cJSON_Delete(root);
  return err;
}

/* CRC-32C.  Handing over a 256 MiB state must run at >= 1 GB/s and both
 * sides checksum it, so the SSE4.2 crc32 instruction is used when present
 * (several GB/s); the table fallback (slicing-by-8, ~1.5 GB/s) keeps other
 * CPUs correct. */
static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void make_table(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
    table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int t = 1; t < 8; t++)
      table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

static uint32_t crc_sw(uint32_t c, const uint8_t* p, size_t n) {
  pthread_once(&table_once, make_table);
  while (n >= 8) {
    uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
                       (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
    c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^
        table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^ table[3][p[4]] ^
        table[2][p[5]] ^ table[1][p[6]] ^ table[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n--) c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
  return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c,
                                                          const uint8_t* p,
                                                          size_t n) {
  uint64_t c64 = c;
  while (n >= 8) {
    uint64_t v;
    __builtin_memcpy(&v, p, 8);
    c64 = __builtin_ia32_crc32di(c64, v);
    p += 8;
    n -= 8;
  }
  c = (uint32_t)c64;
  while (n--) c = __builtin_ia32_crc32qi(c, *p++);
  return c;
}
#endif

uint32_t memsup_crc32c(uint32_t crc, const void* buf, size_t len) {
  uint32_t c = ~crc;
#if defined(__x86_64__)
  if (__builtin_cpu_supports("sse4.2")) return ~crc_hw(c, buf, len);
#endif
  return ~crc_sw(c, buf, len);
}
