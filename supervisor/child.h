/* child.h: one worker process: its uv_process_t, its channel and its
 * sampler.  Spawning, signalling and closing live here; what to do when
 * the worker says or does something is the restart machine's (machine.h),
 * carried out by supervise.c.
 */
#ifndef MS_CHILD_H
#define MS_CHILD_H

#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "channel.h"
#include "sample.h"

typedef struct ms_child_s ms_child_t;

typedef struct {
  void (*on_exit)(ms_child_t* c, int64_t exit_status, int term_signal);
  void (*on_message)(ms_child_t* c, const ms_msg_t* msg, int fd);
  void (*on_eof)(ms_child_t* c);
} ms_child_cb_t;

/* What child.c owns: the process handle, the channel and the sampler.
 * What memsup knows about the worker (SDK, figures, timestamps) is the
 * machine's (ms_worker_t in machine.h). */
struct ms_child_s {
  uv_process_t proc;
  ms_channel_t* chan;     /* NULL once closed, or when it could not open */
  ms_sampler_t sampler;
  pid_t pid;              /* also its process group and session id */
  int exited;             /* libuv reaped it */
  void* data;             /* the caller's (supervise.c: the supervisor) */
  /* private */
  const ms_child_cb_t* cb;
  int pending_close;
  int sampler_ok;
  int adopted;            /* memsup watch: not ours, never signalled */
  void (*closed_cb)(void* arg);
  void* closed_arg;
};

/* Most descriptors handed to a worker besides stdio and the channel. */
#define MS_CHILD_FDS_MAX 64

/* Spawns argv (PATH lookup, no shell) with env in a new session (so its
 * process group is its pid), stdio inherited, fds[0..nfds) at fds 3.. (the
 * listening sockets, listen.h) and the channel's worker end on fd
 * 3 + nfds (env must say so in MEMSUP_FD).  On success *out is owned by the caller until ms_child_close().
 * Returns 0 or a libuv error (UV_ENOENT: not found, UV_EACCES: not
 * executable); nothing is left allocated on failure. */
int ms_child_spawn(uv_loop_t* loop, char** argv, char** env, const int* fds,
                   size_t nfds, int tree, uint64_t interval_ns,
                   const ms_child_cb_t* cb, void* data, ms_child_t** out);

/* Watches a process memsup did not start (memsup watch --pid): no
 * process handle, no channel, only the sampler.  Returns 0 or -ENOMEM. */
int ms_child_adopt(pid_t pid, int tree, uint64_t interval_ns, void* data,
                   ms_child_t** out);

/* Signals the worker's whole process group.  ESRCH (all gone) is 0.  Once
 * the worker was reaped its group id could in principle belong to someone
 * else: then the group is signalled only while no process has that id
 * (see child.c). */
int ms_child_kill_group(ms_child_t* c, int sig);
/* Signals the worker process only (forwarded signals).  ESRCH is 0. */
int ms_child_kill(ms_child_t* c, int sig);

/* Closes the process handle and the channel and frees c once libuv is
 * done with them; then calls closed_cb(arg) if not NULL. */
void ms_child_close(ms_child_t* c, void (*closed_cb)(void* arg), void* arg);

/* Builds the worker environment: environ without any MEMSUP_FD, plus
 * MEMSUP_FD=3.  Returns a NULL-terminated array to free with
 * ms_child_env_free(), or NULL when out of memory. */
char** ms_child_env(void);
void ms_child_env_free(char** env);

#endif
