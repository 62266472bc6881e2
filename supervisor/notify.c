/* notify.c: sd_notify datagrams and the watchdog timer.  Owns one
 * AF_UNIX datagram socket and one timer; knows nothing of workers: the
 * supervisor says when it is ready, what its status is and when it stops.
 */
#include "notify.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct ms_notify_s {
  int fd;
  struct sockaddr_un addr;
  socklen_t addrlen;
  uint64_t watchdog_usec;
  uv_timer_t timer;
};

static int parse_u64(const char* s, uint64_t* out) {
  char* end;
  if (s == NULL || *s < '0' || *s > '9') return -EINVAL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end) return -EINVAL;
  *out = v;
  return 0;
}

static void watchdog_cb(uv_timer_t* t) {
  /* Only sent while the loop turns: that is what systemd watches. */
  ms_notify_send(t->data, "WATCHDOG=1");
}

int ms_notify_open(uv_loop_t* loop, const char* socket_name,
                   const char* watchdog_usec, const char* watchdog_pid,
                   ms_notify_t** out, char* err, size_t errlen) {
  ms_notify_t* n = NULL;
  uint64_t usec = 0, pid = 0;
  size_t len;

  *out = NULL;
  if (socket_name == NULL || *socket_name == '\0') return 0;
  if (socket_name[0] != '/' && socket_name[0] != '@') {
    snprintf(err, errlen,
             "NOTIFY_SOCKET=%s: expected an absolute path or "
             "@abstract name",
             socket_name);
    return -EINVAL;
  }
  len = strlen(socket_name);
  if (len >= sizeof(n->addr.sun_path)) {
    snprintf(err, errlen, "NOTIFY_SOCKET=%s: longer than a socket path may be",
             socket_name);
    return -EINVAL;
  }
  if (watchdog_usec && *watchdog_usec && parse_u64(watchdog_usec, &usec) < 0) {
    snprintf(err, errlen, "WATCHDOG_USEC=%s: not a number of microseconds",
             watchdog_usec);
    return -EINVAL;
  }
  if (watchdog_pid && *watchdog_pid && parse_u64(watchdog_pid, &pid) < 0) {
    snprintf(err, errlen, "WATCHDOG_PID=%s: not a pid", watchdog_pid);
    return -EINVAL;
  }
  /* The watchdog is someone else's when WATCHDOG_PID names another
   * process (variables inherited through a wrapper). */
  if (pid != 0 && pid != (uint64_t)getpid()) usec = 0;

  n = calloc(1, sizeof(*n));
  if (n == NULL) {
    snprintf(err, errlen, "notify: out of memory");
    return -ENOMEM;
  }
  n->addr.sun_family = AF_UNIX;
  memcpy(n->addr.sun_path, socket_name, len);
  if (socket_name[0] == '@') n->addr.sun_path[0] = '\0';
  /* Abstract names are not NUL-terminated: the length is the name. */
  n->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
                           (socket_name[0] == '/' ? 1 : 0));
  n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (n->fd < 0) {
    int e = -errno;
    snprintf(err, errlen, "notify socket: %s", strerror(-e));
    free(n);
    return e;
  }
  n->watchdog_usec = usec;
  n->timer.data = n;
  uv_timer_init(loop, &n->timer);
  if (usec > 0) {
    uint64_t ms = usec / 2000;
    uv_timer_start(&n->timer, watchdog_cb, ms ? ms : 1, ms ? ms : 1);
  }
  /* The supervisor's own handles decide when the loop ends. */
  uv_unref((uv_handle_t*)&n->timer);
  *out = n;
  return 0;
}

int ms_notify_open_env(uv_loop_t* loop, ms_notify_t** out, char* err,
                       size_t errlen) {
  return ms_notify_open(loop, getenv("NOTIFY_SOCKET"), getenv("WATCHDOG_USEC"),
                        getenv("WATCHDOG_PID"), out, err, errlen);
}

int ms_notify_send(ms_notify_t* n, const char* text) {
  ssize_t r;
  if (n == NULL) return 0;
  do
    r = sendto(n->fd, text, strlen(text), MSG_NOSIGNAL,
               (struct sockaddr*)&n->addr, n->addrlen);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : 0;
}

static int send_with_status(ms_notify_t* n, const char* head,
                            const char* status) {
  char msg[512];
  if (n == NULL) return 0;
  int k = snprintf(msg, sizeof(msg), "%sSTATUS=%s", head, status ? status : "");
  if (k < 0) return -EINVAL;
  /* One line: systemd reads KEY=VALUE per line. */
  for (char* p = msg + strlen(head); *p; p++)
    if (*p == '\n') *p = ' ';
  return ms_notify_send(n, msg);
}

int ms_notify_ready(ms_notify_t* n, const char* status) {
  return send_with_status(n, "READY=1\n", status);
}

int ms_notify_status(ms_notify_t* n, const char* status) {
  return send_with_status(n, "", status);
}

int ms_notify_stopping(ms_notify_t* n) {
  return ms_notify_send(n, "STOPPING=1");
}

uint64_t ms_notify_watchdog_usec(const ms_notify_t* n) {
  return n ? n->watchdog_usec : 0;
}

static void timer_closed_cb(uv_handle_t* h) {
  free(h->data);
}

void ms_notify_close(ms_notify_t* n) {
  if (n == NULL) return;
  close(n->fd);
  n->fd = -1;
  uv_close((uv_handle_t*)&n->timer, timer_closed_cb);
}

size_t ms_notify_env_filter(char** env) {
  static const char* const drop[] = {"NOTIFY_SOCKET", "WATCHDOG_USEC",
                                     "WATCHDOG_PID",  "LISTEN_FDS",
                                     "LISTEN_PID",    "LISTEN_FDNAMES"};
  size_t k = 0;
  for (size_t i = 0; env[i]; i++) {
    int keep = 1;
    for (size_t d = 0; d < sizeof(drop) / sizeof(drop[0]) && keep; d++) {
      size_t l = strlen(drop[d]);
      if (strncmp(env[i], drop[d], l) == 0 && env[i][l] == '=') keep = 0;
    }
    if (keep) env[k++] = env[i];
  }
  env[k] = NULL;
  return k;
}
