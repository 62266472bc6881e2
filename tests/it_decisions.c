/* it_decisions.c: restart decisions users can trust, end to end (issue 9,
 * parts 2 and 3).  The real memsup on workers that model real programs:
 * one that needs 300 MiB while it starts and then frees it (munmap, as
 * glibc returns a big block, or MADV_FREE, as jemalloc and Go do), one
 * that spikes 200 MiB for 1 s every 3 s, one whose steady state is over
 * the limit (a cache that fills to 200 MiB), a true leak (20 MiB/s) and an
 * SDK worker whose downtime is known.  The five of them run side by side
 * under five memsups for one 60 s window, so the suite pays for it once;
 * the 10-minute backoff figure is tests/test_machine.c's (simulated time:
 * steady_state_over_the_limit_backs_off_exponentially), this run checks
 * its first steps on real processes.
 */
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MIB (1024.0 * 1024.0)
#define BLOAT h_example("bloat")
#define WINDOW_MS 60000

static double wall_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int count_reason(cJSON* holds, const char* reason) {
  int n = 0;
  for (int i = 0; i < cJSON_GetArraySize(holds); i++)
    n += strcmp(h_str(cJSON_GetArrayItem(holds, i), "reason"), reason) == 0;
  return n;
}

/* A worker that needs more than the limit while it starts is restarted
 * once or twice, then held (it keeps running, the log says why and the
 * human line what to change), and is never restarted again. */
static void check_startup_peak(h_run_t* h, double t0) {
  cJSON* rs = h_events(h, "restart");
  cJSON* holds = h_events(h, "hold");
  int n = cJSON_GetArraySize(rs);
  if (n < 1 || n > 3)
    fail_msg("start-up peak: %d restarts in 60 s (want 1..3)", n);
  for (int i = 0; i < n; i++) {
    double at = h_num(cJSON_GetArrayItem(rs, i), "decided_unix_s") - t0;
    if (at > 30) fail_msg("start-up peak: restart %d at %.1f s: not done by 30 s", i + 1, at);
  }
  if (count_reason(holds, "crossed-soon") < 1)
    fail_msg("start-up peak: no hold with reason crossed-soon");
  /* The restart that did not help says so. */
  assert_true(cJSON_IsFalse(h_get(cJSON_GetArrayItem(rs, n - 1), "helped")));
  assert_true(h_num(cJSON_GetArrayItem(rs, n - 1), "crossed_after_s") < 4);
  assert_true(h_stderr_contains(h, "raise --limit or use --for"));
  cJSON_Delete(rs);
  cJSON_Delete(holds);
}

static void check_spike(h_run_t* h) {
  int n = h_count(h, "restart");
  if (n < 1 || n > 5) fail_msg("spike: %d restarts in 60 s (want 1..5)", n);
  assert_true(h_count(h, "hold") >= 1);
}

/* Restarts slow down: the holds double (10 s, 20 s, ...). */
static void check_steady_over(h_run_t* h) {
  cJSON* rs = h_events(h, "restart");
  cJSON* holds = h_events(h, "hold");
  int n = cJSON_GetArraySize(rs), k = cJSON_GetArraySize(holds);
  if (n < 2 || n > 4) fail_msg("steady over: %d restarts in 60 s (want 2..4)", n);
  if (k < 2) fail_msg("steady over: %d holds", k);
  assert_int_equal(count_reason(holds, "crossed-soon"), k);
  for (int i = 1; i < k; i++) {
    const cJSON* a = cJSON_GetArrayItem(holds, i - 1);
    const cJSON* b = cJSON_GetArrayItem(holds, i);
    if (h_num(b, "unhelpful") != h_num(a, "unhelpful") + 1 ||
        !(h_num(b, "hold_s") > h_num(a, "hold_s") * 1.5))
      fail_msg("steady over: hold %d (%s) does not double hold %d (%s)", i + 1,
               cJSON_PrintUnformatted(b), i, cJSON_PrintUnformatted(a));
  }
  /* Gaps between restarts grow too. */
  double prev_gap = 0;
  for (int i = 1; i < n; i++) {
    double gap = h_num(cJSON_GetArrayItem(rs, i), "decided_unix_s") -
                 h_num(cJSON_GetArrayItem(rs, i - 1), "decided_unix_s");
    if (gap < 10 || gap <= prev_gap)
      fail_msg("steady over: restart %d came %.1f s after the previous", i + 1, gap);
    prev_gap = gap;
  }
  cJSON_Delete(rs);
  cJSON_Delete(holds);
}

/* 20 MiB/s under 128 MiB: a life is ~6.4 s, and every crossing is
 * restarted at once (no hold), each judged helped.  Without the SDK the
 * downtime is not known: null, with its known phases beside it. */
static void check_leak(h_run_t* h) {
  cJSON* rs = h_events(h, "restart");
  int n = cJSON_GetArraySize(rs);
  if (n < 7) fail_msg("leak: only %d restarts in 60 s (lives of ~6.4 s)", n);
  assert_int_equal(h_count(h, "hold"), 0);
  for (int i = 0; i < n; i++) {
    const cJSON* r = cJSON_GetArrayItem(rs, i);
    double up = h_num(r, "uptime_s");
    if (up < 5 || up > 8.5)
      fail_msg("leak: restart %d after %.2f s of life: %s", i + 1, up,
               cJSON_PrintUnformatted(r));
    if (cJSON_IsNull(h_get(r, "after"))) continue; /* the stop cut it short */
    if (!cJSON_IsTrue(h_get(r, "helped")))
      fail_msg("leak: restart %d not helped: %s", i + 1, cJSON_PrintUnformatted(r));
    assert_true(cJSON_IsNull(h_get(r, "downtime_ms")));
    assert_true(cJSON_IsNull(h_get(r, "ready_ms")));
    assert_true(h_num(r, "gone_ms") > 0);
    assert_true(h_num(r, "spawn_ms") >= 0);
    assert_true(h_num(r, "judged_after_s") >= 2.5);
  }
  cJSON_Delete(rs);
}

/* An SDK worker says when it is ready: downtime is decision -> ready, the
 * sum of its phases. */
static void check_sdk_downtime(h_run_t* h) {
  cJSON* rs = h_events(h, "restart");
  int n = cJSON_GetArraySize(rs), judged = 0;
  assert_true(n >= 2);
  for (int i = 0; i < n; i++) {
    const cJSON* r = cJSON_GetArrayItem(rs, i);
    if (cJSON_IsNull(h_get(r, "after"))) continue;
    judged++;
    double d = h_num(r, "downtime_ms");
    double sum = h_num(r, "gone_ms") + h_num(r, "spawn_ms") + h_num(r, "ready_ms");
    if (d < sum - 0.01 || d > sum + 0.01)
      fail_msg("sdk: downtime %.3f ms is not its phases' sum %.3f: %s", d, sum,
               cJSON_PrintUnformatted(r));
    assert_true(d >= h_num(h_get(r, "state"), "save_ms"));
  }
  assert_true(judged >= 1);
  cJSON_Delete(rs);
}

static void loops_are_held_and_leaks_restarted_side_by_side(void** state) {
  (void)state;
  enum { PEAK_MUNMAP, PEAK_MADVISE, SPIKE, STEADY, LEAK, SDK, N };
  void* st[N];
  h_run_t* h[N];
  for (int i = 0; i < N; i++) {
    assert_int_equal(h_setup(&st[i]), 0);
    h[i] = st[i];
  }
  double t0 = wall_now();
  h_start(h[PEAK_MUNMAP], "--limit", "128M", "--log", h[PEAK_MUNMAP]->log, "--",
          BLOAT, "--mode", "startpeak", "--size", "300", "--free", "munmap", NULL);
  h_start(h[PEAK_MADVISE], "--limit", "128M", "--log", h[PEAK_MADVISE]->log, "--",
          BLOAT, "--mode", "startpeak", "--size", "300", "--free", "madvise", NULL);
  h_start(h[SPIKE], "--limit", "128M", "--log", h[SPIKE]->log, "--", BLOAT,
          "--mode", "spike", "--size", "200", "--spike-every", "3", "--spike-ms",
          "1000", NULL);
  /* A cache that fills to 200 MiB in half a second and stays there. */
  h_start(h[STEADY], "--limit", "128M", "--log", h[STEADY]->log, "--", BLOAT,
          "--mode", "leak", "--rate", "400", "--max", "200", NULL);
  h_start(h[LEAK], "--limit", "128M", "--log", h[LEAK]->log, "--", BLOAT,
          "--mode", "leak", "--rate", "20", NULL);
  h_start(h[SDK], "--limit", "48M", "--log", h[SDK]->log, "--",
          h_example("kvcache"), "--leak-mib-per-s", "6", "--state-mib", "4", NULL);
  h_sleep_ms(WINDOW_MS);
  for (int i = 0; i < N; i++) h_signal(h[i], SIGTERM);
  for (int i = 0; i < N; i++) assert_int_equal(h_wait(h[i], h_ms(20000)), 143);

  check_startup_peak(h[PEAK_MUNMAP], t0);
  check_startup_peak(h[PEAK_MADVISE], t0);
  check_spike(h[SPIKE]);
  check_steady_over(h[STEADY]);
  check_leak(h[LEAK]);
  check_sdk_downtime(h[SDK]);
  for (int i = 0; i < N; i++) h_teardown(&st[i]);
}

/* --log-max bounds the restart log like the sample log: past it the file
 * becomes FILE.1 and a new one starts, both whole JSON lines. */
static void restart_log_rotates_past_log_max(void** state) {
  h_run_t* h = *state;
  char old[320];
  struct stat sb;
  snprintf(old, sizeof(old), "%s.1", h->log);
  h_start(h, "--limit", "32M", "--log", h->log, "--log-max", "1K", "--", BLOAT,
          "--mode", "leak", "--rate", "16", NULL);
  /* A restart line (about 2 KiB) does not fit with the start line. */
  for (int i = 0; i < h_ms(15000) / 100 && stat(old, &sb) != 0; i++)
    h_sleep_ms(100);
  assert_int_equal(stat(old, &sb), 0);
  h_signal(h, SIGTERM);
  assert_int_equal(h_wait(h, h_ms(15000)), 143);
  /* Both parse as whole JSON lines (h_events fails the test otherwise). */
  cJSON* prev = h_events_in(old, NULL);
  cJSON* cur = h_events(h, NULL);
  assert_true(cJSON_GetArraySize(prev) >= 1);
  assert_true(cJSON_GetArraySize(cur) >= 1);
  /* Bounded: a file holds at most 1K, or one line alone when it is
   * longer. */
  const char* files[] = {old, h->log};
  for (int f = 0; f < 2; f++) {
    char* text = h_read_file(files[f]);
    assert_non_null(text);
    size_t size = strlen(text), lines = 0;
    for (char* p = text; *p; p++) lines += *p == '\n';
    if (size > 1024 && lines > 1)
      fail_msg("%s: %zu bytes in %zu lines past --log-max 1K", files[f], size, lines);
    free(text);
  }
  cJSON_Delete(prev);
  cJSON_Delete(cur);
}

#define T(f) cmocka_unit_test_setup_teardown(f, h_setup, h_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(loops_are_held_and_leaks_restarted_side_by_side),
      T(restart_log_rotates_past_log_max),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
