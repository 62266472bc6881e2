/* kvcache.c: the README demo worker.  A small key-value counter service
 * with a realistic bug: every request is appended to a request log that is
 * never trimmed, so it leaks at --leak-mib-per-s.  It uses the SDK the way a
 * blocking worker would: restore at start, a helper thread for memsup's
 * requests, gauges, and a checkpoint every 2 s.  It runs without memsup too.
 *
 * State format (also what --dump writes): text lines
 *   "kvcache 1\nslot S\ngen G\nrequests R\nelapsed_ms E\nkeys K\n", K lines
 *   "NAME COUNT\n", then "pad_mib M\n", then M MiB of deterministic
 *   padding bytes.  elapsed_ms carries the run time across restarts, so
 *   --run-for bounds the whole supervised run, not each worker.  slot is
 *   MEMSUP_WORKER (memsup --workers): a restored state says whose it was.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memsup.h"

#define NKEYS 100
#define MIB (1024 * 1024)
#define TICK_MS 100
#define REQUESTS_PER_TICK 64
#define TEXT_MAX 8192

typedef struct logrec_s {
  struct logrec_s* next; /* the request log: appended, never trimmed */
  size_t len;
} logrec_t;

static struct {
  pthread_mutex_t mu; /* main thread vs. the save callback (SDK thread) */
  uint64_t gen, requests, restored;
  int slot, restored_slot; /* MEMSUP_WORKER, and the saved state's */
  uint64_t elapsed_ms; /* run time of previous workers */
  double start;        /* when this worker started */
  uint64_t counts[NKEYS];
  uint8_t* pad;
  size_t pad_mib;
} kv = {.mu = PTHREAD_MUTEX_INITIALIZER};

static double leak_mib_per_s = 16, run_for;
static const char* dump_path;

static void usage(void) {
  fprintf(stderr,
          "usage: kvcache [--leak-mib-per-s N] [--run-for SECONDS]\n"
          "  [--state-mib N] [--dump FILE]\n");
  exit(2);
}

static double num(const char* s) {
  char* end;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || v < 0) {
    fprintf(stderr, "kvcache: bad number '%s'\n", s);
    usage();
  }
  return v;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The padding is a function of the offset, so a restore can verify it. */
static void fill_pad(uint8_t* p, size_t n) {
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < n; i += 8) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    memcpy(p + i, &x, n - i < 8 ? n - i : 8);
  }
}

static uint64_t elapsed_ms(void) {
  double own = kv.start > 0 ? now_s() - kv.start : 0;
  return kv.elapsed_ms + (uint64_t)(own * 1000);
}

/* Canonical text of the state; caller holds kv.mu.  Returns its length. */
static size_t render(char* buf, size_t cap, size_t pad_mib) {
  size_t n = (size_t)snprintf(buf, cap,
                              "kvcache 1\nslot %d\ngen %" PRIu64
                              "\nrequests %" PRIu64 "\nelapsed_ms %" PRIu64
                              "\nkeys %d\n",
                              kv.slot, kv.gen, kv.requests, elapsed_ms(), NKEYS);
  for (int i = 0; i < NKEYS; i++)
    n += (size_t)snprintf(buf + n, cap - n, "key%02d %" PRIu64 "\n", i,
                          kv.counts[i]);
  n += (size_t)snprintf(buf + n, cap - n, "pad_mib %zu\n", pad_mib);
  return n;
}

/* Writes the canonical text to --dump FILE through a rename, so a test
 * never reads half a file.  Caller holds kv.mu. */
static void write_text(const char* path, const char* text, size_t n) {
  char tmp[4096];
  FILE* f;
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  f = fopen(tmp, "w");
  if (f == NULL || fwrite(text, 1, n, f) != n || fclose(f) != 0 ||
      rename(tmp, path) != 0)
    fprintf(stderr, "kvcache: dump %s: %s\n", path, strerror(errno));
}

static void dump(const char* path, size_t pad_mib) {
  char text[TEXT_MAX];
  write_text(path, text, render(text, sizeof(text), pad_mib));
}

static int save_cb(memsup_state_t* st, void* arg) {
  char text[TEXT_MAX];
  int err;
  (void)arg;
  pthread_mutex_lock(&kv.mu);
  size_t n = render(text, sizeof(text), kv.pad_mib);
  if (dump_path) { /* the very bytes saved, for byte-for-byte checks */
    char saved[4096];
    snprintf(saved, sizeof(saved), "%s.saved", dump_path);
    write_text(saved, text, n);
  }
  pthread_mutex_unlock(&kv.mu);
  err = memsup_state_write(st, text, n);
  /* The padding never changes after start, so it is written unlocked. */
  if (err == 0) err = memsup_state_write(st, kv.pad, kv.pad_mib * MIB);
  return err;
}

/* Parses a saved state into kv; returns 0, or -1 when it is malformed. */
static int parse(const char* data, size_t len) {
  uint64_t counts[NKEYS], gen, requests, elapsed;
  size_t pad_mib, text_len = len < TEXT_MAX ? len : TEXT_MAX;
  char text[TEXT_MAX + 1]; /* sscanf needs a terminated string */
  const char* p = text;
  int keys, used, slot;

  memcpy(text, data, text_len);
  text[text_len] = '\0';
  if (sscanf(p, "kvcache 1\nslot %d\ngen %" SCNu64 "\nrequests %" SCNu64
             "\nelapsed_ms %" SCNu64 "\nkeys %d\n%n",
             &slot, &gen, &requests, &elapsed, &keys, &used) != 5 ||
      keys != NKEYS)
    return -1;
  p += used;
  for (int i = 0; i < NKEYS; i++) {
    int k;
    if (sscanf(p, "key%d %" SCNu64 "\n%n", &k, &counts[i], &used) != 2 || k != i)
      return -1;
    p += used;
  }
  if (sscanf(p, "pad_mib %zu\n%n", &pad_mib, &used) != 1) return -1;
  p += used;
  text_len = (size_t)(p - text);
  if (len - text_len != pad_mib * MIB || pad_mib != kv.pad_mib) return -1;
  if (pad_mib) {
    /* Rebuilding the padding is this worker's own restore work, as
     * copying state into its own structures is for a real one. */
    fill_pad(kv.pad, pad_mib * MIB);
    if (memcmp(kv.pad, data + text_len, pad_mib * MIB) != 0) return -1;
    printf("kvcache[pid %d]: state verified (%zu MiB padding)\n", (int)getpid(),
           pad_mib);
  }
  kv.restored_slot = slot;
  kv.gen = gen;
  kv.requests = requests;
  kv.elapsed_ms = elapsed;
  memcpy(kv.counts, counts, sizeof(counts));
  if (dump_path) dump(dump_path, pad_mib);
  return 0;
}

static void restore(void) {
  const void* data;
  size_t len;
  int pid = (int)getpid();
  int err = memsup_restore(&data, &len);

  if (err == 0 && parse(data, len) == 0) {
    kv.restored = kv.requests;
    printf("kvcache[pid %d]: restored state: requests=%" PRIu64
           " keys=%d crc ok, slot %d's state in slot %d\n", pid, kv.requests,
           NKEYS, kv.restored_slot, kv.slot);
  } else if (err == 0) {
    printf("kvcache[pid %d]: saved state unreadable, starting fresh\n", pid);
  } else if (err == -EBADMSG) {
    printf("kvcache[pid %d]: saved state corrupt (crc), starting fresh\n", pid);
  } else {
    printf("kvcache[pid %d]: no saved state, starting fresh\n", pid);
  }
  if (!kv.restored) fill_pad(kv.pad, kv.pad_mib * MIB);
  memsup_ready(); /* after the worker holds all its state: it is up */
}

/* One tick of "traffic": count requests per key and append each batch to
 * the request log, which is the leak. */
static void handle_requests(logrec_t** log, uint64_t* leaked, size_t leak) {
  pthread_mutex_lock(&kv.mu);
  for (int i = 0; i < REQUESTS_PER_TICK; i++) {
    uint64_t r = ++kv.requests;
    kv.counts[(r * 2654435761u) % NKEYS]++;
  }
  pthread_mutex_unlock(&kv.mu);
  if (leak < sizeof(logrec_t)) return;
  logrec_t* rec = malloc(leak);
  if (rec == NULL) return;
  memset(rec, 'r', leak); /* touched, so it is really resident */
  rec->len = leak;
  rec->next = *log;
  *log = rec;
  *leaked += leak;
}

int main(int argc, char** argv) {
  static const struct option longopts[] = {
      {"leak-mib-per-s", required_argument, NULL, 'l'},
      {"run-for", required_argument, NULL, 'r'},
      {"state-mib", required_argument, NULL, 's'},
      {"dump", required_argument, NULL, 'd'},
      {NULL, 0, NULL, 0}};
  logrec_t* log = NULL;
  uint64_t leaked = 0;
  int c, err, pid = (int)getpid();
  const char* slot = getenv("MEMSUP_WORKER");

  kv.slot = slot ? atoi(slot) : 0;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
      case 'l': leak_mib_per_s = num(optarg); break;
      case 'r': run_for = num(optarg); break;
      case 's': kv.pad_mib = (size_t)num(optarg); break;
      case 'd': dump_path = optarg; break;
      default: usage();
    }
  }
  if (optind != argc) usage();
  setvbuf(stdout, NULL, _IOLBF, 0); /* memsup's log reads lines */

  kv.pad = malloc(kv.pad_mib * MIB + 1);
  if (kv.pad == NULL) {
    fprintf(stderr, "kvcache: cannot allocate %zu MiB of state\n", kv.pad_mib);
    return 1;
  }
  err = memsup_init();
  if (err < 0)
    fprintf(stderr, "kvcache: memsup_init: %s (running without memsup)\n",
            strerror(-err));
  memsup_on_save(save_cb, NULL);
  /* The padding is built in restore(), after memsup_restore() returned,
   * so that it is not counted as handoff time by the benchmarks. */
  restore();
  kv.gen++;
  memsup_start_thread();

  size_t leak_per_tick = (size_t)(leak_mib_per_s * MIB * TICK_MS / 1000);
  pthread_mutex_lock(&kv.mu);
  kv.start = now_s();
  pthread_mutex_unlock(&kv.mu);
  double next = kv.start;
  for (unsigned tick = 1;; tick++) {
    handle_requests(&log, &leaked, leak_per_tick);
    memsup_gauge_set("requests", (double)kv.requests);
    memsup_gauge_set("cache.entries", NKEYS);
    memsup_gauge_set("leak.bytes", (double)leaked);
    if (tick % (1000 / TICK_MS) == 0) {
      pthread_mutex_lock(&kv.mu);
      printf("kvcache[pid %d] gen %" PRIu64 ": requests=%" PRIu64 " keys=%d ",
             pid, kv.gen, kv.requests, NKEYS);
      pthread_mutex_unlock(&kv.mu);
      if (kv.restored)
        printf("(restored %" PRIu64 " from previous worker)\n", kv.restored);
      else
        printf("(fresh start)\n");
    }
    /* A checkpoint keeps a recent state if the worker crashes outright. */
    if (tick % (2000 / TICK_MS) == 0) memsup_checkpoint();
    if (run_for > 0 && elapsed_ms() >= run_for * 1000) break;
    next += TICK_MS / 1000.0;
    double wait = next - now_s();
    if (wait > 0) {
      struct timespec ts = {(time_t)wait, (long)((wait - (time_t)wait) * 1e9)};
      nanosleep(&ts, NULL);
    }
  }
  if (dump_path) {
    pthread_mutex_lock(&kv.mu);
    dump(dump_path, kv.pad_mib);
    pthread_mutex_unlock(&kv.mu);
  }
  printf("kvcache[pid %d]: done after %g s in all\n", pid, run_for);
  return 0;
}
