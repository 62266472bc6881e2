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

typedef struct ms_rlog_s ms_rlog_t;

/* Opens path for appending (created 0644).  Returns 0 or -errno; *out is
 * NULL when path is NULL (logging off) and every call below accepts it. */
int ms_rlog_open(const char* path, ms_rlog_t** out);
void ms_rlog_close(ms_rlog_t* log);

/* A new event object with "ts" (RFC 3339 UTC, ms), "event", "pid" and
 * "gen" already set, in that order.  The caller adds members and passes
 * it to ms_rlog_write(), which always consumes (deletes) it. */
cJSON* ms_rlog_event(const char* event, pid_t pid, unsigned gen);
/* Appends obj as one line.  Returns 0 or -errno (logged once by the
 * caller; supervision goes on without the log). */
int ms_rlog_write(ms_rlog_t* log, cJSON* obj);

/* "2026-11-21T23:22:25.123Z" for the wall-clock time now. */
void ms_rfc3339_now(char buf[32]);

#endif
