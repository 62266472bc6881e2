/* test_evidence.c: mapping classes, the smaps parser on a captured fixture,
 * hand-made and 60,000-mapping texts, the reader on real child processes
 * holding known memory, the classification rules at their boundaries, and
 * the JSON evidence. */
#include <errno.h>
#include <fcntl.h>
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

#include "evidence.h"

#define KIB(x) ((uint64_t)(x)*1024ull)
#define MIB(x) ((uint64_t)(x) << 20)

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

/* Appends one mapping in the kernel's full format (every key, in order),
 * with Anonymous and LazyFree as given. */
static size_t put_mapping_anon(char* buf, size_t at, uint64_t start,
                               const char* name, unsigned size, unsigned rss,
                               unsigned pd, unsigned swap, unsigned anon,
                               unsigned lazy) {
  static const char fmt[] =
      "%012llx-%012llx rw-p 00000000 00:00 0%s%s\n"
      "Size:           %8u kB\n"
      "KernelPageSize:        4 kB\n"
      "MMUPageSize:           4 kB\n"
      "Rss:            %8u kB\n"
      "Pss:            %8u kB\n"
      "Pss_Dirty:      %8u kB\n"
      "Shared_Clean:          0 kB\n"
      "Shared_Dirty:          0 kB\n"
      "Private_Clean:         0 kB\n"
      "Private_Dirty:  %8u kB\n"
      "Referenced:     %8u kB\n"
      "Anonymous:      %8u kB\n"
      "KSM:                   0 kB\n"
      "LazyFree:       %8u kB\n"
      "AnonHugePages:         0 kB\n"
      "ShmemPmdMapped:        0 kB\n"
      "FilePmdMapped:         0 kB\n"
      "Shared_Hugetlb:        0 kB\n"
      "Private_Hugetlb:       0 kB\n"
      "Swap:           %8u kB\n"
      "SwapPss:        %8u kB\n"
      "Locked:                0 kB\n"
      "THPeligible:           0\n"
      "VmFlags: rd wr mr mw me ac sd\n";
  const char* pad = *name ? "                          " : " ";

  return at + (size_t)sprintf(buf + at, fmt, (unsigned long long)start,
                              (unsigned long long)start + size * 1024ull, pad,
                              name, size, rss, rss, pd, pd, rss, anon, lazy,
                              swap, swap);
}

/* The same with every resident page anonymous (heap, arenas, stacks). */
static size_t put_mapping(char* buf, size_t at, uint64_t start,
                          const char* name, unsigned size, unsigned rss,
                          unsigned pd, unsigned swap) {
  return put_mapping_anon(buf, at, start, name, size, rss, pd, swap, rss, 0);
}

static const ms_mapping_t* find_row(const ms_mapping_t* rows, int n,
                                    ms_map_class_t cls, const char* name) {
  for (int i = 0; i < n; i++)
    if (rows[i].cls == cls && strcmp(rows[i].name, name) == 0) return &rows[i];
  return NULL;
}

static void map_class_of_each_kind_of_name(void** state) {
  (void)state;
  static const struct {
    const char* name;
    ms_map_class_t cls;
  } cases[] = {
      {"[heap]", MS_MAP_HEAP},
      {"", MS_MAP_ANON},
      {"[anon: glibc: malloc arena]", MS_MAP_ANON},
      {"/usr/lib/x86_64-linux-gnu/libc.so.6", MS_MAP_FILE},
      {"/var/tmp/data (deleted)", MS_MAP_FILE},
      {"[stack]", MS_MAP_STACK},
      {"[stack:4242]", MS_MAP_STACK},
      {"/dev/shm/ring", MS_MAP_SHMEM},
      {"/dev/shm/gone (deleted)", MS_MAP_SHMEM},
      {"/memfd:state (deleted)", MS_MAP_SHMEM},
      {"/SYSV0000162e (deleted)", MS_MAP_SHMEM},
      {"SYSV0000162e", MS_MAP_SHMEM},
      {"/dev/zero (deleted)", MS_MAP_SHMEM},
      {"[anon_shmem:pool]", MS_MAP_SHMEM},
      {"/dev/dri/renderD128", MS_MAP_DEVICE},
      {"/dev/nvidia0", MS_MAP_DEVICE},
      {"/dev/nvidiactl", MS_MAP_DEVICE},
      {"[vdso]", MS_MAP_OTHER},
      {"[vvar]", MS_MAP_OTHER},
      {"[vsyscall]", MS_MAP_OTHER},
      {"[heapx]", MS_MAP_OTHER},
      {"anon_inode:[perf_event]", MS_MAP_OTHER},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    if (ms_map_class(cases[i].name) != cases[i].cls)
      fail_msg("%s: class %s, want %s", cases[i].name,
               ms_map_class_name(ms_map_class(cases[i].name)),
               ms_map_class_name(cases[i].cls));
  }
  assert_int_equal(ms_map_class(NULL), MS_MAP_ANON);
  assert_string_equal(ms_map_class_name(MS_MAP_DEVICE), "device");
  assert_string_equal(ms_map_class_name(MS_MAP_SHMEM), "shmem");
}

static void fixture_rows_grouped_by_owner(void** state) {
  (void)state;
  char* text = fixture("smaps_self.txt");
  ms_mapping_t rows[16];
  const ms_mapping_t* r;
  int n = ms_smaps_top(text, rows, 16);

  assert_int_equal(n, 11);
  /* Largest footprint first; heap and ld.so tie at 16 kB: class order. */
  assert_int_equal(rows[0].cls, MS_MAP_ANON);
  assert_string_equal(rows[0].name, "");
  assert_int_equal(rows[0].count, 4);
  assert_int_equal(rows[0].size, KIB(208));
  assert_int_equal(rows[0].private_dirty, KIB(40));
  assert_string_equal(rows[1].name, "/usr/lib/x86_64-linux-gnu/libc.so.6");
  assert_int_equal(rows[1].count, 5);
  assert_int_equal(rows[1].rss, KIB(1144));
  assert_int_equal(rows[1].private_dirty, KIB(24));
  assert_int_equal(rows[2].cls, MS_MAP_HEAP);
  assert_int_equal(rows[2].private_dirty, KIB(16));
  assert_string_equal(rows[3].name,
                      "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
  assert_int_equal(rows[4].cls, MS_MAP_STACK);
  assert_int_equal(rows[4].private_dirty, KIB(12));
  r = find_row(rows, n, MS_MAP_OTHER, "[vdso]");
  assert_non_null(r);
  assert_int_equal(r->rss, KIB(4));
  assert_non_null(find_row(rows, n, MS_MAP_OTHER, "[vsyscall]"));
  for (int i = 1; i < n; i++)
    assert_true(rows[i - 1].private_dirty + rows[i - 1].swap >=
                rows[i].private_dirty + rows[i].swap);
  free(text);
}

static void hand_made_text_aggregates_orders_and_truncates(void** state) {
  (void)state;
  char* buf = malloc(64 * 1024);
  char longname[160], cut[MS_MAP_NAME_MAX + 1];
  ms_mapping_t rows[8];
  size_t at = 0;
  int n;

  /* A name of 99 ASCII bytes then "é" (2 bytes) then more: cut before é. */
  memset(longname, 'a', sizeof(longname));
  longname[0] = '/';
  memcpy(longname + 99, "\xc3\xa9", 2);
  longname[150] = '\0';
  memcpy(cut, longname, 99);
  cut[99] = '\0';

  assert_non_null(buf);
  /* Three anonymous arenas: 100+200+300 kB dirty, 50 kB swapped. */
  at = put_mapping(buf, at, 0x1000000, "", 1024, 100, 100, 0);
  at = put_mapping(buf, at, 0x2000000, "", 2048, 200, 200, 50);
  /* One file mapped twice: 40 + 60 kB resident, 8 kB dirty (its .data). */
  at = put_mapping(buf, at, 0x3000000, "/opt/db/index.bin", 400, 40, 0, 0);
  at = put_mapping(buf, at, 0x4000000, "/opt/db/index.bin", 600, 60, 8, 0);
  at = put_mapping(buf, at, 0x5000000, "", 4096, 300, 300, 0);
  /* Less dirty than the heap, but swap puts it above. */
  at = put_mapping(buf, at, 0x6000000, "[stack]", 132, 20, 20, 500);
  at = put_mapping(buf, at, 0x7000000, "[heap]", 800, 400, 400, 0);
  at = put_mapping(buf, at, 0x8000000, longname, 8, 8, 2, 0);
  longname[120] = 'b'; /* differs after the cut: same row */
  at = put_mapping(buf, at, 0x9000000, longname, 8, 8, 2, 0);

  n = ms_smaps_top(buf, rows, 8);
  assert_int_equal(n, 5);
  assert_int_equal(rows[0].cls, MS_MAP_ANON);
  assert_int_equal(rows[0].count, 3);
  assert_int_equal(rows[0].size, KIB(7168));
  assert_int_equal(rows[0].rss, KIB(600));
  assert_int_equal(rows[0].private_dirty, KIB(600));
  assert_int_equal(rows[0].swap, KIB(50));
  assert_int_equal(rows[1].cls, MS_MAP_STACK);
  assert_int_equal(rows[1].swap, KIB(500));
  assert_int_equal(rows[2].cls, MS_MAP_HEAP);
  assert_int_equal(rows[2].private_dirty, KIB(400));
  assert_string_equal(rows[3].name, "/opt/db/index.bin");
  assert_int_equal(rows[3].cls, MS_MAP_FILE);
  assert_int_equal(rows[3].count, 2);
  assert_int_equal(rows[3].size, KIB(1000));
  assert_int_equal(rows[3].rss, KIB(100));
  assert_int_equal(rows[3].private_dirty, KIB(8));
  assert_string_equal(rows[4].name, cut);
  assert_int_equal(rows[4].count, 2);

  /* Only the top two when max is 2; nothing written past them. */
  memset(rows, 0x5a, sizeof(rows));
  assert_int_equal(ms_smaps_top(buf, rows, 2), 2);
  assert_int_equal(rows[0].cls, MS_MAP_ANON);
  assert_int_equal(rows[1].cls, MS_MAP_STACK);
  assert_int_equal(rows[2].count, 0x5a5a5a5a);
  assert_int_equal(ms_smaps_top(buf, NULL, 0), 0);
  free(buf);
}

static void text_without_mapping_is_einval(void** state) {
  (void)state;
  ms_mapping_t rows[4];
  char* status = fixture("status_self.txt");
  char* rollup = fixture("smaps_rollup_self.txt");

  assert_int_equal(ms_smaps_top("", rows, 4), -EINVAL);
  assert_int_equal(ms_smaps_top("garbage\n\x01\xff\n", rows, 4), -EINVAL);
  assert_int_equal(ms_smaps_top("Rss:  4 kB\nPrivate_Dirty: 4 kB\n", rows, 4),
                   -EINVAL);
  assert_int_equal(ms_smaps_top("abc-def\nbeef-\n-10 x\n", rows, 4), -EINVAL);
  assert_int_equal(ms_smaps_top(status, rows, 4), -EINVAL);
  assert_int_equal(ms_smaps_top(NULL, rows, 4), -EINVAL);
  assert_int_equal(ms_smaps_top(status, NULL, 4), -EINVAL);
  /* smaps_rollup has a header line: one "other" row, not an error. */
  assert_int_equal(ms_smaps_top(rollup, rows, 4), 1);
  assert_string_equal(rows[0].name, "[rollup]");
  assert_int_equal(rows[0].private_dirty, KIB(112));
  free(status);
  free(rollup);
}

/* 60,000 mappings in the kernel's format: 30,000 anonymous, 5,000 files
 * mapped 4 times each, 10,000 thread stacks with their own names. */
static void sixty_thousand_mappings_sum_exactly(void** state) {
  (void)state;
  size_t cap = 60000 * 1000, at = 0;
  char* buf = malloc(cap);
  ms_mapping_t* rows = malloc(20000 * sizeof(*rows));
  uint64_t start = 0x10000000, size = 0, rss = 0, pd = 0, swap = 0;
  unsigned count = 0, files = 0;
  char name[64];
  struct timespec t0, t1;
  int n;

  assert_non_null(buf);
  assert_non_null(rows);
  for (int i = 0; i < 60000; i++, start += 0x100000) {
    if (i % 2 == 0) {
      at = put_mapping(buf, at, start, "", 64, 8, 8, 4);
    } else if (i % 6 != 5) {
      snprintf(name, sizeof(name), "/srv/data/shard-%05d.db", (i / 2) % 5000);
      at = put_mapping(buf, at, start, name, 12, 12, i % 3 == 0 ? 4 : 0, 0);
    } else {
      snprintf(name, sizeof(name), "[stack:%d]", 100000 + i);
      at = put_mapping(buf, at, start, name, 132, 16, 16, 0);
    }
    assert_true(at < cap - 1000);
  }
  clock_gettime(CLOCK_MONOTONIC, &t0);
  n = ms_smaps_top(buf, rows, 20000);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  print_message("    parsed %.1f MB, 60000 mappings into %d rows in %.1f ms\n",
                (double)at / 1e6, n,
                (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
                    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
  assert_int_equal(n, 1 + 5000 + 10000);
  assert_int_equal(rows[0].cls, MS_MAP_ANON);
  assert_int_equal(rows[0].count, 30000);
  assert_int_equal(rows[0].private_dirty, KIB(8) * 30000);
  assert_int_equal(rows[0].swap, KIB(4) * 30000);
  for (int i = 0; i < n; i++) {
    count += rows[i].count;
    size += rows[i].size;
    rss += rows[i].rss;
    pd += rows[i].private_dirty;
    swap += rows[i].swap;
    if (rows[i].cls == MS_MAP_FILE) {
      files++;
      assert_int_equal(rows[i].count, 4);
    }
  }
  assert_int_equal(files, 5000);
  assert_int_equal(count, 60000);
  assert_int_equal(size, KIB(30000 * 64 + 20000 * 12 + 10000 * 132));
  assert_int_equal(rss, KIB(30000 * 8 + 20000 * 12 + 10000 * 16));
  assert_int_equal(swap, KIB(30000 * 4));
  /* Odd i with i % 3 == 0 and i % 6 != 5: i = 3 mod 6, 10,000 of them. */
  assert_int_equal(pd, KIB(30000 * 8 + 10000 * 4 + 10000 * 16));
  free(rows);
  free(buf);
}

/* How many processes spawn() waits to hear ready from (0 = 1). */
static int ready_fd_count;

/* A child process: runs setup, says ready, lives until go is closed. */
typedef struct {
  pid_t pid;
  int go;
} child_t;

static child_t spawn(void (*setup)(void)) {
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
    if (write(ready[1], "r", 1) != 1 || read(go[0], &b, 1) < 0) _exit(1);
    _exit(0);
  }
  close(ready[1]);
  close(go[0]);
  /* Every process setup forked says ready too. */
  for (int i = 0; i < (ready_fd_count ? ready_fd_count : 1); i++)
    assert_int_equal(read(ready[0], &b, 1), 1);
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

/* Held in a global so that valgrind sees it reachable, not leaked. */
static char* held;

static void hold_64m_malloc(void) {
  held = malloc(MIB(64));
  if (held == NULL) _exit(2);
  for (size_t i = 0; i < MIB(64); i += 4096) ((volatile char*)held)[i] = 1;
}

static char file_path[] = "/var/tmp/memsup-evidence-XXXXXX";

static void hold_64m_file(void) {
  int fd = open(file_path, O_RDONLY | O_CLOEXEC);
  char* p;

  if (fd < 0) _exit(2);
  p = mmap(NULL, MIB(64), PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) _exit(2);
  for (size_t i = 0; i < MIB(64); i += 4096) (void)((volatile char*)p)[i];
}

static void child_malloc_64m_is_top_anon_row(void** state) {
  (void)state;
  child_t c = spawn(hold_64m_malloc);
  ms_mapping_t rows[4];
  int n = ms_smaps_read_top(c.pid, rows, 4);

  assert_true(n >= 1);
  assert_int_equal(rows[0].cls, MS_MAP_ANON);
  assert_true(rows[0].private_dirty >= MIB(64));
  assert_true(rows[0].size >= MIB(64));
  reap(c);
}

static void child_mapped_file_is_resident_but_clean(void** state) {
  (void)state;
  char page[4096];
  int fd = mkstemp(file_path);
  ms_mapping_t rows[64];
  const ms_mapping_t* r;
  child_t c;
  int n;

  assert_true(fd >= 0);
  memset(page, 'x', sizeof(page));
  for (size_t off = 0; off < MIB(64); off += sizeof(page))
    assert_int_equal(write(fd, page, sizeof(page)), sizeof(page));
  /* Page-cache pages not yet written back count as Private_Dirty in
   * smaps even when mapped read-only, so write them back first. */
  assert_int_equal(fsync(fd), 0);
  close(fd);
  c = spawn(hold_64m_file);
  n = ms_smaps_read_top(c.pid, rows, 64);
  reap(c);
  unlink(file_path);
  assert_true(n >= 1);
  r = find_row(rows, n, MS_MAP_FILE, file_path);
  assert_non_null(r);
  assert_int_equal(r->count, 1);
  assert_true(r->rss >= MIB(64));
  assert_true(r->private_dirty < MIB(1));
}

static void exited_or_zombie_process_is_esrch(void** state) {
  (void)state;
  ms_mapping_t rows[4];
  siginfo_t si;
  pid_t pid = fork();

  assert_true(pid >= 0);
  if (pid == 0) _exit(0);
  /* Wait for the exit but leave the zombie in place. */
  assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
  assert_int_equal(ms_smaps_read_top(pid, rows, 4), -ESRCH);
  assert_int_equal(waitpid(pid, NULL, 0), pid);
  assert_int_equal(ms_smaps_read_top(pid, rows, 4), -ESRCH);
  /* And a live one (this process) has rows. */
  assert_true(ms_smaps_read_top(getpid(), rows, 4) >= 1);
}

static ms_classify_out_t classify(uint64_t fp, uint64_t rss, int has_heap,
                                  uint64_t heap, double bps, int has_growth) {
  ms_classify_in_t in = {.footprint = fp,
                         .rss = rss,
                         .has_heap = has_heap,
                         .heap_allocated = heap,
                         .has_growth = has_growth,
                         .footprint_growth_bps = bps};
  ms_classify_out_t out;
  memset(&out, 0, sizeof(out));
  ms_classify(&in, &out);
  return out;
}

#define assert_class(want, ...) \
  assert_string_equal(classify(__VA_ARGS__).cls, want)

static void file_backed_at_twice_footprint_and_16m_over(void** state) {
  (void)state;
  /* Exactly at both thresholds, then one byte short of each. */
  assert_class("file-backed", MIB(16), MIB(32), 0, 0, 0, 0);
  assert_class("unknown", MIB(16), MIB(32) - 1, 0, 0, 0, 0);
  assert_class("file-backed", MIB(1), MIB(17), 0, 0, 0, 0);
  assert_class("unknown", MIB(1), MIB(17) - 1, 0, 0, 0, 0);
  /* Checked first: also allocator retention and growing. */
  assert_class("file-backed", MIB(100), MIB(300), 1, MIB(10), 1e6, 1);
}

static void retention_at_twice_heap_and_16m_over(void** state) {
  (void)state;
  assert_class("allocator-retention", MIB(32), MIB(32), 1, MIB(16), 0, 0);
  /* Heap one byte more: ratio fails, heap is half of footprint: growth. */
  assert_class("leak", MIB(32), MIB(32), 1, MIB(16) + 1, 1.0, 1);
  assert_class("allocator-retention", MIB(17), MIB(17), 1, MIB(1), 0, 0);
  assert_class("unknown", MIB(17) - 1, MIB(17), 1, MIB(1), 0, 0);
  /* Retention wins over growth, and needs heap statistics. */
  assert_class("allocator-retention", MIB(200), MIB(200), 1, MIB(20), 1e6, 1);
  assert_class("leak-or-cache", MIB(200), MIB(200), 0, MIB(20), 1e6, 1);
}

static void leak_needs_heap_half_of_footprint_and_positive_rate(
    void** state) {
  (void)state;
  /* Heap exactly half (gap under 16 MiB, so not retention). */
  assert_class("leak", MIB(10), MIB(10), 1, MIB(5), 1.0, 1);
  assert_class("unknown", MIB(10), MIB(10), 1, MIB(5) - 1, 1.0, 1);
  assert_class("leak-or-cache", MIB(10), MIB(10), 0, 0, 1.0, 1);
  assert_class("unknown", MIB(10), MIB(10), 0, 0, 0.0, 1);
  assert_class("unknown", MIB(10), MIB(10), 0, 0, -5.0, 1);
  assert_class("unknown", MIB(10), MIB(10), 0, 0, 1e6, 0);
  assert_class("unknown", 0, 0, 0, 0, 0, 0);
}

static void why_sentence_carries_the_figures(void** state) {
  (void)state;
  ms_classify_out_t o;
  ms_classify_in_t in = {.footprint = MIB(300),
                         .rss = MIB(900),
                         .rss_file = MIB(512),
                         .lazyfree = MIB(64)};

  o = classify((uint64_t)(128.5 * MIB(1)), MIB(130), 1,
               (uint64_t)(118.2 * MIB(1)), 10.1 * MIB(1) / 60.0, 1);
  assert_string_equal(o.cls, "leak");
  assert_non_null(strstr(o.why, "heap-in-use 118.2 MiB"));
  assert_non_null(strstr(o.why, "92%"));
  assert_non_null(strstr(o.why, "footprint 128.5 MiB"));
  assert_non_null(strstr(o.why, "10.1 MiB/min"));

  ms_classify(&in, &o);
  assert_string_equal(o.cls, "file-backed");
  assert_non_null(strstr(o.why, "RSS 900.0 MiB"));
  assert_non_null(strstr(o.why, "footprint 300.0 MiB"));
  assert_non_null(strstr(o.why, "file-backed 512.0 MiB"));
  assert_non_null(strstr(o.why, "lazy-free 64.0 MiB"));

  in = (ms_classify_in_t){.footprint = MIB(120),
                          .rss = MIB(121),
                          .has_heap = 1,
                          .heap_allocated = MIB(20),
                          .heap_resident = MIB(110)};
  ms_classify(&in, &o);
  assert_string_equal(o.cls, "allocator-retention");
  assert_non_null(strstr(o.why, "footprint 120.0 MiB"));
  assert_non_null(strstr(o.why, "heap-in-use 20.0 MiB"));
  assert_non_null(strstr(o.why, "110.0 MiB"));

  o = classify(MIB(48), MIB(50), 0, 0, 2.0 * MIB(1) / 60.0, 1);
  assert_non_null(strstr(o.why, "footprint 48.0 MiB grew 2.0 MiB/min"));
  o = classify(MIB(48), MIB(50), 0, 0, -1.0 * MIB(1) / 60.0, 1);
  assert_string_equal(o.cls, "unknown");
  assert_non_null(strstr(o.why, "footprint 48.0 MiB"));
  assert_non_null(strstr(o.why, "growth -1.0 MiB/min"));
  assert_non_null(strstr(o.why, "heap-in-use not reported"));
}

/* The six kinds through the pure pieces memsup feeds them from: the
 * growth window (growth.h) and the gauge series (cause.h). */
#define SEC_NS(x) ((uint64_t)((x) * 1e9))

static ms_classify_in_t from_window(const ms_growth_t* g, uint64_t now,
                                    uint64_t fp) {
  ms_classify_in_t in = {.footprint = fp, .rss = fp + MIB(2)};
  in.has_growth = ms_growth_rate(g, now, SEC_NS(0.5), &in.fit) == 0;
  in.footprint_growth_bps = in.fit.bps;
  return in;
}

/* Seen: a worker flat under 1 MiB for 8 s with a 0.6 s spike to 100 MiB
 * was called "grew 923.8 MiB/min: leak or unbounded cache". */
static void flat_then_short_jump_is_a_spike(void** state) {
  (void)state;
  ms_growth_t g;
  ms_classify_out_t o;
  uint64_t t;
  ms_growth_init(&g, SEC_NS(10));
  for (t = 0; t < SEC_NS(8); t += SEC_NS(1)) ms_growth_add(&g, t, MIB(1) - 4096);
  /* A background read caught the ramp (a slow memset on a busy host). */
  ms_growth_add(&g, SEC_NS(7.6), MIB(30));
  for (; t <= SEC_NS(8.6); t += SEC_NS(0.05)) ms_growth_add(&g, t, MIB(100));
  ms_classify_in_t in = from_window(&g, SEC_NS(8.6), MIB(100));
  assert_true(in.has_growth);
  ms_classify(&in, &o);
  assert_string_equal(o.cls, "spike");
  assert_null(strstr(o.why, "grew"));
  assert_non_null(strstr(o.why, "100.0 MiB"));
}

static void steady_growth_and_a_lasting_step_are_not_spikes(void** state) {
  (void)state;
  ms_growth_t g;
  ms_classify_out_t o;
  uint64_t t;
  /* A leak: 1 -> 100 MiB in 6 s. */
  ms_growth_init(&g, SEC_NS(10));
  for (t = 0; t <= SEC_NS(6); t += SEC_NS(0.1))
    ms_growth_add(&g, t, MIB(1) + (uint64_t)(MIB(99) * (double)t / 6e9));
  ms_classify_in_t in = from_window(&g, SEC_NS(6), MIB(100));
  ms_classify(&in, &o);
  assert_string_equal(o.cls, "leak-or-cache");
  assert_non_null(strstr(o.why, "link the SDK to tell them apart"));
  /* Flat 3 s, then up and staying up 6 s: not a transient peak. */
  ms_growth_init(&g, SEC_NS(10));
  for (t = 0; t < SEC_NS(3); t += SEC_NS(0.5)) ms_growth_add(&g, t, MIB(1));
  for (; t <= SEC_NS(9); t += SEC_NS(0.5)) ms_growth_add(&g, t, MIB(100));
  in = from_window(&g, SEC_NS(9), MIB(100));
  ms_classify(&in, &o);
  assert_string_not_equal(o.cls, "spike");
  /* A fast leak read at start-up and then at the limit only: no flat
   * stretch was seen, whatever the time between the two reads. */
  ms_growth_init(&g, SEC_NS(10));
  ms_growth_add(&g, 0, MIB(1));
  ms_growth_add(&g, SEC_NS(1), MIB(33));
  ms_growth_add(&g, SEC_NS(1.05), MIB(34));
  in = from_window(&g, SEC_NS(1.05), MIB(34));
  ms_classify(&in, &o);
  assert_string_equal(o.cls, "leak-or-cache");
}

static void lazy_free_and_file_backed_are_told_apart(void** state) {
  (void)state;
  ms_classify_out_t o;
  ms_classify_in_t in = {.footprint = MIB(1),
                         .rss = MIB(258),
                         .rss_file = MIB(2),
                         .lazyfree = MIB(256)};
  ms_classify(&in, &o);
  assert_string_equal(o.cls, "lazy-free");
  assert_non_null(strstr(o.why, "MADV_FREE"));
  in.rss_file = MIB(257);
  in.lazyfree = 0;
  ms_classify(&in, &o);
  assert_string_equal(o.cls, "file-backed");
  assert_non_null(strstr(o.why, "mapped-file"));
}

/* Two lives of a worker whose footprint grows 1 MiB per 100 entries:
 * cache.entries restarts from 0, requests is carried in its state. */
static void two_lives(ms_cause_t* c, int with_cache, uint64_t* now) {
  ms_heap_t h;
  ms_cause_init(c);
  double requests = 0;
  for (int life = 0; life < 2; life++) {
    ms_cause_new_life(c);
    for (int i = 0; i <= 24; i++) {
      memset(&h, 0, sizeof(h));
      h.has_heap = 1;
      h.ngauges = 0;
      if (with_cache) {
        strcpy(h.gauges[h.ngauges].name, "cache.entries");
        h.gauges[h.ngauges++].value = i * 250.0;
      }
      strcpy(h.gauges[h.ngauges].name, "requests");
      h.gauges[h.ngauges++].value = requests;
      requests += 1000;
      ms_cause_add(c, *now, MIB(2) + (uint64_t)i * MIB(5) / 2, &h);
      *now += SEC_NS(0.25);
    }
  }
}

static ms_classify_in_t grown(const ms_cause_t* c) {
  ms_classify_in_t in = {.footprint = MIB(62),
                         .rss = MIB(64),
                         .has_heap = 1,
                         .heap_allocated = MIB(58),
                         .has_growth = 1,
                         .footprint_growth_bps = MIB(10)};
  ms_cause_best(c, &in.gauge);
  return in;
}

static void gauge_that_falls_back_at_a_restart_is_a_cache(void** state) {
  (void)state;
  ms_cause_t c;
  ms_classify_out_t o;
  uint64_t now = SEC_NS(100);
  two_lives(&c, 1, &now);
  ms_classify_in_t in = grown(&c);
  ms_classify(&in, &o);
  assert_string_equal(o.cls, "unbounded-cache");
  assert_string_equal(o.gauge, "cache.entries");
  assert_non_null(strstr(o.why, "gauge cache.entries"));
  assert_null(strstr(o.why, "requests"));
}

static void counter_carried_across_restarts_leaves_a_leak(void** state) {
  (void)state;
  ms_cause_t c;
  ms_classify_out_t o;
  uint64_t now = SEC_NS(100);
  two_lives(&c, 0, &now);
  ms_classify_in_t in = grown(&c);
  ms_classify(&in, &o);
  assert_string_equal(o.cls, "leak");
  assert_null(o.gauge);
}

static void first_life_with_a_tracking_gauge_cannot_tell_yet(void** state) {
  (void)state;
  ms_cause_t c;
  ms_heap_t h;
  ms_classify_out_t o;
  ms_cause_init(&c);
  ms_cause_new_life(&c);
  for (int i = 0; i <= 24; i++) {
    memset(&h, 0, sizeof(h));
    h.ngauges = 1;
    strcpy(h.gauges[0].name, "cache.entries");
    h.gauges[0].value = i * 250.0;
    ms_cause_add(&c, SEC_NS(i), MIB(2) + (uint64_t)i * MIB(2), &h);
  }
  ms_classify_in_t in = grown(&c);
  ms_classify(&in, &o);
  assert_string_equal(o.cls, "leak-or-cache");
  assert_non_null(strstr(o.why, "gauge cache.entries"));
  assert_non_null(strstr(o.why, "next restart"));
}

static ms_mapping_t region(const char* name, ms_map_class_t cls,
                           uint64_t anon) {
  ms_mapping_t r;
  memset(&r, 0, sizeof(r));
  snprintf(r.name, sizeof(r.name), "%s", name);
  r.cls = cls;
  r.anonymous = anon;
  r.rss = anon;
  return r;
}

/* Per region, the growth of footprint between the early and the late
 * snapshot, not the totals at restart: libcrypto's relocated pages (there
 * from the start) are not listed, a region absent early counts from 0. */
static void grew_lists_growth_per_region_not_totals(void** state) {
  (void)state;
  ms_mapping_t early[3] = {
      region("", MS_MAP_ANON, MIB(2)),
      region("/usr/lib/libcrypto.so.3", MS_MAP_FILE, 404 * 1024),
      region("[heap]", MS_MAP_HEAP, MIB(1))};
  ms_mapping_t late[4] = {
      region("", MS_MAP_ANON, MIB(60)),
      region("/usr/lib/libcrypto.so.3", MS_MAP_FILE, 404 * 1024),
      region("[heap]", MS_MAP_HEAP, MIB(5)),
      region("/memfd:cache (deleted)", MS_MAP_SHMEM, 0)};
  late[3].rss = MIB(8); /* shmem counts by its resident pages */
  late[2].cls = MS_MAP_HEAP;
  ms_grew_t g[4];
  int n = ms_evidence_grew(early, 3, late, 4, g, 4);
  assert_int_equal(n, 3);
  assert_string_equal(g[0].name, "");
  assert_int_equal(g[0].late - g[0].early, MIB(58));
  assert_string_equal(g[1].name, "/memfd:cache (deleted)");
  assert_int_equal(g[1].early, 0);
  assert_int_equal(g[1].late, MIB(8));
  assert_string_equal(g[2].name, "[heap]");
  assert_int_equal(g[2].late - g[2].early, MIB(4));
  /* max bounds the rows; shrinking regions are not listed. */
  assert_int_equal(ms_evidence_grew(early, 3, late, 4, g, 1), 1);
  assert_int_equal(ms_evidence_grew(late, 4, early, 3, g, 4), 0);
  /* JSON: rows in bytes, or null without an early snapshot. */
  cJSON* j = cJSON_CreateObject();
  n = ms_evidence_grew(early, 3, late, 4, g, 4);
  assert_int_equal(ms_evidence_add_grew(j, g, n), 0);
  cJSON* row = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "grew"), 0);
  assert_int_equal(cJSON_GetObjectItem(row, "grew")->valuedouble, MIB(58));
  assert_string_equal(cJSON_GetObjectItem(row, "class")->valuestring, "anon");
  cJSON_Delete(j);
  j = cJSON_CreateObject();
  assert_int_equal(ms_evidence_add_grew(j, g, -1), 0);
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "grew")));
  cJSON_Delete(j);
}

static void json_has_classification_and_rows_in_bytes(void** state) {
  (void)state;
  char* buf = malloc(8192);
  ms_mapping_t rows[4];
  ms_classify_out_t cls = classify(MIB(10), MIB(10), 0, 0, 1.0, 1);
  cJSON *j, *m, *r;
  char* s;
  size_t at = 0;
  int n;

  assert_non_null(buf);
  at = put_mapping(buf, at, 0x1000000, "", 65536, 65536, 65536, 1024);
  at = put_mapping(buf, at, 0x8000000, "/opt/model.bin", 4096, 4096, 0, 0);
  n = ms_smaps_top(buf, rows, 4);
  assert_int_equal(n, 2);
  j = ms_evidence_json(rows, n, &cls);
  assert_non_null(j);
  /* Round trip through text, as the restart log stores it. */
  s = cJSON_PrintUnformatted(j);
  cJSON_Delete(j);
  j = cJSON_Parse(s);
  cJSON_free(s);
  assert_non_null(j);
  assert_string_equal(
      cJSON_GetObjectItemCaseSensitive(j, "classification")->valuestring,
      "leak-or-cache");
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "why")->valuestring,
                      cls.why);
  m = cJSON_GetObjectItemCaseSensitive(j, "mappings");
  assert_true(cJSON_IsArray(m));
  assert_int_equal(cJSON_GetArraySize(m), 2);
  r = cJSON_GetArrayItem(m, 0);
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(r, "name")->valuestring,
                      "");
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(r, "class")->valuestring,
                      "anon");
  assert_int_equal(cJSON_GetObjectItemCaseSensitive(r, "count")->valuedouble,
                   1);
  assert_true(
      cJSON_GetObjectItemCaseSensitive(r, "private_dirty")->valuedouble ==
      (double)MIB(64));
  assert_true(cJSON_GetObjectItemCaseSensitive(r, "swap")->valuedouble ==
              (double)MIB(1));
  r = cJSON_GetArrayItem(m, 1);
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(r, "class")->valuestring,
                      "file");
  assert_true(cJSON_GetObjectItemCaseSensitive(r, "rss")->valuedouble ==
              (double)MIB(4));
  assert_true(cJSON_GetObjectItemCaseSensitive(r, "size")->valuedouble ==
              (double)MIB(4));
  cJSON_Delete(j);
  /* Without a classification: only the rows. */
  j = ms_evidence_json(rows, 0, NULL);
  assert_non_null(j);
  assert_null(cJSON_GetObjectItemCaseSensitive(j, "classification"));
  assert_int_equal(
      cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "mappings")), 0);
  cJSON_Delete(j);
  free(buf);
}

/* The rows of a worker holding each kind of page: dirty file pages (a
 * file it wrote and maps), lazy-free pages, a memfd, a plain heap. */
static char* mixed_worker_smaps(void) {
  char* buf = malloc(16 * 1024);
  size_t at = 0;
  assert_non_null(buf);
  /* 300 MiB of a file written then mapped: dirty page cache, not anon. */
  at = put_mapping_anon(buf, at, 0x1000000, "/var/lib/db/data.bin", 307200,
                        307200, 307200, 0, 0, 0);
  /* 200 MiB anonymous, of which 180 MiB lazy-free (clean now). */
  at = put_mapping_anon(buf, at, 0x20000000, "", 204800, 204800, 20480, 0,
                        204800, 184320);
  /* 64 MiB written into a memfd. */
  at = put_mapping_anon(buf, at, 0x40000000, "/memfd:ring (deleted)", 65536,
                        65536, 65536, 0, 0, 0);
  at = put_mapping(buf, at, 0x50000000, "[heap]", 40960, 40960, 40960, 0);
  return buf;
}

static void mapping_footprint_leaves_out_file_and_lazyfree_pages(
    void** state) {
  (void)state;
  char* buf = mixed_worker_smaps();
  ms_mapping_t rows[8];
  const ms_mapping_t* r;
  int n = ms_smaps_top_by(buf, MS_RANK_FOOTPRINT, rows, 8);

  assert_int_equal(n, 4);
  r = find_row(rows, n, MS_MAP_FILE, "/var/lib/db/data.bin");
  assert_non_null(r);
  assert_int_equal(r->private_dirty, KIB(307200));
  assert_int_equal(ms_mapping_footprint(r), 0);
  r = find_row(rows, n, MS_MAP_ANON, "");
  assert_int_equal(r->lazyfree, KIB(184320));
  assert_int_equal(ms_mapping_footprint(r), KIB(20480));
  r = find_row(rows, n, MS_MAP_SHMEM, "/memfd:ring (deleted)");
  assert_int_equal(ms_mapping_footprint(r), MIB(64));
  /* By footprint: memfd, heap, anon, file. */
  assert_int_equal(rows[0].cls, MS_MAP_SHMEM);
  assert_int_equal(rows[1].cls, MS_MAP_HEAP);
  assert_int_equal(rows[2].cls, MS_MAP_ANON);
  assert_int_equal(rows[3].cls, MS_MAP_FILE);
  /* The default reader ranks the same way. */
  memset(rows, 0, sizeof(rows));
  assert_int_equal(ms_smaps_top(buf, rows, 8), 4);
  assert_int_equal(rows[0].cls, MS_MAP_SHMEM);
  free(buf);
}

static void rss_rank_puts_the_resident_file_first(void** state) {
  (void)state;
  char* buf = mixed_worker_smaps();
  ms_mapping_t rows[8];
  int n = ms_smaps_top_by(buf, MS_RANK_RSS, rows, 2);

  assert_int_equal(n, 2);
  assert_int_equal(rows[0].cls, MS_MAP_FILE);
  assert_int_equal(rows[0].rss, KIB(307200));
  assert_int_equal(rows[1].cls, MS_MAP_ANON);
  free(buf);
}

/* A session whose leader holds little and whose child holds 64 MiB, like
 * a shell wrapper that did not exec. */
static void session_with_big_child(void) {
  pid_t pid;
  if (setsid() < 0) _exit(2);
  pid = fork();
  if (pid < 0) _exit(2);
  if (pid == 0) {
    prctl(PR_SET_NAME, "bigchild");
    hold_64m_malloc();
  }
}

static void capture_with_tree_lists_the_biggest_process(void** state) {
  (void)state;
  ms_classify_out_t cls = {.cls = "leak", .why = "test"};
  child_t c;
  cJSON *ev, *procs, *maps, *p0;
  pid_t top;

  ready_fd_count = 2;
  c = spawn(session_with_big_child);
  ev = ms_evidence_capture(c.pid, 1, MS_RANK_FOOTPRINT, 4, &cls);
  assert_non_null(ev);
  assert_string_equal(
      cJSON_GetObjectItemCaseSensitive(ev, "ranked_by")->valuestring,
      "footprint");
  assert_string_equal(
      cJSON_GetObjectItemCaseSensitive(ev, "classification")->valuestring,
      "leak");
  assert_int_equal(cJSON_GetObjectItemCaseSensitive(ev, "nprocs")->valuedouble,
                   2);
  procs = cJSON_GetObjectItemCaseSensitive(ev, "processes");
  assert_int_equal(cJSON_GetArraySize(procs), 2);
  p0 = cJSON_GetArrayItem(procs, 0);
  assert_string_equal(
      cJSON_GetObjectItemCaseSensitive(p0, "command")->valuestring,
      "bigchild");
  top = (pid_t)cJSON_GetObjectItemCaseSensitive(p0, "pid")->valuedouble;
  assert_true(top != c.pid);
  assert_true(cJSON_GetObjectItemCaseSensitive(p0, "footprint")->valuedouble >=
              (double)MIB(64));
  /* The leader holds only what both inherited from the test. */
  assert_true(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(procs, 1),
                                               "footprint")
                      ->valuedouble +
                  (double)MIB(48) <
              cJSON_GetObjectItemCaseSensitive(p0, "footprint")->valuedouble);
  /* The mappings are the big child's, not the leader's. */
  assert_int_equal(
      cJSON_GetObjectItemCaseSensitive(ev, "mappings_pid")->valuedouble, top);
  maps = cJSON_GetObjectItemCaseSensitive(ev, "mappings");
  assert_true(cJSON_GetArraySize(maps) >= 1);
  assert_true(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(maps, 0),
                                               "footprint")
                  ->valuedouble >= (double)MIB(64));
  cJSON_Delete(ev);

  /* Without --tree: the worker's own mappings, no split. */
  ev = ms_evidence_capture(c.pid, 0, MS_RANK_RSS, 4, NULL);
  assert_non_null(ev);
  assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(ev, "processes")));
  assert_int_equal(
      cJSON_GetObjectItemCaseSensitive(ev, "mappings_pid")->valuedouble,
      c.pid);
  assert_string_equal(
      cJSON_GetObjectItemCaseSensitive(ev, "ranked_by")->valuestring, "rss");
  maps = cJSON_GetObjectItemCaseSensitive(ev, "mappings");
  assert_true(cJSON_GetArraySize(maps) >= 2);
  for (int i = 1; i < cJSON_GetArraySize(maps); i++)
    assert_true(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(maps, i - 1), "rss")
            ->valuedouble >=
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(maps, i), "rss")
            ->valuedouble);
  cJSON_Delete(ev);
  ready_fd_count = 1;
  reap(c);

  /* Gone: empty lists, not NULL. */
  ev = ms_evidence_capture(c.pid, 1, MS_RANK_FOOTPRINT, 4, NULL);
  assert_non_null(ev);
  assert_int_equal(
      cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(ev, "mappings")), 0);
  assert_int_equal(
      cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(ev, "processes")), 0);
  cJSON_Delete(ev);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(map_class_of_each_kind_of_name),
      cmocka_unit_test(fixture_rows_grouped_by_owner),
      cmocka_unit_test(hand_made_text_aggregates_orders_and_truncates),
      cmocka_unit_test(text_without_mapping_is_einval),
      cmocka_unit_test(sixty_thousand_mappings_sum_exactly),
      cmocka_unit_test(child_malloc_64m_is_top_anon_row),
      cmocka_unit_test(child_mapped_file_is_resident_but_clean),
      cmocka_unit_test(exited_or_zombie_process_is_esrch),
      cmocka_unit_test(file_backed_at_twice_footprint_and_16m_over),
      cmocka_unit_test(retention_at_twice_heap_and_16m_over),
      cmocka_unit_test(leak_needs_heap_half_of_footprint_and_positive_rate),
      cmocka_unit_test(why_sentence_carries_the_figures),
      cmocka_unit_test(flat_then_short_jump_is_a_spike),
      cmocka_unit_test(steady_growth_and_a_lasting_step_are_not_spikes),
      cmocka_unit_test(lazy_free_and_file_backed_are_told_apart),
      cmocka_unit_test(gauge_that_falls_back_at_a_restart_is_a_cache),
      cmocka_unit_test(counter_carried_across_restarts_leaves_a_leak),
      cmocka_unit_test(first_life_with_a_tracking_gauge_cannot_tell_yet),
      cmocka_unit_test(grew_lists_growth_per_region_not_totals),
      cmocka_unit_test(json_has_classification_and_rows_in_bytes),
      cmocka_unit_test(mapping_footprint_leaves_out_file_and_lazyfree_pages),
      cmocka_unit_test(rss_rank_puts_the_resident_file_first),
      cmocka_unit_test(capture_with_tree_lists_the_biggest_process),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
