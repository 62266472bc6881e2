/* shim.h: every worker is started through memsup itself, so that code can
 * run between fork and exec (uv_spawn runs none):
 *
 *   memsup --exec-shim [--ppid PID] [--ignore HEX] [--foreground] -- PATH ARGV0 [ARG...]
 *
 * in the child, before it execs PATH:
 * - PR_SET_PDEATHSIG(SIGKILL), then getppid() == PID checked: a worker
 *   dies with memsup, even when memsup is SIGKILLed (a memsup killed
 *   before the prctl is caught by the check).
 * - the signals memsup found ignored when it started (nohup's SIGHUP) are
 *   ignored again: libuv resets every disposition in the child, tini keeps
 *   the caller's.
 * - --foreground (stdin is memsup's terminal and memsup its foreground):
 *   the worker gets a process group of its own in memsup's session and the
 *   terminal's foreground, as tini does, so an interactive worker (bash -m)
 *   has job control; otherwise libuv made it a session of its own.
 * - LISTEN_PID=getpid() when the environment has LISTEN_FDS (listen.h).
 * The pid libuv returns is then the worker's.  The older form
 * "--exec-shim PATH ARGV0 ..." (no options) is still understood.
 */
#ifndef MS_SHIM_H
#define MS_SHIM_H

#include <stddef.h>
#include <stdint.h>

/* The first argument that makes memsup act as the exec shim. */
#define MS_EXEC_SHIM_ARG "--exec-shim"

/* Records, at start-up and before memsup changes any disposition, what
 * every worker's shim needs: memsup's path and pid, the signals it
 * inherited ignored, whether stdin is its foreground terminal. */
void ms_shim_init(void);

/* Whether workers take the terminal (--foreground): they then run in a
 * process group of their own in memsup's session, not a session. */
int ms_shim_foreground(void);

/* The signals memsup inherited ignored (bit sig-1), recorded by
 * ms_shim_init(). */
uint64_t ms_shim_ignored(void);

/* argv for uv_spawn that runs worker_argv (PATH resolved already as
 * resolved) through the shim with the options ms_shim_init() recorded.
 * One allocation: free() it.  Returns 0 or -ENOMEM. */
int ms_shim_argv(const char* resolved, char* const* worker_argv, char*** out);

/* memsup's own executable, for the shim: readlink("/proc/self/exe"), or
 * "/proc/self/exe" itself when the file was deleted (an upgrade).  Call it
 * once at start-up.  Not "/proc/self/exe" always: under valgrind that names
 * valgrind's tool, while readlink() is answered with memsup's path. */
void ms_listen_self_exe(char* out, size_t outlen);

/* {self, MS_EXEC_SHIM_ARG, resolved, worker_argv...}: the short form (no
 * options).  Free with free() (the strings are borrowed).  Returns 0 or
 * -ENOMEM. */
int ms_listen_shim_argv(const char* self, const char* resolved,
                        char* const* worker_argv, char*** out);

/* main() of "memsup --exec-shim ...".  Call it first thing in main(),
 * before any signal disposition changes.  Returns only on failure: 127
 * (not found), 126 (other exec error), 100 (usage). */
int ms_exec_shim_main(int argc, char** argv);

#endif
