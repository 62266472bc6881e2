/* listen.h: listening sockets memsup holds for its workers, so that
 * connections queue in the kernel while one worker replaces another
 * instead of being refused.  They come from systemd (socket activation:
 * LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES) or from --listen [ADDR:]PORT,
 * and every worker gets them as systemd would hand them over: fds 3..,
 * LISTEN_FDS, LISTEN_FDNAMES, and LISTEN_PID set to the worker's own pid.
 *
 * LISTEN_PID can only be known after fork, and uv_spawn runs nothing
 * between fork and exec.  So when there are sockets the worker is started
 * through memsup itself: "memsup --exec-shim PATH ARGV0 ARGS..." sets
 * LISTEN_PID=getpid() and execs PATH; the pid libuv returns is then the
 * worker's.  The channel moves to fd 3+N, announced in MEMSUP_FD.
 */
#ifndef MS_LISTEN_H
#define MS_LISTEN_H

#include <stddef.h>

#include "addr.h"
#include "shim.h" /* the exec shim sets LISTEN_PID */

#define MS_LISTEN_MAX 64

typedef struct {
  int fd[MS_LISTEN_MAX];        /* held, close-on-exec in memsup */
  char name[MS_LISTEN_MAX][64]; /* LISTEN_FDNAMES entry */
  size_t n;
} ms_listen_t;

/* Empty set. */
void ms_listen_init(ms_listen_t* l);

/* Takes the sockets systemd passed (values of LISTEN_FDS, LISTEN_PID,
 * LISTEN_FDNAMES; any may be NULL): fds 3 .. 3+N-1, marked close-on-exec.
 * When LISTEN_FDS or LISTEN_PID is unset, or LISTEN_PID names another
 * process (the
 * variables leaked through some wrapper), nothing is taken and 0 is
 * returned.  Returns 0, or -EINVAL / -EBADF / -E2BIG with a one-line
 * reason in err. */
int ms_listen_adopt(ms_listen_t* l, const char* fds, const char* pid,
                    const char* names, char* err, size_t errlen);

/* The same from memsup's environment. */
int ms_listen_adopt_env(ms_listen_t* l, char* err, size_t errlen);

/* --listen: binds addr (SO_REUSEADDR) and listens with the largest
 * backlog the kernel allows; the socket is named "listen".  Returns 0, or
 * -errno with a reason in err ("127.0.0.1:8080: Address already in
 * use"). */
int ms_listen_add(ms_listen_t* l, const ms_addr_t* addr, char* err,
                  size_t errlen);

/* Port a socket is bound to (for port 0), or -errno. */
int ms_listen_port(const ms_listen_t* l, size_t i);

/* Closes every socket. */
void ms_listen_close(ms_listen_t* l);

/* A worker's environment: base without MEMSUP_FD, MEMSUP_WORKER,
 * NOTIFY_SOCKET, WATCHDOG_*, LISTEN_*; then MEMSUP_FD=<memsup_fd>,
 * MEMSUP_WORKER=<worker> (its slot in the pool, 0 without), and with sockets
 * LISTEN_FDS=N and LISTEN_FDNAMES=a:b (LISTEN_PID is the shim's job).
 * Every string is a copy: free with ms_listen_env_free().  Returns 0 or
 * -ENOMEM. */
int ms_listen_env(const ms_listen_t* l, char* const* base, int memsup_fd,
                  int worker, char*** out);
void ms_listen_env_free(char** env);

/* Finds what execvp would run for file (PATH from the given value, or
 * the default when NULL).  Lets the caller report "not found" at spawn
 * time, as uv_spawn does, although the exec happens later in the shim.
 * Returns 0, -ENOENT, -EACCES or -ENAMETOOLONG. */
int ms_exec_resolve(const char* file, const char* path_env, char* out,
                    size_t outlen);

#endif
