/* it_footprint.c: what the default metric (footprint) counts, end to end:
 * the real memsup on real workers that hold file pages (dirty ones too) or
 * shared memory.  File pages belong to the file, and the kernel writes
 * them back and drops them: no restart however many there are.  Shared
 * memory (a memfd, /dev/shm) only swap could take away: a leak there is
 * restarted.  docs/memory.md has the definition and the measurements.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define MIB (1024ull * 1024ull)
#define BLOAT h_example("bloat")
#define LIMIT (64 * MIB)

/* A field of /proc/pid/smaps_rollup in bytes, 0 when unreadable. */
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

static int running(h_run_t* h) {
  return h->pid > 0 && waitpid(h->pid, NULL, WNOHANG) == 0;
}

/* Sample-log lines of a full read where Private_Dirty and the file pages
 * were both over the limit: memsup saw what the old definition would have
 * restarted for.  Footprint must be under the limit on every line over in
 * Private_Dirty.  (file comes from status, read just before the rollup:
 * while the worker faults its file in, one line may have the two apart.) */
static int full_samples_over_in_private_dirty(h_run_t* h) {
  cJSON* lines = h_events_in(h_path(h, "samples.jsonl"), "sample");
  int n = 0;
  for (int i = 0; i < cJSON_GetArraySize(lines); i++) {
    cJSON* l = cJSON_GetArrayItem(lines, i);
    assert_true(cJSON_IsNumber(h_get(l, "file")));
    if (!cJSON_IsTrue(h_get(l, "full"))) {
      assert_true(cJSON_IsNull(h_get(l, "private_dirty")));
      continue;
    }
    if (h_num(l, "private_dirty") <= (double)LIMIT) continue;
    assert_true(h_num(l, "footprint") < (double)LIMIT);
    if (h_num(l, "file") > (double)LIMIT) n++;
  }
  cJSON_Delete(lines);
  return n;
}

/* The worker holds dirty file pages over the limit in RSS and in
 * Private_Dirty for the whole test (writeback takes ~30 s here): no
 * restart, and the sample log shows the difference. */
static void file_pages_over_limit_are_not_restarted(h_run_t* h,
                                                    const char* mode) {
  h_start(h, "--limit", "64M", "--log", h->log, "--sample-log",
          h_path(h, "samples.jsonl"), "--sample-every", "50ms", "--",
          BLOAT, "--mode", mode, "--size", "160", "--rate", "400", NULL);
  pid_t w = h_worker_pid(h, 0, h_ms(5000));
  assert_true(w > 0);
  uint64_t rss = 0, dirty = 0;
  for (int t = 0; t < 4000; t += 50, h_sleep_ms(50)) {
    uint64_t r = h_proc_bytes(w, "VmRSS"), d = rollup_bytes(w, "Private_Dirty");
    rss = r > rss ? r : rss;
    dirty = d > dirty ? d : dirty;
  }
  assert_int_equal(h_count(h, "restart"), 0);
  assert_int_equal(h_worker_pid(h, 1, 0), -1); /* still the first worker */
  assert_true(running(h));
  assert_true(rss > LIMIT);
  /* Writeback forced early (a small dirty_background_bytes) would leave
   * nothing dirty to test. */
  if (dirty <= LIMIT) {
    print_message("    Private_Dirty peaked at %llu MiB: written back early\n",
                  (unsigned long long)(dirty / MIB));
    skip();
  }
  assert_true(full_samples_over_in_private_dirty(h) >= 1);
}

static void written_then_mapped_file_is_not_restarted(void** state) {
  file_pages_over_limit_are_not_restarted(*state, "writemap");
}

static void writes_through_shared_file_mapping_are_not_restarted(
    void** state) {
  file_pages_over_limit_are_not_restarted(*state, "sharedwrite");
}

/* A leak into shared memory: Anonymous stays small, and the restart line
 * says where the memory was. */
static void shared_memory_leak_is_restarted(h_run_t* h, const char* mode) {
  h_start(h, "--limit", "64M", "--log", h->log, "--", BLOAT, "--mode", mode,
          "--rate", "64", "--max", "512", NULL);
  assert_true(h_wait_event(h, "restart", 1, h_ms(15000)) >= 1);
  cJSON* rs = h_events(h, "restart");
  cJSON* r = cJSON_GetArrayItem(rs, 0);
  cJSON* before = h_get(r, "before");
  assert_string_equal(h_str(r, "metric"), "footprint");
  assert_true(h_num(before, "footprint") >= (double)LIMIT);
  assert_true(h_num(before, "shmem") >= 0.9 * (double)LIMIT);
  assert_true(cJSON_IsNumber(h_get(before, "private_dirty")));
  assert_true(cJSON_IsNumber(h_get(before, "file")));
  cJSON* maps = h_get(h_get(r, "evidence"), "mappings");
  assert_true(cJSON_GetArraySize(maps) >= 1);
  assert_string_equal(h_str(cJSON_GetArrayItem(maps, 0), "class"), "shmem");
  cJSON_Delete(rs);
}

static void memfd_leak_is_restarted(void** state) {
  shared_memory_leak_is_restarted(*state, "memfd");
}

static void dev_shm_leak_is_restarted(void** state) {
  shared_memory_leak_is_restarted(*state, "devshm");
}

/* --metric rss counts the same file pages: restarted, and the evidence
 * ranks the mappings by RSS, so the file leads. */
static void rss_metric_restarts_file_pages_and_ranks_by_rss(void** state) {
  h_run_t* h = *state;
  h_start(h, "--metric", "rss", "--limit", "64M", "--log", h->log, "--",
          BLOAT, "--mode", "writemap", "--size", "160", NULL);
  assert_true(h_wait_event(h, "restart", 1, h_ms(15000)) >= 1);
  cJSON* rs = h_events(h, "restart");
  cJSON* r = cJSON_GetArrayItem(rs, 0);
  assert_string_equal(h_str(r, "metric"), "rss");
  assert_true(h_num(h_get(r, "before"), "footprint") < (double)LIMIT);
  cJSON* ev = h_get(r, "evidence");
  assert_string_equal(h_str(ev, "ranked_by"), "rss");
  cJSON* m0 = cJSON_GetArrayItem(h_get(ev, "mappings"), 0);
  assert_string_equal(h_str(m0, "class"), "file");
  assert_true(h_num(m0, "rss") >= 0.9 * (double)LIMIT);
  assert_true(h_num(m0, "footprint") < (double)MIB);
  cJSON_Delete(rs);
}

/* With --tree the evidence names the process that holds the memory and
 * lists its mappings, not the idle leader's. */
static void tree_evidence_splits_by_process(void** state) {
  h_run_t* h = *state;
  h_start(h, "--tree", "--limit", "48M", "--log", h->log, "--", BLOAT,
          "--tree-leak", "--rate", "64", NULL);
  assert_true(h_wait_event(h, "restart", 1, h_ms(15000)) >= 1);
  cJSON* rs = h_events(h, "restart");
  cJSON* r = cJSON_GetArrayItem(rs, 0);
  cJSON* ev = h_get(r, "evidence");
  cJSON* procs = h_get(ev, "processes");
  assert_true(h_num(ev, "nprocs") >= 2);
  assert_true(cJSON_GetArraySize(procs) >= 2);
  cJSON* p0 = cJSON_GetArrayItem(procs, 0);
  assert_string_equal(h_str(p0, "command"), "bloat");
  assert_true(h_num(p0, "pid") != h_num(r, "old_pid")); /* the leaking child */
  assert_true(h_num(p0, "footprint") >= 0.75 * 48 * MIB);
  assert_true(h_num(cJSON_GetArrayItem(procs, 1), "footprint") < 8.0 * MIB);
  assert_true(h_num(ev, "mappings_pid") == h_num(p0, "pid"));
  cJSON* m0 = cJSON_GetArrayItem(h_get(ev, "mappings"), 0);
  assert_true(h_num(m0, "footprint") >= 0.5 * 48 * MIB);
  cJSON_Delete(rs);
  /* --tree already counts the descendants: no hint. */
  assert_int_equal(h_count(h, "descendants"), 0);
}

/* A shell wrapper that did not exec (the ";" keeps sh from exec'ing): sh
 * holds ~100 KiB, its child the memory.  Without --tree memsup cannot see
 * it, and says so once, on stderr and in the log. */
static void wrapper_holding_little_gets_a_tree_hint(void** state) {
  h_run_t* h = *state;
  char cmd[512];
  snprintf(cmd, sizeof(cmd), "%s --mode leak --rate 32 --max 64; exit $?",
           BLOAT);
  h_start(h, "--limit", "256M", "--log", h->log, "--", "/bin/sh", "-c", cmd,
          NULL);
  assert_int_equal(h_wait_event(h, "descendants", 1, h_ms(15000)), 1);
  cJSON* ds = h_events(h, "descendants");
  cJSON* d = cJSON_GetArrayItem(ds, 0);
  assert_string_equal(h_str(d, "hint"), "--tree");
  assert_string_equal(h_str(d, "top_command"), "bloat");
  assert_true(h_num(d, "descendants") >= 1);
  assert_true(h_num(d, "descendants_footprint") >= 32.0 * MIB);
  assert_true(h_num(d, "footprint") < 8.0 * MIB);
  cJSON_Delete(ds);
  assert_true(h_stderr_contains(h, "use --tree"));
  /* Once: the next scans (every 5 s) say nothing more. */
  h_sleep_ms(h_ms(6000));
  assert_int_equal(h_count(h, "descendants"), 1);
  assert_int_equal(h_count(h, "restart"), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, h_setup, h_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(written_then_mapped_file_is_not_restarted),
      T(writes_through_shared_file_mapping_are_not_restarted),
      T(memfd_leak_is_restarted),
      T(dev_shm_leak_is_restarted),
      T(rss_metric_restarts_file_pages_and_ranks_by_rss),
      T(tree_evidence_splits_by_process),
      T(wrapper_holding_little_gets_a_tree_hint),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
