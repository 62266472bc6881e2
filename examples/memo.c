/* memo.c: a lookup service that memoizes its answers, for telling an
 * unbounded cache from a leak.  Each request computes a 4 KiB result for a
 * key no earlier request used (a request id, a timestamp in the key: the
 * classic cache that never hits and never evicts).  Its state, handed over
 * at a restart, carries only the request counter; the cache starts empty
 * in every worker, as a cache does.  Gauges: "requests" (carried across
 * restarts) and "cache.entries".
 *   --mode cache  (default) results kept in the memo table, never evicted;
 *   --mode leak   the memo table is bounded (the last 256 results, a ring),
 *                 but every request also allocates a 4 KiB scratch buffer
 *                 and loses the pointer on an error path: a leak that no
 *                 gauge of the program tracks.
 * Linked with -ljemalloc, so heap-in-use is jemalloc's stats.allocated.
 */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memsup.h"

#define RESULT_BYTES 4096
#define TICK_MS 50
#define RING 256

typedef struct entry_s {
  struct entry_s* next;
  uint64_t key;
  char result[RESULT_BYTES - 16];
} entry_t;

static struct {
  pthread_mutex_t mu; /* main thread vs. the save callback (SDK thread) */
  uint64_t requests;
  size_t entries;
  entry_t* table; /* --mode cache: every result, newest first */
  entry_t* ring[RING]; /* --mode leak: the last RING results */
} memo = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void usage(void) {
  fprintf(stderr, "usage: memo [--mode cache|leak] [--mib-per-s N]\n");
  exit(2);
}

static int save_cb(memsup_state_t* st, void* arg) {
  char text[64];
  (void)arg;
  pthread_mutex_lock(&memo.mu);
  int n = snprintf(text, sizeof(text), "memo 1\nrequests %" PRIu64 "\n",
                   memo.requests);
  pthread_mutex_unlock(&memo.mu);
  return memsup_state_write(st, text, (size_t)n);
}

static void restore(void) {
  const void* data;
  size_t len;
  char text[64];
  uint64_t requests;
  if (memsup_restore(&data, &len) == 0 && len < sizeof(text)) {
    memcpy(text, data, len);
    text[len] = '\0';
    if (sscanf(text, "memo 1\nrequests %" SCNu64, &requests) == 1)
      memo.requests = requests;
  }
  memsup_ready();
}

static entry_t* compute(uint64_t key) {
  entry_t* e = malloc(sizeof(*e));
  if (e == NULL) return NULL;
  e->key = key;
  for (size_t i = 0; i < sizeof(e->result); i++)
    e->result[i] = (char)(key * 31 + i);
  return e;
}

static void serve(int leak, unsigned n) {
  pthread_mutex_lock(&memo.mu);
  for (unsigned i = 0; i < n; i++) {
    uint64_t key = ++memo.requests;
    entry_t* e = compute(key);
    if (e == NULL) break;
    if (!leak) {
      e->next = memo.table;
      memo.table = e;
      memo.entries++;
      continue;
    }
    free(memo.ring[key % RING]);
    if (memo.ring[key % RING] == NULL) memo.entries++;
    memo.ring[key % RING] = e;
    /* The bug: a scratch copy for the reply, lost when the (simulated)
     * client has gone away, which is every time. */
    char* scratch = malloc(RESULT_BYTES);
    if (scratch != NULL) memcpy(scratch, e->result, sizeof(e->result));
  }
  memsup_gauge_set("requests", (double)memo.requests);
  memsup_gauge_set("cache.entries", (double)memo.entries);
  pthread_mutex_unlock(&memo.mu);
}

int main(int argc, char** argv) {
  static const struct option longopts[] = {{"mode", 1, 0, 'm'},
                                           {"mib-per-s", 1, 0, 'r'},
                                           {0, 0, 0, 0}};
  int c, leak = 0;
  double mib_per_s = 16;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    if (c == 'm' && strcmp(optarg, "cache") == 0) {
      leak = 0;
    } else if (c == 'm' && strcmp(optarg, "leak") == 0) {
      leak = 1;
    } else if (c == 'r') {
      mib_per_s = atof(optarg);
      if (mib_per_s <= 0) usage();
    } else {
      usage();
    }
  }
  if (optind != argc) usage();
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (memsup_init() < 0)
    fprintf(stderr, "memo: running without memsup\n");
  memsup_on_save(save_cb, NULL);
  restore();
  memsup_start_thread();
  printf("memo[pid %d]: mode %s, requests so far %" PRIu64 "\n", (int)getpid(),
         leak ? "leak" : "cache", memo.requests);
  /* Requests per tick for mib_per_s of results (or of leaked scratch). */
  unsigned per_tick =
      (unsigned)(mib_per_s * 1048576.0 / RESULT_BYTES * TICK_MS / 1000);
  for (;;) {
    serve(leak, per_tick ? per_tick : 1);
    struct timespec ts = {0, TICK_MS * 1000000L};
    nanosleep(&ts, NULL);
  }
}
