/* it_prod.c: memsup where production runs it, seen from outside: the
 * --metrics endpoint scraped while a leaking kvcache is restarted (the
 * counters move, promtool accepts the output), bad --metrics values, and
 * sd_notify to a real datagram socket standing in for systemd's (READY,
 * STATUS after a restart, WATCHDOG, STOPPING; the worker does not see
 * NOTIFY_SOCKET).
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define KV h_example("kvcache")

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

/* GET path from 127.0.0.1:port; the whole answer in buf ("" when no
 * connection).  Returns the status code, 0 when none. */
static int http_get(int port, const char* path, char* buf, size_t len) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct timeval tv = {5, 0};
  char req[128];
  size_t used = 0;
  int code = 0;
  buf[0] = '\0';
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, (struct sockaddr*)&a, sizeof(a)) < 0) {
    close(fd);
    return 0;
  }
  snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
  if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0) {
    close(fd);
    return 0;
  }
  for (;;) {
    ssize_t n = recv(fd, buf + used, len - 1 - used, 0);
    if (n <= 0) break;
    used += (size_t)n;
  }
  buf[used] = '\0';
  close(fd);
  sscanf(buf, "HTTP/1.1 %d", &code);
  return code;
}

/* The value of the sample line that starts with series ("name{...} "). */
static double value_of(const char* body, const char* series) {
  char pat[256];
  snprintf(pat, sizeof(pat), "\n%s ", series);
  const char* p = strstr(body, pat);
  if (p == NULL) fail_msg("no '%s' in:\n%s", series, body);
  return strtod(p + strlen(pat), NULL);
}

static char page[256 * 1024];

static void metrics_move_while_a_leaking_worker_restarts(void** state) {
  h_run_t* h = *state;
  char addr[32];
  int port = free_port();
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  h_start(h, "--limit", "48M", "--metrics", addr, "--log", h->log, "--", KV,
          "--leak-mib-per-s", "24", "--run-for", "60", NULL);
  /* Up, and the first worker says ready through the SDK. */
  int ready = 0;
  for (int i = 0; i < h_ms(10000) / 50 && !ready; i++) {
    ready = http_get(port, "/readyz", page, sizeof(page)) == 200;
    if (!ready) h_sleep_ms(50);
  }
  assert_true(ready);
  assert_int_equal(http_get(port, "/healthz", page, sizeof(page)), 200);
  /* Worker figures read 0 until memsup's first sample of it. */
  for (int i = 0; i < h_ms(5000) / 50; i++) {
    assert_int_equal(http_get(port, "/metrics", page, sizeof(page)), 200);
    if (value_of(page, "memsup_worker_footprint_bytes") > 0) break;
    h_sleep_ms(50);
  }
  double restarts0 = value_of(page, "memsup_restarts_total{reason=\"limit\"}");
  double gen0 = value_of(page, "memsup_worker_generation");
  assert_true(value_of(page, "memsup_worker_footprint_bytes") > 0);
  assert_true(value_of(page, "memsup_limit_bytes") == 48.0 * 1024 * 1024);

  assert_true(h_wait_event(h, "restart", 2, h_ms(30000)));
  /* The new worker's SDK gauges come with its first stats message. */
  for (int i = 0; i < h_ms(5000) / 50; i++) {
    assert_int_equal(http_get(port, "/metrics", page, sizeof(page)), 200);
    if (strstr(page, "memsup_worker_sdk_value{name=\"cache.entries\"}")) break;
    h_sleep_ms(50);
  }
  double restarts = value_of(page, "memsup_restarts_total{reason=\"limit\"}");
  assert_true(restarts >= restarts0 + 2);
  assert_true(restarts <= h_count(h, "restart"));
  assert_true(value_of(page, "memsup_worker_generation") >= gen0 + 2);
  assert_true(value_of(page, "memsup_state_handed_bytes_total") > 0);
  assert_true(value_of(page, "memsup_last_restart_timestamp_seconds") > 1.7e9);
  assert_true(
      value_of(page, "memsup_worker_sdk_value{name=\"cache.entries\"}") == 100);
  /* The live output passes promtool, when it is installed. */
  if (system("command -v promtool >/dev/null 2>&1") == 0) {
    const char* body = strstr(page, "\r\n\r\n");
    assert_non_null(body);
    const char* path = h_path(h, "metrics.txt");
    FILE* f = fopen(path, "w");
    assert_non_null(f);
    fputs(body + 4, f);
    fclose(f);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
    assert_int_equal(system(cmd), 0);
  } else {
    print_message("promtool not installed: output not checked by it\n");
  }
  h_signal(h, SIGTERM);
  assert_int_equal(h_wait(h, h_ms(15000)), 143);
}

static void bad_metrics_address_is_a_usage_error(void** state) {
  h_run_t* h = *state;
  h_start(h, "--metrics", "[::1]", "--", "true", NULL);
  assert_int_equal(h_wait(h, h_ms(10000)), 100);
  assert_true(h_stderr_contains(h, "--metrics '[::1]': expected [IPV6]:PORT"));
}

static void metrics_port_in_use_is_a_usage_error(void** state) {
  h_run_t* h = *state;
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  int busy = socket(AF_INET, SOCK_STREAM, 0);
  assert_int_equal(bind(busy, (struct sockaddr*)&a, sizeof(a)), 0);
  assert_int_equal(listen(busy, 1), 0);
  getsockname(busy, (struct sockaddr*)&a, &len);
  char addr[32];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(a.sin_port));
  h_start(h, "--metrics", addr, "--", "sleep", "30", NULL);
  int code = h_wait(h, h_ms(10000));
  close(busy);
  assert_int_equal(code, 100);
  assert_true(h_stderr_contains(h, "address already in use"));
}

/* ---- sd_notify ---- */

static int sd = -1;

static const char* next_datagram(int timeout_ms) {
  static char buf[1024];
  struct pollfd p = {.fd = sd, .events = POLLIN};
  buf[0] = '\0';
  if (poll(&p, 1, timeout_ms) != 1) return buf;
  ssize_t r = recv(sd, buf, sizeof(buf) - 1, 0);
  buf[r > 0 ? r : 0] = '\0';
  return buf;
}

/* Waits for a datagram that starts with prefix, skipping others (the
 * watchdog's); returns it or fails. */
static const char* expect_datagram(const char* prefix, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 100) {
    const char* d = next_datagram(100);
    if (strncmp(d, prefix, strlen(prefix)) == 0) return d;
  }
  fail_msg("no '%s' datagram within %d ms", prefix, timeout_ms);
  return NULL;
}

static void systemd_is_told_ready_status_watchdog_stopping(void** state) {
  h_run_t* h = *state;
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  const char* sock = h_path(h, "notify");
  assert_true(strlen(sock) < sizeof(a.sun_path));
  memcpy(a.sun_path, sock, strlen(sock) + 1);
  sd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert_int_equal(bind(sd, (struct sockaddr*)&a, sizeof(a)), 0);
  setenv("NOTIFY_SOCKET", a.sun_path, 1);
  setenv("WATCHDOG_USEC", "400000", 1);
  h_start(h, "--limit", "48M", "--log", h->log, "--", KV, "--leak-mib-per-s",
          "24", "--run-for", "60", NULL);
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");
  const char* d = expect_datagram("READY=1", h_ms(10000));
  assert_non_null(strstr(d, "\nSTATUS=worker 1 up (pid "));
  expect_datagram("WATCHDOG=1", h_ms(5000));
  /* The worker's environment has none of it. */
  assert_true(h_wait_event(h, "start", 1, h_ms(5000)));
  cJSON* starts = h_events(h, "start");
  pid_t w = (pid_t)h_num(cJSON_GetArrayItem(starts, 0), "pid");
  cJSON_Delete(starts);
  assert_true(w > 0);
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/environ", (int)w);
  FILE* f = fopen(path, "r");
  assert_non_null(f);
  char env[65536];
  size_t n = fread(env, 1, sizeof(env) - 1, f);
  fclose(f);
  for (size_t i = 0; i < n; i++)
    if (env[i] == '\0') env[i] = '\n';
  env[n] = '\0';
  assert_null(strstr(env, "NOTIFY_SOCKET="));
  assert_null(strstr(env, "WATCHDOG_USEC="));
  assert_non_null(strstr(env, "MEMSUP_FD="));
  d = expect_datagram("STATUS=restart #1 (limit)", h_ms(30000));
  h_signal(h, SIGTERM);
  expect_datagram("STOPPING=1", h_ms(10000));
  assert_int_equal(h_wait(h, h_ms(15000)), 143);
  close(sd);
  sd = -1;
}

/* ---- --listen: connections across restarts ---- */

static volatile sig_atomic_t stop_serving;
static void on_term(int sig) {
  (void)sig;
  stop_serving = 1;
}

/* "--serve-leak": a socket-activated server (fd 3, checked the way
 * sd_listen_fds() does) that leaks 1 MiB every 10 ms, so memsup restarts
 * it at the limit, and finishes the connection in hand on SIGTERM. */
static int serve_leak(void) {
  const char* lp = getenv("LISTEN_PID");
  const char* lf = getenv("LISTEN_FDS");
  if (lp == NULL || atol(lp) != (long)getpid() || lf == NULL || atoi(lf) != 1)
    return 3;
  struct sigaction sa = {.sa_handler = on_term};
  sigaction(SIGTERM, &sa, NULL);
  while (!stop_serving) {
    struct pollfd p = {.fd = 3, .events = POLLIN};
    if (poll(&p, 1, 10) == 1) {
      int c = accept(3, NULL, NULL);
      if (c >= 0) {
        char msg[32];
        snprintf(msg, sizeof(msg), "%d\n", getpid());
        if (write(c, msg, strlen(msg)) < 0) return 4;
        close(c);
      }
    }
    /* Kept where the compiler must assume it is read: clang elides a
     * malloc+memset whose result is never used (make check builds this
     * worker with clang), and then nothing leaks. */
    static char* volatile leaked;
    leaked = malloc(1 << 20);
    if (leaked) memset(leaked, 1, 1 << 20);
  }
  /* _exit: the leak is the point; under make check's ASan build a normal
   * exit would run LeakSanitizer, report it and exit 1. */
  _exit(0);
}

typedef struct {
  pthread_t th;
  int port;
  volatile int* stop;
  int ok, refused, failed;
  double worst_ms;
} client_t;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void* client_main(void* arg) {
  client_t* c = arg;
  while (!*c->stop) {
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)c->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {10, 0};
    char buf[32];
    double t0 = now_ms();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr*)&a, sizeof(a)) < 0) {
      if (errno == ECONNREFUSED)
        c->refused++;
      else
        c->failed++;
      close(fd);
      continue;
    }
    ssize_t r = read(fd, buf, sizeof(buf));
    close(fd);
    if (r > 0)
      c->ok++;
    else
      c->failed++;
    double dt = now_ms() - t0;
    if (dt > c->worst_ms) c->worst_ms = dt;
  }
  return NULL;
}

/* Four clients connect without pause while memsup restarts a leaking
 * worker five times: the socket memsup holds queues what arrives between
 * two workers.  Goal: no connection refused. */
static void no_connection_refused_while_a_listening_worker_restarts(
    void** state) {
  h_run_t* h = *state;
  char self[4096], addr[32];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  assert_true(n > 0);
  self[n] = '\0';
  int port = free_port();
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  h_start(h, "--limit", "32M", "--listen", addr, "--log", h->log, "--", self,
          "--serve-leak", NULL);
  /* Counting starts once memsup holds the socket. */
  int bound = 0;
  for (int i = 0; i < h_ms(10000) / 20 && !bound; i++) {
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bound = connect(fd, (struct sockaddr*)&a, sizeof(a)) == 0;
    close(fd);
    if (!bound) h_sleep_ms(20);
  }
  assert_true(bound);
  volatile int stop = 0;
  client_t cl[4];
  memset(cl, 0, sizeof(cl));
  for (int i = 0; i < 4; i++) {
    cl[i].port = port;
    cl[i].stop = &stop;
    assert_int_equal(pthread_create(&cl[i].th, NULL, client_main, &cl[i]), 0);
  }
  int restarted = h_wait_event(h, "restart", 5, h_ms(60000));
  stop = 1;
  int ok = 0, refused = 0, failed = 0;
  double worst = 0;
  for (int i = 0; i < 4; i++) {
    pthread_join(cl[i].th, NULL);
    ok += cl[i].ok;
    refused += cl[i].refused;
    failed += cl[i].failed;
    if (cl[i].worst_ms > worst) worst = cl[i].worst_ms;
  }
  print_message(
      "%d restarts: %d connections answered, %d refused, %d "
      "failed; worst client-visible delay %.1f ms\n",
      h_count(h, "restart"), ok, refused, failed, worst);
  assert_true(restarted);
  assert_true(ok > 0);
  assert_int_equal(refused, 0);
  h_signal(h, SIGTERM);
  assert_int_equal(h_wait(h, h_ms(15000)), 0);
}

static void bad_listen_address_is_a_usage_error(void** state) {
  h_run_t* h = *state;
  h_start(h, "--listen", "localhost:http", "--", "true", NULL);
  assert_int_equal(h_wait(h, h_ms(10000)), 100);
  assert_true(h_stderr_contains(h, "--listen 'localhost:http': port must be"));
}

/* --log -: the JSON lines on stdout, one object per line; stderr keeps
 * the human lines. */
static void log_dash_writes_json_lines_to_stdout(void** state) {
  h_run_t* h = *state;
  h_start(h, "--log", "-", "--", "sh", "-c", "exit 3", NULL);
  assert_int_equal(h_wait(h, h_ms(20000)), 3);
  char* out = h_read_file(h->out);
  assert_non_null(out);
  int lines = 0, starts = 0;
  for (char* line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
    cJSON* j = cJSON_Parse(line);
    if (j == NULL) fail_msg("not JSON on stdout: %s", line);
    const char* ev = h_str(j, "event");
    assert_non_null(ev);
    starts += strcmp(ev, "start") == 0;
    lines++;
    cJSON_Delete(j);
  }
  free(out);
  assert_true(lines >= 2);
  assert_true(starts >= 1);
  assert_true(h_stderr_contains(h, "memsup: "));
}

/* ---- a real Prometheus server scraping memsup ---- */

/* Polls Prometheus' query API for q until the body has want (30 s). */
static int prom_wait(int prom_port, const char* q, const char* want) {
  char path[256];
  snprintf(path, sizeof(path), "/api/v1/query?query=%s", q);
  for (int i = 0; i < h_ms(30000) / 200; i++) {
    if (http_get(prom_port, path, page, sizeof(page)) == 200 &&
        strstr(page, want))
      return 1;
    h_sleep_ms(200);
  }
  return 0;
}

static void prometheus_reads_the_restart_counter(void** state) {
  h_run_t* h = *state;
  char addr[32], cfg[512], flag_cfg[400], flag_db[400], flag_web[64];
  if (system("command -v prometheus >/dev/null 2>&1") != 0) {
    print_message("prometheus not installed: skipped\n");
    skip();
  }
  int port = free_port();
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  h_start(h, "--limit", "48M", "--metrics", addr, "--log", h->log, "--", KV,
          "--leak-mib-per-s", "24", "--run-for", "60", NULL);
  const char* yml = h_path(h, "prometheus.yml");
  snprintf(cfg, sizeof(cfg),
           "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
           "scrape_configs:\n  - job_name: memsup\n    static_configs:\n"
           "      - targets: ['%s']\n",
           addr);
  FILE* f = fopen(yml, "w");
  assert_non_null(f);
  fputs(cfg, f);
  fclose(f);
  int prom_port = free_port();
  snprintf(flag_cfg, sizeof(flag_cfg), "--config.file=%s", yml);
  snprintf(flag_db, sizeof(flag_db), "--storage.tsdb.path=%s",
           h_path(h, "tsdb"));
  snprintf(flag_web, sizeof(flag_web), "--web.listen-address=127.0.0.1:%d",
           prom_port);
  const char* argv[] = {"prometheus", flag_cfg, flag_db, flag_web, NULL};
  pid_t prom = h_spawn(h, argv);
  assert_true(prom > 0);
  /* memsup restarts kvcache every ~2 s: the counter Prometheus stored
   * reaches 2, and the target is up. */
  int seen = prom_wait(prom_port, "memsup_restarts_total",
                       "\"reason\":\"limit\"},\"value\":[");
  int two = seen && prom_wait(prom_port, "memsup_restarts_total%3E%3D2",
                              "\"reason\":\"limit\"}");
  int up = prom_wait(prom_port, "up", ",\"1\"]");
  if (!seen || !two || !up) fail_msg("Prometheus said: %s", page);
  h_signal(h, SIGTERM);
  assert_int_equal(h_wait(h, h_ms(15000)), 143);
}

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "--serve-leak") == 0) return serve_leak();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(
          metrics_move_while_a_leaking_worker_restarts, h_setup, h_teardown),
      cmocka_unit_test_setup_teardown(bad_metrics_address_is_a_usage_error,
                                      h_setup, h_teardown),
      cmocka_unit_test_setup_teardown(metrics_port_in_use_is_a_usage_error,
                                      h_setup, h_teardown),
      cmocka_unit_test_setup_teardown(
          systemd_is_told_ready_status_watchdog_stopping, h_setup, h_teardown),
      cmocka_unit_test_setup_teardown(
          no_connection_refused_while_a_listening_worker_restarts, h_setup,
          h_teardown),
      cmocka_unit_test_setup_teardown(bad_listen_address_is_a_usage_error,
                                      h_setup, h_teardown),
      cmocka_unit_test_setup_teardown(log_dash_writes_json_lines_to_stdout,
                                      h_setup, h_teardown),
      cmocka_unit_test_setup_teardown(prometheus_reads_the_restart_counter,
                                      h_setup, h_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
