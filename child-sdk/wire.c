/* wire.c: frame headers and CRC-32C, compiled into both the SDK and memsup
 * so the two sides cannot disagree about the format. */
#include "memsup_wire.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>

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
