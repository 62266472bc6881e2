/* supervise.c: the supervisor's state machine.  It owns the current worker
 * (child.h), the sampling tick, the restart under way, the last good state
 * (handoff.h) and memsup's signal handlers; decisions come from policy.h,
 * figures from sample.h, events go to restartlog.h and log.h.
 *
 * Phases of the worker slot:
 *   RUNNING   a worker is up and sampled
 *   SAVING    memory restart: the worker was asked to save its state
 *   STOPPING  SIGTERM (or memsup's own signal) sent; SIGKILL after --grace
 *   BACKOFF   no worker; a timer starts the next one
 *   DONE      memsup is shutting down; handles are closing
 * `want` says what is wanted of the slot (runit's state/want split): UP,
 * or DOWN once memsup itself was told to stop.
 */
#include "supervise.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "channel.h"
#include "child.h"
#include "evidence.h"
#include "handoff.h"
#include "log.h"
#include "memsup_wire.h"
#include "policy.h"
#include "reaper.h"
#include "sample.h"

#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull
/* Soft-limit purges are at most this frequent: a purge costs the worker
 * some CPU and, if it did not free enough, asking again at once will not
 * free more. */
#define PURGE_MIN_GAP_NS (10 * NS_PER_S)
/* A worker that closed its channel is given this long to exit before the
 * closing is reported as a problem. */
#define CHANNEL_EOF_NS (500 * NS_PER_MS)

typedef enum { PH_RUNNING, PH_SAVING, PH_STOPPING, PH_BACKOFF, PH_DONE } phase_t;
typedef enum { WANT_UP, WANT_DOWN } want_t;

static const int forwarded[] = {SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT};
static const int stopping[] = {SIGTERM, SIGINT};
#define NSIG_HANDLED 6

/* The memory restart under way, from the decision to the new worker's
 * first sample. */
typedef struct {
  int active;
  ms_mem_t before;
  int before_heap;          /* heap figures below are valid */
  ms_msg_t before_stats;    /* heap + gauges at the decision */
  uint64_t value;           /* the metric value that crossed */
  ms_metric_t metric;       /* the metric it was (heap may fall back) */
  double over_for_s;
  pid_t old_pid;
  double uptime_s;
  uint64_t seq;             /* save request answered by "state" */
  double decided_unix_s;    /* wall clock of the decision (benchmarks) */
  uint64_t t_decide, t_recv, t_state, t_stop, t_exit, t_spawn, t_welcome, t_ready;
  double recv_unix_s;       /* wall clock when the state arrived (benchmarks) */
  uint64_t held_unix_us;    /* when the new worker held the bytes (its SDK) */
  const char* outcome;      /* state outcome, see docs/restart-log.md */
  int expect_sdk;           /* the old worker spoke the SDK */
  int awaiting_after;       /* new worker up; waiting for its first sample */
  uint64_t saved_bytes;
  char restore[16];         /* what the new worker said in "ready" */
  char handed[16];          /* kind of state sent to the new worker, "" none */
  cJSON* evidence;          /* taken before the stop; owned until logged */
} restart_t;

struct ms_sup_s {
  uv_loop_t* loop;
  const ms_config_t* cfg;
  ms_rlog_t* rlog;
  ms_rlog_t* slog;
  char** env;
  ms_child_t* child;
  unsigned gen;
  phase_t phase;
  want_t want;
  uv_timer_t tick;
  uv_timer_t timer; /* save timeout, SIGKILL after grace, or backoff */
  uv_signal_t sigs[NSIG_HANDLED];
  uv_signal_t sigchld;
  int reaper;
  int pending_close;

  ms_limit_state_t lim;
  ms_intensity_t intensity;
  unsigned consecutive_crashes;
  unsigned unhelpful;   /* consecutive memory restarts that did not help */
  unsigned restarts;    /* memory restarts so far */
  uint64_t seq;
  uint64_t last_purge_ns;
  uint64_t purge_seq;
  ms_mem_t purge_before;
  int heap_fallback_warned;
  int tree_hint_warned; /* the descendants hold the memory: said once */
  int dry_episode;      /* --dry-run: this run of overs was logged */
  int sdk_seen;         /* some worker of this command spoke the SDK */
  restart_t rs;

  ms_state_t state;     /* last good state */
  int storing, store_again;

  int stop_signal;      /* the signal that told memsup to stop, 0 none */
  int last_status;      /* last worker status as an exit code */
  int exit_code;
  int log_failed, slog_failed;
};

static void spawn_worker(ms_sup_t* sup);
static void stop_worker(ms_sup_t* sup, int sig);
static void shutdown_sup(ms_sup_t* sup);

/* ---- small helpers ---------------------------------------------------- */

static double secs(uint64_t ns) { return (double)ns / 1e9; }
static double msecs(uint64_t ns) { return (double)ns / 1e6; }
/* Log figures to the millisecond (or microsecond for ms values): more
 * digits than that are noise from the clock, not information. */
static double r3(double x) { return (double)(int64_t)(x * 1000 + 0.5) / 1000; }
static double unix_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)(ts.tv_nsec / 1000) / 1e6;
}

static const char* metric_name(ms_metric_t m) {
  switch (m) {
    case MS_METRIC_RSS: return "rss";
    case MS_METRIC_HEAP: return "heap";
    default: return "footprint";
  }
}

static const char* signame(int sig) {
  static char buf[16];
  const char* abbrev = sigabbrev_np(sig);
  if (abbrev == NULL) {
    snprintf(buf, sizeof(buf), "SIG%d", sig);
    return buf;
  }
  snprintf(buf, sizeof(buf), "SIG%s", abbrev);
  return buf;
}

/* One --sample-log line, at most every --sample-every per worker. */
static void log_sample(ms_sup_t* sup, ms_child_t* c, const ms_mem_t* m,
                       uint64_t now) {
  if (sup->slog == NULL ||
      (c->last_slog_ns && now - c->last_slog_ns < sup->cfg->sample_every_ns))
    return;
  c->last_slog_ns = now;
  cJSON* ev = ms_rlog_event("sample", c->pid, c->gen);
  ms_rlog_add_mem(ev, m, c->has_heap, &c->stats);
  cJSON_AddBoolToObject(ev, "full", m->full);
  cJSON_AddNumberToObject(ev, "limit", (double)sup->cfg->limit);
  int err = ms_rlog_write(sup->slog, ev);
  if (err < 0 && !sup->slog_failed) {
    sup->slog_failed = 1;
    ms_error("write %s: %s (samples are no longer logged there)",
             sup->cfg->sample_log_path, strerror(-err));
  }
}

static void emit(ms_sup_t* sup, cJSON* ev) {
  int err = ms_rlog_write(sup->rlog, ev);
  if (err < 0 && !sup->log_failed) {
    sup->log_failed = 1;
    ms_error("write %s: %s (events are no longer logged there)",
             sup->cfg->log_path, strerror(-err));
  }
}

/* The figure --metric acts on (heap falls back to footprint when the SDK
 * gave none). */
static uint64_t metric_value(ms_metric_t metric, const ms_mem_t* m, int has_heap,
                             const ms_msg_t* stats) {
  if (metric == MS_METRIC_RSS) return m->rss;
  if (metric == MS_METRIC_HEAP && has_heap && stats) return stats->allocated;
  return m->footprint;
}

static int status_code(int64_t exit_status, int term_signal) {
  return term_signal ? 128 + term_signal : (int)exit_status;
}

/* An "exit" or "crash" event: exit_code, or signal when killed by one. */
static cJSON* status_event(const char* event, pid_t pid, unsigned gen,
                           int64_t exit_status, int term_signal, double uptime) {
  cJSON* ev = ms_rlog_event(event, pid, gen);
  if (term_signal) {
    cJSON_AddNullToObject(ev, "exit_code");
    cJSON_AddStringToObject(ev, "signal", signame(term_signal));
  } else {
    cJSON_AddNumberToObject(ev, "exit_code", (double)exit_status);
    cJSON_AddNullToObject(ev, "signal");
  }
  cJSON_AddNumberToObject(ev, "uptime_s", r3(uptime));
  return ev;
}

static void timer_start(ms_sup_t* sup, uv_timer_cb cb, uint64_t ns) {
  uv_timer_start(&sup->timer, cb, (ns + NS_PER_MS - 1) / NS_PER_MS, 0);
}

/* ---- state keeping ---------------------------------------------------- */

typedef struct {
  uv_work_t req;
  ms_sup_t* sup;
  ms_state_t copy; /* its own dup of the memfd */
  int err;
} store_t;

static void store_work(uv_work_t* req) {
  store_t* s = req->data;
  s->err = ms_state_store(s->sup->cfg->state_dir, &s->copy);
}

static void persist_state(ms_sup_t* sup);

static void store_done(uv_work_t* req, int status) {
  store_t* s = req->data;
  ms_sup_t* sup = s->sup;
  (void)status;
  if (s->err < 0)
    ms_error("store state in %s: %s (the previous copy is kept)",
             sup->cfg->state_dir, strerror(-s->err));
  else
    ms_debug("state (%" PRIu64 " bytes) stored in %s", s->copy.bytes,
             sup->cfg->state_dir);
  ms_state_clear(&s->copy);
  free(s);
  sup->storing = 0;
  if (sup->store_again) {
    sup->store_again = 0;
    persist_state(sup);
  }
}

/* Writes the current state to --state-dir on a uv work thread: an fsync of
 * a big state takes far longer than the loop may stall. */
static void persist_state(ms_sup_t* sup) {
  if (sup->cfg->state_dir == NULL || sup->state.fd < 0 || sup->phase == PH_DONE)
    return;
  if (sup->storing) {
    sup->store_again = 1;
    return;
  }
  store_t* s = calloc(1, sizeof(*s));
  if (s == NULL) return;
  s->sup = sup;
  int err = ms_state_dup(&sup->state, &s->copy);
  if (err < 0) {
    ms_error("store state: dup: %s", strerror(-err));
    free(s);
    return;
  }
  s->req.data = s;
  sup->storing = 1;
  if (uv_queue_work(sup->loop, &s->req, store_work, store_done) < 0) {
    sup->storing = 0;
    ms_state_clear(&s->copy);
    free(s);
  }
}

/* Checks a state memfd from the worker and keeps it when good.  Returns 0
 * or the -errno of ms_state_verify() (fd is closed either way). */
static int accept_state(ms_sup_t* sup, const ms_msg_t* msg, int fd) {
  if (fd < 0) return -EBADMSG;
  int err = ms_state_verify(fd, msg->bytes, msg->crc32c, sup->cfg->max_state);
  if (err < 0) {
    close(fd);
    return err;
  }
  ms_state_t st;
  ms_state_init(&st);
  st.fd = fd;
  st.bytes = msg->bytes;
  st.crc32c = msg->crc32c;
  snprintf(st.kind, sizeof(st.kind), "%s", msg->kind);
  st.gen = sup->child ? sup->child->gen : 0;
  st.saved_ms = (uint64_t)uv_hrtime() / NS_PER_MS;
  ms_state_replace(&sup->state, &st);
  persist_state(sup);
  return 0;
}

static const char* state_error_outcome(int err) {
  if (err == -EFBIG) return "too-big";
  return "corrupt";
}

/* ---- the restart record ----------------------------------------------- */

/* Evidence of why the worker bloated, taken before it is stopped: the
 * growth rate over its life (from its first measured sample). */
#define EVIDENCE_ROWS 10
/* A growth rate needs this many ticks of life behind it: over less, it
 * measures start-up (a restore filling memory), not a trend. */
#define GROWTH_MIN_TICKS 10

/* Evidence of why the worker bloated, taken before it is stopped (a
 * restart destroys it): the top mappings by private dirty memory, the
 * growth rate over its life (from its first measured sample), and the
 * classification that follows from those and the SDK's heap figures.
 * Reading /proc/PID/smaps costs up to ~0.2 s on a worker with 60,000
 * mappings; it happens once per restart, never on the tick. */
static cJSON* evidence(ms_child_t* c, const ms_mem_t* m, uint64_t now,
                       ms_metric_t metric) {
  ms_classify_in_t in;
  ms_classify_out_t out;
  memset(&in, 0, sizeof(in));
  in.footprint = m->footprint;
  in.rss = m->rss;
  in.lazyfree = m->lazyfree;
  in.rss_file = m->rss_file;
  in.has_heap = c->has_heap;
  in.heap_allocated = c->stats.allocated;
  in.heap_resident = c->stats.resident;
  if (c->first_ns && now >= c->first_ns + GROWTH_MIN_TICKS * c->sampler.interval_ns) {
    in.has_growth = 1;
    in.footprint_growth_bps =
        ((double)m->footprint - (double)c->first_footprint) / secs(now - c->first_ns);
  }
  ms_classify(&in, &out);
  /* With --tree: the split by process and the biggest one's mappings. */
  cJSON* ev = ms_evidence_capture(
      c->pid, c->sampler.tree,
      metric == MS_METRIC_RSS ? MS_RANK_RSS : MS_RANK_FOOTPRINT, EVIDENCE_ROWS,
      &out);
  if (ev == NULL) return NULL;
  if (in.has_growth)
    cJSON_AddNumberToObject(ev, "growth_bps", r3(in.footprint_growth_bps));
  else
    cJSON_AddNullToObject(ev, "growth_bps");
  return ev;
}

static void restart_clear(restart_t* rs) {
  cJSON_Delete(rs->evidence);
  memset(rs, 0, sizeof(*rs));
}

static void finish_restart(ms_sup_t* sup, const ms_mem_t* after, int after_heap,
                           const ms_msg_t* after_stats) {
  restart_t* rs = &sup->rs;
  const ms_config_t* cfg = sup->cfg;
  ms_child_t* c = sup->child;
  char b1[16], b2[16], b3[16], b4[16], b5[16], b6[16];
  uint64_t up = rs->t_ready ? rs->t_ready : rs->t_spawn;
  uint64_t downtime = up && rs->t_exit ? up - rs->t_exit : 0;

  rs->awaiting_after = 0;
  rs->active = 0;
  sup->restarts++;

  cJSON* ev = ms_rlog_event("restart", c ? c->pid : 0, sup->gen);
  cJSON_AddStringToObject(ev, "reason", "limit");
  cJSON_AddStringToObject(ev, "metric", metric_name(rs->metric));
  cJSON_AddNumberToObject(ev, "limit", (double)cfg->limit);
  cJSON_AddNumberToObject(ev, "value", (double)rs->value);
  cJSON_AddNumberToObject(ev, "over_for_s", r3(rs->over_for_s));
  cJSON_AddNumberToObject(ev, "decided_unix_s", rs->decided_unix_s);
  cJSON_AddNumberToObject(ev, "old_pid", rs->old_pid);
  cJSON_AddNumberToObject(ev, "new_pid", c ? c->pid : 0);
  cJSON_AddNumberToObject(ev, "uptime_s", r3(rs->uptime_s));
  cJSON_AddItemToObject(ev, "before",
                        ms_rlog_mem(&rs->before, rs->before_heap, &rs->before_stats));
  if (after)
    cJSON_AddItemToObject(ev, "after", ms_rlog_mem(after, after_heap, after_stats));
  else
    cJSON_AddNullToObject(ev, "after");
  cJSON_AddItemToObject(ev, "evidence", rs->evidence);
  rs->evidence = NULL;
  int unhelpful = after && ms_policy_unhelpful(
                               metric_value(rs->metric, &rs->before, rs->before_heap,
                                            &rs->before_stats),
                               metric_value(rs->metric, after, after_heap, after_stats));
  if (after)
    cJSON_AddBoolToObject(ev, "helped", !unhelpful);
  else
    cJSON_AddNullToObject(ev, "helped");
  cJSON_AddNumberToObject(ev, "downtime_ms", r3(msecs(downtime)));
  cJSON_AddNumberToObject(ev, "spawn_ms",
                          r3(rs->t_spawn && rs->t_exit ? msecs(rs->t_spawn - rs->t_exit) : 0));
  cJSON_AddNumberToObject(ev, "stop_ms",
                          r3(rs->t_exit && rs->t_stop ? msecs(rs->t_exit - rs->t_stop) : 0));
  if (rs->expect_sdk) {
    cJSON* st = cJSON_AddObjectToObject(ev, "state");
    cJSON_AddStringToObject(st, "outcome", rs->outcome);
    cJSON_AddNumberToObject(st, "bytes", (double)rs->saved_bytes);
    cJSON_AddNumberToObject(st, "save_ms",
                            r3(rs->t_state ? msecs(rs->t_state - rs->t_decide) : 0));
    cJSON_AddNumberToObject(st, "verify_ms",
                            r3(rs->t_recv ? msecs(rs->t_state - rs->t_recv) : 0));
    if (rs->t_recv)
      cJSON_AddNumberToObject(st, "received_unix_s", rs->recv_unix_s);
    else
      cJSON_AddNullToObject(st, "received_unix_s");
    if (rs->held_unix_us)
      cJSON_AddNumberToObject(st, "held_unix_s", (double)rs->held_unix_us / 1e6);
    else
      cJSON_AddNullToObject(st, "held_unix_s");
    cJSON_AddNumberToObject(st, "restore_ms",
                            r3(rs->t_ready && rs->t_welcome
                                   ? msecs(rs->t_ready - rs->t_welcome)
                                   : 0));
    if (rs->handed[0])
      cJSON_AddStringToObject(st, "handed", rs->handed);
    else
      cJSON_AddNullToObject(st, "handed");
    if (rs->restore[0])
      cJSON_AddStringToObject(st, "restore", rs->restore);
    else
      cJSON_AddNullToObject(st, "restore");
  } else {
    cJSON_AddNullToObject(ev, "state");
  }
  emit(sup, ev);

  ms_fmt_bytes(b1, rs->value);
  ms_fmt_bytes(b2, cfg->limit);
  ms_fmt_bytes(b3, rs->before.footprint);
  ms_fmt_bytes(b4, after ? after->footprint : 0);
  ms_fmt_bytes(b5, rs->before.rss);
  ms_fmt_bytes(b6, after ? after->rss : 0);
  ms_info("restart #%u (%s %s > %s after %.1f s): pid %d -> %d, "
          "footprint %s -> %s, rss %s -> %s%s%s",
          sup->restarts, metric_name(rs->metric), b1, b2, rs->uptime_s,
          (int)rs->old_pid, c ? (int)c->pid : 0, b3, after ? b4 : "?", b5,
          after ? b6 : "?", rs->expect_sdk ? ", state " : "",
          rs->expect_sdk ? rs->outcome : "");

  /* A restart after which the worker is about as big as before did not
   * help: the bloat comes back with what the worker loads.  Restarting at
   * full speed would only loop, so later restarts back off. */
  if (unhelpful) {
    sup->unhelpful++;
    ms_warn("restart #%u did not help (%s %s before, %s after): "
            "next memory restart delayed by %.0f s",
            sup->restarts, metric_name(rs->metric),
            ms_fmt_bytes(b1, metric_value(rs->metric, &rs->before, rs->before_heap,
                                          &rs->before_stats)),
            ms_fmt_bytes(b2, metric_value(rs->metric, after, after_heap, after_stats)),
            secs(ms_policy_unhelpful_delay(sup->unhelpful)));
  } else if (after) {
    sup->unhelpful = 0;
  }
}

/* Takes the "after" sample of the new worker (forcing a full read so the
 * figure is measured, not estimated) and writes the restart line. */
static void sample_after(ms_sup_t* sup) {
  ms_child_t* c = sup->child;
  ms_mem_t m;
  if (ms_sampler_take(&c->sampler, uv_hrtime(), UINT64_MAX, 1, &m) < 0) {
    finish_restart(sup, NULL, 0, NULL);
    return;
  }
  finish_restart(sup, &m, c->has_heap, &c->stats);
}

/* ---- worker lifecycle --------------------------------------------------- */

static void kill_timer_cb(uv_timer_t* t) {
  ms_sup_t* sup = t->data;
  if (sup->child == NULL) return;
  ms_warn("pid %d still running %.1f s after SIGTERM: sending SIGKILL",
          (int)sup->child->pid, secs(sup->cfg->grace_ns));
  ms_child_kill_group(sup->child, SIGKILL);
}

static void stop_worker(ms_sup_t* sup, int sig) {
  ms_child_t* c = sup->child;
  sup->phase = PH_STOPPING;
  if (sup->rs.active) sup->rs.t_stop = uv_hrtime();
  int err = ms_child_kill_group(c, sig);
  if (err < 0) ms_error("kill process group %d: %s", (int)c->pid, strerror(-err));
  /* A group frozen for the evidence (begin_restart) must run again to act
   * on the signal; SIGCONT after it, so the signal is what it wakes to. */
  ms_child_kill_group(c, SIGCONT);
  timer_start(sup, kill_timer_cb, sup->cfg->grace_ns);
}

static void save_timeout_cb(uv_timer_t* t) {
  ms_sup_t* sup = t->data;
  ms_warn("pid %d did not save its state within %.1f s: %s",
          (int)sup->child->pid, secs(sup->cfg->grace_ns),
          sup->state.fd >= 0 ? "the last good state will be handed over"
                             : "the new worker starts without state");
  sup->rs.outcome = "save-timeout";
  stop_worker(sup, SIGTERM);
}

static void collect_evidence(ms_sup_t* sup, ms_child_t* c, uint64_t now) {
  restart_t* rs = &sup->rs;
  /* The evidence must be measured: an estimate is replaced by a full read. */
  if (!rs->before.full)
    ms_sampler_take(&c->sampler, now, UINT64_MAX, 1, &rs->before);
  rs->evidence = evidence(c, &rs->before, now, rs->metric);
}

static void begin_restart(ms_sup_t* sup, const ms_mem_t* sample,
                          ms_metric_t metric, uint64_t value) {
  ms_child_t* c = sup->child;
  restart_t* rs = &sup->rs;
  uint64_t now = uv_hrtime();
  restart_clear(rs);
  rs->active = 1;
  rs->t_decide = now;
  rs->decided_unix_s = unix_now();
  rs->value = value;
  rs->metric = metric;
  rs->over_for_s = secs(now - sup->lim.over_since_ns);
  rs->old_pid = c->pid;
  rs->uptime_s = secs(now - c->started_ns);
  rs->before = *sample;
  rs->before_heap = c->has_heap;
  rs->before_stats = c->stats;
  rs->expect_sdk = c->sdk && c->chan != NULL;
  rs->outcome = "none";

  /* The stop begins now.  The evidence (a full smaps read: up to ~0.2 s on
   * a worker with 60,000 mappings) must come from the worker as it is at
   * the decision, before it exits, without letting it grow meanwhile: an
   * SDK worker is first asked to save (it serializes while we read), any
   * other is frozen with SIGSTOP and thawed by stop_worker(). */
  if (!rs->expect_sdk) {
    ms_child_kill_group(c, SIGSTOP);
    collect_evidence(sup, c, now);
    stop_worker(sup, SIGTERM);
    return;
  }
  cJSON* req = cJSON_CreateObject();
  rs->seq = ++sup->seq;
  cJSON_AddStringToObject(req, "t", MEMSUP_MSG_SAVE);
  cJSON_AddNumberToObject(req, "seq", (double)rs->seq);
  int err = ms_channel_send(c->chan, req, -1);
  cJSON_Delete(req);
  collect_evidence(sup, c, now);
  if (err < 0) {
    ms_warn("ask pid %d to save: %s", (int)c->pid, strerror(-err));
    rs->outcome = "save-failed";
    stop_worker(sup, SIGTERM);
    return;
  }
  sup->phase = PH_SAVING;
  timer_start(sup, save_timeout_cb, sup->cfg->grace_ns);
}

static void backoff_timer_cb(uv_timer_t* t) { spawn_worker(t->data); }

static void child_closed_cb(void* arg) {
  ms_sup_t* sup = arg;
  if (sup->phase == PH_DONE) shutdown_sup(sup);
}

/* The worker exited: planned (memory restart, memsup stopping) or not. */
static void on_exit_cb(ms_child_t* c, int64_t exit_status, int term_signal) {
  ms_sup_t* sup = c->data;
  uint64_t now = uv_hrtime();
  double uptime = secs(now - c->started_ns);
  int code = status_code(exit_status, term_signal);
  restart_t* rs = &sup->rs;

  uv_timer_stop(&sup->timer);
  sup->last_status = code;
  /* Whatever is left of the worker's process group goes with it, so no
   * grandchild outlives the worker it belonged to. */
  ms_child_kill_group(c, SIGKILL);
  if (rs->active && rs->awaiting_after) finish_restart(sup, NULL, 0, NULL);
  if (uptime >= secs(MS_HEALTHY_NS)) sup->consecutive_crashes = 0;

  pid_t pid = c->pid;
  unsigned gen = c->gen;
  sup->child = NULL;
  ms_child_close(c, child_closed_cb, sup);

  if (sup->want == WANT_DOWN) {
    emit(sup, status_event("exit", pid, gen, exit_status, term_signal, uptime));
    ms_info("pid %d stopped (%s %d)", (int)pid, term_signal ? "signal" : "status",
            term_signal ? term_signal : (int)exit_status);
    sup->exit_code = code;
    shutdown_sup(sup);
    return;
  }

  if (rs->active) { /* the memory restart continues with a new worker */
    rs->t_exit = now;
    if (sup->phase == PH_SAVING) {
      /* It died before its state arrived (a crash in its serializer, the
       * OOM killer): the last good state, if any, is handed over. */
      rs->outcome = "save-failed";
      rs->t_state = now;
      ms_warn("pid %d died while saving its state (%s %d)", (int)pid,
              term_signal ? "signal" : "status",
              term_signal ? term_signal : (int)exit_status);
    }
    uint64_t delay = ms_policy_unhelpful_delay(sup->unhelpful);
    if (delay) {
      sup->phase = PH_BACKOFF;
      timer_start(sup, backoff_timer_cb, delay);
    } else {
      spawn_worker(sup);
    }
    return;
  }

  int clean = term_signal == 0 && exit_status == 0;
  cJSON* ev = status_event(clean ? "exit" : "crash", pid, gen, exit_status,
                           term_signal, uptime);

  if (clean && sup->cfg->restart == MS_RESTART_ON_FAILURE) {
    emit(sup, ev);
    ms_info("pid %d exited with status 0 after %.1f s", (int)pid, uptime);
    sup->exit_code = 0;
    shutdown_sup(sup);
    return;
  }

  const ms_config_t* cfg = sup->cfg;
  if (ms_policy_crash(&sup->intensity, cfg->within_ns, now)) {
    cJSON_AddNullToObject(ev, "restart_in_ms");
    emit(sup, ev);
    ev = ms_rlog_event("giveup", pid, gen);
    unsigned n = ms_policy_crashes_within(&sup->intensity, cfg->within_ns, now);
    cJSON_AddNumberToObject(ev, "crashes", n);
    cJSON_AddNumberToObject(ev, "within_s", secs(cfg->within_ns));
    cJSON_AddNumberToObject(ev, "exit_code", code ? code : 1);
    emit(sup, ev);
    ms_error("giving up: %u exits within %.0f s (--max-restarts %u --within "
             "%.0fs); last exit status %d",
             n, secs(cfg->within_ns), cfg->max_restarts, secs(cfg->within_ns), code);
    sup->exit_code = code ? code : 1;
    shutdown_sup(sup);
    return;
  }
  uint64_t delay = ms_policy_backoff(++sup->consecutive_crashes);
  cJSON_AddNumberToObject(ev, "restart_in_ms", msecs(delay));
  emit(sup, ev);
  if (term_signal)
    ms_info("pid %d killed by %s after %.1f s; restarting in %.0f ms", (int)pid,
            signame(term_signal), uptime, msecs(delay));
  else
    ms_info("pid %d exited with status %d after %.1f s; restarting in %.0f ms",
            (int)pid, (int)exit_status, uptime, msecs(delay));
  sup->phase = PH_BACKOFF;
  timer_start(sup, backoff_timer_cb, delay);
}

static void send_welcome(ms_sup_t* sup, ms_child_t* c) {
  const ms_config_t* cfg = sup->cfg;
  cJSON* w = cJSON_CreateObject();
  cJSON_AddStringToObject(w, "t", MEMSUP_MSG_WELCOME);
  cJSON_AddNumberToObject(w, "v", MEMSUP_WIRE_VERSION);
  cJSON_AddNumberToObject(w, "gen", c->gen);
  cJSON_AddNumberToObject(w, "interval_ms", (double)(cfg->interval_ns / NS_PER_MS));
  cJSON_AddStringToObject(w, "metric", metric_name(cfg->metric));
  cJSON_AddNumberToObject(w, "limit", (double)cfg->limit);
  cJSON_AddNumberToObject(w, "soft_limit", (double)cfg->soft_limit);
  if (sup->state.fd >= 0) {
    cJSON* st = cJSON_AddObjectToObject(w, "state");
    cJSON_AddNumberToObject(st, "bytes", (double)sup->state.bytes);
    cJSON_AddNumberToObject(st, "crc32c", sup->state.crc32c);
    cJSON_AddStringToObject(st, "kind", sup->state.kind);
  } else {
    cJSON_AddNullToObject(w, "state");
  }
  int err = ms_channel_send(c->chan, w, sup->state.fd);
  cJSON_Delete(w);
  if (err < 0) ms_warn("welcome pid %d: %s", (int)c->pid, strerror(-err));
  if (sup->rs.active) {
    sup->rs.t_welcome = uv_hrtime();
    snprintf(sup->rs.handed, sizeof(sup->rs.handed), "%s",
             sup->state.fd >= 0 ? sup->state.kind : "");
  }
}

static void check_limit(ms_sup_t* sup, const ms_mem_t* m, ms_metric_t metric,
                        ms_value_kind_t kind, uint64_t value);

static void on_message_cb(ms_child_t* c, const ms_msg_t* msg, int fd) {
  ms_sup_t* sup = c->data;
  restart_t* rs = &sup->rs;
  int err;

  if (c != sup->child || sup->phase == PH_DONE) {
    if (fd >= 0) close(fd);
    return;
  }
  switch (msg->type) {
    case MS_MSG_HELLO:
      if (msg->version != MEMSUP_WIRE_VERSION) {
        ms_warn("pid %d speaks protocol version %d, memsup speaks %d: "
                "supervised without the SDK",
                (int)c->pid, msg->version, MEMSUP_WIRE_VERSION);
        break;
      }
      c->sdk = 1;
      sup->sdk_seen = 1;
      snprintf(c->allocator, sizeof(c->allocator), "%s", msg->allocator);
      ms_debug("pid %d: SDK handshake (allocator %s)", (int)c->pid, c->allocator);
      send_welcome(sup, c);
      break;

    case MS_MSG_STATS:
      if (!c->sdk) break;
      c->stats = *msg;
      c->has_heap = msg->has_heap;
      c->stats_ns = uv_hrtime();
      /* --metric heap acts on the worker's own report as it arrives: a
       * crossing is seen as soon as the worker says so, not a tick later. */
      if (sup->cfg->metric == MS_METRIC_HEAP && msg->has_heap &&
          sup->phase == PH_RUNNING && !rs->awaiting_after) {
        ms_mem_t m;
        if (ms_sampler_take(&c->sampler, c->stats_ns, UINT64_MAX, 0, &m) == 0)
          check_limit(sup, &m, MS_METRIC_HEAP, MS_VALUE_KNOWN, msg->allocated);
      }
      break;

    case MS_MSG_STATE:
      if (!c->sdk) {
        if (fd >= 0) close(fd);
        break;
      }
      {
        uint64_t t_recv = uv_hrtime();
        double recv_unix_s = unix_now();
        err = accept_state(sup, msg, fd);
        if (sup->phase == PH_SAVING && msg->seq == rs->seq && msg->seq != 0) {
          rs->t_recv = t_recv;
          rs->recv_unix_s = recv_unix_s;
        }
      }
      if (sup->phase == PH_SAVING && msg->seq == rs->seq && msg->seq != 0) {
        rs->t_state = uv_hrtime();
        uv_timer_stop(&sup->timer);
        if (err < 0) {
          rs->outcome = state_error_outcome(err);
          ms_error("state from pid %d rejected (%" PRIu64 " bytes): %s; %s",
                   (int)c->pid, msg->bytes,
                   err == -EFBIG ? "over --max-state" : strerror(-err),
                   sup->state.fd >= 0 ? "handing over the last good state"
                                      : "the new worker starts without state");
        } else {
          rs->outcome = "restored";
          rs->saved_bytes = msg->bytes;
        }
        stop_worker(sup, SIGTERM);
      } else if (err < 0) {
        ms_warn("%s from pid %d rejected (%" PRIu64 " bytes): %s", msg->kind,
                (int)c->pid, msg->bytes,
                err == -EFBIG ? "over --max-state" : strerror(-err));
      } else {
        ms_debug("checkpoint from pid %d: %" PRIu64 " bytes", (int)c->pid, msg->bytes);
      }
      break;

    case MS_MSG_SAVE_FAILED:
      if (sup->phase == PH_SAVING && msg->seq == rs->seq) {
        uv_timer_stop(&sup->timer);
        rs->t_state = uv_hrtime();
        rs->outcome = "save-failed";
        ms_warn("pid %d could not save its state: %s", (int)c->pid, msg->text);
        stop_worker(sup, SIGTERM);
      }
      break;

    case MS_MSG_PURGED:
      if (msg->seq == sup->purge_seq && sup->purge_seq) {
        ms_mem_t after;
        char b1[16], b2[16], b3[16];
        sup->purge_seq = 0;
        if (ms_sampler_take(&c->sampler, uv_hrtime(), UINT64_MAX, 1, &after) < 0) break;
        uint64_t freed = sup->purge_before.footprint > after.footprint
                             ? sup->purge_before.footprint - after.footprint
                             : 0;
        cJSON* ev = ms_rlog_event("purge", c->pid, c->gen);
        cJSON_AddNumberToObject(ev, "soft_limit", (double)sup->cfg->soft_limit);
        cJSON_AddNumberToObject(ev, "freed", (double)freed);
        /* Heap-in-use is what the worker holds; a purge does not change it,
         * so the latest report stands for both sides. */
        cJSON_AddItemToObject(ev, "before",
                              ms_rlog_mem(&sup->purge_before, c->has_heap, &c->stats));
        cJSON_AddItemToObject(ev, "after", ms_rlog_mem(&after, c->has_heap, &c->stats));
        cJSON_AddNumberToObject(ev, "resident_before", (double)msg->purge_before);
        cJSON_AddNumberToObject(ev, "resident_after", (double)msg->purge_after);
        emit(sup, ev);
        ms_info("purge: pid %d freed %s of footprint (%s -> %s)", (int)c->pid,
                ms_fmt_bytes(b1, freed), ms_fmt_bytes(b2, sup->purge_before.footprint),
                ms_fmt_bytes(b3, after.footprint));
      }
      break;

    case MS_MSG_READY:
      c->ready = 1;
      if (rs->active && rs->awaiting_after) {
        rs->t_ready = uv_hrtime();
        snprintf(rs->restore, sizeof(rs->restore), "%.15s", msg->text);
        rs->held_unix_us = msg->restored_unix_us;
        sample_after(sup);
      }
      break;

    default:
      break;
  }
  if (msg->type != MS_MSG_STATE && fd >= 0) close(fd);
}

static void on_eof_cb(ms_child_t* c) {
  ms_sup_t* sup = c->data;
  if (c != sup->child) return;
  /* A worker closes the channel as it exits, which is not news; one that
   * goes on running without it is, and the tick says so (CHANNEL_EOF_NS
   * later, when the exit callback has not come). */
  if (c->sdk) c->eof_ns = uv_hrtime();
  c->sdk = 0;
  if (sup->phase == PH_SAVING) {
    uv_timer_stop(&sup->timer);
    sup->rs.outcome = "save-failed";
    stop_worker(sup, SIGTERM);
  }
}

static const ms_child_cb_t child_cb = {on_exit_cb, on_message_cb, on_eof_cb};

static int spawn_error_code(int err) {
  if (err == UV_ENOENT) return 127;
  if (err == UV_EACCES || err == UV_EPERM) return 126;
  return 111;
}

/* Starts the next worker generation.  A failure after the first start is
 * treated like a crash (backoff, intensity), since the cause (a binary
 * being replaced, fork failing under memory pressure) is often transient. */
static void spawn_worker(ms_sup_t* sup) {
  const ms_config_t* cfg = sup->cfg;
  ms_child_t* c;
  int err = ms_child_spawn(sup->loop, cfg->argv, sup->env, sup->gen + 1, cfg->tree,
                           cfg->interval_ns, &child_cb, sup, &c);
  if (err < 0) {
    ms_error("spawn %s: %s", cfg->argv[0], uv_strerror(err));
    sup->last_status = spawn_error_code(err);
    if (sup->gen == 0) return; /* ms_sup_start reports it */
    restart_clear(&sup->rs);
    uint64_t now = uv_hrtime();
    if (ms_policy_crash(&sup->intensity, cfg->within_ns, now)) {
      ms_error("giving up: the worker could not be started");
      sup->exit_code = sup->last_status;
      shutdown_sup(sup);
      return;
    }
    sup->phase = PH_BACKOFF;
    timer_start(sup, backoff_timer_cb, ms_policy_backoff(++sup->consecutive_crashes));
    return;
  }
  sup->gen++;
  sup->child = c;
  sup->phase = PH_RUNNING;
  sup->lim.over = 0;
  sup->heap_fallback_warned = 0;
  sup->purge_seq = 0;

  cJSON* ev = ms_rlog_event("start", c->pid, c->gen);
  cJSON* cmd = cJSON_AddArrayToObject(ev, "cmd");
  for (int i = 0; i < cfg->argc; i++)
    cJSON_AddItemToArray(cmd, cJSON_CreateString(cfg->argv[i]));
  if (sup->state.fd >= 0) {
    cJSON_AddStringToObject(ev, "state", sup->state.kind);
  } else {
    cJSON_AddNullToObject(ev, "state");
  }
  emit(sup, ev);
  ms_debug("started %s (pid %d, generation %u)", cfg->argv[0], (int)c->pid, c->gen);

  if (sup->rs.active) {
    sup->rs.t_spawn = c->started_ns;
    sup->rs.awaiting_after = 1;
  }
}

/* ---- the sampling tick ------------------------------------------------- */

/* --dry-run: log the restart that would happen, once per run of samples
 * over the limit, and keep watching. */
static void would_restart(ms_sup_t* sup, const ms_mem_t* sample,
                          ms_metric_t metric, uint64_t value) {
  ms_child_t* c = sup->child;
  const ms_config_t* cfg = sup->cfg;
  uint64_t now = uv_hrtime();
  ms_mem_t m = *sample;
  char b1[16], b2[16], b3[16], b4[16];
  if (!m.full) ms_sampler_take(&c->sampler, now, UINT64_MAX, 1, &m);
  cJSON* ev = ms_rlog_event("would-restart", c->pid, c->gen);
  cJSON_AddStringToObject(ev, "reason", "limit");
  cJSON_AddStringToObject(ev, "metric", metric_name(metric));
  cJSON_AddNumberToObject(ev, "limit", (double)cfg->limit);
  cJSON_AddNumberToObject(ev, "value", (double)value);
  cJSON_AddNumberToObject(ev, "over_for_s", r3(secs(now - sup->lim.over_since_ns)));
  cJSON_AddNumberToObject(ev, "uptime_s", r3(secs(now - c->started_ns)));
  cJSON_AddItemToObject(ev, "before", ms_rlog_mem(&m, c->has_heap, &c->stats));
  cJSON_AddItemToObject(ev, "evidence", evidence(c, &m, now, metric));
  emit(sup, ev);
  ms_info("dry run: would restart pid %d (%s %s > %s after %.1f s; footprint %s, rss %s)",
          (int)c->pid, metric_name(metric), ms_fmt_bytes(b1, value),
          ms_fmt_bytes(b2, cfg->limit), secs(now - c->started_ns),
          ms_fmt_bytes(b3, m.footprint), ms_fmt_bytes(b4, m.rss));
}

static void check_limit(ms_sup_t* sup, const ms_mem_t* m, ms_metric_t metric,
                        ms_value_kind_t kind, uint64_t value) {
  const ms_config_t* cfg = sup->cfg;
  ms_child_t* c = sup->child;
  uint64_t now = uv_hrtime();

  if (cfg->soft_limit && c->sdk && c->chan && sup->purge_seq == 0 &&
      kind == MS_VALUE_KNOWN &&
      ms_policy_purge(cfg->soft_limit, value, now, sup->last_purge_ns,
                      PURGE_MIN_GAP_NS)) {
    cJSON* req = cJSON_CreateObject();
    sup->purge_seq = ++sup->seq;
    cJSON_AddStringToObject(req, "t", MEMSUP_MSG_PURGE);
    cJSON_AddNumberToObject(req, "seq", (double)sup->purge_seq);
    if (ms_channel_send(c->chan, req, -1) < 0) sup->purge_seq = 0;
    cJSON_Delete(req);
    sup->last_purge_ns = now;
    sup->purge_before = *m;
    if (!m->full) ms_sampler_take(&c->sampler, now, UINT64_MAX, 1, &sup->purge_before);
  }
  int due = ms_policy_limit(&sup->lim, cfg->limit, cfg->for_ns, kind, value, now);
  if (!sup->lim.over) sup->dry_episode = 0;
  if (!due) return;
  if (cfg->dry_run) {
    if (!sup->dry_episode) would_restart(sup, m, metric, value);
    sup->dry_episode = 1;
    return;
  }
  begin_restart(sup, m, metric, value);
}

/* memsup watch: the watched process is gone, and so is our job. */
static void watched_gone(ms_sup_t* sup) {
  ms_child_t* c = sup->child;
  cJSON* ev = status_event("exit", c->pid, c->gen, 0, 0,
                           secs(uv_hrtime() - c->started_ns));
  /* Not our child: its status is its parent's to know. */
  cJSON_ReplaceItemInObject(ev, "exit_code", cJSON_CreateNull());
  emit(sup, ev);
  ms_info("pid %d has exited: watch ends", (int)c->pid);
  sup->exit_code = 0;
  shutdown_sup(sup);
}

/* Without --tree: says once per run when the worker's descendants hold
 * far more than the worker (a shell wrapper that did not exec), since the
 * limit then watches the wrong process.  The check is rate-limited inside
 * the sampler (a /proc scan at most every 5 s). */
static void tree_hint(ms_sup_t* sup, ms_child_t* c, const ms_mem_t* m,
                      uint64_t now) {
  ms_descendants_t d;
  char b1[16], b2[16];
  if (ms_sampler_descendants(&c->sampler, now, m->footprint, &d) != 1) return;
  sup->tree_hint_warned = 1;
  cJSON* ev = ms_rlog_event("descendants", c->pid, c->gen);
  cJSON_AddNumberToObject(ev, "footprint", (double)m->footprint);
  cJSON_AddNumberToObject(ev, "descendants_footprint", (double)d.footprint);
  cJSON_AddNumberToObject(ev, "descendants", d.nprocs);
  cJSON_AddNumberToObject(ev, "top_pid", d.top_pid);
  cJSON_AddStringToObject(ev, "top_command", d.top_comm);
  cJSON_AddStringToObject(ev, "hint", "--tree");
  emit(sup, ev);
  ms_warn("pid %d holds %s but its descendants hold %s (largest: %s, pid %d): "
          "the limit applies to pid %d only; use --tree to count them",
          (int)c->pid, ms_fmt_bytes(b1, m->footprint),
          ms_fmt_bytes(b2, d.footprint), d.top_comm, (int)d.top_pid,
          (int)c->pid);
}

/* The periodic tick, every --interval (default 50 ms).
 *
 * Each tick reads /proc/PID/status (O(1), ~20 us); the sampler adds a
 * smaps_rollup read only when the cheap estimate says the footprint may be
 * over the limit, plus a background calibration read whose rate scales
 * with its measured cost (sample.h), so a worker with 60,000 mappings costs
 * memsup well under 1% of a core while a crossing is still confirmed
 * within one tick plus one rollup read.  The metric value then goes
 * through the pure policy.  Nothing here blocks. */
static void tick_cb(uv_timer_t* t) {
  ms_sup_t* sup = t->data;
  const ms_config_t* cfg = sup->cfg;
  ms_child_t* c = sup->child;
  if (c == NULL || sup->phase != PH_RUNNING) return;

  uint64_t now = uv_hrtime();
  ms_metric_t metric = cfg->metric;
  if (metric == MS_METRIC_HEAP && !c->sdk) {
    if (now - c->started_ns < cfg->handshake_ns) return;
    if (!sup->heap_fallback_warned) {
      sup->heap_fallback_warned = 1;
      ms_warn("pid %d did not complete the SDK handshake within %.1f s: "
              "using footprint instead of heap",
              (int)c->pid, secs(cfg->handshake_ns));
    }
    metric = MS_METRIC_FOOTPRINT;
  }
  uint64_t limit = cfg->soft_limit && c->sdk ? cfg->soft_limit : cfg->limit;
  uint64_t near = metric == MS_METRIC_FOOTPRINT && limit ? limit : UINT64_MAX;
  ms_mem_t m;
  int force = sup->rs.awaiting_after;
  if (c->eof_ns && now - c->eof_ns >= CHANNEL_EOF_NS) {
    c->eof_ns = 0;
    ms_warn("pid %d closed the memsup channel and runs on without the SDK "
            "(no heap figures, no state handoff)", (int)c->pid);
  }
  if (ms_sampler_take(&c->sampler, now, near, force, &m) < 0) {
    if (c->adopted) watched_gone(sup);
    return;
  }
  if (c->first_ns == 0 && m.full) {
    c->first_ns = now;
    c->first_footprint = m.footprint;
  }
  log_sample(sup, c, &m, now);
  if (!cfg->tree && !sup->tree_hint_warned) tree_hint(sup, c, &m, now);

  if (sup->rs.awaiting_after) {
    /* A worker counts as up at its "ready" when it speaks the SDK (it said
     * hello, or an earlier worker of the same command did: a worker can
     * cross the limit before its handshake), else at its first tick; one
     * that never says ready counts as up after the handshake timeout. */
    int sdk = c->sdk || sup->sdk_seen;
    if (!sdk || now - c->started_ns >= cfg->handshake_ns) {
      if (sdk) sup->rs.t_ready = 0;
      finish_restart(sup, &m, c->has_heap, &c->stats);
    }
    return;
  }

  switch (metric) {
    case MS_METRIC_RSS:
      check_limit(sup, &m, metric, MS_VALUE_KNOWN, m.rss);
      break;
    case MS_METRIC_HEAP:
      break; /* decided when stats arrive (on_message_cb) */
    default:
      /* An estimate under the limit is trusted (it over-counts); one over
       * it is only a reason to measure, never to restart. */
      if (m.full || m.footprint < cfg->limit)
        check_limit(sup, &m, metric, MS_VALUE_KNOWN, m.footprint);
      else
        check_limit(sup, &m, metric, MS_VALUE_UNKNOWN, m.footprint);
      break;
  }
}

/* ---- memsup's own signals ----------------------------------------------- */

static void signal_cb(uv_signal_t* h, int sig) {
  ms_sup_t* sup = h->data;
  if (sig != SIGTERM && sig != SIGINT) {
    if (sup->child) ms_child_kill(sup->child, sig);
    return;
  }
  if (sup->want == WANT_DOWN) {
    /* Asked twice: do not wait for the grace period. */
    if (sup->child) ms_child_kill_group(sup->child, SIGKILL);
    return;
  }
  sup->want = WANT_DOWN;
  sup->stop_signal = sig;
  cJSON* ev = ms_rlog_event("stop", sup->child ? sup->child->pid : 0, sup->gen);
  cJSON_AddStringToObject(ev, "signal", signame(sig));
  emit(sup, ev);
  ms_info("%s: stopping", signame(sig));
  if (sup->child == NULL || sup->child->adopted) {
    /* No worker (between two), or a watched process that is not ours to
     * stop: memsup just ends. */
    sup->exit_code = sup->child ? 0 : 128 + sig;
    shutdown_sup(sup);
    return;
  }
  if (sup->phase == PH_SAVING) return; /* the restart's stop follows */
  if (sup->phase == PH_STOPPING) return;
  restart_clear(&sup->rs);
  stop_worker(sup, sig);
}

static void sigchld_cb(uv_signal_t* h, int sig) {
  ms_sup_t* sup = h->data;
  (void)sig;
  ms_reaper_sweep(sup->child ? sup->child->pid : 0);
}

/* ---- create, start, shut down ------------------------------------------ */

int ms_sup_create(uv_loop_t* loop, const ms_config_t* cfg, ms_rlog_t* log,
                  ms_rlog_t* slog, ms_sup_t** out) {
  ms_sup_t* sup = calloc(1, sizeof(*sup));
  if (sup == NULL) return -ENOMEM;
  sup->loop = loop;
  sup->cfg = cfg;
  sup->rlog = log;
  sup->slog = slog;
  ms_state_init(&sup->state);
  sup->intensity.max = cfg->max_restarts;
  sup->intensity.times = calloc(cfg->max_restarts + 1, sizeof(uint64_t));
  sup->env = ms_child_env();
  if (sup->intensity.times == NULL || sup->env == NULL) {
    free(sup->intensity.times);
    ms_child_env_free(sup->env);
    free(sup);
    return -ENOMEM;
  }
  uv_timer_init(loop, &sup->tick);
  uv_timer_init(loop, &sup->timer);
  sup->tick.data = sup->timer.data = sup;
  for (int i = 0; i < NSIG_HANDLED; i++) {
    uv_signal_init(loop, &sup->sigs[i]);
    sup->sigs[i].data = sup;
  }
  uv_signal_init(loop, &sup->sigchld);
  sup->sigchld.data = sup;
  *out = sup;
  return 0;
}

int ms_sup_start(ms_sup_t* sup) {
  const ms_config_t* cfg = sup->cfg;
  int i = 0;
  for (size_t k = 0; k < sizeof(stopping) / sizeof(stopping[0]); k++)
    uv_signal_start(&sup->sigs[i++], signal_cb, stopping[k]);
  for (size_t k = 0; k < sizeof(forwarded) / sizeof(forwarded[0]); k++)
    uv_signal_start(&sup->sigs[i++], signal_cb, forwarded[k]);

  if (cfg->subreaper || getpid() == 1) {
    int err = getpid() == 1 ? 0 : ms_reaper_enable();
    if (err < 0)
      ms_warn("become a subreaper: %s (orphans are not reaped)", strerror(-err));
    else
      uv_signal_start(&sup->sigchld, sigchld_cb, SIGCHLD);
  }

  if (cfg->state_dir) {
    ms_state_t st;
    int err = ms_state_load(cfg->state_dir, cfg->max_state, &st);
    if (err == 0) {
      ms_info("state from %s/state: %" PRIu64 " bytes saved by generation %u",
              cfg->state_dir, st.bytes, st.gen);
      ms_state_replace(&sup->state, &st);
    } else if (err != -ENOENT) {
      ms_warn("state in %s/state not used: %s", cfg->state_dir,
              err == -EFBIG ? "over --max-state" : strerror(-err));
    }
  }

  if (cfg->watch_pid) {
    ms_child_t* c;
    if (kill((pid_t)cfg->watch_pid, 0) < 0 && errno == ESRCH) {
      ms_error("watch pid %ld: no such process", cfg->watch_pid);
      shutdown_sup(sup);
      return 100;
    }
    if (ms_child_adopt((pid_t)cfg->watch_pid, cfg->tree, cfg->interval_ns, sup, &c) < 0) {
      shutdown_sup(sup);
      return 111;
    }
    sup->child = c;
    sup->gen = 1;
    sup->phase = PH_RUNNING;
    cJSON* ev = ms_rlog_event("watch", c->pid, c->gen);
    cJSON_AddNumberToObject(ev, "limit", (double)cfg->limit);
    cJSON_AddStringToObject(ev, "metric", metric_name(cfg->metric));
    emit(sup, ev);
    ms_info("watching pid %d (limit %s, dry run)", (int)c->pid,
            cfg->limit ? "set" : "none");
  } else {
    spawn_worker(sup);
  }
  if (sup->child == NULL) {
    shutdown_sup(sup);
    return sup->last_status;
  }
  uint64_t ms = cfg->interval_ns / NS_PER_MS;
  uv_timer_start(&sup->tick, tick_cb, ms ? ms : 1, ms ? ms : 1);
  return 0;
}

static void handle_closed_cb(uv_handle_t* h) {
  ms_sup_t* sup = h->data;
  sup->pending_close--;
}

static void close_handle(ms_sup_t* sup, uv_handle_t* h) {
  if (uv_is_closing(h)) return;
  sup->pending_close++;
  uv_close(h, handle_closed_cb);
}

/* Closes every handle so uv_run() returns.  Runs again from the worker's
 * close callback when a worker was still open. */
static void shutdown_sup(ms_sup_t* sup) {
  sup->phase = PH_DONE;
  if (sup->child) {
    ms_child_kill_group(sup->child, SIGKILL);
    ms_child_t* c = sup->child;
    sup->child = NULL;
    ms_child_close(c, child_closed_cb, sup);
  }
  close_handle(sup, (uv_handle_t*)&sup->tick);
  close_handle(sup, (uv_handle_t*)&sup->timer);
  for (int i = 0; i < NSIG_HANDLED; i++) close_handle(sup, (uv_handle_t*)&sup->sigs[i]);
  close_handle(sup, (uv_handle_t*)&sup->sigchld);
}

int ms_sup_exit_code(const ms_sup_t* sup) { return sup->exit_code; }

void ms_sup_destroy(ms_sup_t* sup) {
  if (sup == NULL) return;
  restart_clear(&sup->rs);
  ms_state_clear(&sup->state);
  free(sup->intensity.times);
  ms_child_env_free(sup->env);
  free(sup);
}
