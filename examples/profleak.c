/* profleak.c: a request-serving worker that leaks in one named function,
 * for heap-profile tests (docs/profiling.md).  It starts with a peak (a
 * table built and freed, as a config load does), then serves a "request"
 * every 10 ms: a scratch buffer that is freed again, and a 256 KiB record
 * that remember_request() keeps in a list nobody trims (about 25 MiB/s).
 * Linked with -ljemalloc; run it with MALLOC_CONF=prof:true and memsup
 * asks it for heap profiles.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memsup.h"

#define RECORD_BYTES (256u * 1024)
#define SCRATCH_BYTES (96u * 1024)

struct record {
  struct record* next;
  char data[];
};

static struct record* history; /* never trimmed: the leak */

/* The leak: every request's record is kept. */
__attribute__((noinline)) static void remember_request(unsigned long n) {
  struct record* r = malloc(sizeof(*r) + RECORD_BYTES);
  if (r == NULL) abort();
  memset(r->data, (int)(n & 0xff), RECORD_BYTES);
  r->next = history;
  history = r;
}

/* Per-request work: allocated and freed, so it does not grow. */
__attribute__((noinline)) static unsigned handle_request(unsigned long n) {
  unsigned char* scratch = malloc(SCRATCH_BYTES);
  unsigned sum = 0;
  if (scratch == NULL) abort();
  memset(scratch, (int)(n & 0x7f), SCRATCH_BYTES);
  for (size_t i = 0; i < SCRATCH_BYTES; i += 4096) sum += scratch[i];
  free(scratch);
  return sum;
}

/* Start-up: a 16 MiB table, built and dropped (the peak memsup must not
 * mistake for the leak). */
__attribute__((noinline)) static void load_config(void) {
  char* table = malloc(16u << 20);
  if (table == NULL) abort();
  memset(table, 1, 16u << 20);
  free(table);
}

int main(int argc, char** argv) {
  double run_for = 60;
  static const struct option opts[] = {{"run-for", 1, NULL, 'r'},
                                       {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (c != 'r') {
      fprintf(stderr, "usage: profleak [--run-for SECONDS]\n");
      return 2;
    }
    run_for = atof(optarg);
  }
  load_config();
  if (memsup_init() < 0)
    fprintf(stderr, "profleak: running without memsup\n");
  memsup_ready();
  memsup_start_thread(); /* save, purge and prof requests are answered there */
  unsigned sum = 0;
  struct timespec tick = {0, 10 * 1000 * 1000};
  for (unsigned long n = 0; n < (unsigned long)(run_for * 100); n++) {
    sum += handle_request(n);
    remember_request(n);
    nanosleep(&tick, NULL);
  }
  printf("profleak: done (%u)\n", sum);
  return 0;
}
