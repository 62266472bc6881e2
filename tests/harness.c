/* harness.c: start, watch and clean up real memsup processes for the
 * integration tests.  It reads only what memsup leaves outside itself:
 * exit status, stdout/stderr files, the JSON-lines log and /proc.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char bufs[8][512];
static unsigned next_buf;

static char* rotating(void) {
  return bufs[next_buf++ % 8];
}

int h_ms(int ms) {
  return getenv("MEMSUP_SLOW") && *getenv("MEMSUP_SLOW") ? ms * 10 : ms;
}

void h_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char* h_example(const char* name) {
  const char* dir = getenv("MEMSUP_EXAMPLES");
  char* b = rotating();
  snprintf(b, sizeof(bufs[0]), "%s/%s", dir ? dir : "build/examples", name);
  return b;
}

const char* h_path(h_run_t* h, const char* name) {
  char* b = rotating();
  snprintf(b, sizeof(bufs[0]), "%s/%s", h->dir, name);
  return b;
}

char* h_read_file(const char* path) {
  FILE* f = fopen(path, "re");
  if (!f) return NULL;
  size_t len = 0, cap = 4096;
  char* s = malloc(cap);
  size_t n;
  while (s && (n = fread(s + len, 1, cap - len - 1, f)) > 0) {
    len += n;
    if (cap - len < 2) s = realloc(s, cap *= 2);
  }
  fclose(f);
  if (s) s[len] = '\0';
  return s;
}

int h_stderr_contains(h_run_t* h, const char* needle) {
  char* s = h_read_file(h->err);
  int found = s && strstr(s, needle) != NULL;
  free(s);
  return found;
}

static void dump(h_run_t* h, const char* why) {
  char* err = h_read_file(h->err);
  char* log = h_read_file(h->log);
  print_error("%s\n--- memsup stderr:\n%s\n--- log:\n%s\n", why,
              err ? err : "(none)", log ? log : "(none)");
  free(err);
  free(log);
}

/* Children of every thread of pid (a reparented orphan may land on any). */
int h_children(pid_t pid, pid_t* out, int max) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
  DIR* d = opendir(path);
  int n = 0;
  struct dirent* e;
  while (d && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char cpath[400];
    snprintf(cpath, sizeof(cpath), "%s/%s/children", path, e->d_name);
    char* s = h_read_file(cpath);
    for (char* p = s; p && *p && n < max;) {
      char* end;
      long v = strtol(p, &end, 10);
      if (end == p) break;
      out[n++] = (pid_t)v;
      p = end;
    }
    free(s);
  }
  if (d) closedir(d);
  return n;
}

/* Freezes memsup so it spawns nothing more, kills the process group of
 * each of its children (workers run in their own session), then memsup. */
static void kill_all(h_run_t* h) {
  if (h->pid <= 0) return;
  kill(h->pid, SIGSTOP);
  pid_t kids[64];
  int n = h_children(h->pid, kids, 64);
  for (int i = 0; i < n; i++) {
    kill(-kids[i], SIGKILL);
    kill(kids[i], SIGKILL);
  }
  kill(h->pid, SIGKILL);
  waitpid(h->pid, NULL, 0);
  h->pid = 0;
}

int h_setup(void** state) {
  h_run_t* h = calloc(1, sizeof(*h));
  const char* tmp = getenv("TMPDIR");
  snprintf(h->dir, sizeof(h->dir), "%s/memsup-it-XXXXXX", tmp ? tmp : "/tmp");
  if (!mkdtemp(h->dir)) {
    free(h);
    return -1;
  }
  snprintf(h->out, sizeof(h->out), "%s/stdout", h->dir);
  snprintf(h->err, sizeof(h->err), "%s/stderr", h->dir);
  snprintf(h->log, sizeof(h->log), "%s/log.jsonl", h->dir);
  h->status = -1;
  *state = h;
  return 0;
}

static int rm_entry(const char* path, const struct stat* sb, int flag,
                    struct FTW* ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

int h_teardown(void** state) {
  h_run_t* h = *state;
  kill_all(h);
  if (h->other > 0) {
    kill(h->other, SIGKILL);
    waitpid(h->other, NULL, 0);
  }
  nftw(h->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(h);
  return 0;
}

void (*h_pre_exec)(void);

void h_startv(h_run_t* h, const char* const* argv) {
  const char* args[128];
  int n = 0;
  char* wrapper =
      getenv("MEMSUP_WRAPPER") ? strdup(getenv("MEMSUP_WRAPPER")) : NULL;
  char* save = NULL;
  for (char* t = wrapper ? strtok_r(wrapper, " ", &save) : NULL; t && n < 64;
       t = strtok_r(NULL, " ", &save))
    args[n++] = t;
  args[n++] = getenv("MEMSUP_BIN") ? getenv("MEMSUP_BIN") : "build/memsup";
  for (int i = 0; argv[i] && n < 127; i++) args[n++] = argv[i];
  args[n] = NULL;

  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    int in = open("/dev/null", O_RDONLY);
    int out = open(h->out, O_WRONLY | O_CREAT | O_APPEND, 0644);
    int err = open(h->err, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
        dup2(err, 2) < 0)
      _exit(111);
    if (h_pre_exec) h_pre_exec();
    execvp(args[0], (char* const*)args);
    dprintf(2, "harness: exec %s: %s\n", args[0], strerror(errno));
    _exit(111);
  }
  free(wrapper);
  assert_true(pid > 0);
  h->pid = pid;
  h->status = -1;
}

void h_start(h_run_t* h, const char* arg, ...) {
  const char* argv[128];
  int n = 0;
  va_list ap;
  va_start(ap, arg);
  for (const char* a = arg; a && n < 127; a = va_arg(ap, const char*))
    argv[n++] = a;
  va_end(ap);
  argv[n] = NULL;
  h_startv(h, argv);
}

int h_wait(h_run_t* h, int timeout_ms) {
  if (h->pid <= 0) return h->status;
  int64_t deadline = now_ms() + h_ms(timeout_ms);
  int st;
  for (;;) {
    pid_t r = waitpid(h->pid, &st, WNOHANG);
    if (r == h->pid) break;
    if (now_ms() >= deadline) {
      dump(h, "memsup did not exit in time");
      kill_all(h);
      fail_msg("memsup still running after %d ms", h_ms(timeout_ms));
      return -1;
    }
    h_sleep_ms(10);
  }
  h->pid = 0;
  h->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return h->status;
}

void h_signal(h_run_t* h, int sig) {
  assert_true(h->pid > 0);
  assert_int_equal(kill(h->pid, sig), 0);
}

cJSON* h_events(h_run_t* h, const char* event) {
  return h_events_in(h->log, event);
}

cJSON* h_events_in(const char* path, const char* event) {
  cJSON* arr = cJSON_CreateArray();
  char* s = h_read_file(path);
  for (char *line = s, *nl; line && (nl = strchr(line, '\n')); line = nl + 1) {
    cJSON* obj = cJSON_ParseWithLength(line, (size_t)(nl - line));
    if (!cJSON_IsObject(obj)) {
      *nl = '\0';
      cJSON_Delete(obj);
      cJSON_Delete(arr);
      fail_msg("log line is not a JSON object: %s", line);
    }
    const char* ev =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, "event"));
    if (!event || (ev && strcmp(ev, event) == 0))
      cJSON_AddItemToArray(arr, obj);
    else
      cJSON_Delete(obj);
  }
  free(s);
  return arr;
}

void h_kill(h_run_t* h) {
  kill_all(h);
  h->status = 128 + SIGKILL;
}

int h_tool(h_run_t* h, const char* name, int timeout_ms, const char* arg, ...) {
  const char* argv[128];
  int n = 0;
  va_list ap;
  va_start(ap, arg);
  for (const char* a = arg; a && n < 127; a = va_arg(ap, const char*))
    argv[n++] = a;
  va_end(ap);
  argv[n] = NULL;
  /* A copy of h with its own output files, so h's memsup is untouched. */
  h_run_t t = *h;
  snprintf(t.out, sizeof(t.out), "%s/%s.out", h->dir, name);
  snprintf(t.err, sizeof(t.err), "%s/%s.err", h->dir, name);
  snprintf(t.log, sizeof(t.log), "%s/%s.none", h->dir, name);
  h_startv(&t, argv);
  return h_wait(&t, timeout_ms);
}

pid_t h_spawn(h_run_t* h, const char* const* argv) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open("/dev/null", O_RDWR);
    if (fd < 0 || dup2(fd, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
      _exit(111);
    execvp(argv[0], (char* const*)argv);
    _exit(127);
  }
  assert_true(pid > 0);
  h->other = pid;
  return pid;
}

int h_count(h_run_t* h, const char* event) {
  cJSON* arr = h_events(h, event);
  int n = cJSON_GetArraySize(arr);
  cJSON_Delete(arr);
  return n;
}

int h_wait_event(h_run_t* h, const char* event, int n, int timeout_ms) {
  int64_t deadline = now_ms() + h_ms(timeout_ms);
  int got;
  while ((got = h_count(h, event)) < n && now_ms() < deadline) h_sleep_ms(20);
  if (got < n) {
    char why[128];
    snprintf(why, sizeof(why), "only %d of %d \"%s\" lines after %d ms", got, n,
             event ? event : "(any)", h_ms(timeout_ms));
    dump(h, why);
  }
  return got;
}

pid_t h_worker_pid(h_run_t* h, int k, int timeout_ms) {
  int64_t deadline = now_ms() + h_ms(timeout_ms);
  for (;;) {
    char* s = h_read_file(h->out);
    const char* p = s;
    int i = 0;
    pid_t pid = -1;
    while (p && (p = strstr(p, "bloat[pid ")) != NULL) {
      p += strlen("bloat[pid ");
      if (i++ == k) {
        pid = (pid_t)atoi(p);
        break;
      }
    }
    free(s);
    if (pid > 0 || now_ms() >= deadline) return pid;
    h_sleep_ms(10);
  }
}

uint64_t h_proc_bytes(pid_t pid, const char* field) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
  char* s = h_read_file(path);
  uint64_t v = 0;
  char key[64];
  snprintf(key, sizeof(key), "\n%s:", field);
  char* p = s ? strstr(s, key) : NULL;
  if (p) v = strtoull(p + strlen(key), NULL, 10) * 1024;
  free(s);
  return v;
}

char h_proc_state(pid_t pid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  char* s = h_read_file(path);
  /* The state follows the last ')': the command name may contain one. */
  char* p = s ? strrchr(s, ')') : NULL;
  char st = p && p[1] == ' ' ? p[2] : 0;
  free(s);
  return st;
}

cJSON* h_get(const cJSON* obj, const char* key) {
  cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v) fail_msg("log line has no \"%s\"", key);
  return v;
}

double h_num(const cJSON* obj, const char* key) {
  cJSON* v = h_get(obj, key);
  if (!cJSON_IsNumber(v)) fail_msg("\"%s\" is not a number", key);
  return v->valuedouble;
}

const char* h_str(const cJSON* obj, const char* key) {
  cJSON* v = h_get(obj, key);
  return cJSON_IsNull(v) ? NULL : cJSON_GetStringValue(v);
}

/* ---- running a group's tests side by side (h_run_group_tests) ---- */

typedef struct {
  pid_t pid;      /* its process while it runs, else 0 */
  int fd;         /* its stdout and stderr: an unlinked temp file */
  int status;     /* wait status once reaped */
  int done;       /* reaped */
  int64_t start;  /* ms */
  double secs;
} h_job_t;

/* Copies one test's output to stdout without cmocka's one-test header and
 * summary (the group gets one summary at the end); anything else, such as
 * a sanitizer's report at exit, is kept. */
static void print_job_output(int fd) {
  size_t len = 0, cap = 4096;
  char* s = malloc(cap);
  ssize_t r;
  while (s && (r = pread(fd, s + len, cap - len - 1, (off_t)len)) > 0) {
    len += (size_t)r;
    if (cap - len < 2) s = realloc(s, cap *= 2);
  }
  if (!s) return;
  s[len] = '\0';
  int summary = 0;
  for (char *line = s, *nl; *line; line = nl ? nl + 1 : line + strlen(line)) {
    nl = strchr(line, '\n');
    size_t n = nl ? (size_t)(nl - line) : strlen(line);
    int drop = strncmp(line, "[==========]", 12) == 0;
    if (drop && strstr(line, " test(s) run.") && (size_t)(strstr(line, " test(s) run.") - line) < n)
      summary = 1;
    if (summary && (n == 0 || strncmp(line, "[  PASSED  ]", 12) == 0 ||
                    strncmp(line, "[  FAILED  ]", 12) == 0 ||
                    strncmp(line, "[  SKIPPED ]", 12) == 0 ||
                    (n > 2 && line[0] == ' ' && strstr(line, " TEST(S)") &&
                     (size_t)(strstr(line, " TEST(S)") - line) < n)))
      drop = 1;
    if (!drop) printf("%.*s\n", (int)n, line);
  }
  free(s);
  fflush(stdout);
}

/* Whether a line of the test's output starts with prefix. */
static int job_said(int fd, const char* prefix) {
  char buf[65536], line[128];
  ssize_t r = pread(fd, buf, sizeof(buf) - 1, 0);
  buf[r > 0 ? r : 0] = '\0';
  snprintf(line, sizeof(line), "\n%s", prefix);
  return strncmp(buf, prefix, strlen(prefix)) == 0 || strstr(buf, line) != NULL;
}

static void start_job(h_job_t* job, size_t n, size_t i,
                      const struct CMUnitTest* test) {
  const char* tmp = getenv("TMPDIR");
  char path[512];
  snprintf(path, sizeof(path), "%s/memsup-it-out-XXXXXX", tmp ? tmp : "/tmp");
  int fd = mkstemp(path);
  if (fd < 0) {
    perror("h_run_group_tests: mkstemp");
    exit(1);
  }
  unlink(path);
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    perror("h_run_group_tests: fork");
    exit(1);
  }
  if (pid == 0) {
    /* The test sees what it would see alone: no other test's files. */
    for (size_t j = 0; j < n; j++)
      if (job[j].fd >= 0) close(job[j].fd);
    if (dup2(fd, 1) < 0 || dup2(fd, 2) < 0) _exit(111);
    close(fd);
    setvbuf(stdout, NULL, _IONBF, 0);
    int failed = _cmocka_run_group_tests(test->name, test, 1, NULL, NULL);
    /* exit, not _exit: a sanitizer's leak check runs at exit. */
    exit(failed ? 1 : 0);
  }
  job[i].pid = pid;
  job[i].fd = fd;
  job[i].start = now_ms();
}

int h_run_group_tests(const char* group, const struct CMUnitTest* tests,
                      size_t n, CMFixtureFunction group_setup,
                      CMFixtureFunction group_teardown) {
  const char* env = getenv("MEMSUP_IT_JOBS");
  int jobs = env ? atoi(env) : 1;
  if (jobs <= 1 || n <= 1 || group_setup || group_teardown)
    return _cmocka_run_group_tests(group, tests, n, group_setup,
                                   group_teardown);
  h_job_t* job = calloc(n, sizeof(*job));
  assert_non_null(job);
  for (size_t i = 0; i < n; i++) job[i].fd = -1;
  size_t next = 0, shown = 0;
  int running = 0, failed = 0, skipped = 0;
  printf("[==========] Running %zu test(s), up to %d at a time.\n", n, jobs);
  fflush(stdout);
  while (shown < n) {
    while (running < jobs && next < n) {
      start_job(job, n, next, &tests[next]);
      next++;
      running++;
    }
    int st;
    pid_t pid = waitpid(-1, &st, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      perror("h_run_group_tests: waitpid");
      exit(1);
    }
    for (size_t i = 0; i < n; i++)
      if (job[i].pid == pid && !job[i].done) {
        job[i].done = 1;
        job[i].status = st;
        job[i].secs = (double)(now_ms() - job[i].start) / 1000.0;
        running--;
      }
    /* In table order: each test's output once it and those before it are
     * done. */
    for (; shown < n && job[shown].done; shown++) {
      h_job_t* j = &job[shown];
      print_job_output(j->fd);
      int ok = WIFEXITED(j->status) && WEXITSTATUS(j->status) == 0;
      if (!ok) {
        failed++;
        if (WIFSIGNALED(j->status))
          printf("[  FAILED  ] %s: its process was killed by signal %d\n",
                 tests[shown].name, WTERMSIG(j->status));
        else if (WEXITSTATUS(j->status) != 1 || !job_said(j->fd, "[  FAILED  ] "))
          /* e.g. a sanitizer's report at exit, after the test passed */
          printf("[  FAILED  ] %s: its process exited with %d\n",
                 tests[shown].name, WEXITSTATUS(j->status));
      } else if (job_said(j->fd, "[  SKIPPED ] ")) {
        skipped++;
      }
      if (j->secs >= 1.0) /* where the time goes; never checked */
        printf("[   TIME   ] %s: %.1f s\n", tests[shown].name, j->secs);
      fflush(stdout);
      close(j->fd);
      j->fd = -1;
    }
  }
  printf("[==========] %zu test(s) run.\n", n);
  printf("[  PASSED  ] %zu test(s).\n", n - (size_t)failed - (size_t)skipped);
  if (skipped) printf("[  SKIPPED ] %d test(s).\n", skipped);
  if (failed) {
    printf("[  FAILED  ] %d test(s), listed below:\n", failed);
    for (size_t i = 0; i < n; i++)
      if (!WIFEXITED(job[i].status) || WEXITSTATUS(job[i].status) != 0)
        printf("[  FAILED  ] %s\n", tests[i].name);
    printf("\n %d FAILED TEST(S)\n", failed);
  }
  fflush(stdout);
  free(job);
  return failed;
}
