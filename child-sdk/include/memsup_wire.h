/* memsup_wire.h: the wire format between memsup and a worker, and the one
 * frame reader and message decoder that both ends use (wire.c).  Internal:
 * shared by the supervisor and the child SDK, never installed; a worker
 * includes only memsup.h.  docs/protocol.md is the prose version of this
 * file; change both together and bump MEMSUP_WIRE_VERSION when an old peer
 * would misread the new format.
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
/* Optional (older SDKs ignore it): dump a heap profile to "path" now
 * (jemalloc's prof.dump), sent only to a worker whose hello said
 * "prof": true. */
#define MEMSUP_MSG_PROF "prof"
#define MEMSUP_PROF_PATH_MAX 256

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

/* ---- the frame reader ---------------------------------------------------
 *
 * One reader per channel end, used by memsup (supervisor/channel.c) and by
 * the SDK (memsup.c) alike, so both treat every byte the same way: it
 * receives with recvmsg (descriptors into a queue), reassembles frames from
 * partial reads, resyncs after garbage, skips an oversized frame by its
 * length and a frame of another kind whole, and stops for good at a header
 * of another version.  What to do about each event (count, log, answer) is
 * the caller's business. */

/* Descriptors kept until a message claims them; more are closed. */
#define MEMSUP_FD_QUEUE 8

typedef struct {
  uint8_t* buf;     /* malloc'ed; grows up to MEMSUP_FRAME_HDR + MAX */
  size_t len, cap;  /* bytes held, capacity */
  size_t pos;       /* bytes of buf already consumed (compacted lazily) */
  uint64_t skip;    /* payload bytes of an oversized frame still to drop */
  int garbage;      /* inside a run of bytes that are not a frame */
  int stopped;      /* a header of another version was read */
  int fds[MEMSUP_FD_QUEUE];
  size_t nfds;
  uint64_t lost_fds;  /* closed for want of room in the queue */
  uint64_t truncated; /* recvmsg calls that reported MSG_CTRUNC */
} memsup_reader_t;

typedef enum {
  MEMSUP_READ_MORE = 0,     /* nothing complete is buffered: receive more */
  MEMSUP_READ_FRAME,        /* a JSON frame: f->payload, f->len */
  MEMSUP_READ_GARBAGE,      /* a run of non-frame bytes begins (once a run) */
  MEMSUP_READ_TOO_BIG,      /* f->len over the maximum: payload is skipped */
  MEMSUP_READ_UNKNOWN_KIND, /* a whole frame of kind f->kind was skipped */
  MEMSUP_READ_BAD_VERSION,  /* version f->version: the reader has stopped */
  MEMSUP_READ_STOPPED       /* stopped earlier: nothing more will come */
} memsup_read_t;

typedef struct {
  const uint8_t* payload; /* valid until the next recv/put on the reader */
  uint32_t len;
  uint8_t kind, version;
} memsup_frame_t;

/* Prepares r (the buffer starts small and grows on demand).  Returns 0 or
 * -ENOMEM. */
int memsup_reader_init(memsup_reader_t* r);
/* Frees the buffer and closes queued descriptors.  Safe on a zeroed or
 * already freed reader. */
void memsup_reader_free(memsup_reader_t* r);
/* One recvmsg(2) of at most max bytes (0: as many as fit) from sock with
 * flags (MSG_CMSG_CLOEXEC is always added), retrying EINTR.  Descriptors
 * go to the queue.  Returns the bytes read, 0 at end of file, or -errno
 * (-EAGAIN when nothing is waiting, -ENOBUFS when the buffer is full of
 * events not yet taken with memsup_reader_next). */
ssize_t memsup_reader_recv(memsup_reader_t* r, int sock, size_t max, int flags);
/* Appends data as if recvmsg had read it (tests, fuzzing).  Returns how
 * many bytes it took: fewer than n when the buffer is full (take events,
 * then call again), 0 when stopped. */
size_t memsup_reader_put(memsup_reader_t* r, const void* data, size_t n);
/* The next event from the buffered bytes.  Pure apart from r. */
memsup_read_t memsup_reader_next(memsup_reader_t* r, memsup_frame_t* f);
/* The oldest queued descriptor (the caller owns it), or -1. */
int memsup_reader_take_fd(memsup_reader_t* r);

/* ---- messages ------------------------------------------------------------
 *
 * One decoder for both directions, with one set of rules (docs/protocol.md
 * "Values"): exactly one JSON object with a string "t"; integers whole,
 * finite, >= 0 and in range; null means absent; unknown members ignored;
 * a known member of the wrong type makes the message invalid. */

typedef enum {
  MEMSUP_T_UNKNOWN = 0, /* a "t" not known, or of the other direction */
  /* worker -> memsup */
  MEMSUP_T_HELLO,
  MEMSUP_T_STATS,
  MEMSUP_T_STATE,
  MEMSUP_T_SAVE_FAILED,
  MEMSUP_T_PURGED,
  MEMSUP_T_READY,
  /* memsup -> worker */
  MEMSUP_T_WELCOME,
  MEMSUP_T_SAVE,
  MEMSUP_T_PURGE,
  MEMSUP_T_PROF
} memsup_msg_type_t;

/* Which end is reading: the types of the other direction decode as
 * MEMSUP_T_UNKNOWN. */
typedef enum { MEMSUP_FROM_WORKER, MEMSUP_FROM_MEMSUP } memsup_dir_t;

#define MEMSUP_GAUGES_MAX 64
#define MEMSUP_GAUGE_NAME_MAX 64

typedef struct {
  char name[MEMSUP_GAUGE_NAME_MAX];
  double value;
} memsup_gauge_t;

/* One decoded message.  Only the fields of its type are meaningful. */
typedef struct {
  memsup_msg_type_t type;
  char t[32];               /* the "t" string as sent (for UNKNOWN logs) */
  /* hello, welcome: "v".  When it is not MEMSUP_WIRE_VERSION nothing else
   * of the message is read: a newer peer may lay it out differently. */
  int version;
  /* hello */
  long pid;
  char allocator[16];       /* "jemalloc", "glibc", "none" */
  int prof;                 /* "prof": true: it can dump heap profiles */
  /* stats (also "before"/"after" figures of purged) */
  uint64_t allocated, active, resident, retained, mapped;
  int has_heap;
  size_t ngauges;
  memsup_gauge_t gauges[MEMSUP_GAUGES_MAX];
  /* state; welcome's "state" object (has_state) */
  char kind[16];            /* "save", "checkpoint" (welcome also "disk") */
  uint64_t bytes;
  uint32_t crc32c;
  /* state, save_failed, purged, save, purge: the request's "seq" (0 for a
   * voluntary checkpoint) */
  uint64_t seq;
  /* purged: resident before/after the purge as the worker measured it */
  uint64_t purge_before, purge_after;
  /* ready: wall clock (Unix µs) when the worker's memsup_restore() had
   * the verified bytes, 0 when it did not restore */
  uint64_t restored_unix_us;
  /* save_failed: reason; ready: "restored", "none" or "corrupt" */
  char text[128];
  /* welcome */
  uint64_t gen, interval_ms, limit, soft_limit;
  char metric[16];
  int has_state;
  /* prof: where to dump (a path longer than fits is an invalid message) */
  char path[MEMSUP_PROF_PATH_MAX];
} memsup_msg_t;

/* Decodes one frame payload read by dir's end.  Returns 0 (type may be
 * MEMSUP_T_UNKNOWN), or -EBADMSG for anything that breaks the rules above.
 * Pure; the fuzz targets drive it. */
int memsup_msg_decode(const char* payload, size_t len, memsup_dir_t dir,
                      memsup_msg_t* out);

/* CRC-32C (Castagnoli) of buf, continuing from crc (start with 0).  Uses
 * the SSE4.2 instruction when the CPU has it. */
uint32_t memsup_crc32c(uint32_t crc, const void* buf, size_t len);

#endif
