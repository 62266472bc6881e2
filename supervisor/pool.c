/* pool.c: the early-restart plan of a pool (pool.h). */
#include "pool.h"

#include <stdlib.h>

typedef struct {
  int slot;
  double due; /* seconds to the limit at the current growth */
} due_t;

static int by_due(const void* a, const void* b) {
  const due_t *x = a, *y = b;
  if (x->due != y->due) return x->due < y->due ? -1 : 1;
  return x->slot - y->slot;
}

int ms_pool_stagger(const ms_pool_slot_t* s, unsigned n, uint64_t limit,
                    double restart_s, double fraction, ms_early_t* why) {
  due_t d[MS_WORKERS_MAX];
  double latest[MS_WORKERS_MAX];
  unsigned k = 0;
  if (limit == 0 || n < 2 || n > MS_WORKERS_MAX || restart_s <= 0) return -1;
  for (unsigned i = 0; i < n; i++) {
    if (!s[i].eligible || !(s[i].bps > 0)) continue;
    double left = (double)limit - s[i].value;
    d[k].slot = (int)i;
    d[k].due = left > 0 ? left / s[i].bps : 0;
    k++;
  }
  if (k < 2) return -1;
  qsort(d, k, sizeof(d[0]), by_due);
  /* Back to back from the last one due: each restart must start by its own
   * due time, and early enough to be over when the next one starts. */
  latest[k - 1] = d[k - 1].due;
  for (unsigned i = k - 1; i-- > 0;) {
    double by_next = latest[i + 1] - restart_s;
    latest[i] = d[i].due < by_next ? d[i].due : by_next;
  }
  /* The first of the plan goes now when it must start within one restart's
   * time (estimates are rough: a margin of one restart) and before it would
   * cross anyway. */
  if (latest[0] >= d[0].due || latest[0] > restart_s) return -1;
  const ms_pool_slot_t* first = &s[d[0].slot];
  if (first->value < fraction * (double)limit) return -1;
  unsigned planned = 1;
  while (planned < k && latest[planned] < d[planned].due) planned++;
  if (planned < k) planned++; /* the one that pushed the others earlier */
  why->fraction = fraction;
  why->due_in_s = d[0].due;
  why->next_slot = d[1].slot;
  why->next_due_in_s = d[1].due;
  why->restart_s = restart_s;
  why->planned = planned;
  return d[0].slot;
}
