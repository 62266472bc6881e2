/* reaper.c: orphan reaping.  waitpid(-1) would also collect the worker's
 * status before libuv's SIGCHLD handler sees it, and libuv would then never
 * report the exit; waitid(P_ALL, WNOWAIT) only shows the first zombie, so a
 * zombie worker would hide the orphans behind it.  Instead we list our
 * children from /proc/self/task/<tid>/children and reap each one that is
 * not the worker by pid. */
#include "reaper.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int ms_reaper_enable(void) {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) return -errno;
  return 0;
}

/* Reads the whole children list (it grows with the number of children:
 * ~8 bytes each), so no zombie is left behind a cut; each SIGCHLD sweeps
 * again, and a child that dies after its line was read raises one. */
int ms_reaper_inherited(void) {
  int on = 0;
  return prctl(PR_GET_CHILD_SUBREAPER, (unsigned long)&on, 0, 0, 0) == 0 && on;
}

int ms_reaper_next_child(const char** p, pid_t* pid) {
  char* end;
  long v = strtol(*p, &end, 10);
  if (end == *p) return 0;
  *p = end;
  /* Outside pid_t's range is no pid: never truncate it into another. */
  *pid = v > 0 && v <= INT_MAX ? (pid_t)v : 0;
  return 1;
}

static int kept(pid_t pid, const pid_t* keep, size_t nkeep) {
  for (size_t i = 0; i < nkeep; i++)
    if (keep[i] == pid) return 1;
  return 0;
}

static int reap_listed(const char* path, const pid_t* keep, size_t nkeep) {
  char small[4096];
  char* buf = small;
  size_t cap = sizeof(small), len = 0;
  int n = 0, fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  for (;;) {
    if (len + 1 == cap) {
      char* bigger = malloc(cap * 2);
      if (bigger == NULL) break; /* reap what was read; the next sweep goes on */
      memcpy(bigger, buf, len);
      if (buf != small) free(buf);
      buf = bigger;
      cap *= 2;
    }
    ssize_t r;
    do
      r = read(fd, buf + len, cap - 1 - len);
    while (r < 0 && errno == EINTR);
    if (r <= 0) break;
    len += (size_t)r;
  }
  close(fd);
  buf[len] = '\0';
  const char* p = buf;
  pid_t pid;
  while (ms_reaper_next_child(&p, &pid)) {
    if (pid <= 0 || kept(pid, keep, nkeep)) continue;
    int status;
    pid_t r;
    do
      r = waitpid(pid, &status, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r > 0) n++;
  }
  if (buf != small) free(buf);
  return n;
}

int ms_reaper_sweep(const pid_t* keep, size_t nkeep) {
  char path[300];
  int n = 0;
  DIR* d = opendir("/proc/self/task");
  if (d == NULL) return 0;
  struct dirent* e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    snprintf(path, sizeof(path), "/proc/self/task/%s/children", e->d_name);
    n += reap_listed(path, keep, nkeep);
  }
  closedir(d);
  return n;
}
