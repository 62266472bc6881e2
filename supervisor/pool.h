/* pool.h: when to restart a slot of a pool (--workers N) before its limit.
 *
 * Workers started together and leaking alike reach the limit together, and
 * the pool restarts one at a time (machine.h: pool_busy), so the last of
 * them would wait over the limit for the others.  Spreading them out costs
 * each a little of its life: the restarts are planned back to back from the
 * last one due, each finishing one restart's time before the next is due,
 * and the first of the plan goes now when the plan says it must.  Pure: no
 * I/O, no clock.  docs/pool.md has the rules and the log lines.
 */
#ifndef MS_POOL_H
#define MS_POOL_H

#include <stdint.h>

#include "machine.h"

/* A restart is never early below this fraction of the limit: a worker
 * restarted at less would lose more of its life than the stagger gains
 * (with four slots due together, each gives up at most a quarter). */
#define MS_POOL_EARLY_FRACTION 0.75
/* How long a restart takes (decision to the new worker ready) before one
 * has been measured. */
#define MS_POOL_RESTART_DEFAULT_S 2.0
/* A growth line fitting worse than this does not predict a due time (a
 * spike, a step): such a slot is left to its limit. */
#define MS_POOL_MIN_R2 0.8
/* ... and is fitted over at least this much of the slot's life. */
#define MS_POOL_MIN_SPAN_NS (3 * MS_NS_PER_S)

typedef struct {
  int eligible;   /* running, not restarting, not held, growth known */
  double value;   /* the limit's metric now, bytes */
  double bps;     /* recent growth, bytes/s */
} ms_pool_slot_t;

/* The plan's answer: the slot to restart early now, and why (the payload
 * of its MS_EV_EARLY).  Returns the slot, or -1 when none must go early.
 * restart_s is how long a restart takes; fraction as MS_POOL_EARLY_FRACTION. */
int ms_pool_stagger(const ms_pool_slot_t* s, unsigned n, uint64_t limit,
                    double restart_s, double fraction, ms_early_t* why);

#endif
