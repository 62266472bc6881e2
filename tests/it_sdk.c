/* it_sdk.c: the child SDK and the state handoff end to end: the real
 * memsup binary supervising the SDK examples (kvcache, retain, badpeer).
 * Checked through what a user sees: the JSON-lines log, stderr, the
 * workers' stdout and the files they and memsup leave behind.  Timings
 * only bound waiting; no test asserts how long something took.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB (1024.0 * 1024.0)
#define KV h_example("kvcache")


/* The k-th (0-based) line of event, waiting for it; the caller deletes it. */
static cJSON* event_at(h_run_t* h, const char* event, int k, int timeout_ms) {
  if (h_wait_event(h, event, k + 1, timeout_ms) < k + 1)
    fail_msg("no \"%s\" line #%d", event, k);
  cJSON* all = h_events(h, event);
  cJSON* e = cJSON_DetachItemFromArray(all, k);
  cJSON_Delete(all);
  return e;
}

static int running(h_run_t* h) {
  return h->pid > 0 && waitpid(h->pid, NULL, WNOHANG) == 0;
}

static int wait_file(const char* path, int ms) {
  struct stat sb;
  for (int t = 0; t < h_ms(ms); t += 20, h_sleep_ms(20))
    if (lstat(path, &sb) == 0) return 1;
  return 0;
}

static int wait_out_contains(h_run_t* h, const char* needle, int ms) {
  for (int t = 0; t < h_ms(ms); t += 20, h_sleep_ms(20)) {
    char* s = h_read_file(h->out);
    int found = s && strstr(s, needle);
    free(s);
    if (found) return 1;
  }
  return 0;
}

/* The request count that worker pid says it restored, waiting for the
 * line; fails the test when it does not come. */
static long long restored_requests(h_run_t* h, pid_t pid) {
  char needle[96];
  snprintf(needle, sizeof(needle),
           "kvcache[pid %d]: restored state: requests=", (int)pid);
  if (!wait_out_contains(h, needle, 5000))
    fail_msg("worker %d did not say \"%s\"", (int)pid, needle);
  char* out = h_read_file(h->out);
  long long n = strtoll(strstr(out, needle) + strlen(needle), NULL, 10);
  free(out);
  return n;
}

static int gone(pid_t pid) {
  char st = h_proc_state(pid);
  return st == 0 || st == 'Z';
}

/* The number after "\nkey " in kvcache's state text, or -1. */
static long long text_field(const char* text, const char* key) {
  char k[32];
  snprintf(k, sizeof(k), "\n%s ", key);
  const char* p = text ? strstr(text, k) : NULL;
  return p ? strtoll(p + strlen(k), NULL, 10) : -1;
}

static int count_lines_with(const char* text, const char* needle) {
  int n = 0;
  for (const char* p = text; p && (p = strstr(p, needle)); p++) n++;
  return n;
}

/* The next memsup run of the same test writes fresh stdout/stderr/log
 * files, so "its first start line" means that run's. */
static void next_run(h_run_t* h) {
  static int run;
  run++;
  snprintf(h->out, sizeof(h->out), "%s/stdout.%d", h->dir, run);
  snprintf(h->err, sizeof(h->err), "%s/stderr.%d", h->dir, run);
  snprintf(h->log, sizeof(h->log), "%s/log.%d.jsonl", h->dir, run);
}

/* Ends a run the way a user would; memsup must exit with the worker's
 * status and, when built with sanitizers, without a report from them. */
static void stop_with_sigterm(h_run_t* h) {
  h_signal(h, SIGTERM);
  assert_int_equal(h_wait(h, 15000), 128 + SIGTERM);
  assert_false(h_stderr_contains(h, "Sanitizer"));
  assert_false(h_stderr_contains(h, "runtime error:"));
}

/* TEST 1: a memory restart hands the worker's state to the next worker
 * unchanged, again and again.  kvcache writes what it saved to FILE.saved
 * and what it restored to FILE; its "gen" line names the worker that saved,
 * so a FILE and a FILE.saved with the same gen are one handoff and must be
 * the same bytes.  The request counter carries on across generations. */
static void state_survives_memory_restarts_byte_for_byte(void** state) {
  h_run_t* h = *state;
  char dump[400], saved[400];
  snprintf(dump, sizeof(dump), "%s/kv", h->dir);
  snprintf(saved, sizeof(saved), "%s/kv.saved", h->dir);
  h_start(h, "--limit", "40M", "--log", h->log, "--", KV, "--leak-mib-per-s",
          "64", "--state-mib", "1", "--dump", dump, NULL);
  assert_true(h_wait_event(h, "restart", 3, 20000) >= 3);

  /* FILE first: once it holds gen G, FILE.saved holds gen G only if it is
   * the save that FILE was restored from (the next worker saves G+1). */
  char *restored = NULL, *kept = NULL;
  long long gen = -1;
  for (int t = 0; t < h_ms(10000); t += 20, h_sleep_ms(20)) {
    free(restored);
    free(kept);
    restored = h_read_file(dump);
    kept = h_read_file(saved);
    gen = text_field(restored, "gen");
    if (gen >= 3 && gen == text_field(kept, "gen")) break;
  }
  if (gen < 3 || gen != text_field(kept, "gen"))
    fail_msg("no restore of generation >= 3 matched a save:\n%s\n---\n%s",
             restored ? restored : "(none)", kept ? kept : "(none)");
  assert_string_equal(restored, kept);

  cJSON* rs = h_events(h, "restart");
  int matched = 0;
  for (int i = 0; i < cJSON_GetArraySize(rs); i++) {
    cJSON* r = cJSON_GetArrayItem(rs, i);
    cJSON* st = h_get(r, "state");
    assert_true(cJSON_IsObject(st));
    assert_string_equal(h_str(st, "outcome"), "restored");
    assert_string_equal(h_str(st, "handed"), "save");
    assert_string_equal(h_str(st, "restore"), "restored");
    if (h_num(r, "gen") == gen + 1) { /* the handoff compared above */
      matched = 1;
      assert_true(h_num(st, "bytes") == strlen(kept) + MIB); /* text + padding */
    }
  }
  cJSON_Delete(rs);
  assert_true(matched);
  free(restored);
  free(kept);

  /* Every generation resumes the count where the previous one saved it. */
  char* out = h_read_file(h->out);
  long long last = -1, last_restored = -1;
  int restores = 0;
  for (const char* p = out; p && (p = strstr(p, "requests=")); p++) {
    long long v = strtoll(p + strlen("requests="), NULL, 10);
    assert_true(v >= last);
    last = v;
    if (p - out >= 16 && strncmp(p - 16, "restored state: ", 16) == 0) {
      assert_true(v > last_restored);
      last_restored = v;
      restores++;
    }
  }
  assert_true(restores >= 3);
  assert_true(count_lines_with(out, "state verified (1 MiB padding)") >= 3);
  free(out);
  stop_with_sigterm(h);
}

/* TEST 2a: --metric heap acts on the heap-in-use the SDK reports. */
static void heap_metric_restarts_on_heap_growth(void** state) {
  h_run_t* h = *state;
  h_start(h, "--metric", "heap", "--limit", "32M", "--log", h->log, "--", KV,
          "--leak-mib-per-s", "64", NULL);
  assert_true(h_wait_event(h, "restart", 2, 15000) >= 2);
  cJSON* rs = h_events(h, "restart");
  for (int i = 0; i < cJSON_GetArraySize(rs); i++) {
    cJSON* r = cJSON_GetArrayItem(rs, i);
    assert_string_equal(h_str(r, "metric"), "heap");
    assert_true(h_num(h_get(r, "before"), "heap") >= 32 * MIB);
    assert_true(h_num(r, "value") == h_num(h_get(r, "before"), "heap"));
    assert_string_equal(h_str(h_get(r, "state"), "outcome"), "restored");
  }
  cJSON_Delete(rs);
  stop_with_sigterm(h);
}

/* TEST 2b: a worker without the SDK under --metric heap is not left
 * unmeasured: after the handshake timeout memsup warns and falls back to
 * the footprint. */
static void heap_metric_without_sdk_falls_back_to_footprint(void** state) {
  h_run_t* h = *state;
  h_start(h, "--metric", "heap", "--handshake-timeout", "300ms", "--limit",
          "40M", "--log", h->log, "--", h_example("bloat"), "--mode", "leak",
          "--rate", "64", NULL);
  cJSON* r = event_at(h, "restart", 0, 15000);
  assert_true(h_stderr_contains(h, "did not complete the SDK handshake"));
  assert_true(cJSON_IsNull(h_get(h_get(r, "before"), "heap")));
  assert_true(h_num(r, "value") == h_num(h_get(r, "before"), "footprint"));
  assert_true(h_num(r, "value") >= 40 * MIB);
  assert_true(cJSON_IsNull(h_get(r, "state")));
  cJSON_Delete(r);
  stop_with_sigterm(h);
}

/* TEST 3: memory the allocator retains is given back by a purge at the
 * soft limit, and the worker is not restarted for it. */
static void soft_limit_purge_frees_retained_memory_without_restart(
    void** state) {
  h_run_t* h = *state;
  h_start(h, "--soft-limit", "32M", "--limit", "512M", "--log", h->log, "--",
          h_example("retain"), NULL);
  /* A purge that lands while retain's churn still holds its blocks frees
   * little or nothing; the next one comes 10 s later and must free. */
  cJSON* p = NULL;
  for (int k = 0; !p && k < 3; k++) {
    p = event_at(h, "purge", k, 15000);
    if (h_num(p, "freed") == 0) {
      cJSON_Delete(p);
      p = NULL;
    }
  }
  if (p == NULL) fail_msg("three purges freed nothing");
  double before = h_num(h_get(p, "before"), "footprint");
  double after = h_num(h_get(p, "after"), "footprint");
  assert_true(h_num(p, "soft_limit") == 32 * MIB);
  assert_true(before >= 32 * MIB);
  assert_true(h_num(p, "freed") > 0);
  assert_true(after < before);
  assert_true(h_num(p, "freed") == before - after);
  assert_true(h_num(p, "resident_after") < h_num(p, "resident_before"));
  cJSON_Delete(p);
  h_sleep_ms(2000); /* the test window: still no restart after the purge */
  assert_int_equal(h_count(h, "restart"), 0);
  assert_int_equal(h_count(h, "start"), 1);
  assert_true(running(h));
  stop_with_sigterm(h);
}

/* TEST 4: a worker that breaks the protocol cannot stop memsup from
 * supervising it.  badpeer misbehaves as --mode says and leaks; memsup
 * must still restart it on the limit, say what went wrong on stderr a
 * bounded number of times (5 lines and one "suppressed" per worker at
 * most), log the documented state outcome, and stop cleanly on SIGTERM.
 * outcome NULL means the worker counts as one without the SDK. */
typedef struct {
  const char* mode;
  const char* opt[2]; /* extra memsup option and value */
  const char* bytes;  /* badpeer --bytes */
  int restarts;
  const char* outcome;
  const char* needle; /* in memsup's stderr */
} bad_case_t;

static void bad_peer(h_run_t* h, const bad_case_t* c) {
  const char* argv[32];
  int n = 0;
  argv[n++] = "--limit";
  argv[n++] = "40M";
  if (c->opt[0]) {
    argv[n++] = c->opt[0];
    argv[n++] = c->opt[1];
  }
  argv[n++] = "--log";
  argv[n++] = h->log;
  argv[n++] = "--";
  argv[n++] = h_example("badpeer");
  argv[n++] = "--mode";
  argv[n++] = c->mode;
  /* 8 MiB/s: 40M fills in ~5 s, past the 4 s a restart is judged over, so
   * each restart helps and the next is not held off (a faster leak is
   * held, then restarted far over the limit: the save ceiling's case). */
  argv[n++] = "--leak-mib-per-s";
  argv[n++] = "8";
  if (c->bytes) {
    argv[n++] = "--bytes";
    argv[n++] = c->bytes;
  }
  argv[n] = NULL;
  h_startv(h, argv);
  /* A flood is read at ~5,000 frames/s and badpeer leaks only after its
   * 50,000 frames, hence the longer wait. */
  assert_true(h_wait_event(h, "restart", c->restarts, 40000) >= c->restarts);

  cJSON* rs = h_events(h, "restart");
  for (int i = 0; i < cJSON_GetArraySize(rs); i++) {
    cJSON* r = cJSON_GetArrayItem(rs, i);
    cJSON* st = h_get(r, "state");
    assert_string_equal(h_str(r, "reason"), "limit");
    assert_true(h_num(h_get(r, "before"), "footprint") >= 40 * MIB);
    if (c->outcome == NULL) {
      assert_true(cJSON_IsNull(st));
      continue;
    }
    assert_true(cJSON_IsObject(st));
    const char* got = h_str(st, "outcome");
    if (got == NULL || strcmp(got, c->outcome) != 0) {
      char* err = h_read_file(h->err);
      print_error("--- memsup stderr:\n%s\n", err ? err : "(none)");
      free(err);
      fail_msg("restart #%d: state.outcome \"%s\", expected \"%s\"", i + 1,
               got ? got : "null", c->outcome);
    }
    /* badpeer never produced a good state otherwise: nothing to hand. */
    if (strcmp(c->outcome, "restored") == 0)
      assert_string_equal(h_str(st, "handed"), "save");
    else
      assert_null(h_str(st, "handed"));
  }
  cJSON_Delete(rs);

  char* err = h_read_file(h->err);
  int lines = count_lines_with(err, c->needle);
  int workers = h_count(h, "start");
  if (lines < 1 || lines > 6 * workers)
    fail_msg("%d stderr lines with \"%s\" for %d workers:\n%s", lines,
             c->needle, workers, err ? err : "(none)");
  assert_true(strncmp(err, "memsup: ", 8) == 0);
  free(err);
  stop_with_sigterm(h);
}

#define BAD(name, ...)                         \
  static void name(void** state) {             \
    static const bad_case_t c = {__VA_ARGS__}; \
    bad_peer(*state, &c);                      \
  }

BAD(garbage_bytes_are_skipped_and_worker_still_supervised, "garbage", {0}, NULL,
    2, "restored", "garbage on worker channel")
BAD(bad_json_is_dropped_and_worker_still_supervised, "badjson", {0}, NULL, 2,
    "restored", "bad message from worker")
BAD(oversized_frame_is_skipped_and_worker_still_supervised, "toobig", {0}, NULL,
    2, "restored", "frame of 1048576 bytes")
BAD(unknown_message_is_ignored_and_worker_still_supervised, "unknown", {0},
    NULL, 2, "restored", "unknown message type")
BAD(stats_flood_is_throttled_and_worker_still_supervised, "flood", {0}, NULL, 1,
    "restored", "stats flood")
BAD(wrong_protocol_version_is_supervised_without_sdk, "badversion", {0}, NULL,
    2, NULL, "speaks protocol version 99")
BAD(state_over_max_state_is_too_big, "bigstate", {"--max-state", "1M"},
    "4194304", 2, "too-big", "over --max-state")
BAD(state_with_bad_crc_is_corrupt, "badcrc", {0}, NULL, 2, "corrupt",
    "rejected")
BAD(unsealed_state_is_corrupt, "unsealed", {0}, NULL, 2, "corrupt", "rejected")
BAD(ignored_save_times_out, "ignoresave", {"--grace", "500ms"}, NULL, 2,
    "save-timeout", "did not save its state")
/* A worker that exits mid-save has no channel left to complain about: the
 * restart line on stderr names the outcome. */
BAD(worker_dying_mid_save_is_save_failed, "diesave", {0}, NULL, 2,
    "save-failed", "state save-failed")
BAD(closed_channel_is_supervised_without_sdk, "closechan", {0}, NULL, 2, NULL,
    "closed the memsup channel")

/* TEST 5: a worker that crashes outright cannot save, but its last
 * checkpoint (kvcache sends one every 2 s) is handed to its successor. */
static void crash_restart_resumes_from_checkpoint(void** state) {
  h_run_t* h = *state;
  char dir[400], file[420];
  snprintf(dir, sizeof(dir), "%s/state-dir", h->dir);
  snprintf(file, sizeof(file), "%s/state", dir);
  h_start(h, "--state-dir", dir, "--log", h->log, "--", KV, "--leak-mib-per-s",
          "0", NULL);
  cJSON* s0 = event_at(h, "start", 0, 5000);
  pid_t w = (pid_t)h_num(s0, "pid");
  assert_null(h_str(s0, "state"));
  cJSON_Delete(s0);
  /* memsup stores a state only after it has checked and kept it. */
  if (!wait_file(file, 10000)) fail_msg("no checkpoint reached %s", file);
  assert_int_equal(kill(w, SIGSEGV), 0);

  cJSON* c = event_at(h, "crash", 0, 10000);
  assert_true(h_num(c, "pid") == w);
  assert_string_equal(h_str(c, "signal"), "SIGSEGV");
  cJSON_Delete(c);
  cJSON* s1 = event_at(h, "start", 1, 10000);
  assert_string_equal(h_str(s1, "state"), "checkpoint");
  assert_true(restored_requests(h, (pid_t)h_num(s1, "pid")) > 0);
  cJSON_Delete(s1);
  stop_with_sigterm(h);
}

/* Runs kvcache under memsup with --state-dir dir until dir/state exists;
 * leak > 0 gets there by a memory restart's save, 0 by a checkpoint.
 * Returns the pid of the first worker. */
static pid_t store_state(h_run_t* h, const char* dir, const char* leak) {
  char file[420];
  snprintf(file, sizeof(file), "%s/state", dir);
  h_start(h, "--limit", "40M", "--state-dir", dir, "--log", h->log, "--", KV,
          "--leak-mib-per-s", leak, NULL);
  cJSON* s0 = event_at(h, "start", 0, 5000);
  pid_t w = (pid_t)h_num(s0, "pid");
  cJSON_Delete(s0);
  if (!wait_file(file, 10000)) fail_msg("no state reached %s", file);
  return w;
}

/* TEST 6: memsup itself killed with SIGKILL loses nothing it had stored:
 * a new memsup on the same --state-dir hands that state to its first
 * worker. */
static void state_dir_survives_memsup_sigkill(void** state) {
  h_run_t* h = *state;
  char dir[400];
  snprintf(dir, sizeof(dir), "%s/state-dir", h->dir);
  pid_t w = store_state(h, dir, "0");
  /* The worker is in its own session: memsup's death does not end it. */
  h_signal(h, SIGKILL);
  kill(-w, SIGKILL);
  assert_int_equal(h_wait(h, 5000), 128 + SIGKILL);
  for (int t = 0; t < h_ms(5000) && !gone(w); t += 20) h_sleep_ms(20);
  assert_true(gone(w));

  next_run(h);
  h_start(h, "--state-dir", dir, "--log", h->log, "--", KV, "--leak-mib-per-s",
          "0", NULL);
  cJSON* s0 = event_at(h, "start", 0, 5000);
  assert_string_equal(h_str(s0, "state"), "disk");
  assert_true(restored_requests(h, (pid_t)h_num(s0, "pid")) > 0);
  cJSON_Delete(s0);
  assert_true(h_stderr_contains(h, "state from "));
  stop_with_sigterm(h);
}

/* TEST 7: a state file memsup cannot trust (bytes changed on disk, or a
 * symlink someone planted) is refused with a warning; the worker starts
 * fresh and is supervised as usual, and its own save then replaces it. */
static void bad_state_file_is_refused(h_run_t* h, int symlinked,
                                      const char* why) {
  char dir[400], file[420], real[420];
  snprintf(dir, sizeof(dir), "%s/state-dir", h->dir);
  snprintf(file, sizeof(file), "%s/state", dir);
  snprintf(real, sizeof(real), "%s/real", dir);
  store_state(h, dir, "64");
  stop_with_sigterm(h);
  if (symlinked) {
    assert_int_equal(rename(file, real), 0);
    assert_int_equal(symlink("real", file), 0);
  } else {
    /* The last byte is state payload: only its CRC can tell. */
    int fd = open(file, O_RDWR | O_CLOEXEC);
    off_t end = lseek(fd, 0, SEEK_END);
    unsigned char b;
    assert_true(fd >= 0 && end > 0);
    assert_int_equal(pread(fd, &b, 1, end - 1), 1);
    b ^= 0x5a;
    assert_int_equal(pwrite(fd, &b, 1, end - 1), 1);
    close(fd);
  }

  next_run(h);
  h_start(h, "--limit", "40M", "--state-dir", dir, "--log", h->log, "--", KV,
          "--leak-mib-per-s", "64", NULL);
  cJSON* s0 = event_at(h, "start", 0, 5000);
  assert_null(h_str(s0, "state"));
  cJSON_Delete(s0);
  assert_true(wait_out_contains(h, "no saved state, starting fresh", 5000));
  assert_true(h_stderr_contains(h, "not used"));
  assert_true(h_stderr_contains(h, why));
  cJSON* r = event_at(h, "restart", 0, 15000);
  assert_string_equal(h_str(h_get(r, "state"), "outcome"), "restored");
  cJSON_Delete(r);
  stop_with_sigterm(h);
  if (symlinked) { /* the new save replaced the link, not its target */
    struct stat sb;
    assert_int_equal(lstat(file, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
  }
}

static void corrupt_state_file_is_refused(void** state) {
  bad_state_file_is_refused(*state, 0, strerror(EBADMSG));
}

static void symlinked_state_file_is_refused(void** state) {
  bad_state_file_is_refused(*state, 1, strerror(ELOOP));
}

#define T(f) cmocka_unit_test_setup_teardown(f, h_setup, h_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(state_survives_memory_restarts_byte_for_byte),
      T(heap_metric_restarts_on_heap_growth),
      T(heap_metric_without_sdk_falls_back_to_footprint),
      T(soft_limit_purge_frees_retained_memory_without_restart),
      T(garbage_bytes_are_skipped_and_worker_still_supervised),
      T(bad_json_is_dropped_and_worker_still_supervised),
      T(oversized_frame_is_skipped_and_worker_still_supervised),
      T(unknown_message_is_ignored_and_worker_still_supervised),
      T(stats_flood_is_throttled_and_worker_still_supervised),
      T(wrong_protocol_version_is_supervised_without_sdk),
      T(state_over_max_state_is_too_big),
      T(state_with_bad_crc_is_corrupt),
      T(unsealed_state_is_corrupt),
      T(ignored_save_times_out),
      T(worker_dying_mid_save_is_save_failed),
      T(closed_channel_is_supervised_without_sdk),
      T(crash_restart_resumes_from_checkpoint),
      T(state_dir_survives_memsup_sigkill),
      T(corrupt_state_file_is_refused),
      T(symlinked_state_file_is_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
