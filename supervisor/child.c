/* child.c: spawning and ending one worker.  The worker runs in its own
 * session (UV_PROCESS_DETACHED calls setsid), so its pid is also its
 * process group id and a stop can reach grandchildren too; with a
 * terminal (shim.h: --foreground) it runs in a group of its own in
 * memsup's session instead, the terminal's foreground.  It is started
 * through the exec shim (shim.h), so it dies with memsup. */
#include "child.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "listen.h"
#include "log.h"
#include "shim.h"
#include "memsup_wire.h"

extern char** environ;

static void exit_cb(uv_process_t* proc, int64_t exit_status, int term_signal) {
  ms_child_t* c = proc->data;
  c->exited = 1;
  c->cb->on_exit(c, exit_status, term_signal);
}

static void chan_message_cb(ms_channel_t* ch, const ms_msg_t* msg, int fd,
                            void* arg) {
  (void)ch;
  ms_child_t* c = arg;
  c->cb->on_message(c, msg, fd);
}

static void chan_eof_cb(ms_channel_t* ch, void* arg) {
  (void)ch;
  ms_child_t* c = arg;
  c->cb->on_eof(c);
}

static const ms_channel_cb_t chan_cb = {chan_message_cb, chan_eof_cb};

static void closed_one(ms_child_t* c) {
  if (--c->pending_close > 0) return;
  void (*cb)(void*) = c->closed_cb;
  void* arg = c->closed_arg;
  if (c->sampler_ok) ms_sampler_free(&c->sampler);
  free(c);
  if (cb) cb(arg);
}

static void proc_close_cb(uv_handle_t* h) { closed_one(h->data); }
static void chan_closed_cb(void* arg) { closed_one(arg); }


int ms_child_spawn(uv_loop_t* loop, char** argv, char** env, const int* fds,
                   size_t nfds, int tree, uint64_t interval_ns,
                   const ms_child_cb_t* cb, void* data, ms_child_t** out) {
  int parent_fd = -1, child_fd = -1, err;
  ms_child_t* c = calloc(1, sizeof(*c));
  if (c == NULL) return UV_ENOMEM;
  c->cb = cb;
  c->data = data;

  err = ms_channel_pair(&parent_fd, &child_fd);
  if (err < 0) goto fail;

  /* Listening sockets (listen.h) at 3.., as systemd hands them over;
   * then the channel, at 3 + nfds (MEMSUP_FD in env says so). */
  uv_stdio_container_t stdio[3 + MS_CHILD_FDS_MAX + 1];
  if (nfds > MS_CHILD_FDS_MAX) {
    err = UV_E2BIG;
    goto fail;
  }
  for (int i = 0; i < 3; i++) {
    stdio[i].flags = UV_INHERIT_FD;
    stdio[i].data.fd = i;
  }
  for (size_t i = 0; i < nfds; i++) {
    stdio[3 + i].flags = UV_INHERIT_FD;
    stdio[3 + i].data.fd = fds[i];
  }
  stdio[3 + nfds].flags = UV_INHERIT_FD;
  stdio[3 + nfds].data.fd = child_fd;

  /* The shim execs the worker; "not found" and "not executable" are
   * still told here, at spawn time, as uv_spawn would (exit 127/126 on the
   * first start). */
  char resolved[4096];
  char** shim_argv = NULL;
  err = ms_exec_resolve(argv[0], getenv("PATH"), resolved, sizeof(resolved));
  if (err < 0) {
    err = err == -ENOENT ? UV_ENOENT : UV_EACCES;
    goto fail;
  }
  if ((err = ms_shim_argv(resolved, argv, &shim_argv)) < 0) goto fail;

  uv_process_options_t opt;
  memset(&opt, 0, sizeof(opt));
  opt.file = shim_argv[0];
  opt.args = shim_argv;
  opt.env = env;
  opt.exit_cb = exit_cb;
  opt.flags = ms_shim_foreground() ? 0 : UV_PROCESS_DETACHED;
  opt.stdio = stdio;
  opt.stdio_count = (int)(4 + nfds);
  c->proc.data = c;
  err = uv_spawn(loop, &c->proc, &opt);
  free(shim_argv);
  close(child_fd); /* the worker has its copy (or never will) */
  child_fd = -1;
  if (err < 0) {
    /* uv_spawn needs uv_close even when it fails, and the handle's memory
     * must stay valid until the close callback, which frees c. */
    close(parent_fd);
    c->pending_close = 1;
    uv_close((uv_handle_t*)&c->proc, proc_close_cb);
    return err;
  }
  c->pid = c->proc.pid;
  ms_sampler_init(&c->sampler, c->pid, tree, interval_ns);
  c->sampler_ok = 1;
  err = ms_channel_open(loop, parent_fd, &chan_cb, c, &c->chan);
  parent_fd = -1; /* the channel owns it now, even on failure */
  if (err < 0) {
    ms_warn("open channel to pid %d: %s (worker runs without SDK)", c->pid,
            strerror(-err));
    c->chan = NULL;
  }
  *out = c;
  return 0;

fail:
  if (parent_fd >= 0) close(parent_fd);
  if (child_fd >= 0) close(child_fd);
  free(c);
  return err;
}

int ms_child_adopt(pid_t pid, int tree, uint64_t interval_ns, void* data,
                   ms_child_t** out) {
  ms_child_t* c = calloc(1, sizeof(*c));
  if (c == NULL) return -ENOMEM;
  c->adopted = 1;
  c->pid = pid;
  c->data = data;
  ms_sampler_init(&c->sampler, pid, tree, interval_ns);
  c->sampler_ok = 1;
  *out = c;
  return 0;
}

/* The group's id is the worker's pid.  While any member lives, the kernel
 * cannot hand that number to a new process; once the group is empty and
 * the worker reaped, it can, and the new owner may make it its own group.
 * So after the reap, a process with pid == the group id means the id was
 * reused (a group can only be created by the process whose pid it is): the
 * group that was ours is gone, and signalling it would hit a stranger.
 * EPERM says such a process exists as surely as success does. */
static int id_reused(pid_t pgid) {
  return kill(pgid, 0) == 0 || errno == EPERM;
}

int ms_child_kill_group(ms_child_t* c, int sig) {
  if (c->adopted) return 0;
  if (c->exited && id_reused(c->pid)) return 0;
  if (kill(-c->pid, sig) < 0 && errno != ESRCH) return -errno;
  return 0;
}

int ms_child_kill(ms_child_t* c, int sig) {
  if (c->exited || c->adopted) return 0;
  if (kill(c->pid, sig) < 0 && errno != ESRCH) return -errno;
  return 0;
}

void ms_child_close(ms_child_t* c, void (*closed_cb)(void* arg), void* arg) {
  c->closed_cb = closed_cb;
  c->closed_arg = arg;
  c->pending_close = 1;
  if (c->adopted) {
    closed_one(c);
    return;
  }
  if (c->chan) {
    c->pending_close++;
    ms_channel_close(c->chan, chan_closed_cb, c);
    c->chan = NULL;
  }
  uv_close((uv_handle_t*)&c->proc, proc_close_cb);
}

char** ms_child_env(void) {
  size_t n = 0, k = 0;
  while (environ[n]) n++;
  char** env = calloc(n + 2, sizeof(*env));
  if (env == NULL) return NULL;
  size_t plen = strlen(MEMSUP_FD_ENV);
  for (size_t i = 0; i < n; i++) {
    if (strncmp(environ[i], MEMSUP_FD_ENV, plen) == 0 && environ[i][plen] == '=')
      continue;
    env[k++] = environ[i];
  }
  env[k] = strdup(MEMSUP_FD_ENV "=3");
  if (env[k] == NULL) {
    free(env);
    return NULL;
  }
  return env;
}

void ms_child_env_free(char** env) {
  if (env == NULL) return;
  size_t n = 0;
  while (env[n + 1]) n++;
  free(env[n]); /* only the last entry is ours */
  free(env);
}
