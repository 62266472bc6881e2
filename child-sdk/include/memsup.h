/* memsup.h: the child SDK, the only header a worker includes.
 *
 * A worker started by memsup finds its channel in $MEMSUP_FD.  A worker
 * started any other way runs exactly as before: every call below is then a
 * cheap no-op returning 0, and memsup_restore() reports "no state".
 *
 * Threading: the SDK keeps one global channel.  All calls are thread-safe,
 * except that the save callback runs on whichever thread calls
 * memsup_process() (or on the helper thread started by
 * memsup_start_thread()), so it must be safe to call from there.  Setting
 * a gauge or reading the heap never waits for a save, a purge or a send:
 * only the calls that must send a reply (memsup_ready(), answers to save)
 * wait when memsup is slow to read, and memsup_report() then drops the
 * report (-EAGAIN) rather than wait.
 * Every function returns 0 on success or a negative errno; the SDK never
 * exits, aborts or raises a signal in the worker.  When memsup has gone
 * (EPIPE), reporting is switched off and calls return -EPIPE.
 */
#ifndef MEMSUP_H
#define MEMSUP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* libmemsup is built with hidden visibility: only what this header
 * declares is exported. */
#if defined(__GNUC__)
#define MEMSUP_API __attribute__((visibility("default")))
#else
#define MEMSUP_API
#endif

/* Connects to memsup when $MEMSUP_FD is set: sends the handshake and reads
 * memsup's welcome (with the saved state, if any) waiting at most 2 s.
 * Returns 0 when connected or when not under memsup (memsup_active() says
 * which), or a negative errno on a broken channel. */
MEMSUP_API int memsup_init(void);
/* 1 when connected to memsup, 0 otherwise. */
MEMSUP_API int memsup_active(void);

/* Saving state.  The callback writes the worker's state with
 * memsup_state_write() and returns 0, or a negative errno to report a
 * failed save (memsup then keeps the last good state). */
typedef struct memsup_state memsup_state_t;
typedef int (*memsup_save_fn)(memsup_state_t* st, void* arg);
MEMSUP_API void memsup_on_save(memsup_save_fn fn, void* arg);
MEMSUP_API int memsup_state_write(memsup_state_t* st, const void* buf, size_t len);

/* Saved state handed over by memsup.  On success *data and *len point at a
 * read-only, checksum-verified copy that stays valid until memsup_ready().
 * Returns 0 with state, -ENOENT when there is none (first start, or not
 * under memsup), -EBADMSG when the bytes fail their checksum. */
MEMSUP_API int memsup_restore(const void** data, size_t* len);
/* Tells memsup the worker is up (state restored or not) and releases the
 * restored bytes.  Call it once, after memsup_restore(). */
MEMSUP_API int memsup_ready(void);
/* Calls the save callback now and hands the result to memsup as the state
 * to restore if the worker later crashes. */
MEMSUP_API int memsup_checkpoint(void);

/* Heap figures and gauges.  memsup_report() reads allocator statistics
 * (jemalloc's mallctl when present, glibc's mallinfo2() otherwise) and
 * sends them with all gauges.  memsup_process() also sends them whenever
 * memsup's interval has passed. */
MEMSUP_API int memsup_report(void);
MEMSUP_API int memsup_gauge_set(const char* name, double value);

/* Event-loop integration: poll memsup_fd() for readability and call
 * memsup_process() when it is readable and at least every
 * memsup_interval_ms().  memsup_fd() is -1 when not under memsup. */
MEMSUP_API int memsup_fd(void);
MEMSUP_API int memsup_interval_ms(void);
MEMSUP_API int memsup_process(void);

/* Blocking workers: a helper thread that does the polling and reporting.
 * The save callback then runs on that thread. */
MEMSUP_API int memsup_start_thread(void);

/* Allocator and heap figures as last read (zero before the first read). */
typedef struct {
  const char* allocator; /* "jemalloc", "glibc" */
  uint64_t allocated;    /* heap-in-use */
  uint64_t active, resident, retained, mapped;
} memsup_heap_t;
MEMSUP_API int memsup_heap_read(memsup_heap_t* out);

#ifdef __cplusplus
}
#endif
#endif
