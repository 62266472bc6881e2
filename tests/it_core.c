/* it_core.c: memsup's core behaviour end to end: the real binary
 * supervising real bloat workers.  Checked through what a user sees: exit
 * codes, the JSON-lines log, stderr, and the workers' /proc entries.
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
#define BLOAT h_example("bloat")


/* Fields every log line carries: ts (RFC 3339 UTC with ms), event, pid, gen. */
static void check_common(const cJSON* line) {
  const char* ts = h_str(line, "ts");
  assert_non_null(ts);
  assert_int_equal(strlen(ts), 24);
  assert_true(ts[4] == '-' && ts[10] == 'T' && ts[19] == '.' && ts[23] == 'Z');
  assert_non_null(h_str(line, "event"));
  assert_true(h_num(line, "pid") > 0);
  assert_true(h_num(line, "gen") >= 1);
}

/* Whether memsup (our child) is still running. */
static int running(h_run_t* h) {
  return h->pid > 0 && waitpid(h->pid, NULL, WNOHANG) == 0;
}

/* Largest VmRSS of pid seen over ms milliseconds. */
static uint64_t max_rss_over(pid_t pid, int ms) {
  uint64_t max = 0;
  for (int t = 0; t < ms; t += 50) {
    uint64_t v = h_proc_bytes(pid, "VmRSS");
    if (v > max) max = v;
    h_sleep_ms(50);
  }
  return max;
}

static int file_contains(const char* path, const char* needle) {
  char* s = h_read_file(path);
  int found = s && strstr(s, needle) != NULL;
  free(s);
  return found;
}

static int wait_file_contains(const char* path, const char* needle, int ms) {
  for (int t = 0; t < h_ms(ms); t += 20) {
    if (file_contains(path, needle)) return 1;
    h_sleep_ms(20);
  }
  return 0;
}

/* 1 */
static void leak_is_restarted_and_each_restart_is_logged(void** state) {
  h_run_t* h = *state;
  /* 8 MiB/s: lives of 6 s, longer than the 4 s over which a restart is
   * judged, so each restart helped and its "after" is under the limit (a
   * leak that fills the limit faster is judged as not helping: its new
   * worker crosses again within 4 s). */
  h_start(h, "--limit", "48M", "--interval", "50ms", "--log", h->log, "--",
          BLOAT, "--mode", "leak", "--rate", "8", NULL);
  assert_true(h_wait_event(h, "restart", 2, 25000) >= 2);

  cJSON* rs = h_events(h, "restart");
  int n = cJSON_GetArraySize(rs);
  for (int i = 0; i < n; i++) {
    cJSON* r = cJSON_GetArrayItem(rs, i);
    check_common(r);
    assert_string_equal(h_str(r, "reason"), "limit");
    assert_string_equal(h_str(r, "metric"), "footprint");
    assert_true(h_num(r, "limit") == 48.0 * MIB);
    assert_true(h_num(h_get(r, "before"), "footprint") >= 48.0 * MIB);
    assert_true(cJSON_IsObject(h_get(r, "after")));
    assert_true(h_num(h_get(r, "after"), "footprint") < 48.0 * MIB);
    assert_true(h_num(r, "old_pid") != h_num(r, "new_pid"));
    assert_true(h_num(r, "pid") == h_num(r, "new_pid"));
    assert_true(h_num(r, "gen") == i + 2); /* the first worker is gen 1 */
    if (i > 0)
      assert_true(h_num(r, "old_pid") ==
                  h_num(cJSON_GetArrayItem(rs, i - 1), "new_pid"));
  }
  cJSON_Delete(rs);
  assert_true(h_stderr_contains(h, "restart #1"));

  h_signal(h, SIGTERM);
  assert_int_equal(h_wait(h, 15000), 143);
  cJSON* all = h_events(h, NULL);
  int stop = -1, exit_at = -1;
  for (int i = 0; i < cJSON_GetArraySize(all); i++) {
    cJSON* e = cJSON_GetArrayItem(all, i);
    check_common(e);
    if (strcmp(h_str(e, "event"), "stop") == 0) {
      stop = i;
      assert_string_equal(h_str(e, "signal"), "SIGTERM");
    }
    if (strcmp(h_str(e, "event"), "exit") == 0) {
      exit_at = i;
      assert_string_equal(h_str(e, "signal"), "SIGTERM");
    }
  }
  cJSON_Delete(all);
  assert_true(stop >= 0 && exit_at > stop);
}

static uint64_t rollup_bytes(pid_t pid, const char* field) {
  char path[64], key[64];
  snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
  snprintf(key, sizeof(key), "\n%s:", field);
  char* s = h_read_file(path);
  char* p = s ? strstr(s, key) : NULL;
  uint64_t v = p ? strtoull(p + strlen(key), NULL, 10) * 1024 : 0;
  free(s);
  return v;
}

/* 2, 3: RSS far over the limit while footprint stays under it. */
static void clean_memory_over_limit_is_not_restarted(h_run_t* h,
                                                     const char* mode) {
  h_start(h, "--limit", "48M", "--log", h->log, "--", BLOAT, "--mode", mode,
          "--size", "96", NULL);
  pid_t w = h_worker_pid(h, 0, 5000);
  assert_true(w > 0);
  uint64_t rss = 0, lazy = 0;
  for (int t = 0; t < 3000; t += 50, h_sleep_ms(50)) {
    uint64_t r = h_proc_bytes(w, "VmRSS"), l = rollup_bytes(w, "LazyFree");
    rss = r > rss ? r : rss;
    lazy = l > lazy ? l : lazy;
  }
  assert_int_equal(h_count(h, "restart"), 0);
  assert_int_equal(h_worker_pid(h, 1, 0), -1); /* still the first worker */
  assert_true(running(h));
  /* MADV_FREE pages may be dropped at once (memory pressure, a balloon):
   * then this machine cannot show RSS over the limit. */
  if (strcmp(mode, "lazyfree") == 0 && lazy < 48 * MIB) skip();
  assert_true(rss > 48 * MIB);
}

static void mapped_file_over_limit_is_not_restarted(void** state) {
  clean_memory_over_limit_is_not_restarted(*state, "mapfile");
}

static void lazyfree_over_limit_is_not_restarted(void** state) {
  clean_memory_over_limit_is_not_restarted(*state, "lazyfree");
}

/* 4 */
static void crash_loop_gives_up_with_last_exit_code(void** state) {
  h_run_t* h = *state;
  h_start(h, "--max-restarts", "3", "--within", "20s", "--log", h->log, "--",
          BLOAT, "--mode", "idle", "--exit-after", "0.05", "--exit-code", "3",
          NULL);
  assert_int_equal(h_wait(h, 20000), 3);
  cJSON* cs = h_events(h, "crash");
  assert_int_equal(cJSON_GetArraySize(cs), 4);
  for (int i = 0; i < 4; i++) {
    cJSON* c = cJSON_GetArrayItem(cs, i);
    check_common(c);
    assert_true(h_num(c, "exit_code") == 3);
    assert_null(h_str(c, "signal"));
    if (i < 3) assert_true(h_num(c, "restart_in_ms") == 100 << i); /* backoff */
  }
  cJSON_Delete(cs);
  cJSON* gs = h_events(h, "giveup");
  assert_int_equal(cJSON_GetArraySize(gs), 1);
  assert_true(h_num(cJSON_GetArrayItem(gs, 0), "crashes") == 4);
  assert_true(h_num(cJSON_GetArrayItem(gs, 0), "within_s") == 20);
  cJSON_Delete(gs);
  assert_int_equal(h_count(h, "restart"), 0);
  assert_true(h_stderr_contains(h, "memsup: "));
  assert_true(
      h_stderr_contains(h, "giving up") || h_stderr_contains(h, "gave up") ||
      h_stderr_contains(h, "give up") || h_stderr_contains(h, "giveup"));
}

/* 5 */
static void segfault_loop_reports_signal_and_exits_139(void** state) {
  h_run_t* h = *state;
  h_start(h, "--max-restarts", "3", "--within", "20s", "--log", h->log, "--",
          BLOAT, "--mode", "idle", "--signal-after", "0.05", "--signal", "11",
          NULL);
  assert_int_equal(h_wait(h, 20000), 139);
  cJSON* cs = h_events(h, "crash");
  assert_int_equal(cJSON_GetArraySize(cs), 4);
  for (int i = 0; i < 4; i++) {
    cJSON* c = cJSON_GetArrayItem(cs, i);
    assert_string_equal(h_str(c, "signal"), "SIGSEGV");
    assert_true(cJSON_IsNull(h_get(c, "exit_code")));
  }
  cJSON_Delete(cs);
  assert_int_equal(h_count(h, "giveup"), 1);
}

/* 6 */
static void clean_exit_ends_memsup_with_zero(void** state) {
  h_run_t* h = *state;
  h_start(h, "--log", h->log, "--", BLOAT, "--mode", "idle", "--exit-after",
          "0.1", NULL);
  assert_int_equal(h_wait(h, 10000), 0);
  cJSON* es = h_events(h, "exit");
  assert_int_equal(cJSON_GetArraySize(es), 1);
  assert_true(h_num(cJSON_GetArrayItem(es, 0), "exit_code") == 0);
  assert_null(h_str(cJSON_GetArrayItem(es, 0), "signal"));
  cJSON_Delete(es);
  assert_int_equal(h_count(h, "start"), 1);
  assert_int_equal(h_count(h, "restart"), 0);
  assert_int_equal(h_count(h, "crash"), 0);
}

static void restart_always_restarts_clean_exits(void** state) {
  h_run_t* h = *state;
  h_start(h, "--restart", "always", "--log", h->log, "--", BLOAT, "--mode",
          "idle", "--exit-after", "0.1", NULL);
  assert_true(h_wait_event(h, "start", 3, 10000) >= 3);
  cJSON* ss = h_events(h, "start");
  cJSON* cmd = h_get(cJSON_GetArrayItem(ss, 0), "cmd");
  assert_true(cJSON_IsArray(cmd));
  assert_string_equal(cJSON_GetStringValue(cJSON_GetArrayItem(cmd, 0)), BLOAT);
  assert_true(h_num(cJSON_GetArrayItem(ss, 2), "gen") == 3);
  cJSON_Delete(ss);
  h_signal(h, SIGTERM);
  h_wait(h, 15000);
  assert_int_equal(h_count(h, "stop"), 1);
}

/* 7 */
static void hup_usr1_usr2_quit_are_forwarded(void** state) {
  h_run_t* h = *state;
  const char* f = h_path(h, "signals");
  h_start(h, "--log", h->log, "--", BLOAT, "--mode", "idle", "--signals-to", f,
          NULL);
  assert_true(h_worker_pid(h, 0, 5000) > 0);
  static const struct {
    int sig;
    const char* name;
  } sigs[] = {{SIGHUP, "SIGHUP\n"},
              {SIGUSR1, "SIGUSR1\n"},
              {SIGUSR2, "SIGUSR2\n"},
              {SIGQUIT, "SIGQUIT\n"}};
  for (int i = 0; i < 4; i++) {
    h_signal(h, sigs[i].sig);
    if (!wait_file_contains(f, sigs[i].name, 5000))
      fail_msg("worker never got %s", sigs[i].name);
  }
  assert_true(running(h));
  assert_int_equal(h_worker_pid(h, 1, 0), -1); /* same worker throughout */
  h_signal(h, SIGTERM);
  assert_int_equal(h_wait(h, 15000), 143);
  assert_true(file_contains(f, "SIGTERM\n"));
}

/* 8 */
static void stop_signal(h_run_t* h, int sig, int expect, int ignore_term) {
  h_start(h, "--grace", "300ms", "--log", h->log, "--", BLOAT, "--mode", "idle",
          ignore_term ? "--ignore-term" : NULL, NULL);
  pid_t w = h_worker_pid(h, 0, 5000);
  assert_true(w > 0);
  h_signal(h, sig);
  assert_int_equal(h_wait(h, 15000), expect);
  char st = h_proc_state(w);
  assert_true(st == 0 || st == 'Z'); /* the worker did not outlive memsup */
}

static void sigterm_kills_worker_ignoring_it_after_grace(void** state) {
  stop_signal(*state, SIGTERM, 128 + SIGKILL, 1);
}

static void sigterm_stops_worker_and_exits_143(void** state) {
  stop_signal(*state, SIGTERM, 128 + SIGTERM, 0);
}

static void sigint_stops_worker_and_exits_130(void** state) {
  stop_signal(*state, SIGINT, 128 + SIGINT, 0);
}

/* 9 */
static void restart_kills_workers_grandchildren(void** state) {
  h_run_t* h = *state;
  const char* f = h_path(h, "grandchild");
  h_start(h, "--limit", "48M", "--log", h->log, "--", BLOAT, "--mode", "leak",
          "--rate", "32", "--grandchild", f, NULL);
  assert_true(h_worker_pid(h, 0, 5000) > 0);
  char* s = NULL;
  for (int t = 0; !s && t < h_ms(5000); t += 10, h_sleep_ms(10))
    s = h_read_file(f);
  assert_non_null(s);
  pid_t g = (pid_t)atoi(s);
  free(s);
  assert_int_equal(h_worker_pid(h, 1, 0), -1); /* pid is the first worker's */
  assert_true(g > 0 && h_proc_state(g) != 0 && h_proc_state(g) != 'Z');

  assert_true(h_wait_event(h, "restart", 1, 15000) >= 1);
  char st = 'S';
  for (int t = 0; t < h_ms(3000); t += 20, h_sleep_ms(20))
    if ((st = h_proc_state(g)) == 0 || st == 'Z') break;
  if (st != 0 && st != 'Z')
    fail_msg("grandchild %d survived the restart", (int)g);
}

/* 10 */
static void tree_counts_leaking_child(void** state) {
  h_run_t* h = *state;
  h_start(h, "--tree", "--limit", "48M", "--log", h->log, "--", BLOAT,
          "--tree-leak", "--rate", "64", NULL);
  assert_true(h_wait_event(h, "restart", 1, 15000) >= 1);
  cJSON* rs = h_events(h, "restart");
  assert_true(h_num(h_get(cJSON_GetArrayItem(rs, 0), "before"), "footprint") >=
              48.0 * MIB);
  cJSON_Delete(rs);
}

static void without_tree_leaking_child_is_ignored(void** state) {
  h_run_t* h = *state;
  h_start(h, "--limit", "48M", "--log", h->log, "--", BLOAT, "--tree-leak",
          "--rate", "64", NULL);
  pid_t w = h_worker_pid(h, 0, 5000);
  assert_true(w > 0);
  h_sleep_ms(2000);
  pid_t kids[8];
  assert_int_equal(h_children(w, kids, 8), 1);
  assert_true(h_proc_bytes(kids[0], "VmRSS") > 48 * MIB); /* the tree is over */
  assert_true(h_proc_bytes(w, "VmRSS") < 48 * MIB); /* the worker is not */
  assert_int_equal(h_count(h, "restart"), 0);
  assert_true(running(h));
}

/* 11 */
static void short_spike_under_for_is_tolerated(void** state) {
  h_run_t* h = *state;
  h_start(h, "--limit", "48M", "--for", "2s", "--log", h->log, "--", BLOAT,
          "--mode", "spike", "--size", "96", "--spike-every", "3", "--spike-ms",
          "1000", NULL);
  pid_t w = h_worker_pid(h, 0, 5000);
  assert_true(w > 0);
  assert_true(max_rss_over(w, 5000) > 48 * MIB); /* the spikes happened */
  assert_int_equal(h_count(h, "restart"), 0);
  assert_true(running(h));
}

static void spike_without_for_is_restarted(void** state) {
  h_run_t* h = *state;
  h_start(h, "--limit", "48M", "--log", h->log, "--", BLOAT, "--mode", "spike",
          "--size", "96", NULL);
  assert_true(h_wait_event(h, "restart", 1, 5000) >= 1);
}

/* 12: bad input.  Every case must name the problem on stderr. */
static void expect_error(h_run_t* h, const char* const* argv, int code,
                         const char* needle) {
  h_startv(h, argv);
  assert_int_equal(h_wait(h, 10000), code);
  char* err = h_read_file(h->err);
  assert_non_null(err);
  if (strncmp(err, "memsup: ", 8) != 0 && !strstr(err, "\nmemsup: "))
    fail_msg("no \"memsup: \" line on stderr: %s", err);
  if (!strstr(err, needle))
    fail_msg("stderr does not mention '%s': %s", needle, err);
  free(err);
}

#define BAD(name, code, needle, ...)          \
  static void name(void** state) {            \
    const char* argv[] = {__VA_ARGS__, NULL}; \
    expect_error(*state, argv, code, needle); \
  }

BAD(unknown_flag_is_rejected, 100, "--bogus", "--bogus", "--", BLOAT)
BAD(missing_separator_is_rejected, 100, "--", "--limit", "48M", BLOAT)
BAD(limit_with_bad_unit_is_rejected, 100, "12Q", "--limit", "12Q", "--", BLOAT)
BAD(negative_limit_is_rejected, 100, "-5M", "--limit", "-5M", "--", BLOAT)
BAD(zero_limit_is_rejected, 100, "limit", "--limit", "0", "--", BLOAT)
BAD(overflowing_limit_is_rejected, 100, "99999999999T", "--limit",
    "99999999999T", "--", BLOAT)
BAD(zero_interval_is_rejected, 100, "interval", "--interval", "0", "--", BLOAT)
BAD(percent_limit_without_cgroup_limit_is_rejected, 100, "50%", "--limit",
    "50%", "--", BLOAT)
BAD(unwritable_log_is_rejected, 100, "/nonexistent/x.jsonl", "--log",
    "/nonexistent/x.jsonl", "--", BLOAT, "--mode", "idle")
BAD(unwritable_sample_log_is_rejected, 100, "/nonexistent/s.jsonl",
    "--sample-log", "/nonexistent/s.jsonl", "--", BLOAT, "--mode", "idle")
BAD(state_dir_that_is_a_file_is_rejected, 100, "Not a directory",
    "--state-dir", "/etc/passwd", "--", BLOAT, "--mode", "idle")
BAD(zero_sample_every_is_rejected, 100, "--sample-every", "--sample-every",
    "0", "--", BLOAT)
BAD(garbage_pid_is_rejected, 100, "--pid", "watch", "--pid", "abc")
BAD(pid_with_a_command_is_rejected, 100, "give no command", "--pid", "1",
    "--", BLOAT)
BAD(missing_command_exits_127, 127, "memsup-no-such-command", "--",
    "memsup-no-such-command")

static void non_executable_command_exits_126(void** state) {
  h_run_t* h = *state;
  const char* f = h_path(h, "not-executable");
  FILE* fp = fopen(f, "w");
  assert_non_null(fp);
  fputs("#!/bin/sh\nexit 0\n", fp);
  fclose(fp);
  assert_int_equal(chmod(f, 0644), 0);
  const char* argv[] = {"--", f, NULL};
  expect_error(h, argv, 126, "not-executable");
}

/* 13 */
static void subreaper_reaps_orphans(void** state) {
  h_run_t* h = *state;
  h_start(h, "--subreaper", "--log", h->log, "--", BLOAT, "--mode", "idle",
          "--orphan", "--run-for", "1", NULL);
  pid_t w = h_worker_pid(h, 0, 5000);
  assert_true(w > 0);
  /* While the orphan sleeps its 200 ms it must be memsup's child. */
  pid_t orphan = 0, kids[16];
  for (int t = 0; !orphan && t < 150; t += 5, h_sleep_ms(5)) {
    int n = h_children(h->pid, kids, 16);
    for (int i = 0; i < n; i++)
      if (kids[i] != w) orphan = kids[i];
  }
  if (!orphan) fail_msg("the orphan was not reparented to memsup");
  h_sleep_ms(500); /* it exited at ~200 ms */
  char st = h_proc_state(orphan);
  if (st != 0) fail_msg("orphan %d not reaped (state %c)", (int)orphan, st);
  assert_int_equal(h_wait(h, 10000), 0);
}

/* 14: the worker's binary disappears (a deploy replacing it, a cleanup):
 * the memory restart cannot spawn the next worker.  The restart is still
 * logged (no new worker: new_pid 0, after null), the failed spawns count
 * as crashes, and memsup gives up with 127 (not found). */
static void restart_whose_spawn_fails_is_logged_without_a_new_worker(
    void** state) {
  h_run_t* h = *state;
  char cmd[700];
  const char* copy = h_path(h, "bloat-copy");
  snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", BLOAT, copy);
  assert_int_equal(system(cmd), 0);
  h_start(h, "--limit", "48M", "--max-restarts", "1", "--log", h->log, "--",
          copy, "--mode", "leak", "--rate", "64", NULL);
  pid_t w = h_worker_pid(h, 0, 5000);
  assert_true(w > 0);
  assert_int_equal(unlink(copy), 0);
  assert_int_equal(h_wait(h, 20000), 127);
  assert_true(h_stderr_contains(h, "spawn"));
  cJSON* rs = h_events(h, "restart");
  assert_int_equal(cJSON_GetArraySize(rs), 1);
  cJSON* r = cJSON_GetArrayItem(rs, 0);
  check_common(r);
  assert_true(h_num(r, "old_pid") == w);
  assert_true(h_num(r, "new_pid") == 0);
  assert_true(h_num(r, "pid") == w); /* no new worker: the old one */
  assert_true(cJSON_IsNull(h_get(r, "after")));
  assert_true(cJSON_IsNull(h_get(r, "helped")));
  assert_true(cJSON_IsObject(h_get(r, "evidence")));
  cJSON_Delete(rs);
  assert_int_equal(h_count(h, "start"), 1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, h_setup, h_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(leak_is_restarted_and_each_restart_is_logged),
      T(mapped_file_over_limit_is_not_restarted),
      T(lazyfree_over_limit_is_not_restarted),
      T(crash_loop_gives_up_with_last_exit_code),
      T(segfault_loop_reports_signal_and_exits_139),
      T(clean_exit_ends_memsup_with_zero),
      T(restart_always_restarts_clean_exits),
      T(hup_usr1_usr2_quit_are_forwarded),
      T(sigterm_kills_worker_ignoring_it_after_grace),
      T(sigterm_stops_worker_and_exits_143),
      T(sigint_stops_worker_and_exits_130),
      T(restart_kills_workers_grandchildren),
      T(tree_counts_leaking_child),
      T(without_tree_leaking_child_is_ignored),
      T(short_spike_under_for_is_tolerated),
      T(spike_without_for_is_restarted),
      T(unknown_flag_is_rejected),
      T(missing_separator_is_rejected),
      T(limit_with_bad_unit_is_rejected),
      T(negative_limit_is_rejected),
      T(zero_limit_is_rejected),
      T(overflowing_limit_is_rejected),
      T(zero_interval_is_rejected),
      T(percent_limit_without_cgroup_limit_is_rejected),
      T(unwritable_log_is_rejected),
      T(unwritable_sample_log_is_rejected),
      T(state_dir_that_is_a_file_is_rejected),
      T(zero_sample_every_is_rejected),
      T(garbage_pid_is_rejected),
      T(pid_with_a_command_is_rejected),
      T(missing_command_exits_127),
      T(non_executable_command_exits_126),
      T(subreaper_reaps_orphans),
      T(restart_whose_spawn_fails_is_logged_without_a_new_worker),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
