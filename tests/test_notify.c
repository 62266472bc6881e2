/* test_notify.c: sd_notify against a real AF_UNIX datagram socket
 * standing in for systemd's, bound at a path and at an abstract name. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "notify.h"

static uv_loop_t loop;
static int sd = -1;    /* "systemd" */
static char name[108]; /* what NOTIFY_SOCKET would say */
static char err[256];
static ms_notify_t* n;

static int bind_systemd(int abstract) {
  struct sockaddr_un a;
  socklen_t len;
  memset(&a, 0, sizeof(a));
  a.sun_family = AF_UNIX;
  if (abstract) {
    snprintf(name, sizeof(name), "@memsup-test-notify-%d", getpid());
    memcpy(a.sun_path, name, strlen(name));
    a.sun_path[0] = '\0';
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
  } else {
    snprintf(name, sizeof(name), "/tmp/memsup-test-notify-%d", getpid());
    unlink(name);
    strcpy(a.sun_path, name);
    len = sizeof(a);
  }
  sd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert_true(sd >= 0);
  assert_int_equal(bind(sd, (struct sockaddr*)&a, len), 0);
  return 0;
}

static int setup_path(void** state) {
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  return bind_systemd(0);
}

static int setup_abstract(void** state) {
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  return bind_systemd(1);
}

static int teardown(void** state) {
  (void)state;
  ms_notify_close(n);
  n = NULL;
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
  close(sd);
  sd = -1;
  if (name[0] == '/') unlink(name);
  return 0;
}

/* The next datagram within timeout_ms, NUL-terminated, or "" if none. */
static const char* next_datagram(int timeout_ms) {
  static char buf[1024];
  struct pollfd p = {.fd = sd, .events = POLLIN};
  buf[0] = '\0';
  if (poll(&p, 1, timeout_ms) != 1) return buf;
  ssize_t r = recv(sd, buf, sizeof(buf) - 1, 0);
  buf[r > 0 ? r : 0] = '\0';
  return buf;
}

static void open_n(const char* usec, const char* pid) {
  assert_int_equal(ms_notify_open(&loop, name, usec, pid, &n, err, sizeof(err)),
                   0);
  assert_non_null(n);
}

static void ready_status_stopping_reach_the_socket(void** state) {
  (void)state;
  open_n(NULL, NULL);
  assert_int_equal(ms_notify_ready(n, "worker 1 up\n(pid 42)"), 0);
  assert_string_equal(next_datagram(2000),
                      "READY=1\nSTATUS=worker 1 up (pid 42)");
  assert_int_equal(ms_notify_status(n, "restarted: limit"), 0);
  assert_string_equal(next_datagram(2000), "STATUS=restarted: limit");
  assert_int_equal(ms_notify_stopping(n), 0);
  assert_string_equal(next_datagram(2000), "STOPPING=1");
  assert_int_equal(ms_notify_watchdog_usec(n), 0);
}

static int pings;
static uv_poll_t poller;
static uv_timer_t failsafe;

static void sd_readable_cb(uv_poll_t* p, int status, int events) {
  (void)status;
  (void)events;
  if (strcmp(next_datagram(0), "WATCHDOG=1") == 0) pings++;
  if (pings == 3) {
    uv_close((uv_handle_t*)p, NULL);
    uv_close((uv_handle_t*)&failsafe, NULL);
  }
}

static void failsafe_cb(uv_timer_t* t) {
  (void)t;
  fail_msg("only %d watchdog pings in 10 s (WATCHDOG_USEC=100000)", pings);
}

/* Pings come from the loop's timer: run the loop until three arrive. */
static void watchdog_pings_while_the_loop_runs(void** state) {
  (void)state;
  char pid[16];
  snprintf(pid, sizeof(pid), "%d", getpid());
  open_n("100000", pid);
  assert_int_equal(ms_notify_watchdog_usec(n), 100000);
  pings = 0;
  uv_poll_init(&loop, &poller, sd);
  uv_poll_start(&poller, UV_READABLE, sd_readable_cb);
  uv_timer_init(&loop, &failsafe);
  uv_timer_start(&failsafe, failsafe_cb, 10000, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(pings, 3);
}

static void watchdog_of_another_pid_is_not_ours(void** state) {
  (void)state;
  open_n("100000", "1");
  assert_int_equal(ms_notify_watchdog_usec(n), 0);
  /* The loop has nothing of ours to run: an unref'd, stopped timer. */
  assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0);
  assert_string_equal(next_datagram(300), "");
}

static void no_socket_means_nothing_to_do(void** state) {
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(
      ms_notify_open(&loop, NULL, "100", NULL, &n, err, sizeof(err)), 0);
  assert_null(n);
  assert_int_equal(ms_notify_ready(n, "x"), 0);
  assert_int_equal(ms_notify_stopping(n), 0);
  ms_notify_close(n);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void bad_values_are_refused_with_a_reason(void** state) {
  (void)state;
  char longname[200];
  memset(longname, 'x', sizeof(longname) - 1);
  longname[0] = '/';
  longname[sizeof(longname) - 1] = '\0';
  static struct {
    const char *sock, *usec, *pid, *why;
  } bad[] = {
      {"run/systemd/notify", NULL, NULL, "absolute path or @abstract"},
      {"vsock:2:1", NULL, NULL, "absolute path or @abstract"},
      {NULL, NULL, NULL, "longer than"},
      {"/run/x", "10s", NULL, "WATCHDOG_USEC=10s"},
      {"/run/x", "-5", NULL, "WATCHDOG_USEC=-5"},
      {"/run/x", "100", "me", "WATCHDOG_PID=me"},
  };
  bad[2].sock = longname;
  assert_int_equal(uv_loop_init(&loop), 0);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    err[0] = '\0';
    assert_int_equal(ms_notify_open(&loop, bad[i].sock, bad[i].usec, bad[i].pid,
                                    &n, err, sizeof(err)),
                     -EINVAL);
    assert_null(n);
    if (strstr(err, bad[i].why) == NULL)
      fail_msg("case %zu: '%s' lacks '%s'", i, err, bad[i].why);
  }
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* systemd gone (socket removed): sends fail, nothing crashes. */
static void send_without_listener_returns_an_error(void** state) {
  (void)state;
  open_n(NULL, NULL);
  close(sd);
  unlink(name);
  sd = socket(AF_UNIX, SOCK_DGRAM, 0); /* for teardown */
  int r = ms_notify_ready(n, "x");
  assert_true(r == -ENOENT || r == -ECONNREFUSED);
}

static void env_filter_drops_systemd_variables_only(void** state) {
  (void)state;
  char* env[] = {"PATH=/bin",
                 "NOTIFY_SOCKET=/run/n",
                 "WATCHDOG_USEC=1",
                 "WATCHDOG_PID=2",
                 "LISTEN_FDS=1",
                 "LISTEN_PID=3",
                 "LISTEN_FDNAMES=a",
                 "LISTEN_FDSX=keep",
                 "NOTIFY=keep",
                 "MEMSUP_FD=3",
                 NULL};
  assert_int_equal(ms_notify_env_filter(env), 4);
  assert_string_equal(env[0], "PATH=/bin");
  assert_string_equal(env[1], "LISTEN_FDSX=keep");
  assert_string_equal(env[2], "NOTIFY=keep");
  assert_string_equal(env[3], "MEMSUP_FD=3");
  assert_null(env[4]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(ready_status_stopping_reach_the_socket,
                                      setup_path, teardown),
      cmocka_unit_test_setup_teardown(ready_status_stopping_reach_the_socket,
                                      setup_abstract, teardown),
      cmocka_unit_test_setup_teardown(watchdog_pings_while_the_loop_runs,
                                      setup_abstract, teardown),
      cmocka_unit_test_setup_teardown(watchdog_of_another_pid_is_not_ours,
                                      setup_path, teardown),
      cmocka_unit_test_setup_teardown(send_without_listener_returns_an_error,
                                      setup_path, teardown),
      cmocka_unit_test(no_socket_means_nothing_to_do),
      cmocka_unit_test(bad_values_are_refused_with_a_reason),
      cmocka_unit_test(env_filter_drops_systemd_variables_only),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
