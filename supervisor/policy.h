/* policy.h: the decisions, as pure functions of samples, times and
 * thresholds.  No I/O, no clocks: callers pass monotonic nanoseconds, so
 * every rule here is unit-tested exactly (tests/test_policy.c).
 */
#ifndef MS_POLICY_H
#define MS_POLICY_H

#include <stdint.h>

/* Hard limit with --for: over the limit continuously for for_ns. */
typedef struct {
  int over;               /* the last known value was >= limit */
  uint64_t over_since_ns; /* when it first was, in this run of overs */
} ms_limit_state_t;

/* What a sample says about the metric. */
typedef enum {
  MS_VALUE_KNOWN = 0, /* value is the metric */
  MS_VALUE_UNKNOWN    /* no fresh figure (estimate over, confirm read not
                         due yet; no heap stats yet): keep the last verdict */
} ms_value_kind_t;

/* Feeds one observation; returns 1 when a restart is due now.  limit 0
 * means no limit (never due). */
int ms_policy_limit(ms_limit_state_t* st, uint64_t limit, uint64_t for_ns,
                    ms_value_kind_t kind, uint64_t value, uint64_t now_ns);

/* Soft limit: returns 1 when a purge should be asked for: value >= soft,
 * and no purge was asked in the last min_gap_ns (last_purge_ns 0 = never). */
int ms_policy_purge(uint64_t soft, uint64_t value, uint64_t now_ns,
                    uint64_t last_purge_ns, uint64_t min_gap_ns);

/* Crash backoff: delay before restart number n (1-based) of consecutive
 * crashes: 100 ms doubling per crash, capped at 30 s.  Consecutive crashes
 * reset once a worker has run MS_HEALTHY_NS. */
#define MS_BACKOFF_BASE_NS (100ull * 1000 * 1000)
#define MS_BACKOFF_MAX_NS (30ull * 1000 * 1000 * 1000)
#define MS_HEALTHY_NS (10ull * 1000 * 1000 * 1000)
uint64_t ms_policy_backoff(unsigned n);

/* Restart intensity (Erlang's MaxR/MaxT): at most max crashes' restarts
 * within window_ns.  times holds max+1 timestamps (caller allocates). */
typedef struct {
  uint64_t* times; /* ring of the last max+1 crash times */
  unsigned max;
  unsigned count;  /* crashes recorded, saturating at max+1 */
  unsigned head;   /* next slot */
} ms_intensity_t;

/* Records a crash at now_ns; returns 1 when it is the (max+1)th within
 * window_ns, i.e. the supervisor must give up. */
int ms_policy_crash(ms_intensity_t* in, uint64_t window_ns, uint64_t now_ns);
/* Crashes recorded within window_ns of now_ns (for messages). */
unsigned ms_policy_crashes_within(const ms_intensity_t* in, uint64_t window_ns,
                                  uint64_t now_ns);

/* A memory restart "did not help" when the new worker crossed the limit
 * again soon after its start (ms_policy_judge_window), or when at the end
 * of that window its figure is at least 90% of the old one's at the
 * restart: the bloat comes back with what the worker loads (its saved
 * state, its input, its start-up), so restarting again only loops. */
int ms_policy_unhelpful(uint64_t before, uint64_t after);

/* ... unless the old worker had lived at least 2 * MS_JUDGE_MIN_NS and the
 * new one, once ready (its state restored), was at most half as big as the
 * old one was before: the restart gave the memory back, and the worker grew
 * back by leaking faster than before (in a pool, one worker can take more
 * of the load), not because it needs that much to start.  A worker whose
 * lives were already short is judged by the rule above: restarting it more
 * often than every MS_JUDGE_MIN_NS is of little use.  low: the new worker's
 * smallest measured figure after "ready"; old_life_ns: the old worker's
 * start -> restart decision. */
int ms_policy_reclaimed(uint64_t before, uint64_t low, uint64_t old_life_ns);

/* While a worker saves, the limit is not acted on (it was already
 * crossed: the restart is under way), but the worker is still sampled.
 * Past this ceiling memsup stops waiting for the save and kills it:
 * limit + max(limit / 4, 64 MiB).  The margin leaves room for what a save
 * itself allocates (a serialization buffer of up to the state's size, a
 * forked snapshot's copy-on-write pages) and, with a small limit, for
 * allocator noise; a worker past it is not saving any more, it is growing.
 * docs/states.md.  0 for no limit. */
#define MS_CEILING_MIN_MARGIN (64ull << 20)
uint64_t ms_policy_ceiling(uint64_t limit);

/* "Soon" after a memory restart: the new worker is judged over its first
 * half of the life the old one had (prev_uptime_ns, start to decision),
 * at least MS_JUDGE_MIN_NS (a restart that buys less than 4 s of life is
 * little use, and on a busy machine touching a 300 MiB start-up buffer was
 * measured to take up to 3 s) and at most MS_JUDGE_MAX_NS (the verdict on a worker that
 * lived for hours comes within a minute).  A leak crosses again after
 * about a whole life, so it is judged helped at every restart. */
#define MS_JUDGE_MIN_NS (4ull * 1000 * 1000 * 1000)
#define MS_JUDGE_MAX_NS (60ull * 1000 * 1000 * 1000)
uint64_t ms_policy_judge_window(uint64_t prev_uptime_ns);

/* How long memory restarts are held off after the n-th consecutive one
 * that did not help: 10 s, doubling, capped at 5 min (0 for n = 0).  The
 * worker keeps running over the limit meanwhile; a crossing once the hold
 * is over restarts it as usual. */
#define MS_HOLD_BASE_NS (10ull * 1000 * 1000 * 1000)
#define MS_HOLD_MAX_NS (300ull * 1000 * 1000 * 1000)
uint64_t ms_policy_hold(unsigned consecutive_unhelpful);

/* A hold ends early when the worker keeps growing through it: over the
 * limit for MS_HOLD_GROWTH_NS since the hold began (held_ns) and grown by
 * as much as the limit itself since (from -> value).  A start-up peak
 * frees what it touched, a spike ends, a steady state over the limit stops
 * growing (a cache filling up after the crossing grows by less than the
 * limit); a leak that fills the limit in under MS_JUDGE_MIN_NS does not
 * stop, and is still restarted, about every MS_HOLD_GROWTH_NS.  Returns 1
 * when the worker must be restarted. */
#define MS_HOLD_GROWTH_NS (5ull * 1000 * 1000 * 1000)
int ms_policy_hold_broken(uint64_t held_ns, uint64_t from, uint64_t value,
                          uint64_t limit);
#endif
