/* logkeys.h: the names in memsup's restart log (--log) and sample log
 * (--sample-log), in one place for the writers (restartlog.c, eventlog.c,
 * evidence.c) and the reader (report/).  docs/restart-log.md says what each
 * one means; a name changed here changes the file format, so change the
 * document with it.  String literals, so they also work in concatenations
 * such as "\"" MS_K_EVENT "\":\"" MS_LOGEV_RESTART "\"".
 */
#ifndef MS_LOGKEYS_H
#define MS_LOGKEYS_H

/* ---- event names (the value of MS_K_EVENT) ---------------------------- */
#define MS_LOGEV_START "start"
#define MS_LOGEV_RESTART "restart"
#define MS_LOGEV_WOULD_RESTART "would-restart"
#define MS_LOGEV_CRASH "crash"
#define MS_LOGEV_EXIT "exit"
#define MS_LOGEV_GIVEUP "giveup"
#define MS_LOGEV_STOP "stop"
#define MS_LOGEV_PURGE "purge"
#define MS_LOGEV_WATCH "watch"
#define MS_LOGEV_HOLD "hold"
#define MS_LOGEV_SAMPLE "sample" /* sample log only */
#define MS_LOGEV_FILTERED "filtered" /* a crossing shorter than --for */
#define MS_LOGEV_WAIT "wait" /* pool: over the limit while another slot
                               restarts for memory */

/* ---- on every line ------------------------------------------------------ */
#define MS_K_TS "ts"
#define MS_K_EVENT "event"
#define MS_K_PID "pid"
#define MS_K_GEN "gen"
#define MS_K_SLOT "slot" /* with --workers N > 1 only: the worker's slot,
                            0..N-1; pid and gen are that slot's */

/* ---- memory figures: before, after, purge before/after, sample lines ---- */
#define MS_K_FOOTPRINT "footprint"
#define MS_K_RSS "rss"
#define MS_K_SWAP "swap"
#define MS_K_LAZYFREE "lazyfree"
#define MS_K_FILE "file"
#define MS_K_HEAP "heap"
#define MS_K_ALLOCATOR "allocator" /* object: the four below */
#define MS_K_ALLOCATED "allocated"
#define MS_K_ACTIVE "active"
#define MS_K_RESIDENT "resident"
#define MS_K_RETAINED "retained"
#define MS_K_GAUGES "gauges" /* object: the worker's gauge name -> number */

/* ---- sample ------------------------------------------------------------- */
#define MS_K_FULL "full"
#define MS_K_LAZYFREE_AGE_S "lazyfree_age_s" /* age of the full read that
                                                gave lazyfree; null: none */
#define MS_K_LIMIT "limit" /* also restart, would-restart, watch */

/* ---- start -------------------------------------------------------------- */
#define MS_K_CMD "cmd"
#define MS_K_STATE "state" /* start: a kind or null; restart: object below */

/* ---- restart and would-restart ------------------------------------------ */
#define MS_K_REASON "reason"
#define MS_REASON_LIMIT "limit" /* crossed the limit */
#define MS_REASON_EARLY "early" /* pool: restarted below the limit so that
                                   the slots' restarts do not pile up */
#define MS_K_METRIC "metric"    /* also watch */
#define MS_K_VALUE "value"
#define MS_K_OVER_FOR_S "over_for_s"
#define MS_K_DECIDED_UNIX_S "decided_unix_s"
#define MS_K_OLD_PID "old_pid"
#define MS_K_NEW_PID "new_pid"
#define MS_K_UPTIME_S "uptime_s" /* also crash, exit */
#define MS_K_BEFORE "before"     /* also purge */
#define MS_K_AFTER "after"       /* also purge */
#define MS_K_EVIDENCE "evidence"
#define MS_K_HELPED "helped"
#define MS_K_DOWNTIME_MS "downtime_ms"
#define MS_K_STOP_MS "stop_ms"
#define MS_K_SPAWN_MS "spawn_ms"
#define MS_K_PROF "prof" /* object: heap profiles of the old worker */
#define MS_K_PROF_START "start"
#define MS_K_PROF_END "end"
#define MS_K_GONE_MS "gone_ms"   /* decision -> old worker reaped */
#define MS_K_READY_MS "ready_ms" /* spawn -> ready (SDK), else null */
#define MS_K_JUDGED_AFTER_S "judged_after_s"   /* new worker's age at the verdict */
#define MS_K_CROSSED_AFTER_S "crossed_after_s" /* also hold */
#define MS_K_HOLD_S "hold_s"                   /* also hold */
#define MS_K_LOW_AFTER_READY "low_after_ready" /* helped although it crossed
                                                  soon or ended as big: its
                                                  smallest figure once ready */
/* pool (--workers N > 1) */
#define MS_K_WAITED_S "waited_s"   /* crossed while another slot restarted
                                     for memory, and waited this long */
#define MS_K_WAITED_FOR "waited_for" /* the slot it waited for */
#define MS_K_CEILING "ceiling" /* true: past the hard ceiling, did not wait */
#define MS_K_UP_MS "up_ms" /* decision -> the slot counts as up again: the
                             new worker's ready, or --handshake-timeout
                             after its spawn without the SDK, or the
                             restart's end without a new worker */
/* an "early" restart's object of the same name (MS_K_EARLY, below): */
#define MS_K_FRACTION "fraction"           /* of the limit it was at */
#define MS_K_DUE_IN_S "due_in_s"           /* its own time to the limit */
#define MS_K_NEXT_SLOT "next_slot"         /* the slot due next */
#define MS_K_NEXT_DUE_IN_S "next_due_in_s" /* that slot's time to it */
#define MS_K_RESTART_S "restart_s" /* the restart time memsup expects */
#define MS_K_PLANNED "planned"     /* restarts planned back to back */

/* ---- wait (pool) -------------------------------------------------------- */
/* metric, limit, value as above, and: */
#define MS_K_WAITING_FOR "waiting_for" /* the slot restarting for memory */

/* ---- hold ---------------------------------------------------------------- */
/* reason, metric, limit, value, crossed_after_s, hold_s as above, and: */
#define MS_K_RESTART "restart"     /* number of the restart that did not help */
#define MS_K_UNHELPFUL "unhelpful" /* restarts in a row that did not help */
#define MS_HOLD_CROSSED_SOON "crossed-soon" /* values of hold's reason */
#define MS_HOLD_AS_BIG "as-big"

/* restart's "state" object */
#define MS_K_OUTCOME "outcome"
#define MS_K_HANDED "handed"
#define MS_K_BYTES "bytes"
#define MS_K_SAVE_MS "save_ms"
#define MS_K_VERIFY_MS "verify_ms"
#define MS_K_RECEIVED_UNIX_S "received_unix_s"
#define MS_K_HELD_UNIX_S "held_unix_s"
#define MS_K_RESTORE_MS "restore_ms"
#define MS_K_RESTORE "restore"

/* restart's "evidence" object, and each row of its "mappings" array */
#define MS_K_MAPPINGS "mappings"
#define MS_K_GROWTH_BPS "growth_bps"
#define MS_K_GROWTH_FIT "growth_fit" /* object: the keys below, or null */
#define MS_K_R2 "r2"
#define MS_K_SPAN_S "span_s"
#define MS_K_MIN "min"
#define MS_K_MAX "max"
#define MS_K_HIGH_S "high_s"
#define MS_K_GAUGE "gauge" /* object: the gauge that tracks footprint best,
                              or null; its name is MS_K_NAME */
#define MS_K_R "r"
#define MS_K_FIRST "first"
#define MS_K_LAST "last"
#define MS_K_FELL_BACK "fell_back" /* true, false, or null: no restart yet */
#define MS_K_GREW "grew" /* array: regions whose footprint grew since the
                            life's early snapshot, or null; rows have
                            MS_K_NAME, MS_K_CLASS, and the three below */
#define MS_K_EARLY "early" /* also a restart's object when its reason is
                              MS_REASON_EARLY: the keys under "pool" above */
#define MS_K_LATE "late"
/* a row's growth is "grew" (MS_K_GREW) too */
#define MS_K_GREW_SINCE_S "grew_since_s" /* uptime of the early snapshot */
/* classification values */
#define MS_CLASS_LEAK "leak"
#define MS_CLASS_CACHE "unbounded-cache"
#define MS_CLASS_LEAK_OR_CACHE "leak-or-cache"
#define MS_CLASS_RETENTION "allocator-retention"
#define MS_CLASS_LAZYFREE "lazy-free"
#define MS_CLASS_FILE "file-backed"
#define MS_CLASS_SPIKE "spike"
#define MS_CLASS_UNKNOWN "unknown"
#define MS_K_CLASSIFICATION "classification"
#define MS_K_WHY "why"
#define MS_K_NAME "name"
#define MS_K_CLASS "class"
#define MS_K_COUNT "count"
#define MS_K_SIZE "size"
#define MS_K_PRIVATE_DIRTY "private_dirty"
#define MS_K_SHMEM "shmem"
/* read by report (written by evidence.c): evidence.grew rows, each a
 * region whose footprint grew over the life (name, growth), and with
 * --tree evidence.processes rows (command, footprint) */
#define MS_K_GREW "grew"
#define MS_K_GROWTH "growth"
#define MS_K_PROCESSES "processes"
#define MS_K_COMMAND "command"
/* a row's "rss" and "swap" are MS_K_RSS and MS_K_SWAP */

/* ---- crash, exit, giveup, stop ------------------------------------------ */
#define MS_K_EXIT_CODE "exit_code" /* also giveup */
#define MS_K_SIGNAL "signal"       /* also stop */
#define MS_K_RESTART_IN_MS "restart_in_ms"
#define MS_K_OOM_KILL "oom_kill" /* crash: the cgroup's OOM killer took it */
#define MS_K_CRASHES "crashes"
#define MS_K_WITHIN_S "within_s"

/* ---- purge -------------------------------------------------------------- */
#define MS_K_SOFT_LIMIT "soft_limit"
#define MS_K_FREED "freed"
#define MS_K_RESIDENT_BEFORE "resident_before"
#define MS_K_RESIDENT_AFTER "resident_after"
/* purge's "reason" (MS_K_REASON) */
#define MS_REASON_SOFT_LIMIT "soft-limit"
#define MS_REASON_HARD_LIMIT "hard-limit" /* allocator retention at the
                                             limit: a restart follows only
                                             if still over */

/* ---- filtered ------------------------------------------------------------ */
#define MS_K_PEAK "peak"
#define MS_K_LASTED_S "lasted_s"
#define MS_K_FOR_S "for_s"
/* also MS_K_METRIC, MS_K_LIMIT */

/* ---- further keys and events the writers use (eventlog.c, evidence.c) ---- */
#define MS_K_DESCENDANTS_FOOTPRINT "descendants_footprint"
#define MS_K_DESCENDANTS "descendants"
#define MS_K_TOP_PID "top_pid"
#define MS_K_TOP_COMMAND "top_command"
#define MS_K_HINT "hint"
#define MS_LOGEV_DESCENDANTS "descendants"
#define MS_K_ANONYMOUS "anonymous"
#define MS_K_NPROCS "nprocs"
#define MS_K_RANKED_BY "ranked_by"
#define MS_K_MAPPINGS_PID "mappings_pid"

#endif
