/* it_pool.c: memsup --workers N, seen from outside.  A pool of leaking
 * kvcache workers restarted for memory one slot at a time, each slot
 * handed its own state back (from the restart log and the workers' own
 * lines); a worker killed in one slot while the others run on untouched;
 * SIGTERM stopping every slot; each worker seeing its slot number and the
 * same listening socket.
 */
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KV h_example("kvcache")
#define BLOAT h_example("bloat")

/* The pid of slot k's worker of generation gen from the "start" lines, 0
 * when not logged (yet). */
static pid_t started(h_run_t* h, int slot, int gen) {
  cJSON* starts = h_events(h, "start");
  pid_t pid = 0;
  cJSON* e;
  cJSON_ArrayForEach(e, starts) {
    if ((int)h_num(e, "slot") == slot && (int)h_num(e, "gen") == gen)
      pid = (pid_t)h_num(e, "pid");
  }
  cJSON_Delete(starts);
  return pid;
}

static int alive(pid_t pid) { return kill(pid, 0) == 0 || errno != ESRCH; }

/* Four workers started together, leaking alike (8 MiB/s under 48M: a life
 * of ~5 s), all cross within a tick or two of each other.  From the
 * restart log: no two memory restarts overlap between their decision and
 * their new worker's "ready" (decided_unix_s + downtime_ms), unless one
 * went at the save ceiling (the documented exception); every slot was
 * restarted, and each was handed a state.  From the workers: every
 * restored state was the slot's own. */
static void pool_restarts_one_slot_at_a_time_and_slots_keep_state(void** state) {
  h_run_t* h = *state;
  h_start(h, "--workers", "4", "--limit", "48M", "--state-dir",
          h_path(h, "st"), "--log", h->log, "--", KV, "--leak-mib-per-s", "8",
          NULL);
  int n = h_wait_event(h, "restart", 10, h_ms(60000));
  h_signal(h, SIGTERM);
  assert_int_equal(h_wait(h, h_ms(20000)), 143);
  assert_true(n >= 10);

  cJSON* rs = h_events(h, "restart");
  int m = cJSON_GetArraySize(rs);
  double from[64], to[64];
  int slot_of[64], per_slot[4] = {0}, waits = 0, ceilings = 0, k = 0;
  cJSON* e;
  cJSON_ArrayForEach(e, rs) {
    if (k == 64) break;
    const char* reason = h_str(e, "reason");
    assert_true(strcmp(reason, "limit") == 0 || strcmp(reason, "early") == 0);
    int slot = (int)h_num(e, "slot");
    assert_true(slot >= 0 && slot < 4);
    per_slot[slot]++;
    if (cJSON_GetObjectItem(e, "waited_s")) waits++;
    cJSON* ceiling = cJSON_GetObjectItem(e, "ceiling");
    cJSON* down = h_get(e, "downtime_ms");
    if (cJSON_IsNull(down)) {
      /* only a restart cut short by the stop has no "ready" */
      assert_true(cJSON_IsNull(h_get(e, "after")));
      continue;
    }
    assert_string_equal(h_str(h_get(e, "state"), "outcome"), "restored");
    if (cJSON_IsTrue(ceiling)) {
      ceilings++;
      continue;
    }
    slot_of[k] = slot;
    from[k] = h_num(e, "decided_unix_s");
    to[k] = from[k] + down->valuedouble / 1000.0;
    k++;
  }
  /* Pairwise: intervals of different restarts do not overlap (2 ms of
   * rounding between the wall-clock decision and the monotonic downtime). */
  for (int i = 0; i < k; i++)
    for (int j = 0; j < k; j++) {
      if (i == j) continue;
      if (from[i] < to[j] - 0.002 && from[j] < to[i] - 0.002)
        fail_msg("slots %d and %d were down for memory at once: [%.3f, %.3f] "
                 "and [%.3f, %.3f]",
                 slot_of[i], slot_of[j], from[i], to[i], from[j], to[j]);
    }
  /* Restarts take milliseconds here: a slot waits far less than the 8 s
   * it would take to grow to the ceiling (48M + 64M at 8 MiB/s). */
  if (ceilings * 4 > m) fail_msg("%d of %d restarts went at the ceiling", ceilings, m);
  for (int s = 0; s < 4; s++)
    if (per_slot[s] == 0) fail_msg("slot %d was never restarted (%d restarts)", s, m);
  print_message("%d restarts, %d after a wait, %d with a measured downtime\n", m,
                waits, k);
  cJSON_Delete(rs);

  /* memsup report reads the same from the log: per slot, never two down. */
  assert_int_equal(h_tool(h, "report", h_ms(15000), "report", "--json", h->log,
                          NULL),
                   0);
  char* rep = h_read_file(h_path(h, "report.out"));
  cJSON* j = cJSON_Parse(rep);
  if (!cJSON_IsObject(j)) fail_msg("report --json printed: %s", rep);
  free(rep);
  cJSON* pool = h_get(j, "pool");
  assert_int_equal((int)h_num(pool, "slots"), 4);
  assert_int_equal((int)h_num(pool, "restarts"), m);
  assert_int_equal((int)h_num(pool, "max_down_without_ceiling"), 1);
  assert_int_equal(cJSON_GetArraySize(h_get(j, "slots")), 4);
  cJSON_Delete(j);

  /* Every state a worker restored was its own slot's. */
  char* out = h_read_file(h->out);
  assert_non_null(out);
  int restored[4] = {0};
  for (const char* p = out; (p = strstr(p, "restored state:")) != NULL; p++) {
    int a, b;
    const char* q = strstr(p, "crc ok, slot ");
    assert_non_null(q);
    assert_int_equal(sscanf(q, "crc ok, slot %d's state in slot %d", &a, &b), 2);
    if (a != b) fail_msg("slot %d's worker restored slot %d's state", b, a);
    assert_true(b >= 0 && b < 4);
    restored[b]++;
  }
  for (int s = 0; s < 4; s++) assert_true(restored[s] >= 1);
  free(out);
  /* ... and each slot keeps its own copy on disk. */
  for (int s = 0; s < 4; s++) {
    char path[64];
    snprintf(path, sizeof(path), "st/slot-%d/state", s);
    assert_int_equal(access(h_path(h, path), R_OK), 0);
  }
}

/* A worker killed in slot 1 is a crash of slot 1 only: it is restarted
 * there, and the other slots' workers run on, never stopped. */
static void a_crash_in_one_slot_leaves_the_others_alone(void** state) {
  h_run_t* h = *state;
  h_start(h, "--workers", "3", "--log", h->log, "--", BLOAT, "--mode", "idle",
          NULL);
  assert_int_equal(h_wait_event(h, "start", 3, h_ms(10000)), 3);
  pid_t p0 = started(h, 0, 1), p1 = started(h, 1, 1), p2 = started(h, 2, 1);
  assert_true(p0 > 0 && p1 > 0 && p2 > 0);
  assert_int_equal(kill(p1, SIGKILL), 0);
  assert_int_equal(h_wait_event(h, "start", 4, h_ms(10000)), 4);
  assert_true(started(h, 1, 2) > 0);
  h_sleep_ms(500);
  assert_true(alive(p0));
  assert_true(alive(p2));
  assert_int_equal(started(h, 0, 2), 0);
  assert_int_equal(started(h, 2, 2), 0);
  cJSON* crashes = h_events(h, "crash");
  assert_int_equal(cJSON_GetArraySize(crashes), 1);
  cJSON* c = cJSON_GetArrayItem(crashes, 0);
  assert_int_equal((int)h_num(c, "slot"), 1);
  assert_int_equal((int)h_num(c, "pid"), p1);
  assert_string_equal(h_str(c, "signal"), "SIGKILL");
  cJSON_Delete(crashes);
  assert_int_equal(h_count(h, "stop"), 0);
  h_signal(h, SIGTERM);
  assert_int_equal(h_wait(h, h_ms(15000)), 143);
}

/* SIGTERM reaches every slot: each worker stops, memsup exits 143 once
 * the last is gone, and no worker outlives it. */
static void sigterm_stops_every_slot(void** state) {
  h_run_t* h = *state;
  h_start(h, "--workers", "3", "--log", h->log, "--", BLOAT, "--mode", "idle",
          NULL);
  assert_int_equal(h_wait_event(h, "start", 3, h_ms(10000)), 3);
  pid_t pids[3];
  for (int s = 0; s < 3; s++) assert_true((pids[s] = started(h, s, 1)) > 0);
  h_signal(h, SIGTERM);
  assert_int_equal(h_wait(h, h_ms(15000)), 143);
  for (int s = 0; s < 3; s++) assert_false(alive(pids[s]));
  cJSON* exits = h_events(h, "exit");
  int seen[3] = {0};
  cJSON* e;
  cJSON_ArrayForEach(e, exits) {
    int s = (int)h_num(e, "slot");
    assert_true(s >= 0 && s < 3);
    seen[s]++;
    assert_string_equal(h_str(e, "signal"), "SIGTERM");
  }
  cJSON_Delete(exits);
  for (int s = 0; s < 3; s++) assert_int_equal(seen[s], 1);
  assert_int_equal(h_count(h, "stop"), 3);
}

/* Each worker gets MEMSUP_WORKER=its slot, and all of them the one
 * listening socket memsup holds (the same socket inode at fd 3). */
static void workers_see_their_slot_and_one_socket(void** state) {
  h_run_t* h = *state;
  char script[1024];
  snprintf(script, sizeof(script),
           "echo \"$MEMSUP_WORKER $LISTEN_FDS $(readlink /proc/self/fd/3)\" "
           "> %s/w.tmp.$MEMSUP_WORKER && mv %s/w.tmp.$MEMSUP_WORKER "
           "%s/w.$MEMSUP_WORKER; exec sleep 60",
           h->dir, h->dir, h->dir);
  h_start(h, "--workers", "3", "--listen", "127.0.0.1:0", "--log", h->log,
          "--", "/bin/sh", "-c", script, NULL);
  char first[128] = "";
  for (int s = 0; s < 3; s++) {
    char name[16], *text = NULL;
    snprintf(name, sizeof(name), "w.%d", s);
    for (int i = 0; i < h_ms(100) && (text = h_read_file(h_path(h, name))) == NULL; i++)
      h_sleep_ms(100);
    if (text == NULL) fail_msg("slot %d's worker wrote nothing", s);
    int slot, nfds;
    char sock[96];
    assert_int_equal(sscanf(text, "%d %d %95s", &slot, &nfds, sock), 3);
    assert_int_equal(slot, s);
    assert_int_equal(nfds, 1);
    assert_true(strncmp(sock, "socket:[", 8) == 0);
    if (s == 0) snprintf(first, sizeof(first), "%s", sock);
    assert_string_equal(sock, first);
    free(text);
  }
  h_signal(h, SIGTERM);
  assert_int_equal(h_wait(h, h_ms(15000)), 143);
}

#define T(name) cmocka_unit_test_setup_teardown(name, h_setup, h_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(pool_restarts_one_slot_at_a_time_and_slots_keep_state),
      T(a_crash_in_one_slot_leaves_the_others_alone),
      T(sigterm_stops_every_slot),
      T(workers_see_their_slot_and_one_socket),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
