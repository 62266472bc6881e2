/* pidfile.c: the worker's pid file in --state-dir (pidfile.h). */
#include "pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int path_of(char* out, size_t n, const char* dir, const char* name) {
  int r = snprintf(out, n, "%s/%s", dir, name);
  return r > 0 && (size_t)r < n ? 0 : -ENAMETOOLONG;
}

/* Reads up to n-1 bytes of path into buf (NUL-terminated); returns the
 * length or -errno. */
static ssize_t read_small(const char* path, char* buf, size_t n, int nofollow) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0));
  if (fd < 0) return -errno;
  size_t len = 0;
  for (;;) {
    ssize_t r = read(fd, buf + len, n - 1 - len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      close(fd);
      return -e;
    }
    if (r == 0 || (len += (size_t)r) == n - 1) break;
  }
  close(fd);
  buf[len] = '\0';
  return (ssize_t)len;
}

uint64_t ms_proc_starttime(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  if (read_small(path, buf, sizeof(buf), 0) <= 0) return 0;
  /* The name may hold spaces and parentheses: fields count from the
   * last ')'.  After it: state (3), ... starttime (22). */
  char* p = strrchr(buf, ')');
  if (p == NULL) return 0;
  p++;
  for (int field = 2; field < 21; field++) {
    p = strchr(p + 1, ' ');
    if (p == NULL) return 0;
  }
  return strtoull(p + 1, NULL, 10);
}

/* argv as /proc/PID/cmdline shows it: each string and its NUL. */
static size_t flatten(char* const* argv, char* out, size_t n) {
  size_t len = 0;
  for (size_t i = 0; argv[i]; i++) {
    size_t l = strlen(argv[i]) + 1;
    if (len + l > n) return 0;
    memcpy(out + len, argv[i], l);
    len += l;
  }
  return len;
}

int ms_pidfile_write(const char* dir, pid_t pid, char* const* argv) {
  char path[4096], tmp[4096], cmd[8192], head[64];
  int err;
  if ((err = path_of(path, sizeof(path), dir, MS_PIDFILE_NAME)) < 0 ||
      (err = path_of(tmp, sizeof(tmp), dir, MS_PIDFILE_NAME ".tmp")) < 0)
    return err;
  uint64_t start = ms_proc_starttime(pid);
  if (start == 0) return -ESRCH;
  size_t clen = flatten(argv, cmd, sizeof(cmd));
  int hlen = snprintf(head, sizeof(head), "%d %llu\n", (int)pid,
                      (unsigned long long)start);
  unlink(tmp);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return -errno;
  if (write(fd, head, (size_t)hlen) != hlen ||
      (clen && write(fd, cmd, clen) != (ssize_t)clen)) {
    err = errno ? -errno : -EIO;
    close(fd);
    unlink(tmp);
    return err;
  }
  if (close(fd) < 0 || rename(tmp, path) < 0) {
    err = -errno;
    unlink(tmp);
    return err;
  }
  return 0;
}

/* Exited (reaped, or a zombie its new parent has not reaped: in a
 * container whose PID 1 does not reap, it stays one), or its pid reused. */
static int gone(pid_t pid, uint64_t start) {
  char path[64], st[1024];
  if (ms_proc_starttime(pid) != start) return 1;
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  if (read_small(path, st, sizeof(st), 0) <= 0) return 1;
  char* p = strrchr(st, ')');
  return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

pid_t ms_pidfile_stop_leftover(const char* dir, char* const* argv, int wait_ms) {
  char path[4096], buf[8192 + 64], cmd[8192], want[8192], proc[64];
  if (path_of(path, sizeof(path), dir, MS_PIDFILE_NAME) < 0) return 0;
  ssize_t n = read_small(path, buf, sizeof(buf), 1);
  if (n <= 0) return 0;
  int pid;
  unsigned long long start;
  char* nl = memchr(buf, '\n', (size_t)n);
  if (nl == NULL || sscanf(buf, "%d %llu", &pid, &start) != 2 || pid <= 1 ||
      pid == getpid())
    return 0;
  /* Ours only if it is the same process (start time) running the same
   * program (cmdline, also this memsup's worker argv): a reused pid is
   * never killed. */
  if (ms_proc_starttime(pid) != start) return 0;
  size_t rec_len = (size_t)(buf + n - (nl + 1));
  size_t want_len = flatten(argv, want, sizeof(want));
  snprintf(proc, sizeof(proc), "/proc/%d/cmdline", pid);
  ssize_t clen = read_small(proc, cmd, sizeof(cmd), 0);
  if (clen <= 0 || (size_t)clen != rec_len || memcmp(cmd, nl + 1, rec_len) ||
      rec_len != want_len || memcmp(want, nl + 1, rec_len))
    return 0;
  /* Its group too: what it started goes with it, as after any stop. */
  if (getpgid(pid) == pid) kill(-pid, SIGKILL);
  kill(pid, SIGKILL);
  for (int t = 0; t < wait_ms; t += 10) {
    if (gone(pid, (uint64_t)start)) return pid;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return gone(pid, (uint64_t)start) ? pid : -ETIMEDOUT;
}

void ms_pidfile_remove(const char* dir) {
  char path[4096];
  if (path_of(path, sizeof(path), dir, MS_PIDFILE_NAME) == 0) unlink(path);
}
