/* test_sample.c: the /proc parsers on captured fixture texts, the full-read
 * schedule, and the sampler on real child processes holding known memory. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "reaper.h"
#include "sample.h"

#define KIB(x) ((uint64_t)(x) * 1024ull)
#define MIB(x) ((uint64_t)(x) << 20)
#define MS(x) ((uint64_t)(x) * 1000000ull)
#define SEC(x) ((uint64_t)(x) * 1000000000ull)

static char* fixture(const char* name) {
  const char* dir = getenv("MEMSUP_FIXTURES");
  char path[512];
  char* text;
  FILE* f;
  long n;

  snprintf(path, sizeof(path), "%s/%s", dir ? dir : "tests/fixtures", name);
  f = fopen(path, "r");
  if (f == NULL)
    fail_msg("open %s: %s (set MEMSUP_FIXTURES)", path, strerror(errno));
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  rewind(f);
  text = malloc((size_t)n + 1);
  assert_non_null(text);
  assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
  text[n] = '\0';
  fclose(f);
  return text;
}

static uint64_t now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * SEC(1) + (uint64_t)ts.tv_nsec;
}

/* Writes one byte per page so the compiler cannot drop the stores. */
static void touch(char* p, size_t len) {
  for (size_t i = 0; i < len; i += 4096) ((volatile char*)p)[i] = 1;
}

/* A child process: runs setup, says ready, lives until go is closed. */
typedef struct {
  pid_t pid;
  int go;
} child_t;

static child_t spawn(void (*setup)(void), int nready) {
  int ready[2], go[2];
  child_t c;
  char b;

  assert_int_equal(pipe(ready), 0);
  assert_int_equal(pipe(go), 0);
  c.pid = fork();
  assert_true(c.pid >= 0);
  if (c.pid == 0) {
    close(ready[0]);
    close(go[1]);
    if (setup) setup();
    /* Every process setup forked says ready, then waits for EOF. */
    if (write(ready[1], "r", 1) != 1 || read(go[0], &b, 1) < 0) _exit(1);
    _exit(0);
  }
  close(ready[1]);
  close(go[0]);
  while (nready-- > 0) assert_int_equal(read(ready[0], &b, 1), 1);
  close(ready[0]);
  c.go = go[1];
  return c;
}

static void reap(child_t c) {
  int st;
  close(c.go);
  assert_int_equal(waitpid(c.pid, &st, 0), c.pid);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void hold_64m_malloc(void) {
  char* p = malloc(MIB(64));
  if (p == NULL) _exit(2);
  touch(p, MIB(64));
}

static void hold_64m_file(void) {
  char path[] = "/var/tmp/memsup-sample-XXXXXX";
  char page[4096];
  char* p;
  int fd = mkstemp(path);

  if (fd < 0) _exit(2);
  unlink(path);
  memset(page, 'x', sizeof(page));
  for (size_t off = 0; off < MIB(64); off += sizeof(page))
    if (write(fd, page, sizeof(page)) != (ssize_t)sizeof(page)) _exit(2);
  /* Page-cache pages not yet written back count as Private_Dirty in
   * smaps even when mapped read-only, so write them back first. */
  if (fsync(fd) != 0) _exit(2);
  p = mmap(NULL, MIB(64), PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) _exit(2);
  for (size_t i = 0; i < MIB(64); i += 4096) (void)((volatile char*)p)[i];
}

static void hold_64m_lazyfree(void) {
  char* p = mmap(NULL, MIB(64), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) _exit(2);
  touch(p, MIB(64));
  if (madvise(p, MIB(64), MADV_FREE) != 0) _exit(2);
}

/* Leads a session of two processes, each holding 32 MiB of its own. */
static void session_of_two_32m(void) {
  char* p;
  if (setsid() < 0 || fork() < 0) _exit(2);
  p = malloc(MIB(32));
  if (p == NULL) _exit(2);
  touch(p, MIB(32));
}

static void status_fixture_gives_bytes(void** state) {
  (void)state;
  char* text = fixture("status_self.txt");
  ms_mem_t m;
  memset(&m, 0xff, sizeof(m));
  assert_int_equal(ms_parse_status(text, &m), 0);
  assert_int_equal(m.rss, KIB(1696));
  assert_int_equal(m.rss_anon, KIB(112));
  assert_int_equal(m.rss_file, KIB(1584));
  assert_int_equal(m.rss_shmem, 0);
  assert_int_equal(m.swap, 0);
  free(text);
}

static void status_fixture_with_swap_and_shmem(void** state) {
  (void)state;
  char* text = fixture("status_swapped.txt");
  ms_mem_t m = {0};
  assert_int_equal(ms_parse_status(text, &m), 0);
  assert_int_equal(m.swap, KIB(40960));
  assert_int_equal(m.rss_shmem, KIB(2048));
  assert_int_equal(m.rss_anon, KIB(112));
  free(text);
}

static void status_without_memory_lines_is_einval(void** state) {
  (void)state;
  const char* names[] = {"status_kthread.txt", "status_zombie.txt"};
  ms_mem_t m;
  for (size_t i = 0; i < 2; i++) {
    char* text = fixture(names[i]);
    assert_int_equal(ms_parse_status(text, &m), -EINVAL);
    free(text);
  }
  assert_int_equal(ms_parse_status("", &m), -EINVAL);
  assert_int_equal(ms_parse_status("garbage\n\x01\xff: 12 kB", &m), -EINVAL);
  assert_int_equal(ms_parse_status("VmRSS:\t-5 kB\nVmSwap: kB\n", &m), -EINVAL);
  /* A name must match whole: VmRSSx is not VmRSS. */
  assert_int_equal(ms_parse_status("VmRSSx:\t5 kB\n", &m), -EINVAL);
}

static void status_last_line_without_newline_is_read(void** state) {
  (void)state;
  ms_mem_t m;
  assert_int_equal(ms_parse_status("Name:\tx\nVmSwap:\t7 kB", &m), 0);
  assert_int_equal(m.swap, KIB(7));
  assert_int_equal(m.rss, 0);
}

static void rollup_fixture_gives_footprint(void** state) {
  (void)state;
  char* text = fixture("smaps_rollup_self.txt");
  ms_mem_t m = {0};
  m.rss = 7; /* a status field: the rollup's Rss line must not replace it */
  assert_int_equal(ms_parse_smaps_rollup(text, &m), 0);
  assert_int_equal(m.rss, 7);
  assert_int_equal(m.have, MS_HAVE_PSS_SPLIT | MS_HAVE_PSS_DIRTY);
  assert_int_equal(m.pss_anon, KIB(112));
  assert_int_equal(m.pss_file, KIB(312));
  assert_int_equal(m.pss, KIB(424));
  assert_int_equal(m.pss_dirty, KIB(112));
  assert_int_equal(m.shared_clean, KIB(1524));
  assert_int_equal(m.shared_dirty, 0);
  assert_int_equal(m.private_clean, KIB(60));
  assert_int_equal(m.private_dirty, KIB(112));
  assert_int_equal(m.anonymous, KIB(112));
  assert_int_equal(m.footprint, KIB(112));
  assert_int_equal(m.full, 1);
  free(text);
}

/* A hand-made text (LazyFree above Anonymous cannot happen on a real
 * kernel): the subtraction saturates, swap and shmem still count. */
static void rollup_fixture_with_swap_and_lazyfree(void** state) {
  (void)state;
  char* status = fixture("status_swapped.txt");
  char* text = fixture("smaps_rollup_swapped.txt");
  ms_mem_t m = {0};
  assert_int_equal(ms_parse_status(status, &m), 0);
  assert_int_equal(ms_parse_smaps_rollup(text, &m), 0);
  assert_int_equal(m.swap, KIB(40960));
  assert_int_equal(m.smaps_swap, KIB(40960));
  assert_int_equal(m.swap_pss, KIB(20480));
  assert_int_equal(m.lazyfree, KIB(8192));
  assert_int_equal(m.footprint, KIB(40960) + KIB(2048));
  assert_int_equal(ms_footprint(&m, 1), KIB(20480));
  free(status);
  free(text);
}

/* Captured here from "bloat --mode writemap --size 256": a 256 MiB file
 * written with write(2), then mapped read-only and read.  Its page-cache
 * pages are dirty until writeback, so Private_Dirty and Pss_Dirty carry
 * them; footprint does not. */
static void rollup_of_written_then_mapped_file_is_not_footprint(void** state) {
  (void)state;
  char* status = fixture("status_writemap.txt");
  char* text = fixture("smaps_rollup_writemap.txt");
  ms_mem_t m = {0};
  assert_int_equal(ms_parse_status(status, &m), 0);
  assert_int_equal(ms_parse_smaps_rollup(text, &m), 0);
  assert_true(m.private_dirty >= MIB(256));
  assert_true(m.pss_dirty >= MIB(256));
  assert_true(m.rss_file >= MIB(256));
  assert_int_equal(m.anonymous, KIB(1128));
  assert_int_equal(m.footprint, KIB(1128));
  assert_int_equal(ms_footprint(&m, 1), KIB(1128));
  free(status);
  free(text);
}

/* Captured from "bloat --mode memfd --max 128": 128 MiB written into a
 * memfd mapping.  Shmem: footprint, though Anonymous is 104 kB. */
static void rollup_of_memfd_is_footprint(void** state) {
  (void)state;
  char* status = fixture("status_memfd.txt");
  char* text = fixture("smaps_rollup_memfd.txt");
  ms_mem_t m = {0};
  assert_int_equal(ms_parse_status(status, &m), 0);
  assert_int_equal(ms_parse_smaps_rollup(text, &m), 0);
  assert_int_equal(m.rss_shmem, MIB(128));
  assert_int_equal(m.pss_shmem, MIB(128));
  assert_int_equal(m.anonymous, KIB(104));
  assert_int_equal(m.footprint, KIB(104) + MIB(128));
  assert_int_equal(ms_footprint(&m, 1), KIB(104) + MIB(128));
  free(status);
  free(text);
}

/* Captured from "bloat --mode lazyfree --size 256": all 256 MiB freed with
 * MADV_FREE.  Anonymous keeps them, LazyFree says so, Private_Dirty does
 * not (they are clean now). */
static void rollup_of_lazyfree_pages_is_not_footprint(void** state) {
  (void)state;
  char* text = fixture("smaps_rollup_lazyfree.txt");
  ms_mem_t m = {0};
  assert_int_equal(ms_parse_smaps_rollup(text, &m), 0);
  assert_true(m.anonymous >= MIB(256));
  assert_int_equal(m.lazyfree, MIB(256));
  assert_int_equal(m.footprint, m.anonymous - MIB(256));
  assert_true(m.footprint < MIB(1));
  assert_int_equal(ms_footprint(&m, 1), m.pss_anon - MIB(256));
  free(text);
}

/* The memfd capture with the lines older kernels do not print removed:
 * Linux 5.3-5.19 has no Pss_Dirty, Linux 4.14-5.2 no Pss_Anon, Pss_File,
 * Pss_Shmem either.  Absent fields are flagged, not read as 0 bytes, and a
 * tree member's footprint falls back to the Rss form. */
static void rollup_of_older_kernels(void** state) {
  (void)state;
  char* status = fixture("status_memfd.txt");
  char* v510 = fixture("smaps_rollup_memfd_linux5.10.txt");
  char* v419 = fixture("smaps_rollup_memfd_linux4.19.txt");
  ms_mem_t m = {0};

  assert_int_equal(ms_parse_status(status, &m), 0);
  assert_int_equal(ms_parse_smaps_rollup(v510, &m), 0);
  assert_int_equal(m.have, MS_HAVE_PSS_SPLIT);
  assert_int_equal(m.pss_dirty, 0);
  assert_int_equal(m.footprint, KIB(104) + MIB(128));
  assert_int_equal(ms_footprint(&m, 1), KIB(104) + MIB(128));

  assert_int_equal(ms_parse_smaps_rollup(v419, &m), 0);
  assert_int_equal(m.have, 0);
  assert_int_equal(m.pss_anon, 0);
  assert_int_equal(m.pss_shmem, 0);
  /* Pss_Shmem is missing: RssShmem from status stands in. */
  assert_int_equal(m.footprint, KIB(104) + MIB(128));
  assert_int_equal(ms_footprint(&m, 1), KIB(104) + MIB(128));
  /* Without status (rss_shmem 0) the old text would lose the shmem, which
   * is why the sampler reads status with every rollup. */
  m.rss_shmem = 0;
  assert_int_equal(ms_footprint(&m, 1), KIB(104));
  free(status);
  free(v510);
  free(v419);
}

static void rollup_garbage_is_einval(void** state) {
  (void)state;
  ms_mem_t m;
  char* text = fixture("status_self.txt");
  assert_int_equal(ms_parse_smaps_rollup("", &m), -EINVAL);
  assert_int_equal(ms_parse_smaps_rollup("0-1 ---p 0 0:0 0 [rollup]\n", &m),
                   -EINVAL);
  assert_int_equal(ms_parse_smaps_rollup("Rss\n:Pss 4 kB\n", &m), -EINVAL);
  /* A status text has none of the rollup's names. */
  assert_int_equal(ms_parse_smaps_rollup(text, &m), -EINVAL);
  free(text);
}

static void stat_session_is_field_6_after_the_last_paren(void** state) {
  (void)state;
  pid_t sid = 0;
  /* A command name may hold spaces and ')': fields count from the last. */
  assert_int_equal(ms_parse_stat_session("20787 (a) b) S 20786 20724 18701 0"
                                         " -1 4194304 132\n", &sid), 0);
  assert_int_equal(sid, 18701);
  assert_int_equal(ms_parse_stat_session("1 (init) S 0 1 1 0 -1\n", &sid), 0);
  assert_int_equal(sid, 1);
  sid = 7;
  assert_int_equal(ms_parse_stat_session("", &sid), -EINVAL);
  assert_int_equal(ms_parse_stat_session("20787 (a b S 1 2 3", &sid), -EINVAL);
  assert_int_equal(ms_parse_stat_session("20787 (a) S 1 2", &sid), -EINVAL);
  assert_int_equal(ms_parse_stat_session("20787 (a) S 1 2 x", &sid), -EINVAL);
  assert_int_equal(sid, 7);
}

static void children_list_gives_each_pid(void** state) {
  (void)state;
  const char* p = "20804 20805 2147483648 -3 20815 ";
  pid_t pid, want[] = { 20804, 20805, 0, 0, 20815 };
  size_t n = 0;
  while (ms_reaper_next_child(&p, &pid)) {
    assert_true(n < 5);
    /* Beyond pid_t or not positive: 0, never truncated into another pid. */
    assert_int_equal(pid, want[n++]);
  }
  assert_int_equal(n, 5);
  p = "";
  assert_int_equal(ms_reaper_next_child(&p, &pid), 0);
  p = "\n";
  assert_int_equal(ms_reaper_next_child(&p, &pid), 0);
}

static void full_read_due_when_none_yet(void** state) {
  (void)state;
  assert_true(ms_sample_full_due(SEC(5), 0, 0, MS(50), 0, UINT64_MAX));
}

static void full_read_near_limit_spaced_by_interval_or_cost(void** state) {
  (void)state;
  uint64_t last = SEC(100), iv = MS(50), near = MIB(100);
  /* Cheap read (50 us): every interval once the estimate is near. */
  assert_false(ms_sample_full_due(last + MS(49), last, 50000, iv, near, near));
  assert_true(ms_sample_full_due(last + MS(50), last, 50000, iv, near, near));
  /* A 27 ms read with the estimate barely over: at most one per 270 ms,
   * 10% of a core. */
  assert_false(
      ms_sample_full_due(last + MS(269), last, MS(27), iv, near, near));
  assert_true(
      ms_sample_full_due(last + MS(270), last, MS(27), iv, near, near));
  /* Clearly over (by 1/64 of the limit or more): confirmed at the next
   * tick whatever a read costs, since that is a leak crossing. */
  uint64_t clear = near + near / 64;
  assert_false(
      ms_sample_full_due(last + MS(49), last, MS(27), iv, clear, near));
  assert_true(ms_sample_full_due(last + MS(50), last, MS(27), iv, clear, near));
  assert_false(
      ms_sample_full_due(last + MS(50), last, MS(27), iv, clear - 1, near));
}

/* A worker started through "sh -c 'exec ./w'" changes its address space
 * after the sampler opened smaps_rollup; the sampler must follow it. */
static void sampler_follows_the_worker_through_exec(void** state) {
  (void)state;
  int go[2];
  char b;
  assert_int_equal(pipe(go), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(go[1]);
    if (read(go[0], &b, 1) < 0) _exit(1);
    execl("/bin/sleep", "sleep", "5", (char*)NULL);
    _exit(127);
  }
  close(go[0]);
  ms_sampler_t s;
  ms_mem_t m;
  ms_sampler_init(&s, pid, 0, MS(50));
  assert_int_equal(ms_sampler_take(&s, now(), UINT64_MAX, 1, &m), 0);
  close(go[1]); /* exec now */
  for (int i = 0; i < 200; i++) { /* until /proc shows the new image */
    char exe[256] = "", path[64];
    snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
    ssize_t n = readlink(path, exe, sizeof(exe) - 1);
    if (n > 0 && strstr(exe, "sleep")) break;
    usleep(10000);
  }
  assert_int_equal(ms_sampler_take(&s, now(), UINT64_MAX, 1, &m), 0);
  assert_int_equal(m.full, 1);
  assert_true(m.rss > 0);
  ms_sampler_free(&s);
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
}

static void full_read_in_background_every_second_or_200_costs(void** state) {
  (void)state;
  uint64_t last = SEC(100), iv = MS(50), near = MIB(100), cheap = 50000;
  /* Below the limit: cheap reads once a second, 27 ms reads every 5.4 s. */
  assert_false(
      ms_sample_full_due(last + MS(999), last, cheap, iv, near - 1, near));
  assert_true(
      ms_sample_full_due(last + SEC(1), last, cheap, iv, near - 1, near));
  assert_false(ms_sample_full_due(last + MS(5399), last, MS(27), iv, 0, near));
  assert_true(ms_sample_full_due(last + MS(5400), last, MS(27), iv, 0, near));
}

static void sampler_measures_64m_malloc_on_first_take(void** state) {
  (void)state;
  child_t c = spawn(hold_64m_malloc, 1);
  ms_sampler_t s;
  ms_mem_t m, m2;

  ms_sampler_init(&s, c.pid, 0, MS(50));
  assert_int_equal(ms_sampler_take(&s, now(), UINT64_MAX, 0, &m), 0);
  assert_int_equal(m.full, 1);
  assert_int_equal(m.nprocs, 1);
  assert_true(m.footprint >= MIB(64));
  assert_true(m.private_dirty >= MIB(64));
  assert_true(m.rss >= MIB(64) && m.rss_anon >= MIB(64));
  assert_true(m.cost_ns > 0 && s.full_cost_ns > 0);
  /* The next tick estimates from status, calibrated by the full read. */
  assert_int_equal(ms_sampler_take(&s, now(), UINT64_MAX, 0, &m2), 0);
  assert_int_equal(m2.full, 0);
  assert_true(m2.footprint >= MIB(63) && m2.footprint <= m.footprint + MIB(1));
  /* Forcing a full read measures again. */
  assert_int_equal(ms_sampler_take(&s, now(), UINT64_MAX, 1, &m2), 0);
  assert_int_equal(m2.full, 1);
  ms_sampler_free(&s);
  reap(c);
}


static void sampler_ignores_clean_file_pages(void** state) {
  (void)state;
  child_t c = spawn(hold_64m_file, 1);
  ms_sampler_t s;
  ms_mem_t m;

  ms_sampler_init(&s, c.pid, 0, MS(50));
  assert_int_equal(ms_sampler_take(&s, now(), UINT64_MAX, 0, &m), 0);
  assert_int_equal(m.full, 1);
  assert_true(m.rss >= MIB(64) && m.rss_file >= MIB(64));
  assert_true(m.footprint < MIB(16));
  ms_sampler_free(&s);
  reap(c);
}

static void sampler_ignores_lazyfree_pages(void** state) {
  (void)state;
  child_t c = spawn(hold_64m_lazyfree, 1);
  ms_sampler_t s;
  ms_mem_t m;

  ms_sampler_init(&s, c.pid, 0, MS(50));
  assert_int_equal(ms_sampler_take(&s, now(), UINT64_MAX, 0, &m), 0);
  assert_int_equal(m.full, 1);
  assert_true(m.lazyfree >= MIB(60));
  assert_true(m.rss_anon >= MIB(60)); /* status alone would call it bloat */
  assert_true(m.footprint < MIB(16));
  /* Calibration carries that over to the estimate of the next tick. */
  assert_int_equal(ms_sampler_take(&s, now(), UINT64_MAX, 0, &m), 0);
  assert_int_equal(m.full, 0);
  assert_true(m.footprint < MIB(16));
  ms_sampler_free(&s);
  reap(c);
}

static void sampler_grows_a_small_buffer(void** state) {
  (void)state;
  ms_sampler_t s;
  ms_mem_t m;

  ms_sampler_init(&s, getpid(), 0, MS(50));
  s.buf = malloc(8);
  s.bufcap = 8;
  assert_int_equal(ms_sampler_take(&s, now(), UINT64_MAX, 0, &m), 0);
  assert_true(s.bufcap > 1024);
  assert_true(m.rss > 0 && m.private_dirty > 0 && m.full == 1);
  ms_sampler_free(&s);
}

static void tree_sums_the_session(void** state) {
  (void)state;
  child_t c = spawn(session_of_two_32m, 2);
  pid_t pids[8];
  ms_sampler_t s;
  ms_mem_t m;
  uint64_t t;

  assert_int_equal(ms_session_pids(c.pid, pids, 8), 2);
  assert_int_equal(pids[0], c.pid);
  ms_sampler_init(&s, c.pid, 1, MS(50));
  t = now();
  assert_int_equal(ms_sampler_take(&s, t, UINT64_MAX, 0, &m), 0);
  assert_int_equal(m.nprocs, 2);
  assert_int_equal(m.full, 1);
  assert_true(m.footprint >= MIB(64));
  assert_true(m.pss >= MIB(64) && m.rss >= m.pss);
  /* rss is the sum of VmRSS on every tick, full or not: one figure for
   * --metric rss, not Pss on some ticks and VmRSS on others. */
  ms_mem_t est;
  assert_int_equal(ms_sampler_take(&s, t + MS(100), UINT64_MAX, 0, &est), 0);
  assert_int_equal(est.full, 0);
  assert_true(est.rss + MIB(2) >= m.rss && est.rss <= m.rss + MIB(2));
  /* A member that exits before the next rescan is skipped, not an error:
   * the grandchild stays a zombie (nobody reaps it) with no memory. */
  assert_int_equal(kill(s.pids[1], SIGKILL), 0);
  for (int i = 0; i < 100 && m.nprocs != 1; i++) {
    usleep(10000);
    assert_int_equal(ms_sampler_take(&s, t, UINT64_MAX, 1, &m), 0);
  }
  assert_int_equal(m.nprocs, 1);
  assert_true(m.footprint < MIB(48));
  ms_sampler_free(&s);
  reap(c);
}

static void exited_process_is_esrch(void** state) {
  (void)state;
  child_t c = spawn(NULL, 1);
  ms_sampler_t s, fresh, tree;
  pid_t pids[4];
  ms_mem_t m;

  ms_sampler_init(&s, c.pid, 0, MS(50));
  assert_int_equal(ms_sampler_take(&s, now(), UINT64_MAX, 0, &m), 0);
  reap(c);
  /* Cached fds still name the dead process; fresh opens find nothing. */
  assert_int_equal(ms_sampler_take(&s, now(), UINT64_MAX, 1, &m), -ESRCH);
  ms_sampler_init(&fresh, c.pid, 0, MS(50));
  assert_int_equal(ms_sampler_take(&fresh, now(), UINT64_MAX, 0, &m), -ESRCH);
  ms_sampler_init(&tree, c.pid, 1, MS(50));
  assert_int_equal(ms_sampler_take(&tree, now(), UINT64_MAX, 0, &m), -ESRCH);
  assert_int_equal(ms_session_pids(c.pid, pids, 4), -ESRCH);
  assert_int_equal(ms_session_pids(c.pid, pids, 0), -EINVAL);
  ms_sampler_free(&s);
  ms_sampler_free(&fresh);
  ms_sampler_free(&tree);
}

/* Writes 64 MiB with write(2) and maps it read-only, without fsync: the
 * page-cache pages stay dirty until writeback (~30 s). */
static void hold_64m_written_file(void) {
  char path[] = "/var/tmp/memsup-sample-XXXXXX";
  char chunk[1 << 16];
  char* p;
  int fd = mkstemp(path);

  if (fd < 0) _exit(2);
  unlink(path);
  memset(chunk, 'w', sizeof(chunk));
  for (size_t off = 0; off < MIB(64); off += sizeof(chunk))
    if (write(fd, chunk, sizeof(chunk)) != (ssize_t)sizeof(chunk)) _exit(2);
  p = mmap(NULL, MIB(64), PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) _exit(2);
  for (size_t i = 0; i < MIB(64); i += 4096) (void)((volatile char*)p)[i];
}

static void hold_64m_memfd(void) {
  int fd = memfd_create("test-ring", 0);
  char* p;

  if (fd < 0 || ftruncate(fd, (off_t)MIB(64)) != 0) _exit(2);
  p = mmap(NULL, MIB(64), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) _exit(2);
  touch(p, MIB(64));
}

/* Leads a session: touches 64 MiB, then forks a child that only reads
 * it, so every page is shared copy-on-write between the two. */
static void session_sharing_64m(void) {
  char* p;
  if (setsid() < 0) _exit(2);
  p = malloc(MIB(64));
  if (p == NULL) _exit(2);
  touch(p, MIB(64));
  if (fork() < 0) _exit(2);
}

/* A shell wrapper that did not exec: the leader holds nothing, its child
 * (same session) 64 MiB. */
static void session_wrapper_child_64m(void) {
  pid_t pid;
  if (setsid() < 0) _exit(2);
  pid = fork();
  if (pid < 0) _exit(2);
  if (pid == 0) {
    prctl(PR_SET_NAME, "python-ish");
    hold_64m_malloc();
  }
}

/* Footprint of a child that does nothing: what every forked child starts
 * with (the test's own anonymous pages, shared copy-on-write; several MiB
 * under ASan), the base the figures below are compared to. */
static uint64_t idle_child_footprint(void) {
  child_t c = spawn(NULL, 1);
  ms_sampler_t s;
  ms_mem_t m;

  ms_sampler_init(&s, c.pid, 0, MS(50));
  assert_int_equal(ms_sampler_take(&s, now(), UINT64_MAX, 1, &m), 0);
  ms_sampler_free(&s);
  reap(c);
  return m.footprint;
}

static void sampler_ignores_dirty_file_pages(void** state) {
  (void)state;
  uint64_t base = idle_child_footprint();
  child_t c = spawn(hold_64m_written_file, 1);
  ms_sampler_t s;
  ms_mem_t m;

  ms_sampler_init(&s, c.pid, 0, MS(50));
  assert_int_equal(ms_sampler_take(&s, now(), UINT64_MAX, 0, &m), 0);
  assert_int_equal(m.full, 1);
  /* Private_Dirty would say 64 MiB (the old definition): */
  assert_true(m.private_dirty >= MIB(60));
  assert_true(m.rss_file >= MIB(64));
  /* Margin: under ASan, mapping 64 MiB dirties its 8 MiB of shadow. */
  assert_true(m.footprint < base + MIB(16));
  ms_sampler_free(&s);
  reap(c);
}

static void sampler_counts_memfd_as_footprint(void** state) {
  (void)state;
  uint64_t base = idle_child_footprint();
  child_t c = spawn(hold_64m_memfd, 1);
  ms_sampler_t s;
  ms_mem_t m;

  ms_sampler_init(&s, c.pid, 0, MS(50));
  assert_int_equal(ms_sampler_take(&s, now(), UINT64_MAX, 0, &m), 0);
  assert_int_equal(m.full, 1);
  assert_true(m.anonymous < base + MIB(16)); /* ASan: 8 MiB of shadow */
  assert_true(m.rss_shmem >= MIB(64));
  assert_true(m.footprint >= MIB(64));
  /* The status estimate counts it too, so a crossing is seen early. */
  assert_int_equal(ms_sampler_take(&s, now(), UINT64_MAX, 0, &m), 0);
  assert_int_equal(m.full, 0);
  assert_true(m.footprint >= MIB(64));
  ms_sampler_free(&s);
  reap(c);
}

static void tree_counts_copy_on_write_pages_once(void** state) {
  (void)state;
  uint64_t base = idle_child_footprint();
  child_t c = spawn(session_sharing_64m, 2);
  ms_sampler_t s;
  ms_mem_t m;

  ms_sampler_init(&s, c.pid, 1, MS(50));
  assert_int_equal(ms_sampler_take(&s, now(), UINT64_MAX, 1, &m), 0);
  assert_int_equal(m.nprocs, 2);
  /* Each process maps all 64 MiB: Anonymous sums to 128 MiB, the Pss
   * forms to 64 MiB (plus shares of what both inherited from the test). */
  assert_true(m.anonymous >= MIB(128));
  assert_true(m.anonymous - m.pss_anon >= MIB(60));
  assert_true(m.pss_anon >= MIB(63) && m.pss_anon < base + MIB(72));
  assert_true(m.footprint >= MIB(63) && m.footprint < base + MIB(72));
  ms_sampler_free(&s);
  reap(c);
}

static void session_split_ranks_members(void** state) {
  (void)state;
  child_t c = spawn(session_wrapper_child_64m, 2);
  ms_proc_t procs[4];
  int n;

  size_t total = 0;
  n = ms_session_split(c.pid, 1, 0, procs, 4, &total);
  assert_int_equal(n, 2);
  assert_int_equal(total, 2);
  assert_true(procs[0].pid != c.pid);
  assert_string_equal(procs[0].comm, "python-ish");
  assert_true(procs[0].mem.footprint >= MIB(64));
  assert_true(procs[0].mem.full && procs[0].mem.nprocs == 1);
  assert_int_equal(procs[1].pid, c.pid);
  assert_true(procs[1].mem.footprint + MIB(48) < procs[0].mem.footprint);
  /* By RSS the same order here; max bounds what is stored. */
  memset(procs, 0, sizeof(procs));
  assert_int_equal(ms_session_split(c.pid, 1, 1, procs, 1, &total), 1);
  assert_int_equal(total, 2);
  assert_string_equal(procs[0].comm, "python-ish");
  assert_int_equal(procs[1].pid, 0);
  assert_int_equal(ms_session_split(c.pid, 1, 0, NULL, 1, NULL), -EINVAL);
  reap(c);
  assert_int_equal(ms_session_split(c.pid, 1, 0, procs, 4, NULL), -ESRCH);
}

static void descendants_dominate_at_twice_and_16m_over(void** state) {
  (void)state;
  assert_true(ms_descendants_dominate(MIB(16), MIB(32)));
  assert_false(ms_descendants_dominate(MIB(16), MIB(32) - 1));
  assert_true(ms_descendants_dominate(KIB(108), KIB(108) + MIB(16)));
  assert_false(ms_descendants_dominate(KIB(108), KIB(108) + MIB(16) - 1));
  assert_false(ms_descendants_dominate(MIB(100), MIB(100)));
  assert_false(ms_descendants_dominate(0, 0));
}

static void descendants_found_once_and_rate_limited(void** state) {
  (void)state;
  child_t c = spawn(session_wrapper_child_64m, 2);
  ms_sampler_t s;
  ms_descendants_t d;
  ms_mem_t m;
  uint64_t t = now();

  ms_sampler_init(&s, c.pid, 0, MS(50));
  assert_int_equal(ms_sampler_take(&s, t, UINT64_MAX, 0, &m), 0);
  /* Against a worker as big as them, they do not dominate; the next scan
   * waits MS_DESC_EVERY_NS. */
  assert_int_equal(ms_sampler_descendants(&s, t, MIB(64), &d), 0);
  assert_int_equal(d.nprocs, 1);
  assert_true(d.footprint >= MIB(64));
  assert_true(m.footprint + MIB(48) < d.footprint); /* the leader: little */
  assert_true(s.desc_next_ns >= t + MS_DESC_EVERY_NS);
  d.nprocs = 99;
  assert_int_equal(
      ms_sampler_descendants(&s, t + MS_DESC_EVERY_NS - 1, m.footprint, &d),
      0);
  assert_int_equal(d.nprocs, 99); /* not scanned */
  t = s.desc_next_ns;
  assert_int_equal(ms_sampler_descendants(&s, t, m.footprint, &d), 1);
  assert_int_equal(d.nprocs, 1);
  assert_string_equal(d.top_comm, "python-ish");
  assert_true(d.top_pid > 0 && d.top_pid != c.pid);
  assert_true(d.top_footprint >= MIB(64));
  /* Once found, never again. */
  assert_int_equal(ms_sampler_descendants(&s, t + SEC(3600), 0, &d), 0);
  ms_sampler_free(&s);
  reap(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(status_fixture_gives_bytes),
    cmocka_unit_test(status_fixture_with_swap_and_shmem),
    cmocka_unit_test(status_without_memory_lines_is_einval),
    cmocka_unit_test(status_last_line_without_newline_is_read),
    cmocka_unit_test(rollup_fixture_gives_footprint),
    cmocka_unit_test(rollup_fixture_with_swap_and_lazyfree),
    cmocka_unit_test(rollup_of_written_then_mapped_file_is_not_footprint),
    cmocka_unit_test(rollup_of_memfd_is_footprint),
    cmocka_unit_test(rollup_of_lazyfree_pages_is_not_footprint),
    cmocka_unit_test(rollup_of_older_kernels),
    cmocka_unit_test(rollup_garbage_is_einval),
    cmocka_unit_test(stat_session_is_field_6_after_the_last_paren),
    cmocka_unit_test(children_list_gives_each_pid),
    cmocka_unit_test(full_read_due_when_none_yet),
    cmocka_unit_test(full_read_near_limit_spaced_by_interval_or_cost),
    cmocka_unit_test(sampler_follows_the_worker_through_exec),
    cmocka_unit_test(full_read_in_background_every_second_or_200_costs),
    cmocka_unit_test(sampler_measures_64m_malloc_on_first_take),
    cmocka_unit_test(sampler_ignores_clean_file_pages),
    cmocka_unit_test(sampler_ignores_lazyfree_pages),
    cmocka_unit_test(sampler_grows_a_small_buffer),
    cmocka_unit_test(sampler_ignores_dirty_file_pages),
    cmocka_unit_test(sampler_counts_memfd_as_footprint),
    cmocka_unit_test(tree_sums_the_session),
    cmocka_unit_test(tree_counts_copy_on_write_pages_once),
    cmocka_unit_test(session_split_ranks_members),
    cmocka_unit_test(descendants_dominate_at_twice_and_16m_over),
    cmocka_unit_test(descendants_found_once_and_rate_limited),
    cmocka_unit_test(exited_process_is_esrch),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
