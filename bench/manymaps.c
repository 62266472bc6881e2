/* manymaps.c: bench-only worker for figure 5.  It makes --maps N one-page
 * anonymous mappings whose protections alternate (so the kernel cannot
 * merge neighbours and /proc/PID/smaps_rollup has N VMAs to walk), idles
 * for --idle S seconds, then leaks like bloat --mode leak: --rate MiB/s
 * up to --max MiB, one "<CLOCK_REALTIME ns> <total bytes>" line per step
 * in --step-log, and the name of each SIGTERM/SIGINT in --signals-to.
 * The small mappings are never touched, so they add VMAs, not footprint.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024.0 * 1024.0)

static int sig_fd = -1;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_signal(int sig) {
  const char* name = sig == SIGTERM ? "SIGTERM\n" : "SIGINT\n";
  if (write(sig_fd, name, strlen(name)) < 0) {
    /* Nothing useful to do from a handler. */
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

static int open_log(const char* path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    perror(path);
    exit(1);
  }
  return fd;
}

int main(int argc, char** argv) {
  static const struct option opts[] = {
      {"maps", 1, 0, 'n'},     {"idle", 1, 0, 'i'},       {"rate", 1, 0, 'r'},
      {"max", 1, 0, 'M'},      {"step-log", 1, 0, 'L'},   {"signals-to", 1, 0, 'T'},
      {0, 0, 0, 0}};
  long maps = 60000;
  double idle = 5, rate = 200, max = 1024;
  int step_fd = -1, c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
      case 'n': maps = atol(optarg); break;
      case 'i': idle = atof(optarg); break;
      case 'r': rate = atof(optarg); break;
      case 'M': max = atof(optarg); break;
      case 'L': step_fd = open_log(optarg); break;
      case 'T': sig_fd = open_log(optarg); break;
      default:
        fprintf(stderr, "usage: manymaps [--maps N] [--idle S] [--rate MiB/s] "
                        "[--max MiB] [--step-log F] [--signals-to F]\n");
        return 2;
    }
  }
  if (sig_fd >= 0) {
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
  }
  long page = sysconf(_SC_PAGESIZE);
  for (long i = 0; i < maps; i++) {
    int prot = i % 2 ? PROT_READ : PROT_READ | PROT_WRITE;
    if (mmap(NULL, (size_t)page, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) ==
        MAP_FAILED) {
      perror("manymaps: mmap (raise vm.max_map_count?)");
      return 1;
    }
  }
  printf("manymaps[pid %d]: %ld mappings, leaking %g MiB/s after %g s\n",
         (int)getpid(), maps, rate, idle);
  fflush(stdout);

  double t0 = now_s() + idle, total = 0, cap = max * MIB;
  void** head = NULL;
  for (;;) {
    double t = now_s() - t0;
    double want = t > 0 ? rate * MIB * t : 0;
    if (want > cap) want = cap;
    if (want - total >= 4096) {
      size_t n = (size_t)(want - total);
      void** p = malloc(n);
      if (p != NULL) {
        memset(p, 0x5a, n);
        p[0] = head; /* keep it reachable: a leak, not garbage */
        head = p;
        total += (double)n;
      }
      if (step_fd >= 0) {
        char line[64];
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int len = snprintf(line, sizeof(line), "%lld%09ld %.0f\n",
                           (long long)ts.tv_sec, ts.tv_nsec, total);
        if (write(step_fd, line, (size_t)len) < 0) step_fd = -1;
      }
    }
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}
