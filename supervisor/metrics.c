/* metrics.c: a deliberately small HTTP/1.x server for /metrics, /healthz
 * and /readyz.  One request per connection (Connection: close), answered
 * from the figures the supervisor fills in at that moment.  It owns its
 * listener and connections; it leaves the meaning of the figures to
 * supervise.c.
 *
 * Why it cannot stall supervision: it runs on the same loop as sampling,
 * so nothing here may wait.  Reads go into a fixed per-connection buffer
 * (a request that outgrows it is dropped), every connection has a timer
 * for its whole life (a client that never finishes its request, or never
 * reads the answer, is dropped), the number of open connections is capped,
 * and the answer is queued with uv_write, which never blocks.
 */
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_MAX_CONNS 16
#define DEFAULT_MAX_REQUEST 8192

typedef struct conn_s {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_write_t wr;
  ms_metrics_t* m;
  struct conn_s *prev, *next;
  char head[256];
  char* body;        /* malloc'd response body, NULL until answered */
  size_t used;       /* request bytes in buf */
  int pending_close; /* handles still closing */
  int closing;
  char buf[]; /* max_request + 1 (for the NUL) */
} conn_t;

struct ms_metrics_s {
  uv_loop_t* loop;
  uv_tcp_t listener;
  ms_metrics_fill_cb fill;
  void* arg;
  ms_metrics_opts_t o;
  conn_t* conns;
  unsigned nconns;
  int listener_open; /* not yet closed */
  int closing;
};

/* ---- rendering ---- */

typedef struct {
  char* p;
  size_t len, cap;
  int oom;
} sb_t;

static void sb_add(sb_t* b, const char* s, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1) cap *= 2;
    char* p = realloc(b->p, cap);
    if (p == NULL) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void sb_str(sb_t* b, const char* s) {
  sb_add(b, s, strlen(s));
}

static void sb_printf(sb_t* b, const char* fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sb_printf(sb_t* b, const char* fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  /* Only fixed-size text goes through here; names of any length go
   * through sb_label_value(). */
  if (n < 0 || (size_t)n >= sizeof(tmp)) abort();
  sb_add(b, tmp, (size_t)n);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_len(const unsigned char* s) {
  if (s[0] < 0x80) return 1;
  size_t n;
  unsigned cp;
  if ((s[0] & 0xe0) == 0xc0)
    n = 2, cp = s[0] & 0x1f;
  else if ((s[0] & 0xf0) == 0xe0)
    n = 3, cp = s[0] & 0x0f;
  else if ((s[0] & 0xf8) == 0xf0)
    n = 4, cp = s[0] & 0x07;
  else
    return 0;
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  static const unsigned min[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

/* A label value: \\, \" and \n escaped as the format requires, and bytes
 * that are not UTF-8 replaced by '?' (Prometheus rejects the whole scrape
 * over one invalid byte, and gauge names come from the worker). */
static void sb_label_value(sb_t* b, const char* v) {
  const unsigned char* s = (const unsigned char*)v;
  while (*s) {
    if (*s == '\\')
      sb_add(b, "\\\\", 2), s++;
    else if (*s == '"')
      sb_add(b, "\\\"", 2), s++;
    else if (*s == '\n')
      sb_add(b, "\\n", 2), s++;
    else {
      size_t n = utf8_len(s);
      if (n == 0)
        sb_add(b, "?", 1), s++;
      else
        sb_add(b, (const char*)s, n), s += n;
    }
  }
}

static void family(sb_t* b, const char* name, const char* type,
                   const char* help) {
  sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void val_u64(sb_t* b, const char* name, uint64_t v) {
  sb_printf(b, "%s %" PRIu64 "\n", name, v);
}

static void fmt_double(char* buf, size_t len, double v) {
  if (isnan(v))
    snprintf(buf, len, "NaN");
  else if (isinf(v))
    snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
  else
    snprintf(buf, len, "%.17g", v);
}

static void gauge_u64(sb_t* b, const char* name, const char* help, uint64_t v) {
  family(b, name, "gauge", help);
  val_u64(b, name, v);
}

static void counter_u64(sb_t* b, const char* name, const char* help,
                        uint64_t v) {
  family(b, name, "counter", help);
  val_u64(b, name, v);
}

/* A worker's series: name{slot="K"} in a pool, else name. */
static void worker_name(sb_t* b, const ms_metrics_figures_t* f, size_t i,
                        const char* name) {
  sb_str(b, name);
  if (f->pool) sb_printf(b, "{slot=\"%zu\"}", i);
}

/* Workers to show: nworkers, at most the array's size. */
static size_t nworkers(const ms_metrics_figures_t* f) {
  return f->nworkers < MS_METRICS_WORKERS_MAX ? f->nworkers
                                              : MS_METRICS_WORKERS_MAX;
}

/* Which per-worker figure a family shows, for worker_family(). */
typedef enum {
  W_UP, W_READY, W_FOOTPRINT, W_RSS, W_SWAP, W_LAZYFREE, W_FILE, W_HEAP,
  W_GENERATION, W_HOLDING_OFF, W_CRASHES, W_PURGES, W_PURGED, W_HANDED, W_WAITS
} wfig_t;

static int has_fig(const ms_metrics_worker_t* w, wfig_t what) {
  switch (what) {
    case W_FOOTPRINT: case W_RSS: case W_SWAP: case W_LAZYFREE: case W_FILE:
      return w->up;
    case W_HEAP:
      return w->up && w->has_heap;
    default:
      return 1;
  }
}

static uint64_t fig(const ms_metrics_worker_t* w, wfig_t what) {
  switch (what) {
    case W_UP: return w->up ? 1 : 0;
    case W_READY: return w->ready ? 1 : 0;
    case W_FOOTPRINT: return w->footprint;
    case W_RSS: return w->rss;
    case W_SWAP: return w->swap;
    case W_LAZYFREE: return w->lazyfree;
    case W_FILE: return w->file;
    case W_HEAP: return w->heap_inuse;
    case W_GENERATION: return w->generation;
    case W_HOLDING_OFF: return w->holding_off ? 1 : 0;
    case W_CRASHES: return w->crashes;
    case W_PURGES: return w->purges;
    case W_PURGED: return w->purged_bytes;
    case W_HANDED: return w->state_handed_bytes;
    case W_WAITS: return w->waits;
  }
  return 0;
}

/* One family of per-worker series; left out when no worker has the
 * figure (no worker up: no memory figures). */
static void worker_family(sb_t* b, const ms_metrics_figures_t* f,
                          const char* name, const char* type, const char* help,
                          wfig_t what) {
  int any = 0;
  for (size_t i = 0; i < nworkers(f) && !any; i++) any = has_fig(&f->w[i], what);
  if (!any) return;
  family(b, name, type, help);
  for (size_t i = 0; i < nworkers(f); i++) {
    if (!has_fig(&f->w[i], what)) continue;
    worker_name(b, f, i, name);
    sb_printf(b, " %" PRIu64 "\n", fig(&f->w[i], what));
  }
}

int ms_metrics_render(const ms_metrics_figures_t* f, char** out, size_t* len) {
  sb_t b = {0};
  char num[40];
  size_t nw = nworkers(f);

  family(&b, "memsup_build_info", "gauge", "memsup version, always 1.");
  sb_printf(&b, "memsup_build_info{version=\"%s\"} 1\n", MEMSUP_VERSION);
  worker_family(&b, f, "memsup_worker_up", "gauge",
                "1 while a worker process runs.", W_UP);
  worker_family(&b, f, "memsup_worker_ready", "gauge",
                "1 while a worker runs and, with the SDK, has reported ready.",
                W_READY);
  worker_family(&b, f, "memsup_worker_footprint_bytes", "gauge",
                "Worker footprint: anonymous minus lazy-free, plus swap and "
                "shared memory.", W_FOOTPRINT);
  worker_family(&b, f, "memsup_worker_rss_bytes", "gauge",
                "Worker resident set size.", W_RSS);
  worker_family(&b, f, "memsup_worker_swap_bytes", "gauge",
                "Worker bytes in swap.", W_SWAP);
  worker_family(&b, f, "memsup_worker_lazyfree_bytes", "gauge",
                "Worker bytes freed with MADV_FREE, not yet reclaimed.",
                W_LAZYFREE);
  worker_family(&b, f, "memsup_worker_file_bytes", "gauge",
                "Worker resident file-backed bytes.", W_FILE);
  worker_family(&b, f, "memsup_worker_heap_inuse_bytes", "gauge",
                "Heap bytes in use as the worker's allocator reports them.",
                W_HEAP);
  if (nw > 0) {
    family(&b, "memsup_worker_uptime_seconds", "gauge",
           "Seconds since the current worker started; 0 without a worker.");
    for (size_t i = 0; i < nw; i++) {
      worker_name(&b, f, i, "memsup_worker_uptime_seconds");
      fmt_double(num, sizeof(num), f->w[i].up ? f->w[i].uptime_s : 0);
      sb_printf(&b, " %s\n", num);
    }
  }
  worker_family(&b, f, "memsup_worker_generation", "gauge",
                "Number of the current (or last) worker, 1 for the first.",
                W_GENERATION);
  if (f->limit)
    gauge_u64(&b, "memsup_limit_bytes",
              "Hard limit (per worker): restart above it.", f->limit);
  if (f->soft_limit)
    gauge_u64(&b, "memsup_soft_limit_bytes",
              "Soft limit: ask the worker to purge above it.", f->soft_limit);
  if (f->has_cgroup_memory)
    gauge_u64(&b, "memsup_cgroup_memory_bytes",
              "Memory charged to memsup's cgroup (the whole container).",
              f->cgroup_memory);
  if (f->has_cgroup_limit)
    gauge_u64(&b, "memsup_cgroup_limit_bytes",
              "Memory limit of memsup's cgroup: the kernel OOM-kills above it.",
              f->cgroup_limit);
  if (f->has_cgroup_oom_kills)
    counter_u64(&b, "memsup_cgroup_oom_kills_total",
                "Processes the kernel's OOM killer killed in memsup's cgroup.",
                f->cgroup_oom_kills);
  worker_family(&b, f, "memsup_holding_off", "gauge",
                "1 while memsup holds off restarting a crashing worker.",
                W_HOLDING_OFF);
  family(&b, "memsup_restarts_total", "counter",
         "Workers restarted by memsup, by reason.");
  for (size_t i = 0; i < nw; i++) {
    const ms_metrics_worker_t* w = &f->w[i];
    for (size_t r = 0; r < w->nrestarts && r < MS_METRICS_REASONS_MAX; r++) {
      sb_str(&b, "memsup_restarts_total{reason=\"");
      sb_label_value(&b, w->restarts[r].reason);
      sb_str(&b, "\"");
      if (f->pool) sb_printf(&b, ",slot=\"%zu\"", i);
      sb_printf(&b, "} %" PRIu64 "\n", w->restarts[r].count);
    }
  }
  worker_family(&b, f, "memsup_crashes_total", "counter",
                "Workers that exited or died without memsup asking.", W_CRASHES);
  worker_family(&b, f, "memsup_purges_total", "counter",
                "Purge requests sent at the soft limit.", W_PURGES);
  worker_family(&b, f, "memsup_purged_bytes_total", "counter",
                "Resident bytes the worker reported freed by purges.", W_PURGED);
  worker_family(&b, f, "memsup_state_handed_bytes_total", "counter",
                "State bytes handed from a worker to its replacement.",
                W_HANDED);
  if (f->pool)
    worker_family(&b, f, "memsup_restart_waits_total", "counter",
                  "Limit crossings that waited for another slot's memory "
                  "restart.", W_WAITS);
  int any_restart = 0;
  for (size_t i = 0; i < nw; i++) any_restart |= f->w[i].last_restart_unix_s > 0;
  if (any_restart) {
    family(&b, "memsup_last_restart_timestamp_seconds", "gauge",
           "Unix time of the last restart.");
    for (size_t i = 0; i < nw; i++) {
      if (!(f->w[i].last_restart_unix_s > 0)) continue;
      worker_name(&b, f, i, "memsup_last_restart_timestamp_seconds");
      fmt_double(num, sizeof(num), f->w[i].last_restart_unix_s);
      sb_printf(&b, " %s\n", num);
    }
  }
  int any_gauge = 0;
  for (size_t i = 0; i < nw; i++) any_gauge |= f->w[i].ngauges > 0;
  if (any_gauge)
    family(&b, "memsup_worker_sdk_value", "gauge",
           "Gauges the worker reported through the SDK, by name.");
  for (size_t k = 0; k < nw; k++) {
    const ms_metrics_worker_t* w = &f->w[k];
    for (size_t i = 0; i < w->ngauges; i++) {
      /* Two series with one label set make Prometheus reject the scrape;
       * the worker may send a name twice (or two long names cut to one). */
      int dup = 0;
      for (size_t j = 0; j < i && !dup; j++)
        dup = strcmp(w->gauges[i].name, w->gauges[j].name) == 0;
      if (dup) continue;
      sb_str(&b, "memsup_worker_sdk_value{name=\"");
      sb_label_value(&b, w->gauges[i].name);
      if (f->pool) sb_printf(&b, "\",slot=\"%zu", k);
      fmt_double(num, sizeof(num), w->gauges[i].value);
      sb_printf(&b, "\"} %s\n", num);
    }
  }
  if (b.oom) {
    free(b.p);
    return -ENOMEM;
  }
  *out = b.p;
  *len = b.len;
  return 0;
}

/* ---- connections ---- */

static void maybe_free(ms_metrics_t* m) {
  if (m->closing && !m->listener_open && m->nconns == 0) free(m);
}

static void conn_closed_cb(uv_handle_t* h) {
  conn_t* c = h->data;
  if (--c->pending_close > 0) return;
  ms_metrics_t* m = c->m;
  if (c->prev)
    c->prev->next = c->next;
  else
    m->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  m->nconns--;
  free(c->body);
  free(c);
  maybe_free(m);
}

/* Ends the connection whatever its state; a queued write is cancelled. */
static void conn_drop(conn_t* c) {
  if (c->closing) return;
  c->closing = 1;
  c->pending_close = 2;
  uv_close((uv_handle_t*)&c->timer, conn_closed_cb);
  uv_close((uv_handle_t*)&c->tcp, conn_closed_cb);
}

static void timeout_cb(uv_timer_t* t) {
  conn_drop(t->data);
}

static void write_cb(uv_write_t* req, int status) {
  (void)status; /* either way the answer is over */
  conn_drop(req->data);
}

static void respond(conn_t* c, int code, const char* reason, const char* ctype,
                    char* body, size_t blen, int head_only, const char* extra) {
  c->body = body;
  snprintf(c->head, sizeof(c->head),
           "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
           "%sConnection: close\r\n\r\n",
           code, reason, ctype, blen, extra ? extra : "");
  uv_buf_t bufs[2] = {uv_buf_init(c->head, (unsigned)strlen(c->head)),
                      uv_buf_init(body, (unsigned)blen)};
  c->wr.data = c;
  if (uv_write(&c->wr, (uv_stream_t*)&c->tcp, bufs,
               head_only || blen == 0 ? 1 : 2, write_cb) < 0)
    conn_drop(c);
}

static void respond_text(conn_t* c, int code, const char* reason,
                         const char* text, int head_only, const char* extra) {
  char* body = strdup(text);
  if (body == NULL) {
    conn_drop(c);
    return;
  }
  respond(c, code, reason, "text/plain; charset=utf-8", body, strlen(body),
          head_only, extra);
}

/* The request is complete in c->buf (NUL-terminated): answer it. */
static void handle(conn_t* c) {
  char method[16], target[256], version[16];
  ms_metrics_figures_t f;

  if (sscanf(c->buf, "%15[A-Z] %255[^ \r\n] %15[^ \r\n]", method, target,
             version) != 3 ||
      strncmp(version, "HTTP/1.", 7) != 0) {
    respond_text(c, 400, "Bad Request", "bad request\n", 0, NULL);
    return;
  }
  int head_only = strcmp(method, "HEAD") == 0;
  if (strcmp(method, "GET") != 0 && !head_only) {
    respond_text(c, 405, "Method Not Allowed", "only GET and HEAD\n", 0,
                 "Allow: GET, HEAD\r\n");
    return;
  }
  char* q = strchr(target, '?');
  if (q) *q = '\0';

  memset(&f, 0, sizeof(f));
  c->m->fill(c->m->arg, &f);
  if (strcmp(target, "/metrics") == 0) {
    char* body;
    size_t len;
    if (ms_metrics_render(&f, &body, &len) < 0) {
      respond_text(c, 500, "Internal Server Error", "out of memory\n",
                   head_only, NULL);
      return;
    }
    respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body, len,
            head_only, NULL);
  } else if (strcmp(target, "/healthz") == 0) {
    if (f.supervising)
      respond_text(c, 200, "OK", "ok\n", head_only, NULL);
    else
      respond_text(c, 503, "Service Unavailable", "memsup is not supervising\n",
                   head_only, NULL);
  } else if (strcmp(target, "/readyz") == 0) {
    if (f.ready)
      respond_text(c, 200, "OK", "ready\n", head_only, NULL);
    else
      respond_text(c, 503, "Service Unavailable", "no ready worker\n",
                   head_only, NULL);
  } else {
    respond_text(c, 404, "Not Found", "not found\n", head_only, NULL);
  }
}

static void alloc_cb(uv_handle_t* h, size_t suggested, uv_buf_t* buf) {
  (void)suggested;
  conn_t* c = h->data;
  /* Never more than the request may still grow by: a longer one ends up
   * with a full buffer and no end of headers, and is dropped. */
  *buf =
      uv_buf_init(c->buf + c->used, (unsigned)(c->m->o.max_request - c->used));
}

static void read_cb(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  (void)buf;
  conn_t* c = s->data;
  if (nread == 0) return; /* EAGAIN */
  if (nread < 0) {        /* EOF, reset, or UV_ENOBUFS (buffer full) */
    conn_drop(c);
    return;
  }
  c->used += (size_t)nread;
  c->buf[c->used] = '\0';
  if (strstr(c->buf, "\r\n\r\n") || strstr(c->buf, "\n\n")) {
    uv_read_stop(s);
    handle(c);
  } else if (c->used >= c->m->o.max_request) {
    conn_drop(c);
  }
}

static void connection_cb(uv_stream_t* server, int status) {
  ms_metrics_t* m = server->data;
  if (status < 0) return; /* EMFILE and the like: the next one may work */
  conn_t* c = calloc(1, sizeof(*c) + m->o.max_request + 1);
  if (c == NULL) return;
  c->m = m;
  c->tcp.data = c;
  c->timer.data = c;
  uv_tcp_init(m->loop, &c->tcp);
  uv_timer_init(m->loop, &c->timer);
  c->next = m->conns;
  if (m->conns) m->conns->prev = c;
  m->conns = c;
  m->nconns++;
  if (uv_accept(server, (uv_stream_t*)&c->tcp) < 0) {
    conn_drop(c);
    return;
  }
  /* Over the cap the connection is accepted only to be closed: left in
   * the backlog it would keep the listener readable. */
  if (m->nconns > m->o.max_conns || m->closing) {
    conn_drop(c);
    return;
  }
  uv_timer_start(&c->timer, timeout_cb, m->o.timeout_ms, 0);
  if (uv_read_start((uv_stream_t*)&c->tcp, alloc_cb, read_cb) < 0) conn_drop(c);
}

static void listener_closed_cb(uv_handle_t* h) {
  ms_metrics_t* m = h->data;
  m->listener_open = 0;
  maybe_free(m);
}

/* The socket is made, bound and listening before libuv sees it: a failure
 * then needs no uv_close and leaves nothing pending on the loop, so the
 * caller can exit at once with a clear message. */
static int open_listener(const ms_addr_t* addr) {
  int one = 1, e;
  int fd =
      socket(addr->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -errno;
  /* A restarted memsup must bind again while old connections sit in
   * TIME_WAIT; a live listener still conflicts (EADDRINUSE). */
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
      bind(fd, (const struct sockaddr*)&addr->ss, addr->len) < 0 ||
      listen(fd, 64) < 0) {
    e = -errno;
    close(fd);
    return e;
  }
  return fd;
}

int ms_metrics_start(uv_loop_t* loop, const ms_addr_t* addr,
                     const ms_metrics_opts_t* opts, ms_metrics_fill_cb fill,
                     void* arg, ms_metrics_t** out, char* err, size_t errlen) {
  ms_metrics_t* m;
  int fd, r;

  fd = open_listener(addr);
  if (fd < 0) {
    snprintf(err, errlen, "%s: %s", addr->text, uv_strerror(fd));
    return fd;
  }
  m = calloc(1, sizeof(*m));
  if (m == NULL) {
    close(fd);
    snprintf(err, errlen, "%s: out of memory", addr->text);
    return UV_ENOMEM;
  }
  m->loop = loop;
  m->fill = fill;
  m->arg = arg;
  if (opts) m->o = *opts;
  if (m->o.timeout_ms == 0) m->o.timeout_ms = DEFAULT_TIMEOUT_MS;
  if (m->o.max_conns == 0) m->o.max_conns = DEFAULT_MAX_CONNS;
  if (m->o.max_request == 0) m->o.max_request = DEFAULT_MAX_REQUEST;
  m->listener.data = m;
  /* uv_tcp_init cannot fail for AF_UNSPEC; uv_tcp_open takes the fd. */
  uv_tcp_init(loop, &m->listener);
  m->listener_open = 1;
  r = uv_tcp_open(&m->listener, fd);
  if (r == 0) r = uv_listen((uv_stream_t*)&m->listener, 64, connection_cb);
  if (r < 0) {
    /* Not expected on a socket that already listens; the close is then
     * pending and m is freed once the loop runs. */
    snprintf(err, errlen, "%s: %s", addr->text, uv_strerror(r));
    m->closing = 1;
    uv_close((uv_handle_t*)&m->listener, listener_closed_cb);
    return r;
  }
  *out = m;
  return 0;
}

int ms_metrics_port(const ms_metrics_t* m) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  int r = uv_tcp_getsockname(&m->listener, (struct sockaddr*)&ss, &len);
  if (r < 0) return r;
  if (ss.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6*)&ss)->sin6_port);
  return ntohs(((struct sockaddr_in*)&ss)->sin_port);
}

void ms_metrics_close(ms_metrics_t* m) {
  if (m == NULL || m->closing) return;
  m->closing = 1;
  for (conn_t* c = m->conns; c; c = c->next) conn_drop(c);
  uv_close((uv_handle_t*)&m->listener, listener_closed_cb);
}
