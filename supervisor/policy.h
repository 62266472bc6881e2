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

/* A memory restart "did not help" when the new worker's footprint right
 * after the restart is at least 90% of the old one's at the restart: the
 * bloat is in what the worker loads (its saved state, its input), so
 * restarting again only loops.  Returns the delay before the next memory
 * restart: 0 normally, else doubling from 1 s per consecutive unhelpful
 * restart, capped at 5 min. */
uint64_t ms_policy_unhelpful_delay(unsigned consecutive_unhelpful);
int ms_policy_unhelpful(uint64_t before, uint64_t after);

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

#endif
