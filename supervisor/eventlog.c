/* eventlog.c: the lines behind the machine's LOG actions.  Builds each
 * JSON event (keys and meaning in docs/restart-log.md) and its stderr line
 * from the machine's worker and restart records; decides nothing. */
#include "eventlog.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "evidence.h"
#include "log.h"
#include "logkeys.h"
#include "memsup_wire.h"
#include "prof.h"

static double secs(uint64_t ns) { return (double)ns / 1e9; }
static double msecs(uint64_t ns) { return (double)ns / 1e6; }
/* Log figures to the millisecond (or microsecond for ms values): more
 * digits than that are noise from the clock, not information. */
static double r3(double x) { return (double)(int64_t)(x * 1000 + 0.5) / 1000; }

const char* ms_signame(int sig) {
  static char buf[16];
  const char* abbrev = sigabbrev_np(sig);
  if (abbrev == NULL)
    snprintf(buf, sizeof(buf), "SIG%d", sig);
  else
    snprintf(buf, sizeof(buf), "SIG%s", abbrev);
  return buf;
}

/* A new line for event: ts, event, pid, gen, and in a pool its slot. */
static cJSON* line(const ms_eventlog_t* el, const char* event, pid_t pid,
                   unsigned gen) {
  cJSON* ev = ms_rlog_event(event, pid, gen);
  if (ev && el->slot >= 0) cJSON_AddNumberToObject(ev, MS_K_SLOT, el->slot);
  return ev;
}

static void emit(ms_eventlog_t* el, cJSON* ev) {
  int err = ms_rlog_write(el->rlog, ev);
  /* Said once per outage: the writer keeps trying, so logging resumes by
   * itself once there is room (restartlog.h). */
  if (err < 0 && !el->rlog_failed) {
    el->rlog_failed = 1;
    ms_error("write %s: %s (events are lost until it can be written again)",
             el->cfg->log_path, strerror(-err));
  } else if (err == 0 && el->rlog_failed) {
    el->rlog_failed = 0;
    ms_info("write %s: events are logged again", el->cfg->log_path);
  }
}

void ms_eventlog_descendants(ms_eventlog_t* el, pid_t pid, unsigned gen,
                             uint64_t footprint, const ms_descendants_t* d) {
  char b1[16], b2[16];
  cJSON* ev = line(el, MS_LOGEV_DESCENDANTS, pid, gen);
  cJSON_AddNumberToObject(ev, MS_K_FOOTPRINT, (double)footprint);
  cJSON_AddNumberToObject(ev, MS_K_DESCENDANTS_FOOTPRINT, (double)d->footprint);
  cJSON_AddNumberToObject(ev, MS_K_DESCENDANTS, d->nprocs);
  cJSON_AddNumberToObject(ev, MS_K_TOP_PID, d->top_pid);
  cJSON_AddStringToObject(ev, MS_K_TOP_COMMAND, d->top_comm);
  cJSON_AddStringToObject(ev, MS_K_HINT, "--tree");
  emit(el, ev);
  ms_warn("pid %d holds %s but its descendants hold %s (largest: %s, pid %d): "
          "the limit applies to pid %d only; use --tree to count them",
          (int)pid, ms_fmt_bytes(b1, footprint), ms_fmt_bytes(b2, d->footprint),
          d->top_comm, (int)d->top_pid, (int)pid);
}

/* An "exit" or "crash" event: exit_code, or signal when killed by one. */
static cJSON* status_event(const ms_eventlog_t* el, const char* event,
                           const ms_log_t* l) {
  cJSON* ev = line(el, event, l->pid, l->gen);
  if (l->term_signal) {
    cJSON_AddNullToObject(ev, MS_K_EXIT_CODE);
    cJSON_AddStringToObject(ev, MS_K_SIGNAL, ms_signame(l->term_signal));
  } else {
    cJSON_AddNumberToObject(ev, MS_K_EXIT_CODE, (double)l->status);
    cJSON_AddNullToObject(ev, MS_K_SIGNAL);
  }
  cJSON_AddNumberToObject(ev, MS_K_UPTIME_S, r3(l->uptime_s));
  return ev;
}

/* Evidence of why the worker bloated, taken before it was stopped: the top
 * mappings (read off the loop), the growth rate over its life, and the
 * classification that follows from those and the SDK's heap figures. */
static cJSON* evidence(const ms_restart_t* rs) {
  ms_classify_in_t in;
  ms_classify_out_t out;
  memset(&in, 0, sizeof(in));
  in.footprint = rs->before.footprint;
  in.rss = rs->before.rss;
  in.lazyfree = rs->before.lazyfree;
  in.rss_file = rs->before.rss_file;
  in.has_heap = rs->before_heap.has_heap;
  in.heap_allocated = rs->before_heap.allocated;
  in.heap_resident = rs->before_heap.resident;
  in.has_growth = rs->has_growth;
  in.footprint_growth_bps = rs->growth_bps;
  in.fit = rs->growth_fit;
  in.gauge = rs->gauge;
  ms_classify(&in, &out);
  cJSON* ev = ms_evidence_json(
      rs->rows, rs->nrows < MS_EVIDENCE_ROWS ? rs->nrows : MS_EVIDENCE_ROWS,
      &out);
  if (ev == NULL) return NULL;
  if (ms_evidence_add_where(ev, &rs->where) != 0) {
    cJSON_Delete(ev);
    return NULL;
  }
  /* Regions that grew since the life's early snapshot, when both reads
   * are of the same process (with --tree the top member may change). */
  ms_grew_t grew[MS_EVIDENCE_ROWS];
  int ngrew = -1;
  if (rs->nearly > 0 && rs->nrows > 0 && rs->early_pid == rs->where.top)
    ngrew = ms_evidence_grew(rs->early_rows, rs->nearly, rs->rows, rs->nrows,
                             grew, MS_EVIDENCE_ROWS);
  ms_evidence_add_grew(ev, grew, ngrew);
  if (ngrew >= 0)
    cJSON_AddNumberToObject(ev, MS_K_GREW_SINCE_S, r3(rs->early_uptime_s));
  else
    cJSON_AddNullToObject(ev, MS_K_GREW_SINCE_S);
  if (rs->has_growth) {
    cJSON_AddNumberToObject(ev, MS_K_GROWTH_BPS, r3(rs->growth_bps));
    cJSON* g = cJSON_AddObjectToObject(ev, MS_K_GROWTH_FIT);
    cJSON_AddNumberToObject(g, MS_K_R2, r3(rs->growth_fit.r2));
    cJSON_AddNumberToObject(g, MS_K_SPAN_S, r3(rs->growth_fit.span_s));
    cJSON_AddNumberToObject(g, MS_K_MIN, (double)rs->growth_fit.min);
    cJSON_AddNumberToObject(g, MS_K_MAX, (double)rs->growth_fit.max);
    cJSON_AddNumberToObject(g, MS_K_HIGH_S, r3(rs->growth_fit.high_s));
  } else {
    cJSON_AddNullToObject(ev, MS_K_GROWTH_BPS);
    cJSON_AddNullToObject(ev, MS_K_GROWTH_FIT);
  }
  /* The gauge that tracks footprint best, whatever the class: the report
   * shows it next to a leak too. */
  if (rs->gauge.found) {
    cJSON* g = cJSON_AddObjectToObject(ev, MS_K_GAUGE);
    cJSON_AddStringToObject(g, MS_K_NAME, rs->gauge.name);
    cJSON_AddNumberToObject(g, MS_K_R, r3(rs->gauge.r));
    cJSON_AddNumberToObject(g, MS_K_FIRST, rs->gauge.first);
    cJSON_AddNumberToObject(g, MS_K_LAST, rs->gauge.last);
    if (rs->gauge.fell_back < 0)
      cJSON_AddNullToObject(g, MS_K_FELL_BACK);
    else
      cJSON_AddBoolToObject(g, MS_K_FELL_BACK, rs->gauge.fell_back);
  } else {
    cJSON_AddNullToObject(ev, MS_K_GAUGE);
  }
  return ev;
}

static void restart_state(cJSON* ev, const ms_restart_t* rs) {
  if (!rs->expect_sdk) {
    cJSON_AddNullToObject(ev, MS_K_STATE);
    return;
  }
  cJSON* st = cJSON_AddObjectToObject(ev, MS_K_STATE);
  cJSON_AddStringToObject(st, MS_K_OUTCOME, rs->outcome);
  cJSON_AddNumberToObject(st, MS_K_BYTES, (double)rs->saved_bytes);
  cJSON_AddNumberToObject(st, MS_K_SAVE_MS,
                          r3(rs->t_state ? msecs(rs->t_state - rs->t_decide) : 0));
  cJSON_AddNumberToObject(st, MS_K_VERIFY_MS,
                          r3(rs->t_recv ? msecs(rs->t_state - rs->t_recv) : 0));
  if (rs->t_recv)
    cJSON_AddNumberToObject(st, MS_K_RECEIVED_UNIX_S, rs->recv_unix_s);
  else
    cJSON_AddNullToObject(st, MS_K_RECEIVED_UNIX_S);
  if (rs->held_unix_us)
    cJSON_AddNumberToObject(st, MS_K_HELD_UNIX_S, (double)rs->held_unix_us / 1e6);
  else
    cJSON_AddNullToObject(st, MS_K_HELD_UNIX_S);
  cJSON_AddNumberToObject(st, MS_K_RESTORE_MS,
                          r3(rs->t_ready && rs->t_welcome
                                 ? msecs(rs->t_ready - rs->t_welcome)
                                 : 0));
  if (rs->handed[0])
    cJSON_AddStringToObject(st, MS_K_HANDED, rs->handed);
  else
    cJSON_AddNullToObject(st, MS_K_HANDED);
  if (rs->restore[0])
    cJSON_AddStringToObject(st, MS_K_RESTORE, rs->restore);
  else
    cJSON_AddNullToObject(st, MS_K_RESTORE);
}

/* "prof": the heap profiles asked of the old worker (docs/profiling.md),
 * or null when none was. */
static void restart_prof(cJSON* ev, const ms_config_t* cfg,
                         const ms_restart_t* rs) {
  char path[MEMSUP_PROF_PATH_MAX];
  if (!rs->prof_end ||
      ms_prof_path(path, sizeof(path), cfg->log_path, rs->old_pid, rs->old_gen,
                   1) < 0) {
    cJSON_AddNullToObject(ev, MS_K_PROF);
    return;
  }
  cJSON* p = cJSON_AddObjectToObject(ev, MS_K_PROF);
  cJSON_AddStringToObject(p, MS_K_PROF_END, path);
  if (rs->prof_start && ms_prof_path(path, sizeof(path), cfg->log_path,
                                     rs->old_pid, rs->old_gen, 0) == 0)
    cJSON_AddStringToObject(p, MS_K_PROF_START, path);
  else
    cJSON_AddNullToObject(p, MS_K_PROF_START);
}

/* key: end - start in ms, or null when either is unknown (0). */
static void add_ms(cJSON* ev, const char* key, uint64_t start, uint64_t end) {
  if (start && end && end >= start)
    cJSON_AddNumberToObject(ev, key, r3(msecs(end - start)));
  else
    cJSON_AddNullToObject(ev, key);
}

/* A pool's restart: why it was early, or how long it waited for another
 * slot's.  Nothing without a pool. */
static void restart_pool(cJSON* ev, const ms_restart_t* rs) {
  if (rs->early) {
    const ms_early_t* e = &rs->early_why;
    cJSON* o = cJSON_AddObjectToObject(ev, MS_K_EARLY);
    cJSON_AddNumberToObject(o, MS_K_FRACTION, r3(e->fraction));
    cJSON_AddNumberToObject(o, MS_K_DUE_IN_S, r3(e->due_in_s));
    cJSON_AddNumberToObject(o, MS_K_NEXT_SLOT, e->next_slot);
    cJSON_AddNumberToObject(o, MS_K_NEXT_DUE_IN_S, r3(e->next_due_in_s));
    cJSON_AddNumberToObject(o, MS_K_RESTART_S, r3(e->restart_s));
    cJSON_AddNumberToObject(o, MS_K_PLANNED, e->planned);
  }
  if (rs->waited) {
    cJSON_AddNumberToObject(ev, MS_K_WAITED_S, r3(rs->waited_s));
    cJSON_AddNumberToObject(ev, MS_K_WAITED_FOR, rs->waited_for);
    cJSON_AddBoolToObject(ev, MS_K_CEILING, rs->ceiling);
  }
}

/* In a pool, how long the slot counted as down for memory (docs/pool.md):
 * to the new worker's "ready"; without the SDK, to --handshake-timeout
 * after its spawn (when the pool counts it up again); null when the
 * restart ended without a new worker. */
static void restart_up(cJSON* ev, const ms_machine_t* m) {
  const ms_restart_t* rs = &m->rs;
  if (rs->t_ready) {
    add_ms(ev, MS_K_UP_MS, rs->t_decide, rs->t_ready);
  } else if (rs->new_pid && rs->t_spawn && !m->w.sdk) {
    uint64_t up = rs->t_spawn + m->cfg->handshake_ns;
    cJSON_AddNumberToObject(ev, MS_K_UP_MS, r3(msecs(up - rs->t_decide)));
  } else {
    cJSON_AddNullToObject(ev, MS_K_UP_MS);
  }
}

static void restart(ms_eventlog_t* el, const ms_machine_t* m, const ms_log_t* l) {
  const ms_restart_t* rs = &m->rs;
  const ms_config_t* cfg = el->cfg;
  const ms_mem_t* after = rs->has_after ? &rs->after : NULL;
  char b1[16], b2[16], b3[16], b4[16], b5[16], b6[16];

  cJSON* ev = line(el, MS_LOGEV_RESTART, l->pid, l->gen);
  cJSON_AddStringToObject(ev, MS_K_REASON,
                          rs->early ? MS_REASON_EARLY : MS_REASON_LIMIT);
  cJSON_AddStringToObject(ev, MS_K_METRIC, ms_metric_name(rs->metric));
  cJSON_AddNumberToObject(ev, MS_K_LIMIT, (double)cfg->limit);
  cJSON_AddNumberToObject(ev, MS_K_VALUE, (double)rs->value);
  cJSON_AddNumberToObject(ev, MS_K_OVER_FOR_S, r3(rs->over_for_s));
  cJSON_AddNumberToObject(ev, MS_K_DECIDED_UNIX_S, rs->decided_unix_s);
  cJSON_AddNumberToObject(ev, MS_K_OLD_PID, rs->old_pid);
  cJSON_AddNumberToObject(ev, MS_K_NEW_PID, rs->new_pid);
  cJSON_AddNumberToObject(ev, MS_K_UPTIME_S, r3(rs->uptime_s));
  cJSON_AddItemToObject(ev, MS_K_BEFORE, ms_rlog_mem(&rs->before, rs->before_heap.has_heap,
                                                  &rs->before_heap));
  if (after)
    cJSON_AddItemToObject(ev, MS_K_AFTER, ms_rlog_mem(after, rs->after_heap.has_heap,
                                                   &rs->after_heap));
  else
    cJSON_AddNullToObject(ev, MS_K_AFTER);
  cJSON_AddItemToObject(ev, MS_K_EVIDENCE, evidence(rs));
  if (rs->helped >= 0)
    cJSON_AddBoolToObject(ev, MS_K_HELPED, rs->helped);
  else
    cJSON_AddNullToObject(ev, MS_K_HELPED);
  if (rs->has_after) {
    cJSON_AddNumberToObject(ev, MS_K_JUDGED_AFTER_S, r3(rs->judged_after_s));
  } else {
    cJSON_AddNullToObject(ev, MS_K_JUDGED_AFTER_S);
  }
  if (rs->crossed)
    cJSON_AddNumberToObject(ev, MS_K_CROSSED_AFTER_S, r3(rs->crossed_after_s));
  else
    cJSON_AddNullToObject(ev, MS_K_CROSSED_AFTER_S);
  cJSON_AddNumberToObject(ev, MS_K_HOLD_S, r3(secs(rs->hold_ns)));
  if (rs->reclaimed)
    cJSON_AddNumberToObject(ev, MS_K_LOW_AFTER_READY, (double)rs->low);
  /* What clients of the worker go without: from the decision to the new
   * worker's "ready".  Only a worker that speaks the SDK says when it is
   * ready; for any other it is not known (null), and spawn time would
   * understate it (a server still loading its data is not serving). */
  add_ms(ev, MS_K_DOWNTIME_MS, rs->t_decide, rs->t_ready);
  add_ms(ev, MS_K_GONE_MS, rs->t_decide, rs->t_exit);
  add_ms(ev, MS_K_SPAWN_MS, rs->t_exit, rs->t_spawn);
  add_ms(ev, MS_K_READY_MS, rs->t_spawn, rs->t_ready);
  add_ms(ev, MS_K_STOP_MS, rs->t_stop, rs->t_exit);
  restart_state(ev, rs);
  restart_prof(ev, cfg, rs);
  restart_pool(ev, rs);
  if (el->slot >= 0) restart_up(ev, m);
  emit(el, ev);

  ms_fmt_bytes(b1, rs->value);
  ms_fmt_bytes(b2, cfg->limit);
  ms_fmt_bytes(b3, rs->before.footprint);
  ms_fmt_bytes(b4, after ? after->footprint : 0);
  ms_fmt_bytes(b5, rs->before.rss);
  ms_fmt_bytes(b6, after ? after->rss : 0);
  if (rs->early)
    ms_info("restart #%u is early, at %.0f%% of the limit: due in %.2f s, and "
            "slot %d %.2f s later, within the %.2f s a restart takes (%u "
            "planned back to back)",
            rs->number, cfg->limit ? 100.0 * (double)rs->value / (double)cfg->limit : 0,
            rs->early_why.due_in_s, rs->early_why.next_slot,
            rs->early_why.next_due_in_s - rs->early_why.due_in_s,
            rs->early_why.restart_s, rs->early_why.planned);
  else if (rs->waited)
    ms_info("restart #%u waited %.1f s for slot %d's restart%s", rs->number,
            rs->waited_s, rs->waited_for,
            rs->ceiling ? " until it crossed the save ceiling" : "");
  ms_info("restart #%u (%s %s %s %s after %.1f s): pid %d -> %d, "
          "footprint %s -> %s, rss %s -> %s%s%s",
          rs->number, ms_metric_name(rs->metric), b1, rs->early ? "<" : ">",
          b2, rs->uptime_s,
          (int)rs->old_pid, (int)rs->new_pid, b3, after ? b4 : "?", b5,
          after ? b6 : "?", rs->expect_sdk ? ", state " : "",
          rs->expect_sdk ? rs->outcome : "");
  if (rs->new_pid == 0)
    ms_warn("restart #%u ended without a new worker (%s)", rs->number,
            m->want == MS_WANT_DOWN ? "memsup is stopping"
                                    : "it could not be started");
  if (rs->reclaimed)
    ms_info("restart #%u helped: pid %d was down to %s once ready (%s before); "
            "it grew back %s by leaking, not by starting up",
            rs->number, (int)rs->new_pid, ms_fmt_bytes(b1, rs->low),
            ms_fmt_bytes(b2, rs->judged_before),
            rs->crossed ? "over the limit soon" : "to as big");
  if (rs->helped == 0 && rs->crossed)
    ms_warn("restart #%u did not help: pid %d crossed the limit again %.1f s "
            "after it started",
            rs->number, (int)rs->new_pid, rs->crossed_after_s);
  else if (rs->helped == 0)
    ms_warn("restart #%u did not help (%s %s before, %s after %.1f s)",
            rs->number, ms_metric_name(rs->judged_on),
            ms_fmt_bytes(b1, rs->judged_before), ms_fmt_bytes(b2, rs->judged_after),
            rs->judged_after_s);
}

/* Over the limit while memory restarts are held off: the worker runs on,
 * and the operator is told what to change. */
static void hold(ms_eventlog_t* el, const ms_machine_t* m, const ms_log_t* l) {
  const ms_restart_t* rs = &m->rs;
  char b1[16], b2[16];
  cJSON* ev = line(el, MS_LOGEV_HOLD, l->pid, l->gen);
  cJSON_AddStringToObject(ev, MS_K_REASON,
                          rs->crossed ? MS_HOLD_CROSSED_SOON : MS_HOLD_AS_BIG);
  cJSON_AddStringToObject(ev, MS_K_METRIC, ms_metric_name(l->metric));
  cJSON_AddNumberToObject(ev, MS_K_LIMIT, (double)el->cfg->limit);
  cJSON_AddNumberToObject(ev, MS_K_VALUE, (double)l->value);
  cJSON_AddNumberToObject(ev, MS_K_RESTART, rs->number);
  if (rs->crossed)
    cJSON_AddNumberToObject(ev, MS_K_CROSSED_AFTER_S, r3(rs->crossed_after_s));
  else
    cJSON_AddNullToObject(ev, MS_K_CROSSED_AFTER_S);
  cJSON_AddNumberToObject(ev, MS_K_UNHELPFUL, l->count);
  cJSON_AddNumberToObject(ev, MS_K_HOLD_S, r3(secs((uint64_t)l->delay_ns)));
  ms_rlog_add_mem(ev, l->mem, 0, NULL);
  emit(el, ev);
  /* Said once per restart that did not help: a worker that spikes over
   * the limit every few seconds through a 5 min hold would repeat it. */
  if (el->hold_warned == rs->number) return;
  el->hold_warned = rs->number;
  ms_warn("pid %d is over the limit (%s %s > %s); %u restart%s in a row did "
          "not help, so memory restarts are held off for %.0f s and it keeps "
          "running: %s",
          (int)l->pid, ms_metric_name(l->metric), ms_fmt_bytes(b1, l->value),
          ms_fmt_bytes(b2, el->cfg->limit), l->count, l->count == 1 ? "" : "s",
          secs((uint64_t)l->delay_ns),
          rs->crossed ? "the worker needs more than the limit while starting: "
                        "raise --limit or use --for"
                      : "the worker is as big after a restart as before (what "
                        "it loads holds the memory): raise --limit");
}

/* --dry-run: the restart that would have happened. */
static void would_restart(ms_eventlog_t* el, const ms_machine_t* m,
                          const ms_log_t* l) {
  const ms_restart_t* rs = &m->rs;
  char b1[16], b2[16], b3[16], b4[16];
  cJSON* ev = line(el, MS_LOGEV_WOULD_RESTART, l->pid, rs->old_gen);
  cJSON_AddStringToObject(ev, MS_K_REASON,
                          rs->early ? MS_REASON_EARLY : MS_REASON_LIMIT);
  cJSON_AddStringToObject(ev, MS_K_METRIC, ms_metric_name(rs->metric));
  cJSON_AddNumberToObject(ev, MS_K_LIMIT, (double)el->cfg->limit);
  cJSON_AddNumberToObject(ev, MS_K_VALUE, (double)rs->value);
  cJSON_AddNumberToObject(ev, MS_K_OVER_FOR_S, r3(rs->over_for_s));
  cJSON_AddNumberToObject(ev, MS_K_UPTIME_S, r3(rs->uptime_s));
  cJSON_AddItemToObject(ev, MS_K_BEFORE, ms_rlog_mem(&rs->before, rs->before_heap.has_heap,
                                                  &rs->before_heap));
  cJSON_AddItemToObject(ev, MS_K_EVIDENCE, evidence(rs));
  emit(el, ev);
  ms_info("dry run: would restart pid %d (%s %s > %s after %.1f s; footprint %s, rss %s)",
          (int)rs->old_pid, ms_metric_name(rs->metric), ms_fmt_bytes(b1, rs->value),
          ms_fmt_bytes(b2, el->cfg->limit), rs->uptime_s,
          ms_fmt_bytes(b3, rs->before.footprint), ms_fmt_bytes(b4, rs->before.rss));
}

static void sample(ms_eventlog_t* el, const ms_log_t* l) {
  cJSON* ev = line(el, MS_LOGEV_SAMPLE, l->pid, l->gen);
  ms_rlog_add_mem(ev, l->mem, l->has_heap, l->heap);
  cJSON_AddBoolToObject(ev, MS_K_FULL, l->mem->full);
  /* Lazy-free pages are known only from a full read: a sample that
   * estimated carries the last full read's figure and its age, so a line
   * never says null while the figure is known (docs/restart-log.md). */
  if (l->mem->full) {
    cJSON_AddNumberToObject(ev, MS_K_LAZYFREE_AGE_S, 0);
  } else if (l->last_full) {
    cJSON_ReplaceItemInObject(ev, MS_K_LAZYFREE,
                              cJSON_CreateNumber((double)l->last_full->lazyfree));
    cJSON_AddNumberToObject(ev, MS_K_LAZYFREE_AGE_S,
                            r3(secs(l->last_full_age_ns)));
  } else {
    cJSON_AddNullToObject(ev, MS_K_LAZYFREE_AGE_S);
  }
  cJSON_AddNumberToObject(ev, MS_K_LIMIT, (double)el->cfg->limit);
  int err = ms_rlog_write(el->slog, ev);
  if (err < 0 && !el->slog_failed) {
    el->slog_failed = 1;
    ms_error("write %s: %s (samples are lost until it can be written again)",
             el->cfg->sample_log_path, strerror(-err));
  } else if (err == 0 && el->slog_failed) {
    el->slog_failed = 0;
    ms_info("write %s: samples are logged again", el->cfg->sample_log_path);
  }
}

static void purge(ms_eventlog_t* el, const ms_machine_t* m, const ms_log_t* l) {
  const ms_mem_t* before = &m->w.purge_before;
  char b1[16], b2[16], b3[16];
  uint64_t freed =
      before->footprint > l->mem->footprint ? before->footprint - l->mem->footprint : 0;
  cJSON* ev = line(el, MS_LOGEV_PURGE, l->pid, l->gen);
  cJSON_AddStringToObject(ev, MS_K_REASON, l->hard ? MS_REASON_HARD_LIMIT
                                                   : MS_REASON_SOFT_LIMIT);
  cJSON_AddNumberToObject(ev, MS_K_SOFT_LIMIT, (double)el->cfg->soft_limit);
  cJSON_AddNumberToObject(ev, MS_K_FREED, (double)freed);
  /* Heap-in-use is what the worker holds; a purge does not change it, so
   * the latest report stands for both sides. */
  cJSON_AddItemToObject(ev, MS_K_BEFORE, ms_rlog_mem(before, l->has_heap, l->heap));
  cJSON_AddItemToObject(ev, MS_K_AFTER, ms_rlog_mem(l->mem, l->has_heap, l->heap));
  cJSON_AddNumberToObject(ev, MS_K_RESIDENT_BEFORE, (double)l->purge_resident_before);
  cJSON_AddNumberToObject(ev, MS_K_RESIDENT_AFTER, (double)l->purge_resident_after);
  emit(el, ev);
  ms_info("purge%s: pid %d freed %s of footprint (%s -> %s)",
          l->hard ? " at the hard limit" : "", (int)l->pid,
          ms_fmt_bytes(b1, freed), ms_fmt_bytes(b2, before->footprint),
          ms_fmt_bytes(b3, l->mem->footprint));
}

static const char* how(const ms_log_t* l) {
  return l->term_signal ? "signal" : "status";
}
static int how_n(const ms_log_t* l) {
  return l->term_signal ? l->term_signal : (int)l->status;
}

static const char* reject_reason(int err) {
  return err == -EFBIG ? "over --max-state" : strerror(-err);
}

void ms_eventlog_write(ms_eventlog_t* el, const ms_machine_t* m,
                       const ms_log_t* l) {
  const ms_config_t* cfg = el->cfg;
  cJSON* ev;
  int pid = (int)l->pid;
  switch (l->kind) {
    case MS_LOG_START:
      ev = line(el, MS_LOGEV_START, l->pid, l->gen);
      {
        cJSON* cmd = cJSON_AddArrayToObject(ev, MS_K_CMD);
        for (int i = 0; i < cfg->argc; i++)
          cJSON_AddItemToArray(cmd, cJSON_CreateString(cfg->argv[i]));
      }
      if (m->handoff[0])
        cJSON_AddStringToObject(ev, MS_K_STATE, m->handoff);
      else
        cJSON_AddNullToObject(ev, MS_K_STATE);
      emit(el, ev);
      ms_debug("started %s (pid %d, generation %u)", cfg->argv[0], pid, l->gen);
      break;
    case MS_LOG_WATCH:
      ev = line(el, MS_LOGEV_WATCH, l->pid, l->gen);
      cJSON_AddNumberToObject(ev, MS_K_LIMIT, (double)cfg->limit);
      cJSON_AddStringToObject(ev, MS_K_METRIC, ms_metric_name(cfg->metric));
      emit(el, ev);
      ms_info("watching pid %d (limit %s, dry run)", pid, cfg->limit ? "set" : "none");
      break;
    case MS_LOG_SAMPLE:
      sample(el, l);
      break;
    case MS_LOG_RESTART:
      restart(el, m, l);
      break;
    case MS_LOG_WOULD_RESTART:
      would_restart(el, m, l);
      break;
    case MS_LOG_CRASH:
      ev = status_event(el, MS_LOGEV_CRASH, l);
      cJSON_AddBoolToObject(ev, MS_K_OOM_KILL, l->oom_kill);
      if (l->oom_kill)
        ms_warn("pid %d killed by the kernel's OOM killer (cgroup %s): "
                "memsup's --limit should sit below the container limit",
                pid, el->cgroup ? el->cgroup : "?");
      if (l->delay_ns < 0) {
        cJSON_AddNullToObject(ev, MS_K_RESTART_IN_MS);
        emit(el, ev);
        break;
      }
      cJSON_AddNumberToObject(ev, MS_K_RESTART_IN_MS, msecs((uint64_t)l->delay_ns));
      emit(el, ev);
      if (l->term_signal)
        ms_info("pid %d killed by %s after %.1f s; restarting in %.0f ms", pid,
                ms_signame(l->term_signal), l->uptime_s, msecs((uint64_t)l->delay_ns));
      else
        ms_info("pid %d exited with status %d after %.1f s; restarting in %.0f ms",
                pid, (int)l->status, l->uptime_s, msecs((uint64_t)l->delay_ns));
      break;
    case MS_LOG_EXIT:
      emit(el, status_event(el, MS_LOGEV_EXIT, l));
      ms_info("pid %d exited with status 0 after %.1f s", pid, l->uptime_s);
      break;
    case MS_LOG_STOPPED:
      emit(el, status_event(el, MS_LOGEV_EXIT, l));
      ms_info("pid %d stopped (%s %d)", pid, how(l), how_n(l));
      break;
    case MS_LOG_WATCH_END:
      ev = status_event(el, MS_LOGEV_EXIT, l);
      /* Not our child: its status is its parent's to know. */
      cJSON_ReplaceItemInObject(ev, MS_K_EXIT_CODE, cJSON_CreateNull());
      emit(el, ev);
      ms_info("pid %d has exited: watch ends", pid);
      break;
    case MS_LOG_GIVEUP:
      ev = line(el, MS_LOGEV_GIVEUP, l->pid, l->gen);
      cJSON_AddNumberToObject(ev, MS_K_CRASHES, l->count);
      cJSON_AddNumberToObject(ev, MS_K_WITHIN_S, secs(cfg->within_ns));
      cJSON_AddNumberToObject(ev, MS_K_EXIT_CODE, l->code);
      emit(el, ev);
      ms_error("giving up: %u exits within %.0f s (--max-restarts %u --within "
               "%.0fs); last exit status %d",
               l->count, secs(cfg->within_ns), cfg->max_restarts,
               secs(cfg->within_ns), m->last_status);
      break;
    case MS_LOG_SPAWN_GIVEUP:
      ms_error("giving up: the worker could not be started");
      break;
    case MS_LOG_STOP:
      ev = line(el, MS_LOGEV_STOP, l->pid, l->gen);
      cJSON_AddStringToObject(ev, MS_K_SIGNAL, ms_signame(l->sig));
      emit(el, ev);
      ms_info("%s: stopping", ms_signame(l->sig));
      break;
    case MS_LOG_PURGE:
      purge(el, m, l);
      break;
    case MS_LOG_BAD_VERSION:
      ms_warn("pid %d speaks protocol version %d, memsup speaks %d: "
              "supervised without the SDK",
              pid, l->version, MEMSUP_WIRE_VERSION);
      break;
    case MS_LOG_HELLO:
      ms_debug("pid %d: SDK handshake (allocator %s)", pid, l->text);
      break;
    case MS_LOG_HEAP_FALLBACK:
      ms_warn("pid %d did not complete the SDK handshake within %.1f s: "
              "using footprint instead of heap",
              pid, secs(cfg->handshake_ns));
      break;
    case MS_LOG_CHANNEL_CLOSED:
      ms_warn("pid %d closed the memsup channel and runs on without the SDK "
              "(no heap figures, no state handoff)", pid);
      break;
    case MS_LOG_SAVE_TIMEOUT:
      ms_warn("pid %d did not save its state within %.1f s: %s", pid,
              secs(cfg->grace_ns),
              m->handoff[0] ? "the last good state will be handed over"
                            : "the new worker starts without state");
      break;
    case MS_LOG_SAVE_FAILED:
      ms_warn("pid %d could not save its state: %s", pid, l->text);
      break;
    case MS_LOG_SAVE_UNSENT:
      ms_warn("ask pid %d to save: %s", pid, strerror(-l->err));
      break;
    case MS_LOG_WELCOME_UNSENT:
      ms_warn("welcome pid %d: %s", pid, strerror(-l->err));
      break;
    case MS_LOG_DIED_SAVING:
      ms_warn("pid %d died while saving its state (%s %d)", pid, how(l), how_n(l));
      break;
    case MS_LOG_STATE_REJECTED:
      ms_error("state from pid %d rejected (%" PRIu64 " bytes): %s; %s", pid,
               l->state->bytes, reject_reason(l->err),
               m->handoff[0] ? "handing over the last good state"
                             : "the new worker starts without state");
      break;
    case MS_LOG_CHECKPOINT:
      if (l->err)
        ms_warn("%s from pid %d rejected (%" PRIu64 " bytes): %s", l->state->kind,
                pid, l->state->bytes, reject_reason(l->err));
      else
        ms_debug("checkpoint from pid %d: %" PRIu64 " bytes", pid, l->state->bytes);
      break;
    case MS_LOG_FILTERED: {
      char b1[16], b2[16];
      ev = line(el, MS_LOGEV_FILTERED, l->pid, l->gen);
      cJSON_AddStringToObject(ev, MS_K_METRIC, ms_metric_name(m->w.metric));
      cJSON_AddNumberToObject(ev, MS_K_LIMIT, (double)cfg->limit);
      cJSON_AddNumberToObject(ev, MS_K_PEAK, (double)l->peak);
      cJSON_AddNumberToObject(ev, MS_K_LASTED_S, r3(secs(l->lasted_ns)));
      cJSON_AddNumberToObject(ev, MS_K_FOR_S, r3(secs(cfg->for_ns)));
      emit(el, ev);
      ms_info("pid %d was over the limit for %.1f s (peak %s > %s), under "
              "--for %.1f s: no restart",
              pid, secs(l->lasted_ns), ms_fmt_bytes(b1, l->peak),
              ms_fmt_bytes(b2, cfg->limit), secs(cfg->for_ns));
      break;
    }
    case MS_LOG_KILL:
      ms_warn("pid %d still running %.1f s after SIGTERM: sending SIGKILL", pid,
              secs(cfg->grace_ns));
      break;
    case MS_LOG_CEILING:
      ms_warn("pid %d reached %" PRIu64 " bytes while saving, past the ceiling "
              "of %" PRIu64 ": killed without its save; %s", pid, l->value,
              l->ceiling,
              m->handoff[0] ? "the last good state will be handed over"
                            : "the new worker starts without state");
      break;
    case MS_LOG_HOLD:
      hold(el, m, l);
      break;
    case MS_LOG_WAIT: {
      char b1[16], b2[16];
      ev = line(el, MS_LOGEV_WAIT, l->pid, l->gen);
      cJSON_AddStringToObject(ev, MS_K_METRIC, ms_metric_name(l->metric));
      cJSON_AddNumberToObject(ev, MS_K_LIMIT, (double)cfg->limit);
      cJSON_AddNumberToObject(ev, MS_K_VALUE, (double)l->value);
      cJSON_AddNumberToObject(ev, MS_K_WAITING_FOR, l->slot);
      emit(el, ev);
      ms_info("pid %d is over the limit (%s %s > %s) while slot %d restarts: "
              "it waits (restarts go one at a time; past %s it goes at once)",
              pid, ms_metric_name(l->metric), ms_fmt_bytes(b1, l->value),
              ms_fmt_bytes(b2, cfg->limit), l->slot,
              ms_fmt_bytes(b2, ms_policy_ceiling(cfg->limit)));
      break;
    }
    case MS_LOG_HOLD_BROKEN: {
      char b1[16], b2[16];
      ms_warn("pid %d kept growing while restarts were held off (%s %s -> %s): "
              "restarting it",
              pid, ms_metric_name(l->metric),
              ms_fmt_bytes(b1, l->from), ms_fmt_bytes(b2, l->value));
      break;
    }
  }
}
