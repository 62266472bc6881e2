/* restartlog.h: the append-only JSON-lines log (--log FILE).
 *
 * One object per line, written with a single write(2) on an O_APPEND fd,
 * so each event is on disk (in the page cache) as soon as it happens, lines
 * from several memsup runs never interleave mid-line, and a log cut by a
 * crash loses at most its last line.
 */
#ifndef MS_RESTARTLOG_H
#define MS_RESTARTLOG_H

#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "heap.h"
#include "sample.h"

typedef struct ms_rlog_s ms_rlog_t;

/* Opens path for appending (created 0640 minus the umask; a symlink at
 * path is refused with -ELOOP, as are rotations onto one).  Returns 0 or
 * -errno; *out is
 * NULL when path is NULL (logging off) and every call below accepts it.
 * max_bytes > 0 bounds the file: a write that would pass it first renames
 * the file to path.1 (replacing an older one) and starts a new one, so a
 * sample log never holds more than about 2 * max_bytes on disk and both
 * files are valid JSON lines at every moment. */
int ms_rlog_open(const char* path, uint64_t max_bytes, ms_rlog_t** out);
void ms_rlog_close(ms_rlog_t* log);

/* A new event object with "ts" (RFC 3339 UTC, ms), "event", "pid" and
 * "gen" already set, in that order.  The caller adds members and passes
 * it to ms_rlog_write(), which always consumes (deletes) it. */
cJSON* ms_rlog_event(const char* event, pid_t pid, unsigned gen);
/* Appends obj as one line.  Returns 0 or -errno: the write's own errno
 * (ENOSPC on a full disk), after retrying a short write.  A line the disk
 * cut short stays as a torn line; the next event starts on a fresh line,
 * so every line that lands whole is one event.  Later calls keep trying:
 * logging resumes by itself once there is room.  The caller reports the
 * error; supervision goes on without the log. */
int ms_rlog_write(ms_rlog_t* log, cJSON* obj);

/* Adds the figures every memory claim cites to obj: footprint, rss, swap,
 * lazyfree (null when the sample did not read smaps_rollup), file, heap
 * (heap-in-use, null without the SDK), and with the SDK "allocator" and
 * "gauges" from stats. */
void ms_rlog_add_mem(cJSON* obj, const ms_mem_t* m, int has_heap,
                     const ms_heap_t* stats);
/* The same figures as a new object. */
cJSON* ms_rlog_mem(const ms_mem_t* m, int has_heap, const ms_heap_t* stats);

/* "2026-11-21T23:22:25.123Z" for the wall-clock time now. */
void ms_rfc3339_now(char buf[32]);

#endif
