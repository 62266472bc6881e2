/* test_listen.c: held listening sockets with real TCP clients, systemd's
 * LISTEN_* variables (in a forked child, where fds 3.. can be arranged as
 * systemd would), the worker environment, and the exec shim end to end:
 * the test binary re-executes itself as "--exec-shim" and as the worker
 * ("--worker-check"), which checks what it got the way sd_listen_fds()
 * would and answers a client on fd 3.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <uv.h>

#include "listen.h"

extern char** environ;
static char err[256];
static ms_listen_t l;

static int setup(void** state) {
  (void)state;
  ms_listen_init(&l);
  return 0;
}

static int teardown(void** state) {
  (void)state;
  ms_listen_close(&l);
  return 0;
}

static void add(const char* text) {
  ms_addr_t a;
  assert_int_equal(ms_addr_parse(text, &a, err, sizeof(err)), 0);
  if (ms_listen_add(&l, &a, err, sizeof(err)) < 0) fail_msg("%s", err);
}

static int connect_port(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, (struct sockaddr*)&a, sizeof(a)) < 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  return fd;
}

/* Nobody accepts yet: the kernel completes the handshakes and queues. */
static void held_socket_queues_connections_before_any_accept(void** state) {
  (void)state;
  add("127.0.0.1:0");
  int port = ms_listen_port(&l, 0);
  assert_true(port > 0);
  int c[3];
  for (int i = 0; i < 3; i++) assert_true((c[i] = connect_port(port)) >= 0);
  for (int i = 0; i < 3; i++) {
    int s = accept(l.fd[0], NULL, NULL);
    assert_true(s >= 0);
    close(s);
    close(c[i]);
  }
  assert_string_equal(l.name[0], "listen");
  assert_int_equal(fcntl(l.fd[0], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
}

static void add_reports_a_port_in_use(void** state) {
  (void)state;
  char text[32];
  ms_addr_t a;
  add("127.0.0.1:0");
  snprintf(text, sizeof(text), "127.0.0.1:%d", ms_listen_port(&l, 0));
  assert_int_equal(ms_addr_parse(text, &a, err, sizeof(err)), 0);
  assert_int_equal(ms_listen_add(&l, &a, err, sizeof(err)), -EADDRINUSE);
  assert_non_null(strstr(err, text));
  assert_non_null(strstr(err, "Address already in use"));
  assert_int_equal(l.n, 1);
}

static void adopt_ignores_what_is_not_ours(void** state) {
  (void)state;
  char other[16];
  snprintf(other, sizeof(other), "%d", getpid() + 1);
  assert_int_equal(ms_listen_adopt(&l, NULL, NULL, NULL, err, sizeof(err)), 0);
  assert_int_equal(ms_listen_adopt(&l, "2", NULL, NULL, err, sizeof(err)), 0);
  assert_int_equal(ms_listen_adopt(&l, "2", other, NULL, err, sizeof(err)), 0);
  assert_int_equal(l.n, 0);
}

static void adopt_refuses_malformed_values(void** state) {
  (void)state;
  char me[16];
  snprintf(me, sizeof(me), "%d", getpid());
  assert_int_equal(ms_listen_adopt(&l, "two", me, NULL, err, sizeof(err)),
                   -EINVAL);
  assert_non_null(strstr(err, "LISTEN_FDS=two"));
  assert_int_equal(ms_listen_adopt(&l, "1", "me", NULL, err, sizeof(err)),
                   -EINVAL);
  assert_non_null(strstr(err, "LISTEN_PID=me"));
  assert_int_equal(ms_listen_adopt(&l, "1000", me, NULL, err, sizeof(err)),
                   -E2BIG);
  assert_int_equal(ms_listen_adopt(&l, "2", me, "a:b:c", err, sizeof(err)),
                   -EINVAL);
  assert_non_null(strstr(err, "LISTEN_FDNAMES=a:b:c"));
  assert_int_equal(l.n, 0);
}

/* In a child: fds 3 and 4 become listening sockets as systemd would
 * leave them; the exit status is the line of the first failed check. */
#define CHECK(x)                                            \
  do {                                                      \
    if (!(x)) _exit(__LINE__ & 0xff ? __LINE__ & 0xff : 1); \
  } while (0)

static void adopt_takes_systemd_sockets_at_fd_3(void** state) {
  (void)state;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char me[16], e[256];
    ms_listen_t s;
    ms_listen_init(&s);
    /* Placeholders, so that the sockets are made above 4. */
    int null = open("/dev/null", O_RDONLY);
    CHECK(null >= 0 && dup2(null, 3) == 3 && dup2(null, 4) == 4);
    if (null > 4) close(null);
    for (int fd = 3; fd <= 4; fd++) {
      int k = socket(AF_INET, SOCK_STREAM, 0);
      struct sockaddr_in a = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
      CHECK(k >= 0 && bind(k, (struct sockaddr*)&a, sizeof(a)) == 0);
      CHECK(listen(k, 8) == 0);
      CHECK(dup2(k, fd) == fd);
      close(k);
    }
    close(5);
    snprintf(me, sizeof(me), "%d", getpid());
    CHECK(ms_listen_adopt(&s, "2", me, "web:admin", e, sizeof(e)) == 0);
    CHECK(s.n == 2 && s.fd[0] == 3 && s.fd[1] == 4);
    CHECK(strcmp(s.name[0], "web") == 0 && strcmp(s.name[1], "admin") == 0);
    CHECK(fcntl(3, F_GETFD) & FD_CLOEXEC);
    CHECK(ms_listen_port(&s, 1) > 0);
    /* A third one that is not open: refused with a reason. */
    ms_listen_init(&s);
    CHECK(ms_listen_adopt(&s, "3", me, NULL, e, sizeof(e)) == -EBADF);
    CHECK(strstr(e, "fd 5") != NULL && s.n == 0);
    _exit(0);
  }
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st));
  if (WEXITSTATUS(st) != 0)
    fail_msg("check at line ~%d failed", WEXITSTATUS(st));
}

static void env_replaces_memsup_and_systemd_variables(void** state) {
  (void)state;
  char* base[] = {"PATH=/bin",        "MEMSUP_FD=3",
                  "NOTIFY_SOCKET=/x", "WATCHDOG_USEC=5",
                  "WATCHDOG_PID=9",   "LISTEN_FDS=7",
                  "LISTEN_PID=1",     "LISTEN_FDNAMES=zz",
                  "HOME=/root",       "MEMSUP_WORKER=9",
                  NULL};
  char** env;
  add("127.0.0.1:0");
  snprintf(l.name[0], sizeof(l.name[0]), "web");
  add("127.0.0.1:0");
  assert_int_equal(ms_listen_env(&l, base, 5, 2, &env), 0);
  const char* want[] = {"PATH=/bin",
                        "HOME=/root",
                        "MEMSUP_FD=5",
                        "MEMSUP_WORKER=2",
                        "LISTEN_FDS=2",
                        "LISTEN_FDNAMES=web:listen",
                        NULL};
  for (int i = 0; want[i] || env[i]; i++) {
    assert_non_null(want[i]);
    assert_non_null(env[i]);
    assert_string_equal(env[i], want[i]);
  }
  ms_listen_env_free(env);
  /* Without sockets: only MEMSUP_FD, at 3, and the slot (0 alone). */
  ms_listen_close(&l);
  assert_int_equal(ms_listen_env(&l, base, 3, 0, &env), 0);
  assert_string_equal(env[2], "MEMSUP_FD=3");
  assert_string_equal(env[3], "MEMSUP_WORKER=0");
  assert_null(env[4]);
  ms_listen_env_free(env);
}

static void resolve_finds_what_execvp_would(void** state) {
  (void)state;
  char out[4096];
  assert_int_equal(
      ms_exec_resolve("sh", "/nonexistent:/bin:/usr/bin", out, sizeof(out)), 0);
  assert_string_equal(out, "/bin/sh");
  assert_int_equal(ms_exec_resolve("memsup-no-such-program", "/bin:/usr/bin",
                                   out, sizeof(out)),
                   -ENOENT);
  assert_int_equal(ms_exec_resolve("/etc/passwd", NULL, out, sizeof(out)),
                   -EACCES);
  assert_int_equal(ms_exec_resolve("/tmp", NULL, out, sizeof(out)), -EACCES);
  assert_int_equal(ms_exec_resolve("/nonexistent/x", NULL, out, sizeof(out)),
                   -ENOENT);
  assert_int_equal(ms_exec_resolve("passwd", "/etc", out, sizeof(out)),
                   -EACCES);
  assert_int_equal(ms_exec_resolve("", NULL, out, sizeof(out)), -ENOENT);
}

/* ---- the exec shim, end to end ---- */

/* The worker: what a socket-activated program checks (sd_listen_fds), then
 * one answer to one client on fd 3, and a word on the memsup channel. */
static int worker_check(void) {
  char msg[512];
  const char* why = NULL;
  const char* lp = getenv("LISTEN_PID");
  const char* lf = getenv("LISTEN_FDS");
  const char* ln = getenv("LISTEN_FDNAMES");
  const char* mf = getenv("MEMSUP_FD");
  int acc = 0;
  socklen_t len = sizeof(acc);
  struct stat sb;
  if (lp == NULL || atol(lp) != (long)getpid())
    why = "LISTEN_PID is not my pid";
  else if (lf == NULL || strcmp(lf, "1") != 0)
    why = "LISTEN_FDS is not 1";
  else if (ln == NULL || strcmp(ln, "listen") != 0)
    why = "bad LISTEN_FDNAMES";
  else if (getsockopt(3, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) < 0 || !acc)
    why = "fd 3 is not a listening socket";
  else if (mf == NULL || strcmp(mf, "4") != 0)
    why = "MEMSUP_FD is not 4";
  else if (fstat(4, &sb) < 0 || !S_ISSOCK(sb.st_mode))
    why = "fd 4 is not the channel";
  else if (getenv("NOTIFY_SOCKET"))
    why = "NOTIFY_SOCKET leaked";
  else if (fcntl(5, F_GETFD) >= 0)
    why = "fd 5 leaked into the worker";
  int c = accept(3, NULL, NULL);
  if (c < 0) return 2;
  snprintf(msg, sizeof(msg), "pid=%d %s\n", getpid(), why ? why : "ok");
  if (write(c, msg, strlen(msg)) < 0) return 3;
  if (write(4, "hi", 2) != 2) return 4;
  close(c);
  return why ? 1 : 0;
}

static int64_t exit_status = -1;
static void exit_cb(uv_process_t* p, int64_t status, int sig) {
  exit_status = sig ? 128 + sig : status;
  uv_close((uv_handle_t*)p, NULL);
}

/* Three workers in a row on one held socket.  Each time the client
 * connects while no worker runs; the worker started next answers it.
 * Zero connections refused, and each worker saw its own pid. */
static void workers_get_the_sockets_as_systemd_would(void** state) {
  (void)state;
  char** env;
  char** argv;
  char self[4096];
  char* worker_argv[] = {"worker-check", "--worker-check", NULL};
  ms_listen_self_exe(self, sizeof(self));
  assert_int_equal(self[0], '/');
  assert_null(strstr(self, "/proc/"));
  setenv("NOTIFY_SOCKET", "/run/should-not-leak", 1);
  add("127.0.0.1:0");
  int port = ms_listen_port(&l, 0);
  assert_int_equal(ms_listen_env(&l, environ, 4, 0, &env), 0);
  assert_int_equal(ms_listen_shim_argv(self, self, worker_argv, &argv), 0);

  for (int gen = 1; gen <= 3; gen++) {
    uv_loop_t loop;
    uv_process_t proc;
    int sv[2];
    char resp[512] = "";
    assert_int_equal(uv_loop_init(&loop), 0);
    int client = connect_port(port);
    assert_true(client >= 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    uv_stdio_container_t stdio[5];
    for (int i = 0; i < 3; i++) {
      stdio[i].flags = UV_INHERIT_FD;
      stdio[i].data.fd = i;
    }
    stdio[3].flags = UV_INHERIT_FD;
    stdio[3].data.fd = l.fd[0];
    stdio[4].flags = UV_INHERIT_FD;
    stdio[4].data.fd = sv[1];
    uv_process_options_t o;
    memset(&o, 0, sizeof(o));
    o.file = argv[0];
    o.args = argv;
    o.env = env;
    o.exit_cb = exit_cb;
    o.stdio = stdio;
    o.stdio_count = 5;
    exit_status = -1;
    assert_int_equal(uv_spawn(&loop, &proc, &o), 0);
    int pid = proc.pid;
    close(sv[1]);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    ssize_t r = read(client, resp, sizeof(resp) - 1);
    assert_true(r > 0);
    resp[r] = '\0';
    char want[64];
    snprintf(want, sizeof(want), "pid=%d ok\n", pid);
    assert_string_equal(resp, want);
    char hi[3] = "";
    assert_int_equal(read(sv[0], hi, 2), 2);
    assert_string_equal(hi, "hi");
    assert_int_equal(exit_status, 0);
    close(sv[0]);
    close(client);
  }
  free(argv);
  ms_listen_env_free(env);
  unsetenv("NOTIFY_SOCKET");
}

/* "--serve N": a socket-activated server that answers N connections on
 * fd 3 ("pid\n") and exits, as a worker replaced after N requests; it
 * also ends after 2 s without a connection. */
static int worker_serve(int n) {
  const char* lp = getenv("LISTEN_PID");
  if (lp == NULL || atol(lp) != (long)getpid()) return 1;
  for (int i = 0; i < n; i++) {
    /* Idle for 2 s: the clients are done (some were refused): end, so
     * that the test reports instead of hanging. */
    struct pollfd p = {.fd = 3, .events = POLLIN};
    if (poll(&p, 1, 2000) == 0) return 0;
    int c = accept(3, NULL, NULL);
    if (c < 0) return 2;
    char msg[32];
    snprintf(msg, sizeof(msg), "%d\n", getpid());
    if (write(c, msg, strlen(msg)) < 0) return 3;
    close(c);
  }
  return 0;
}

#define SERVE_PER_WORKER 40
#define SERVE_WORKERS 5
#define SERVE_CLIENTS 4
#define SERVE_EACH (SERVE_PER_WORKER * SERVE_WORKERS / SERVE_CLIENTS)

typedef struct {
  pthread_t th;
  int port;
  int ok, refused, failed;
  double worst_ms;
} client_t;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void* client_main(void* p) {
  client_t* c = p;
  for (int i = 0; i < SERVE_EACH; i++) {
    double t0 = now_ms();
    int fd = connect_port(c->port);
    if (fd == -ECONNREFUSED) {
      c->refused++;
      continue;
    }
    char buf[32];
    ssize_t r = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
    if (fd >= 0) close(fd);
    if (r > 0)
      c->ok++;
    else
      c->failed++;
    double dt = now_ms() - t0;
    if (dt > c->worst_ms) c->worst_ms = dt;
  }
  return NULL;
}

/* Clients connect without pause while five workers in a row serve 40
 * connections each and exit: whatever arrives between two workers waits
 * in the held socket's queue.  Goal: none refused, none lost. */
static void no_connection_is_refused_while_workers_are_replaced(void** state) {
  (void)state;
  char self[4096], nbuf[16];
  char** env;
  char** argv;
  snprintf(nbuf, sizeof(nbuf), "%d", SERVE_PER_WORKER);
  char* worker_argv[] = {"worker-serve", "--serve", nbuf, NULL};
  ms_listen_self_exe(self, sizeof(self));
  add("127.0.0.1:0");
  int port = ms_listen_port(&l, 0);
  assert_int_equal(ms_listen_env(&l, environ, 4, 0, &env), 0);
  assert_int_equal(ms_listen_shim_argv(self, self, worker_argv, &argv), 0);
  client_t cl[SERVE_CLIENTS];
  memset(cl, 0, sizeof(cl));
  for (int i = 0; i < SERVE_CLIENTS; i++) {
    cl[i].port = port;
    assert_int_equal(pthread_create(&cl[i].th, NULL, client_main, &cl[i]), 0);
  }
  for (int gen = 1; gen <= SERVE_WORKERS; gen++) {
    uv_loop_t loop;
    uv_process_t proc;
    uv_stdio_container_t stdio[5];
    assert_int_equal(uv_loop_init(&loop), 0);
    for (int i = 0; i < 3; i++) {
      stdio[i].flags = UV_INHERIT_FD;
      stdio[i].data.fd = i;
    }
    stdio[3].flags = UV_INHERIT_FD;
    stdio[3].data.fd = l.fd[0];
    stdio[4].flags = UV_IGNORE;
    uv_process_options_t o;
    memset(&o, 0, sizeof(o));
    o.file = argv[0];
    o.args = argv;
    o.env = env;
    o.exit_cb = exit_cb;
    o.stdio = stdio;
    o.stdio_count = 5;
    exit_status = -1;
    assert_int_equal(uv_spawn(&loop, &proc, &o), 0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(exit_status, 0);
  }
  int ok = 0, refused = 0, failed = 0;
  double worst = 0;
  for (int i = 0; i < SERVE_CLIENTS; i++) {
    pthread_join(cl[i].th, NULL);
    ok += cl[i].ok;
    refused += cl[i].refused;
    failed += cl[i].failed;
    if (cl[i].worst_ms > worst) worst = cl[i].worst_ms;
  }
  print_message(
      "%d workers, %d connections: %d answered, %d refused, %d "
      "failed; worst client-visible delay %.1f ms\n",
      SERVE_WORKERS, SERVE_CLIENTS * SERVE_EACH, ok, refused, failed, worst);
  assert_int_equal(refused, 0);
  assert_int_equal(failed, 0);
  assert_int_equal(ok, SERVE_PER_WORKER * SERVE_WORKERS);
  free(argv);
  ms_listen_env_free(env);
}

/* A worker that is not there: the shim says so and exits 127. */
static void shim_exits_127_when_the_worker_is_missing(void** state) {
  (void)state;
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  assert_true(n > 0);
  self[n] = '\0';
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 2);
    execl(self, self, MS_EXEC_SHIM_ARG, "/nonexistent/worker", "worker",
          (char*)NULL);
    _exit(99);
  }
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 127);
}

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], MS_EXEC_SHIM_ARG) == 0)
    return ms_exec_shim_main(argc, argv);
  if (argc > 1 && strcmp(argv[1], "--worker-check") == 0) return worker_check();
  if (argc > 2 && strcmp(argv[1], "--serve") == 0)
    return worker_serve(atoi(argv[2]));
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(
          held_socket_queues_connections_before_any_accept, setup, teardown),
      cmocka_unit_test_setup_teardown(add_reports_a_port_in_use, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(adopt_ignores_what_is_not_ours, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(adopt_refuses_malformed_values, setup,
                                      teardown),
      cmocka_unit_test(adopt_takes_systemd_sockets_at_fd_3),
      cmocka_unit_test_setup_teardown(env_replaces_memsup_and_systemd_variables,
                                      setup, teardown),
      cmocka_unit_test(resolve_finds_what_execvp_would),
      cmocka_unit_test_setup_teardown(workers_get_the_sockets_as_systemd_would,
                                      setup, teardown),
      cmocka_unit_test(shim_exits_127_when_the_worker_is_missing),
      cmocka_unit_test_setup_teardown(
          no_connection_is_refused_while_workers_are_replaced, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
