/* machine.c: the restart protocol of one worker slot as an explicit state
 * machine: decide -> save -> verify -> (evidence) -> stop -> spawn ->
 * welcome -> ready -> judge "after" -> log.  Pure: events in, actions out
 * (machine.h).  The decisions themselves (limit, purge, backoff, crash
 * intensity, "did not help") come from policy.h.
 *
 * Every state has one function with a switch over every event and no
 * default, so the compiler (-Wswitch, -Werror) refuses a pair nobody
 * decided.  Each case names what happens: a handler <state>_on_<event>, a
 * shared step (note_*, tick, exited, ...), ignore (harmless and expected,
 * e.g. a tick while no worker runs) or unexpected (cannot happen with a
 * correct caller: counted in m->unexpected, and a fd it carries is closed).
 */
#include "machine.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memsup_wire.h"

static double secs(uint64_t ns) { return (double)ns / 1e9; }

/* ---- actions ------------------------------------------------------------ */

static ms_action_t* push(ms_actions_t* out, ms_action_type_t type) {
  /* A step emits at most a handful of actions; more is a bug here. */
  if (out->n == MS_ACTIONS_MAX) abort();
  ms_action_t* a = &out->a[out->n++];
  memset(a, 0, sizeof(*a));
  a->type = type;
  return a;
}

static ms_log_t* say(ms_machine_t* m, ms_actions_t* out, ms_log_kind_t kind) {
  ms_log_t* l = &push(out, MS_ACT_LOG)->log;
  l->kind = kind;
  l->pid = m->w.pid;
  l->gen = m->gen;
  return l;
}

static void arm(ms_machine_t* m, ms_actions_t* out, uint64_t ns) {
  push(out, MS_ACT_TIMER_ARM)->ns = ns;
  m->timer_armed = 1;
}

static void cancel(ms_machine_t* m, ms_actions_t* out) {
  if (!m->timer_armed) return;
  push(out, MS_ACT_TIMER_CANCEL);
  m->timer_armed = 0;
}

static void signal_group(ms_actions_t* out, int sig) {
  push(out, MS_ACT_SIGNAL_GROUP)->sig = sig;
}

static void measure(ms_actions_t* out, ms_purpose_t purpose, uint64_t near,
                    int force) {
  ms_action_t* a = push(out, MS_ACT_MEASURE);
  a->purpose = purpose;
  a->near = near;
  a->force = force;
}

static void close_fd(ms_actions_t* out, const ms_ev_state_t* st) {
  push(out, MS_ACT_CLOSE_FD)->state = st;
}

static int has_fd(const ms_event_t* ev) {
  return ev->type == MS_EV_STATE || ev->type == MS_EV_STATE_OK ||
         ev->type == MS_EV_STATE_BAD;
}

/* ---- named no-ops ------------------------------------------------------- */

static void ignore(ms_machine_t* m, const ms_event_t* ev, ms_actions_t* out) {
  (void)m;
  if (has_fd(ev)) close_fd(out, &ev->state);
}

static void unexpected(ms_machine_t* m, const ms_event_t* ev,
                       ms_actions_t* out) {
  m->unexpected++;
  if (has_fd(ev)) close_fd(out, &ev->state);
}

/* ---- transitions used by several states --------------------------------- */

static void to_exit(ms_machine_t* m, ms_actions_t* out, int code) {
  cancel(m, out);
  m->want = MS_WANT_DOWN;
  m->exit_code = code;
  m->state = MS_ST_DONE;
  push(out, MS_ACT_EXIT)->code = code;
}

static void spawn(ms_machine_t* m, ms_actions_t* out) {
  push(out, MS_ACT_SPAWN)->gen = m->gen + 1;
  m->state = MS_ST_STARTING;
}

static void to_backoff(ms_machine_t* m, ms_actions_t* out, uint64_t delay) {
  arm(m, out, delay);
  m->state = MS_ST_BACKOFF;
}

/* SIGTERM (or memsup's own stop signal) to the group, SIGKILL after
 * --grace.  A group frozen for the evidence (begin_restart) must run again
 * to act on the signal; SIGCONT after it, so the signal is what it wakes
 * to. */
static void stop_worker(ms_machine_t* m, const ms_event_t* ev,
                        ms_actions_t* out, int sig) {
  cancel(m, out);
  if (m->rs.active && !m->rs.dry) m->rs.t_stop = ev->now;
  signal_group(out, sig);
  signal_group(out, SIGCONT);
  arm(m, out, m->cfg->grace_ns);
  m->state = MS_ST_STOPPING;
}

static int status_code(int64_t status, int term_signal) {
  return term_signal ? 128 + term_signal : (int)status;
}

static uint64_t metric_value(ms_metric_t metric, const ms_mem_t* mem,
                             const ms_heap_t* heap) {
  if (metric == MS_METRIC_RSS) return mem->rss;
  if (metric == MS_METRIC_HEAP && heap->has_heap) return heap->allocated;
  return mem->footprint;
}

/* Ends the restart record with its log line.  after is the new worker's
 * figure, or NULL when there is none (it died first, it could not be
 * spawned, memsup was told to stop).  Every restart that began ends here
 * exactly once. */
static void finish(ms_machine_t* m, const ms_event_t* ev, ms_actions_t* out,
                   const ms_mem_t* after) {
  ms_restart_t* rs = &m->rs;
  rs->active = 0;
  rs->number = ++m->restarts;
  rs->helped = -1;
  rs->hold_ns = 0;
  if (after) {
    rs->has_after = 1;
    rs->after = *after;
    rs->after_heap = m->w.heap;
    /* "Helped" compares one metric on both sides: heap-in-use when both
     * workers reported it, else footprint (never heap before with
     * footprint after). */
    ms_metric_t judged = rs->metric;
    if (judged == MS_METRIC_HEAP &&
        !(rs->before_heap.has_heap && rs->after_heap.has_heap))
      judged = MS_METRIC_FOOTPRINT;
    rs->judged_on = judged;
    rs->judged_before = metric_value(judged, &rs->before, &rs->before_heap);
    rs->judged_after = metric_value(judged, &rs->after, &rs->after_heap);
    /* A restart after which the worker crossed the limit again soon, or
     * is about as big as before, did not help: the bloat comes back with
     * what the worker loads or does as it starts.  Restarting at full
     * speed would only loop, so the next restarts are held off while the
     * worker runs on (policy.h: ms_policy_hold). */
    const ms_worker_t* w = &m->w;
    int low_known = judged == MS_METRIC_HEAP ? w->low_heap_known : w->low_known;
    uint64_t low = judged == MS_METRIC_HEAP ? w->low_heap : w->low_footprint;
    int unhelpful = rs->crossed ||
                    ms_policy_unhelpful(rs->judged_before, rs->judged_after);
    if (unhelpful && low_known &&
        ms_policy_reclaimed(rs->judged_before, low,
                            (uint64_t)(rs->uptime_s * 1e9))) {
      unhelpful = 0;
      rs->reclaimed = 1;
      rs->low = low;
    }
    if (unhelpful) {
      rs->helped = 0;
      m->unhelpful++;
      rs->hold_ns = ms_policy_hold(m->unhelpful);
      m->hold_until = ev->now + rs->hold_ns;
    } else {
      rs->helped = 1;
      m->unhelpful = 0;
    }
  }
  /* The line is about the new worker, or the old one when there is none. */
  say(m, out, MS_LOG_RESTART)->pid = rs->new_pid ? rs->new_pid : rs->old_pid;
}

/* Bookkeeping common to every exit of the worker. */
static void exited(ms_machine_t* m, const ms_event_t* ev, ms_actions_t* out) {
  ms_worker_t* w = &m->w;
  cancel(m, out);
  w->up = 0;
  w->exit_status = ev->exit.status;
  w->term_signal = ev->exit.term_signal;
  w->oom_kill = ev->exit.oom_kill;
  w->exit_uptime_s = secs(ev->now - w->started_ns);
  m->last_status = status_code(ev->exit.status, ev->exit.term_signal);
  /* Whatever is left of the worker's process group goes with it, so no
   * grandchild outlives the worker it belonged to (child.c makes sure the
   * group is still the worker's). */
  signal_group(out, SIGKILL);
  push(out, MS_ACT_CLOSE_WORKER);
  if (ev->now - w->started_ns >= MS_HEALTHY_NS) m->consecutive_crashes = 0;
  /* The restart's old worker, not its successor dying while judged. */
  if (m->rs.active && !m->rs.dry && w->pid == m->rs.old_pid)
    m->rs.t_exit = ev->now;
}

static ms_log_t* say_status(ms_machine_t* m, ms_actions_t* out,
                            ms_log_kind_t kind) {
  ms_log_t* l = say(m, out, kind);
  l->status = m->w.exit_status;
  l->term_signal = m->w.term_signal;
  l->oom_kill = m->w.oom_kill;
  l->uptime_s = m->w.exit_uptime_s;
  return l;
}

/* The worker is gone and memsup was told to stop: memsup ends with the
 * worker's status.  A restart under way ends without a new worker. */
static void end_with_worker(ms_machine_t* m, const ms_event_t* ev,
                            ms_actions_t* out) {
  if (m->rs.active && !m->rs.dry) finish(m, ev, out, NULL);
  say_status(m, out, MS_LOG_STOPPED);
  to_exit(m, out, m->last_status);
}

/* The old worker of a memory restart is gone: its successor starts now.
 * Restarts that did not help hold off the next restart instead (held()),
 * so there is never a gap without a worker for them. */
static void replace_worker(ms_machine_t* m, const ms_event_t* ev,
                           ms_actions_t* out) {
  if (m->want == MS_WANT_DOWN) {
    end_with_worker(m, ev, out);
    return;
  }
  spawn(m, out);
}

/* The worker ended by itself (not for a memory restart, not stopped). */
static void crashed(ms_machine_t* m, const ms_event_t* ev, ms_actions_t* out) {
  const ms_config_t* cfg = m->cfg;
  ms_worker_t* w = &m->w;
  int code = m->last_status;
  if (w->term_signal == 0 && w->exit_status == 0 &&
      cfg->restart == MS_RESTART_ON_FAILURE) {
    say_status(m, out, MS_LOG_EXIT);
    to_exit(m, out, 0);
    return;
  }
  if (ms_policy_crash(&m->intensity, cfg->within_ns, ev->now)) {
    say_status(m, out, MS_LOG_CRASH)->delay_ns = -1;
    ms_log_t* l = say(m, out, MS_LOG_GIVEUP);
    l->count = ms_policy_crashes_within(&m->intensity, cfg->within_ns, ev->now);
    l->code = code ? code : 1;
    to_exit(m, out, code ? code : 1);
    return;
  }
  uint64_t delay = ms_policy_backoff(++m->consecutive_crashes);
  say_status(m, out, MS_LOG_CRASH)->delay_ns = (int64_t)delay;
  to_backoff(m, out, delay);
}

/* ---- what the worker says, in any state it can say it ------------------- */

static void send_welcome(ms_machine_t* m, const ms_event_t* ev,
                         ms_actions_t* out) {
  push(out, MS_ACT_SEND_WELCOME);
  if (m->state == MS_ST_JUDGING) {
    m->rs.t_welcome = ev->now;
    snprintf(m->rs.handed, sizeof(m->rs.handed), "%s", m->handoff);
  }
}

static void note_hello(ms_machine_t* m, const ms_event_t* ev,
                       ms_actions_t* out) {
  ms_worker_t* w = &m->w;
  if (ev->hello.version != MEMSUP_WIRE_VERSION) {
    say(m, out, MS_LOG_BAD_VERSION)->version = ev->hello.version;
    return;
  }
  w->sdk = 1;
  m->sdk_seen = 1;
  snprintf(w->allocator, sizeof(w->allocator), "%s", ev->hello.allocator);
  w->prof = ev->hello.prof;
  say(m, out, MS_LOG_HELLO)->text = w->allocator;
  send_welcome(m, ev, out);
}

static void note_stats(ms_machine_t* m, const ms_event_t* ev,
                       ms_actions_t* out) {
  (void)out;
  if (!m->w.sdk) return;
  m->w.heap = ev->stats;
  m->w.stats_ns = ev->now;
  if (m->w.ready && ev->stats.has_heap &&
      (!m->w.low_heap_known || ev->stats.allocated < m->w.low_heap)) {
    m->w.low_heap_known = 1;
    m->w.low_heap = ev->stats.allocated;
  }
}

static void note_eof(ms_machine_t* m, const ms_event_t* ev, ms_actions_t* out) {
  (void)out;
  /* A worker closes the channel as it exits, which is not news; one that
   * goes on running without it is, and the tick says so (CHANNEL_EOF_NS
   * later, when the exit has not come). */
  if (m->w.sdk) m->w.eof_ns = ev->now;
  m->w.sdk = 0;
}

/* A state memfd: checked off the loop (VERIFY), whatever it answers. */
static void note_state(ms_machine_t* m, const ms_event_t* ev,
                       ms_actions_t* out) {
  if (!m->w.sdk) {
    close_fd(out, &ev->state);
    return;
  }
  push(out, MS_ACT_VERIFY)->state = &ev->state;
}

/* A checked state: a good one becomes the last good state, whoever sent
 * it (a save, a checkpoint, a save reply after its timeout).  Returns 1
 * when it answers the restart's save request. */
static int note_checked(ms_machine_t* m, const ms_event_t* ev,
                        ms_actions_t* out) {
  ms_restart_t* rs = &m->rs;
  int ours = rs->active && rs->verifying && ev->state.seq == rs->seq;
  if (ev->type == MS_EV_STATE_OK) {
    push(out, MS_ACT_KEEP_STATE)->state = &ev->state;
    snprintf(m->handoff, sizeof(m->handoff), "%s", ev->state.kind);
  } else {
    close_fd(out, &ev->state);
  }
  if (!ours) {
    ms_log_t* l = say(m, out, MS_LOG_CHECKPOINT);
    l->state = &ev->state;
    l->err = ev->type == MS_EV_STATE_OK ? 0 : ev->state.err;
    return 0;
  }
  rs->verifying = 0;
  rs->t_state = ev->now;
  if (ev->type == MS_EV_STATE_OK) {
    rs->outcome = "restored";
    rs->saved_bytes = ev->state.bytes;
  } else {
    rs->outcome = ev->state.err == -EFBIG ? "too-big" : "corrupt";
    ms_log_t* l = say(m, out, MS_LOG_STATE_REJECTED);
    l->state = &ev->state;
    l->err = ev->state.err;
  }
  return 1;
}

static void note_purged(ms_machine_t* m, const ms_event_t* ev,
                        ms_actions_t* out) {
  ms_worker_t* w = &m->w;
  if (w->purge_seq == 0 || ev->purged.seq != w->purge_seq) return;
  w->purge_seq = 0;
  w->purge_resident_before = ev->purged.resident_before;
  w->purge_resident_after = ev->purged.resident_after;
  measure(out, MS_FOR_PURGE_AFTER, UINT64_MAX, 1);
}

static void note_ready(ms_machine_t* m, const ms_event_t* ev,
                       ms_actions_t* out) {
  m->w.ready = 1;
  m->w.ready_ns = ev->now;
  /* The start-of-life heap profile, the base the restart's is compared
   * with: once per worker, when it is up and has restored its state. */
  if (m->w.sdk && m->w.prof && !m->w.prof_start) {
    m->w.prof_start = 1;
    ms_action_t* a = push(out, MS_ACT_SEND_PROF);
    a->gen = m->w.gen;
    a->code = MS_PROF_START;
  }
}

static void note_send_failed(ms_machine_t* m, const ms_event_t* ev,
                             ms_actions_t* out) {
  switch (ev->send_failed.what) {
    case MS_SEND_PURGE:
      m->w.purge_seq = 0;
      m->w.purge_hard = 0; /* a hard-limit restart need not wait for it */
      break;
    case MS_SEND_WELCOME:
      say(m, out, MS_LOG_WELCOME_UNSENT)->err = ev->send_failed.err;
      break;
    case MS_SEND_SAVE:
      break; /* only SAVING waits for a save */
  }
}

static void forward(ms_machine_t* m, const ms_event_t* ev, ms_actions_t* out) {
  if (!m->w.up || m->cfg->watch_pid) return;
  push(out, MS_ACT_SIGNAL_WORKER)->sig = ev->signal.sig;
}

/* The figures and growth rate of a restart's "before", once measured. */
static void set_before(ms_machine_t* m, const ms_mem_t* mem) {
  ms_restart_t* rs = &m->rs;
  const ms_worker_t* w = &m->w;
  rs->before = *mem;
  rs->before_full = 1;
  ms_growth_add(&m->w.growth, rs->t_decide, mem->footprint);
  if (ms_growth_rate(&w->growth, rs->t_decide,
                     MS_GROWTH_MIN_TICKS * m->cfg->interval_ns,
                     &rs->growth_fit) == 0) {
    rs->has_growth = 1;
    rs->growth_bps = rs->growth_fit.bps;
  }
  ms_cause_best(&m->cause, &rs->gauge);
}

/* Evidence read off the loop.  Returns 1 when it is the open record's. */
static int note_evidence(ms_machine_t* m, const ms_event_t* ev,
                         ms_actions_t* out) {
  ms_restart_t* rs = &m->rs;
  if (ev->evidence.early) {
    ms_worker_t* w = &m->w;
    /* A worker's own snapshot only: a late one of its predecessor is
     * dropped. */
    if (w->up && ev->evidence.id == w->gen && ev->evidence.n > 0) {
      w->nearly = ev->evidence.n;
      memcpy(w->early_rows, ev->evidence.rows,
             sizeof(w->early_rows[0]) * (size_t)w->nearly);
      w->early_pid = ev->evidence.has_where ? ev->evidence.where.top : w->pid;
    }
    return 0;
  }
  if (!rs->active || !rs->evidence_pending || ev->evidence.id != rs->id)
    return 0; /* a record logged already (without its rows) */
  rs->evidence_pending = 0;
  rs->nrows = ev->evidence.n < 0 ? 0 : ev->evidence.n;
  memcpy(rs->rows, ev->evidence.rows, sizeof(rs->rows[0]) * (size_t)rs->nrows);
  if (ev->evidence.has_where) rs->where = ev->evidence.where;
  if (rs->dry) {
    say(m, out, MS_LOG_WOULD_RESTART)->pid = rs->old_pid;
    rs->active = 0;
    return 0;
  }
  return 1;
}

static void begin_restart(ms_machine_t* m, const ms_event_t* ev,
                          ms_actions_t* out, const ms_mem_t* mem,
                          ms_metric_t metric, uint64_t value, int dry);

/* A purge's "before" is read before the request goes: a purge answered
 * within the read would otherwise show as freeing nothing.  The request
 * goes only if the worker can still take it (running, SDK, not being
 * restarted). */
static void purge_before_read(ms_machine_t* m, const ms_event_t* ev,
                              ms_actions_t* out) {
  ms_worker_t* w = &m->w;
  w->purge_before = ev->sample.mem;
  if (!w->purge_unsent) return;
  w->purge_unsent = 0;
  if (m->state != MS_ST_RUNNING || !w->sdk || w->purge_seq == 0) {
    w->purge_seq = 0;
    w->purge_hard = 0;
    return;
  }
  w->purge_sent_ns = ev->now;
  push(out, MS_ACT_SEND_PURGE)->seq = w->purge_seq;
}

/* A purge at the hard limit has its "after": a worker still over the
 * limit is restarted now; one the purge brought under runs on. */
static void hard_purge_done(ms_machine_t* m, const ms_event_t* ev,
                            ms_actions_t* out) {
  ms_worker_t* w = &m->w;
  const ms_mem_t* mem = &ev->sample.mem;
  w->purge_hard = 0;
  if (m->state != MS_ST_RUNNING) return; /* a restart began meanwhile */
  uint64_t value = metric_value(w->metric, mem, &w->heap);
  if (value < m->cfg->limit) {
    w->lim.over = 0; /* the run of overs ends here, without a restart */
    w->hard_purge_tried = 0;
    return;
  }
  begin_restart(m, ev, out, mem, w->metric, value, 0);
}

/* Answers to MEASURE that do not depend on the state. */
static void note_measured(ms_machine_t* m, const ms_event_t* ev,
                          ms_actions_t* out) {
  ms_worker_t* w = &m->w;
  switch (ev->sample.purpose) {
    case MS_FOR_BEFORE:
      if (m->rs.active && !m->rs.before_full) set_before(m, &ev->sample.mem);
      break;
    case MS_FOR_PURGE_BEFORE:
      purge_before_read(m, ev, out);
      break;
    case MS_FOR_PURGE_AFTER: {
      ms_log_t* l = say(m, out, MS_LOG_PURGE);
      l->mem = &ev->sample.mem;
      l->heap = &w->heap;
      l->has_heap = w->heap.has_heap;
      l->purge_resident_before = w->purge_resident_before;
      l->purge_resident_after = w->purge_resident_after;
      l->hard = w->purge_hard;
      if (w->purge_hard) hard_purge_done(m, ev, out);
      break;
    }
    case MS_FOR_TICK:  /* comes as SAMPLE */
    case MS_FOR_STATS: /* RUNNING's (a stale one elsewhere) */
    case MS_FOR_AFTER: /* JUDGING's (a stale one elsewhere) */
      break;
  }
}

static void note_gone(ms_machine_t* m, const ms_event_t* ev, ms_actions_t* out) {
  (void)out;
  if (ev->sample.purpose == MS_FOR_PURGE_BEFORE && m->w.purge_unsent) {
    m->w.purge_unsent = 0;
    m->w.purge_seq = 0;
    m->w.purge_hard = 0;
  }
  /* A "before" that cannot be re-read stays the estimate it was. */
  if (ev->sample.purpose == MS_FOR_BEFORE && m->rs.active && !m->rs.before_full) {
    set_before(m, &m->rs.before);
    m->rs.before_full = 0;
  }
}

/* ---- the tick ----------------------------------------------------------- */

/* What to sample this tick.  The sampler reads /proc/PID/status every tick
 * and smaps_rollup only near the limit (near) or when forced; the metric is
 * heap only once the SDK said hello, else footprint after
 * --handshake-timeout. */
static void tick(ms_machine_t* m, const ms_event_t* ev, ms_actions_t* out) {
  const ms_config_t* cfg = m->cfg;
  ms_worker_t* w = &m->w;
  ms_metric_t metric = cfg->metric;
  if (metric == MS_METRIC_HEAP && !w->sdk) {
    if (ev->now - w->started_ns < cfg->handshake_ns) return;
    if (!w->heap_fallback_warned) {
      w->heap_fallback_warned = 1;
      say(m, out, MS_LOG_HEAP_FALLBACK);
    }
    metric = MS_METRIC_FOOTPRINT;
  }
  w->metric = metric;
  uint64_t limit = cfg->soft_limit && w->sdk ? cfg->soft_limit : cfg->limit;
  uint64_t near = metric == MS_METRIC_FOOTPRINT && limit ? limit : UINT64_MAX;
  if (w->eof_ns && ev->now - w->eof_ns >= MS_CHANNEL_EOF_NS) {
    w->eof_ns = 0;
    say(m, out, MS_LOG_CHANNEL_CLOSED);
  }
  /* A restart's verdict (its "after") is a full read; so is every sample
   * of the judged window under --metric rss, whose crossings have no
   * full read near the limit otherwise. */
  int force = m->state == MS_ST_JUDGING &&
              (ev->now - w->started_ns >= m->rs.judge_ns ||
               metric == MS_METRIC_RSS);
  measure(out, MS_FOR_TICK, near, force);
}

/* Every tick sample: the worker's first measured figure (growth rate) and
 * the --sample-log line, at most every --sample-every. */
static void note_sample(ms_machine_t* m, const ms_event_t* ev,
                        ms_actions_t* out) {
  ms_worker_t* w = &m->w;
  const ms_mem_t* mem = &ev->sample.mem;
  w->last = *mem;
  /* Only measured figures: an estimate counts lazy-free pages. */
  if (mem->full) {
    ms_growth_add(&w->growth, ev->now, mem->footprint);
    ms_cause_add(&m->cause, ev->now, mem->footprint,
                 w->sdk && w->stats_ns ? &w->heap : NULL);
    w->last_full = *mem;
    w->last_full_ns = ev->now;
  }
  if (m->cfg->sample_log_path == NULL ||
      (w->last_slog_ns && ev->now - w->last_slog_ns < m->cfg->sample_every_ns))
    return;
  w->last_slog_ns = ev->now;
  ms_log_t* l = say(m, out, MS_LOG_SAMPLE);
  l->mem = &w->last;
  l->heap = &w->heap;
  l->has_heap = w->heap.has_heap;
  if (w->last_full_ns) {
    l->last_full = &w->last_full;
    l->last_full_age_ns = ev->now - w->last_full_ns;
  }
}

/* ---- the decision ------------------------------------------------------- */

/* Begins a memory restart.  The stop begins now.  The evidence (a full
 * smaps read, up to ~0.2 s on a worker with 60,000 mappings, done off the
 * loop) must come from the worker as it is at the decision, before it
 * exits, without letting it grow meanwhile: an SDK worker is first asked
 * to save (it serializes while memsup reads), any other is frozen with
 * SIGSTOP and thawed by stop_worker(). */
static void begin_restart(ms_machine_t* m, const ms_event_t* ev,
                          ms_actions_t* out, const ms_mem_t* mem,
                          ms_metric_t metric, uint64_t value, int dry) {
  ms_restart_t* rs = &m->rs;
  ms_worker_t* w = &m->w;
  memset(rs, 0, sizeof(*rs));
  rs->active = 1;
  rs->dry = dry;
  rs->id = ++m->next_id;
  rs->metric = metric;
  rs->value = value;
  rs->t_decide = ev->now;
  rs->decided_unix_s = ev->unix_s;
  rs->over_for_s = secs(ev->now - w->lim.over_since_ns);
  rs->old_pid = w->pid;
  rs->old_gen = w->gen;
  rs->uptime_s = secs(ev->now - w->started_ns);
  rs->before = *mem;
  rs->before_heap = w->heap;
  rs->expect_sdk = !dry && w->sdk;
  rs->outcome = "none";
  rs->evidence_pending = 1;
  rs->judge_ns = ms_policy_judge_window(ev->now - w->started_ns);
  m->hold_logged = m->waiting = 0;
  /* Whose mappings the evidence will list, should it never come. */
  rs->where.tree = m->cfg->tree;
  rs->where.rank = metric == MS_METRIC_RSS ? MS_RANK_RSS : MS_RANK_FOOTPRINT;
  rs->where.top = w->pid;
  rs->nearly = w->nearly;
  rs->early_pid = w->early_pid;
  rs->early_uptime_s = w->early_uptime_s;
  if (w->nearly > 0)
    memcpy(rs->early_rows, w->early_rows,
           sizeof(rs->early_rows[0]) * (size_t)w->nearly);

  if (dry) {
    /* --dry-run: the worker runs on; the line is written once the
     * evidence is in. */
  } else if (rs->expect_sdk) {
    /* The end-of-life heap profile first: the worker handles messages in
     * order, so it is written before the save is answered. */
    if (w->prof) {
      ms_action_t* a = push(out, MS_ACT_SEND_PROF);
      a->gen = w->gen;
      a->code = MS_PROF_END;
      rs->prof_start = w->prof_start;
      rs->prof_end = 1;
    }
    rs->seq = ++m->seq;
    push(out, MS_ACT_SEND_SAVE)->seq = rs->seq;
    m->state = MS_ST_SAVING;
  } else {
    signal_group(out, SIGSTOP);
    m->state = MS_ST_COLLECTING;
  }
  /* The evidence must be measured: an estimate is replaced by a full read. */
  if (mem->full)
    set_before(m, mem);
  else
    measure(out, MS_FOR_BEFORE, UINT64_MAX, 1);
  push(out, MS_ACT_COLLECT_EVIDENCE)->id = rs->id;
  if (!dry) arm(m, out, m->cfg->grace_ns);
}

/* "hold": delay_ns is what is left of the hold, count the restarts in a
 * row that did not help. */
static void say_hold(ms_machine_t* m, const ms_event_t* ev, ms_actions_t* out,
                     const ms_mem_t* mem, ms_metric_t metric, uint64_t value) {
  ms_log_t* l = say(m, out, MS_LOG_HOLD);
  l->mem = mem;
  l->metric = metric;
  l->value = value;
  l->count = m->unhelpful;
  l->delay_ns = (int64_t)(m->hold_until - ev->now);
}

/* The verdict on the open restart, taken on the new worker: crossed when
 * it crossed the limit within the judged window (then it runs on over the
 * limit, held), else at the window's end.  Logs the restart line. */
static void judge(ms_machine_t* m, const ms_event_t* ev, ms_actions_t* out,
                  const ms_mem_t* mem, int crossed, ms_metric_t metric,
                  uint64_t value) {
  ms_restart_t* rs = &m->rs;
  rs->judged_after_s = secs(ev->now - m->w.started_ns);
  if (crossed) {
    rs->crossed = 1;
    rs->crossed_after_s = rs->judged_after_s;
  }
  finish(m, ev, out, mem);
  m->state = MS_ST_RUNNING;
  /* Crossed, but the restart gave the memory back (reclaimed): no hold,
   * the next sample restarts it like any crossing. */
  if (crossed && rs->helped == 0) {
    m->hold_logged = 1;
    m->hold_since_ns = ev->now;
    m->hold_from = value;
    say_hold(m, ev, out, mem, metric, value);
  }
}

/* A crossing while restarts are held off (the last ones did not help):
 * the worker runs on over the limit, said once per run of overs, unless
 * it keeps growing through the hold (policy.h: a leak).  Returns 1 when
 * held. */
static int held(ms_machine_t* m, const ms_event_t* ev, ms_actions_t* out,
                const ms_mem_t* mem, ms_metric_t metric, uint64_t value) {
  if (m->unhelpful == 0 || ev->now >= m->hold_until) return 0;
  if (!m->hold_logged) {
    m->hold_logged = 1;
    m->hold_since_ns = ev->now;
    m->hold_from = value;
    say_hold(m, ev, out, mem, metric, value);
    return 1;
  }
  if (!ms_policy_hold_broken(ev->now - m->hold_since_ns, m->hold_from, value,
                             m->cfg->limit))
    return 1;
  ms_log_t* l = say(m, out, MS_LOG_HOLD_BROKEN);
  l->value = value;
  l->metric = metric;
  l->from = m->hold_from;
  return 0;
}

/* Asks the worker to purge; hard: for the hard limit (a restart follows
 * when it leaves the worker over).  The "before" is read first when mem is
 * an estimate (purge_before_read() then sends the request). */
static void ask_purge(ms_machine_t* m, const ms_event_t* ev, ms_actions_t* out,
                      const ms_mem_t* mem, int hard) {
  ms_worker_t* w = &m->w;
  w->purge_seq = ++m->seq;
  w->purge_hard = hard;
  w->last_purge_ns = ev->now;
  w->purge_sent_ns = ev->now;
  if (mem->full) {
    w->purge_before = *mem;
    push(out, MS_ACT_SEND_PURGE)->seq = w->purge_seq;
  } else {
    w->purge_unsent = 1;
    measure(out, MS_FOR_PURGE_BEFORE, UINT64_MAX, 1);
  }
}

/* Whether the worker's own figures say its allocator holds what put it
 * over: the evidence's allocator-retention rule on this sample.  Only
 * then can a purge, rather than a restart, bring it back under. */
static int retention_now(const ms_worker_t* w, const ms_mem_t* mem) {
  ms_classify_in_t in;
  ms_classify_out_t cls;
  if (!w->sdk || !w->heap.has_heap) return 0;
  memset(&in, 0, sizeof(in));
  in.footprint = mem->footprint;
  in.rss = mem->rss;
  in.lazyfree = mem->lazyfree;
  in.rss_file = mem->rss_file;
  in.has_heap = 1;
  in.heap_allocated = w->heap.allocated;
  in.heap_resident = w->heap.resident;
  ms_classify(&in, &cls);
  return strcmp(cls.cls, "allocator-retention") == 0;
}

/* A run of overs ended below the limit without a restart: it was shorter
 * than --for.  Said once per run, with its peak. */
static void note_filtered(ms_machine_t* m, const ms_event_t* ev,
                          ms_actions_t* out, uint64_t since_ns) {
  ms_log_t* l = say(m, out, MS_LOG_FILTERED);
  l->peak = m->w.over_peak;
  l->lasted_ns = ev->now - since_ns;
}

static void check_limit(ms_machine_t* m, const ms_event_t* ev,
                        ms_actions_t* out, const ms_mem_t* mem,
                        ms_metric_t metric, ms_value_kind_t kind,
                        uint64_t value) {
  const ms_config_t* cfg = m->cfg;
  ms_worker_t* w = &m->w;
  /* The soft limit purges only when there is something to give back:
   * with heap-in-use about the footprint a purge frees nothing and only
   * holds the next, useful one off for MS_PURGE_MIN_GAP_NS. */
  if (cfg->soft_limit && w->sdk && w->purge_seq == 0 && kind == MS_VALUE_KNOWN &&
      ms_cause_purge_useful(mem->footprint, w->heap.has_heap,
                            w->heap.allocated) &&
      ms_policy_purge(cfg->soft_limit, value, ev->now, w->last_purge_ns,
                      MS_PURGE_MIN_GAP_NS))
    ask_purge(m, ev, out, mem, 0);
  int was_over = w->lim.over;
  uint64_t since = w->lim.over_since_ns;
  int due = ms_policy_limit(&w->lim, cfg->limit, cfg->for_ns, kind, value, ev->now);
  if (kind == MS_VALUE_KNOWN && w->lim.over &&
      (!was_over || value > w->over_peak))
    w->over_peak = value;
  if (!w->lim.over) {
    /* A crossing that ended while held, or by a hard-limit purge, was
     * not filtered by --for. */
    if (was_over && !w->hard_purge_tried && !m->hold_logged)
      note_filtered(m, ev, out, since);
    m->dry_episode = m->hold_logged = m->waiting = 0;
    w->hard_purge_tried = 0;
  }
  if (!due) return;
  if (cfg->dry_run) {
    /* Logged once per run of samples over the limit. */
    if (!m->dry_episode && !m->rs.active)
      begin_restart(m, ev, out, mem, metric, value, 1);
    m->dry_episode = 1;
    return;
  }
  if (m->state == MS_ST_JUDGING) {
    judge(m, ev, out, mem, 1, metric, value);
    return;
  }
  if (held(m, ev, out, mem, metric, value)) return;
  /* Allocator retention at the hard limit: a purge first, a restart only
   * if it leaves the worker over (hard_purge_done()).  The wait is short
   * and bounded like a save: a purge is answered in milliseconds, so one
   * not answered within MS_HARD_PURGE_WAIT_NS (or --grace if shorter), or
   * a worker that passes the save ceiling meanwhile, is given up on: the
   * worker is growing, not purging. */
  if (w->purge_hard &&
      ev->now - w->purge_sent_ns <
          (cfg->grace_ns < MS_HARD_PURGE_WAIT_NS ? cfg->grace_ns
                                                 : MS_HARD_PURGE_WAIT_NS) &&
      !(kind == MS_VALUE_KNOWN && value > ms_policy_ceiling(cfg->limit)))
    return;
  if (!w->hard_purge_tried && metric != MS_METRIC_HEAP &&
      retention_now(w, mem)) {
    w->hard_purge_tried = 1;
    if (w->purge_seq == 0)
      ask_purge(m, ev, out, mem, 1);
    else /* a soft-limit purge is in flight: it answers for this one */
      w->purge_hard = 1;
    return;
  }
  w->purge_hard = 0;
  /* In a pool, one slot at a time is down for memory: a crossing waits
   * for the slot that is (said once), unless it passes the save ceiling,
   * where waiting risks more than a second slot down does. */
  int over_ceiling = kind == MS_VALUE_KNOWN && value > ms_policy_ceiling(cfg->limit);
  if (m->pool_busy >= 0 && !over_ceiling) {
    if (!m->waiting) {
      m->waiting = 1;
      m->wait_since_ns = ev->now;
      m->wait_for = m->pool_busy;
      ms_log_t* l = say(m, out, MS_LOG_WAIT);
      l->mem = mem;
      l->metric = metric;
      l->value = value;
      l->slot = m->pool_busy;
    }
    return;
  }
  int waited = m->waiting;
  uint64_t wait_since = m->wait_since_ns;
  int busy = m->pool_busy;
  begin_restart(m, ev, out, mem, metric, value, 0);
  if (waited || busy >= 0) {
    /* It waited, or went at once past the ceiling beside another slot
     * (a worker whose hold broke there, or one that grew past it in a
     * tick): either way the line says so. */
    m->rs.waited = 1;
    m->rs.waited_s = waited ? secs(ev->now - wait_since) : 0;
    m->rs.waited_for = waited ? m->wait_for : busy;
    m->rs.ceiling = busy >= 0;
  }
}

/* The save is settled (state checked, refused, failed, timed out): stop
 * the worker once the evidence is in. */
static void leave_saving(ms_machine_t* m, const ms_event_t* ev,
                         ms_actions_t* out) {
  cancel(m, out);
  if (m->rs.evidence_pending) {
    arm(m, out, m->cfg->grace_ns);
    m->state = MS_ST_COLLECTING;
    return;
  }
  stop_worker(m, ev, out, SIGTERM);
}

/* memsup was told to stop (SIGTERM, SIGINT).  Returns 0 when it was told
 * before: then the worker's group gets SIGKILL, without waiting for the
 * grace period. */
static int note_stop(ms_machine_t* m, const ms_event_t* ev, ms_actions_t* out) {
  if (m->want == MS_WANT_DOWN) {
    if (m->w.up) signal_group(out, SIGKILL);
    return 0;
  }
  m->want = MS_WANT_DOWN;
  ms_log_t* l = say(m, out, MS_LOG_STOP);
  l->pid = m->w.up ? m->w.pid : 0;
  l->sig = ev->signal.sig;
  return 1;
}

/* ---- DOWN: not started ---------------------------------------------------- */

static void down_on_start(ms_machine_t* m, const ms_event_t* ev,
                          ms_actions_t* out) {
  snprintf(m->handoff, sizeof(m->handoff), "%s", ev->start.handoff);
  if (m->cfg->watch_pid) {
    push(out, MS_ACT_ADOPT);
    m->state = MS_ST_STARTING;
    return;
  }
  spawn(m, out);
}

static void down_on_stop(ms_machine_t* m, const ms_event_t* ev,
                         ms_actions_t* out) {
  if (note_stop(m, ev, out)) to_exit(m, out, 128 + ev->signal.sig);
}

static void on_down(ms_machine_t* m, const ms_event_t* ev, ms_actions_t* out) {
  switch (ev->type) {
    case MS_EV_START: down_on_start(m, ev, out); break;
    case MS_EV_STOP: down_on_stop(m, ev, out); break;
    case MS_EV_TICK: ignore(m, ev, out); break;
    case MS_EV_EARLY: ignore(m, ev, out); break; /* not running: stale */
    case MS_EV_STATE_OK: /* no check can be under way yet */
    case MS_EV_STATE_BAD:
    case MS_EV_STATE:
    case MS_EV_SPAWNED:
    case MS_EV_SPAWN_FAILED:
    case MS_EV_SAMPLE:
    case MS_EV_MEASURED:
    case MS_EV_GONE:
    case MS_EV_HELLO:
    case MS_EV_STATS:
    case MS_EV_SAVE_FAILED:
    case MS_EV_SEND_FAILED:
    case MS_EV_PURGED:
    case MS_EV_READY:
    case MS_EV_EOF:
    case MS_EV_EXIT:
    case MS_EV_TIMEOUT:
    case MS_EV_FORWARD:
    case MS_EV_EVIDENCE:
    case MS_EV_COUNT: unexpected(m, ev, out); break;
  }
}

/* ---- STARTING: the spawn's answer comes next ------------------------------ */

static void starting_on_spawned(ms_machine_t* m, const ms_event_t* ev,
                                ms_actions_t* out) {
  ms_worker_t* w = &m->w;
  memset(w, 0, sizeof(*w));
  ms_growth_init(&w->growth, MS_GROWTH_WINDOW_NS);
  w->up = 1;
  w->pid = ev->spawned.pid;
  w->gen = ++m->gen;
  w->started_ns = ev->now;
  w->metric = m->cfg->metric;
  w->nearly = -1;
  ms_cause_new_life(&m->cause);
  m->state = MS_ST_RUNNING;
  if (m->cfg->watch_pid) {
    say(m, out, MS_LOG_WATCH);
    return;
  }
  say(m, out, MS_LOG_START);
  if (m->rs.active && !m->rs.dry) {
    m->rs.t_spawn = ev->now;
    m->rs.new_pid = w->pid;
    m->state = MS_ST_JUDGING;
  }
  if (m->want == MS_WANT_DOWN) { /* told to stop while it was spawning */
    if (m->rs.active && !m->rs.dry) finish(m, ev, out, NULL);
    stop_worker(m, ev, out, SIGTERM);
  }
}

/* A spawn after the first one failed: treated like a crash (backoff,
 * intensity), since the cause (a binary being replaced, fork failing under
 * memory pressure) is often transient.  A memory restart under way ends
 * with its line (no new worker). */
static void starting_on_spawn_failed(ms_machine_t* m, const ms_event_t* ev,
                                     ms_actions_t* out) {
  m->last_status = ev->spawn_failed.code;
  if (m->gen == 0) { /* the first start: memsup cannot run at all */
    to_exit(m, out, m->last_status);
    return;
  }
  if (m->rs.active && !m->rs.dry) finish(m, ev, out, NULL);
  if (m->want == MS_WANT_DOWN) {
    to_exit(m, out, m->last_status);
    return;
  }
  if (ms_policy_crash(&m->intensity, m->cfg->within_ns, ev->now)) {
    say(m, out, MS_LOG_SPAWN_GIVEUP);
    to_exit(m, out, m->last_status);
    return;
  }
  to_backoff(m, out, ms_policy_backoff(++m->consecutive_crashes));
}

static void starting_on_stop(ms_machine_t* m, const ms_event_t* ev,
                             ms_actions_t* out) {
  note_stop(m, ev, out); /* decided when the spawn answers */
}

static void on_starting(ms_machine_t* m, const ms_event_t* ev,
                        ms_actions_t* out) {
  switch (ev->type) {
    case MS_EV_SPAWNED: starting_on_spawned(m, ev, out); break;
    case MS_EV_SPAWN_FAILED: starting_on_spawn_failed(m, ev, out); break;
    case MS_EV_STOP: starting_on_stop(m, ev, out); break;
    case MS_EV_TICK: ignore(m, ev, out); break;
    case MS_EV_FORWARD: ignore(m, ev, out); break; /* nobody to forward to */
    case MS_EV_STATE_OK: /* a check of the previous worker's state */
    case MS_EV_STATE_BAD: note_checked(m, ev, out); break;
    case MS_EV_EVIDENCE: note_evidence(m, ev, out); break;
    case MS_EV_EARLY: ignore(m, ev, out); break; /* not running: stale */
    case MS_EV_START:
    case MS_EV_SAMPLE:
    case MS_EV_MEASURED:
    case MS_EV_GONE:
    case MS_EV_HELLO:
    case MS_EV_STATS:
    case MS_EV_STATE:
    case MS_EV_SAVE_FAILED:
    case MS_EV_SEND_FAILED:
    case MS_EV_PURGED:
    case MS_EV_READY:
    case MS_EV_EOF:
    case MS_EV_EXIT:
    case MS_EV_TIMEOUT:
    case MS_EV_COUNT: unexpected(m, ev, out); break;
  }
}

/* ---- RUNNING: a worker is up and held to the limit ------------------------ */

/* The early smaps snapshot of the life, once (evidence "grew" compares
 * the restart's read with it): at the first full sample after "ready", or
 * after --handshake-timeout for a worker that never says it, or
 * MS_EARLY_SNAPSHOT_NS into the life of a worker without the SDK.  Not
 * when a restart began in the same step (its own read is under way). */
static void early_snapshot(ms_machine_t* m, const ms_event_t* ev,
                           ms_actions_t* out) {
  ms_worker_t* w = &m->w;
  if (w->early_asked || !ev->sample.mem.full || m->state != MS_ST_RUNNING ||
      m->cfg->watch_pid)
    return;
  int sdk = w->sdk || m->sdk_seen;
  uint64_t age = ev->now - w->started_ns;
  if (!w->ready &&
      age < (sdk ? m->cfg->handshake_ns : MS_EARLY_SNAPSHOT_NS))
    return;
  w->early_asked = 1;
  w->early_uptime_s = secs(age);
  ms_action_t* a = push(out, MS_ACT_COLLECT_EVIDENCE);
  a->id = w->gen;
  a->early = 1;
}

static void running_on_sample(ms_machine_t* m, const ms_event_t* ev,
                              ms_actions_t* out) {
  const ms_mem_t* mem = &ev->sample.mem;
  ms_worker_t* w = &m->w;
  if (w->ready && mem->full && (!w->low_known || mem->footprint < w->low_footprint)) {
    w->low_known = 1;
    w->low_footprint = mem->footprint;
  }
  note_sample(m, ev, out);
  switch (m->w.metric) {
    case MS_METRIC_RSS:
      check_limit(m, ev, out, mem, MS_METRIC_RSS, MS_VALUE_KNOWN, mem->rss);
      break;
    case MS_METRIC_HEAP:
      break; /* decided when stats arrive */
    case MS_METRIC_FOOTPRINT:
      /* An estimate under the limit is trusted (it over-counts); one over
       * it is only a reason to measure, never to restart. */
      check_limit(m, ev, out, mem, MS_METRIC_FOOTPRINT,
                  mem->full || mem->footprint < m->cfg->limit ? MS_VALUE_KNOWN
                                                              : MS_VALUE_UNKNOWN,
                  mem->footprint);
      break;
  }
  early_snapshot(m, ev, out);
}

/* --metric heap acts on the worker's own report as it arrives: a crossing
 * is seen as soon as the worker says so, not a tick later. */
static void running_on_stats(ms_machine_t* m, const ms_event_t* ev,
                             ms_actions_t* out) {
  note_stats(m, ev, out);
  if (m->cfg->metric == MS_METRIC_HEAP && m->w.sdk && ev->stats.has_heap)
    measure(out, MS_FOR_STATS, UINT64_MAX, 0);
}

static void running_on_measured(ms_machine_t* m, const ms_event_t* ev,
                                ms_actions_t* out) {
  if (ev->sample.purpose == MS_FOR_STATS && m->w.heap.has_heap)
    check_limit(m, ev, out, &ev->sample.mem, MS_METRIC_HEAP, MS_VALUE_KNOWN,
                m->w.heap.allocated);
  else
    note_measured(m, ev, out);
}

/* memsup watch: the watched process is gone, and so is memsup's job. */
static void running_on_gone(ms_machine_t* m, const ms_event_t* ev,
                            ms_actions_t* out) {
  if (ev->sample.purpose == MS_FOR_TICK && m->cfg->watch_pid) {
    m->w.up = 0;
    say(m, out, MS_LOG_WATCH_END)->uptime_s = secs(ev->now - m->w.started_ns);
    to_exit(m, out, 0);
    return;
  }
  note_gone(m, ev, out); /* a worker of ours: its exit follows */
}

static void running_on_exit(ms_machine_t* m, const ms_event_t* ev,
                            ms_actions_t* out) {
  exited(m, ev, out);
  crashed(m, ev, out);
}

static void running_on_stop(ms_machine_t* m, const ms_event_t* ev,
                            ms_actions_t* out) {
  if (!note_stop(m, ev, out)) return;
  if (m->cfg->watch_pid) { /* not ours to stop: memsup just ends */
    to_exit(m, out, 0);
    return;
  }
  stop_worker(m, ev, out, ev->signal.sig);
}

/* The pool asks for a restart below the limit, so that this slot's and
 * the next ones' restarts do not fall due together (pool.h).  Asked only
 * of a slot that is running; refused when restarts are held off (they did
 * not help: restarting earlier would not either), when a hard-limit purge
 * is pending, or when another slot is down meanwhile. */
static void running_on_early(ms_machine_t* m, const ms_event_t* ev,
                             ms_actions_t* out) {
  ms_worker_t* w = &m->w;
  if (m->cfg->dry_run || m->cfg->limit == 0 || m->rs.active ||
      m->pool_busy >= 0 || w->purge_hard ||
      (m->unhelpful && ev->now < m->hold_until))
    return;
  begin_restart(m, ev, out, &w->last, w->metric,
                metric_value(w->metric, &w->last, &w->heap), 0);
  m->rs.over_for_s = 0;
  m->rs.early = 1;
  m->rs.early_why = ev->early;
}

static void on_running(ms_machine_t* m, const ms_event_t* ev,
                       ms_actions_t* out) {
  switch (ev->type) {
    case MS_EV_TICK: tick(m, ev, out); break;
    case MS_EV_SAMPLE: running_on_sample(m, ev, out); break;
    case MS_EV_MEASURED: running_on_measured(m, ev, out); break;
    case MS_EV_GONE: running_on_gone(m, ev, out); break;
    case MS_EV_HELLO: note_hello(m, ev, out); break;
    case MS_EV_STATS: running_on_stats(m, ev, out); break;
    case MS_EV_STATE: note_state(m, ev, out); break;
    case MS_EV_STATE_OK:
    case MS_EV_STATE_BAD: note_checked(m, ev, out); break;
    case MS_EV_SAVE_FAILED: ignore(m, ev, out); break; /* no save asked */
    case MS_EV_SEND_FAILED: note_send_failed(m, ev, out); break;
    case MS_EV_PURGED: note_purged(m, ev, out); break;
    case MS_EV_READY: note_ready(m, ev, out); break;
    case MS_EV_EOF: note_eof(m, ev, out); break;
    case MS_EV_EXIT: running_on_exit(m, ev, out); break;
    case MS_EV_STOP: running_on_stop(m, ev, out); break;
    case MS_EV_FORWARD: forward(m, ev, out); break;
    case MS_EV_EVIDENCE: note_evidence(m, ev, out); break; /* --dry-run */
    case MS_EV_EARLY: running_on_early(m, ev, out); break;
    case MS_EV_TIMEOUT: /* no timer runs here */
    case MS_EV_START:
    case MS_EV_SPAWNED:
    case MS_EV_SPAWN_FAILED:
    case MS_EV_COUNT: unexpected(m, ev, out); break;
  }
}

/* ---- SAVING: the worker was asked to save its state ----------------------- */

/* A worker that does not answer the save may still be growing (its save
 * callback blocked on a lock a busy thread holds, while that thread
 * leaks): the limit is held during the save too, up to the ceiling
 * (ms_policy_ceiling).  Past it the save is given up, the worker killed
 * at once (it already ignores the save; a SIGTERM and --grace would let
 * it grow on) and the last good state, if any, handed over. */
static void saving_over_ceiling(ms_machine_t* m, const ms_event_t* ev,
                                ms_actions_t* out, uint64_t value) {
  uint64_t ceiling = ms_policy_ceiling(m->cfg->limit);
  if (ceiling == 0 || value <= ceiling) return;
  m->rs.outcome = "ceiling";
  m->rs.t_state = ev->now;
  ms_log_t* l = say(m, out, MS_LOG_CEILING);
  l->value = value;
  l->ceiling = ceiling;
  stop_worker(m, ev, out, SIGKILL);
}

/* Samples during the save: logged (--sample-log), and held to the
 * ceiling.  A footprint estimate over it only asks for a full read (the
 * tick reads fully near the limit, so this is rare). */
static void saving_on_sample(ms_machine_t* m, const ms_event_t* ev,
                             ms_actions_t* out) {
  const ms_mem_t* mem = &ev->sample.mem;
  note_sample(m, ev, out);
  if (m->state != MS_ST_SAVING) return; /* VERIFYING: the state is in */
  switch (m->w.metric) {
    case MS_METRIC_RSS: saving_over_ceiling(m, ev, out, mem->rss); break;
    case MS_METRIC_HEAP: break; /* held on the worker's stats */
    case MS_METRIC_FOOTPRINT:
      if (mem->full) saving_over_ceiling(m, ev, out, mem->footprint);
      break;
  }
}

/* --metric heap: the worker's own figures, when it still sends them. */
static void saving_on_stats(ms_machine_t* m, const ms_event_t* ev,
                            ms_actions_t* out) {
  note_stats(m, ev, out);
  if (m->w.metric == MS_METRIC_HEAP && m->w.sdk && ev->stats.has_heap)
    saving_over_ceiling(m, ev, out, ev->stats.allocated);
}

static void saving_on_state(ms_machine_t* m, const ms_event_t* ev,
                            ms_actions_t* out) {
  ms_restart_t* rs = &m->rs;
  if (!m->w.sdk || ev->state.seq != rs->seq) {
    note_state(m, ev, out); /* a checkpoint sent meanwhile */
    return;
  }
  cancel(m, out);
  rs->t_recv = ev->now;
  rs->recv_unix_s = ev->unix_s;
  rs->verifying = 1;
  push(out, MS_ACT_VERIFY)->state = &ev->state;
  m->state = MS_ST_VERIFYING;
}

static void saving_on_save_failed(ms_machine_t* m, const ms_event_t* ev,
                                  ms_actions_t* out) {
  if (ev->save_failed.seq != m->rs.seq) return;
  m->rs.t_state = ev->now;
  m->rs.outcome = "save-failed";
  say(m, out, MS_LOG_SAVE_FAILED)->text = ev->save_failed.text;
  leave_saving(m, ev, out);
}

static void saving_on_send_failed(ms_machine_t* m, const ms_event_t* ev,
                                  ms_actions_t* out) {
  if (ev->send_failed.what != MS_SEND_SAVE) {
    note_send_failed(m, ev, out);
    return;
  }
  m->rs.outcome = "save-failed";
  say(m, out, MS_LOG_SAVE_UNSENT)->err = ev->send_failed.err;
  leave_saving(m, ev, out);
}

static void saving_on_eof(ms_machine_t* m, const ms_event_t* ev,
                          ms_actions_t* out) {
  note_eof(m, ev, out);
  m->rs.outcome = "save-failed";
  leave_saving(m, ev, out);
}

/* It died before its state arrived (a crash in its serializer, the OOM
 * killer): the last good state, if any, is handed over. */
static void saving_on_exit(ms_machine_t* m, const ms_event_t* ev,
                           ms_actions_t* out) {
  exited(m, ev, out);
  m->rs.outcome = "save-failed";
  m->rs.t_state = ev->now;
  say_status(m, out, MS_LOG_DIED_SAVING);
  replace_worker(m, ev, out);
}

static void saving_on_timeout(ms_machine_t* m, const ms_event_t* ev,
                              ms_actions_t* out) {
  m->rs.outcome = "save-timeout";
  say(m, out, MS_LOG_SAVE_TIMEOUT);
  leave_saving(m, ev, out);
}

/* Told to stop while a restart checks the state, collects evidence or
 * stops the worker: the restart's own stop follows and ends memsup (a
 * save under way is saving_on_stop's). */
static void restart_on_stop(ms_machine_t* m, const ms_event_t* ev,
                            ms_actions_t* out) {
  note_stop(m, ev, out);
}

/* Told to stop during a save: memsup does not wait out the save (up to
 * --grace): the worker gets memsup's stop signal now, as from RUNNING.  A
 * state it still sends while it ends is checked and kept (STOPPING takes
 * it as a checkpoint); the record ends with outcome "stopped". */
static void saving_on_stop(ms_machine_t* m, const ms_event_t* ev,
                           ms_actions_t* out) {
  if (!note_stop(m, ev, out)) return;
  m->rs.outcome = "stopped";
  stop_worker(m, ev, out, ev->signal.sig);
}

static void on_saving(ms_machine_t* m, const ms_event_t* ev, ms_actions_t* out) {
  switch (ev->type) {
    case MS_EV_TICK: tick(m, ev, out); break;
    case MS_EV_SAMPLE: saving_on_sample(m, ev, out); break;
    case MS_EV_MEASURED: note_measured(m, ev, out); break;
    case MS_EV_GONE: note_gone(m, ev, out); break;
    case MS_EV_HELLO: note_hello(m, ev, out); break;
    case MS_EV_STATS: saving_on_stats(m, ev, out); break;
    case MS_EV_STATE: saving_on_state(m, ev, out); break;
    case MS_EV_STATE_OK: /* a checkpoint's check */
    case MS_EV_STATE_BAD: note_checked(m, ev, out); break;
    case MS_EV_SAVE_FAILED: saving_on_save_failed(m, ev, out); break;
    case MS_EV_SEND_FAILED: saving_on_send_failed(m, ev, out); break;
    case MS_EV_PURGED: note_purged(m, ev, out); break;
    case MS_EV_READY: note_ready(m, ev, out); break;
    case MS_EV_EOF: saving_on_eof(m, ev, out); break;
    case MS_EV_EXIT: saving_on_exit(m, ev, out); break;
    case MS_EV_TIMEOUT: saving_on_timeout(m, ev, out); break;
    case MS_EV_STOP: saving_on_stop(m, ev, out); break;
    case MS_EV_FORWARD: forward(m, ev, out); break;
    case MS_EV_EVIDENCE: note_evidence(m, ev, out); break; /* stop follows */
    case MS_EV_EARLY: ignore(m, ev, out); break; /* not running: stale */
    case MS_EV_START:
    case MS_EV_SPAWNED:
    case MS_EV_SPAWN_FAILED:
    case MS_EV_COUNT: unexpected(m, ev, out); break;
  }
}

/* ---- VERIFYING: the restart's state is being checked ---------------------- */

/* The next worker is spawned only once the check has answered, so its
 * welcome carries the state just saved when it was good. */
static void verifying_on_checked(ms_machine_t* m, const ms_event_t* ev,
                                 ms_actions_t* out) {
  if (!note_checked(m, ev, out)) return;
  if (m->w.up)
    leave_saving(m, ev, out);
  else
    replace_worker(m, ev, out); /* it exited while memsup checked */
}

static void verifying_on_exit(ms_machine_t* m, const ms_event_t* ev,
                              ms_actions_t* out) {
  exited(m, ev, out); /* the check's answer decides what follows */
}

static void verifying_on_tick(ms_machine_t* m, const ms_event_t* ev,
                              ms_actions_t* out) {
  if (m->w.up) tick(m, ev, out);
}

static void on_verifying(ms_machine_t* m, const ms_event_t* ev,
                         ms_actions_t* out) {
  switch (ev->type) {
    case MS_EV_TICK: verifying_on_tick(m, ev, out); break;
    case MS_EV_SAMPLE: saving_on_sample(m, ev, out); break;
    case MS_EV_MEASURED: note_measured(m, ev, out); break;
    case MS_EV_GONE: note_gone(m, ev, out); break;
    case MS_EV_HELLO: note_hello(m, ev, out); break;
    case MS_EV_STATS: note_stats(m, ev, out); break;
    case MS_EV_STATE: note_state(m, ev, out); break; /* a checkpoint */
    case MS_EV_STATE_OK:
    case MS_EV_STATE_BAD: verifying_on_checked(m, ev, out); break;
    case MS_EV_SAVE_FAILED: ignore(m, ev, out); break; /* answered already */
    case MS_EV_SEND_FAILED: note_send_failed(m, ev, out); break;
    case MS_EV_PURGED: note_purged(m, ev, out); break;
    case MS_EV_READY: note_ready(m, ev, out); break;
    case MS_EV_EOF: note_eof(m, ev, out); break; /* the state is in hand */
    case MS_EV_EXIT: verifying_on_exit(m, ev, out); break;
    case MS_EV_STOP: restart_on_stop(m, ev, out); break;
    case MS_EV_FORWARD: forward(m, ev, out); break;
    case MS_EV_EVIDENCE: note_evidence(m, ev, out); break;
    case MS_EV_EARLY: ignore(m, ev, out); break; /* not running: stale */
    case MS_EV_TIMEOUT: /* the save timer stopped when the state came */
    case MS_EV_START:
    case MS_EV_SPAWNED:
    case MS_EV_SPAWN_FAILED:
    case MS_EV_COUNT: unexpected(m, ev, out); break;
  }
}

/* ---- COLLECTING: the stop waits for the evidence -------------------------- */

static void collecting_on_evidence(ms_machine_t* m, const ms_event_t* ev,
                                   ms_actions_t* out) {
  if (note_evidence(m, ev, out)) stop_worker(m, ev, out, SIGTERM);
}

/* The read is late: stop anyway; rows that come later still join the
 * record if it is not logged yet. */
static void collecting_on_timeout(ms_machine_t* m, const ms_event_t* ev,
                                  ms_actions_t* out) {
  stop_worker(m, ev, out, SIGTERM);
}

static void restart_on_exit(ms_machine_t* m, const ms_event_t* ev,
                            ms_actions_t* out) {
  exited(m, ev, out);
  replace_worker(m, ev, out);
}

static void on_collecting(ms_machine_t* m, const ms_event_t* ev,
                          ms_actions_t* out) {
  switch (ev->type) {
    case MS_EV_EVIDENCE: collecting_on_evidence(m, ev, out); break;
    case MS_EV_TIMEOUT: collecting_on_timeout(m, ev, out); break;
    case MS_EV_EXIT: restart_on_exit(m, ev, out); break;
    case MS_EV_STOP: restart_on_stop(m, ev, out); break;
    case MS_EV_TICK: ignore(m, ev, out); break; /* frozen, or about to stop */
    case MS_EV_SAMPLE: ignore(m, ev, out); break;
    case MS_EV_MEASURED: note_measured(m, ev, out); break;
    case MS_EV_GONE: note_gone(m, ev, out); break;
    case MS_EV_HELLO: note_hello(m, ev, out); break;
    case MS_EV_STATS: note_stats(m, ev, out); break;
    case MS_EV_STATE: note_state(m, ev, out); break;
    case MS_EV_STATE_OK:
    case MS_EV_STATE_BAD: note_checked(m, ev, out); break;
    case MS_EV_SAVE_FAILED: ignore(m, ev, out); break; /* settled already */
    case MS_EV_SEND_FAILED: note_send_failed(m, ev, out); break;
    case MS_EV_PURGED: note_purged(m, ev, out); break;
    case MS_EV_READY: note_ready(m, ev, out); break;
    case MS_EV_EOF: note_eof(m, ev, out); break;
    case MS_EV_FORWARD: forward(m, ev, out); break;
    case MS_EV_EARLY: ignore(m, ev, out); break; /* not running: stale */
    case MS_EV_START:
    case MS_EV_SPAWNED:
    case MS_EV_SPAWN_FAILED:
    case MS_EV_COUNT: unexpected(m, ev, out); break;
  }
}

/* ---- STOPPING: signalled; SIGKILL after --grace ---------------------------- */

static void stopping_on_exit(ms_machine_t* m, const ms_event_t* ev,
                             ms_actions_t* out) {
  exited(m, ev, out);
  if (m->want == MS_WANT_DOWN)
    end_with_worker(m, ev, out);
  else if (m->rs.active && !m->rs.dry)
    replace_worker(m, ev, out);
  else
    crashed(m, ev, out); /* not reached: STOPPING is for restarts or DOWN */
}

static void stopping_on_timeout(ms_machine_t* m, const ms_event_t* ev,
                                ms_actions_t* out) {
  (void)ev;
  say(m, out, MS_LOG_KILL);
  signal_group(out, SIGKILL);
}

static void on_stopping(ms_machine_t* m, const ms_event_t* ev,
                        ms_actions_t* out) {
  switch (ev->type) {
    case MS_EV_EXIT: stopping_on_exit(m, ev, out); break;
    case MS_EV_TIMEOUT: stopping_on_timeout(m, ev, out); break;
    case MS_EV_STOP: restart_on_stop(m, ev, out); break;
    case MS_EV_TICK: ignore(m, ev, out); break;
    case MS_EV_SAMPLE: ignore(m, ev, out); break;
    case MS_EV_MEASURED: note_measured(m, ev, out); break;
    case MS_EV_GONE: note_gone(m, ev, out); break;
    case MS_EV_HELLO: note_hello(m, ev, out); break;
    case MS_EV_STATS: note_stats(m, ev, out); break;
    case MS_EV_STATE: note_state(m, ev, out); break; /* e.g. a late save */
    case MS_EV_STATE_OK:
    case MS_EV_STATE_BAD: note_checked(m, ev, out); break;
    case MS_EV_SAVE_FAILED: ignore(m, ev, out); break;
    case MS_EV_SEND_FAILED: note_send_failed(m, ev, out); break;
    case MS_EV_PURGED: note_purged(m, ev, out); break;
    case MS_EV_READY: note_ready(m, ev, out); break;
    case MS_EV_EOF: note_eof(m, ev, out); break;
    case MS_EV_FORWARD: forward(m, ev, out); break;
    case MS_EV_EVIDENCE: note_evidence(m, ev, out); break;
    case MS_EV_EARLY: ignore(m, ev, out); break; /* not running: stale */
    case MS_EV_START:
    case MS_EV_SPAWNED:
    case MS_EV_SPAWN_FAILED:
    case MS_EV_COUNT: unexpected(m, ev, out); break;
  }
}

/* ---- BACKOFF: no worker; the timer starts the next ------------------------- */

static void backoff_on_timeout(ms_machine_t* m, const ms_event_t* ev,
                               ms_actions_t* out) {
  (void)ev;
  spawn(m, out);
}

/* No worker (between two): memsup just ends. */
static void backoff_on_stop(ms_machine_t* m, const ms_event_t* ev,
                            ms_actions_t* out) {
  if (!note_stop(m, ev, out)) return;
  if (m->rs.active && !m->rs.dry) finish(m, ev, out, NULL);
  to_exit(m, out, 128 + ev->signal.sig);
}

static void on_backoff(ms_machine_t* m, const ms_event_t* ev, ms_actions_t* out) {
  switch (ev->type) {
    case MS_EV_TIMEOUT: backoff_on_timeout(m, ev, out); break;
    case MS_EV_STOP: backoff_on_stop(m, ev, out); break;
    case MS_EV_TICK: ignore(m, ev, out); break;
    case MS_EV_FORWARD: ignore(m, ev, out); break; /* nobody to forward to */
    case MS_EV_STATE_OK:
    case MS_EV_STATE_BAD: note_checked(m, ev, out); break;
    case MS_EV_EVIDENCE: note_evidence(m, ev, out); break;
    case MS_EV_MEASURED: note_measured(m, ev, out); break; /* the old one's */
    case MS_EV_GONE: note_gone(m, ev, out); break;
    case MS_EV_EARLY: ignore(m, ev, out); break; /* not running: stale */
    case MS_EV_START:
    case MS_EV_SPAWNED:
    case MS_EV_SPAWN_FAILED:
    case MS_EV_SAMPLE:
    case MS_EV_HELLO:
    case MS_EV_STATS:
    case MS_EV_STATE:
    case MS_EV_SAVE_FAILED:
    case MS_EV_SEND_FAILED:
    case MS_EV_PURGED:
    case MS_EV_READY:
    case MS_EV_EOF:
    case MS_EV_EXIT:
    case MS_EV_COUNT: unexpected(m, ev, out); break;
  }
}

/* ---- JUDGING: the new worker's "after" ------------------------------------ */

/* The new worker is held to the limit like any other: a crossing within
 * the judged window (rs.judge_ns from its spawn) is the verdict "did not
 * help" (check_limit -> judge).  Otherwise the verdict comes at the first
 * full sample past the window, for a worker that speaks the SDK (it said
 * hello, or an earlier worker of the slot did) once it is ready or the
 * handshake timeout passed.  The window scales with the old worker's life
 * (policy.h), so a leak, which crosses again after about a whole life, is
 * judged helped every time, and a worker that needs more than the limit
 * as it starts is not. */
static void judging_on_sample(ms_machine_t* m, const ms_event_t* ev,
                              ms_actions_t* out) {
  const ms_worker_t* w = &m->w;
  running_on_sample(m, ev, out);
  if (m->state != MS_ST_JUDGING) return; /* crossed: judged */
  uint64_t age = ev->now - w->started_ns;
  int sdk = w->sdk || m->sdk_seen;
  if (age < m->rs.judge_ns || !ev->sample.mem.full) return;
  if (sdk && !w->ready && age < m->cfg->handshake_ns) return;
  judge(m, ev, out, &ev->sample.mem, 0, w->metric, 0);
}

static void judging_on_ready(ms_machine_t* m, const ms_event_t* ev,
                             ms_actions_t* out) {
  note_ready(m, ev, out);
  m->rs.t_ready = ev->now;
  snprintf(m->rs.restore, sizeof(m->rs.restore), "%.15s", ev->ready.text);
  m->rs.held_unix_us = ev->ready.restored_unix_us;
}

/* The new worker died before its "after": the restart ends without one,
 * and the death is a crash like any other. */
static void judging_on_exit(ms_machine_t* m, const ms_event_t* ev,
                            ms_actions_t* out) {
  exited(m, ev, out);
  finish(m, ev, out, NULL);
  crashed(m, ev, out);
}

static void judging_on_stop(ms_machine_t* m, const ms_event_t* ev,
                            ms_actions_t* out) {
  if (!note_stop(m, ev, out)) return;
  finish(m, ev, out, NULL);
  stop_worker(m, ev, out, ev->signal.sig);
}

static void on_judging(ms_machine_t* m, const ms_event_t* ev, ms_actions_t* out) {
  switch (ev->type) {
    case MS_EV_TICK: tick(m, ev, out); break;
    case MS_EV_SAMPLE: judging_on_sample(m, ev, out); break;
    case MS_EV_MEASURED: running_on_measured(m, ev, out); break;
    case MS_EV_GONE: note_gone(m, ev, out); break; /* its exit follows */
    case MS_EV_HELLO: note_hello(m, ev, out); break;
    case MS_EV_STATS: running_on_stats(m, ev, out); break;
    case MS_EV_STATE: note_state(m, ev, out); break;
    case MS_EV_STATE_OK:
    case MS_EV_STATE_BAD: note_checked(m, ev, out); break;
    case MS_EV_SAVE_FAILED: ignore(m, ev, out); break;
    case MS_EV_SEND_FAILED: note_send_failed(m, ev, out); break;
    case MS_EV_PURGED: note_purged(m, ev, out); break;
    case MS_EV_READY: judging_on_ready(m, ev, out); break;
    case MS_EV_EOF: note_eof(m, ev, out); break;
    case MS_EV_EXIT: judging_on_exit(m, ev, out); break;
    case MS_EV_STOP: judging_on_stop(m, ev, out); break;
    case MS_EV_FORWARD: forward(m, ev, out); break;
    case MS_EV_EVIDENCE: note_evidence(m, ev, out); break;
    case MS_EV_EARLY: ignore(m, ev, out); break; /* not running: stale */
    case MS_EV_TIMEOUT: /* no timer runs here */
    case MS_EV_START:
    case MS_EV_SPAWNED:
    case MS_EV_SPAWN_FAILED:
    case MS_EV_COUNT: unexpected(m, ev, out); break;
  }
}

/* ---- DONE: memsup is ending ------------------------------------------------ */

static void on_done(ms_machine_t* m, const ms_event_t* ev, ms_actions_t* out) {
  switch (ev->type) {
    /* Late answers (a check, an evidence read) and late signals: dropped. */
    case MS_EV_EARLY: ignore(m, ev, out); break; /* not running: stale */
    case MS_EV_STATE:
    case MS_EV_STATE_OK:
    case MS_EV_STATE_BAD:
    case MS_EV_START:
    case MS_EV_SPAWNED:
    case MS_EV_SPAWN_FAILED:
    case MS_EV_TICK:
    case MS_EV_SAMPLE:
    case MS_EV_MEASURED:
    case MS_EV_GONE:
    case MS_EV_HELLO:
    case MS_EV_STATS:
    case MS_EV_SAVE_FAILED:
    case MS_EV_SEND_FAILED:
    case MS_EV_PURGED:
    case MS_EV_READY:
    case MS_EV_EOF:
    case MS_EV_EXIT:
    case MS_EV_TIMEOUT:
    case MS_EV_STOP:
    case MS_EV_FORWARD:
    case MS_EV_EVIDENCE:
    case MS_EV_COUNT: ignore(m, ev, out); break;
  }
}

/* ---- the machine ------------------------------------------------------------ */

int ms_machine_init(ms_machine_t* m, const ms_config_t* cfg) {
  memset(m, 0, sizeof(*m));
  m->cfg = cfg;
  m->state = MS_ST_DOWN;
  m->want = MS_WANT_UP;
  m->pool_busy = -1;
  m->intensity.max = cfg->max_restarts;
  ms_cause_init(&m->cause);
  m->intensity.times = calloc((size_t)cfg->max_restarts + 1, sizeof(uint64_t));
  return m->intensity.times ? 0 : -ENOMEM;
}

void ms_machine_free(ms_machine_t* m) {
  free(m->intensity.times);
  m->intensity.times = NULL;
}

void ms_machine_step(ms_machine_t* m, const ms_event_t* ev, ms_actions_t* out) {
  out->n = 0;
  if (ev->type == MS_EV_TIMEOUT) {
    if (!m->timer_armed) return; /* cancelled after it fired: stale */
    m->timer_armed = 0;
  }
  switch (m->state) {
    case MS_ST_DOWN: on_down(m, ev, out); break;
    case MS_ST_STARTING: on_starting(m, ev, out); break;
    case MS_ST_RUNNING: on_running(m, ev, out); break;
    case MS_ST_SAVING: on_saving(m, ev, out); break;
    case MS_ST_VERIFYING: on_verifying(m, ev, out); break;
    case MS_ST_COLLECTING: on_collecting(m, ev, out); break;
    case MS_ST_STOPPING: on_stopping(m, ev, out); break;
    case MS_ST_BACKOFF: on_backoff(m, ev, out); break;
    case MS_ST_JUDGING: on_judging(m, ev, out); break;
    case MS_ST_DONE: on_done(m, ev, out); break;
    case MS_ST_COUNT: unexpected(m, ev, out); break;
  }
}

const char* ms_state_name(ms_state_id_t s) {
  static const char* names[MS_ST_COUNT] = {
      "DOWN",    "STARTING", "RUNNING", "SAVING",  "VERIFYING",
      "COLLECTING", "STOPPING", "BACKOFF", "JUDGING", "DONE"};
  return s < MS_ST_COUNT ? names[s] : "?";
}

const char* ms_event_name(ms_event_type_t e) {
  static const char* names[MS_EV_COUNT] = {
      "start",   "spawned",     "spawn_failed", "tick",    "sample",
      "measured", "gone",       "hello",        "stats",   "state",
      "state_ok", "state_bad",  "save_failed",  "send_failed", "purged",
      "ready",   "eof",         "exit",         "timeout", "stop",
      "forward", "evidence",     "early"};
  return e < MS_EV_COUNT ? names[e] : "?";
}

const char* ms_metric_name(ms_metric_t m) {
  switch (m) {
    case MS_METRIC_RSS: return "rss";
    case MS_METRIC_HEAP: return "heap";
    case MS_METRIC_FOOTPRINT: break;
  }
  return "footprint";
}
