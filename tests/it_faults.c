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

static pid_t first_worker(h_run_t* h) {
  if (h_wait_event(h, "start", 1, 5000) < 1) return -1;
  cJSON* st = h_events(h, "start");
  pid_t w = (pid_t)h_num(cJSON_GetArrayItem(st, 0), "pid");
  cJSON_Delete(st);
  return w;
}

/* Gone, or a zombie nobody reaped yet: either way no longer running. */
static int wait_gone(pid_t pid, int timeout_ms) {
  for (int t = 0; t < h_ms(timeout_ms); t += 20) {
    char s = h_proc_state(pid);
    if (s == 0 || s == 'Z' || s == 'X') return 1;
    h_sleep_ms(20);
  }
  return 0;
}

/* memsup SIGKILLed: nothing of it runs any more.  The test plays the
 * crash itself (not h_kill, which also kills the workers). */
static void sigkill_memsup(h_run_t* h) {
  kill(h->pid, SIGKILL);
  waitpid(h->pid, NULL, 0);
  h->pid = 0;
  h->status = 128 + SIGKILL;
}

/* Field 22 of /proc/PID/stat. */
static unsigned long long proc_starttime(pid_t pid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  char* s = h_read_file(path);
  unsigned long long v = 0;
  char* p = s ? strrchr(s, ')') : NULL;
  for (int f = 2; p && f < 22; f++) p = strchr(p + 1, ' ');
  if (p) v = strtoull(p + 1, NULL, 10);
  free(s);
  return v;
}

/* Defect 6: a worker outlived a SIGKILLed memsup, unsupervised and still
 * leaking.  Now it dies with memsup (the shim's PR_SET_PDEATHSIG). */
static void worker_dies_with_a_sigkilled_memsup(void** state) {
  h_run_t* h = *state;
  h_start(h, "--limit", "256M", "--log", h->log, "--", h_example("bloat"),
          "--mode", "leak", "--rate", "2", NULL);
  pid_t w = first_worker(h);
  assert_true(w > 0);
  h_sleep_ms(300);
  assert_true(h_proc_state(w) != 0);
  sigkill_memsup(h);
  assert_true(wait_gone(w, 5000));
}

/* A worker that cleared its parent-death signal (as a set-uid exec
 * would) survives a SIGKILLed memsup; a memsup started again with the same
 * --state-dir finds it through worker.pid, checks it is the same process
 * (start time, cmdline) and stops it before starting its own: one worker,
 * never two.  A pid file naming a process that is not ours (this test
 * process, same pid recorded with a wrong start time) is left alone. */
static void next_memsup_stops_a_leftover_worker_of_the_same_state_dir(
    void** state) {
  h_run_t* h = *state;
  const char* dir = h_path(h, "state");
  /* perl: prctl(PR_SET_PDEATHSIG, 0), then idle like a daemon. */
  const char* script = "syscall(157, 1, 0); sleep 1 while 1";
  h_start(h, "--state-dir", dir, "--log", h->log, "--", "/usr/bin/perl", "-e",
          script, NULL);
  pid_t w = first_worker(h);
  assert_true(w > 0);
  char pidfile[512];
  snprintf(pidfile, sizeof(pidfile), "%s/worker.pid", dir);
  for (int t = 0; t < h_ms(5000) && access(pidfile, F_OK) != 0; t += 20)
    h_sleep_ms(20);
  h_sleep_ms(300); /* the prctl ran */
  sigkill_memsup(h);
  h_sleep_ms(300);
  assert_true(h_proc_state(w) != 0 && h_proc_state(w) != 'Z'); /* left over */

  h_start(h, "--state-dir", dir, "--log", h->log, "--", "/usr/bin/perl", "-e",
          script, NULL);
  assert_true(wait_gone(w, 10000));
  /* memsup says so once it has seen the worker go: a moment after us. */
  int said = 0;
  for (int t = 0; t < h_ms(5000) && !said; t += 20) {
    said = h_stderr_contains(h, "previous memsup left running");
    if (!said) h_sleep_ms(20);
  }
  assert_true(said);
  assert_true(h_wait_event(h, "start", 2, 5000) >= 2);
  h_signal(h, SIGTERM);
  h_wait(h, 15000);
  assert_int_equal(access(pidfile, F_OK), -1); /* removed at the end */

  /* Not ours: a live process (the test's own sleep) recorded with another
   * start time, then with its own start time but another program. */
  const char* sleeper[] = {"sleep", "60", NULL};
  pid_t other = h_spawn(h, sleeper);
  assert_true(other > 0);
  h_sleep_ms(100);
  for (int round = 0; round < 2; round++) {
    FILE* f = fopen(pidfile, "w");
    assert_non_null(f);
    if (round == 0)
      fprintf(f, "%d 1\n/usr/bin/perl%c-e%c%s%c", (int)other, 0, 0, script, 0);
    else
      fprintf(f, "%d %llu\nsleep%c60%c", (int)other,
              (unsigned long long)proc_starttime(other), 0, 0);
    fclose(f);
    h_start(h, "--state-dir", dir, "--log", h->log, "--", "/usr/bin/perl",
            "-e", script, NULL);
    assert_true(h_wait_event(h, "start", 3 + round, 5000) >= 3 + round);
    h_signal(h, SIGTERM);
    h_wait(h, 15000);
    assert_true(h_proc_state(other) != 0 && h_proc_state(other) != 'Z');
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, h_setup, h_teardown)
      T(save_blocked_while_growing_is_killed_past_the_ceiling),
      T(stop_during_a_save_does_not_wait_for_it),
      T(worker_dies_with_a_sigkilled_memsup),
      T(next_memsup_stops_a_leftover_worker_of_the_same_state_dir),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
