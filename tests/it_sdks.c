/* it_sdks.c: the Python and Go child SDKs under the real memsup binary.
 * Each language's example worker (examples/python/kvcache.py,
 * examples/go -> build/examples/gokv) leaks until memsup restarts it; its
 * request counter must carry on across workers through the state handoff,
 * and the heap-in-use its SDK reports must appear in the restart log's
 * before and after.  tests/conformance/ checks the same SDKs message by
 * message; this checks them end to end.  Run from the source tree (as make
 * does) or set MEMSUP_SRC to it.
 */
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB (1024.0 * 1024.0)

static const char* python_worker(void) {
  static char path[512];
  const char* src = getenv("MEMSUP_SRC");
  snprintf(path, sizeof(path), "%s/examples/python/kvcache.py",
           src ? src : ".");
  return path;
}

/* The worker's argv for lang ("python" or "go"), leaking leak MiB/s. */
static void worker_argv(const char* lang, const char* leak, const char** argv,
                        int* n) {
  if (strcmp(lang, "python") == 0) {
    argv[(*n)++] = "python3";
    argv[(*n)++] = python_worker();
    argv[(*n)++] = "--leak-mib-per-s";
  } else {
    argv[(*n)++] = h_example("gokv");
    argv[(*n)++] = "-leak-mib-per-s";
  }
  argv[(*n)++] = leak;
  argv[*n] = NULL;
}

/* Ends a run as a user would; memsup exits with the worker's status and,
 * when built with sanitizers, without a report from them. */
static void stop_with_sigterm(h_run_t* h) {
  h_signal(h, SIGTERM);
  assert_int_equal(h_wait(h, 15000), 128 + SIGTERM);
  assert_false(h_stderr_contains(h, "Sanitizer"));
  assert_false(h_stderr_contains(h, "runtime error:"));
}

/* Every "requests=N" the workers printed, in order, never goes back, and
 * each "restored state: requests=N" resumes past the previous one.
 * Returns how many restores were printed. */
static int counter_carries_on(h_run_t* h, const char* tag) {
  static const char restored[] = "restored state: requests=";
  char* out = h_read_file(h->out);
  long long last = -1, last_restored = 0;
  int restores = 0;
  for (const char* p = out; p && (p = strstr(p, "requests=")); p++) {
    long long v = strtoll(p + strlen("requests="), NULL, 10);
    if (v < last)
      fail_msg("%s: requests went back from %lld to %lld:\n%s", tag, last, v,
               out);
    last = v;
    size_t off = strlen(restored) - strlen("requests=");
    if ((size_t)(p - out) >= off && strncmp(p - off, restored, off) == 0) {
      assert_true(v > last_restored);
      last_restored = v;
      restores++;
    }
  }
  free(out);
  return restores;
}

/* A memory restart of the example worker hands its state to the next
 * worker, again and again, and the log shows the SDK's heap-in-use. */
static void restarts_carry_the_counter_and_log_heap(h_run_t* h,
                                                    const char* lang) {
  const char* argv[16] = {"--limit", "40M", "--log", h->log, "--"};
  int n = 5;
  /* 4 MiB/s: lives of about 10 s, so each new worker is judged over the
   * first half of that (a leak that fills the limit in under 4 s is judged
   * as not helping: its new worker crosses again within the window). */
  worker_argv(lang, "4", argv, &n);
  h_startv(h, argv);
  assert_true(h_wait_event(h, "restart", 3, 60000) >= 3);
  /* The third restart's new worker prints its restore before it leaks. */
  for (int t = 0; t < h_ms(5000) && counter_carries_on(h, lang) < 3; t += 50)
    h_sleep_ms(50);

  cJSON* rs = h_events(h, "restart");
  for (int i = 0; i < 3; i++) {
    cJSON* r = cJSON_GetArrayItem(rs, i);
    cJSON* st = h_get(r, "state");
    assert_true(cJSON_IsObject(st));
    assert_string_equal(h_str(st, "outcome"), "restored");
    assert_string_equal(h_str(st, "handed"), "save");
    assert_string_equal(h_str(st, "restore"), "restored");
    /* The leak is on the heap the SDK measures: most of the 40 MiB before,
     * well under that halfway through the next life (the state is a few
     * bytes), so the restart helped. */
    double before = h_num(h_get(r, "before"), "heap");
    double after = h_num(h_get(r, "after"), "heap");
    assert_true(cJSON_IsTrue(h_get(r, "helped")));
    if (before < 16 * MIB || after >= before * 0.8)
      fail_msg("%s restart #%d: heap %.0f before, %.0f after", lang, i + 1,
               before, after);
  }
  cJSON_Delete(rs);
  assert_true(counter_carries_on(h, lang) >= 3);
  stop_with_sigterm(h);
}

/* --metric heap acts on the heap-in-use the SDK reports. */
static void heap_metric_restarts_on_sdk_heap(h_run_t* h, const char* lang) {
  const char* argv[16] = {"--metric", "heap", "--limit", "24M",
                          "--log",    h->log, "--"};
  int n = 7;
  worker_argv(lang, "48", argv, &n);
  h_startv(h, argv);
  assert_true(h_wait_event(h, "restart", 1, 20000) >= 1);
  cJSON* rs = h_events(h, "restart");
  cJSON* r = cJSON_GetArrayItem(rs, 0);
  assert_string_equal(h_str(r, "metric"), "heap");
  assert_true(h_num(h_get(r, "before"), "heap") >= 24 * MIB);
  assert_true(h_num(r, "value") == h_num(h_get(r, "before"), "heap"));
  assert_string_equal(h_str(h_get(r, "state"), "outcome"), "restored");
  cJSON_Delete(rs);
  stop_with_sigterm(h);
}

static void python_worker_state_survives_restarts(void** state) {
  restarts_carry_the_counter_and_log_heap(*state, "python");
}
static void go_worker_state_survives_restarts(void** state) {
  restarts_carry_the_counter_and_log_heap(*state, "go");
}
static void python_heap_metric_restarts(void** state) {
  heap_metric_restarts_on_sdk_heap(*state, "python");
}
static void go_heap_metric_restarts(void** state) {
  heap_metric_restarts_on_sdk_heap(*state, "go");
}

#define T(f) cmocka_unit_test_setup_teardown(f, h_setup, h_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(python_worker_state_survives_restarts),
      T(go_worker_state_survives_restarts),
      T(python_heap_metric_restarts),
      T(go_heap_metric_restarts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
