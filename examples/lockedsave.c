/* lockedsave.c: an SDK worker whose save blocks on a lock a busy thread
 * holds, as in a service whose ingest thread takes the data lock for a
 * long batch while it grows (parsing into new buffers): the save callback
 * needs the same lock to serialize a consistent copy, so it waits for the
 * batch, and the batch goes on allocating.
 *
 * At start it restores "gen=N" if memsup hands a state over (printing
 * "restored gen=N" on stdout), checkpoints "gen=N+1" as its last good
 * state, then its ingest thread holds the lock and grows by --rate MiB/s
 * (touched pages) for --batch seconds.  The save callback (on the SDK's
 * helper thread) writes the current "gen=N+1" once it gets the lock.
 *
 * usage: lockedsave [--rate MiB/s] [--batch S]   (defaults 16, 3600)
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memsup.h"

static pthread_mutex_t data_lock = PTHREAD_MUTEX_INITIALIZER;
static char state[64];
static double rate = 16, batch = 3600;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int save(memsup_state_t* st, void* arg) {
  (void)arg;
  pthread_mutex_lock(&data_lock); /* waits for the batch */
  int rc = memsup_state_write(st, state, strlen(state));
  pthread_mutex_unlock(&data_lock);
  return rc;
}

/* The batch: under the lock, 1 MiB chunks, paced to --rate. */
static void* ingest(void* arg) {
  (void)arg;
  pthread_mutex_lock(&data_lock);
  double t0 = now_s();
  size_t chunks = 0;
  while (now_s() - t0 < batch) {
    double due = (double)chunks / rate;
    if (now_s() - t0 < due) {
      usleep(10000);
      continue;
    }
    char* p = malloc(1 << 20);
    if (p == NULL) break;
    memset(p, (int)chunks | 1, 1 << 20); /* resident, not just reserved */
    chunks++;
  }
  pthread_mutex_unlock(&data_lock);
  return NULL;
}

int main(int argc, char** argv) {
  static const struct option longopts[] = {
      {"rate", required_argument, NULL, 'r'},
      {"batch", required_argument, NULL, 'b'},
      {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    if (c == 'r') rate = atof(optarg);
    else if (c == 'b') batch = atof(optarg);
    else {
      fprintf(stderr, "usage: lockedsave [--rate MiB/s] [--batch S]\n");
      return 2;
    }
  }
  if (rate <= 0) rate = 16;
  if (memsup_init() < 0) return 1;
  const void* data;
  size_t len;
  unsigned gen = 0;
  if (memsup_restore(&data, &len) == 0 && len < sizeof(state)) {
    char buf[64];
    memcpy(buf, data, len);
    buf[len] = '\0';
    if (sscanf(buf, "gen=%u", &gen) == 1) printf("restored gen=%u\n", gen);
    fflush(stdout);
  }
  snprintf(state, sizeof(state), "gen=%u", gen + 1);
  memsup_on_save(save, NULL);
  memsup_ready();
  memsup_checkpoint();
  memsup_start_thread();
  pthread_t t;
  if (pthread_create(&t, NULL, ingest, NULL) != 0) return 1;
  pthread_join(t, NULL);
  for (;;) pause();
}
