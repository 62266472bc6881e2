/* supervise.c: the libuv side of the supervisor.  It owns the handles
 * (the sampling tick, the slot's timer, memsup's signal handlers, the
 * worker's process, channel and sampler through child.h) and the last good
 * state (handoff.h).  It turns what they report into events for the
 * restart machine (machine.h) and carries out the actions the machine
 * returns; the machine decides, this file only does.  What gets logged is
 * eventlog.c's.
 *
 * Nothing here blocks the loop for long: the evidence read of
 * /proc/PID/smaps (up to ~0.2 s on a worker with 60,000 mappings), the
 * check of a state memfd (a CRC-32C over up to --max-state, 1 GiB) and the
 * store to --state-dir (fsync) run on libuv's threadpool (offload.h) and
 * come back as events; on the loop remain the sampler's /proc reads
 * (sample.h: status every tick, smaps_rollup when due, ~27 ms at worst).
 */
#include "supervise.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "channel.h"
#include "child.h"
#include "cgroup.h"
#include "eventlog.h"
#include "handoff.h"
#include "listen.h"
#include "log.h"
#include "logkeys.h"
#include "machine.h"
#include "memsup_wire.h"
#include "metrics.h"
#include "notify.h"
#include "pool.h"
#include "offload.h"
#include "pidfile.h"
#include "prof.h"
#include "reaper.h"
#include "sample.h"
#include "shim.h"


/* memsup's signals, as a container init's (tini, dumb-init): every
 * catchable signal is passed on to the worker (SIGHUP, SIGUSR1/2, SIGQUIT,
 * SIGWINCH, SIGALRM, SIGTSTP, SIGCONT, SIGIO, SIGPWR, SIGSYS, the realtime
 * ones...), so none kills memsup by its default action and leaves the
 * worker unsupervised, except those memsup keeps (own_signal()):
 * SIGTERM, SIGINT stop memsup and the worker; SIGCHLD is reaping;
 * SIGPIPE is ignored (memsup's own writes); SIGTTIN and SIGTTOU are
 * ignored (as tini: memsup must not stop because it wrote to a terminal
 * the worker has the foreground of); SIGSEGV, SIGBUS, SIGFPE, SIGILL,
 * SIGABRT, SIGTRAP are memsup's own faults (a core, not a forward);
 * SIGKILL, SIGSTOP cannot be caught; 32 and 33 are glibc's. */
static int stop_signal(int sig) { return sig == SIGTERM || sig == SIGINT; }

static int own_signal(int sig) {
  switch (sig) {
    case SIGKILL: case SIGSTOP: case SIGCHLD: case SIGPIPE:
    case SIGTTIN: case SIGTTOU:
    case SIGSEGV: case SIGBUS: case SIGFPE: case SIGILL: case SIGABRT:
    case SIGTRAP:
      return 1;
    default:
      return sig > SIGSYS && sig < SIGRTMIN; /* glibc's own */
  }
}
#define NSIG_HANDLED NSIG

/* Events raised while a step's actions run (a measurement, a send that
 * failed, a spawn's result) wait here and are fed in order once the step
 * is done, so every step sees the machine as the previous one left it.
 * One step raises at most four (two measurements, two sends). */
#define QUEUE_MAX 8
/* Restart times kept to plan early restarts with (pool.h): the longest of
 * the last few, so one quick restart does not make the plan optimistic. */
#define RESTART_TIMES 4

/* One worker slot: its machine, its worker's handles, its state.  Without
 * --workers there is one; a pool has one per worker (MEMSUP_WORKER=k). */
typedef struct ms_slot_s {
  ms_sup_t* sup;
  unsigned k;
  ms_machine_t m;
  ms_eventlog_t log;
  ms_child_t* child;       /* the worker's handles, NULL between workers */
  uv_timer_t timer;        /* the machine's one timer */
  ms_state_t state;        /* last good state */
  ms_store_t store;        /* its copy in the slot's state directory */
  char* state_dir;         /* --state-dir, or its slot-K in a pool; NULL */
  char** env;              /* its workers' environment */
  ms_event_t queue[QUEUE_MAX];
  unsigned qhead, qlen;
  int draining;
  int tree_hint_warned;    /* the descendants hold the memory: said once */
  /* Counters for /metrics, from the lines the machine logs. */
  uint64_t limit_restarts, early_restarts, crashes, purges, purged_bytes,
      handed_bytes, waits;
  double last_restart_unix_s;
  /* The OOM-kill count of memsup's cgroup when the worker started
   * (oom_at_spawn_known: it could be read). */
  uint64_t oom_at_spawn;
  int oom_at_spawn_known;
  uint64_t down_since;     /* pool: down for memory since (ns), 0 = not */
} ms_slot_t;

struct ms_sup_s {
  uv_loop_t* loop;
  const ms_config_t* cfg;
  ms_slot_t** slots;       /* cfg->workers of them */
  unsigned nslots;
  uv_timer_t tick;
  uv_signal_t sigs[NSIG_HANDLED]; /* by signal number; [0] unused */
  uv_signal_t sigchld;
  /* Production interfaces: --metrics, sd_notify (NULL when off). */
  ms_metrics_t* metrics;
  ms_notify_t* notify;
  /* Listening sockets held across workers (systemd's, --listen); with
   * any, workers start through the exec shim (spawn_argv). */
  ms_listen_t listen;
  char self_exe[4096];
  char resolved[4096];
  char** spawn_argv;
  int notified_ready;      /* READY=1 sent */
  int wait_hint;           /* the --handshake-timeout hint was given */
  unsigned prof_removed;   /* heap profiles of generations up to this are
                              removed (send_prof) */
  /* memsup's memory cgroup (version 0: none). */
  ms_cgroup_t cgroup;
  /* The pool ends when its first slot ends for good: that slot's code. */
  int ending;
  int exit_code;
  /* How long the pool's last memory restarts took, decision to ready. */
  double restart_s[RESTART_TIMES];
  unsigned nrestart_s;
};

static void run(ms_slot_t* slot, const ms_action_t* a);
static void shutdown_sup(ms_sup_t* sup);

/* ---- feeding the machine ------------------------------------------------ */

static double unix_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)(ts.tv_nsec / 1000) / 1e6;
}

/* A new event at the tail of the slot's queue, stamped now; post() sends
 * it. */
static ms_event_t* event(ms_slot_t* slot, ms_event_type_t type) {
  if (slot->qlen == QUEUE_MAX) abort(); /* see QUEUE_MAX */
  ms_event_t* ev = &slot->queue[(slot->qhead + slot->qlen) % QUEUE_MAX];
  memset(ev, 0, sizeof(*ev));
  ev->type = type;
  ev->now = uv_hrtime();
  ev->unix_s = unix_now();
  return ev;
}

/* ---- the pool ------------------------------------------------------------ */

/* A slot's worker is ready when it said so through the SDK, or, without a
 * handshake, once --handshake-timeout has passed since its start (a
 * worker without the SDK cannot say more). */
static int worker_ready(const ms_slot_t* slot) {
  const ms_worker_t* w = &slot->m.w;
  if (!w->up || slot->m.state == MS_ST_DONE) return 0;
  if (w->ready) return 1;
  return !w->sdk && uv_hrtime() - w->started_ns >= slot->sup->cfg->handshake_ns;
}

/* Down for memory: from a memory restart's decision until the slot's new
 * worker is ready, or the restart ended without one.  The pool lets one
 * slot at a time be down so (machine.h: pool_busy). */
static int down_for_memory(const ms_slot_t* slot) {
  const ms_machine_t* m = &slot->m;
  if (!m->rs.active || m->rs.dry) return 0;
  if (m->state == MS_ST_JUDGING || m->state == MS_ST_RUNNING)
    return !worker_ready(slot);
  return m->state != MS_ST_DONE;
}

/* The slot of the pool, other than k, that is down for memory; -1 none.
 * Asked afresh at each step: a worker without the SDK becomes ready by
 * the clock, not by an event. */
static int pool_busy(const ms_sup_t* sup, unsigned k) {
  for (unsigned j = 0; j < sup->nslots; j++)
    if (j != k && down_for_memory(sup->slots[j])) return (int)j;
  return -1;
}

/* After each step: which slots are down for memory now, and how long the
 * ones that came back took (the plan's restart time, pool.h). */
static void pool_track(ms_sup_t* sup) {
  uint64_t now = uv_hrtime();
  for (unsigned j = 0; j < sup->nslots; j++) {
    ms_slot_t* s = sup->slots[j];
    int down = down_for_memory(s);
    if (down && !s->down_since) {
      s->down_since = s->m.rs.t_decide ? s->m.rs.t_decide : now;
    } else if (!down && s->down_since) {
      if (worker_ready(s)) {
        sup->restart_s[sup->nrestart_s++ % RESTART_TIMES] =
            (double)(now - s->down_since) / 1e9;
      }
      s->down_since = 0;
    }
  }
}

/* How long a restart takes: the longest of the last few measured.  Before
 * any, a worker without the SDK counts as ready only after
 * --handshake-timeout, so that is its restart time; with the SDK, a
 * default (pool.h). */
static double restart_time(const ms_sup_t* sup) {
  double r = 0;
  unsigned n = sup->nrestart_s < RESTART_TIMES ? sup->nrestart_s : RESTART_TIMES;
  for (unsigned i = 0; i < n; i++)
    if (sup->restart_s[i] > r) r = sup->restart_s[i];
  if (n) return r;
  for (unsigned k = 0; k < sup->nslots; k++)
    if (sup->slots[k]->m.sdk_seen) return MS_POOL_RESTART_DEFAULT_S;
  r = (double)sup->cfg->handshake_ns / 1e9;
  return r > MS_POOL_RESTART_DEFAULT_S ? r : MS_POOL_RESTART_DEFAULT_S;
}

/* ---- what systemd and Prometheus are told --------------------------------- */

/* READY=1 once, when every slot's first worker is ready. */
static void notify_ready(ms_sup_t* sup) {
  char status[128];
  if (sup->notify == NULL || sup->notified_ready) return;
  for (unsigned k = 0; k < sup->nslots; k++)
    if (!worker_ready(sup->slots[k])) return;
  sup->notified_ready = 1;
  if (sup->nslots == 1)
    snprintf(status, sizeof(status), "worker %u up (pid %d)",
             sup->slots[0]->m.w.gen, (int)sup->slots[0]->m.w.pid);
  else
    snprintf(status, sizeof(status), "%u workers up", sup->nslots);
  ms_notify_ready(sup->notify, status);
}

/* Counts what the machine logs, and tells systemd about restarts and the
 * stop. */
static void account(ms_slot_t* slot, const ms_log_t* l) {
  const ms_machine_t* m = &slot->m;
  char status[160], who[24] = "";
  if (slot->sup->nslots > 1) snprintf(who, sizeof(who), "slot %u ", slot->k);
  switch (l->kind) {
    case MS_LOG_RESTART:
      if (m->rs.early)
        slot->early_restarts++;
      else
        slot->limit_restarts++;
      slot->last_restart_unix_s = unix_now();
      if (m->rs.handed[0] != '\0') slot->handed_bytes += slot->state.bytes;
      snprintf(status, sizeof(status),
               "%srestart #%u (%s): pid %d -> %d, worker %u", who,
               m->rs.number, m->rs.early ? "early" : "limit",
               (int)m->rs.old_pid, (int)m->rs.new_pid, m->gen);
      ms_notify_status(slot->sup->notify, status);
      break;
    case MS_LOG_CRASH:
      slot->crashes++;
      snprintf(status, sizeof(status), "%sworker %u (pid %d) crashed%s", who,
               l->gen, (int)l->pid, l->delay_ns < 0 ? ", giving up" : "");
      ms_notify_status(slot->sup->notify, status);
      break;
    case MS_LOG_PURGE:
      slot->purges++;
      if (l->purge_resident_before > l->purge_resident_after)
        slot->purged_bytes += l->purge_resident_before - l->purge_resident_after;
      break;
    case MS_LOG_WAIT: {
      const ms_slot_t* busy = slot->sup->slots[l->slot];
      slot->waits++;
      /* The wait most worth explaining: without the SDK, the other slot's
       * new worker counts as down until --handshake-timeout. */
      if (!slot->sup->wait_hint && !busy->m.sdk_seen && busy->m.w.up &&
          busy->m.w.pid != busy->m.rs.old_pid) {
        slot->sup->wait_hint = 1;
        ms_warn("slot %u's worker does not speak the SDK, so it counts as "
                "restarting until --handshake-timeout (%.1f s) after its "
                "start; set --handshake-timeout to its real start-up time so "
                "that other slots wait less",
                busy->k, (double)slot->sup->cfg->handshake_ns / 1e9);
      }
      break;
    }
    case MS_LOG_STOP:
      ms_notify_stopping(slot->sup->notify);
      break;
    default:
      break;
  }
}

static void fill_worker(const ms_slot_t* slot, ms_metrics_worker_t* f) {
  const ms_machine_t* m = &slot->m;
  f->up = m->w.up;
  f->ready = worker_ready(slot);
  f->footprint = m->w.last.footprint;
  f->rss = m->w.last.rss;
  f->swap = m->w.last.swap;
  f->lazyfree = m->w.last.lazyfree;
  f->file = m->w.last.rss_file;
  f->has_heap = m->w.heap.has_heap;
  f->heap_inuse = m->w.heap.allocated;
  if (m->w.up) f->uptime_s = (double)(uv_hrtime() - m->w.started_ns) / 1e9;
  f->generation = m->gen;
  f->holding_off = m->state == MS_ST_BACKOFF;
  f->restarts[0].reason = MS_REASON_LIMIT;
  f->restarts[0].count = slot->limit_restarts;
  f->nrestarts = 1;
  if (slot->sup->nslots > 1) {
    f->restarts[1].reason = MS_REASON_EARLY;
    f->restarts[1].count = slot->early_restarts;
    f->nrestarts = 2;
  }
  f->crashes = slot->crashes;
  f->purges = slot->purges;
  f->purged_bytes = slot->purged_bytes;
  f->state_handed_bytes = slot->handed_bytes;
  f->waits = slot->waits;
  f->last_restart_unix_s = slot->last_restart_unix_s;
  if (m->w.up) {
    f->gauges = m->w.heap.gauges;
    f->ngauges = m->w.heap.ngauges;
  }
}

static void fill_metrics(void* arg, ms_metrics_figures_t* f) {
  ms_sup_t* sup = arg;
  f->supervising = !sup->ending;
  for (unsigned k = 0; k < sup->nslots; k++) {
    const ms_machine_t* m = &sup->slots[k]->m;
    if (m->state == MS_ST_DONE || m->want != MS_WANT_UP) f->supervising = 0;
    fill_worker(sup->slots[k], &f->w[k]);
    f->ready |= f->w[k].ready;
  }
  f->nworkers = sup->nslots;
  f->pool = sup->nslots > 1;
  f->limit = sup->cfg->limit;
  f->soft_limit = sup->cfg->soft_limit;
  /* Read now, not on the tick: three preads of small kernel files. */
  ms_cgroup_read_t cg;
  ms_cgroup_read(&sup->cgroup, &cg);
  f->has_cgroup_memory = cg.has_usage;
  f->cgroup_memory = cg.usage;
  f->has_cgroup_limit = cg.has_limit;
  f->cgroup_limit = cg.limit;
  f->has_cgroup_oom_kills = cg.has_oom_kill;
  f->cgroup_oom_kills = cg.oom_kill;
}

/* Feeds the slot's queued events to its machine, each step with the
 * pool's gate as it is then.  In a pool, memsup's stderr lines of the
 * step name the slot. */
static void post(ms_slot_t* slot) {
  ms_sup_t* sup = slot->sup;
  char ctx[24], outer[32];
  slot->qlen++;
  if (slot->draining) return;
  slot->draining = 1;
  /* A slot's step can post to another (the pool's end stops the other
   * slots): the outer slot's context is put back after. */
  snprintf(outer, sizeof(outer), "%s", ms_log_context());
  if (sup->nslots > 1) {
    snprintf(ctx, sizeof(ctx), "slot %u: ", slot->k);
    ms_log_set_context(ctx);
  }
  while (slot->qlen) {
    ms_event_t ev = slot->queue[slot->qhead];
    ms_actions_t acts;
    slot->qhead = (slot->qhead + 1) % QUEUE_MAX;
    slot->qlen--;
    slot->m.pool_busy = pool_busy(sup, slot->k);
    ms_machine_step(&slot->m, &ev, &acts);
    for (size_t i = 0; i < acts.n; i++) run(slot, &acts.a[i]);
    pool_track(sup);
  }
  ms_log_set_context(outer);
  slot->draining = 0;
  notify_ready(sup);
}

/* ---- answers from the threadpool (offload.h) ---------------------------- */

static void keep_state(ms_slot_t* slot, const ms_ev_state_t* in) {
  ms_state_t st;
  ms_state_init(&st);
  st.fd = in->fd;
  st.bytes = in->bytes;
  st.crc32c = in->crc32c;
  snprintf(st.kind, sizeof(st.kind), "%s", in->kind);
  st.gen = in->gen;
  st.saved_ms = (uint64_t)uv_hrtime() / MS_NS_PER_MS;
  ms_state_replace(&slot->state, &st);
  ms_store_request(&slot->store);
}

static void verified_cb(void* arg, const ms_ev_state_t* st, int err) {
  ms_slot_t* slot = arg;
  ms_event_t* ev = event(slot, err < 0 ? MS_EV_STATE_BAD : MS_EV_STATE_OK);
  ev->state = *st;
  ev->state.err = err;
  post(slot);
}

static void evidence_in(ms_slot_t* slot, unsigned id, int early, int n,
                        const ms_mapping_t* rows,
                        const ms_evidence_where_t* where) {
  ms_event_t* ev = event(slot, MS_EV_EVIDENCE);
  ev->evidence.id = id;
  ev->evidence.early = early;
  ev->evidence.n = n;
  if (n > 0) memcpy(ev->evidence.rows, rows, sizeof(rows[0]) * (size_t)n);
  ev->evidence.has_where = where != NULL;
  if (where) ev->evidence.where = *where;
  post(slot);
}

static void evidence_cb(void* arg, unsigned id, int n, const ms_mapping_t* rows,
                        const ms_evidence_where_t* where) {
  evidence_in(arg, id, 0, n, rows, where);
}

/* The same for a life's early snapshot (the machine tells them apart). */
static void early_cb(void* arg, unsigned id, int n, const ms_mapping_t* rows,
                     const ms_evidence_where_t* where) {
  evidence_in(arg, id, 1, n, rows, where);
}

/* ---- talking to the worker -------------------------------------------------- */

static void send_failed(ms_slot_t* slot, ms_send_t what, int err) {
  ms_event_t* ev = event(slot, MS_EV_SEND_FAILED);
  ev->send_failed.what = what;
  ev->send_failed.err = err;
  post(slot);
}

static void send_request(ms_slot_t* slot, const char* t, uint64_t seq,
                         ms_send_t what) {
  ms_child_t* c = slot->child;
  int err = -EPIPE;
  if (c && c->chan) {
    cJSON* req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "t", t);
    cJSON_AddNumberToObject(req, "seq", (double)seq);
    err = ms_channel_send(c->chan, req, -1);
    cJSON_Delete(req);
  }
  if (err < 0) send_failed(slot, what, err);
}

/* Asks the worker for a heap profile (docs/profiling.md).  Not answered:
 * a profile that could not be written is a missing file, which `memsup
 * report` names.  Without --log there is nowhere to keep it: not asked. */
static void send_prof(ms_slot_t* slot, const ms_action_t* a) {
  const ms_config_t* cfg = slot->sup->cfg;
  ms_child_t* c = slot->child;
  char path[MEMSUP_PROF_PATH_MAX];
  if (c == NULL || c->chan == NULL ||
      ms_prof_path(path, sizeof(path), cfg->log_path, slot->m.w.pid, a->gen,
                   a->code == MS_PROF_END) < 0)
    return;
  cJSON* req = cJSON_CreateObject();
  cJSON_AddStringToObject(req, "t", MEMSUP_MSG_PROF);
  cJSON_AddStringToObject(req, "path", path);
  /* A failed send is the save's to notice: it follows at once. */
  (void)ms_channel_send(c->chan, req, -1);
  cJSON_Delete(req);
  /* Keep the last MS_PROF_KEEP generations' profiles (a few unlinks, once
   * per restart).  A pool's slots number their generations each from 1:
   * a generation goes once every slot is MS_PROF_KEEP past it. */
  if (a->code == MS_PROF_END) {
    ms_sup_t* sup = slot->sup;
    unsigned low = a->gen;
    for (unsigned k = 0; k < sup->nslots; k++)
      if (sup->slots[k]->m.gen < low) low = sup->slots[k]->m.gen;
    while (low > MS_PROF_KEEP && sup->prof_removed < low - MS_PROF_KEEP)
      (void)ms_prof_remove_gen(cfg->log_path, ++sup->prof_removed);
  }
}

static void send_welcome(ms_slot_t* slot) {
  const ms_config_t* cfg = slot->sup->cfg;
  ms_child_t* c = slot->child;
  int err = -EPIPE;
  if (c && c->chan) {
    cJSON* w = cJSON_CreateObject();
    cJSON_AddStringToObject(w, "t", MEMSUP_MSG_WELCOME);
    cJSON_AddNumberToObject(w, "v", MEMSUP_WIRE_VERSION);
    cJSON_AddNumberToObject(w, "gen", slot->m.w.gen);
    cJSON_AddNumberToObject(w, "interval_ms", (double)(cfg->interval_ns / MS_NS_PER_MS));
    cJSON_AddStringToObject(w, "metric", ms_metric_name(cfg->metric));
    cJSON_AddNumberToObject(w, "limit", (double)cfg->limit);
    cJSON_AddNumberToObject(w, "soft_limit", (double)cfg->soft_limit);
    if (slot->state.fd >= 0) {
      cJSON* st = cJSON_AddObjectToObject(w, "state");
      cJSON_AddNumberToObject(st, "bytes", (double)slot->state.bytes);
      cJSON_AddNumberToObject(st, "crc32c", slot->state.crc32c);
      cJSON_AddStringToObject(st, "kind", slot->state.kind);
    } else {
      cJSON_AddNullToObject(w, "state");
    }
    err = ms_channel_send(c->chan, w, slot->state.fd);
    cJSON_Delete(w);
  }
  if (err < 0) send_failed(slot, MS_SEND_WELCOME, err);
}

static void copy_heap(ms_heap_t* h, const ms_msg_t* msg) {
  _Static_assert(MS_HEAP_GAUGES_MAX >= MS_GAUGES_MAX, "gauges fit");
  _Static_assert(MS_HEAP_GAUGE_NAME_MAX >= MS_GAUGE_NAME_MAX, "names fit");
  h->has_heap = msg->has_heap;
  h->allocated = msg->allocated;
  h->active = msg->active;
  h->resident = msg->resident;
  h->retained = msg->retained;
  h->mapped = msg->mapped;
  h->ngauges = msg->ngauges;
  for (size_t i = 0; i < msg->ngauges; i++) {
    snprintf(h->gauges[i].name, sizeof(h->gauges[i].name), "%s", msg->gauges[i].name);
    h->gauges[i].value = msg->gauges[i].value;
  }
}

static void on_message_cb(ms_child_t* c, const ms_msg_t* msg, int fd) {
  ms_slot_t* slot = c->data;
  ms_event_t* ev;
  if (c != slot->child) {
    if (fd >= 0) close(fd);
    return;
  }
  if (msg->type != MS_MSG_STATE && fd >= 0) close(fd);
  switch (msg->type) {
    case MS_MSG_HELLO:
      ev = event(slot, MS_EV_HELLO);
      ev->hello.version = msg->version;
      snprintf(ev->hello.allocator, sizeof(ev->hello.allocator), "%s", msg->allocator);
      ev->hello.prof = msg->prof;
      break;
    case MS_MSG_STATS:
      ev = event(slot, MS_EV_STATS);
      copy_heap(&ev->stats, msg);
      break;
    case MS_MSG_STATE:
      ev = event(slot, MS_EV_STATE);
      ev->state.fd = fd;
      ev->state.seq = msg->seq;
      ev->state.bytes = msg->bytes;
      ev->state.crc32c = msg->crc32c;
      snprintf(ev->state.kind, sizeof(ev->state.kind), "%s", msg->kind);
      ev->state.gen = slot->m.w.gen;
      break;
    case MS_MSG_SAVE_FAILED:
      ev = event(slot, MS_EV_SAVE_FAILED);
      ev->save_failed.seq = msg->seq;
      snprintf(ev->save_failed.text, sizeof(ev->save_failed.text), "%s", msg->text);
      break;
    case MS_MSG_PURGED:
      ev = event(slot, MS_EV_PURGED);
      ev->purged.seq = msg->seq;
      ev->purged.resident_before = msg->purge_before;
      ev->purged.resident_after = msg->purge_after;
      break;
    case MS_MSG_READY:
      ev = event(slot, MS_EV_READY);
      snprintf(ev->ready.text, sizeof(ev->ready.text), "%.15s", msg->text);
      ev->ready.restored_unix_us = msg->restored_unix_us;
      break;
    case MS_MSG_UNKNOWN:
    default:
      return;
  }
  post(slot);
}

static void on_eof_cb(ms_child_t* c) {
  ms_slot_t* slot = c->data;
  if (c != slot->child) return;
  event(slot, MS_EV_EOF);
  post(slot);
}

static void on_exit_cb(ms_child_t* c, int64_t exit_status, int term_signal) {
  ms_slot_t* slot = c->data;
  ms_sup_t* sup = slot->sup;
  if (c != slot->child) return;
  /* With the terminal (shim.h: --foreground), ^C goes to the worker's
   * group, which memsup is not in: a worker ended by SIGINT there, or
   * exiting 130 (a shell whose job was interrupted says so), was
   * interrupted from the terminal, and memsup stops with it, as it would
   * have had ^C reached memsup. */
  int interrupted = term_signal == SIGINT ||
                    (term_signal == 0 && exit_status == 128 + SIGINT);
  if (ms_shim_foreground() && interrupted && slot->m.want == MS_WANT_UP) {
    event(slot, MS_EV_STOP)->signal.sig = SIGINT;
    post(slot);
  }
  ms_event_t* ev = event(slot, MS_EV_EXIT);
  ev->exit.status = exit_status;
  ev->exit.term_signal = term_signal;
  /* The kernel's OOM killer sends SIGKILL and counts the kill in the
   * group: a count that went up during this life means it took the
   * worker (or, rarely, another process of the container while something
   * else SIGKILLed the worker). */
  if (term_signal == SIGKILL && slot->oom_at_spawn_known) {
    ms_cgroup_read_t cg;
    ms_cgroup_read(&sup->cgroup, &cg);
    ev->exit.oom_kill = cg.has_oom_kill && cg.oom_kill > slot->oom_at_spawn;
  }
  post(slot);
}

static const ms_child_cb_t child_cb = {on_exit_cb, on_message_cb, on_eof_cb};

/* ---- starting and measuring workers ----------------------------------------- */

static int spawn_error_code(int err) {
  if (err == UV_ENOENT) return 127;
  if (err == UV_EACCES || err == UV_EPERM) return 126;
  return 111;
}

static void spawn_worker(ms_slot_t* slot) {
  ms_sup_t* sup = slot->sup;
  const ms_config_t* cfg = sup->cfg;
  ms_child_t* c;
  char** argv = cfg->argv;
  int err = 0;
  if (sup->listen.n > 0) {
    /* Found now, as uv_spawn would: a missing worker is a spawn error
     * (127), not an exit of the shim. */
    err = ms_exec_resolve(cfg->argv[0], getenv("PATH"), sup->resolved,
                          sizeof(sup->resolved));
    err = err == -ENOENT ? UV_ENOENT : err < 0 ? UV_EACCES : 0;
    argv = sup->spawn_argv;
  }
  if (err == 0)
    err = ms_child_spawn(sup->loop, argv, slot->env, sup->listen.fd,
                         sup->listen.n, cfg->tree, cfg->interval_ns,
                         &child_cb, slot, &c);
  if (err < 0) {
    ms_error("spawn %s: %s", cfg->argv[0], uv_strerror(err));
    event(slot, MS_EV_SPAWN_FAILED)->spawn_failed.code = spawn_error_code(err);
  } else {
    slot->child = c;
    if (slot->state_dir && (err = ms_pidfile_write(slot->state_dir, c->pid,
                                                   cfg->argv)) < 0)
      ms_warn("record worker pid in %s/" MS_PIDFILE_NAME ": %s",
              slot->state_dir, strerror(-err));
    ms_cgroup_read_t cg;
    ms_cgroup_read(&sup->cgroup, &cg);
    slot->oom_at_spawn_known = cg.has_oom_kill;
    slot->oom_at_spawn = cg.oom_kill;
    event(slot, MS_EV_SPAWNED)->spawned.pid = c->pid;
  }
  post(slot);
}

static void adopt_worker(ms_slot_t* slot) {
  const ms_config_t* cfg = slot->sup->cfg;
  ms_child_t* c;
  if (ms_child_adopt((pid_t)cfg->watch_pid, cfg->tree, cfg->interval_ns, slot, &c) < 0) {
    ms_error("watch pid %ld: %s", cfg->watch_pid, strerror(ENOMEM));
    event(slot, MS_EV_SPAWN_FAILED)->spawn_failed.code = 111;
  } else {
    slot->child = c;
    event(slot, MS_EV_SPAWNED)->spawned.pid = c->pid;
  }
  post(slot);
}

/* Without --tree: says once per run when the worker's descendants hold
 * far more than the worker (a shell wrapper that did not exec), since the
 * limit then watches the wrong process.  The check is rate-limited inside
 * the sampler (a /proc scan at most every 5 s). */
static void tree_hint(ms_slot_t* slot, ms_child_t* c, uint64_t now,
                      uint64_t footprint) {
  ms_descendants_t d;
  if (ms_sampler_descendants(&c->sampler, now, footprint, &d) != 1) return;
  slot->tree_hint_warned = 1;
  ms_eventlog_descendants(&slot->log, slot->m.w.pid, slot->m.w.gen, footprint, &d);
}

/* One read of the worker's memory (sample.h: /proc/PID/status, plus
 * smaps_rollup when near the limit or forced: ~1.2 ms at 256 MiB resident,
 * the cost the tick budgets for). */
static void measure(ms_slot_t* slot, const ms_action_t* a) {
  ms_child_t* c = slot->child;
  ms_event_t* ev = event(slot, a->purpose == MS_FOR_TICK ? MS_EV_SAMPLE : MS_EV_MEASURED);
  ev->sample.purpose = a->purpose;
  if (c == NULL ||
      ms_sampler_take(&c->sampler, ev->now, a->near, a->force, &ev->sample.mem) < 0)
    ev->type = MS_EV_GONE; /* not an error of memsup: the exit follows */
  else if (a->purpose == MS_FOR_TICK && !slot->sup->cfg->tree &&
           !slot->tree_hint_warned)
    tree_hint(slot, c, ev->now, ev->sample.mem.footprint);
  post(slot);
}

/* A worker's end is also where memsup hands back what its restart's
 * buffers left free (the smaps read, 256 KiB and up, on a threadpool
 * thread's arena; the sampler's reads): without this, each of libuv's
 * threadpool threads keeps its arena's high-water mark (docs/soak.md). */
static void close_worker(ms_slot_t* slot) {
  ms_child_t* c = slot->child;
  if (c == NULL) return;
  slot->child = NULL;
  ms_child_close(c, NULL, NULL);
  malloc_trim(0);
}

static void timer_cb(uv_timer_t* t) {
  ms_slot_t* slot = t->data;
  event(slot, MS_EV_TIMEOUT);
  post(slot);
}

/* A slot's machine ended (its worker exited for good, gave up, or was
 * stopped).  The pool ends with its first slot: the others are stopped as
 * memsup's SIGTERM would, and memsup exits with the first one's code once
 * all are down. */
static void slot_done(ms_slot_t* slot) {
  ms_sup_t* sup = slot->sup;
  if (!sup->ending) {
    sup->ending = 1;
    sup->exit_code = slot->m.exit_code;
    for (unsigned k = 0; k < sup->nslots; k++) {
      ms_slot_t* other = sup->slots[k];
      if (other == slot || other->m.state == MS_ST_DONE ||
          other->m.want != MS_WANT_UP)
        continue;
      event(other, MS_EV_STOP)->signal.sig = SIGTERM;
      post(other);
    }
  }
  for (unsigned k = 0; k < sup->nslots; k++)
    if (sup->slots[k]->m.state != MS_ST_DONE) return;
  shutdown_sup(sup);
}

/* ---- carrying out the machine's actions ---------------------------------- */

static void run(ms_slot_t* slot, const ms_action_t* a) {
  ms_sup_t* sup = slot->sup;
  int err;
  switch (a->type) {
    case MS_ACT_SPAWN:
      spawn_worker(slot);
      break;
    case MS_ACT_ADOPT:
      adopt_worker(slot);
      break;
    case MS_ACT_SEND_SAVE:
      send_request(slot, MEMSUP_MSG_SAVE, a->seq, MS_SEND_SAVE);
      break;
    case MS_ACT_SEND_PURGE:
      send_request(slot, MEMSUP_MSG_PURGE, a->seq, MS_SEND_PURGE);
      break;
    case MS_ACT_SEND_PROF:
      send_prof(slot, a);
      break;
    case MS_ACT_SEND_WELCOME:
      send_welcome(slot);
      break;
    case MS_ACT_SIGNAL_GROUP:
      if (slot->child && (err = ms_child_kill_group(slot->child, a->sig)) < 0)
        ms_error("kill process group %d: %s", (int)slot->child->pid, strerror(-err));
      break;
    case MS_ACT_SIGNAL_WORKER:
      if (slot->child) ms_child_kill(slot->child, a->sig);
      break;
    case MS_ACT_TIMER_ARM:
      uv_timer_start(&slot->timer, timer_cb, (a->ns + MS_NS_PER_MS - 1) / MS_NS_PER_MS, 0);
      break;
    case MS_ACT_TIMER_CANCEL:
      uv_timer_stop(&slot->timer);
      break;
    case MS_ACT_MEASURE:
      measure(slot, a);
      break;
    case MS_ACT_COLLECT_EVIDENCE:
      if (a->early) { /* growth is of footprint: ranked by it */
        ms_offload_evidence(sup->loop, slot->m.w.pid, sup->cfg->tree,
                            MS_RANK_FOOTPRINT, a->id, early_cb, slot);
        break;
      }
      /* Ranked by what crossed: RSS under --metric rss, else footprint. */
      ms_offload_evidence(sup->loop, slot->m.w.pid, sup->cfg->tree,
                          slot->m.rs.metric == MS_METRIC_RSS ? MS_RANK_RSS
                                                             : MS_RANK_FOOTPRINT,
                          a->id, evidence_cb, slot);
      break;
    case MS_ACT_VERIFY:
      ms_offload_verify(sup->loop, a->state, sup->cfg->max_state, verified_cb, slot);
      break;
    case MS_ACT_KEEP_STATE:
      keep_state(slot, a->state);
      break;
    case MS_ACT_CLOSE_FD:
      if (a->state->fd >= 0) close(a->state->fd);
      break;
    case MS_ACT_CLOSE_WORKER:
      close_worker(slot);
      break;
    case MS_ACT_LOG:
      ms_eventlog_write(&slot->log, &slot->m, &a->log);
      account(slot, &a->log);
      break;
    case MS_ACT_EXIT:
      slot_done(slot);
      break;
  }
}

/* ---- the sampling tick, memsup's own signals ------------------------------- */

/* The limit's metric now, for the early-restart plan. */
static double metric_now(const ms_worker_t* w) {
  if (w->metric == MS_METRIC_RSS) return (double)w->last.rss;
  if (w->metric == MS_METRIC_HEAP && w->heap.has_heap)
    return (double)w->heap.allocated;
  return (double)w->last.footprint;
}

/* With no slot down for memory, asks pool.h whether one should restart
 * early, before the slots' restarts fall due together.  A slot is in the
 * plan while it runs with a clear trend: not restarting or being judged,
 * not held off, and its footprint's recent growth fits a line. */
static void stagger(ms_sup_t* sup, uint64_t now) {
  ms_pool_slot_t ps[MS_WORKERS_MAX];
  ms_early_t why;
  const ms_config_t* cfg = sup->cfg;
  if (sup->nslots < 2 || cfg->limit == 0 || cfg->dry_run || sup->ending) return;
  if (pool_busy(sup, sup->nslots) >= 0) return; /* nslots: no slot excepted */
  for (unsigned k = 0; k < sup->nslots; k++) {
    const ms_machine_t* m = &sup->slots[k]->m;
    ms_growth_fit_t fit;
    memset(&ps[k], 0, sizeof(ps[k]));
    /* Over the limit it is no longer early: it restarts, or waits, by
     * itself. */
    if (m->state != MS_ST_RUNNING || m->rs.active || !m->w.up ||
        m->want != MS_WANT_UP || m->w.lim.over || m->waiting ||
        (m->unhelpful && now < m->hold_until) ||
        ms_growth_rate(&m->w.growth, now, MS_POOL_MIN_SPAN_NS, &fit) < 0 ||
        fit.r2 < MS_POOL_MIN_R2)
      continue;
    ps[k].eligible = 1;
    ps[k].value = metric_now(&m->w);
    ps[k].bps = fit.bps;
  }
  int k = ms_pool_stagger(ps, sup->nslots, cfg->limit, restart_time(sup),
                          MS_POOL_EARLY_FRACTION, &why);
  if (k < 0) return;
  ms_slot_t* slot = sup->slots[k];
  event(slot, MS_EV_EARLY)->early = why;
  post(slot);
}

/* The periodic tick, every --interval (default 50 ms), to every slot.
 *
 * Each tick reads /proc/PID/status (O(1), ~20 us); the sampler adds a
 * smaps_rollup read only when the cheap estimate says the footprint may be
 * over the limit, plus a background calibration read whose rate scales
 * with its measured cost (sample.h), so a worker with 60,000 mappings costs
 * memsup well under 1% of a core while a crossing is still confirmed
 * within one tick plus one rollup read.  The machine decides what to read
 * and what the figure means (machine.c: tick, check_limit). */
static int by_wait(const void* a, const void* b) {
  const ms_slot_t* x = *(ms_slot_t* const*)a;
  const ms_slot_t* y = *(ms_slot_t* const*)b;
  if (x->m.waiting != y->m.waiting) return x->m.waiting ? -1 : 1;
  if (x->m.waiting && x->m.wait_since_ns != y->m.wait_since_ns)
    return x->m.wait_since_ns < y->m.wait_since_ns ? -1 : 1;
  return (int)x->k - (int)y->k;
}

static void tick_cb(uv_timer_t* t) {
  ms_sup_t* sup = t->data;
  ms_slot_t* order[MS_WORKERS_MAX];
  /* A tick's sample is taken and decided on at once (measure()), so the
   * first slot ticked while the pool is free takes it: slots waiting over
   * the limit go first, the longest waiting first. */
  memcpy(order, sup->slots, sizeof(order[0]) * sup->nslots);
  if (sup->nslots > 1) qsort(order, sup->nslots, sizeof(order[0]), by_wait);
  for (unsigned k = 0; k < sup->nslots; k++) {
    if (order[k]->m.state == MS_ST_DONE) continue;
    event(order[k], MS_EV_TICK);
    post(order[k]);
  }
  stagger(sup, uv_hrtime());
}

static void signal_cb(uv_signal_t* h, int sig) {
  ms_sup_t* sup = h->data;
  for (unsigned k = 0; k < sup->nslots; k++) {
    ms_slot_t* slot = sup->slots[k];
    event(slot, stop_signal(sig) ? MS_EV_STOP : MS_EV_FORWARD)->signal.sig = sig;
    post(slot);
  }
}

static void sigchld_cb(uv_signal_t* h, int sig) {
  ms_sup_t* sup = h->data;
  pid_t keep[MS_WORKERS_MAX];
  size_t n = 0;
  (void)sig;
  for (unsigned k = 0; k < sup->nslots; k++)
    if (sup->slots[k]->child) keep[n++] = sup->slots[k]->child->pid;
  ms_reaper_sweep(keep, n);
}

/* ---- create, start, shut down ------------------------------------------ */

static void slot_free(ms_slot_t* slot) {
  if (slot == NULL) return;
  ms_state_clear(&slot->state);
  ms_machine_free(&slot->m);
  ms_listen_env_free(slot->env);
  free(slot->state_dir);
  free(slot);
}

static ms_slot_t* slot_new(ms_sup_t* sup, unsigned k, ms_rlog_t* log,
                           ms_rlog_t* slog) {
  const ms_config_t* cfg = sup->cfg;
  ms_slot_t* slot = calloc(1, sizeof(*slot));
  if (slot == NULL) return NULL;
  slot->sup = sup;
  slot->k = k;
  slot->log.cfg = cfg;
  slot->log.rlog = log;
  slot->log.slog = slog;
  slot->log.slot = cfg->workers > 1 ? (int)k : -1;
  if (sup->cgroup.version) slot->log.cgroup = sup->cgroup.dir;
  ms_state_init(&slot->state);
  if (ms_machine_init(&slot->m, cfg) < 0) {
    slot_free(slot);
    return NULL;
  }
  if (cfg->state_dir &&
      (cfg->workers > 1 ? asprintf(&slot->state_dir, "%s/slot-%u",
                                   cfg->state_dir, k) < 0
                        : (slot->state_dir = strdup(cfg->state_dir)) == NULL)) {
    slot->state_dir = NULL;
    slot_free(slot);
    return NULL;
  }
  ms_store_init(&slot->store, sup->loop, slot->state_dir, &slot->state);
  /* Without sockets: environ less what systemd meant for memsup, plus
   * MEMSUP_FD=3 (ms_sup_start redoes it when there are sockets). */
  if (ms_listen_env(NULL, environ, 3, (int)k, &slot->env) < 0) {
    slot->env = NULL;
    slot_free(slot);
    return NULL;
  }
  uv_timer_init(sup->loop, &slot->timer);
  slot->timer.data = slot;
  return slot;
}

int ms_sup_create(uv_loop_t* loop, const ms_config_t* cfg, ms_rlog_t* log,
                  ms_rlog_t* slog, ms_sup_t** out) {
  ms_sup_t* sup = calloc(1, sizeof(*sup));
  if (sup == NULL) return -ENOMEM;
  sup->loop = loop;
  sup->cfg = cfg;
  ms_listen_init(&sup->listen);
  ms_listen_self_exe(sup->self_exe, sizeof(sup->self_exe));
  /* No memory cgroup is fine: the cgroup figures are left out. */
  (void)ms_cgroup_open(&sup->cgroup, "/sys/fs/cgroup", "/proc/self/cgroup");
  unsigned n = cfg->workers ? cfg->workers : 1;
  sup->slots = calloc(n, sizeof(*sup->slots));
  if (sup->slots == NULL) goto oom;
  for (; sup->nslots < n; sup->nslots++)
    if ((sup->slots[sup->nslots] = slot_new(sup, sup->nslots, log, slog)) == NULL)
      goto oom;
  uv_timer_init(loop, &sup->tick);
  sup->tick.data = sup;
  for (size_t i = 1; i < NSIG_HANDLED; i++) {
    uv_signal_init(loop, &sup->sigs[i]);
    sup->sigs[i].data = sup;
  }
  uv_signal_init(loop, &sup->sigchld);
  sup->sigchld.data = sup;
  *out = sup;
  return 0;
oom:
  /* Slots made so far have a timer on the loop: closed, and freed once
   * the loop has let go of them (main runs it once more on failure). */
  for (unsigned k = 0; k < sup->nslots; k++) {
    uv_close((uv_handle_t*)&sup->slots[k]->timer, NULL);
  }
  uv_run(loop, UV_RUN_NOWAIT);
  for (unsigned k = 0; k < sup->nslots; k++) slot_free(sup->slots[k]);
  free(sup->slots);
  ms_cgroup_close(&sup->cgroup);
  free(sup);
  return -ENOMEM;
}

/* A worker a SIGKILLed memsup left behind must not run beside ours; the
 * slot's state from a previous run is handed to its first worker. */
static void slot_recover(ms_slot_t* slot) {
  const ms_config_t* cfg = slot->sup->cfg;
  const char* dir = slot->state_dir;
  int err;
  if (dir == NULL) return;
  if (cfg->workers > 1 && (err = ms_state_dir_prepare(dir)) < 0) {
    ms_warn("state directory %s: %s (this slot keeps no state on disk)", dir,
            strerror(-err));
    free(slot->state_dir);
    slot->state_dir = NULL;
    ms_store_init(&slot->store, slot->sup->loop, NULL, &slot->state);
    return;
  }
  if (!cfg->watch_pid) {
    pid_t left = ms_pidfile_stop_leftover(dir, cfg->argv, 5000);
    if (left > 0)
      ms_warn("stopped pid %d, a worker of this service that a previous "
              "memsup left running (%s/" MS_PIDFILE_NAME ")",
              (int)left, dir);
    else if (left < 0)
      ms_error("pid in %s/" MS_PIDFILE_NAME " is still running after SIGKILL",
               dir);
  }
  ms_state_t st;
  err = ms_state_load(dir, cfg->max_state, &st);
  if (err == 0) {
    ms_info("state from %s/state: %" PRIu64 " bytes saved by generation %u",
            dir, st.bytes, st.gen);
    ms_state_replace(&slot->state, &st);
  } else if (err != -ENOENT) {
    ms_warn("state in %s/state not used: %s", dir,
            err == -EFBIG ? "over --max-state" : strerror(-err));
  }
}

int ms_sup_start(ms_sup_t* sup) {
  const ms_config_t* cfg = sup->cfg;
  /* A fixed mmap threshold: glibc otherwise raises it to the largest
   * block freed (the 256 KiB smaps buffer), and from then on serves such
   * blocks from the arenas, whose freed pages stay resident. */
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  for (int sig = 1; sig < NSIG_HANDLED; sig++) {
    if (own_signal(sig)) continue;
    int err = uv_signal_start(&sup->sigs[sig], signal_cb, sig);
    if (err < 0) ms_debug("watch signal %d: %s", sig, uv_strerror(err));
  }
  signal(SIGTTIN, SIG_IGN);
  signal(SIGTTOU, SIG_IGN);

  /* Reap orphans as PID 1, with --subreaper, or when the subreaper bit
   * came with memsup (set by whoever exec'd it): orphans come to memsup
   * either way, and left unreaped they stay zombies. */
  if (cfg->subreaper || getpid() == 1 || ms_reaper_inherited()) {
    int err = getpid() == 1 || ms_reaper_inherited() ? 0 : ms_reaper_enable();
    if (err < 0)
      ms_warn("become a subreaper: %s (orphans are not reaped)", strerror(-err));
    else
      uv_signal_start(&sup->sigchld, sigchld_cb, SIGCHLD);
  }

  for (unsigned k = 0; k < sup->nslots; k++) slot_recover(sup->slots[k]);

  {
    /* Sockets from systemd first (fds 3..), then --listen ones. */
    char err[256];
    int r = ms_listen_adopt_env(&sup->listen, err, sizeof(err));
    for (size_t k = 0; r == 0 && k < cfg->nlisten; k++) {
      ms_addr_t addr;
      r = ms_addr_parse(cfg->listen[k], &addr, err, sizeof(err));
      if (r == 0) r = ms_listen_add(&sup->listen, &addr, err, sizeof(err));
    }
    for (unsigned k = 0; r == 0 && sup->listen.n > 0 && k < sup->nslots; k++) {
      char** env;
      ms_slot_t* slot = sup->slots[k];
      r = ms_listen_env(&sup->listen, environ, 3 + (int)sup->listen.n, (int)k,
                        &env);
      if (r == 0) {
        ms_listen_env_free(slot->env);
        slot->env = env;
      }
    }
    if (r == 0 && sup->listen.n > 0)
      r = ms_listen_shim_argv(sup->self_exe, sup->resolved, cfg->argv,
                              &sup->spawn_argv);
    if (r < 0 && err[0] == '\0') snprintf(err, sizeof(err), "%s", strerror(-r));
    if (r < 0) {
      ms_error("listen: %s", err);
      shutdown_sup(sup);
      return 100;
    }
  }
  if (cfg->metrics) {
    ms_addr_t addr;
    char err[256];
    int r = ms_addr_parse(cfg->metrics, &addr, err, sizeof(err));
    if (r == 0)
      r = ms_metrics_start(sup->loop, &addr, NULL, fill_metrics, sup,
                           &sup->metrics, err, sizeof(err));
    if (r < 0) {
      ms_error("--metrics %s", err);
      shutdown_sup(sup);
      return 100;
    }
  }
  {
    char err[256];
    if (ms_notify_open_env(sup->loop, &sup->notify, err, sizeof(err)) < 0)
      ms_warn("systemd notification off: %s", err);
  }

  if (cfg->watch_pid && kill((pid_t)cfg->watch_pid, 0) < 0 && errno == ESRCH) {
    ms_error("watch pid %ld: no such process", cfg->watch_pid);
    shutdown_sup(sup);
    return 100;
  }
  for (unsigned k = 0; k < sup->nslots && !sup->ending; k++) {
    ms_slot_t* slot = sup->slots[k];
    ms_event_t* ev = event(slot, MS_EV_START);
    if (slot->state.fd >= 0)
      snprintf(ev->start.handoff, sizeof(ev->start.handoff), "%s", slot->state.kind);
    post(slot);
  }
  if (sup->ending) {
    /* A slot could not start: the others were told to stop and end with
     * their workers; memsup exits with the first code. */
    int all_done = 1;
    for (unsigned k = 0; k < sup->nslots; k++)
      all_done &= sup->slots[k]->m.state == MS_ST_DONE;
    if (all_done) return sup->exit_code;
  }
  uint64_t ms = cfg->interval_ns / MS_NS_PER_MS;
  uv_timer_start(&sup->tick, tick_cb, ms ? ms : 1, ms ? ms : 1);
  return 0;
}

static void close_handle(uv_handle_t* h) {
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* Closes every handle so uv_run() returns once the jobs still on the
 * threadpool are back (their answers reach machines that are DONE). */
static void shutdown_sup(ms_sup_t* sup) {
  ms_metrics_close(sup->metrics);
  sup->metrics = NULL;
  ms_notify_close(sup->notify);
  sup->notify = NULL;
  for (unsigned k = 0; k < sup->nslots; k++) {
    ms_slot_t* slot = sup->slots[k];
    ms_store_stop(&slot->store);
    if (slot->child) {
      ms_child_kill_group(slot->child, SIGKILL);
      close_worker(slot);
    }
    if (slot->state_dir && !sup->cfg->watch_pid)
      ms_pidfile_remove(slot->state_dir); /* no worker is left */
    close_handle((uv_handle_t*)&slot->timer);
  }
  close_handle((uv_handle_t*)&sup->tick);
  for (size_t i = 1; i < NSIG_HANDLED; i++) close_handle((uv_handle_t*)&sup->sigs[i]);
  close_handle((uv_handle_t*)&sup->sigchld);
}

int ms_sup_exit_code(const ms_sup_t* sup) {
  return sup->nslots == 1 ? sup->slots[0]->m.exit_code : sup->exit_code;
}

void ms_sup_destroy(ms_sup_t* sup) {
  if (sup == NULL) return;
  for (unsigned k = 0; k < sup->nslots; k++) slot_free(sup->slots[k]);
  free(sup->slots);
  ms_listen_close(&sup->listen);
  ms_cgroup_close(&sup->cgroup);
  free(sup->spawn_argv);
  free(sup);
}
