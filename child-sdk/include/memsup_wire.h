/* memsup_wire.h: the wire format between memsup and a worker, shared by the
 * supervisor and the child SDK.  docs/protocol.md is the prose version of
 * this file; change both together and bump MEMSUP_WIRE_VERSION when an old
 * peer would misread the new format.
 *
 * The channel is a SOCK_STREAM socketpair.  Every message is one frame:
 *
 *   offset 0  'm' 's'        magic
 *          2  version        MEMSUP_WIRE_VERSION
 *          3  kind           MEMSUP_FRAME_JSON (others: skipped, counted)
 *          4  length         payload bytes, big-endian uint32
 *          8  payload        one JSON object with a string member "t"
 *
 * A state blob does not travel in frames: it is a sealed memfd passed with
 * SCM_RIGHTS alongside a "state" or "welcome" frame.
 */
#ifndef MEMSUP_WIRE_H
#define MEMSUP_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MEMSUP_WIRE_VERSION 1
#define MEMSUP_FRAME_HDR 8
/* Largest payload either side accepts.  Stats with a few hundred gauges fit
 * easily; anything bigger is a bug or garbage, and the reader resyncs. */
#define MEMSUP_FRAME_MAX (64 * 1024)
#define MEMSUP_FRAME_JSON 'J'
/* Environment variable naming the worker's end of the channel. */
#define MEMSUP_FD_ENV "MEMSUP_FD"

/* Message types ("t"). Worker -> memsup. */
#define MEMSUP_MSG_HELLO "hello"
#define MEMSUP_MSG_STATS "stats"
#define MEMSUP_MSG_STATE "state"
#define MEMSUP_MSG_SAVE_FAILED "save_failed"
#define MEMSUP_MSG_PURGED "purged"
#define MEMSUP_MSG_READY "ready"
/* memsup -> worker. */
#define MEMSUP_MSG_WELCOME "welcome"
#define MEMSUP_MSG_SAVE "save"
#define MEMSUP_MSG_PURGE "purge"

/* Writes the 8-byte header for a JSON payload of len bytes into hdr.
 * Returns 0, or -EMSGSIZE when len exceeds MEMSUP_FRAME_MAX. */
int memsup_wire_header(uint8_t hdr[MEMSUP_FRAME_HDR], size_t len);

/* Result of looking at the start of a byte buffer. */
typedef enum {
  MEMSUP_WIRE_NEED_MORE = 0, /* fewer than a whole frame buffered */
  MEMSUP_WIRE_FRAME,         /* a whole frame: payload at buf+8, *len bytes */
  MEMSUP_WIRE_BAD_MAGIC,     /* not a frame start: drop one byte, resync */
  MEMSUP_WIRE_BAD_VERSION,   /* version differs: *len says what to skip */
  MEMSUP_WIRE_TOO_BIG,       /* length over MEMSUP_FRAME_MAX: drop header */
  MEMSUP_WIRE_UNKNOWN_KIND   /* whole frame of an unknown kind: skip it */
} memsup_wire_status_t;

/* Inspects buf[0..n) without copying.  *len receives the payload length
 * whenever the header could be read.  Pure; safe on any bytes. */
memsup_wire_status_t memsup_wire_peek(const uint8_t* buf, size_t n,
                                      uint32_t* len, uint8_t* version);

/* One sendmsg(2) of buf[0..len) on sock with flags (MSG_NOSIGNAL is
 * always added), with pass_fd attached by SCM_RIGHTS when >= 0: the
 * descriptor rides on the first byte sent, so send it with a frame's
 * start.  Retries EINTR.  Returns the bytes sent or -errno. */
ssize_t memsup_wire_send(int sock, const void* buf, size_t len, int pass_fd,
                         int flags);

/* CRC-32C (Castagnoli) of buf, continuing from crc (start with 0).  Uses
 * the SSE4.2 instruction when the CPU has it. */
uint32_t memsup_crc32c(uint32_t crc, const void* buf, size_t len);

#endif
