/* stamp.c: bench helper.  Two jobs that need a precise clock:
 *
 *   stamp fifo FIFO OUT      creates FIFO, reads lines from it and appends
 *                            "<CLOCK_REALTIME ns> <line>" to OUT as each
 *                            arrives.  bloat --signals-to FIFO then gives the
 *                            time each signal reached the worker, whoever
 *                            sent it, without changing bloat.
 *   stamp startup PATTERN -- CMD...
 *                            prints the milliseconds from just before fork
 *                            to the first line of CMD's stdout or stderr
 *                            that contains PATTERN, then kills CMD.
 * Bench-only code: errors print and exit 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(clockid_t clk) {
  struct timespec ts;
  clock_gettime(clk, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int fifo(const char* path, const char* out_path) {
  if (mkfifo(path, 0644) < 0 && errno != EEXIST) {
    perror("stamp: mkfifo");
    return 1;
  }
  /* O_RDWR: opening never blocks, and the FIFO never reads as EOF when a
   * worker closes its end, so one stamper serves every worker generation. */
  int fd = open(path, O_RDWR | O_CLOEXEC);
  FILE* out = fopen(out_path, "a");
  if (fd < 0 || out == NULL) {
    perror("stamp: open");
    return 1;
  }
  char buf[4096];
  size_t have = 0;
  for (;;) {
    ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 1;
    long long t = now_ns(CLOCK_REALTIME);
    have += (size_t)n;
    buf[have] = '\0';
    char *p = buf, *nl;
    while ((nl = strchr(p, '\n')) != NULL) {
      fprintf(out, "%lld %.*s\n", t, (int)(nl - p), p);
      p = nl + 1;
    }
    fflush(out);
    have -= (size_t)(p - buf);
    memmove(buf, p, have);
    if (have == sizeof(buf) - 1) have = 0; /* an absurd line: drop it */
  }
}

static int startup(const char* pattern, char** argv) {
  int pfd[2];
  if (pipe(pfd) < 0) {
    perror("stamp: pipe");
    return 1;
  }
  long long t0 = now_ns(CLOCK_MONOTONIC);
  pid_t pid = fork();
  if (pid < 0) {
    perror("stamp: fork");
    return 1;
  }
  if (pid == 0) {
    dup2(pfd[1], 1);
    dup2(pfd[1], 2);
    close(pfd[0]);
    close(pfd[1]);
    execvp(argv[0], argv);
    _exit(127);
  }
  close(pfd[1]);
  FILE* in = fdopen(pfd[0], "r");
  char line[4096];
  int found = 0;
  while (!found && fgets(line, sizeof(line), in) != NULL)
    found = strstr(line, pattern) != NULL;
  long long t1 = now_ns(CLOCK_MONOTONIC);
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  if (!found) {
    fprintf(stderr, "stamp: '%s' never printed by %s\n", pattern, argv[0]);
    return 1;
  }
  printf("%.3f\n", (double)(t1 - t0) / 1e6);
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 4 && strcmp(argv[1], "fifo") == 0) return fifo(argv[2], argv[3]);
  if (argc >= 5 && strcmp(argv[1], "startup") == 0 && strcmp(argv[3], "--") == 0)
    return startup(argv[2], argv + 4);
  fprintf(stderr, "usage: stamp fifo FIFO OUT | stamp startup PATTERN -- CMD...\n");
  return 2;
}
