/* machine.h: the restart machine of one worker slot, pure.
 *
 * Events go in (a tick, a sample, a message from the worker, its exit, the
 * timer, a signal to memsup, a job finished on the threadpool), actions
 * come out (spawn, send, signal, arm the timer, measure, collect evidence,
 * check a state, log, exit).  No libuv, no I/O, no clock: every event
 * carries the time it happened, so tests/test_machine.c drives the machine
 * with event lists and checks the actions.  supervise.c carries the
 * actions out.  docs/states.md has the diagram; machine.c decides every
 * (state, event) pair in one switch per state.
 *
 * One machine is one worker slot: the worker record (ms_worker_t) is reset
 * at each spawn, the slot's counters (crash intensity, unhelpful restarts,
 * purge pacing) live on across its workers.
 */
#ifndef MS_MACHINE_H
#define MS_MACHINE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cause.h"
#include "config.h"
#include "evidence.h"
#include "growth.h"
#include "heap.h"
#include "policy.h"
#include "sample.h"

#define MS_NS_PER_MS 1000000ull
#define MS_NS_PER_S 1000000000ull
/* Soft-limit purges are at most this frequent: a purge costs the worker
 * some CPU and, if it did not free enough, asking again at once will not
 * free more. */
#define MS_PURGE_MIN_GAP_NS (10 * MS_NS_PER_S)
/* How long a purge asked at the hard limit (allocator retention) may take
 * before the restart goes ahead: a purge returns pages in milliseconds. */
#define MS_HARD_PURGE_WAIT_NS (1 * MS_NS_PER_S)
/* A worker that closed its channel is given this long to exit before the
 * closing is reported as a problem. */
#define MS_CHANNEL_EOF_NS (500 * MS_NS_PER_MS)
/* Evidence rows logged per restart (top mappings of /proc/PID/smaps). */
#define MS_EVIDENCE_ROWS 10
/* Rows read per smaps snapshot (the restart's, and the early one of each
 * life): more than are logged, so "grew" finds a region of the late
 * snapshot in the early one even when it was small then. */
#define MS_EVIDENCE_READ_ROWS 32
/* A worker without the SDK gets its early snapshot at its first full
 * sample this long into its life (an SDK worker: at its first after
 * "ready", or after --handshake-timeout). */
#define MS_EARLY_SNAPSHOT_NS (1 * MS_NS_PER_S)
/* A growth rate needs this many ticks of life behind it: over less, it
 * measures start-up (a restore filling memory), not a trend. */
#define MS_GROWTH_MIN_TICKS 10
/* The growth rate is the slope over this last stretch of the worker's
 * life, not its average since start: long enough to span a leaking
 * worker's life between restarts (20 MiB/s under 128 MiB: 6.4 s), short
 * enough that growth which stopped reads as flat (a redis flat for 14 s
 * after it grew).  supervisor/growth.h fits the line. */
#define MS_GROWTH_WINDOW_NS (10 * MS_NS_PER_S)

typedef enum {
  MS_ST_DOWN,       /* not started yet */
  MS_ST_STARTING,   /* a spawn was asked for; its result comes next */
  MS_ST_RUNNING,    /* a worker is up, sampled, held to the limit */
  MS_ST_SAVING,     /* memory restart: the worker was asked to save */
  MS_ST_VERIFYING,  /* memory restart: its state is being checked */
  MS_ST_COLLECTING, /* memory restart: evidence still being read */
  MS_ST_STOPPING,   /* signal sent; SIGKILL when the timer fires */
  MS_ST_BACKOFF,    /* no worker; the timer starts the next */
  MS_ST_JUDGING,    /* memory restart: new worker up, its "after" pending */
  MS_ST_DONE,       /* memsup is ending */
  MS_ST_COUNT
} ms_state_id_t;

typedef enum {
  MS_EV_START,        /* begin: spawn (or adopt) the first worker */
  MS_EV_SPAWNED,      /* a SPAWN/ADOPT worked: spawned.pid */
  MS_EV_SPAWN_FAILED, /* it did not: spawn_failed.code (126, 127, 111) */
  MS_EV_TICK,         /* the sampling tick */
  MS_EV_SAMPLE,       /* the tick's sample: sample.mem */
  MS_EV_MEASURED,     /* a MEASURE other than the tick's: sample.* */
  MS_EV_GONE,         /* a MEASURE found no process: sample.purpose */
  MS_EV_HELLO,        /* SDK handshake: hello.* */
  MS_EV_STATS,        /* SDK heap figures: stats */
  MS_EV_STATE,        /* a state memfd arrived: state.* (fd owned) */
  MS_EV_STATE_OK,     /* a VERIFY passed: state.* (fd owned) */
  MS_EV_STATE_BAD,    /* a VERIFY failed: state.err (fd owned) */
  MS_EV_SAVE_FAILED,  /* the worker could not save: save_failed.* */
  MS_EV_SEND_FAILED,  /* a SEND_* could not be sent: send_failed.* */
  MS_EV_PURGED,       /* answer to a purge: purged.* */
  MS_EV_READY,        /* the worker is ready (after its restore): ready.* */
  MS_EV_EOF,          /* the worker closed its channel */
  MS_EV_EXIT,         /* the worker exited (reaped): exit.* */
  MS_EV_TIMEOUT,      /* the slot's timer fired */
  MS_EV_STOP,         /* memsup got SIGTERM/SIGINT: signal.sig */
  MS_EV_FORWARD,      /* memsup got a signal for the worker: signal.sig */
  MS_EV_EVIDENCE,     /* a COLLECT_EVIDENCE finished: evidence.* */
  MS_EV_EARLY,        /* the pool asks for a restart below the limit, to
                         spread the pool's restarts (pool.h): early.* */
  MS_EV_COUNT
} ms_event_type_t;

/* Why a figure is measured (MEASURE); its answer carries the same. */
typedef enum {
  MS_FOR_TICK,         /* the periodic sample */
  MS_FOR_STATS,        /* --metric heap: figures when stats arrive */
  MS_FOR_BEFORE,       /* a (would-)restart's "before", read fully */
  MS_FOR_AFTER,        /* a restart's "after", read fully */
  MS_FOR_PURGE_BEFORE, /* a purge's "before", read fully */
  MS_FOR_PURGE_AFTER   /* a purge's "after", read fully */
} ms_purpose_t;

typedef enum { MS_SEND_SAVE, MS_SEND_PURGE, MS_SEND_WELCOME } ms_send_t;
enum { MS_PROF_START = 0, MS_PROF_END = 1 }; /* SEND_PROF's code */

/* Why the pool asked for an early restart (pool.h: ms_pool_stagger). */
typedef struct {
  double fraction;      /* of the limit below which none is early */
  double due_in_s;      /* this slot's time to the limit at its growth */
  int next_slot;        /* the slot due after it */
  double next_due_in_s; /* ... and its time to the limit */
  double restart_s;     /* how long a restart takes (measured, pool.h) */
  unsigned planned;     /* restarts planned back to back from this one */
} ms_early_t;

typedef struct {
  int fd;            /* the memfd (STATE, STATE_OK, STATE_BAD), -1 none */
  uint64_t seq;      /* save request answered, 0 = voluntary checkpoint */
  uint64_t bytes;
  uint32_t crc32c;
  char kind[16];     /* "save", "checkpoint" */
  unsigned gen;      /* worker that sent it */
  int err;           /* STATE_BAD: -EFBIG, -EBADMSG, -EPERM, ... */
} ms_ev_state_t;

typedef struct {
  ms_event_type_t type;
  uint64_t now;      /* monotonic ns when it happened */
  double unix_s;     /* wall clock then (Unix s); only logged */
  union {
    struct { char handoff[16]; } start; /* kind of the state memsup has, "" */
    struct { pid_t pid; } spawned;
    struct { int code; } spawn_failed;
    struct { ms_purpose_t purpose; ms_mem_t mem; } sample;
    struct { int version; char allocator[16]; int prof; } hello;
    ms_heap_t stats;
    ms_ev_state_t state;
    struct { uint64_t seq; char text[128]; } save_failed;
    struct { ms_send_t what; int err; } send_failed;
    struct { uint64_t seq, resident_before, resident_after; } purged;
    struct { char text[16]; uint64_t restored_unix_us; } ready;
    /* oom_kill: memsup's cgroup counted an OOM kill during this life
     * (supervise.c reads memory.events / memory.oom_control). */
    struct { int64_t status; int term_signal; int oom_kill; } exit;
    struct { int sig; } signal;
    struct {
      unsigned id;   /* the COLLECT_EVIDENCE's id */
      int early;     /* the COLLECT_EVIDENCE's early (id: the worker's gen) */
      int n;         /* rows (<0: not read) */
      ms_mapping_t rows[MS_EVIDENCE_READ_ROWS];
      int has_where; /* where is filled */
      ms_evidence_where_t where;
    } evidence;
    ms_early_t early;
  };
} ms_event_t;

/* Lines the machine asks to be logged (restart log and/or stderr).  What
 * each writes is eventlog.c's business; the figures come from the machine
 * (ms_machine_t's records) and the log action's fields. */
typedef enum {
  MS_LOG_START,          /* "start" line */
  MS_LOG_WATCH,          /* "watch" line */
  MS_LOG_SAMPLE,         /* --sample-log line: worker's last sample */
  MS_LOG_RESTART,        /* "restart" line and its human lines: m->rs */
  MS_LOG_WOULD_RESTART,  /* "would-restart" (--dry-run): m->rs */
  MS_LOG_CRASH,          /* "crash": status, delay_ns (-1: giving up) */
  MS_LOG_EXIT,           /* "exit": exited 0, memsup ends with it */
  MS_LOG_STOPPED,        /* "exit": stopped after memsup was told to stop */
  MS_LOG_WATCH_END,      /* "exit": the watched process is gone */
  MS_LOG_GIVEUP,         /* "giveup": count crashes, code */
  MS_LOG_SPAWN_GIVEUP,   /* stderr: the worker could not be started */
  MS_LOG_STOP,           /* "stop": sig */
  MS_LOG_PURGE,          /* "purge": w->purge_before, mem, purged.* */
  MS_LOG_BAD_VERSION,    /* stderr: hello with another wire version */
  MS_LOG_HELLO,          /* debug: handshake */
  MS_LOG_HEAP_FALLBACK,  /* stderr: no handshake, heap -> footprint */
  MS_LOG_CHANNEL_CLOSED, /* stderr: runs on without the channel */
  MS_LOG_SAVE_TIMEOUT,   /* stderr: no state within --grace */
  MS_LOG_SAVE_FAILED,    /* stderr: the worker said it could not save */
  MS_LOG_SAVE_UNSENT,    /* stderr: the save request could not be sent */
  MS_LOG_WELCOME_UNSENT, /* stderr: the welcome could not be sent */
  MS_LOG_DIED_SAVING,    /* stderr: exited before its state arrived */
  MS_LOG_STATE_REJECTED, /* stderr: the restart's state failed its check */
  MS_LOG_CHECKPOINT,     /* debug, or warning when rejected (err) */
  MS_LOG_KILL,           /* stderr: SIGKILL after --grace */
  MS_LOG_CEILING,        /* stderr: killed past the ceiling while saving:
                            value, ceiling */
  MS_LOG_HOLD,           /* "hold": over the limit, restarts held off
                            (m->hold_until, m->rs the restart that did not
                            help); value, metric, mem */
  MS_LOG_HOLD_BROKEN,    /* stderr: it kept growing while held: value */
  MS_LOG_FILTERED,       /* "filtered": a crossing shorter than --for:
                            peak, lasted_ns */
  MS_LOG_WAIT            /* "wait": over the limit while slot `slot` of
                            the pool restarts for memory: value, metric,
                            mem */
} ms_log_kind_t;

typedef struct {
  ms_log_kind_t kind;
  pid_t pid;
  unsigned gen;
  int64_t status;        /* CRASH, EXIT, STOPPED, DIED_SAVING */
  int term_signal;       /*   "   (0: exited normally) */
  int oom_kill;          /*   "   the cgroup's OOM killer took it */
  double uptime_s;       /* CRASH, EXIT, STOPPED, WATCH_END */
  int64_t delay_ns;      /* CRASH: restart_in (-1: gives up) */
  unsigned count;        /* GIVEUP: crashes in the window */
  int code;              /* GIVEUP: memsup's exit code */
  int sig;               /* STOP */
  int err;               /* -errno: SAVE_UNSENT, WELCOME_UNSENT, rejected */
  const char* text;      /* SAVE_FAILED: the worker's reason; HELLO,
                            BAD_VERSION: allocator; valid during the step */
  const ms_ev_state_t* state; /* STATE_REJECTED, CHECKPOINT */
  const ms_mem_t* mem;   /* SAMPLE, PURGE: the figures */
  const ms_heap_t* heap; /* SAMPLE, PURGE */
  int has_heap;
  uint64_t purge_resident_before, purge_resident_after; /* PURGE */
  int version;           /* BAD_VERSION */
  uint64_t value;        /* HOLD, HOLD_BROKEN: the metric's value over the
                            limit; CEILING: the figure */
  uint64_t ceiling;      /* CEILING: the ceiling crossed */
  uint64_t from;         /* HOLD_BROKEN: its value when the hold began */
  ms_metric_t metric;    /* HOLD */
  int hard;              /* PURGE: asked at the hard limit, not the soft */
  uint64_t peak;         /* FILTERED: highest value of the crossing */
  uint64_t lasted_ns;    /* FILTERED: how long it was over */
  int slot;              /* WAIT: the slot it waits for */
  const ms_mem_t* last_full; /* SAMPLE: the worker's last full read, NULL
                                none yet */
  uint64_t last_full_age_ns; /* SAMPLE: how old it is */
} ms_log_t;

typedef enum {
  MS_ACT_SPAWN,           /* start worker generation gen */
  MS_ACT_ADOPT,           /* memsup watch: watch cfg->watch_pid */
  MS_ACT_SEND_SAVE,       /* ask the worker to save: seq */
  MS_ACT_SEND_PURGE,      /* ask the worker to purge: seq */
  MS_ACT_SEND_PROF,       /* ask it for a heap profile of worker gen: code
                             MS_PROF_START (after ready) or MS_PROF_END
                             (before the save); docs/profiling.md */
  MS_ACT_SEND_WELCOME,    /* welcome, with the last good state if any */
  MS_ACT_SIGNAL_GROUP,    /* kill(-pgid, sig) */
  MS_ACT_SIGNAL_WORKER,   /* kill(pid, sig) */
  MS_ACT_TIMER_ARM,       /* the slot's one-shot timer: ns from now */
  MS_ACT_TIMER_CANCEL,
  MS_ACT_MEASURE,         /* sample: purpose, near, force; answer is
                             SAMPLE (tick), MEASURED, or GONE */
  MS_ACT_COLLECT_EVIDENCE,/* read /proc/PID/smaps off the loop: id; early:
                             the life's early snapshot (id = gen, ranked
                             by footprint), not a restart's evidence */
  MS_ACT_VERIFY,          /* check state->fd off the loop: STATE_OK/BAD */
  MS_ACT_KEEP_STATE,      /* state->fd becomes the last good state */
  MS_ACT_CLOSE_FD,        /* drop state->fd */
  MS_ACT_CLOSE_WORKER,    /* the worker exited: release its handles */
  MS_ACT_LOG,             /* log */
  MS_ACT_EXIT             /* memsup ends with exit code code */
} ms_action_type_t;

typedef struct {
  ms_action_type_t type;
  int sig;
  uint64_t ns;
  uint64_t seq;
  unsigned gen;
  ms_purpose_t purpose;
  uint64_t near;
  int force;
  unsigned id;
  int early;
  const ms_ev_state_t* state; /* VERIFY, KEEP_STATE, CLOSE_FD: the event's */
  int code;
  ms_log_t log;
} ms_action_t;

/* Actions of one step, in the order they must be carried out.  Pointers in
 * them point into the event or the machine: valid until the next step. */
#define MS_ACTIONS_MAX 16
typedef struct {
  size_t n;
  ms_action_t a[MS_ACTIONS_MAX];
} ms_actions_t;

/* The worker in the slot: what memsup knows and keeps about it.  Reset at
 * each spawn. */
typedef struct {
  int up;                 /* a worker exists (spawned, not yet exited) */
  pid_t pid;
  unsigned gen;
  uint64_t started_ns;
  int sdk;                /* a valid hello arrived and the channel is open */
  int ready;              /* it said ready */
  uint64_t ready_ns;
  char allocator[16];
  ms_heap_t heap;         /* last stats (heap.has_heap: figures known) */
  uint64_t stats_ns;      /* when they arrived, 0 = never */
  ms_mem_t last;          /* last sample */
  ms_mem_t last_full;     /* last full read (lazy-free pages are known only
                             from those), last_full_ns 0 = none yet */
  uint64_t last_full_ns;
  ms_growth_t growth;     /* measured footprints of the last seconds */
  uint64_t last_slog_ns;  /* last --sample-log line */
  uint64_t eof_ns;        /* it closed the channel, not yet reported */
  ms_metric_t metric;     /* the metric acted on (heap may fall back) */
  int heap_fallback_warned;
  int prof;               /* its hello said it can dump heap profiles */
  int prof_start;         /* a start-of-life profile was asked */
  ms_limit_state_t lim;
  /* Its smallest measured figures once ready (ms_policy_reclaimed). */
  int low_known, low_heap_known;
  uint64_t low_footprint, low_heap;
  uint64_t purge_seq;     /* purge asked and not answered, 0 none */
  int purge_unsent;       /* purge_seq decided, waiting for its "before"
                             read: the request goes once it is in */
  int purge_hard;         /* the purge in flight is the hard limit's: a
                             restart follows if it leaves the worker over */
  int hard_purge_tried;   /* this run of overs had its purge already */
  uint64_t purge_sent_ns;
  uint64_t last_purge_ns; /* soft-limit pacing, per worker: a new worker
                             may need a purge at once */
  uint64_t over_peak;     /* highest known value of this run of overs */
  ms_mem_t purge_before;
  uint64_t purge_resident_before, purge_resident_after;
  /* The early smaps snapshot of this life (evidence "grew"). */
  int early_asked;
  int nearly;             /* rows, -1 none (not read, or not yet) */
  pid_t early_pid;        /* whose mappings (with --tree, the top member) */
  double early_uptime_s;
  ms_mapping_t early_rows[MS_EVIDENCE_READ_ROWS];
  /* How it ended (up == 0). */
  int64_t exit_status;
  int term_signal;
  int oom_kill; /* killed by the kernel's OOM killer (EXIT's flag) */
  double exit_uptime_s;
} ms_worker_t;

/* A memory restart (or, with --dry-run, a would-restart) from the
 * decision to its log line. */
typedef struct {
  int active;             /* begun and not yet logged */
  int dry;                /* a would-restart: logged when evidence is in */
  unsigned id;            /* matches COLLECT_EVIDENCE/EVIDENCE */
  unsigned number;        /* restart #number (set when logged) */
  ms_metric_t metric;     /* the metric that crossed */
  uint64_t value;         /* its value */
  double over_for_s;
  double decided_unix_s;
  pid_t old_pid;
  unsigned old_gen;
  double uptime_s;
  ms_mem_t before;        /* full read (before_full) */
  int before_full;
  ms_heap_t before_heap;
  int has_growth;
  double growth_bps;      /* recent growth (MS_GROWTH_WINDOW_NS), bytes/s */
  ms_growth_fit_t growth_fit;
  ms_cause_best_t gauge;  /* the gauge that tracks footprint best */
  int expect_sdk;         /* the old worker spoke the SDK: a save is asked */
  int prof_start, prof_end; /* heap profiles asked of the old worker */
  uint64_t seq;           /* the save request */
  int verifying;          /* its state is being checked */
  const char* outcome;    /* docs/restart-log.md: restored, save-timeout... */
  uint64_t saved_bytes;
  uint64_t t_decide, t_recv, t_state, t_stop, t_exit, t_spawn, t_welcome,
      t_ready;
  double recv_unix_s;
  uint64_t held_unix_us;
  char restore[16];
  char handed[16];
  int evidence_pending;
  int nrows;              /* rows read (the log lists MS_EVIDENCE_ROWS) */
  ms_mapping_t rows[MS_EVIDENCE_READ_ROWS];
  int nearly;             /* the old worker's early snapshot, -1 none */
  pid_t early_pid;
  double early_uptime_s;
  ms_mapping_t early_rows[MS_EVIDENCE_READ_ROWS];
  ms_evidence_where_t where; /* whose rows, how ranked, the tree's split */
  /* The outcome, once logged. */
  pid_t new_pid;          /* 0: no new worker (spawn failed, memsup ending) */
  int has_after;
  ms_mem_t after;
  int after_has_heap;
  ms_heap_t after_heap;
  ms_metric_t judged_on;  /* metric "helped" compared (same on both sides) */
  uint64_t judged_before, judged_after;
  int helped;             /* 1, 0, or -1 unknown (no after) */
  int reclaimed;          /* helped although it crossed soon or ended as
                             big: once ready it was down to low (policy.h:
                             ms_policy_reclaimed) */
  uint64_t low;
  uint64_t judge_ns;      /* the new worker is judged over its first
                             judge_ns (ms_policy_judge_window) */
  int crossed;            /* it crossed the limit within them ... */
  double crossed_after_s; /* ... this long after its spawn */
  double judged_after_s;  /* its age at the verdict */
  uint64_t hold_ns;       /* not helped: restarts held off this long */
  /* In a pool (--workers > 1). */
  int early;              /* asked below the limit by the pool: why */
  ms_early_t early_why;
  int waited;             /* it crossed while another slot restarted */
  double waited_s;        /* ... and waited this long */
  int waited_for;         /* ... for this slot */
  int ceiling;            /* ... until it crossed the save ceiling */
} ms_restart_t;

typedef enum { MS_WANT_UP, MS_WANT_DOWN } ms_want_t;

typedef struct {
  const ms_config_t* cfg;
  ms_state_id_t state;
  ms_want_t want;
  int timer_armed;
  ms_worker_t w;
  ms_restart_t rs;
  /* The slot, across workers. */
  unsigned gen;           /* generation of the last worker started */
  ms_intensity_t intensity;
  unsigned consecutive_crashes;
  unsigned unhelpful;     /* consecutive memory restarts that did not help */
  uint64_t hold_until;    /* no memory restart before (monotonic ns) */
  int hold_logged;        /* this run of overs was logged as held */
  uint64_t hold_since_ns; /* ... since then */
  uint64_t hold_from;     /* ... at this value */
  unsigned restarts;      /* memory restarts logged */
  unsigned next_id;
  uint64_t seq;           /* last request seq (save, purge) */
  ms_cause_t cause;       /* footprint and gauges over the last lives */
  int dry_episode;        /* --dry-run: this run of overs was logged */
  int sdk_seen;           /* some worker of this slot spoke the SDK */
  char handoff[16];       /* kind of the last good state, "" none */
  int last_status;        /* last worker status as an exit code */
  int exit_code;
  unsigned unexpected;    /* events that cannot happen in their state */
  /* The pool's gate, an input set by the caller before each step: the
   * slot of the pool that is down for a memory restart, or -1 (always -1
   * without a pool).  A crossing waits while it is set (check_limit). */
  int pool_busy;
  int waiting;            /* this run of overs waits for pool_busy */
  uint64_t wait_since_ns;
  int wait_for;
} ms_machine_t;

/* Prepares m for cfg (borrowed, must outlive m).  Returns 0 or -ENOMEM. */
int ms_machine_init(ms_machine_t* m, const ms_config_t* cfg);
void ms_machine_free(ms_machine_t* m);

/* Feeds one event; fills out with the actions to carry out, in order.
 * Every event whose payload holds an fd (STATE, STATE_OK, STATE_BAD) gets
 * exactly one action that takes it (VERIFY, KEEP_STATE or CLOSE_FD). */
void ms_machine_step(ms_machine_t* m, const ms_event_t* ev, ms_actions_t* out);

/* Names for logs and tests. */
const char* ms_state_name(ms_state_id_t s);
const char* ms_event_name(ms_event_type_t e);
const char* ms_metric_name(ms_metric_t m);

#endif
