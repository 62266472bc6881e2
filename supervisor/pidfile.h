/* pidfile.h: the worker's pid in --state-dir, so that a memsup started
 * again with the same directory stops a worker its predecessor left
 * behind (one that outlived memsup although the shim's PR_SET_PDEATHSIG
 * should have ended it: a set-uid worker, which the kernel clears it for,
 * or a memsup that died between fork and the prctl) instead of running a
 * second one beside it.
 *
 * DIR/worker.pid holds "PID STARTTIME\n" then the worker's argv, NUL
 * separated.  A pid is reused by the kernel: the process is taken for the
 * leftover only if /proc/PID/stat's start time (clock ticks since boot,
 * fixed for the process's life, exec included) and /proc/PID/cmdline both
 * match.  Anything else (gone, another program, unreadable) is left
 * alone.
 */
#ifndef MS_PIDFILE_H
#define MS_PIDFILE_H

#include <stdint.h>
#include <sys/types.h>

#define MS_PIDFILE_NAME "worker.pid"

/* Start time of pid (field 22 of /proc/PID/stat), or 0 when unreadable. */
uint64_t ms_proc_starttime(pid_t pid);

/* Records the worker (tmp file, rename, mode 0600, no symlink followed).
 * Returns 0 or -errno. */
int ms_pidfile_write(const char* dir, pid_t pid, char* const* argv);

/* Stops the leftover worker DIR/worker.pid names if it is really the one
 * recorded: SIGKILL to its process group and itself, then waits up to
 * wait_ms for it to go.  Returns its pid when one was stopped, 0 when there
 * was none (no file, gone, not ours), or -errno (it did not go). */
pid_t ms_pidfile_stop_leftover(const char* dir, char* const* argv, int wait_ms);

/* Removes DIR/worker.pid (memsup ends with no worker left). */
void ms_pidfile_remove(const char* dir);

#endif
