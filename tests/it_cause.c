/* it_cause.c: memsup names the kind of memory growth (issue 11), end to
 * end: one real worker per kind, the restart log read back.  The SDK
 * workers link jemalloc (memo, retain).  Checked: the class in the
 * restart's evidence, the gauge named for a cache, the purge tried before
 * a restart of a retaining worker (and no restart when the purge brought
 * it under), the "filtered" event for a crossing shorter than --for, the
 * spike named a spike, lazy-free pages named and carried in sample lines,
 * mapped-file pages named, and the regions that grew over a life.
 * Timings only bound waiting.
 */
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB (1024.0 * 1024.0)
#define BLOAT h_example("bloat")

/* The restart lines once n of them are logged (memsup then stopped). */
static cJSON* restarts(h_run_t* h, int n) {
  assert_true(h_wait_event(h, "restart", n, 30000) >= n);
  h_signal(h, SIGTERM);
  assert_int_equal(h_wait(h, 15000), 143);
  return h_events(h, "restart");
}

static const char* class_of(const cJSON* restart) {
  return h_str(h_get(restart, "evidence"), "classification");
}

static void expect_class(const cJSON* r, const char* cls) {
  if (strcmp(class_of(r), cls) != 0)
    fail_msg("classification is not \"%s\": %s", cls,
             cJSON_PrintUnformatted(r));
}

/* memo --mode cache: every request's result is memoized and never
 * evicted; the request counter is carried in the handed-over state.  The
 * first restart cannot tell a cache from a leak yet (no restart has shown
 * whether a gauge falls back); from the second on, cache.entries did. */
static void unbounded_cache_is_named_with_its_gauge(void** state) {
  h_run_t* h = *state;
  h_start(h, "--limit", "48M", "--log", h->log, "--", h_example("memo"),
          "--mode", "cache", NULL);
  cJSON* rs = restarts(h, 2);
  const cJSON* first = cJSON_GetArrayItem(rs, 0);
  const cJSON* second = cJSON_GetArrayItem(rs, 1);
  expect_class(first, "leak-or-cache");
  expect_class(second, "unbounded-cache");
  const cJSON* g = h_get(h_get(second, "evidence"), "gauge");
  assert_string_equal(h_str(g, "name"), "cache.entries");
  assert_true(cJSON_IsTrue(h_get(g, "fell_back")));
  assert_true(h_num(g, "r") >= 0.8);
  assert_true(h_num(g, "last") > h_num(g, "first"));
  /* The carried counter is not what the sentence names. */
  assert_null(strstr(h_str(h_get(second, "evidence"), "why"), "requests"));
  /* Regions that grew over the life: the anonymous memory jemalloc
   * serves the cache from, not the libraries' pages that were there from
   * the start. */
  const cJSON* grew = h_get(h_get(second, "evidence"), "grew");
  assert_true(cJSON_IsArray(grew) && cJSON_GetArraySize(grew) >= 1);
  const cJSON* top = cJSON_GetArrayItem(grew, 0);
  assert_true(strcmp(h_str(top, "class"), "anon") == 0 ||
              strcmp(h_str(top, "class"), "heap") == 0);
  assert_true(h_num(top, "grew") >= 16 * MIB);
  assert_true(h_num(top, "late") - h_num(top, "early") == h_num(top, "grew"));
  assert_true(h_num(h_get(second, "evidence"), "grew_since_s") >= 0);
  /* It was carried: the second worker's requests did not start at 0. */
  assert_true(h_num(h_get(h_get(second, "before"), "gauges"), "requests") >
              h_num(h_get(h_get(first, "before"), "gauges"), "requests"));
  cJSON_Delete(rs);
}

/* memo --mode leak: the memo table is bounded, but a scratch buffer per
 * request is lost; only the carried request counter grows with it. */
static void leak_with_a_carried_counter_is_a_leak(void** state) {
  h_run_t* h = *state;
  h_start(h, "--limit", "48M", "--log", h->log, "--", h_example("memo"),
          "--mode", "leak", NULL);
  cJSON* rs = restarts(h, 2);
  expect_class(cJSON_GetArrayItem(rs, 1), "leak");
  cJSON_Delete(rs);
}

/* Without the SDK, memsup says it cannot tell a leak from a cache. */
static void growth_without_the_sdk_is_leak_or_cache(void** state) {
  h_run_t* h = *state;
  h_start(h, "--limit", "48M", "--log", h->log, "--", BLOAT, "--mode", "leak",
          "--rate", "64", NULL);
  cJSON* rs = restarts(h, 1);
  const cJSON* r = cJSON_GetArrayItem(rs, 0);
  expect_class(r, "leak-or-cache");
  assert_non_null(strstr(h_str(h_get(r, "evidence"), "why"),
                         "link the SDK to tell them apart"));
  cJSON_Delete(rs);
}

/* retain churns 64 MiB every 4 s and frees it; jemalloc (decay off) keeps
 * the pages.  Over the hard limit, memsup purges instead of restarting.
 * --for 2s puts the decision in the idle part of the period (the churn
 * took up to ~1 s on a loaded host). */
static void retention_at_the_limit_is_purged_not_restarted(void** state) {
  h_run_t* h = *state;
  h_start(h, "--limit", "48M", "--for", "2s", "--log", h->log, "--",
          h_example("retain"), "--every", "4", NULL);
  assert_true(h_wait_event(h, "purge", 1, 20000) >= 1);
  h_sleep_ms(1000);
  h_signal(h, SIGTERM);
  assert_int_equal(h_wait(h, 15000), 143);
  cJSON* ps = h_events(h, "purge");
  const cJSON* p = cJSON_GetArrayItem(ps, 0);
  assert_string_equal(h_str(p, "reason"), "hard-limit");
  assert_true(h_num(h_get(p, "before"), "footprint") >= 48 * MIB);
  assert_true(h_num(h_get(p, "after"), "footprint") < 48 * MIB);
  assert_true(h_num(p, "freed") >= 16 * MIB);
  assert_int_equal(h_count(h, "restart"), 0);
  cJSON_Delete(ps);
}

/* The same worker holding a 40 MiB working set under a 40 MiB limit: the
 * purge gives back the churn but not the working set, so the restart
 * follows it, and the purge line comes first. */
static void retention_still_over_after_the_purge_restarts_after_it(
    void** state) {
  h_run_t* h = *state;
  /* The crossing comes as the working set is filled, just before the
   * first churn; --for 3s with a 6 s period puts the decision after that
   * churn (up to ~1.5 s on a loaded host), in the idle part. */
  h_start(h, "--limit", "40M", "--for", "3s", "--log", h->log, "--",
          h_example("retain"), "--every", "6", "--hold", "40", NULL);
  cJSON* rs = restarts(h, 1);
  cJSON_Delete(rs);
  cJSON* all = h_events(h, NULL);
  int purge_at = -1, restart_at = -1;
  for (int i = 0; i < cJSON_GetArraySize(all); i++) {
    const cJSON* e = cJSON_GetArrayItem(all, i);
    const char* ev = h_str(e, "event");
    if (purge_at < 0 && strcmp(ev, "purge") == 0) purge_at = i;
    if (restart_at < 0 && strcmp(ev, "restart") == 0) restart_at = i;
  }
  assert_true(purge_at >= 0);
  assert_true(purge_at < restart_at);
  const cJSON* p = cJSON_GetArrayItem(all, purge_at);
  assert_string_equal(h_str(p, "reason"), "hard-limit");
  assert_true(h_num(h_get(p, "after"), "footprint") >= 40 * MIB);
  cJSON_Delete(all);
}

/* bloat idles under 1 MiB for 8 s, then takes a 64 MiB burst for 0.6 s
 * (the case once called "grew 923.8 MiB/min"). */
static void spike_is_named_a_spike(void** state) {
  h_run_t* h = *state;
  h_start(h, "--limit", "48M", "--log", h->log, "--", BLOAT, "--mode",
          "spike", "--size", "64", "--spike-after", "8", "--spike-ms", "600",
          "--spike-every", "100", NULL);
  cJSON* rs = restarts(h, 1);
  const cJSON* r = cJSON_GetArrayItem(rs, 0);
  expect_class(r, "spike");
  assert_null(strstr(h_str(h_get(r, "evidence"), "why"), "grew"));
  cJSON_Delete(rs);
}

/* The same bursts, every 3 s, under --for 2s: never a restart, and one
 * "filtered" line per burst with its peak. */
static void crossing_shorter_than_for_is_logged_filtered(void** state) {
  h_run_t* h = *state;
  h_start(h, "--limit", "48M", "--for", "2s", "--log", h->log, "--", BLOAT,
          "--mode", "spike", "--size", "64", "--spike-after", "1",
          "--spike-ms", "600", "--spike-every", "3", NULL);
  assert_true(h_wait_event(h, "filtered", 2, 20000) >= 2);
  h_signal(h, SIGTERM);
  assert_int_equal(h_wait(h, 15000), 143);
  assert_int_equal(h_count(h, "restart"), 0);
  cJSON* fs = h_events(h, "filtered");
  for (int i = 0; i < 2; i++) {
    const cJSON* f = cJSON_GetArrayItem(fs, i);
    assert_true(h_num(f, "peak") >= 48 * MIB);
    assert_true(h_num(f, "lasted_s") > 0 && h_num(f, "lasted_s") < 2);
    assert_true(h_num(f, "for_s") == 2);
    assert_string_equal(h_str(f, "metric"), "footprint");
  }
  /* One line per burst: the bursts are 3 s apart, so are the lines. */
  const char* t0 = h_str(cJSON_GetArrayItem(fs, 0), "ts");
  const char* t1 = h_str(cJSON_GetArrayItem(fs, 1), "ts");
  assert_true(strcmp(t0, t1) < 0);
  double s0 = atof(t0 + 17) + 60 * atof(t0 + 14),
         s1 = atof(t1 + 17) + 60 * atof(t1 + 14);
  if (s1 < s0) s1 += 3600;
  assert_true(s1 - s0 >= 2);
  cJSON_Delete(fs);
}

/* 128 MiB touched then freed with MADV_FREE: RSS far above footprint.
 * Under the default metric no restart, and the sample log carries the
 * lazy-free figure on every line after the first full read. */
static void lazy_free_pages_are_in_every_sample_line(void** state) {
  h_run_t* h = *state;
  const char* samples = h_path(h, "samples.jsonl");
  h_start(h, "--limit", "64M", "--log", h->log, "--sample-log", samples,
          "--sample-every", "100ms", "--", BLOAT, "--mode", "lazyfree",
          "--size", "128", NULL);
  /* Until an estimated line carries the lazy-free pages (bloat touches
   * and frees them in steps: seconds on a loaded host), and there are the
   * 5 lines checked below (on an idle host the first such line can come
   * within 300 ms, 3 or 4 lines in). */
  int seen = 0, lines = 0;
  for (int waited = 0; (!seen || lines < 5) && waited < h_ms(20000);
       waited += 200) {
    h_sleep_ms(200);
    cJSON* ss = h_events_in(samples, "sample");
    lines = cJSON_GetArraySize(ss);
    for (int i = 0; i < cJSON_GetArraySize(ss); i++) {
      const cJSON* s = cJSON_GetArrayItem(ss, i);
      seen |= cJSON_IsFalse(h_get(s, "full")) &&
              cJSON_IsNumber(h_get(s, "lazyfree")) &&
              h_num(s, "lazyfree") >= 100 * MIB;
    }
    cJSON_Delete(ss);
  }
  h_signal(h, SIGTERM);
  assert_int_equal(h_wait(h, 15000), 143);
  assert_true(seen);
  assert_int_equal(h_count(h, "restart"), 0);
  cJSON* ss = h_events_in(samples, "sample");
  int n = cJSON_GetArraySize(ss), estimated = 0, big = 0, measured = 0;
  assert_true(n >= 5);
  for (int i = 0; i < n; i++) {
    const cJSON* s = cJSON_GetArrayItem(ss, i);
    const cJSON* lf = h_get(s, "lazyfree");
    if (cJSON_IsTrue(h_get(s, "full"))) measured = 1;
    if (!measured) continue;
    assert_true(cJSON_IsNumber(lf));
    assert_true(cJSON_IsNumber(h_get(s, "lazyfree_age_s")));
    if (cJSON_IsFalse(h_get(s, "full"))) estimated++;
    if (h_num(s, "lazyfree") >= 100 * MIB) big++;
  }
  assert_true(estimated >= 1); /* lines that did not read smaps_rollup */
  assert_true(big >= 1);
  cJSON_Delete(ss);
}

/* The same worker under --metric rss is restarted, and the evidence says
 * why RSS was high: lazy-free pages, not a leak. */
static void lazy_free_under_the_rss_metric_is_named_lazy_free(void** state) {
  h_run_t* h = *state;
  h_start(h, "--metric", "rss", "--limit", "64M", "--log", h->log, "--", BLOAT,
          "--mode", "lazyfree", "--size", "128", NULL);
  cJSON* rs = restarts(h, 1);
  expect_class(cJSON_GetArrayItem(rs, 0), "lazy-free");
  cJSON_Delete(rs);
}

/* A 96 MiB data file written, synced and mapped (a model, an index):
 * RSS over the limit under --metric rss, footprint tiny. */
static void mapped_file_under_the_rss_metric_is_named_file_backed(
    void** state) {
  h_run_t* h = *state;
  h_start(h, "--metric", "rss", "--limit", "48M", "--log", h->log, "--", BLOAT,
          "--mode", "mapfile", "--size", "96", NULL);
  cJSON* rs = restarts(h, 1);
  const cJSON* r = cJSON_GetArrayItem(rs, 0);
  expect_class(r, "file-backed");
  assert_non_null(strstr(h_str(h_get(r, "evidence"), "why"), "mapped-file"));
  cJSON_Delete(rs);
}

#define T(f) cmocka_unit_test_setup_teardown(f, h_setup, h_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(unbounded_cache_is_named_with_its_gauge),
      T(leak_with_a_carried_counter_is_a_leak),
      T(growth_without_the_sdk_is_leak_or_cache),
      T(retention_at_the_limit_is_purged_not_restarted),
      T(retention_still_over_after_the_purge_restarts_after_it),
      T(spike_is_named_a_spike),
      T(crossing_shorter_than_for_is_logged_filtered),
      T(lazy_free_pages_are_in_every_sample_line),
      T(lazy_free_under_the_rss_metric_is_named_lazy_free),
      T(mapped_file_under_the_rss_metric_is_named_file_backed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
