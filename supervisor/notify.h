/* notify.h: the sd_notify protocol written by hand (no libsystemd): state
 * datagrams to $NOTIFY_SOCKET and the watchdog keep-alive at half of
 * $WATCHDOG_USEC, driven by a timer on memsup's loop so that a stuck loop
 * stops the pings and systemd restarts memsup.
 */
#ifndef MS_NOTIFY_H
#define MS_NOTIFY_H

#include <stdint.h>

#include <uv.h>

typedef struct ms_notify_s ms_notify_t;

/* Sets up notification from the given values (those of NOTIFY_SOCKET,
 * WATCHDOG_USEC and WATCHDOG_PID; any may be NULL).  socket is an absolute
 * path or "@name" (abstract).  Without a socket *out is NULL and 0 is
 * returned: every other call then accepts NULL and does nothing.  The
 * watchdog runs when watchdog_usec > 0 and watchdog_pid is unset or equal
 * to getpid().  Returns 0, or -EINVAL (unusable value) / -errno with a
 * one-line reason in err.  *out is owned by the caller until
 * ms_notify_close(). */
int ms_notify_open(uv_loop_t* loop, const char* socket,
                   const char* watchdog_usec, const char* watchdog_pid,
                   ms_notify_t** out, char* err, size_t errlen);

/* The same, reading the three variables from memsup's environment. */
int ms_notify_open_env(uv_loop_t* loop, ms_notify_t** out, char* err,
                       size_t errlen);

/* Sends one datagram of "KEY=VALUE" lines, never blocking: a full socket
 * drops it.  Returns 0 or -errno (-ECONNREFUSED, -ENOENT: nobody
 * listens; -EAGAIN: dropped). */
int ms_notify_send(ms_notify_t* n, const char* text);

/* READY=1 with a STATUS= line; STATUS= alone; STOPPING=1.  The status
 * text is one line: newlines become spaces. */
int ms_notify_ready(ms_notify_t* n, const char* status);
int ms_notify_status(ms_notify_t* n, const char* status);
int ms_notify_stopping(ms_notify_t* n);

/* The watchdog period systemd expects (0: no watchdog), in microseconds. */
uint64_t ms_notify_watchdog_usec(const ms_notify_t* n);

/* Stops the watchdog, closes the socket; n is freed once libuv has closed
 * the timer (the loop must run on). */
void ms_notify_close(ms_notify_t* n);

/* Removes from a NULL-terminated environment array, in place, what
 * systemd meant for memsup and not for the worker: NOTIFY_SOCKET,
 * WATCHDOG_USEC, WATCHDOG_PID, LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES
 * (listen.h adds the worker's own LISTEN_* back).  Frees nothing.
 * Returns the number of entries left. */
size_t ms_notify_env_filter(char** env);

#endif
