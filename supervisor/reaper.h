/* reaper.h: reaping orphans when memsup is PID 1 or a subreaper, without
 * stealing the exit status of the worker that libuv waits for. */
#ifndef MS_REAPER_H
#define MS_REAPER_H

#include <stddef.h>
#include <sys/types.h>

/* Makes memsup a child subreaper (prctl PR_SET_CHILD_SUBREAPER); not
 * needed as PID 1.  Returns 0 or -errno. */
int ms_reaper_enable(void);
/* 1 when memsup already is a child subreaper (PR_GET_CHILD_SUBREAPER): the
 * bit survives exec, so a parent that set it and exec'd memsup (tini's own
 * reaping test does) leaves memsup the orphans to reap. */
int ms_reaper_inherited(void);
/* Reaps every zombie child of memsup except the nkeep pids in keep
 * (libuv's own workers, whose status libuv collects).  Returns how many
 * were reaped. */
int ms_reaper_sweep(const pid_t* keep, size_t nkeep);

/* Parser of a /proc/self/task/TID/children text ("123 456 "), one pid
 * per call: reads the next number at *p (NUL-terminated), stores it in
 * *pid (0 when it is not a pid: <= 0 or beyond pid_t) and moves *p past
 * it.  Returns 1, or 0 when no number follows (end of the list).  Pure. */
int ms_reaper_next_child(const char** p, pid_t* pid);

#endif
