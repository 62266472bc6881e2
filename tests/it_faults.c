/* it_faults.c: issue 10's faults end to end, on the real memsup binary:
 * a worker that does not answer its save while it grows (the ceiling), a
 * stop during a save, and a memsup SIGKILLed under its worker.
 * Timings only bound waiting; no test asserts how long something took.
 */
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define MIB (1024ull * 1024ull)
#define LOCKEDSAVE h_example("lockedsave")

/* Waits until pid's VmRSS exceeds bytes; 1 when it did. */
static int wait_rss_over(pid_t pid, uint64_t bytes, int timeout_ms) {
  for (int t = 0; t < h_ms(timeout_ms); t += 20) {
    if (h_proc_bytes(pid, "VmRSS") > bytes) return 1;
    h_sleep_ms(20);
  }
  return 0;
}

/* Defect 2: the save callback waits for a lock the ingest thread holds
 * while it grows 16 MiB/s.  Before, it reached 197 MiB under --limit 64M
 * (3.1x) in --grace.  Now it is killed past the ceiling (64M + 64 MiB =
 * 128 MiB), the restart says "ceiling", and the next worker gets the last
 * good state (its predecessor's checkpoint, gen=1). */
static void save_blocked_while_growing_is_killed_past_the_ceiling(void** state) {
  h_run_t* h = *state;
  const char* slog = h_path(h, "samples.jsonl");
  h_start(h, "--limit", "64M", "--interval", "50ms", "--grace", "30s",
          "--sample-log", slog, "--sample-every", "50ms", "--log", h->log,
          "--", LOCKEDSAVE, "--rate", "16", NULL);
  assert_true(h_wait_event(h, "restart", 1, 30000) >= 1);
  cJSON* rs = h_events(h, "restart");
  cJSON* r = cJSON_GetArrayItem(rs, 0);
  assert_string_equal(h_str(h_get(r, "state"), "outcome"), "ceiling");
  assert_string_equal(h_str(h_get(r, "state"), "handed"), "checkpoint");
  cJSON_Delete(rs);
  assert_true(h_stderr_contains(h, "past the ceiling"));
  /* The new worker restored its predecessor's checkpoint. */
  for (int t = 0; t < h_ms(5000); t += 20) {
    char* out = h_read_file(h->out);
    int done = out && strstr(out, "restored gen=1") != NULL;
    free(out);
    if (done) break;
    h_sleep_ms(20);
  }
  char* out = h_read_file(h->out);
  assert_non_null(out);
  assert_non_null(strstr(out, "restored gen=1"));
  free(out);
  /* No sample of the first worker went far past the ceiling: at 16 MiB/s
   * and a 50 ms tick, 32 MiB is two seconds of a loaded machine's delay. */
  cJSON* samples = h_events_in(slog, "sample");
  int n = cJSON_GetArraySize(samples);
  assert_true(n > 0);
  double max = 0;
  for (int i = 0; i < n; i++) {
    double f = h_num(cJSON_GetArrayItem(samples, i), "footprint");
    if (f > max) max = f;
  }
  cJSON_Delete(samples);
  assert_true(max > 64.0 * MIB);
  assert_true(max < 160.0 * MIB);
  h_signal(h, SIGTERM);
  h_wait(h, 15000);
}

/* A SIGTERM to memsup during a save does not wait out the save (--grace
 * 60 s here): the worker gets SIGTERM at once, memsup ends with it (143)
 * and the restart line says "stopped". */
static void stop_during_a_save_does_not_wait_for_it(void** state) {
  h_run_t* h = *state;
  h_start(h, "--limit", "32M", "--interval", "50ms", "--grace", "60s",
          "--log", h->log, "--", LOCKEDSAVE, "--rate", "8", NULL);
  assert_true(h_wait_event(h, "start", 1, 5000) >= 1);
  cJSON* st = h_events(h, "start");
  pid_t w = (pid_t)h_num(cJSON_GetArrayItem(st, 0), "pid");
  cJSON_Delete(st);
  assert_true(w > 0);
  assert_true(wait_rss_over(w, 40 * MIB, 20000)); /* the save is asked */
  h_sleep_ms(300);
  h_signal(h, SIGTERM);
  assert_int_equal(h_wait(h, 15000), 128 + SIGTERM);
  cJSON* rs = h_events(h, "restart");
  assert_int_equal(cJSON_GetArraySize(rs), 1);
  cJSON* r = cJSON_GetArrayItem(rs, 0);
  assert_string_equal(h_str(h_get(r, "state"), "outcome"), "stopped");
  assert_true(h_num(r, "new_pid") == 0);
  cJSON_Delete(rs);
  assert_true(kill(w, 0) == -1 && errno == ESRCH);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, h_setup, h_teardown)
      T(save_blocked_while_growing_is_killed_past_the_ceiling),
      T(stop_during_a_save_does_not_wait_for_it),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
