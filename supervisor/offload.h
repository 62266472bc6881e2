/* offload.h: memsup's work that must not run on its event loop, done on
 * libuv's threadpool: the evidence read of /proc/PID/smaps (up to ~0.2 s
 * on a worker with 60,000 mappings), the check of a state memfd (a CRC-32C
 * over up to --max-state, 1 GiB) and the store of the last good state in
 * --state-dir (write and fsync).  Each call queues one job and returns;
 * its callback runs on the loop thread, exactly once (at once when the job
 * cannot be queued).  A job in flight keeps uv_run() going until it is
 * back, so nothing outlives the loop.
 */
#ifndef MS_OFFLOAD_H
#define MS_OFFLOAD_H

#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "evidence.h"
#include "handoff.h"
#include "machine.h"

/* Reads the top MS_EVIDENCE_READ_ROWS mappings of pid ranked by rank, with
 * tree those of the session member holding the most, and the split by
 * process (ms_evidence_read).  n is the row count or a negative errno;
 * rows and where are valid during the call. */
typedef void (*ms_evidence_cb)(void* arg, unsigned id, int n,
                               const ms_mapping_t* rows,
                               const ms_evidence_where_t* where);
void ms_offload_evidence(uv_loop_t* loop, pid_t pid, int tree, ms_rank_t rank,
                         unsigned id, ms_evidence_cb cb, void* arg);

/* Checks st->fd (ms_state_verify against st->bytes, st->crc32c, max).  err
 * is 0 or its -errno (-EBADMSG when st->fd < 0); the fd stays the
 * caller's, and so is st, copied (valid during the call). */
typedef void (*ms_verify_cb)(void* arg, const ms_ev_state_t* st, int err);
void ms_offload_verify(uv_loop_t* loop, const ms_ev_state_t* st, uint64_t max,
                       ms_verify_cb cb, void* arg);

/* Keeps --state-dir in step with the last good state: one store at a time,
 * and one more after it when the state changed meanwhile. */
typedef struct {
  uv_loop_t* loop;
  const char* dir;          /* NULL: no --state-dir, nothing is stored */
  const ms_state_t* state;  /* the last good state (the caller's) */
  int storing, again, stopped;
} ms_store_t;

void ms_store_init(ms_store_t* s, uv_loop_t* loop, const char* dir,
                   const ms_state_t* state);
/* Stores *state as it is now (a dup of its memfd, close-on-exec). */
void ms_store_request(ms_store_t* s);
/* memsup is ending: no store starts any more (one in flight completes). */
void ms_store_stop(ms_store_t* s);

#endif
