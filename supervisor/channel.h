/* channel.h: memsup's end of the worker channel (a SOCK_STREAM socketpair,
 * framing in memsup_wire.h, prose in docs/protocol.md).
 *
 * The channel reads with the frame reader and decoder the SDK uses too
 * (memsup_wire.h: a buffer and a descriptor queue per channel, never
 * static), delivers ms_msg_t, and queues outgoing frames while the socket
 * is full.  Bad input is counted and logged a bounded number of times; it
 * never closes the channel by itself except for a wrong protocol version.
 * What memsup reads per worker is bounded per 100 ms window, so a flooding
 * worker costs it about 1 % of a core at most (docs/protocol.md, Floods).
 */
#ifndef MS_CHANNEL_H
#define MS_CHANNEL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "memsup_wire.h"

/* Messages are decoded by the decoder memsup shares with the SDK (wire.c);
 * these are its types under the supervisor's names. */
typedef memsup_msg_type_t ms_msg_type_t;
#define MS_MSG_UNKNOWN MEMSUP_T_UNKNOWN /* unknown "t", or memsup's own */
#define MS_MSG_HELLO MEMSUP_T_HELLO
#define MS_MSG_STATS MEMSUP_T_STATS
#define MS_MSG_STATE MEMSUP_T_STATE
#define MS_MSG_SAVE_FAILED MEMSUP_T_SAVE_FAILED
#define MS_MSG_PURGED MEMSUP_T_PURGED
#define MS_MSG_READY MEMSUP_T_READY

#define MS_GAUGES_MAX MEMSUP_GAUGES_MAX
#define MS_GAUGE_NAME_MAX MEMSUP_GAUGE_NAME_MAX
typedef memsup_gauge_t ms_gauge_t;
/* One decoded message.  Only the fields of its type are meaningful. */
typedef memsup_msg_t ms_msg_t;

/* Decodes one frame payload from a worker: memsup_msg_decode() with
 * MEMSUP_FROM_WORKER.  Returns 0 (type may be MS_MSG_UNKNOWN), or -EBADMSG
 * for anything that is not a JSON object with a string "t" and correctly
 * typed members.  Pure; the fuzz target drives it. */
int ms_msg_decode(const char* payload, size_t len, ms_msg_t* out);

typedef struct ms_channel_s ms_channel_t;

typedef struct {
  /* A decoded message.  fd is a descriptor that arrived with it (state
   * messages) or -1; the callee owns it and must close it. */
  void (*on_message)(ms_channel_t* ch, const ms_msg_t* msg, int fd, void* arg);
  /* The worker closed its end, or the socket failed.  The channel stays
   * allocated until ms_channel_close(). */
  void (*on_eof)(ms_channel_t* ch, void* arg);
} ms_channel_cb_t;

/* Creates the socketpair: *parent for memsup, *child to give the worker
 * (both O_CLOEXEC; uv_spawn's dup2 onto fd 3 clears it in the worker).
 * Returns 0 or -errno. */
int ms_channel_pair(int* parent, int* child);

/* Starts reading fd (ownership passes to the channel) on loop.  The
 * channel and its uv_poll_t belong to the caller until ms_channel_close().
 * Returns 0 or a negative errno (fd is closed then). */
int ms_channel_open(uv_loop_t* loop, int fd, const ms_channel_cb_t* cb,
                    void* arg, ms_channel_t** out);

/* Sends msg (borrowed) as one frame, with pass_fd (borrowed, -1 for none)
 * attached by SCM_RIGHTS.  Queues when the socket is full.  Returns 0,
 * -EMSGSIZE when the frame is too big, -EPIPE once the worker has gone. */
int ms_channel_send(ms_channel_t* ch, const cJSON* msg, int pass_fd);

/* Counters for logs and tests.  lost_fds: descriptors closed because too
 * many were unclaimed, or truncated by the kernel (MSG_CTRUNC). */
typedef struct {
  uint64_t frames, bad_frames, bad_json, unknown, dropped_stats, bytes_in;
  uint64_t lost_fds;
} ms_channel_stats_t;
void ms_channel_get_stats(const ms_channel_t* ch, ms_channel_stats_t* out);

/* Hands data to the reassembly logic exactly as if recvmsg had read it:
 * complete frames are decoded and delivered through the callbacks before
 * it returns.  Returns how many bytes it took (fewer than n when the input
 * buffer is full: call again), 0 once reading has stopped.  For the fuzz
 * target and tests; the channel itself reads straight into the buffer. */
size_t ms_channel_feed(ms_channel_t* ch, const uint8_t* data, size_t n);

/* Stops reading, closes the socket and any unclaimed descriptors, and
 * frees ch once libuv has closed the poll handle; then calls closed_cb
 * (may be NULL) with arg. */
void ms_channel_close(ms_channel_t* ch, void (*closed_cb)(void* arg), void* arg);

#endif
