/* test_metrics.c: the /metrics, /healthz and /readyz server on a real
 * loop, with real TCP clients on loopback.  Each client script runs in a
 * thread (blocking sockets, a 5 s receive timeout so a server that fails
 * to drop a connection fails the test instead of hanging it) while the
 * test thread runs the loop; the script's end stops the loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "addr.h"
#include "metrics.h"

static uv_loop_t loop;
static ms_metrics_t* srv;
static int port;
static int family = AF_INET;
static ms_metrics_figures_t figs;
static ms_heap_gauge_t gauges[4];
static atomic_int fills;
static char err[256];

/* The Prometheus test changes figs from its client thread. */
static pthread_mutex_t figs_mu = PTHREAD_MUTEX_INITIALIZER;

static void fill(void* arg, ms_metrics_figures_t* f) {
  (void)arg;
  pthread_mutex_lock(&figs_mu);
  *f = figs;
  pthread_mutex_unlock(&figs_mu);
  atomic_fetch_add(&fills, 1);
}

/* Figures of a worker in its third generation after two limit restarts,
 * with gauge names that need escaping. */
static void full_figures(void) {
  memset(&figs, 0, sizeof(figs));
  figs.supervising = 1;
  figs.ready = 1;
  figs.nworkers = 1;
  figs.w[0].ready = 1;
  figs.w[0].up = 1;
  figs.w[0].footprint = 100 << 20;
  figs.w[0].rss = 120 << 20;
  figs.w[0].swap = 4096;
  figs.w[0].lazyfree = 8192;
  figs.w[0].file = 3 << 20;
  figs.w[0].has_heap = 1;
  figs.w[0].heap_inuse = 90 << 20;
  figs.w[0].uptime_s = 12.5;
  figs.w[0].generation = 3;
  figs.limit = 128 << 20;
  figs.soft_limit = 96 << 20;
  figs.has_cgroup_memory = figs.has_cgroup_limit = figs.has_cgroup_oom_kills = 1;
  figs.cgroup_memory = 200 << 20;
  figs.cgroup_limit = 256 << 20;
  figs.cgroup_oom_kills = 3;
  figs.w[0].restarts[0].reason = "limit";
  figs.w[0].restarts[0].count = 2;
  figs.w[0].nrestarts = 1;
  figs.w[0].crashes = 1;
  figs.w[0].purges = 4;
  figs.w[0].purged_bytes = 1 << 20;
  figs.w[0].state_handed_bytes = 5 << 20;
  figs.w[0].last_restart_unix_s = 1764681300.25;
  snprintf(gauges[0].name, sizeof(gauges[0].name), "cache.entries");
  gauges[0].value = 1500;
  snprintf(gauges[1].name, sizeof(gauges[1].name), "odd\"name\\with\nbreak");
  gauges[1].value = 0.5;
  snprintf(gauges[2].name, sizeof(gauges[2].name),
           "bad\xff"
           "byte");
  gauges[2].value = -1;
  snprintf(gauges[3].name, sizeof(gauges[3].name), "cache.entries");
  gauges[3].value = 7;
  figs.w[0].gauges = gauges;
  figs.w[0].ngauges = 4;
}

static int start_server(const char* addr, uint64_t timeout_ms,
                        unsigned max_conns, size_t max_request) {
  ms_addr_t a;
  ms_metrics_opts_t o = {timeout_ms, max_conns, max_request};
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(ms_addr_parse(addr, &a, err, sizeof(err)), 0);
  family = a.ss.ss_family;
  full_figures();
  int r = ms_metrics_start(&loop, &a, &o, fill, NULL, &srv, err, sizeof(err));
  if (r < 0) return r;
  port = ms_metrics_port(srv);
  assert_true(port > 0);
  return 0;
}

static int setup_short(void** state) {
  (void)state;
  assert_int_equal(start_server("127.0.0.1:0", 300, 4, 1024), 0);
  return 0;
}

static int setup_medium(void** state) {
  (void)state;
  assert_int_equal(start_server("127.0.0.1:0", 1500, 4, 1024), 0);
  return 0;
}

/* A timeout far beyond the clients' 5 s: a drop that happens must be for
 * another reason than time. */
static int setup_long(void** state) {
  (void)state;
  assert_int_equal(start_server("127.0.0.1:0", 60000, 2, 1024), 0);
  return 0;
}

static int teardown(void** state) {
  (void)state;
  if (srv) ms_metrics_close(srv);
  srv = NULL;
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
  return 0;
}

/* ---- the client side (runs in a thread) ---- */

static int connect_port(int to_port) {
  int fd = socket(family, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  socklen_t len;
  if (family == AF_INET6) {
    struct sockaddr_in6* a = (struct sockaddr_in6*)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)to_port);
    a->sin6_addr = in6addr_loopback;
    len = sizeof(*a);
  } else {
    struct sockaddr_in* a = (struct sockaddr_in*)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)to_port);
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(*a);
  }
  if (connect(fd, (struct sockaddr*)&ss, len) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static int connect_to(void) {
  int fd = connect_port(port);
  assert_true(fd >= 0);
  return fd;
}

/* Sends what it can: the server may hang up half-way, which is the point
 * of some tests. */
static void send_some(int fd, const char* s, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

typedef struct {
  char data[256 * 1024];
  size_t len;
  int closed;    /* EOF or reset: the server ended the connection */
  int timed_out; /* nothing for 5 s */
} resp_t;

static void recv_all(int fd, resp_t* r) {
  r->len = 0;
  r->closed = r->timed_out = 0;
  for (;;) {
    ssize_t n = recv(fd, r->data + r->len, sizeof(r->data) - 1 - r->len, 0);
    if (n > 0) {
      r->len += (size_t)n;
      continue;
    }
    if (n == 0 || errno == ECONNRESET)
      r->closed = 1;
    else if (errno == EAGAIN || errno == EWOULDBLOCK)
      r->timed_out = 1;
    else if (errno == EINTR)
      continue;
    break;
  }
  r->data[r->len] = '\0';
}

static void request(const char* req, resp_t* r) {
  int fd = connect_to();
  send_some(fd, req, strlen(req));
  recv_all(fd, r);
  close(fd);
}

static int status_of(const resp_t* r) {
  int code = 0;
  if (sscanf(r->data, "HTTP/1.1 %d ", &code) != 1) return 0;
  return code;
}

static const char* body_of(const resp_t* r) {
  const char* b = strstr(r->data, "\r\n\r\n");
  return b ? b + 4 : "";
}

/* ---- running a client script against the loop ---- */

typedef void (*script_fn)(void* arg);
static uv_async_t done_async;
static atomic_int scripts_left;

typedef struct {
  script_fn fn;
  void* arg;
} script_t;

static void* script_thread(void* p) {
  script_t* s = p;
  s->fn(s->arg);
  atomic_fetch_sub(&scripts_left, 1);
  uv_async_send(&done_async);
  return NULL;
}

/* The listener keeps the loop alive: stop it once every script ended. */
static void done_cb(uv_async_t* a) {
  if (atomic_load(&scripts_left) > 0) return;
  uv_close((uv_handle_t*)a, NULL);
  uv_stop(a->loop);
}

/* Runs n scripts at once in threads and the loop until all are done. */
static void run_scripts(script_t* s, int n) {
  pthread_t th[8];
  atomic_store(&scripts_left, n);
  assert_int_equal(uv_async_init(&loop, &done_async, done_cb), 0);
  for (int i = 0; i < n; i++)
    assert_int_equal(pthread_create(&th[i], NULL, script_thread, &s[i]), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
}

static void run_one(script_fn fn, void* arg) {
  script_t s = {fn, arg};
  run_scripts(&s, 1);
}

/* ---- tests ---- */

static void do_get(void* arg) {
  resp_t* r = ((void**)arg)[1];
  request(((void**)arg)[0], r);
}

static resp_t resp, resp2;

static void get(const char* req, resp_t* r) {
  void* args[2] = {(void*)req, r};
  run_one(do_get, args);
}

static void addr_parse_accepts_port_v4_and_bracketed_v6(void** state) {
  (void)state;
  ms_addr_t a;
  assert_int_equal(ms_addr_parse("9464", &a, err, sizeof(err)), 0);
  assert_string_equal(a.text, "127.0.0.1:9464");
  assert_int_equal(ms_addr_parse("0.0.0.0:80", &a, err, sizeof(err)), 0);
  assert_string_equal(a.text, "0.0.0.0:80");
  assert_int_equal(ms_addr_parse("localhost:1", &a, err, sizeof(err)), 0);
  assert_string_equal(a.text, "127.0.0.1:1");
  assert_int_equal(ms_addr_parse("[::1]:9464", &a, err, sizeof(err)), 0);
  assert_string_equal(a.text, "[::1]:9464");
  assert_int_equal(a.ss.ss_family, AF_INET6);
  assert_int_equal(ms_addr_parse("[::]:65535", &a, err, sizeof(err)), 0);
  assert_string_equal(a.text, "[::]:65535");
}

static void addr_parse_rejects_malformed_with_a_reason(void** state) {
  (void)state;
  static const struct {
    const char* in;
    const char* why;
  } bad[] = {
      {"", "empty"},
      {"http", "port must be a number"},
      {"65536", "port must be a number"},
      {"-1", "port must be a number"},
      {"1.2.3:80", "not a numeric IPv4"},
      {"example.com:80", "not a numeric IPv4"},
      {"::1:80", "in brackets"},
      {"[::1]", "[IPV6]:PORT"},
      {"[::1]:", "port must be a number"},
      {"[1.2.3.4]:80", "not a numeric IPv6"},
      {":80", "[ADDR:]PORT"},
      {"127.0.0.1:", "port must be a number"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    ms_addr_t a;
    err[0] = '\0';
    assert_int_equal(ms_addr_parse(bad[i].in, &a, err, sizeof(err)), -EINVAL);
    if (strstr(err, bad[i].why) == NULL)
      fail_msg("'%s': error '%s' lacks '%s'", bad[i].in, err, bad[i].why);
  }
}

static void start_reports_a_port_in_use(void** state) {
  (void)state;
  ms_addr_t a;
  ms_metrics_t* second = NULL;
  char text[32];
  snprintf(text, sizeof(text), "127.0.0.1:%d", port);
  assert_int_equal(ms_addr_parse(text, &a, err, sizeof(err)), 0);
  int r =
      ms_metrics_start(&loop, &a, NULL, fill, NULL, &second, err, sizeof(err));
  assert_int_equal(r, UV_EADDRINUSE);
  assert_null(second);
  /* Nothing of the failed start is left on the loop. */
  ms_metrics_close(srv);
  srv = NULL;
  assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0);
  assert_int_equal(uv_loop_alive(&loop), 0);
  assert_non_null(strstr(err, text));
  assert_non_null(strstr(err, "address already in use"));
}

static void metrics_has_help_type_and_values(void** state) {
  (void)state;
  get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &resp);
  assert_int_equal(status_of(&resp), 200);
  assert_non_null(strstr(resp.data, "Content-Type: text/plain; version=0.0.4"));
  const char* b = body_of(&resp);
  static const char* want[] = {
      "# TYPE memsup_worker_footprint_bytes gauge\n"
      "memsup_worker_footprint_bytes 104857600\n",
      "memsup_worker_rss_bytes 125829120\n",
      "memsup_worker_swap_bytes 4096\n",
      "memsup_worker_lazyfree_bytes 8192\n",
      "memsup_worker_file_bytes 3145728\n",
      "memsup_worker_heap_inuse_bytes 94371840\n",
      "memsup_limit_bytes 134217728\n",
      "memsup_soft_limit_bytes 100663296\n",
      "# TYPE memsup_cgroup_memory_bytes gauge\n"
      "memsup_cgroup_memory_bytes 209715200\n",
      "memsup_cgroup_limit_bytes 268435456\n",
      "# TYPE memsup_cgroup_oom_kills_total counter\n"
      "memsup_cgroup_oom_kills_total 3\n",
      "# TYPE memsup_restarts_total counter\n"
      "memsup_restarts_total{reason=\"limit\"} 2\n",
      "memsup_crashes_total 1\n",
      "memsup_purges_total 4\n",
      "memsup_purged_bytes_total 1048576\n",
      "memsup_state_handed_bytes_total 5242880\n",
      "memsup_last_restart_timestamp_seconds 1764681300.25\n",
      "memsup_worker_uptime_seconds 12.5\n",
      "memsup_worker_generation 3\n",
      "memsup_holding_off 0\n",
      "# HELP memsup_worker_sdk_value ",
      "memsup_worker_sdk_value{name=\"cache.entries\"} 1500\n",
      "memsup_worker_sdk_value{name=\"odd\\\"name\\\\with\\nbreak\"} 0.5\n",
      "memsup_worker_sdk_value{name=\"bad?byte\"} -1\n",
  };
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
    if (strstr(b, want[i]) == NULL)
      fail_msg("missing: %s\nin:\n%s", want[i], b);
  /* The duplicate name is shown once, with its first value. */
  assert_null(strstr(b, "cache.entries\"} 7"));
  /* The body is exactly what Content-Length says. */
  size_t clen = 0;
  assert_int_equal(sscanf(strstr(resp.data, "Content-Length:"),
                          "Content-Length: %zu", &clen),
                   1);
  assert_int_equal(clen, strlen(b));
}

static void metrics_leaves_out_worker_figures_without_a_worker(void** state) {
  (void)state;
  figs.w[0].up = 0;
  figs.limit = 0;
  figs.w[0].last_restart_unix_s = 0;
  figs.has_cgroup_memory = figs.has_cgroup_limit = figs.has_cgroup_oom_kills = 0;
  get("GET /metrics HTTP/1.0\r\n\r\n", &resp);
  assert_int_equal(status_of(&resp), 200);
  const char* b = body_of(&resp);
  assert_null(strstr(b, "memsup_worker_footprint_bytes"));
  assert_null(strstr(b, "memsup_limit_bytes"));
  assert_null(strstr(b, "memsup_last_restart_timestamp_seconds"));
  assert_null(strstr(b, "memsup_cgroup_"));
  assert_non_null(strstr(b, "memsup_worker_up 0\n"));
  assert_non_null(strstr(b, "memsup_worker_uptime_seconds 0\n"));
}

static int have_promtool(void) {
  return system("command -v promtool >/dev/null 2>&1") == 0;
}

static int promtool_check(const char* text, int quiet) {
  char path[] = "/tmp/memsup-metrics-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  char cmd[256];
  snprintf(cmd, sizeof(cmd), "promtool check metrics < %s%s", path,
           quiet ? " 2>/dev/null" : "");
  int rc = system(cmd);
  unlink(path);
  return rc;
}

static void metrics_pass_promtool_check(void** state) {
  (void)state;
  if (!have_promtool()) {
    print_message(
        "promtool not installed (Debian package prometheus): "
        "skipped\n");
    skip();
  }
  /* The check can fail: a broken exposition is refused. */
  assert_int_not_equal(promtool_check("# TYPE x counter\nx{a=\"1} 1\n", 1), 0);
  get("GET /metrics HTTP/1.1\r\n\r\n", &resp);
  assert_int_equal(status_of(&resp), 200);
  assert_int_equal(promtool_check(body_of(&resp), 0), 0);
  figs.w[0].up = 0;
  figs.w[0].ngauges = 0;
  figs.w[0].nrestarts = 0;
  get("GET /metrics HTTP/1.1\r\n\r\n", &resp);
  assert_int_equal(promtool_check(body_of(&resp), 0), 0);
}

/* A pool: each worker's series carries its slot, reasons and gauges keep
 * their own labels beside it, a slot without a worker has no memory
 * figures, and promtool accepts the whole (when installed). */
static void pool_series_are_labelled_by_slot(void** state) {
  (void)state;
  char* body;
  size_t len;
  full_figures();
  figs.pool = 1;
  figs.nworkers = 2;
  figs.w[1] = figs.w[0];
  figs.w[1].up = 0;
  figs.w[1].generation = 7;
  figs.w[0].restarts[1].reason = "early";
  figs.w[0].restarts[1].count = 5;
  figs.w[0].nrestarts = 2;
  figs.w[1].waits = 9;
  assert_int_equal(ms_metrics_render(&figs, &body, &len), 0);
  static const char* want[] = {
      "memsup_worker_footprint_bytes{slot=\"0\"} 104857600\n",
      "memsup_worker_up{slot=\"1\"} 0\n",
      "memsup_worker_generation{slot=\"1\"} 7\n",
      "memsup_restarts_total{reason=\"limit\",slot=\"0\"} 2\n",
      "memsup_restarts_total{reason=\"early\",slot=\"0\"} 5\n",
      "memsup_restart_waits_total{slot=\"1\"} 9\n",
      "memsup_worker_sdk_value{name=\"cache.entries\",slot=\"0\"} 1500\n",
      "memsup_limit_bytes 134217728\n",
  };
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
    if (strstr(body, want[i]) == NULL) fail_msg("no '%s' in:\n%s", want[i], body);
  /* slot 1 has no worker: none of its memory figures */
  assert_null(strstr(body, "memsup_worker_footprint_bytes{slot=\"1\"}"));
  /* one family header per name, however many slots */
  const char* h = strstr(body, "# TYPE memsup_worker_generation gauge");
  assert_non_null(h);
  assert_null(strstr(h + 1, "# TYPE memsup_worker_generation gauge"));
  if (have_promtool()) assert_int_equal(promtool_check(body, 0), 0);
  free(body);
}

static void healthz_and_readyz_follow_the_figures(void** state) {
  (void)state;
  figs.supervising = 1;
  figs.ready = 0;
  get("GET /healthz HTTP/1.1\r\n\r\n", &resp);
  assert_int_equal(status_of(&resp), 200);
  get("GET /readyz HTTP/1.1\r\n\r\n", &resp);
  assert_int_equal(status_of(&resp), 503);
  figs.ready = 1;
  get("GET /readyz?verbose HTTP/1.1\r\n\r\n", &resp);
  assert_int_equal(status_of(&resp), 200);
  figs.supervising = 0;
  get("GET /healthz HTTP/1.1\r\n\r\n", &resp);
  assert_int_equal(status_of(&resp), 503);
  /* HEAD: the head only. */
  figs.supervising = 1;
  get("HEAD /healthz HTTP/1.1\r\n\r\n", &resp);
  assert_int_equal(status_of(&resp), 200);
  assert_string_equal(body_of(&resp), "");
}

static void other_requests_get_404_405_400(void** state) {
  (void)state;
  get("GET /nope HTTP/1.1\r\n\r\n", &resp);
  assert_int_equal(status_of(&resp), 404);
  get("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &resp);
  assert_int_equal(status_of(&resp), 405);
  assert_non_null(strstr(resp.data, "Allow: GET, HEAD"));
  get("hello there\r\n\r\n", &resp);
  assert_int_equal(status_of(&resp), 400);
  get("GET /metrics SPDY/3\r\n\r\n", &resp);
  assert_int_equal(status_of(&resp), 400);
  assert_true(resp.closed);
}

/* A request over max_request (1024 here) is dropped without an answer,
 * long before the 60 s timeout: with or without an end of headers. */
static void huge_requests_are_dropped(void** state) {
  (void)state;
  size_t n = 64 * 1024;
  char* req = malloc(n + 64);
  assert_non_null(req);
  strcpy(req, "GET /metrics HTTP/1.1\r\nX-Pad: ");
  size_t l = strlen(req);
  memset(req + l, 'a', n);
  req[l + n] = '\0';
  get(req, &resp);
  assert_true(resp.closed);
  assert_false(resp.timed_out);
  assert_int_equal(resp.len, 0);

  memset(req + l, 'a', 2000);
  strcpy(req + l + 2000, "\r\n\r\n");
  get(req, &resp);
  assert_true(resp.closed);
  assert_int_equal(resp.len, 0);
  free(req);
  /* The server still answers. */
  get("GET /healthz HTTP/1.1\r\n\r\n", &resp);
  assert_int_equal(status_of(&resp), 200);
}

/* Order in which the two scripts below finished. */
static atomic_int finish_seq;
static int stuck_done, quick_done;

static atomic_int stuck_sent;

static void stuck_client(void* arg) {
  (void)arg;
  int fd = connect_to();
  send_some(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n", 32);
  atomic_store(&stuck_sent, 1);
  recv_all(fd, &resp);
  close(fd);
  stuck_done = atomic_fetch_add(&finish_seq, 1);
}

static void quick_client(void* arg) {
  (void)arg;
  while (!atomic_load(&stuck_sent)) usleep(1000); /* the stuck one first */
  request("GET /healthz HTTP/1.1\r\n\r\n", &resp2);
  quick_done = atomic_fetch_add(&finish_seq, 1);
}

static uv_timer_t ticker;
static int ticks;
static void tick_cb(uv_timer_t* t) {
  (void)t;
  ticks++;
}

/* A request that never ends is dropped after the 1.5 s timeout; while it
 * hangs, the loop keeps running its timers and answers other clients.
 * (1.5 s: time enough for the other client on a loaded machine.) */
static void never_ending_request_is_dropped_after_timeout(void** state) {
  (void)state;
  script_t s[2] = {{stuck_client, NULL}, {quick_client, NULL}};
  ticks = 0;
  atomic_store(&finish_seq, 0);
  atomic_store(&stuck_sent, 0);
  uv_timer_init(&loop, &ticker);
  uv_timer_start(&ticker, tick_cb, 10, 10);
  uv_unref((uv_handle_t*)&ticker);
  run_scripts(s, 2);
  uv_close((uv_handle_t*)&ticker, NULL);
  assert_true(resp.closed);
  assert_false(resp.timed_out);
  assert_int_equal(resp.len, 0);
  assert_int_equal(status_of(&resp2), 200);
  assert_true(quick_done < stuck_done);
  assert_true(ticks > 0);
}

/* With max_conns 2: a third connection is closed at once while two idle
 * ones are open, and those two are still served afterwards. */
static void connections_over_the_cap_are_closed(void* arg) {
  (void)arg;
  int a = connect_to(), b = connect_to();
  send_some(a, "GET /healthz HTTP/1.1\r\n", 23);
  send_some(b, "GET /readyz HTTP/1.1\r\n", 22);
  usleep(50 * 1000); /* the server has accepted both */
  int c = connect_to();
  recv_all(c, &resp);
  close(c);
  assert_true(resp.closed);
  assert_int_equal(resp.len, 0);
  send_some(a, "\r\n", 2);
  recv_all(a, &resp);
  assert_int_equal(status_of(&resp), 200);
  send_some(b, "\r\n", 2);
  recv_all(b, &resp2);
  assert_int_equal(status_of(&resp2), 200);
  close(a);
  close(b);
}

static void connection_cap_is_enforced(void** state) {
  (void)state;
  run_one(connections_over_the_cap_are_closed, NULL);
}

static void serves_on_ipv6_loopback(void** state) {
  (void)state;
  int r = start_server("[::1]:0", 300, 4, 1024);
  if (r == UV_EADDRNOTAVAIL || r == UV_EAFNOSUPPORT) {
    print_message("no IPv6 loopback here: skipped\n");
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    skip();
  }
  assert_int_equal(r, 0);
  get("GET /readyz HTTP/1.1\r\n\r\n", &resp);
  assert_int_equal(status_of(&resp), 200);
  teardown(state);
  family = AF_INET;
}

/* ---- a real Prometheus server scraping the endpoint ---- */

static char prom_dir[] = "/tmp/memsup-prom-XXXXXX";
static int prom_port;
static pid_t prom_pid;
static const char* prom_failure; /* set by the script, checked after */

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  bind(fd, (struct sockaddr*)&a, sizeof(a));
  getsockname(fd, (struct sockaddr*)&a, &len);
  close(fd);
  return ntohs(a.sin_port);
}

/* One instant query through Prometheus' HTTP API: the body, or "". */
static const char* prom_query(const char* q) {
  char req[512];
  int fd = connect_port(prom_port);
  if (fd < 0) return "";
  snprintf(req, sizeof(req),
           "GET /api/v1/query?query=%s HTTP/1.0\r\nHost: x\r\n\r\n", q);
  send_some(fd, req, strlen(req));
  recv_all(fd, &resp2);
  close(fd);
  return body_of(&resp2);
}

/* Polls q until its body contains want, for up to 30 s. */
static int prom_wait(const char* q, const char* want) {
  for (int i = 0; i < 150; i++) {
    if (strstr(prom_query(q), want)) return 1;
    usleep(200 * 1000);
  }
  return 0;
}

static void prometheus_script(void* arg) {
  (void)arg;
  /* Counters read back through Prometheus' query API: 2, then 3 once the
   * figures change, so it scraped more than once. */
  if (!prom_wait("memsup_restarts_total",
                 "\"reason\":\"limit\"},\"value\":[")) {
    prom_failure = "memsup_restarts_total never appeared";
    return;
  }
  if (!prom_wait("memsup_restarts_total", ",\"2\"]")) {
    prom_failure = "memsup_restarts_total is not 2";
    return;
  }
  pthread_mutex_lock(&figs_mu);
  figs.w[0].restarts[0].count = 3;
  pthread_mutex_unlock(&figs_mu);
  if (!prom_wait("memsup_restarts_total", ",\"3\"]")) {
    prom_failure = "memsup_restarts_total did not move to 3";
    return;
  }
  /* All three distinct gauge names arrived, escaped ones included. */
  if (!prom_wait("count(memsup_worker_sdk_value)", ",\"3\"]"))
    prom_failure = "not 3 memsup_worker_sdk_value series";
  /* And the scrape itself is healthy. */
  else if (!prom_wait("up", ",\"1\"]"))
    prom_failure = "up is not 1";
}

static void a_real_prometheus_scrapes_and_reads_back_counters(void** state) {
  (void)state;
  char path[128], cfg[512], flag_cfg[160], flag_db[160], flag_web[64];
  if (system("command -v prometheus >/dev/null 2>&1") != 0) {
    print_message(
        "prometheus not installed (Debian package prometheus): "
        "skipped\n");
    skip();
  }
  assert_non_null(mkdtemp(prom_dir));
  snprintf(path, sizeof(path), "%s/prometheus.yml", prom_dir);
  snprintf(cfg, sizeof(cfg),
           "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
           "scrape_configs:\n  - job_name: memsup\n    static_configs:\n"
           "      - targets: ['127.0.0.1:%d']\n",
           port);
  FILE* f = fopen(path, "w");
  assert_non_null(f);
  fputs(cfg, f);
  fclose(f);
  prom_port = free_port();
  snprintf(flag_cfg, sizeof(flag_cfg), "--config.file=%s", path);
  snprintf(flag_db, sizeof(flag_db), "--storage.tsdb.path=%s/data", prom_dir);
  snprintf(flag_web, sizeof(flag_web), "--web.listen-address=127.0.0.1:%d",
           prom_port);
  prom_pid = fork();
  assert_true(prom_pid >= 0);
  if (prom_pid == 0) {
    char logp[160];
    snprintf(logp, sizeof(logp), "%s/prometheus.log", prom_dir);
    int lf = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (lf >= 0) {
      dup2(lf, 1);
      dup2(lf, 2);
    }
    execlp("prometheus", "prometheus", flag_cfg, flag_db, flag_web,
           (char*)NULL);
    _exit(127);
  }
  prom_failure = NULL;
  run_one(prometheus_script, NULL);
  kill(prom_pid, SIGTERM);
  int st;
  waitpid(prom_pid, &st, 0);
  if (prom_failure) {
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "tail -n 20 %s/prometheus.log", prom_dir);
    if (system(cmd) != 0) print_message("(no prometheus log)\n");
  }
  char rm[160];
  snprintf(rm, sizeof(rm), "rm -rf %s", prom_dir);
  if (system(rm) != 0) print_message("could not remove %s\n", prom_dir);
  if (prom_failure) fail_msg("%s; last answer: %s", prom_failure, resp2.data);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(addr_parse_accepts_port_v4_and_bracketed_v6),
      cmocka_unit_test(addr_parse_rejects_malformed_with_a_reason),
      cmocka_unit_test_setup_teardown(start_reports_a_port_in_use, setup_short,
                                      teardown),
      cmocka_unit_test_setup_teardown(metrics_has_help_type_and_values,
                                      setup_short, teardown),
      cmocka_unit_test_setup_teardown(
          metrics_leaves_out_worker_figures_without_a_worker, setup_short,
          teardown),
      cmocka_unit_test_setup_teardown(metrics_pass_promtool_check, setup_short,
                                      teardown),
      cmocka_unit_test(pool_series_are_labelled_by_slot),
      cmocka_unit_test_setup_teardown(healthz_and_readyz_follow_the_figures,
                                      setup_short, teardown),
      cmocka_unit_test_setup_teardown(other_requests_get_404_405_400,
                                      setup_short, teardown),
      cmocka_unit_test_setup_teardown(huge_requests_are_dropped, setup_long,
                                      teardown),
      cmocka_unit_test_setup_teardown(
          never_ending_request_is_dropped_after_timeout, setup_medium,
          teardown),
      cmocka_unit_test_setup_teardown(connection_cap_is_enforced, setup_long,
                                      teardown),
      cmocka_unit_test(serves_on_ipv6_loopback),
      cmocka_unit_test_setup_teardown(
          a_real_prometheus_scrapes_and_reads_back_counters, setup_short,
          teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
