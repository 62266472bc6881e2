/* prof.h: where the heap profiles memsup asks of a worker go: next to the
 * restart log (--log FILE), named FILE.GEN.PID.start.heap and
 * FILE.GEN.PID.end.heap, so a log and its profiles travel together and
 * `memsup report` finds them by the names in the restart line.  Without
 * --log no profile is asked for.  docs/profiling.md.
 */
#ifndef MS_PROF_H
#define MS_PROF_H

#include <stddef.h>
#include <sys/types.h>

/* The absolute path of worker (pid, gen)'s profile (end: at its restart,
 * else at the start of its life) into buf.  Returns 0, -ENOENT without a
 * log, or -ENAMETOOLONG when it would not fit cap (or the wire's
 * MEMSUP_PROF_PATH_MAX). */
int ms_prof_path(char* buf, size_t cap, const char* log, pid_t pid,
                 unsigned gen, int end);

#endif
