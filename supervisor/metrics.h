/* metrics.h: memsup's HTTP endpoint on its own libuv loop: GET /metrics
 * (Prometheus text format 0.0.4), GET /healthz and GET /readyz for
 * Kubernetes probes.  The server only answers; what the figures are is
 * the supervisor's business, asked for through a fill callback at each
 * request.  A scraper can never stall the loop: requests are bounded in
 * size and time, connections are capped and writes never block.
 */
#ifndef MS_METRICS_H
#define MS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "addr.h"
#include "heap.h"

#define MS_METRICS_REASONS_MAX 8
#define MS_METRICS_WORKERS_MAX 64 /* config.h's MS_WORKERS_MAX */

/* One worker slot's figures (a pool has several: --workers). */
typedef struct {
  int up;          /* a worker runs: its memory figures are valid */
  int ready;       /* it runs and, with the SDK, reported ready */
  uint64_t footprint, rss, swap, lazyfree, file;
  int has_heap; /* heap_inuse is valid (the SDK reported) */
  uint64_t heap_inuse;
  double uptime_s;
  unsigned generation;        /* 1 for the first worker */
  int holding_off;            /* crash restarts are being held off */
  /* Restarts by reason ("limit", "early"); reason strings must outlive
   * the call to the fill callback. */
  struct {
    const char* reason;
    uint64_t count;
  } restarts[MS_METRICS_REASONS_MAX];
  size_t nrestarts;
  uint64_t crashes, purges, purged_bytes, state_handed_bytes;
  uint64_t waits; /* crossings that waited for another slot (pool) */
  double last_restart_unix_s; /* 0 = no restart yet: left out */
  /* The SDK's gauges, borrowed for the duration of the callback. */
  const ms_heap_gauge_t* gauges;
  size_t ngauges;
} ms_metrics_worker_t;

/* What one scrape shows.  Zero-initialise, then set what is known. */
typedef struct {
  int supervising; /* /healthz answers 200, else 503 */
  int ready;       /* /readyz answers 200 (some worker is ready), else 503 */
  uint64_t limit, soft_limit; /* bytes per worker; 0 = none, left out */
  /* memsup's memory cgroup (cgroup.h), read at the scrape; each figure
   * is left out when its has_ flag is 0 (no group, no limit, no file). */
  int has_cgroup_memory, has_cgroup_limit, has_cgroup_oom_kills;
  uint64_t cgroup_memory, cgroup_limit, cgroup_oom_kills;
  /* The slots: one without a pool.  pool: label each worker's series
   * with slot="K" (--workers > 1; without, the series have no slot). */
  int pool;
  size_t nworkers;
  ms_metrics_worker_t w[MS_METRICS_WORKERS_MAX];
} ms_metrics_figures_t;

/* Called on the loop at each request to fill *f (already zeroed). */
typedef void (*ms_metrics_fill_cb)(void* arg, ms_metrics_figures_t* f);

typedef struct {
  uint64_t timeout_ms; /* a connection's whole life; default 5000 */
  unsigned max_conns;  /* open connections; default 16 */
  size_t max_request;  /* request line + headers; default 8192 */
} ms_metrics_opts_t;

typedef struct ms_metrics_s ms_metrics_t;

/* Binds and listens on addr and serves on loop.  opts may be NULL
 * (defaults).  On success *out is owned by the caller until
 * ms_metrics_close().  Returns 0 or a libuv error with a one-line reason
 * in err ("127.0.0.1:9464: address already in use"); on failure nothing
 * is left open or pending on the loop. */
int ms_metrics_start(uv_loop_t* loop, const ms_addr_t* addr,
                     const ms_metrics_opts_t* opts, ms_metrics_fill_cb fill,
                     void* arg, ms_metrics_t** out, char* err, size_t errlen);

/* The port actually bound (useful with port 0), or a libuv error. */
int ms_metrics_port(const ms_metrics_t* m);

/* Closes the listener and every connection; m is freed once libuv is done
 * with its handles (the loop must run on for that). */
void ms_metrics_close(ms_metrics_t* m);

/* Renders f in the text exposition format into a malloc'd buffer (*out,
 * *len; free() it).  Pure.  Returns 0 or -ENOMEM. */
int ms_metrics_render(const ms_metrics_figures_t* f, char** out, size_t* len);

#endif
