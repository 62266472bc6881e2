/* retain.c: a worker whose memory is held by its allocator, not by the
 * program.  Every second (--every) it allocates ~64 MiB in small and medium blocks,
 * touches them and frees them all: stats.allocated falls back to almost
 * nothing, but jemalloc keeps the dirty pages, so resident memory (and the
 * footprint memsup sees) stays high.  This is retention, not a leak: a
 * purge request (answered by the SDK thread) gives the pages back.
 * Linked with -ljemalloc.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memsup.h"

/* jemalloc reads this at start-up.  Without decay, freed pages stay dirty
 * until someone purges them, which makes the retention easy to see. */
const char* malloc_conf = "dirty_decay_ms:-1,muzzy_decay_ms:-1";

#define CYCLE_BYTES (64u * 1024 * 1024)
#define MIB (1024.0 * 1024.0)

static void usage(void) {
  fprintf(stderr,
          "usage: retain [--run-for SECONDS] [--hold MIB] [--every SECONDS]\n");
  exit(2);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Allocates CYCLE_BYTES in blocks of 64 B to 8 KiB, touches every block,
 * then frees them all.  Only jemalloc's small size classes are used: with
 * decay off, jemalloc 5.3 does not reuse the dirty extents of freed large
 * blocks (or of odd-sized slabs) for the next cycle, so resident memory
 * would grow every second like a leak instead of settling at ~68 MiB. */
static void churn(void) {
  static void* blocks[65536]; /* ~32,000 are needed */
  size_t n = 0, total = 0;
  while (total < CYCLE_BYTES && n < sizeof(blocks) / sizeof(blocks[0])) {
    size_t size = (size_t)64 << (n % 8);
    blocks[n] = malloc(size);
    if (blocks[n] == NULL) break;
    memset(blocks[n], (int)n, size);
    total += size;
    n++;
  }
  while (n > 0) free(blocks[--n]);
}

int main(int argc, char** argv) {
  static const struct option longopts[] = {
      {"run-for", required_argument, NULL, 'r'},
      {"hold", required_argument, NULL, 'h'},
      {"every", required_argument, NULL, 'e'},
      {NULL, 0, NULL, 0}};
  double run_for = 0, hold_mib = 0, every = 1;
  int c, err, pid = (int)getpid();

  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    char* end;
    double v = strtod(optarg, &end);
    if (end == optarg || *end != '\0' || v < 0) usage();
    if (c == 'r')
      run_for = v;
    else if (c == 'h')
      hold_mib = v;
    else if (c == 'e' && v > 0)
      every = v; /* a batch job's period: churn, then idle */
    else
      usage();
  }
  if (optind != argc) usage();
  setvbuf(stdout, NULL, _IOLBF, 0);

  err = memsup_init();
  if (err < 0)
    fprintf(stderr, "retain: memsup_init: %s (running without memsup)\n",
            strerror(-err));
  memsup_ready();
  memsup_start_thread(); /* purge requests are answered there */
  /* --hold: a working set the program keeps for its whole life (its
   * tables, a model), next to the churn that the allocator retains. */
  size_t hold = (size_t)(hold_mib * MIB);
  char* held = hold ? malloc(hold) : NULL;
  if (held) memset(held, 1, hold);

  double start = now_s();
  for (unsigned cycle = 1;; cycle++) {
    double t0 = now_s();
    memsup_heap_t h;
    churn();
    memsup_heap_read(&h);
    memsup_gauge_set("cycles", cycle);
    printf("retain[pid %d] cycle %u (%s): allocated=%.1f MiB active=%.1f MiB "
           "resident=%.1f MiB retained=%.1f MiB mapped=%.1f MiB\n",
           pid, cycle, h.allocator, h.allocated / MIB, h.active / MIB,
           h.resident / MIB, h.retained / MIB, h.mapped / MIB);
    if (run_for > 0 && now_s() - start >= run_for) break;
    double wait = every - (now_s() - t0);
    if (wait > 0) {
      struct timespec ts = {(time_t)wait, (long)((wait - (time_t)wait) * 1e9)};
      nanosleep(&ts, NULL);
    }
  }
  free(held);
  return 0;
}
