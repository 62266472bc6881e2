/* stamp.c: bench helper that needs a precise clock.
 *
 *   stamp fifo FIFO OUT      creates FIFO, reads lines from it and appends
 *                            "<CLOCK_REALTIME ns> <line>" to OUT as each
 *                            arrives.  bloat --signals-to FIFO then gives the
 *                            time each signal reached the worker, whoever
 *                            sent it, without changing bloat.
 * Bench-only code: errors print and exit 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
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

int main(int argc, char** argv) {
  if (argc == 4 && strcmp(argv[1], "fifo") == 0) return fifo(argv[2], argv[3]);
  fprintf(stderr, "usage: stamp fifo FIFO OUT\n");
  return 2;
}
