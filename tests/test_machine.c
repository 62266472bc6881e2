/* test_machine.c: the restart machine (supervisor/machine.c) driven with
 * event sequences, no processes, no loop.  Three layers:
 *   - the table: every state x event pair, reached on a fresh machine,
 *     checked against this file's own list of which pairs can happen
 *     (a pair that cannot happen must be counted as unexpected), and
 *     every descriptor that comes in is taken by exactly one action;
 *   - scenarios: whole restarts, and the awkward interleavings (a worker
 *     dying mid-save, a stop during a restart, a save reply after its
 *     timeout, a second crossing during a restart, a spawn failing during
 *     a memory restart...);
 *   - a random walk through a simulated loop (the glue's part: answers to
 *     MEASURE, SPAWN, VERIFY, evidence; exits; signals), checking that no
 *     possible event is unexpected and every restart that began is logged
 *     exactly once by the time memsup ends.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "machine.h"
#include "memsup_wire.h"

#define MIB (1024ull * 1024)
#define MS(x) ((uint64_t)(x) * MS_NS_PER_MS)
#define S(x) ((uint64_t)(x) * MS_NS_PER_S)

typedef struct {
  ms_config_t cfg;
  char* argv[2];
  ms_machine_t m;
  ms_actions_t out;
  ms_event_t ev; /* the last event fed: actions point into it */
  uint64_t now;
  pid_t next_pid;
} fx_t;

static int setup(void** state) {
  fx_t* f = calloc(1, sizeof(*f));
  f->argv[0] = "worker";
  f->cfg.limit = 100 * MIB;
  f->cfg.metric = MS_METRIC_FOOTPRINT;
  f->cfg.interval_ns = MS(50);
  f->cfg.grace_ns = S(10);
  f->cfg.max_restarts = 5;
  f->cfg.within_ns = S(60);
  f->cfg.sample_every_ns = S(1);
  f->cfg.max_state = 1ull << 30;
  f->cfg.handshake_ns = S(5);
  f->cfg.argv = f->argv;
  f->cfg.argc = 1;
  f->now = S(1000);
  f->next_pid = 100;
  *state = f;
  return 0;
}

static int init_machine(fx_t* f) { return ms_machine_init(&f->m, &f->cfg); }

static int setup_machine(void** state) {
  setup(state);
  return init_machine(*state);
}

static int teardown(void** state) {
  fx_t* f = *state;
  ms_machine_free(&f->m);
  free(f);
  return 0;
}

/* ---- feeding ------------------------------------------------------------- */

static ms_event_t ev_(fx_t* f, ms_event_type_t type) {
  ms_event_t e;
  memset(&e, 0, sizeof(e));
  e.type = type;
  e.now = f->now;
  e.unix_s = 1.7e9 + (double)f->now / 1e9;
  return e;
}

static ms_actions_t* feed(fx_t* f, const ms_event_t* e) {
  f->ev = *e;
  ms_machine_step(&f->m, &f->ev, &f->out);
  return &f->out;
}

static ms_actions_t* feed_type(fx_t* f, ms_event_type_t type) {
  ms_event_t e = ev_(f, type);
  return feed(f, &e);
}

static void later(fx_t* f, uint64_t ns) { f->now += ns; }

static ms_mem_t mem(uint64_t footprint, int full) {
  ms_mem_t m;
  memset(&m, 0, sizeof(m));
  m.footprint = footprint;
  m.rss = footprint + 10 * MIB;
  m.full = full;
  m.nprocs = 1;
  return m;
}

static ms_actions_t* sample(fx_t* f, uint64_t footprint, int full) {
  ms_event_t e = ev_(f, MS_EV_SAMPLE);
  e.sample.purpose = MS_FOR_TICK;
  e.sample.mem = mem(footprint, full);
  return feed(f, &e);
}

static ms_actions_t* measured(fx_t* f, ms_purpose_t p, uint64_t footprint) {
  ms_event_t e = ev_(f, MS_EV_MEASURED);
  e.sample.purpose = p;
  e.sample.mem = mem(footprint, 1);
  return feed(f, &e);
}

static ms_actions_t* hello(fx_t* f) {
  ms_event_t e = ev_(f, MS_EV_HELLO);
  e.hello.version = MEMSUP_WIRE_VERSION;
  strcpy(e.hello.allocator, "jemalloc");
  return feed(f, &e);
}

static ms_actions_t* state_msg(fx_t* f, ms_event_type_t type, uint64_t seq,
                               int fd, int err) {
  ms_event_t e = ev_(f, type);
  e.state.fd = fd;
  e.state.seq = seq;
  e.state.bytes = 4096;
  e.state.crc32c = 7;
  strcpy(e.state.kind, seq ? "save" : "checkpoint");
  e.state.err = err;
  return feed(f, &e);
}

static ms_actions_t* exit_ev(fx_t* f, int64_t status, int sig) {
  ms_event_t e = ev_(f, MS_EV_EXIT);
  e.exit.status = status;
  e.exit.term_signal = sig;
  return feed(f, &e);
}

static ms_actions_t* sig_ev(fx_t* f, ms_event_type_t type, int sig) {
  ms_event_t e = ev_(f, type);
  e.signal.sig = sig;
  return feed(f, &e);
}

static ms_actions_t* spawned(fx_t* f) {
  ms_event_t e = ev_(f, MS_EV_SPAWNED);
  e.spawned.pid = f->next_pid++;
  return feed(f, &e);
}

static ms_actions_t* evidence(fx_t* f) {
  ms_event_t e = ev_(f, MS_EV_EVIDENCE);
  e.evidence.id = f->m.rs.id;
  e.evidence.n = 1;
  strcpy(e.evidence.rows[0].name, "[heap]");
  e.evidence.rows[0].private_dirty = 90 * MIB;
  return feed(f, &e);
}

/* ---- reading actions ------------------------------------------------------- */

static const ms_action_t* find(const ms_actions_t* out, ms_action_type_t t,
                               int nth) {
  for (size_t i = 0; i < out->n; i++)
    if (out->a[i].type == t && nth-- == 0) return &out->a[i];
  return NULL;
}

/* The evidence read that begins a restart (not a life's early snapshot). */
static const ms_action_t* restart_read(const ms_actions_t* out) {
  for (size_t i = 0; i < out->n; i++)
    if (out->a[i].type == MS_ACT_COLLECT_EVIDENCE && !out->a[i].early)
      return &out->a[i];
  return NULL;
}

static int count(const ms_actions_t* out, ms_action_type_t t) {
  int n = 0;
  for (size_t i = 0; i < out->n; i++) n += out->a[i].type == t;
  return n;
}

static const ms_log_t* logged(const ms_actions_t* out, ms_log_kind_t k) {
  for (size_t i = 0; i < out->n; i++)
    if (out->a[i].type == MS_ACT_LOG && out->a[i].log.kind == k)
      return &out->a[i].log;
  return NULL;
}

static int signalled(const ms_actions_t* out, int sig) {
  for (size_t i = 0; i < out->n; i++)
    if (out->a[i].type == MS_ACT_SIGNAL_GROUP && out->a[i].sig == sig) return 1;
  return 0;
}

/* Index of the first action of type t, or -1 (for order checks). */
static int at(const ms_actions_t* out, ms_action_type_t t) {
  for (size_t i = 0; i < out->n; i++)
    if (out->a[i].type == t) return (int)i;
  return -1;
}

static int sig_at(const ms_actions_t* out, int sig) {
  for (size_t i = 0; i < out->n; i++)
    if (out->a[i].type == MS_ACT_SIGNAL_GROUP && out->a[i].sig == sig) return (int)i;
  return -1;
}

/* ---- getting to a state ------------------------------------------------------ */

static void to_running(fx_t* f) {
  feed_type(f, MS_EV_START);
  assert_non_null(find(&f->out, MS_ACT_SPAWN, 0));
  spawned(f);
  assert_int_equal(f->m.state, MS_ST_RUNNING);
  assert_non_null(logged(&f->out, MS_LOG_START));
  later(f, S(2));
}

static void to_saving(fx_t* f) {
  to_running(f);
  hello(f);
  sample(f, 120 * MIB, 1);
  assert_int_equal(f->m.state, MS_ST_SAVING);
}

static void to_verifying(fx_t* f) {
  to_saving(f);
  later(f, MS(30));
  state_msg(f, MS_EV_STATE, f->m.rs.seq, 41, 0);
  assert_int_equal(f->m.state, MS_ST_VERIFYING);
}

static void to_collecting(fx_t* f) {
  to_running(f);
  sample(f, 120 * MIB, 1);
  assert_int_equal(f->m.state, MS_ST_COLLECTING);
}

static void to_stopping(fx_t* f) {
  to_collecting(f);
  evidence(f);
  assert_int_equal(f->m.state, MS_ST_STOPPING);
}

static void to_backoff(fx_t* f) {
  to_running(f);
  exit_ev(f, 1, 0);
  assert_int_equal(f->m.state, MS_ST_BACKOFF);
}

static void to_judging(fx_t* f) {
  to_stopping(f);
  later(f, MS(20));
  exit_ev(f, 0, SIGTERM);
  assert_int_equal(f->m.state, MS_ST_STARTING);
  spawned(f);
  assert_int_equal(f->m.state, MS_ST_JUDGING);
}

static void to_done(fx_t* f) {
  to_running(f);
  exit_ev(f, 0, 0);
  assert_int_equal(f->m.state, MS_ST_DONE);
}

static void to_starting(fx_t* f) { feed_type(f, MS_EV_START); }
static void to_down(fx_t* f) { (void)f; }

/* ---- the table ------------------------------------------------------------------ */

/* Per state, per event (machine.h order): 'x' can happen and is handled,
 * '.' cannot happen (counted as unexpected), '-' a timeout nobody armed
 * (dropped before the table). */
static const struct {
  ms_state_id_t st;
  void (*reach)(fx_t* f);
  /*          S S F T S M G H S S O B F F P R E E T S F E E
              t p a i a e o e t t k a a a u e o x i t w v a */
  const char* can;
} table[] = {
    {MS_ST_DOWN, to_down,             "x..x..............-x..x"},
    {MS_ST_STARTING, to_starting,     ".xxx......xx......-xxxx"},
    {MS_ST_RUNNING, to_running,       "...xxxxxxxxxxxxxxx-xxxx"},
    {MS_ST_SAVING, to_saving,         "...xxxxxxxxxxxxxxxxxxxx"},
    {MS_ST_VERIFYING, to_verifying,   "...xxxxxxxxxxxxxxx-xxxx"},
    {MS_ST_COLLECTING, to_collecting, "...xxxxxxxxxxxxxxxxxxxx"},
    {MS_ST_STOPPING, to_stopping,     "...xxxxxxxxxxxxxxxxxxxx"},
    {MS_ST_BACKOFF, to_backoff,       "...x.xx...xx......xxxxx"},
    {MS_ST_JUDGING, to_judging,       "...xxxxxxxxxxxxxxx-xxxx"},
    {MS_ST_DONE, to_done,             "xxxxxxxxxxxxxxxxxx-xxxx"},
};

/* A plausible event of each type for the machine as it is. */
static ms_event_t sample_event(fx_t* f, ms_event_type_t type) {
  ms_event_t e = ev_(f, type);
  switch (type) {
    case MS_EV_SPAWNED: e.spawned.pid = 999; break;
    case MS_EV_SPAWN_FAILED: e.spawn_failed.code = 127; break;
    case MS_EV_SAMPLE: e.sample.mem = mem(10 * MIB, 1); break;
    case MS_EV_MEASURED:
    case MS_EV_GONE:
      e.sample.purpose = MS_FOR_BEFORE;
      e.sample.mem = mem(120 * MIB, 1);
      break;
    case MS_EV_HELLO: e.hello.version = MEMSUP_WIRE_VERSION; e.hello.prof = 1; break;
    case MS_EV_STATS: e.stats.has_heap = 1; e.stats.allocated = MIB; break;
    case MS_EV_STATE:
    case MS_EV_STATE_OK:
    case MS_EV_STATE_BAD:
      e.state.fd = 77;
      e.state.seq = f->m.rs.seq;
      e.state.err = type == MS_EV_STATE_BAD ? -74 : 0;
      strcpy(e.state.kind, "save");
      break;
    case MS_EV_SAVE_FAILED: e.save_failed.seq = f->m.rs.seq; break;
    case MS_EV_SEND_FAILED: e.send_failed.what = MS_SEND_SAVE; e.send_failed.err = -32; break;
    case MS_EV_PURGED: e.purged.seq = f->m.w.purge_seq; break;
    case MS_EV_READY: strcpy(e.ready.text, "restored"); break;
    case MS_EV_EXIT: e.exit.status = 1; break;
    case MS_EV_STOP: e.signal.sig = SIGTERM; break;
    case MS_EV_FORWARD: e.signal.sig = SIGHUP; break;
    case MS_EV_EVIDENCE: e.evidence.id = f->m.rs.id; break;
    case MS_EV_EARLY: e.early.fraction = 0.75; e.early.next_slot = 1; break;
    default: break;
  }
  return e;
}

static void every_pair_is_decided_and_fds_are_taken_once(void** state) {
  fx_t* proto = *state;
  for (size_t s = 0; s < sizeof(table) / sizeof(table[0]); s++) {
    assert_int_equal(strlen(table[s].can), MS_EV_COUNT);
    for (int e = 0; e < MS_EV_COUNT; e++) {
      fx_t* f = calloc(1, sizeof(*f));
      memcpy(f, proto, sizeof(*f));
      f->cfg.argv = f->argv;
      assert_int_equal(init_machine(f), 0);
      table[s].reach(f);
      assert_int_equal(f->m.state, table[s].st);
      assert_int_equal(f->m.unexpected, 0);
      later(f, MS(10));
      ms_event_t ev = sample_event(f, (ms_event_type_t)e);
      feed(f, &ev);
      char c = table[s].can[e];
      if (f->m.unexpected != (c == '.' ? 1u : 0u))
        fail_msg("%s x %s: unexpected=%u, table says '%c'",
                 ms_state_name(table[s].st), ms_event_name(e), f->m.unexpected, c);
      if (c == '-' && f->out.n != 0)
        fail_msg("%s x %s: a stale timeout did something",
                 ms_state_name(table[s].st), ms_event_name(e));
      if (ev.type == MS_EV_STATE || ev.type == MS_EV_STATE_OK ||
          ev.type == MS_EV_STATE_BAD) {
        int takers = count(&f->out, MS_ACT_VERIFY) +
                     count(&f->out, MS_ACT_KEEP_STATE) +
                     count(&f->out, MS_ACT_CLOSE_FD);
        if (takers != 1)
          fail_msg("%s x %s: fd taken by %d actions", ms_state_name(table[s].st),
                   ms_event_name(e), takers);
      }
      ms_machine_free(&f->m);
      free(f);
    }
  }
}

/* ---- scenarios ---------------------------------------------------------------------- */

static void first_start_spawns_and_logs_start(void** state) {
  fx_t* f = *state;
  feed_type(f, MS_EV_START);
  assert_int_equal(f->m.state, MS_ST_STARTING);
  assert_int_equal(find(&f->out, MS_ACT_SPAWN, 0)->gen, 1);
  spawned(f);
  assert_int_equal(f->m.state, MS_ST_RUNNING);
  assert_int_equal(f->m.gen, 1);
  assert_int_equal(logged(&f->out, MS_LOG_START)->pid, 100);
}

static void first_spawn_failure_exits_with_its_code_and_no_log(void** state) {
  fx_t* f = *state;
  feed_type(f, MS_EV_START);
  ms_event_t e = ev_(f, MS_EV_SPAWN_FAILED);
  e.spawn_failed.code = 127;
  feed(f, &e);
  assert_int_equal(f->m.state, MS_ST_DONE);
  assert_int_equal(find(&f->out, MS_ACT_EXIT, 0)->code, 127);
  assert_int_equal(count(&f->out, MS_ACT_LOG), 0);
}

static void estimate_over_limit_only_measures(void** state) {
  fx_t* f = *state;
  to_running(f);
  sample(f, 150 * MIB, 0);
  assert_int_equal(f->m.state, MS_ST_RUNNING);
  assert_int_equal(count(&f->out, MS_ACT_SIGNAL_GROUP), 0);
  sample(f, 150 * MIB, 1);
  assert_int_equal(f->m.state, MS_ST_COLLECTING);
}

static void tick_asks_for_full_reads_only_near_the_limit(void** state) {
  fx_t* f = *state;
  to_running(f);
  feed_type(f, MS_EV_TICK);
  const ms_action_t* a = find(&f->out, MS_ACT_MEASURE, 0);
  assert_non_null(a);
  assert_int_equal(a->purpose, MS_FOR_TICK);
  assert_int_equal(a->near, f->cfg.limit);
  assert_int_equal(a->force, 0);
}

/* A worker without the SDK: frozen, evidence read, then SIGTERM + SIGCONT;
 * the new worker's first tick is its "after". */
static void restart_without_sdk_freezes_reads_evidence_then_stops(void** state) {
  fx_t* f = *state;
  to_running(f);
  sample(f, 20 * MIB, 1); /* first full sample: growth is measured from it */
  later(f, S(5));
  ms_actions_t* out = sample(f, 120 * MIB, 1);
  assert_int_equal(f->m.state, MS_ST_COLLECTING);
  assert_true(sig_at(out, SIGSTOP) < at(out, MS_ACT_COLLECT_EVIDENCE));
  assert_null(find(out, MS_ACT_SEND_SAVE, 0));
  assert_int_equal(find(out, MS_ACT_TIMER_ARM, 0)->ns, f->cfg.grace_ns);
  assert_true(f->m.rs.has_growth);
  assert_true(f->m.rs.growth_bps > 19 * MIB && f->m.rs.growth_bps < 21 * MIB);

  later(f, MS(150));
  out = evidence(f);
  assert_int_equal(f->m.state, MS_ST_STOPPING);
  assert_true(sig_at(out, SIGTERM) >= 0 && sig_at(out, SIGTERM) < sig_at(out, SIGCONT));
  assert_int_equal(f->m.rs.nrows, 1);

  later(f, MS(40));
  out = exit_ev(f, 0, SIGTERM);
  assert_true(signalled(out, SIGKILL)); /* the rest of its group */
  assert_non_null(find(out, MS_ACT_CLOSE_WORKER, 0));
  assert_non_null(find(out, MS_ACT_SPAWN, 0));
  assert_null(logged(out, MS_LOG_CRASH)); /* a planned exit */
  later(f, MS(5));
  spawned(f);
  assert_int_equal(f->m.state, MS_ST_JUDGING);
  /* The old worker lived 7 s: the new one is judged over its first 4 s
   * (3.5 s, raised to the floor), not at its first tick. */
  assert_int_equal(f->m.rs.judge_ns, S(4));
  later(f, MS(50));
  out = feed_type(f, MS_EV_TICK);
  assert_int_equal(find(out, MS_ACT_MEASURE, 0)->force, 0);
  out = sample(f, 5 * MIB, 1);
  assert_null(logged(out, MS_LOG_RESTART));
  assert_int_equal(f->m.state, MS_ST_JUDGING);
  later(f, MS(3950));
  out = feed_type(f, MS_EV_TICK);
  assert_int_equal(find(out, MS_ACT_MEASURE, 0)->force, 1);
  out = sample(f, 6 * MIB, 1);
  const ms_log_t* l = logged(out, MS_LOG_RESTART);
  assert_non_null(l);
  assert_int_equal(l->pid, 101);
  assert_int_equal(f->m.state, MS_ST_RUNNING);
  assert_int_equal(f->m.rs.helped, 1);
  assert_int_equal(f->m.rs.old_pid, 100);
  assert_int_equal(f->m.rs.new_pid, 101);
  assert_string_equal(f->m.rs.outcome, "none");
  assert_int_equal(f->m.rs.t_exit - f->m.rs.t_stop, MS(40));
  assert_int_equal(f->m.rs.t_spawn - f->m.rs.t_exit, MS(5));
  assert_int_equal(f->m.restarts, 1);
}

/* An SDK worker: save, check off the loop, stop, welcome the next one with
 * the saved state, judge at its "ready". */
static void restart_with_sdk_saves_checks_and_hands_over(void** state) {
  fx_t* f = *state;
  to_running(f);
  ms_actions_t* out = hello(f);
  assert_non_null(find(out, MS_ACT_SEND_WELCOME, 0));
  out = sample(f, 120 * MIB, 1);
  assert_int_equal(f->m.state, MS_ST_SAVING);
  uint64_t seq = find(out, MS_ACT_SEND_SAVE, 0)->seq;
  assert_true(seq > 0);
  assert_false(signalled(out, SIGSTOP));
  assert_non_null(find(out, MS_ACT_COLLECT_EVIDENCE, 0));

  later(f, MS(20));
  evidence(f);
  assert_int_equal(f->m.state, MS_ST_SAVING);
  later(f, MS(30));
  out = state_msg(f, MS_EV_STATE, seq, 42, 0);
  assert_int_equal(f->m.state, MS_ST_VERIFYING);
  assert_int_equal(find(out, MS_ACT_VERIFY, 0)->state->fd, 42);
  assert_non_null(find(out, MS_ACT_TIMER_CANCEL, 0));
  later(f, MS(4));
  out = state_msg(f, MS_EV_STATE_OK, seq, 42, 0);
  assert_int_equal(find(out, MS_ACT_KEEP_STATE, 0)->state->fd, 42);
  assert_int_equal(f->m.state, MS_ST_STOPPING);
  assert_true(signalled(out, SIGTERM));
  assert_string_equal(f->m.handoff, "save");

  later(f, MS(10));
  exit_ev(f, 0, 0);
  spawned(f);
  later(f, MS(3));
  out = hello(f);
  assert_non_null(find(out, MS_ACT_SEND_WELCOME, 0));
  assert_string_equal(f->m.rs.handed, "save");
  later(f, MS(7));
  ms_event_t r = ev_(f, MS_EV_READY);
  strcpy(r.ready.text, "restored");
  r.ready.restored_unix_us = 1234;
  out = feed(f, &r);
  /* Ready, but judged at the end of the window (the old worker's life was
   * 2 s: the 4 s floor), like any other worker. */
  assert_null(logged(out, MS_LOG_RESTART));
  later(f, S(4));
  out = sample(f, 10 * MIB, 1);
  assert_non_null(logged(out, MS_LOG_RESTART));
  assert_string_equal(f->m.rs.outcome, "restored");
  assert_string_equal(f->m.rs.restore, "restored");
  assert_int_equal(f->m.rs.saved_bytes, 4096);
  assert_int_equal(f->m.rs.t_state - f->m.rs.t_recv, MS(4));
  assert_int_equal(f->m.rs.t_ready - f->m.rs.t_welcome, MS(7));
  assert_int_equal(f->m.rs.held_unix_us, 1234);
  assert_int_equal(f->m.state, MS_ST_RUNNING);
}

static void worker_dying_mid_save_is_replaced_with_save_failed(void** state) {
  fx_t* f = *state;
  to_saving(f);
  later(f, MS(100));
  ms_actions_t* out = exit_ev(f, 0, SIGKILL);
  assert_non_null(logged(out, MS_LOG_DIED_SAVING));
  assert_null(logged(out, MS_LOG_CRASH));
  assert_non_null(find(out, MS_ACT_SPAWN, 0));
  assert_string_equal(f->m.rs.outcome, "save-failed");
  /* Its evidence comes back later and still joins the record. */
  evidence(f);
  assert_int_equal(f->m.rs.nrows, 1);
  spawned(f);
  later(f, S(6)); /* an SDK slot: "after" at ready or the handshake timeout */
  out = sample(f, 5 * MIB, 1);
  assert_non_null(logged(out, MS_LOG_RESTART));
  assert_int_equal(f->m.rs.t_ready, 0);
}

static void save_refused_by_the_check_is_corrupt_and_last_good_is_kept(void** state) {
  fx_t* f = *state;
  to_running(f);
  hello(f);
  state_msg(f, MS_EV_STATE, 0, 40, 0); /* a checkpoint */
  ms_actions_t* out = state_msg(f, MS_EV_STATE_OK, 0, 40, 0);
  assert_non_null(find(out, MS_ACT_KEEP_STATE, 0));
  assert_string_equal(f->m.handoff, "checkpoint");
  sample(f, 120 * MIB, 1);
  evidence(f);
  state_msg(f, MS_EV_STATE, f->m.rs.seq, 41, 0);
  out = state_msg(f, MS_EV_STATE_BAD, f->m.rs.seq, 41, -74);
  assert_int_equal(find(out, MS_ACT_CLOSE_FD, 0)->state->fd, 41);
  assert_non_null(logged(out, MS_LOG_STATE_REJECTED));
  assert_string_equal(f->m.rs.outcome, "corrupt");
  assert_string_equal(f->m.handoff, "checkpoint");
  assert_int_equal(f->m.state, MS_ST_STOPPING);
}

static void too_big_state_is_too_big(void** state) {
  fx_t* f = *state;
  to_verifying(f);
  evidence(f);
  state_msg(f, MS_EV_STATE_BAD, f->m.rs.seq, 41, -27 /* EFBIG */);
  assert_string_equal(f->m.rs.outcome, "too-big");
}

/* The save timed out; its reply comes later: kept as a checkpoint, and the
 * restart's outcome stays "save-timeout". */
static void save_reply_after_the_timeout_is_kept_as_a_checkpoint(void** state) {
  fx_t* f = *state;
  to_saving(f);
  uint64_t seq = f->m.rs.seq;
  evidence(f);
  later(f, S(10));
  ms_actions_t* out = feed_type(f, MS_EV_TIMEOUT);
  assert_non_null(logged(out, MS_LOG_SAVE_TIMEOUT));
  assert_int_equal(f->m.state, MS_ST_STOPPING);
  assert_true(signalled(out, SIGTERM));
  later(f, MS(200));
  out = state_msg(f, MS_EV_STATE, seq, 43, 0);
  assert_int_equal(find(out, MS_ACT_VERIFY, 0)->state->fd, 43);
  assert_int_equal(f->m.state, MS_ST_STOPPING);
  out = state_msg(f, MS_EV_STATE_OK, seq, 43, 0);
  assert_non_null(find(out, MS_ACT_KEEP_STATE, 0));
  assert_non_null(logged(out, MS_LOG_CHECKPOINT));
  assert_string_equal(f->m.rs.outcome, "save-timeout");
  assert_int_equal(f->m.state, MS_ST_STOPPING);
}

static void save_timeout_before_evidence_waits_for_it(void** state) {
  fx_t* f = *state;
  to_saving(f);
  later(f, S(10));
  ms_actions_t* out = feed_type(f, MS_EV_TIMEOUT);
  assert_int_equal(f->m.state, MS_ST_COLLECTING);
  assert_false(signalled(out, SIGTERM));
  out = evidence(f);
  assert_true(signalled(out, SIGTERM));
  assert_int_equal(f->m.state, MS_ST_STOPPING);
}

/* A stop during a save does not wait out the save (up to --grace): the
 * worker gets the stop signal at once.  A state it still sends while it
 * ends is checked and kept; memsup ends with the worker. */
static void stop_during_a_save_stops_the_worker_at_once(void** state) {
  fx_t* f = *state;
  to_saving(f);
  evidence(f);
  ms_actions_t* out = sig_ev(f, MS_EV_STOP, SIGTERM);
  assert_non_null(logged(out, MS_LOG_STOP));
  assert_true(signalled(out, SIGTERM));
  assert_true(signalled(out, SIGCONT));
  assert_int_equal(find(out, MS_ACT_TIMER_ARM, 0)->ns, f->cfg.grace_ns);
  assert_int_equal(f->m.state, MS_ST_STOPPING);
  assert_string_equal(f->m.rs.outcome, "stopped");
  /* The SDK answered the save on its way out: kept. */
  out = state_msg(f, MS_EV_STATE, f->m.rs.seq, 44, 0);
  assert_non_null(find(out, MS_ACT_VERIFY, 0));
  out = state_msg(f, MS_EV_STATE_OK, f->m.rs.seq, 44, 0);
  assert_non_null(find(out, MS_ACT_KEEP_STATE, 0));
  out = exit_ev(f, 0, SIGTERM);
  /* The restart ends without a new worker, then memsup with the worker. */
  const ms_log_t* r = logged(out, MS_LOG_RESTART);
  assert_non_null(r);
  assert_int_equal(r->pid, 100); /* no new worker: the old one */
  assert_int_equal(f->m.rs.new_pid, 0);
  assert_int_equal(f->m.rs.helped, -1);
  assert_string_equal(f->m.rs.outcome, "stopped");
  assert_true(at(out, MS_ACT_LOG) < at(out, MS_ACT_EXIT));
  assert_non_null(logged(out, MS_LOG_STOPPED));
  assert_int_equal(find(out, MS_ACT_EXIT, 0)->code, 128 + SIGTERM);
  assert_null(find(out, MS_ACT_SPAWN, 0));
  assert_int_equal(f->m.state, MS_ST_DONE);
}

/* A worker that ignores the save while it grows: held to the ceiling
 * (limit 100 MiB: 164 MiB), killed past it, and replaced with the last
 * good state. */
static void saving_past_the_ceiling_kills_and_replaces_the_worker(
    void** state) {
  fx_t* f = *state;
  to_running(f);
  hello(f);
  state_msg(f, MS_EV_STATE, 0, 40, 0); /* a checkpoint, checked and kept */
  state_msg(f, MS_EV_STATE_OK, 0, 40, 0);
  assert_string_equal(f->m.handoff, "checkpoint");
  sample(f, 120 * MIB, 1);
  assert_int_equal(f->m.state, MS_ST_SAVING);
  evidence(f);
  later(f, S(1));
  ms_actions_t* out = sample(f, 164 * MIB, 1); /* at the ceiling: waits */
  assert_int_equal(count(out, MS_ACT_SIGNAL_GROUP), 0);
  assert_int_equal(f->m.state, MS_ST_SAVING);
  out = sample(f, 400 * MIB, 0); /* an estimate: not acted on */
  assert_int_equal(count(out, MS_ACT_SIGNAL_GROUP), 0);
  later(f, S(1));
  out = sample(f, 165 * MIB, 1);
  const ms_log_t* l = logged(out, MS_LOG_CEILING);
  assert_non_null(l);
  assert_int_equal(l->value, 165 * MIB);
  assert_int_equal(l->ceiling, 164 * MIB);
  assert_true(signalled(out, SIGKILL));
  assert_null(find(out, MS_ACT_SEND_SAVE, 0));
  assert_int_equal(f->m.state, MS_ST_STOPPING);
  assert_string_equal(f->m.rs.outcome, "ceiling");
  assert_int_equal(f->m.rs.t_stop, f->now);
  out = exit_ev(f, 0, SIGKILL);
  assert_non_null(find(out, MS_ACT_SPAWN, 0));
  out = spawned(f);
  hello(f);
  /* The next worker is welcomed with the checkpoint. */
  assert_string_equal(f->m.handoff, "checkpoint");
}

/* --metric rss holds the ceiling on RSS. */
static void saving_ceiling_holds_rss_with_metric_rss(void** state) {
  fx_t* f = *state;
  f->cfg.metric = MS_METRIC_RSS;
  to_running(f);
  hello(f);
  feed_type(f, MS_EV_TICK);
  sample(f, 100 * MIB, 1); /* rss 110 MiB */
  assert_int_equal(f->m.state, MS_ST_SAVING);
  ms_actions_t* out = sample(f, 150 * MIB, 1); /* rss 160 MiB */
  assert_null(logged(out, MS_LOG_CEILING));
  out = sample(f, 160 * MIB, 1); /* rss 170 MiB */
  assert_non_null(logged(out, MS_LOG_CEILING));
  assert_true(signalled(out, SIGKILL));
}

/* --metric heap holds the ceiling on the worker's own figures. */
static void saving_ceiling_holds_heap_on_stats(void** state) {
  fx_t* f = *state;
  f->cfg.metric = MS_METRIC_HEAP;
  to_running(f);
  hello(f);
  feed_type(f, MS_EV_TICK);
  ms_event_t e = ev_(f, MS_EV_STATS);
  e.stats.has_heap = 1;
  e.stats.allocated = 150 * MIB;
  feed(f, &e);
  ms_event_t s = ev_(f, MS_EV_MEASURED);
  s.sample.purpose = MS_FOR_STATS;
  s.sample.mem = mem(20 * MIB, 1);
  feed(f, &s);
  assert_int_equal(f->m.state, MS_ST_SAVING);
  ms_actions_t* out = sample(f, 500 * MIB, 1); /* footprint: not the metric */
  assert_null(logged(out, MS_LOG_CEILING));
  e = ev_(f, MS_EV_STATS);
  e.stats.has_heap = 1;
  e.stats.allocated = 200 * MIB;
  out = feed(f, &e);
  assert_non_null(logged(out, MS_LOG_CEILING));
  assert_int_equal(f->m.state, MS_ST_STOPPING);
}

/* The state is in (VERIFYING): the save is answered, no ceiling. */
static void verifying_does_not_hold_the_ceiling(void** state) {
  fx_t* f = *state;
  to_verifying(f);
  ms_actions_t* out = sample(f, 500 * MIB, 1);
  assert_null(logged(out, MS_LOG_CEILING));
  assert_int_equal(count(out, MS_ACT_SIGNAL_GROUP), 0);
  assert_int_equal(f->m.state, MS_ST_VERIFYING);
}

static void second_stop_kills_the_group_at_once(void** state) {
  fx_t* f = *state;
  to_saving(f);
  sig_ev(f, MS_EV_STOP, SIGINT);
  ms_actions_t* out = sig_ev(f, MS_EV_STOP, SIGINT);
  assert_true(signalled(out, SIGKILL));
  assert_null(logged(out, MS_LOG_STOP));
}

static void new_worker_dying_while_judged_ends_the_restart_then_crashes(
    void** state) {
  fx_t* f = *state;
  to_judging(f); /* the old worker exited 20 ms after the stop */
  uint64_t t_exit = f->m.rs.t_exit;
  later(f, MS(30));
  ms_actions_t* out = exit_ev(f, 0, SIGSEGV);
  assert_true(at(out, MS_ACT_LOG) >= 0);
  assert_non_null(logged(out, MS_LOG_RESTART));
  assert_non_null(logged(out, MS_LOG_CRASH));
  assert_int_equal(f->m.rs.has_after, 0);
  assert_int_equal(f->m.rs.new_pid, 101);
  assert_int_equal(f->m.rs.t_exit, t_exit); /* the old worker's exit */
  assert_int_equal(f->m.state, MS_ST_BACKOFF);
}

static void stop_while_judging_logs_the_restart_without_after(void** state) {
  fx_t* f = *state;
  to_judging(f);
  ms_actions_t* out = sig_ev(f, MS_EV_STOP, SIGINT);
  assert_non_null(logged(out, MS_LOG_RESTART));
  assert_int_equal(f->m.rs.has_after, 0);
  assert_int_equal(f->m.rs.new_pid, 101);
  assert_true(signalled(out, SIGINT));
  assert_int_equal(f->m.state, MS_ST_STOPPING);
  out = exit_ev(f, 0, SIGINT);
  assert_int_equal(find(out, MS_ACT_EXIT, 0)->code, 128 + SIGINT);
  assert_null(logged(out, MS_LOG_RESTART)); /* logged once */
}

/* Restarts that did not help hold off the next restart; they never leave
 * the slot without a worker. */
static void replacement_starts_at_once_even_after_unhelpful_restarts(
    void** state) {
  fx_t* f = *state;
  f->m.unhelpful = 3;
  to_stopping(f);
  ms_actions_t* out = exit_ev(f, 0, SIGTERM);
  assert_int_equal(f->m.state, MS_ST_STARTING);
  assert_non_null(find(out, MS_ACT_SPAWN, 0));
  assert_null(find(out, MS_ACT_TIMER_ARM, 0));
}

static void second_crossing_during_a_restart_starts_nothing(void** state) {
  fx_t* f = *state;
  f->cfg.sample_log_path = "samples.jsonl";
  to_saving(f);
  unsigned id = f->m.rs.id;
  /* SAVING still samples (the sample log has no hole), and does not act. */
  ms_actions_t* out = feed_type(f, MS_EV_TICK);
  assert_non_null(find(out, MS_ACT_MEASURE, 0));
  later(f, S(1));
  out = sample(f, 150 * MIB, 1); /* over the limit, under the ceiling */
  assert_null(find(out, MS_ACT_SEND_SAVE, 0));
  assert_null(find(out, MS_ACT_COLLECT_EVIDENCE, 0));
  assert_non_null(logged(out, MS_LOG_SAMPLE));
  assert_int_equal(f->m.rs.id, id);
  evidence(f);
  out = feed_type(f, MS_EV_TIMEOUT);
  assert_int_equal(f->m.state, MS_ST_STOPPING);
  out = sample(f, 300 * MIB, 1); /* a stale answer */
  assert_int_equal(out->n, 0);
  exit_ev(f, 0, SIGTERM);
  spawned(f);
  /* The new worker over the limit at once: judged, not restarted again. */
  later(f, S(6));
  out = sample(f, 300 * MIB, 1);
  assert_non_null(logged(out, MS_LOG_RESTART));
  assert_int_equal(f->m.rs.helped, 0);
  assert_non_null(logged(out, MS_LOG_HOLD));
  assert_null(find(out, MS_ACT_SEND_SAVE, 0));
  assert_null(find(out, MS_ACT_SIGNAL_GROUP, 0));
  assert_int_equal(f->m.state, MS_ST_RUNNING);
}

static void heap_crossing_is_ignored_outside_running(void** state) {
  fx_t* f = *state;
  to_saving(f);
  f->cfg.metric = MS_METRIC_HEAP;
  ms_event_t e = ev_(f, MS_EV_STATS);
  e.stats.has_heap = 1;
  e.stats.allocated = 500 * MIB;
  ms_actions_t* out = feed(f, &e);
  assert_int_equal(out->n, 0);
}

static void heap_metric_decides_on_stats(void** state) {
  fx_t* f = *state;
  f->cfg.metric = MS_METRIC_HEAP;
  to_running(f);
  hello(f);
  ms_event_t e = ev_(f, MS_EV_STATS);
  e.stats.has_heap = 1;
  e.stats.allocated = 150 * MIB;
  ms_actions_t* out = feed(f, &e);
  const ms_action_t* a = find(out, MS_ACT_MEASURE, 0);
  assert_int_equal(a->purpose, MS_FOR_STATS);
  ms_event_t s = ev_(f, MS_EV_MEASURED);
  s.sample.purpose = MS_FOR_STATS;
  s.sample.mem = mem(20 * MIB, 0);
  out = feed(f, &s);
  assert_int_equal(f->m.state, MS_ST_SAVING);
  assert_int_equal(f->m.rs.metric, MS_METRIC_HEAP);
  assert_int_equal(f->m.rs.value, 150 * MIB);
  /* The "before" was an estimate: it is read fully. */
  assert_int_equal(find(out, MS_ACT_MEASURE, 0)->purpose, MS_FOR_BEFORE);
  measured(f, MS_FOR_BEFORE, 160 * MIB);
  assert_true(f->m.rs.before_full);
  assert_int_equal(f->m.rs.before.footprint, 160 * MIB);
}

/* Heap before, no heap after (the new worker has not reported yet): the
 * judgement falls back to footprint on both sides. */
static void helped_compares_one_metric_on_both_sides(void** state) {
  fx_t* f = *state;
  f->cfg.metric = MS_METRIC_HEAP;
  to_running(f);
  hello(f);
  ms_event_t e = ev_(f, MS_EV_STATS);
  e.stats.has_heap = 1;
  e.stats.allocated = 150 * MIB;
  feed(f, &e);
  ms_event_t s = ev_(f, MS_EV_MEASURED);
  s.sample.purpose = MS_FOR_STATS;
  s.sample.mem = mem(200 * MIB, 1);
  feed(f, &s);
  evidence(f);
  feed_type(f, MS_EV_TIMEOUT);
  exit_ev(f, 0, SIGTERM);
  spawned(f);
  later(f, S(6));
  sample(f, 190 * MIB, 1); /* footprint 190 after 200: did not help */
  assert_int_equal(f->m.rs.judged_on, MS_METRIC_FOOTPRINT);
  assert_int_equal(f->m.rs.judged_before, 200 * MIB);
  assert_int_equal(f->m.rs.judged_after, 190 * MIB);
  assert_int_equal(f->m.rs.helped, 0);
}

/* The new worker as big as the old one at the end of its window: did not
 * help; a crossing during the hold is held, one after it restarts. */
static void unhelpful_restarts_hold_off_the_next_one(void** state) {
  fx_t* f = *state;
  f->cfg.limit = 118 * MIB;
  to_judging(f);
  later(f, S(4));
  ms_actions_t* out = sample(f, 115 * MIB, 1); /* before was 120 */
  assert_int_equal(f->m.rs.helped, 0);
  assert_int_equal(f->m.rs.crossed, 0);
  assert_int_equal(f->m.rs.hold_ns, S(10));
  assert_non_null(logged(out, MS_LOG_RESTART));
  assert_null(logged(out, MS_LOG_HOLD)); /* under the limit: nothing held */
  later(f, S(1));
  out = sample(f, 130 * MIB, 1);
  const ms_log_t* l = logged(out, MS_LOG_HOLD);
  assert_non_null(l);
  assert_int_equal(l->value, 130 * MIB);
  assert_int_equal(l->count, 1);
  assert_int_equal(l->delay_ns, S(9));
  assert_null(restart_read(out));
  assert_int_equal(f->m.state, MS_ST_RUNNING);
  later(f, S(8));
  out = sample(f, 131 * MIB, 1);
  assert_int_equal(out->n, 0); /* said once per run of overs */
  later(f, S(1));
  out = sample(f, 132 * MIB, 1); /* the hold is over */
  assert_non_null(restart_read(out));
  evidence(f);
  exit_ev(f, 0, SIGTERM);
  spawned(f);
  later(f, S(10));
  sample(f, 10 * MIB, 1);
  assert_int_equal(f->m.rs.helped, 1);
  assert_int_equal(f->m.unhelpful, 0);
}

/* A leak (20 MiB/s under 128 MiB: 6.4 s lives) is judged over its first
 * 4 s and restarted at every crossing, with no hold. */
static void leak_is_judged_helped_and_restarted_at_every_crossing(void** state) {
  fx_t* f = *state;
  f->cfg.limit = 128 * MIB;
  feed_type(f, MS_EV_START);
  spawned(f);
  for (int life = 0; life < 4; life++) {
    uint64_t born = f->now;
    ms_actions_t* out = NULL;
    for (uint64_t t = 50; t <= 6400; t += 50) {
      f->now = born + MS(t);
      out = sample(f, (uint64_t)((double)t / 1000 * 20 * MIB), 1);
      if (f->m.state != MS_ST_RUNNING && f->m.state != MS_ST_JUDGING) break;
    }
    assert_int_equal(f->m.state, MS_ST_COLLECTING);
    assert_null(logged(out, MS_LOG_HOLD));
    if (life > 0) assert_int_equal(f->m.rs.judge_ns, S(4));
    /* The previous restart was judged helped before this crossing. */
    assert_int_equal(f->m.restarts, (unsigned)life);
    assert_int_equal(f->m.unhelpful, 0);
    evidence(f);
    later(f, MS(10));
    exit_ev(f, 0, SIGTERM);
    spawned(f);
  }
  assert_int_equal(f->m.restarts, 3);
  assert_int_equal(f->m.unhelpful, 0);
}

/* Touches 300 MiB as it starts, frees it 0.3 s later, then idles: every
 * worker crosses at 0.2 s.  The first restart did not help (the next one
 * crossed 0.2 s after its start): the worker runs on over the limit, and
 * once it frees there is nothing left to restart. */
static void startup_peak_is_held_not_looped(void** state) {
  fx_t* f = *state;
  feed_type(f, MS_EV_START);
  spawned(f);
  int restarts = 0, holds = 0;
  for (int step = 0; step < 60 * 20; step++) {
    uint64_t age = f->now - f->m.w.started_ns;
    uint64_t fp = age >= MS(200) && age < MS(300) ? 300 * MIB : 5 * MIB;
    ms_actions_t* out = sample(f, fp, 1);
    if (logged(out, MS_LOG_HOLD)) holds++;
    if (f->m.state == MS_ST_COLLECTING) {
      restarts++;
      evidence(f);
      later(f, MS(10));
      exit_ev(f, 0, SIGTERM);
      spawned(f);
    }
    later(f, MS(50));
  }
  assert_int_equal(restarts, 1);
  assert_int_equal(holds, 1);
  assert_int_equal(f->m.rs.helped, 0);
  assert_int_equal(f->m.rs.crossed, 1);
  assert_true(f->m.rs.crossed_after_s > 0.19 && f->m.rs.crossed_after_s < 0.21);
  assert_int_equal(f->m.state, MS_ST_RUNNING);
}

/* Always 200 MiB under a 100 MiB limit: each new worker crosses at once,
 * so restarts slow down exponentially (holds of 10, 20, 40... s, capped
 * at 5 min): at most 8 in 10 minutes, each hold logged with its reason. */
static void steady_state_over_the_limit_backs_off_exponentially(void** state) {
  fx_t* f = *state;
  feed_type(f, MS_EV_START);
  spawned(f);
  uint64_t t0 = f->now, last = 0, gap = 0;
  int restarts = 0, holds = 0;
  while (f->now - t0 < S(600)) {
    ms_actions_t* out = sample(f, 200 * MIB, 1);
    const ms_log_t* h = logged(out, MS_LOG_HOLD);
    if (h) {
      holds++;
      assert_int_equal(h->count, f->m.unhelpful);
      assert_int_equal(f->m.rs.crossed, 1);
    }
    if (f->m.state == MS_ST_COLLECTING) {
      if (restarts >= 2) assert_true(f->now - last > gap); /* slower each time */
      if (restarts >= 1) gap = f->now - last;
      last = f->now;
      restarts++;
      evidence(f);
      later(f, MS(10));
      exit_ev(f, 0, SIGTERM);
      spawned(f);
    }
    later(f, MS(50));
  }
  assert_true(restarts >= 6 && restarts <= 8);
  assert_int_equal(holds, restarts);
  assert_int_equal(f->m.rs.hold_ns, MS_HOLD_MAX_NS);
}

/* 64 MiB/s under 100 MiB: lives of 1.6 s, under the 4 s floor, so each
 * restart "did not help"; but the worker keeps growing through the hold,
 * so it is restarted 5 s into it all the same. */
static void fast_leak_is_restarted_through_the_hold(void** state) {
  fx_t* f = *state;
  feed_type(f, MS_EV_START);
  spawned(f);
  int restarts = 0, broken = 0;
  uint64_t t0 = f->now;
  while (f->now - t0 < S(60)) {
    uint64_t age = f->now - f->m.w.started_ns;
    ms_actions_t* out = sample(f, (uint64_t)((double)age / 1e9 * 64 * MIB), 1);
    broken += logged(out, MS_LOG_HOLD_BROKEN) != NULL;
    if (f->m.state == MS_ST_COLLECTING) {
      restarts++;
      evidence(f);
      later(f, MS(10));
      exit_ev(f, 0, SIGTERM);
      spawned(f);
    }
    later(f, MS(50));
  }
  /* One at 1.6 s, then one every 1.6 + 5 s. */
  assert_true(restarts >= 9 && restarts <= 10);
  assert_int_equal(broken, restarts - 1);
  assert_int_equal(f->m.rs.helped, 0);
}

/* A crossing while judged under --metric heap comes with the stats. */
static void heap_crossing_while_judged_is_not_helped(void** state) {
  fx_t* f = *state;
  to_judging(f);
  f->cfg.metric = MS_METRIC_HEAP;
  hello(f);
  later(f, MS(100));
  ms_event_t e = ev_(f, MS_EV_STATS);
  e.stats.has_heap = 1;
  e.stats.allocated = 150 * MIB;
  ms_actions_t* out = feed(f, &e);
  assert_int_equal(find(out, MS_ACT_MEASURE, 0)->purpose, MS_FOR_STATS);
  ms_event_t s = ev_(f, MS_EV_MEASURED);
  s.sample.purpose = MS_FOR_STATS;
  s.sample.mem = mem(160 * MIB, 1);
  out = feed(f, &s);
  assert_non_null(logged(out, MS_LOG_RESTART));
  assert_non_null(logged(out, MS_LOG_HOLD));
  assert_int_equal(f->m.rs.helped, 0);
  assert_int_equal(f->m.state, MS_ST_RUNNING);
}

/* A tick's read that finds the judged worker gone: nothing yet; its exit
 * ends the restart without "after" and counts as a crash. */
static void gone_while_judged_waits_for_the_exit(void** state) {
  fx_t* f = *state;
  to_judging(f);
  later(f, MS(50));
  ms_event_t g = ev_(f, MS_EV_GONE);
  g.sample.purpose = MS_FOR_TICK;
  ms_actions_t* out = feed(f, &g);
  assert_int_equal(out->n, 0);
  assert_int_equal(f->m.state, MS_ST_JUDGING);
  out = exit_ev(f, 1, 0);
  assert_non_null(logged(out, MS_LOG_RESTART));
  assert_int_equal(f->m.rs.helped, -1);
  assert_non_null(logged(out, MS_LOG_CRASH));
}

/* READY while judged is noted for the downtime, not a verdict. */
static void ready_while_judged_is_timed_not_judged(void** state) {
  fx_t* f = *state;
  to_judging(f);
  later(f, MS(80));
  ms_event_t r = ev_(f, MS_EV_READY);
  strcpy(r.ready.text, "none");
  ms_actions_t* out = feed(f, &r);
  assert_int_equal(out->n, 0);
  assert_int_equal(f->m.rs.t_ready - f->m.rs.t_spawn, MS(80));
  assert_int_equal(f->m.state, MS_ST_JUDGING);
}

static void spawn_failing_during_a_memory_restart_is_logged(void** state) {
  fx_t* f = *state;
  to_stopping(f);
  exit_ev(f, 0, SIGTERM);
  ms_event_t e = ev_(f, MS_EV_SPAWN_FAILED);
  e.spawn_failed.code = 127;
  ms_actions_t* out = feed(f, &e);
  const ms_log_t* l = logged(out, MS_LOG_RESTART);
  assert_non_null(l);
  assert_int_equal(l->pid, 100); /* no new worker: the old one */
  assert_int_equal(f->m.rs.new_pid, 0);
  assert_int_equal(f->m.rs.has_after, 0);
  assert_int_equal(f->m.state, MS_ST_BACKOFF);
  assert_int_equal(find(out, MS_ACT_TIMER_ARM, 0)->ns, MS_BACKOFF_BASE_NS);
  feed_type(f, MS_EV_TIMEOUT);
  out = spawned(f);
  assert_int_equal(f->m.state, MS_ST_RUNNING); /* the restart was logged */
  assert_non_null(logged(out, MS_LOG_START));
  assert_int_equal(f->m.restarts, 1);
}

static void spawn_failures_give_up_at_the_intensity_limit(void** state) {
  fx_t* f = *state;
  f->cfg.max_restarts = 1;
  ms_machine_free(&f->m);
  init_machine(f);
  to_backoff(f); /* one crash */
  feed_type(f, MS_EV_TIMEOUT);
  ms_event_t e = ev_(f, MS_EV_SPAWN_FAILED);
  e.spawn_failed.code = 126;
  ms_actions_t* out = feed(f, &e);
  assert_non_null(logged(out, MS_LOG_SPAWN_GIVEUP));
  assert_int_equal(find(out, MS_ACT_EXIT, 0)->code, 126);
}

static void crash_loop_backs_off_then_gives_up(void** state) {
  fx_t* f = *state;
  to_running(f);
  uint64_t expect = MS_BACKOFF_BASE_NS;
  for (int i = 0; i < 5; i++) {
    ms_actions_t* out = exit_ev(f, 3, 0);
    const ms_log_t* l = logged(out, MS_LOG_CRASH);
    assert_int_equal(l->delay_ns, (int64_t)expect);
    assert_int_equal(l->status, 3);
    expect *= 2;
    feed_type(f, MS_EV_TIMEOUT);
    spawned(f);
    later(f, MS(100));
  }
  ms_actions_t* out = exit_ev(f, 3, 0);
  assert_int_equal(logged(out, MS_LOG_CRASH)->delay_ns, -1);
  assert_int_equal(logged(out, MS_LOG_GIVEUP)->code, 3);
  assert_int_equal(find(out, MS_ACT_EXIT, 0)->code, 3);
}

/* The EXIT's oom_kill flag reaches the crash line; the next crash of a
 * fresh life without it says nothing of the OOM killer. */
static void crash_carries_the_oom_kill_flag(void** state) {
  fx_t* f = *state;
  to_running(f);
  ms_event_t e = ev_(f, MS_EV_EXIT);
  e.exit.term_signal = SIGKILL;
  e.exit.oom_kill = 1;
  ms_actions_t* out = feed(f, &e);
  const ms_log_t* l = logged(out, MS_LOG_CRASH);
  assert_non_null(l);
  assert_int_equal(l->term_signal, SIGKILL);
  assert_int_equal(l->oom_kill, 1);
  feed_type(f, MS_EV_TIMEOUT);
  spawned(f);
  later(f, MS(100));
  out = exit_ev(f, 0, SIGKILL);
  l = logged(out, MS_LOG_CRASH);
  assert_non_null(l);
  assert_int_equal(l->oom_kill, 0);
}

static void clean_exit_on_failure_ends_memsup_with_zero(void** state) {
  fx_t* f = *state;
  to_running(f);
  ms_actions_t* out = exit_ev(f, 0, 0);
  assert_non_null(logged(out, MS_LOG_EXIT));
  assert_int_equal(find(out, MS_ACT_EXIT, 0)->code, 0);
}

static void clean_exit_under_restart_always_is_a_crash(void** state) {
  fx_t* f = *state;
  f->cfg.restart = MS_RESTART_ALWAYS;
  to_running(f);
  ms_actions_t* out = exit_ev(f, 0, 0);
  assert_non_null(logged(out, MS_LOG_CRASH));
  assert_int_equal(f->m.state, MS_ST_BACKOFF);
}

static void healthy_worker_resets_the_backoff(void** state) {
  fx_t* f = *state;
  to_running(f);
  exit_ev(f, 1, 0);
  feed_type(f, MS_EV_TIMEOUT);
  spawned(f);
  later(f, MS_HEALTHY_NS);
  ms_actions_t* out = exit_ev(f, 1, 0);
  assert_int_equal(logged(out, MS_LOG_CRASH)->delay_ns, (int64_t)MS_BACKOFF_BASE_NS);
}

static void stop_while_running_signals_the_group_then_sigkill_after_grace(void** state) {
  fx_t* f = *state;
  to_running(f);
  ms_actions_t* out = sig_ev(f, MS_EV_STOP, SIGTERM);
  assert_true(signalled(out, SIGTERM));
  assert_true(signalled(out, SIGCONT));
  assert_int_equal(f->m.state, MS_ST_STOPPING);
  out = feed_type(f, MS_EV_TIMEOUT);
  assert_non_null(logged(out, MS_LOG_KILL));
  assert_true(signalled(out, SIGKILL));
  out = exit_ev(f, 0, SIGKILL);
  assert_non_null(logged(out, MS_LOG_STOPPED));
  assert_int_equal(find(out, MS_ACT_EXIT, 0)->code, 128 + SIGKILL);
}

static void forwarded_signals_reach_the_worker_only(void** state) {
  fx_t* f = *state;
  to_running(f);
  ms_actions_t* out = sig_ev(f, MS_EV_FORWARD, SIGHUP);
  assert_int_equal(find(out, MS_ACT_SIGNAL_WORKER, 0)->sig, SIGHUP);
  assert_int_equal(count(out, MS_ACT_SIGNAL_GROUP), 0);
}

static void eof_during_save_is_save_failed(void** state) {
  fx_t* f = *state;
  to_saving(f);
  evidence(f);
  ms_actions_t* out = feed_type(f, MS_EV_EOF);
  assert_string_equal(f->m.rs.outcome, "save-failed");
  assert_true(signalled(out, SIGTERM));
}

static void save_failed_message_is_save_failed(void** state) {
  fx_t* f = *state;
  to_saving(f);
  evidence(f);
  ms_event_t e = ev_(f, MS_EV_SAVE_FAILED);
  e.save_failed.seq = f->m.rs.seq + 1; /* not the request's: ignored */
  assert_int_equal(feed(f, &e)->n, 0);
  e.save_failed.seq = f->m.rs.seq;
  strcpy(e.save_failed.text, "disk full");
  ms_actions_t* out = feed(f, &e);
  assert_string_equal(logged(out, MS_LOG_SAVE_FAILED)->text, "disk full");
  assert_string_equal(f->m.rs.outcome, "save-failed");
  assert_int_equal(f->m.state, MS_ST_STOPPING);
}

static void unsendable_save_request_is_save_failed(void** state) {
  fx_t* f = *state;
  to_saving(f);
  ms_event_t e = ev_(f, MS_EV_SEND_FAILED);
  e.send_failed.what = MS_SEND_SAVE;
  e.send_failed.err = -32;
  ms_actions_t* out = feed(f, &e);
  assert_non_null(logged(out, MS_LOG_SAVE_UNSENT));
  assert_string_equal(f->m.rs.outcome, "save-failed");
  assert_int_equal(f->m.state, MS_ST_COLLECTING);
}

/* The worker exits while its state is being checked: the next worker is
 * spawned only once the check has answered, so it gets the state. */
static void exit_while_verifying_waits_for_the_check(void** state) {
  fx_t* f = *state;
  to_verifying(f);
  evidence(f);
  ms_actions_t* out = exit_ev(f, 0, 0);
  assert_null(find(out, MS_ACT_SPAWN, 0));
  assert_int_equal(f->m.state, MS_ST_VERIFYING);
  assert_int_equal(feed_type(f, MS_EV_TICK)->n, 0); /* nothing to sample */
  out = state_msg(f, MS_EV_STATE_OK, f->m.rs.seq, 41, 0);
  assert_true(at(out, MS_ACT_KEEP_STATE) < at(out, MS_ACT_SPAWN));
  assert_string_equal(f->m.rs.outcome, "restored");
  assert_false(signalled(out, SIGTERM));
}

static void checkpoint_of_a_worker_without_sdk_is_dropped(void** state) {
  fx_t* f = *state;
  to_running(f);
  ms_actions_t* out = state_msg(f, MS_EV_STATE, 0, 45, 0);
  assert_int_equal(find(out, MS_ACT_CLOSE_FD, 0)->state->fd, 45);
}

static void hello_of_another_version_is_not_the_sdk(void** state) {
  fx_t* f = *state;
  to_running(f);
  ms_event_t e = ev_(f, MS_EV_HELLO);
  e.hello.version = MEMSUP_WIRE_VERSION + 1;
  ms_actions_t* out = feed(f, &e);
  assert_non_null(logged(out, MS_LOG_BAD_VERSION));
  assert_null(find(out, MS_ACT_SEND_WELCOME, 0));
  assert_int_equal(f->m.w.sdk, 0);
}

static void heap_metric_falls_back_after_the_handshake_timeout(void** state) {
  fx_t* f = *state;
  f->cfg.metric = MS_METRIC_HEAP;
  feed_type(f, MS_EV_START);
  spawned(f);
  later(f, S(1));
  assert_int_equal(feed_type(f, MS_EV_TICK)->n, 0); /* waits for a hello */
  later(f, S(5));
  ms_actions_t* out = feed_type(f, MS_EV_TICK);
  assert_non_null(logged(out, MS_LOG_HEAP_FALLBACK));
  assert_non_null(find(out, MS_ACT_MEASURE, 0));
  out = feed_type(f, MS_EV_TICK);
  assert_null(logged(out, MS_LOG_HEAP_FALLBACK)); /* once */
  sample(f, 120 * MIB, 1);
  assert_int_equal(f->m.state, MS_ST_COLLECTING);
  assert_int_equal(f->m.rs.metric, MS_METRIC_FOOTPRINT);
}

static void closed_channel_is_reported_once_if_the_worker_runs_on(void** state) {
  fx_t* f = *state;
  to_running(f);
  hello(f);
  feed_type(f, MS_EV_EOF);
  later(f, MS_CHANNEL_EOF_NS);
  ms_actions_t* out = feed_type(f, MS_EV_TICK);
  assert_non_null(logged(out, MS_LOG_CHANNEL_CLOSED));
  out = feed_type(f, MS_EV_TICK);
  assert_null(logged(out, MS_LOG_CHANNEL_CLOSED));
}

static ms_actions_t* stats(fx_t* f, uint64_t allocated) {
  ms_event_t e = ev_(f, MS_EV_STATS);
  e.stats.has_heap = 1;
  e.stats.allocated = allocated;
  e.stats.resident = allocated + MIB;
  return feed(f, &e);
}

static ms_actions_t* purged(fx_t* f, uint64_t seq) {
  ms_event_t e = ev_(f, MS_EV_PURGED);
  e.purged.seq = seq;
  e.purged.resident_before = 70 * MIB;
  e.purged.resident_after = 30 * MIB;
  return feed(f, &e);
}

static void soft_limit_asks_for_a_purge_and_logs_its_answer(void** state) {
  fx_t* f = *state;
  f->cfg.soft_limit = 50 * MIB;
  to_running(f);
  hello(f);
  feed_type(f, MS_EV_TICK);
  assert_int_equal(find(&f->out, MS_ACT_MEASURE, 0)->near, 50 * MIB);
  /* An estimate: the "before" is read first, the request goes after. */
  ms_actions_t* out = sample(f, 60 * MIB, 0);
  assert_null(find(out, MS_ACT_SEND_PURGE, 0));
  assert_int_equal(find(out, MS_ACT_MEASURE, 0)->purpose, MS_FOR_PURGE_BEFORE);
  out = measured(f, MS_FOR_PURGE_BEFORE, 61 * MIB);
  uint64_t seq = find(out, MS_ACT_SEND_PURGE, 0)->seq;
  assert_int_equal(f->m.w.purge_before.footprint, 61 * MIB);
  out = sample(f, 60 * MIB, 1);
  assert_null(find(out, MS_ACT_SEND_PURGE, 0)); /* one at a time */
  out = purged(f, seq);
  assert_int_equal(find(out, MS_ACT_MEASURE, 0)->purpose, MS_FOR_PURGE_AFTER);
  out = measured(f, MS_FOR_PURGE_AFTER, 31 * MIB);
  const ms_log_t* l = logged(out, MS_LOG_PURGE);
  assert_int_equal(l->mem->footprint, 31 * MIB);
  assert_int_equal(l->hard, 0);
  assert_int_equal(f->m.w.purge_before.footprint, 61 * MIB);
  assert_int_equal(l->purge_resident_after, 30 * MIB);
  later(f, S(1));
  out = sample(f, 60 * MIB, 1);
  assert_null(find(out, MS_ACT_SEND_PURGE, 0)); /* at most every 10 s */
  later(f, MS_PURGE_MIN_GAP_NS);
  out = sample(f, 60 * MIB, 1);
  /* A full read is its own "before": the request goes at once. */
  assert_non_null(find(out, MS_ACT_SEND_PURGE, 0));
  assert_int_equal(f->m.w.purge_before.footprint, 60 * MIB);
}

static void soft_limit_does_not_purge_when_heap_is_the_footprint(void** state) {
  fx_t* f = *state;
  f->cfg.soft_limit = 50 * MIB;
  to_running(f);
  hello(f);
  stats(f, 58 * MIB); /* 60 MiB footprint: 2 MiB not in use */
  ms_actions_t* out = sample(f, 60 * MIB, 1);
  assert_null(find(out, MS_ACT_SEND_PURGE, 0));
  assert_null(find(out, MS_ACT_MEASURE, 0));
  /* Once the heap is well below the footprint, the purge is useful. */
  stats(f, 20 * MIB);
  later(f, MS(50));
  out = sample(f, 60 * MIB, 1);
  assert_non_null(find(out, MS_ACT_SEND_PURGE, 0));
}

static void purge_gap_does_not_carry_over_to_a_new_worker(void** state) {
  fx_t* f = *state;
  f->cfg.soft_limit = 50 * MIB;
  to_running(f);
  hello(f);
  assert_non_null(find(sample(f, 60 * MIB, 1), MS_ACT_SEND_PURGE, 0));
  later(f, MS(100));
  exit_ev(f, 1, 0); /* crash: a new worker after the backoff */
  feed_type(f, MS_EV_TIMEOUT);
  spawned(f);
  hello(f);
  later(f, MS(100)); /* well within MS_PURGE_MIN_GAP_NS of the last purge */
  assert_non_null(find(sample(f, 60 * MIB, 1), MS_ACT_SEND_PURGE, 0));
}

static void purge_before_read_of_a_gone_worker_sends_nothing(void** state) {
  fx_t* f = *state;
  f->cfg.soft_limit = 50 * MIB;
  to_running(f);
  hello(f);
  sample(f, 60 * MIB, 0);
  ms_event_t e = ev_(f, MS_EV_GONE);
  e.sample.purpose = MS_FOR_PURGE_BEFORE;
  feed(f, &e);
  assert_int_equal(f->m.w.purge_seq, 0);
  /* A late answer to the read does not send the request either. */
  assert_null(find(measured(f, MS_FOR_PURGE_BEFORE, 61 * MIB), MS_ACT_SEND_PURGE, 0));
}

/* An SDK worker over the hard limit whose allocator holds the memory. */
static uint64_t retaining_worker_over_the_limit(fx_t* f) {
  to_running(f);
  hello(f);
  stats(f, 10 * MIB);
  ms_actions_t* out = sample(f, 120 * MIB, 1);
  assert_int_equal(f->m.state, MS_ST_RUNNING); /* no restart yet */
  assert_null(find(out, MS_ACT_SEND_SAVE, 0));
  const ms_action_t* a = find(out, MS_ACT_SEND_PURGE, 0);
  assert_non_null(a);
  return a->seq;
}

static void hard_limit_purges_retention_and_runs_on_when_it_helped(void** state) {
  fx_t* f = *state;
  uint64_t seq = retaining_worker_over_the_limit(f);
  later(f, MS(50));
  /* Ticks while the purge runs do not restart. */
  assert_null(find(sample(f, 120 * MIB, 1), MS_ACT_SEND_SAVE, 0));
  purged(f, seq);
  ms_actions_t* out = measured(f, MS_FOR_PURGE_AFTER, 30 * MIB);
  const ms_log_t* l = logged(out, MS_LOG_PURGE);
  assert_non_null(l);
  assert_int_equal(l->hard, 1);
  assert_null(find(out, MS_ACT_SEND_SAVE, 0));
  assert_int_equal(f->m.state, MS_ST_RUNNING);
  later(f, MS(50));
  out = sample(f, 30 * MIB, 1);
  assert_int_equal(f->m.state, MS_ST_RUNNING);
  assert_null(logged(out, MS_LOG_FILTERED)); /* purged, not filtered */
}

static void hard_limit_restarts_when_the_purge_left_it_over(void** state) {
  fx_t* f = *state;
  uint64_t seq = retaining_worker_over_the_limit(f);
  later(f, MS(50));
  purged(f, seq);
  ms_actions_t* out = measured(f, MS_FOR_PURGE_AFTER, 110 * MIB);
  /* The purge line comes before the restart begins. */
  assert_true(at(out, MS_ACT_LOG) >= 0);
  assert_true(at(out, MS_ACT_LOG) < at(out, MS_ACT_SEND_SAVE));
  assert_int_equal(f->m.state, MS_ST_SAVING);
  assert_int_equal(f->m.rs.before.footprint, 110 * MIB);
}

/* A purge is answered in milliseconds: one unanswered for
 * MS_HARD_PURGE_WAIT_NS (1 s, under the 10 s --grace) is given up on. */
static void hard_limit_purge_unanswered_within_grace_restarts(void** state) {
  fx_t* f = *state;
  retaining_worker_over_the_limit(f);
  later(f, MS_HARD_PURGE_WAIT_NS - MS(1));
  assert_int_equal((sample(f, 120 * MIB, 1), f->m.state), MS_ST_RUNNING);
  later(f, MS(1));
  assert_non_null(find(sample(f, 120 * MIB, 1), MS_ACT_SEND_SAVE, 0));
  assert_int_equal(f->m.state, MS_ST_SAVING);
}

/* A worker that grows past the save ceiling (limit + 64 MiB here) while
 * its purge is pending is growing, not purging: restarted at once. */
static void hard_limit_purge_pending_past_the_ceiling_restarts(void** state) {
  fx_t* f = *state;
  retaining_worker_over_the_limit(f);
  later(f, MS(50));
  assert_int_equal((sample(f, 160 * MIB, 1), f->m.state), MS_ST_RUNNING);
  later(f, MS(50));
  assert_non_null(find(sample(f, 170 * MIB, 1), MS_ACT_SEND_SAVE, 0));
  assert_int_equal(f->m.state, MS_ST_SAVING);
}

static void hard_limit_purge_that_cannot_be_sent_restarts(void** state) {
  fx_t* f = *state;
  retaining_worker_over_the_limit(f);
  ms_event_t e = ev_(f, MS_EV_SEND_FAILED);
  e.send_failed.what = MS_SEND_PURGE;
  e.send_failed.err = -32;
  feed(f, &e);
  later(f, MS(50));
  assert_non_null(find(sample(f, 120 * MIB, 1), MS_ACT_SEND_SAVE, 0));
}

static void hard_limit_restarts_a_leak_without_a_purge(void** state) {
  fx_t* f = *state;
  to_running(f);
  hello(f);
  stats(f, 110 * MIB); /* heap-in-use is the footprint: a purge frees nothing */
  ms_actions_t* out = sample(f, 120 * MIB, 1);
  assert_null(find(out, MS_ACT_SEND_PURGE, 0));
  assert_non_null(find(out, MS_ACT_SEND_SAVE, 0));
}

static void crossing_shorter_than_for_is_logged_once_as_filtered(void** state) {
  fx_t* f = *state;
  f->cfg.for_ns = S(1);
  to_running(f);
  sample(f, MIB, 1);
  later(f, MS(100));
  assert_null(logged(sample(f, 130 * MIB, 1), MS_LOG_FILTERED));
  later(f, MS(300));
  sample(f, 150 * MIB, 1);
  later(f, MS(200));
  sample(f, 120 * MIB, 1);
  later(f, MS(100));
  ms_actions_t* out = sample(f, MIB, 1);
  const ms_log_t* l = logged(out, MS_LOG_FILTERED);
  assert_non_null(l);
  assert_int_equal(l->peak, 150 * MIB);
  assert_int_equal(l->lasted_ns, MS(600));
  assert_int_equal(f->m.state, MS_ST_RUNNING);
  later(f, MS(100));
  assert_null(logged(sample(f, MIB, 1), MS_LOG_FILTERED)); /* once */
  /* An estimate over the limit is no crossing. */
  later(f, MS(100));
  sample(f, 130 * MIB, 0);
  later(f, MS(100));
  assert_null(logged(sample(f, MIB, 1), MS_LOG_FILTERED));
}

static void sample_line_carries_the_last_full_read(void** state) {
  fx_t* f = *state;
  f->cfg.sample_log_path = "s.jsonl";
  to_running(f);
  const ms_log_t* l = logged(sample(f, MIB, 0), MS_LOG_SAMPLE);
  assert_null(l->last_full); /* nothing measured yet */
  later(f, MS(200));
  ms_event_t e = ev_(f, MS_EV_SAMPLE);
  e.sample.purpose = MS_FOR_TICK;
  e.sample.mem = mem(MIB, 1);
  e.sample.mem.lazyfree = 7 * MIB;
  feed(f, &e);
  later(f, S(1));
  l = logged(sample(f, MIB, 0), MS_LOG_SAMPLE);
  assert_non_null(l->last_full);
  assert_int_equal(l->last_full->lazyfree, 7 * MIB);
  assert_int_equal(l->last_full_age_ns, S(1));
}

static ms_actions_t* early_evidence(fx_t* f, unsigned gen, uint64_t anon) {
  ms_event_t e = ev_(f, MS_EV_EVIDENCE);
  e.evidence.id = gen;
  e.evidence.early = 1;
  e.evidence.n = 1;
  e.evidence.rows[0].anonymous = anon;
  return feed(f, &e);
}

static const ms_action_t* early_read(const ms_actions_t* out) {
  for (size_t i = 0; i < out->n; i++)
    if (out->a[i].type == MS_ACT_COLLECT_EVIDENCE && out->a[i].early)
      return &out->a[i];
  return NULL;
}

/* The early snapshot of an SDK worker: its first full sample after
 * "ready", once; the restart's record carries it. */
static void early_snapshot_after_ready_is_kept_for_the_restart(void** state) {
  fx_t* f = *state;
  to_running(f);
  hello(f);
  assert_null(early_read(sample(f, 10 * MIB, 1))); /* not ready yet */
  feed_type(f, MS_EV_READY);
  later(f, MS(50));
  assert_null(early_read(sample(f, 10 * MIB, 0))); /* an estimate */
  later(f, MS(50));
  const ms_action_t* a = early_read(sample(f, 10 * MIB, 1));
  assert_non_null(a);
  assert_int_equal(a->id, f->m.w.gen);
  assert_int_equal(f->m.state, MS_ST_RUNNING);
  later(f, MS(50));
  assert_null(early_read(sample(f, 10 * MIB, 1))); /* once per life */
  early_evidence(f, f->m.w.gen + 7, 3 * MIB); /* not this worker's */
  assert_int_equal(f->m.w.nearly, -1);
  early_evidence(f, f->m.w.gen, 3 * MIB);
  assert_int_equal(f->m.w.nearly, 1);
  assert_false(f->m.rs.active); /* not a restart's evidence */
  sample(f, 120 * MIB, 1);
  assert_int_equal(f->m.state, MS_ST_SAVING);
  assert_int_equal(f->m.rs.nearly, 1);
  assert_int_equal(f->m.rs.early_rows[0].anonymous, 3 * MIB);
}

/* Without the SDK: MS_EARLY_SNAPSHOT_NS into the life; none when the
 * crossing comes first (the restart's own read is under way). */
static void early_snapshot_without_sdk_waits_a_second(void** state) {
  fx_t* f = *state;
  feed_type(f, MS_EV_START);
  spawned(f);
  later(f, MS(500));
  assert_null(early_read(sample(f, 10 * MIB, 1)));
  later(f, MS(500));
  assert_non_null(early_read(sample(f, 10 * MIB, 1)));
  /* A new worker that crosses at its first eligible sample. */
  exit_ev(f, 1, 0);
  feed_type(f, MS_EV_TIMEOUT);
  spawned(f);
  later(f, S(2));
  ms_actions_t* out = sample(f, 120 * MIB, 1);
  assert_int_equal(f->m.state, MS_ST_COLLECTING);
  assert_null(early_read(out));
  assert_int_equal(f->m.rs.nearly, -1);
}

static void dry_run_logs_once_per_episode_and_never_stops(void** state) {
  fx_t* f = *state;
  f->cfg.dry_run = 1;
  to_running(f);
  ms_actions_t* out = sample(f, 120 * MIB, 0);
  assert_int_equal(out->n, 0); /* an estimate over: not yet */
  out = sample(f, 120 * MIB, 1);
  assert_int_equal(count(out, MS_ACT_SIGNAL_GROUP), 0);
  assert_non_null(find(out, MS_ACT_COLLECT_EVIDENCE, 0));
  assert_int_equal(f->m.state, MS_ST_RUNNING);
  out = sample(f, 130 * MIB, 1);
  assert_null(find(out, MS_ACT_COLLECT_EVIDENCE, 0));
  out = evidence(f);
  assert_non_null(logged(out, MS_LOG_WOULD_RESTART));
  assert_false(f->m.rs.active);
  sample(f, 10 * MIB, 1); /* the episode ends */
  out = sample(f, 120 * MIB, 1);
  assert_non_null(find(out, MS_ACT_COLLECT_EVIDENCE, 0));
  assert_int_equal(f->m.restarts, 0);
}

static void watch_ends_when_the_process_is_gone_and_never_signals(void** state) {
  fx_t* f = *state;
  f->cfg.watch_pid = 4242;
  f->cfg.dry_run = 1;
  ms_actions_t* out = feed_type(f, MS_EV_START);
  assert_non_null(find(out, MS_ACT_ADOPT, 0));
  ms_event_t e = ev_(f, MS_EV_SPAWNED);
  e.spawned.pid = 4242;
  out = feed(f, &e);
  assert_non_null(logged(out, MS_LOG_WATCH));
  out = sig_ev(f, MS_EV_FORWARD, SIGHUP);
  assert_int_equal(out->n, 0);
  e = ev_(f, MS_EV_GONE);
  e.sample.purpose = MS_FOR_TICK;
  out = feed(f, &e);
  assert_non_null(logged(out, MS_LOG_WATCH_END));
  assert_int_equal(find(out, MS_ACT_EXIT, 0)->code, 0);
}

static void stop_ends_a_watch_without_signals(void** state) {
  fx_t* f = *state;
  f->cfg.watch_pid = 4242;
  feed_type(f, MS_EV_START);
  spawned(f);
  ms_actions_t* out = sig_ev(f, MS_EV_STOP, SIGTERM);
  assert_int_equal(count(out, MS_ACT_SIGNAL_GROUP), 0);
  assert_int_equal(find(out, MS_ACT_EXIT, 0)->code, 0);
}

static void sample_log_lines_are_paced(void** state) {
  fx_t* f = *state;
  f->cfg.sample_log_path = "s.jsonl";
  to_running(f);
  assert_non_null(logged(sample(f, MIB, 0), MS_LOG_SAMPLE));
  later(f, MS(500));
  assert_null(logged(sample(f, MIB, 0), MS_LOG_SAMPLE));
  later(f, MS(500));
  assert_non_null(logged(sample(f, MIB, 0), MS_LOG_SAMPLE));
}

static void late_evidence_of_a_logged_restart_is_dropped(void** state) {
  fx_t* f = *state;
  to_saving(f);
  later(f, MS(10));
  exit_ev(f, 0, SIGKILL); /* before the evidence came */
  spawned(f);
  later(f, S(6));
  sample(f, MIB, 1); /* logged without rows */
  assert_int_equal(f->m.rs.nrows, 0);
  ms_event_t e = ev_(f, MS_EV_EVIDENCE);
  e.evidence.id = f->m.rs.id;
  e.evidence.n = 1;
  assert_int_equal(feed(f, &e)->n, 0);
  assert_int_equal(f->m.rs.nrows, 0);
}

/* ---- the random walk ------------------------------------------------------------ */

/* The glue's side, simulated: answers what the machine asks, and adds what
 * the world does (messages and exits while a worker lives, signals,
 * timeouts while the timer runs). */
typedef struct {
  ms_event_t q[64];
  int n;
  int worker;     /* a worker process exists (spawned, not yet exited) */
  int has_handle; /* its handles are open (until CLOSE_WORKER) */
  int timer;
  int fds_open;   /* descriptors handed to the machine, not yet taken */
  unsigned begun, logged, spawns;
} sim_t;

static unsigned rnd(unsigned* s) {
  *s = *s * 1103515245u + 12345u;
  return (*s >> 16) & 0x7fff;
}

static void sim_push(sim_t* sm, const ms_event_t* e) {
  assert_true(sm->n < 64);
  sm->q[sm->n++] = *e;
}

static void sim_actions(fx_t* f, sim_t* sm, unsigned* seed) {
  for (size_t i = 0; i < f->out.n; i++) {
    const ms_action_t* a = &f->out.a[i];
    ms_event_t e = ev_(f, MS_EV_TICK);
    switch (a->type) {
      case MS_ACT_SPAWN:
      case MS_ACT_ADOPT:
        if (rnd(seed) % 8 == 0) {
          e.type = MS_EV_SPAWN_FAILED;
          e.spawn_failed.code = 111;
        } else {
          e.type = MS_EV_SPAWNED;
          e.spawned.pid = f->next_pid++;
          sm->worker = sm->has_handle = 1;
          sm->spawns++;
        }
        sim_push(sm, &e);
        break;
      case MS_ACT_MEASURE:
        e.type = a->purpose == MS_FOR_TICK ? MS_EV_SAMPLE : MS_EV_MEASURED;
        e.sample.purpose = a->purpose;
        e.sample.mem = mem((rnd(seed) % 200) * MIB, rnd(seed) % 2);
        if (!sm->worker) e.type = MS_EV_GONE;
        sim_push(sm, &e);
        break;
      case MS_ACT_COLLECT_EVIDENCE:
        e.type = MS_EV_EVIDENCE;
        e.evidence.id = a->id;
        e.evidence.early = a->early;
        e.evidence.n = (int)(rnd(seed) % 3);
        sim_push(sm, &e);
        break;
      case MS_ACT_VERIFY:
        e.type = rnd(seed) % 4 ? MS_EV_STATE_OK : MS_EV_STATE_BAD;
        e.state = *a->state;
        e.state.err = e.type == MS_EV_STATE_BAD ? -74 : 0;
        sim_push(sm, &e);
        break;
      case MS_ACT_KEEP_STATE:
      case MS_ACT_CLOSE_FD:
        sm->fds_open--;
        break;
      case MS_ACT_TIMER_ARM: sm->timer = 1; break;
      case MS_ACT_TIMER_CANCEL: sm->timer = 0; break;
      case MS_ACT_CLOSE_WORKER: sm->has_handle = 0; break;
      case MS_ACT_SEND_PROF: break; /* not answered */
      case MS_ACT_SEND_SAVE:
      case MS_ACT_SEND_PURGE:
      case MS_ACT_SEND_WELCOME:
        if (sm->has_handle && rnd(seed) % 10 == 0) {
          e.type = MS_EV_SEND_FAILED;
          e.send_failed.what = a->type == MS_ACT_SEND_SAVE    ? MS_SEND_SAVE
                               : a->type == MS_ACT_SEND_PURGE ? MS_SEND_PURGE
                                                              : MS_SEND_WELCOME;
          e.send_failed.err = -32;
          sim_push(sm, &e);
        }
        break;
      case MS_ACT_LOG:
        if (a->log.kind == MS_LOG_RESTART) sm->logged++;
        break;
      case MS_ACT_EXIT:
        if (sm->worker) sm->worker = 0; /* shut down: SIGKILL, closed */
        sm->has_handle = 0;
        break;
      case MS_ACT_SIGNAL_GROUP:
      case MS_ACT_SIGNAL_WORKER:
        break;
    }
  }
}

static void step_sim(fx_t* f, sim_t* sm, const ms_event_t* e, unsigned* seed) {
  unsigned before = f->m.next_id;
  if (e->type == MS_EV_STATE) sm->fds_open++; /* VERIFY passes it on */
  if (e->type == MS_EV_TIMEOUT) sm->timer = 0;
  feed(f, e);
  if (f->m.next_id != before && !f->m.rs.dry) sm->begun++;
  sim_actions(f, sm, seed);
}

/* One event the world may raise now. */
static int world_event(fx_t* f, sim_t* sm, unsigned* seed, ms_event_t* e) {
  *e = ev_(f, MS_EV_TICK);
  switch (rnd(seed) % 12) {
    case 0: case 1: case 2: return 1; /* tick */
    case 3:
      if (!sm->timer) return 0;
      e->type = MS_EV_TIMEOUT;
      return 1;
    case 4:
      if (rnd(seed) % 8) return 0;
      e->type = rnd(seed) % 4 ? MS_EV_FORWARD : MS_EV_STOP;
      e->signal.sig = e->type == MS_EV_STOP ? SIGTERM : SIGHUP;
      return 1;
    case 5:
      if (!sm->worker || rnd(seed) % 10) return 0;
      e->type = MS_EV_EXIT;
      e->exit.status = rnd(seed) % 2;
      sm->worker = 0;
      return 1;
    default:
      break;
  }
  if (!sm->has_handle || !sm->worker) return 0;
  switch (rnd(seed) % 7) {
    case 0:
      e->type = MS_EV_HELLO;
      e->hello.version = MEMSUP_WIRE_VERSION;
      e->hello.prof = (int)(rnd(seed) % 2);
      return 1;
    case 1:
      e->type = MS_EV_STATS;
      e->stats.has_heap = 1;
      e->stats.allocated = (rnd(seed) % 200) * MIB;
      return 1;
    case 2:
      e->type = MS_EV_STATE;
      e->state.fd = 10 + (int)(rnd(seed) % 100);
      e->state.seq = rnd(seed) % 2 ? f->m.rs.seq : 0;
      strcpy(e->state.kind, "save");
      return 1;
    case 3:
      e->type = MS_EV_SAVE_FAILED;
      e->save_failed.seq = f->m.rs.seq;
      return 1;
    case 4:
      e->type = MS_EV_READY;
      strcpy(e->ready.text, "none");
      return 1;
    case 5:
      e->type = MS_EV_PURGED;
      e->purged.seq = f->m.w.purge_seq;
      return 1;
    default:
      e->type = MS_EV_EOF;
      return 1;
  }
}

static void random_walks_never_hit_an_impossible_pair_and_log_every_restart(
    void** state) {
  fx_t* proto = *state;
  for (unsigned run = 0; run < 300; run++) {
    fx_t* f = calloc(1, sizeof(*f));
    memcpy(f, proto, sizeof(*f));
    f->cfg.argv = f->argv;
    f->cfg.limit = 120 * MIB;
    f->cfg.soft_limit = run % 3 == 0 ? 60 * MIB : 0;
    f->cfg.metric = run % 4 == 1 ? MS_METRIC_HEAP : run % 4 == 2 ? MS_METRIC_RSS
                                                                  : MS_METRIC_FOOTPRINT;
    f->cfg.max_restarts = 50;
    f->cfg.restart = run % 2 ? MS_RESTART_ALWAYS : MS_RESTART_ON_FAILURE;
    f->cfg.sample_log_path = run % 2 ? "s" : NULL;
    assert_int_equal(init_machine(f), 0);
    sim_t sm;
    memset(&sm, 0, sizeof(sm));
    unsigned seed = run * 7919 + 1;
    ms_event_t e = ev_(f, MS_EV_START);
    step_sim(f, &sm, &e, &seed);
    for (int i = 0; i < 4000 && f->m.state != MS_ST_DONE; i++) {
      later(f, MS(rnd(&seed) % 300));
      if (sm.n) {
        ms_event_t q = sm.q[0];
        memmove(sm.q, sm.q + 1, sizeof(sm.q[0]) * (size_t)--sm.n);
        q.now = f->now;
        step_sim(f, &sm, &q, &seed);
        continue;
      }
      if (!world_event(f, &sm, &seed, &e)) continue;
      step_sim(f, &sm, &e, &seed);
      if (f->m.unexpected)
        fail_msg("run %u: %s in %s is unexpected", run, ms_event_name(e.type),
                 ms_state_name(f->m.state));
    }
    /* Wind down: stop memsup, let the world answer until it ends. */
    e = ev_(f, MS_EV_STOP);
    e.signal.sig = SIGTERM;
    step_sim(f, &sm, &e, &seed);
    for (int i = 0; i < 200 && (f->m.state != MS_ST_DONE || sm.n); i++) {
      later(f, MS(100));
      if (sm.n) {
        ms_event_t q = sm.q[0];
        memmove(sm.q, sm.q + 1, sizeof(sm.q[0]) * (size_t)--sm.n);
        q.now = f->now;
        step_sim(f, &sm, &q, &seed);
      } else if (sm.worker) {
        e = ev_(f, MS_EV_EXIT);
        e.exit.term_signal = SIGTERM;
        sm.worker = 0;
        step_sim(f, &sm, &e, &seed);
      } else if (sm.timer) {
        e = ev_(f, MS_EV_TIMEOUT);
        step_sim(f, &sm, &e, &seed);
      }
    }
    if (f->m.state != MS_ST_DONE)
      fail_msg("run %u: stuck in %s", run, ms_state_name(f->m.state));
    if (f->m.unexpected) fail_msg("run %u: %u unexpected events", run, f->m.unexpected);
    if (sm.begun != sm.logged)
      fail_msg("run %u: %u restarts began, %u logged", run, sm.begun, sm.logged);
    if (sm.fds_open != 0) fail_msg("run %u: %d descriptors not taken", run, sm.fds_open);
    ms_machine_free(&f->m);
    free(f);
  }
}

/* (RUNNING, HELLO with prof) then (RUNNING, READY): one start-of-life
 * profile asked of that worker, once; (RUNNING, SAMPLE over the limit):
 * the end-of-life profile asked before the save; the new worker's ready
 * asks its own start profile.  A worker whose hello did not say prof is
 * never asked (the other restart tests: no SEND_PROF at all). */
static void profiling_worker_is_asked_for_profiles_at_ready_and_restart(
    void** state) {
  fx_t* f = *state;
  to_running(f);
  ms_event_t h = ev_(f, MS_EV_HELLO);
  h.hello.version = MEMSUP_WIRE_VERSION;
  h.hello.prof = 1;
  strcpy(h.hello.allocator, "jemalloc");
  ms_actions_t* out = feed(f, &h);
  assert_null(find(out, MS_ACT_SEND_PROF, 0));
  unsigned gen = f->m.w.gen;
  out = feed_type(f, MS_EV_READY);
  const ms_action_t* a = find(out, MS_ACT_SEND_PROF, 0);
  assert_non_null(a);
  assert_int_equal(a->code, MS_PROF_START);
  assert_int_equal(a->gen, gen);
  out = feed_type(f, MS_EV_READY); /* a second ready asks nothing more */
  assert_null(find(out, MS_ACT_SEND_PROF, 0));
  later(f, S(1));
  out = sample(f, 120 * MIB, 1);
  assert_int_equal(f->m.state, MS_ST_SAVING);
  a = find(out, MS_ACT_SEND_PROF, 0);
  assert_non_null(a);
  assert_int_equal(a->code, MS_PROF_END);
  assert_int_equal(a->gen, gen);
  assert_true(at(out, MS_ACT_SEND_PROF) < at(out, MS_ACT_SEND_SAVE));
  assert_int_equal(f->m.rs.prof_start, 1);
  assert_int_equal(f->m.rs.prof_end, 1);
}

static void worker_without_prof_is_never_asked_for_a_profile(void** state) {
  fx_t* f = *state;
  to_running(f);
  hello(f);
  ms_actions_t* out = feed_type(f, MS_EV_READY);
  assert_null(find(out, MS_ACT_SEND_PROF, 0));
  later(f, S(1));
  out = sample(f, 120 * MIB, 1);
  assert_non_null(find(out, MS_ACT_SEND_SAVE, 0));
  assert_null(find(out, MS_ACT_SEND_PROF, 0));
  assert_int_equal(f->m.rs.prof_end, 0);
}

/* ---- the pool's gate and early restarts ------------------------------------- */

static void crossing_waits_while_another_slot_is_down(void** state) {
  fx_t* f = *state;
  to_running(f);
  sample(f, 50 * MIB, 1); /* the life's early snapshot is asked here */
  later(f, MS(50));
  f->m.pool_busy = 2;
  const ms_log_t* l = logged(sample(f, 120 * MIB, 1), MS_LOG_WAIT);
  assert_non_null(l);
  assert_int_equal(l->slot, 2);
  assert_int_equal(l->value, 120 * MIB);
  assert_int_equal(f->m.state, MS_ST_RUNNING);
  assert_int_equal(count(&f->out, MS_ACT_SIGNAL_GROUP), 0);
  assert_int_equal(count(&f->out, MS_ACT_COLLECT_EVIDENCE), 0);
  later(f, MS(500));
  assert_null(logged(sample(f, 125 * MIB, 1), MS_LOG_WAIT)); /* said once */
  assert_int_equal(f->m.state, MS_ST_RUNNING);
  later(f, MS(500));
  f->m.pool_busy = -1;
  sample(f, 130 * MIB, 1);
  assert_int_equal(f->m.state, MS_ST_COLLECTING);
  assert_true(f->m.rs.waited);
  assert_int_equal(f->m.rs.waited_for, 2);
  assert_true(f->m.rs.waited_s > 0.99 && f->m.rs.waited_s < 1.01);
  assert_false(f->m.rs.ceiling);
  assert_false(f->m.rs.early);
}

static void a_wait_that_ended_under_the_limit_is_forgotten(void** state) {
  fx_t* f = *state;
  to_running(f);
  f->m.pool_busy = 1;
  assert_non_null(logged(sample(f, 120 * MIB, 1), MS_LOG_WAIT));
  later(f, S(1));
  sample(f, 90 * MIB, 1); /* it freed memory while it waited */
  f->m.pool_busy = -1;
  later(f, S(5));
  sample(f, 110 * MIB, 1);
  assert_int_equal(f->m.state, MS_ST_COLLECTING);
  assert_false(f->m.rs.waited);
}

static void waiting_slot_goes_at_the_save_ceiling(void** state) {
  fx_t* f = *state;
  to_running(f);
  f->m.pool_busy = 0;
  assert_non_null(logged(sample(f, 120 * MIB, 1), MS_LOG_WAIT));
  later(f, MS(100));
  /* limit 100 MiB: the ceiling is 100 + 64 MiB (policy.h) */
  sample(f, 160 * MIB, 1);
  assert_int_equal(f->m.state, MS_ST_RUNNING);
  later(f, MS(100));
  sample(f, 170 * MIB, 1);
  assert_int_equal(f->m.state, MS_ST_COLLECTING);
  assert_true(f->m.rs.waited);
  assert_true(f->m.rs.ceiling);
  assert_int_equal(f->m.rs.waited_for, 0);
}

static const ms_actions_t* early(fx_t* f) {
  ms_event_t e = ev_(f, MS_EV_EARLY);
  e.early.fraction = 0.75;
  e.early.due_in_s = 1.5;
  e.early.next_slot = 3;
  e.early.next_due_in_s = 2.0;
  e.early.restart_s = 1.0;
  e.early.planned = 4;
  feed(f, &e);
  return &f->out;
}

static void early_request_restarts_a_running_worker_below_the_limit(void** state) {
  fx_t* f = *state;
  to_running(f);
  sample(f, 80 * MIB, 1);
  early(f);
  assert_int_equal(f->m.state, MS_ST_COLLECTING); /* no SDK: frozen, read */
  assert_true(signalled(&f->out, SIGSTOP));
  assert_true(f->m.rs.early);
  assert_int_equal(f->m.rs.value, 80 * MIB);
  assert_int_equal(f->m.rs.early_why.next_slot, 3);
  assert_int_equal(f->m.rs.early_why.planned, 4);
  assert_true(f->m.rs.over_for_s == 0);
}

static void early_request_is_refused_when_held_busy_or_not_running(void** state) {
  fx_t* f = *state;
  to_running(f);
  sample(f, 80 * MIB, 1);
  f->m.pool_busy = 1; /* another slot went down meanwhile */
  early(f);
  assert_int_equal(f->out.n, 0);
  assert_int_equal(f->m.state, MS_ST_RUNNING);
  f->m.pool_busy = -1;
  f->m.unhelpful = 1; /* restarts did not help: earlier ones would not */
  f->m.hold_until = f->now + S(10);
  early(f);
  assert_int_equal(f->out.n, 0);
  assert_int_equal(f->m.state, MS_ST_RUNNING);
  assert_int_equal(f->m.unexpected, 0);
}

static void early_request_is_stale_while_judging(void** state) {
  fx_t* f = *state;
  to_judging(f);
  early(f);
  assert_int_equal(f->out.n, 0);
  assert_int_equal(f->m.state, MS_ST_JUDGING);
  assert_int_equal(f->m.unexpected, 0);
}

/* A worker whose restart gave the memory back but which leaks faster than
 * before (in a pool, it took more of the load) crosses again within the
 * judged window: once ready it was at 10 MiB of the 120 MiB before, so the
 * restart helped; no hold, and the next sample restarts it. */
/* A worker that had lived 10 s, restarted. */
static void to_judging_after_a_long_life(fx_t* f) {
  to_running(f);
  later(f, S(8));
  sample(f, 120 * MIB, 1);
  assert_int_equal(f->m.state, MS_ST_COLLECTING);
  evidence(f);
  later(f, MS(20));
  exit_ev(f, 0, SIGTERM);
  spawned(f);
  assert_int_equal(f->m.state, MS_ST_JUDGING);
}

static void fast_regrowth_after_a_low_start_is_helped_not_held(void** state) {
  fx_t* f = *state;
  to_judging_after_a_long_life(f);
  feed_type(f, MS_EV_READY);
  later(f, MS(100));
  sample(f, 10 * MIB, 1);
  later(f, S(2));
  ms_actions_t* out = sample(f, 110 * MIB, 1);
  const ms_log_t* l = logged(out, MS_LOG_RESTART);
  assert_non_null(l);
  assert_int_equal(f->m.rs.crossed, 1);
  assert_int_equal(f->m.rs.helped, 1);
  assert_int_equal(f->m.rs.reclaimed, 1);
  assert_int_equal(f->m.rs.low, 10 * MIB);
  assert_null(logged(out, MS_LOG_HOLD));
  assert_int_equal(f->m.unhelpful, 0);
  later(f, MS(50));
  sample(f, 112 * MIB, 1);
  assert_int_equal(f->m.state, MS_ST_COLLECTING);
}

/* The same crossing without such a low point (it was 90 MiB as soon as it
 * was ready: it needs that much to run) did not help: held. */
static void regrowth_without_a_low_start_is_held(void** state) {
  fx_t* f = *state;
  to_judging_after_a_long_life(f);
  feed_type(f, MS_EV_READY);
  later(f, MS(100));
  sample(f, 90 * MIB, 1);
  later(f, S(2));
  ms_actions_t* out = sample(f, 110 * MIB, 1);
  assert_non_null(logged(out, MS_LOG_RESTART));
  assert_int_equal(f->m.rs.helped, 0);
  assert_int_equal(f->m.rs.reclaimed, 0);
  assert_non_null(logged(out, MS_LOG_HOLD));
  later(f, MS(50));
  sample(f, 112 * MIB, 1);
  assert_int_equal(f->m.state, MS_ST_RUNNING);
}

/* Lives that were already short (2 s here) are judged by the 4 s floor,
 * however small the new worker starts: restarting every 2 s is of little
 * use (an unbounded cache refilling in 3 s is held, not looped). */
static void short_lives_are_held_even_after_a_low_start(void** state) {
  fx_t* f = *state;
  to_judging(f);
  feed_type(f, MS_EV_READY);
  later(f, MS(100));
  sample(f, 10 * MIB, 1);
  later(f, S(2));
  ms_actions_t* out = sample(f, 110 * MIB, 1);
  assert_non_null(logged(out, MS_LOG_RESTART));
  assert_int_equal(f->m.rs.helped, 0);
  assert_int_equal(f->m.rs.reclaimed, 0);
  assert_non_null(logged(out, MS_LOG_HOLD));
}

/* Past the ceiling beside another slot's restart, a crossing goes without
 * having waited, and the line says it went at the ceiling. */
static void ceiling_crossing_beside_a_busy_slot_is_flagged(void** state) {
  fx_t* f = *state;
  to_running(f);
  sample(f, 50 * MIB, 1);
  later(f, MS(50));
  f->m.pool_busy = 3;
  sample(f, 170 * MIB, 1);
  assert_int_equal(f->m.state, MS_ST_COLLECTING);
  assert_true(f->m.rs.ceiling);
  assert_int_equal(f->m.rs.waited_for, 3);
  assert_true(f->m.rs.waited_s == 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup_machine, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(every_pair_is_decided_and_fds_are_taken_once,
                                      setup, teardown),
      T(first_start_spawns_and_logs_start),
      T(first_spawn_failure_exits_with_its_code_and_no_log),
      T(estimate_over_limit_only_measures),
      T(tick_asks_for_full_reads_only_near_the_limit),
      T(restart_without_sdk_freezes_reads_evidence_then_stops),
      T(restart_with_sdk_saves_checks_and_hands_over),
      T(worker_dying_mid_save_is_replaced_with_save_failed),
      T(save_refused_by_the_check_is_corrupt_and_last_good_is_kept),
      T(too_big_state_is_too_big),
      T(save_reply_after_the_timeout_is_kept_as_a_checkpoint),
      T(save_timeout_before_evidence_waits_for_it),
      T(stop_during_a_save_stops_the_worker_at_once),
      T(saving_past_the_ceiling_kills_and_replaces_the_worker),
      T(saving_ceiling_holds_rss_with_metric_rss),
      T(saving_ceiling_holds_heap_on_stats),
      T(verifying_does_not_hold_the_ceiling),
      T(second_stop_kills_the_group_at_once),
      T(new_worker_dying_while_judged_ends_the_restart_then_crashes),
      T(stop_while_judging_logs_the_restart_without_after),
      T(replacement_starts_at_once_even_after_unhelpful_restarts),
      T(second_crossing_during_a_restart_starts_nothing),
      T(heap_crossing_is_ignored_outside_running),
      T(heap_metric_decides_on_stats),
      T(helped_compares_one_metric_on_both_sides),
      T(unhelpful_restarts_hold_off_the_next_one),
      T(leak_is_judged_helped_and_restarted_at_every_crossing),
      T(startup_peak_is_held_not_looped),
      T(steady_state_over_the_limit_backs_off_exponentially),
      T(heap_crossing_while_judged_is_not_helped),
      T(fast_leak_is_restarted_through_the_hold),
      T(ready_while_judged_is_timed_not_judged),
      T(gone_while_judged_waits_for_the_exit),
      T(spawn_failing_during_a_memory_restart_is_logged),
      T(spawn_failures_give_up_at_the_intensity_limit),
      T(crash_loop_backs_off_then_gives_up),
      T(crash_carries_the_oom_kill_flag),
      T(clean_exit_on_failure_ends_memsup_with_zero),
      T(clean_exit_under_restart_always_is_a_crash),
      T(healthy_worker_resets_the_backoff),
      T(stop_while_running_signals_the_group_then_sigkill_after_grace),
      T(forwarded_signals_reach_the_worker_only),
      T(eof_during_save_is_save_failed),
      T(save_failed_message_is_save_failed),
      T(unsendable_save_request_is_save_failed),
      T(exit_while_verifying_waits_for_the_check),
      T(checkpoint_of_a_worker_without_sdk_is_dropped),
      T(hello_of_another_version_is_not_the_sdk),
      T(heap_metric_falls_back_after_the_handshake_timeout),
      T(closed_channel_is_reported_once_if_the_worker_runs_on),
      T(soft_limit_asks_for_a_purge_and_logs_its_answer),
      T(soft_limit_does_not_purge_when_heap_is_the_footprint),
      T(purge_gap_does_not_carry_over_to_a_new_worker),
      T(purge_before_read_of_a_gone_worker_sends_nothing),
      T(hard_limit_purges_retention_and_runs_on_when_it_helped),
      T(hard_limit_restarts_when_the_purge_left_it_over),
      T(hard_limit_purge_unanswered_within_grace_restarts),
      T(hard_limit_purge_pending_past_the_ceiling_restarts),
      T(hard_limit_purge_that_cannot_be_sent_restarts),
      T(hard_limit_restarts_a_leak_without_a_purge),
      T(crossing_shorter_than_for_is_logged_once_as_filtered),
      T(sample_line_carries_the_last_full_read),
      T(early_snapshot_after_ready_is_kept_for_the_restart),
      T(early_snapshot_without_sdk_waits_a_second),
      T(dry_run_logs_once_per_episode_and_never_stops),
      T(watch_ends_when_the_process_is_gone_and_never_signals),
      T(stop_ends_a_watch_without_signals),
      T(sample_log_lines_are_paced),
      T(late_evidence_of_a_logged_restart_is_dropped),
      T(profiling_worker_is_asked_for_profiles_at_ready_and_restart),
      T(worker_without_prof_is_never_asked_for_a_profile),
      T(crossing_waits_while_another_slot_is_down),
      T(a_wait_that_ended_under_the_limit_is_forgotten),
      T(waiting_slot_goes_at_the_save_ceiling),
      T(early_request_restarts_a_running_worker_below_the_limit),
      T(early_request_is_refused_when_held_busy_or_not_running),
      T(early_request_is_stale_while_judging),
      T(fast_regrowth_after_a_low_start_is_helped_not_held),
      T(regrowth_without_a_low_start_is_held),
      T(short_lives_are_held_even_after_a_low_start),
      T(ceiling_crossing_beside_a_busy_slot_is_flagged),
      cmocka_unit_test_setup_teardown(
          random_walks_never_hit_an_impossible_pair_and_log_every_restart, setup,
          teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
