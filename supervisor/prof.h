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

/* How many worker generations' profiles are kept: older ones are removed
 * as each restart's profile is asked for, so a worker restarted every few
 * minutes for weeks does not fill the log's disk. */
#define MS_PROF_KEEP 8

/* Removes the profiles of generation gen (any pid: runs of memsup that
 * append to one log restart gen at 1) next to log.  Returns how many files
 * were removed, or -errno. */
int ms_prof_remove_gen(const char* log, unsigned gen);

#endif
