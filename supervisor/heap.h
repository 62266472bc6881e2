/* heap.h: what a worker's SDK says about its own heap: the allocator's
 * figures and the worker's named gauges.  A plain value type shared by the
 * machine (machine.h) and the log writers (restartlog.h), so neither needs
 * the channel's message type; supervise.c copies a "stats" message into
 * it.  Figures are bytes. */
#ifndef MS_HEAP_H
#define MS_HEAP_H

#include <stddef.h>
#include <stdint.h>

#define MS_HEAP_GAUGES_MAX 64
#define MS_HEAP_GAUGE_NAME_MAX 64

typedef struct {
  char name[MS_HEAP_GAUGE_NAME_MAX];
  double value;
} ms_heap_gauge_t;

typedef struct {
  int has_heap;     /* the allocator figures below are known */
  uint64_t allocated, active, resident, retained, mapped;
  size_t ngauges;
  ms_heap_gauge_t gauges[MS_HEAP_GAUGES_MAX];
} ms_heap_t;

#endif
