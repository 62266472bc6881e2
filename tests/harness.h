/* harness.h: runs the real memsup binary for the integration tests.
 *
 * Each h_run_t owns one memsup process and a temp dir holding its stdout,
 * stderr and restart log; h_setup/h_teardown (cmocka fixtures) create it
 * and, even when a test fails, kill memsup and its workers and remove the
 * dir.  Environment: MEMSUP_BIN (default build/memsup), MEMSUP_EXAMPLES
 * (default build/examples), MEMSUP_WRAPPER (e.g. "valgrind -q", split on
 * spaces), MEMSUP_SLOW (multiply every deadline by 10), MEMSUP_IT_JOBS
 * (tests run at once, each in a process of its own; h_run_group_tests).
 */
#ifndef MS_HARNESS_H
#define MS_HARNESS_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

typedef struct {
  pid_t pid;     /* memsup, 0 before h_start / after reaping */
  int status;    /* exit code once reaped (128+N for signal N) */
  char dir[256]; /* per-test temp dir */
  char out[300], err[300], log[300]; /* files inside dir */
  pid_t other; /* a process of the test's own (h_spawn), 0 when none */
} h_run_t;

/* cmocka fixtures: *state becomes a fresh h_run_t; teardown stops
 * everything it started and removes the temp dir. */
int h_setup(void** state);
int h_teardown(void** state);

/* Starts $MEMSUP_WRAPPER $MEMSUP_BIN args... with stdin /dev/null and
 * stdout/stderr to h->out/h->err.  The list ends with NULL. */
void h_start(h_run_t* h, const char* arg, ...);
void h_startv(h_run_t* h, const char* const* argv);
/* When set, h_startv's child calls it just before exec (after stdio is
 * set up): what memsup inherits from its parent (an ignored signal, the
 * subreaper bit). */
extern void (*h_pre_exec)(void);
/* Waits for memsup to exit; returns its exit code.  On timeout it kills
 * memsup, prints what it wrote, fails the test and returns -1. */
int h_wait(h_run_t* h, int timeout_ms);
/* Sends sig to memsup. */
void h_signal(h_run_t* h, int sig);
/* Ends memsup the way a crash would: freezes it, SIGKILLs its workers'
 * process groups, then memsup, and reaps it.  It writes nothing more. */
void h_kill(h_run_t* h);
/* Runs a second, short-lived $MEMSUP_BIN (e.g. "report", ...; the list
 * ends with NULL) to completion, stdout/stderr to <dir>/<name>.out and
 * .err; returns its exit code (-1 and a failed test on timeout). */
int h_tool(h_run_t* h, const char* name, int timeout_ms, const char* arg, ...);
/* Starts argv (not memsup: e.g. a worker for memsup watch) with stdio on
 * /dev/null and stores its pid in h->other; teardown kills it unless the
 * test reaped it and reset h->other to 0. */
pid_t h_spawn(h_run_t* h, const char* const* argv);

/* Complete lines of the log whose "event" equals event (NULL: all), as a
 * new cJSON array the caller deletes.  A partial last line is skipped; a
 * complete line that is not a JSON object fails the test. */
cJSON* h_events(h_run_t* h, const char* event);
/* The same for any JSON-lines file (a --sample-log, a rotated FILE.1). */
cJSON* h_events_in(const char* path, const char* event);
int h_count(h_run_t* h, const char* event);
/* Polls until at least n such lines exist or timeout; returns the count
 * seen last (printing memsup's stderr when it is short of n). */
int h_wait_event(h_run_t* h, const char* event, int n, int timeout_ms);

/* "$MEMSUP_EXAMPLES/name" (a static buffer, one of 8 in rotation). */
const char* h_example(const char* name);
/* "<h->dir>/name" (same rotation). */
const char* h_path(h_run_t* h, const char* name);
/* Whole file as a malloc'ed string, or NULL when it cannot be read. */
char* h_read_file(const char* path);
int h_stderr_contains(h_run_t* h, const char* needle);
/* Pid from the k-th (0-based) "bloat[pid N]" start line in stdout, waiting
 * for it up to timeout_ms; -1 when it did not appear. */
pid_t h_worker_pid(h_run_t* h, int k, int timeout_ms);
/* A field of /proc/pid/status in bytes ("VmRSS"), or 0 when unreadable. */
uint64_t h_proc_bytes(pid_t pid, const char* field);
/* Children of every thread of pid into out; returns how many. */
int h_children(pid_t pid, pid_t* out, int max);
/* Process state letter from /proc/pid/stat, or 0 when the pid is gone. */
char h_proc_state(pid_t pid);

/* Deadline in ms, x10 when MEMSUP_SLOW is set.  Deadlines only bound
 * waiting; no test asserts a duration. */
int h_ms(int ms);
void h_sleep_ms(int ms);

/* Every it_*.c's cmocka_run_group_tests(tests, setup, teardown) comes
 * here.  With MEMSUP_IT_JOBS=N (N > 1) and no group fixtures, each test
 * runs in a process of its own (forked: its own fds, signal dispositions,
 * statics, cwd), up to N at a time, since most of a test's time is spent
 * waiting on real workers; each test's output is printed whole, in the
 * order of the table, followed by one summary.  Otherwise (unset, 1, or
 * group fixtures) it is cmocka's own runner, one test after the other.
 * Either way it returns the number of failed tests. */
int h_run_group_tests(const char* group, const struct CMUnitTest* tests,
                      size_t n, CMFixtureFunction group_setup,
                      CMFixtureFunction group_teardown);
#undef cmocka_run_group_tests
#define cmocka_run_group_tests(group_tests, group_setup, group_teardown)    \
  h_run_group_tests(#group_tests, group_tests,                              \
                    sizeof(group_tests) / sizeof((group_tests)[0]),         \
                    group_setup, group_teardown)

/* Members of a log line; a missing member or a wrong type fails the test.
 * h_str returns NULL for a JSON null. */
cJSON* h_get(const cJSON* obj, const char* key);
double h_num(const cJSON* obj, const char* key);
const char* h_str(const cJSON* obj, const char* key);

#endif
