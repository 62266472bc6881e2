/* listen.c: the listening sockets memsup holds across worker restarts,
 * what a worker's environment says about them, and the exec shim that
 * sets LISTEN_PID.  Owns the sockets; leaves spawning to child.c.
 */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define SD_LISTEN_FDS_START 3

void ms_listen_init(ms_listen_t* l) {
  memset(l, 0, sizeof(*l));
}

static int parse_long(const char* s, long* out) {
  char* end;
  if (s == NULL || *s < '0' || *s > '9') return -EINVAL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end) return -EINVAL;
  *out = v;
  return 0;
}

int ms_listen_adopt(ms_listen_t* l, const char* fds, const char* pid,
                    const char* names, char* err, size_t errlen) {
  long n, p;
  if (fds == NULL || *fds == '\0') return 0;
  if (parse_long(fds, &n) < 0) {
    snprintf(err, errlen, "LISTEN_FDS=%s: not a number", fds);
    return -EINVAL;
  }
  /* Without LISTEN_PID the sockets are not known to be ours (systemd's
   * sd_listen_fds() says the same). */
  if (pid == NULL || *pid == '\0') return 0;
  if (parse_long(pid, &p) < 0) {
    snprintf(err, errlen, "LISTEN_PID=%s: not a pid", pid);
    return -EINVAL;
  }
  /* Meant for another process (a wrapper passed the variables on): they
   * are not ours, and fds 3.. may be anything. */
  if (p != (long)getpid()) return 0;
  if (n <= 0) return 0;
  if ((size_t)n > MS_LISTEN_MAX - l->n) {
    snprintf(err, errlen, "LISTEN_FDS=%ld: memsup holds at most %d sockets", n,
             MS_LISTEN_MAX);
    return -E2BIG;
  }
  /* Names: colon-separated, one per fd; systemd says "unknown" for
   * sockets without a FileDescriptorName=. */
  size_t nnames = 0;
  char nb[MS_LISTEN_MAX][64];
  if (names && *names) {
    const char* s = names;
    for (;;) {
      const char* e = strchr(s, ':');
      size_t len = e ? (size_t)(e - s) : strlen(s);
      if (nnames == (size_t)n || len >= sizeof(nb[0])) {
        nnames = (size_t)n + 1;
        break;
      }
      memcpy(nb[nnames], s, len);
      nb[nnames++][len] = '\0';
      if (e == NULL) break;
      s = e + 1;
    }
    if (nnames != (size_t)n) {
      snprintf(err, errlen,
               "LISTEN_FDNAMES=%s: expected %ld names of at "
               "most 63 bytes",
               names, n);
      return -EINVAL;
    }
  }
  for (long i = 0; i < n; i++) {
    int fd = SD_LISTEN_FDS_START + (int)i;
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
      snprintf(err, errlen, "LISTEN_FDS=%ld: fd %d: %s", n, fd,
               strerror(errno));
      return -EBADF;
    }
  }
  for (long i = 0; i < n; i++) {
    int fd = SD_LISTEN_FDS_START + (int)i;
    /* memsup holds them; only workers (through uv_spawn's explicit
     * mapping) get them. */
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    l->fd[l->n] = fd;
    snprintf(l->name[l->n], sizeof(l->name[0]), "%s",
             nnames ? nb[i] : "unknown");
    l->n++;
  }
  return 0;
}

int ms_listen_adopt_env(ms_listen_t* l, char* err, size_t errlen) {
  return ms_listen_adopt(l, getenv("LISTEN_FDS"), getenv("LISTEN_PID"),
                         getenv("LISTEN_FDNAMES"), err, errlen);
}

int ms_listen_add(ms_listen_t* l, const ms_addr_t* addr, char* err,
                  size_t errlen) {
  int fd, one = 1, e;
  if (l->n == MS_LISTEN_MAX) {
    snprintf(err, errlen, "%s: memsup holds at most %d sockets", addr->text,
             MS_LISTEN_MAX);
    return -E2BIG;
  }
  fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) goto fail;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
      bind(fd, (const struct sockaddr*)&addr->ss, addr->len) < 0 ||
      /* SOMAXCONN: the kernel caps it at net.core.somaxconn; the longer
       * the queue, the more connections wait out a restart. */
      listen(fd, SOMAXCONN) < 0)
    goto fail;
  l->fd[l->n] = fd;
  snprintf(l->name[l->n], sizeof(l->name[0]), "listen");
  l->n++;
  return 0;

fail:
  e = errno;
  if (fd >= 0) close(fd);
  snprintf(err, errlen, "%s: %s", addr->text, strerror(e));
  return -e;
}

int ms_listen_port(const ms_listen_t* l, size_t i) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (i >= l->n) return -EINVAL;
  if (getsockname(l->fd[i], (struct sockaddr*)&ss, &len) < 0) return -errno;
  if (ss.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6*)&ss)->sin6_port);
  if (ss.ss_family == AF_INET)
    return ntohs(((struct sockaddr_in*)&ss)->sin_port);
  return -EAFNOSUPPORT;
}

void ms_listen_close(ms_listen_t* l) {
  for (size_t i = 0; i < l->n; i++) {
    if (l->fd[i] >= 0) close(l->fd[i]);
    l->fd[i] = -1;
  }
  l->n = 0;
}

static int dropped(const char* e) {
  static const char* const drop[] = {
      "MEMSUP_FD",  "MEMSUP_WORKER", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID",
      "LISTEN_FDS", "LISTEN_PID",    "LISTEN_FDNAMES"};
  for (size_t d = 0; d < sizeof(drop) / sizeof(drop[0]); d++) {
    size_t len = strlen(drop[d]);
    if (strncmp(e, drop[d], len) == 0 && e[len] == '=') return 1;
  }
  return 0;
}

int ms_listen_env(const ms_listen_t* l, char* const* base, int memsup_fd,
                  int worker, char*** out) {
  size_t n = 0, k = 0;
  while (base[n]) n++;
  char** env = calloc(n + 5, sizeof(*env));
  if (env == NULL) return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    if (dropped(base[i])) continue;
    if ((env[k++] = strdup(base[i])) == NULL) goto oom;
  }
  if (asprintf(&env[k], "MEMSUP_FD=%d", memsup_fd) < 0) {
    env[k] = NULL;
    goto oom;
  }
  k++;
  if (asprintf(&env[k], "MEMSUP_WORKER=%d", worker) < 0) {
    env[k] = NULL;
    goto oom;
  }
  k++;
  if (l && l->n > 0) {
    if (asprintf(&env[k], "LISTEN_FDS=%zu", l->n) < 0) {
      env[k] = NULL;
      goto oom;
    }
    k++;
    size_t len = strlen("LISTEN_FDNAMES=") + 1;
    for (size_t i = 0; i < l->n; i++) len += strlen(l->name[i]) + 1;
    if ((env[k] = malloc(len)) == NULL) goto oom;
    strcpy(env[k], "LISTEN_FDNAMES=");
    for (size_t i = 0; i < l->n; i++) {
      if (i) strcat(env[k], ":");
      strcat(env[k], l->name[i]);
    }
    k++;
  }
  env[k] = NULL;
  *out = env;
  return 0;
oom:
  ms_listen_env_free(env);
  return -ENOMEM;
}

void ms_listen_env_free(char** env) {
  if (env == NULL) return;
  for (size_t i = 0; env[i]; i++) free(env[i]);
  free(env);
}

static int executable(const char* p) {
  struct stat sb;
  if (stat(p, &sb) < 0) return -errno;
  if (!S_ISREG(sb.st_mode) || access(p, X_OK) < 0) return -EACCES;
  return 0;
}

int ms_exec_resolve(const char* file, const char* path_env, char* out,
                    size_t outlen) {
  int r, seen_eacces = 0;
  if (*file == '\0') return -ENOENT;
  if (strchr(file, '/')) {
    if (strlen(file) >= outlen) return -ENAMETOOLONG;
    r = executable(file);
    if (r == -ENOTDIR) r = -ENOENT;
    if (r < 0) return r == -ENOENT ? -ENOENT : -EACCES;
    strcpy(out, file);
    return 0;
  }
  /* glibc's execvp default search path. */
  const char* p = path_env ? path_env : "/bin:/usr/bin";
  for (;;) {
    const char* e = strchr(p, ':');
    size_t dlen = e ? (size_t)(e - p) : strlen(p);
    /* An empty entry means the current directory. */
    int n =
        snprintf(out, outlen, "%.*s%s%s", (int)dlen, p, dlen ? "/" : "", file);
    if (n > 0 && (size_t)n < outlen) {
      r = executable(out);
      if (r == 0) return 0;
      if (r == -EACCES) seen_eacces = 1;
    }
    if (e == NULL) break;
    p = e + 1;
  }
  return seen_eacces ? -EACCES : -ENOENT;
}
