/* test_handoff.c: the state kept between workers, on real memfds and real
 * directories under /tmp (one fresh mkdtemp directory per test).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "handoff.h"
#include "memsup_wire.h"

#define MIB (1024u * 1024u)
#define MAX (64ull * MIB)
#define ALL_SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

typedef struct {
  char dir[64];
  char path[128];
} fx_t;

static int setup(void** state) {
  fx_t* fx = calloc(1, sizeof(*fx));
  assert_non_null(fx);
  strcpy(fx->dir, "/tmp/memsup-handoff-XXXXXX");
  assert_non_null(mkdtemp(fx->dir));
  *state = fx;
  return 0;
}

static int rm_cb(const char* p, const struct stat* sb, int type,
                 struct FTW* ftw) {
  (void)sb, (void)ftw;
  return type == FTW_DP ? rmdir(p) : unlink(p);
}

static int teardown(void** state) {
  fx_t* fx = *state;
  chmod(fx->dir, 0700);
  assert_int_equal(nftw(fx->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS), 0);
  free(fx);
  return 0;
}

/* fx->path = dir/name; returns it. */
static const char* in(fx_t* fx, const char* name) {
  snprintf(fx->path, sizeof(fx->path), "%s/%s", fx->dir, name);
  return fx->path;
}

static void fill(uint8_t* p, size_t len, unsigned seed) {
  for (size_t i = 0; i < len; i++)
    p[i] = (uint8_t)(i * 31 + (i >> 12) + seed);
}

/* A sealed state of len patterned bytes, made through ms_state_memfd. */
static ms_state_t make_state(size_t len, unsigned gen) {
  ms_state_t st;
  uint8_t* buf = malloc(len + 1);
  assert_non_null(buf);
  fill(buf, len, gen);
  ms_state_init(&st);
  st.fd = ms_state_memfd(buf, len);
  assert_true(st.fd >= 0);
  st.bytes = len;
  st.crc32c = memsup_crc32c(0, buf, len);
  strcpy(st.kind, "save");
  st.gen = gen;
  st.saved_ms = 1700000000123ull + gen;
  free(buf);
  return st;
}

/* Asserts that fd holds exactly len bytes of fill(seed). */
static void assert_pattern(int fd, size_t len, unsigned seed) {
  uint8_t* want;
  uint8_t* got;
  struct stat sb;
  assert_int_equal(fstat(fd, &sb), 0);
  assert_int_equal(sb.st_size, len);
  if (len == 0) return;
  want = malloc(len);
  assert_non_null(want);
  fill(want, len, seed);
  got = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
  assert_true(got != MAP_FAILED);
  assert_memory_equal(got, want, len);
  munmap(got, len);
  free(want);
}

static void verify_accepts_sealed_memfd_with_matching_crc(void** state) {
  ms_state_t st = make_state(100000, 1);
  (void)state;
  assert_int_equal(ms_state_verify(st.fd, st.bytes, st.crc32c, MAX), 0);
  assert_int_equal(ms_state_verify(st.fd, st.bytes, st.crc32c, st.bytes), 0);
  ms_state_clear(&st);
}

static void verify_rejects_memfd_without_write_seal(void** state) {
  char buf[4096];
  uint32_t crc;
  int plain, partial;
  (void)state;
  fill((uint8_t*)buf, sizeof(buf), 0);
  crc = memsup_crc32c(0, buf, sizeof(buf));
  plain = memfd_create("plain", MFD_CLOEXEC);
  partial = memfd_create("partial", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  assert_int_equal(write(plain, buf, sizeof(buf)), sizeof(buf));
  assert_int_equal(write(partial, buf, sizeof(buf)), sizeof(buf));
  assert_int_equal(
      fcntl(partial, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
      0);
  assert_int_equal(ms_state_verify(plain, sizeof(buf), crc, MAX), -EPERM);
  assert_int_equal(ms_state_verify(partial, sizeof(buf), crc, MAX), -EPERM);
  close(plain);
  close(partial);
}

static void verify_rejects_regular_file_as_unsealed(void** state) {
  fx_t* fx = *state;
  int fd = open(in(fx, "f"), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "abc", 3), 3);
  assert_int_equal(
      ms_state_verify(fd, 3, memsup_crc32c(0, "abc", 3), MAX), -EPERM);
  close(fd);
}

static void verify_rejects_wrong_crc(void** state) {
  ms_state_t st = make_state(5000, 2);
  (void)state;
  assert_int_equal(ms_state_verify(st.fd, st.bytes, st.crc32c ^ 1, MAX),
                   -EBADMSG);
  ms_state_clear(&st);
}

static void verify_rejects_size_mismatch(void** state) {
  ms_state_t st = make_state(5000, 3);
  (void)state;
  assert_int_equal(ms_state_verify(st.fd, 4999, st.crc32c, MAX), -EBADMSG);
  assert_int_equal(ms_state_verify(st.fd, 5001, st.crc32c, MAX), -EBADMSG);
  ms_state_clear(&st);
}

/* A 1 GiB sparse memfd: checking it would allocate 1 GiB; the over-max
 * answer must come first, touching no page. */
static void verify_rejects_over_max_without_reading(void** state) {
  struct stat sb;
  int fd = memfd_create("huge", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  (void)state;
  assert_int_equal(ftruncate(fd, 1ull << 30), 0);
  assert_int_equal(fcntl(fd, F_ADD_SEALS, ALL_SEALS), 0);
  assert_int_equal(ms_state_verify(fd, 1ull << 30, 0, 1ull << 29), -EFBIG);
  /* No page was touched: the answer came before any read. */
  assert_int_equal(fstat(fd, &sb), 0);
  assert_int_equal(sb.st_blocks, 0);
  close(fd);
}

static void zero_byte_state_verifies_and_round_trips(void** state) {
  fx_t* fx = *state;
  ms_state_t st = make_state(0, 4), got;
  assert_int_equal(ms_state_verify(st.fd, 0, st.crc32c, MAX), 0);
  assert_int_equal(ms_state_verify(st.fd, 0, st.crc32c ^ 1, MAX), -EBADMSG);
  assert_int_equal(ms_state_store(fx->dir, &st), 0);
  assert_int_equal(ms_state_load(fx->dir, MAX, &got), 0);
  assert_int_equal(got.bytes, 0);
  assert_int_equal(got.gen, 4);
  assert_pattern(got.fd, 0, 0);
  ms_state_clear(&got);
  ms_state_clear(&st);
}

static void memfd_cannot_be_written_resized_or_unsealed(void** state) {
  int fd = ms_state_memfd("hello", 5);
  char got[8] = {0};
  (void)state;
  assert_true(fd >= 0);
  assert_int_equal(fcntl(fd, F_GET_SEALS), ALL_SEALS);
  assert_int_equal(pwrite(fd, "j", 1, 0), -1);
  assert_int_equal(errno, EPERM);
  assert_int_equal(ftruncate(fd, 100), -1);
  assert_int_equal(ftruncate(fd, 1), -1);
  assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  assert_int_equal(pread(fd, got, sizeof(got), 0), 5);
  assert_string_equal(got, "hello");
  close(fd);
}

static void store_then_load_round_trips_bytes_gen_and_time(void** state) {
  fx_t* fx = *state;
  ms_state_t st = make_state(3 * MIB + 17, 7), got;
  strcpy(got.kind, "junk");
  assert_int_equal(ms_state_store(fx->dir, &st), 0);
  assert_int_equal(ms_state_load(fx->dir, MAX, &got), 0);
  assert_pattern(got.fd, 3 * MIB + 17, 7);
  assert_true(got.fd != st.fd);
  assert_int_equal(got.bytes, st.bytes);
  assert_int_equal(got.crc32c, st.crc32c);
  assert_int_equal(got.gen, 7);
  assert_int_equal(got.saved_ms, 1700000000123ull + 7);
  assert_string_equal(got.kind, "disk");
  assert_int_equal(ms_state_verify(got.fd, got.bytes, got.crc32c, MAX), 0);
  ms_state_clear(&got);
  ms_state_clear(&st);
}

static void store_replaces_stale_tmp_and_writes_mode_0600(void** state) {
  fx_t* fx = *state;
  ms_state_t st = make_state(1000, 8);
  struct stat sb;
  mode_t old = umask(0);
  int fd = open(in(fx, "state.tmp"), O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
  umask(old);
  assert_true(fd >= 0);
  close(fd);
  assert_int_equal(ms_state_store(fx->dir, &st), 0);
  assert_int_equal(lstat(in(fx, "state"), &sb), 0);
  assert_true(S_ISREG(sb.st_mode));
  assert_int_equal(sb.st_mode & 07777, 0600);
  assert_int_equal(sb.st_size, 32 + 1000);
  assert_int_equal(access(in(fx, "state.tmp"), F_OK), -1);
  assert_int_equal(errno, ENOENT);
  ms_state_clear(&st);
}

static void store_small(fx_t* fx);

/* A symlink planted at state.tmp (pointing at a file the attacker wants
 * overwritten) is removed, never followed. */
static void store_replaces_planted_tmp_symlink_and_spares_its_target(
    void** state) {
  fx_t* fx = *state;
  ms_state_t st = make_state(1000, 17), got;
  char target[128], buf[16] = "";
  struct stat sb;
  int fd;
  snprintf(target, sizeof(target), "%s/precious", fx->dir);
  fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "precious", 8), 8);
  close(fd);
  assert_int_equal(symlink(target, in(fx, "state.tmp")), 0);
  assert_int_equal(ms_state_store(fx->dir, &st), 0);
  fd = open(target, O_RDONLY | O_CLOEXEC);
  assert_true(fd >= 0);
  assert_int_equal(read(fd, buf, sizeof(buf) - 1), 8);
  close(fd);
  assert_string_equal(buf, "precious");
  assert_int_equal(lstat(in(fx, "state"), &sb), 0);
  assert_true(S_ISREG(sb.st_mode));
  assert_int_equal(ms_state_load(fx->dir, MAX, &got), 0);
  assert_pattern(got.fd, 1000, 17);
  ms_state_clear(&got);
  ms_state_clear(&st);
}

/* A stale tmp that cannot be removed (a directory) fails the store and
 * keeps the previous state. */
static void store_fails_when_stale_tmp_cannot_be_removed(void** state) {
  fx_t* fx = *state;
  ms_state_t st = make_state(100, 18), got;
  store_small(fx);
  assert_int_equal(mkdir(in(fx, "state.tmp"), 0700), 0);
  assert_true(ms_state_store(fx->dir, &st) < 0);
  assert_int_equal(ms_state_load(fx->dir, MAX, &got), 0);
  assert_int_equal(got.gen, 9);
  ms_state_clear(&got);
  ms_state_clear(&st);
}

/* The copy a store works on has its own descriptor, close-on-exec, so a
 * worker spawned while the store runs does not inherit it. */
static void dup_is_close_on_exec_and_independent(void** state) {
  ms_state_t st = make_state(4096, 19), copy;
  (void)state;
  ms_state_init(&copy);
  assert_int_equal(ms_state_dup(&st, &copy), 0);
  assert_true(copy.fd >= 0 && copy.fd != st.fd);
  assert_int_equal(fcntl(copy.fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  assert_int_equal(copy.bytes, st.bytes);
  assert_int_equal(copy.crc32c, st.crc32c);
  assert_int_equal(copy.gen, 19);
  assert_string_equal(copy.kind, "save");
  assert_int_equal(ms_state_verify(copy.fd, copy.bytes, copy.crc32c, MAX), 0);
  ms_state_clear(&copy);
  assert_int_equal(ms_state_verify(st.fd, st.bytes, st.crc32c, MAX), 0);
  copy.fd = 12345;
  st.fd = -1; /* a state without a memfd cannot be copied */
  assert_int_equal(ms_state_dup(&st, &copy), -EBADF);
  assert_int_equal(copy.fd, 12345);
}

static void dir_loose_reports_group_and_world_write_bits(void** state) {
  fx_t* fx = *state;
  assert_int_equal(chmod(fx->dir, 0700), 0);
  assert_int_equal(ms_state_dir_loose(fx->dir), 0);
  assert_int_equal(chmod(fx->dir, 0750), 0);
  assert_int_equal(ms_state_dir_loose(fx->dir), 0);
  assert_int_equal(chmod(fx->dir, 0770), 0);
  assert_int_equal(ms_state_dir_loose(fx->dir), S_IWGRP);
  assert_int_equal(chmod(fx->dir, 01777), 0);
  assert_int_equal(ms_state_dir_loose(fx->dir), S_IWGRP | S_IWOTH);
  assert_int_equal(chmod(fx->dir, 0700), 0);
  assert_int_equal(ms_state_dir_loose(in(fx, "missing")), 0);
}

static void load_of_missing_state_returns_enoent(void** state) {
  fx_t* fx = *state;
  ms_state_t got;
  assert_int_equal(ms_state_load(fx->dir, MAX, &got), -ENOENT);
}

/* Stores a 64 KiB state, then lets the test damage dir/state. */
static void store_small(fx_t* fx) {
  ms_state_t st = make_state(64 * 1024, 9);
  assert_int_equal(ms_state_store(fx->dir, &st), 0);
  ms_state_clear(&st);
}

static void load_rejects_corrupt_payload_byte(void** state) {
  fx_t* fx = *state;
  ms_state_t got;
  uint8_t b;
  int fd;
  store_small(fx);
  fd = open(in(fx, "state"), O_RDWR | O_CLOEXEC);
  assert_int_equal(pread(fd, &b, 1, 32 + 40000), 1);
  b ^= 0x20;
  assert_int_equal(pwrite(fd, &b, 1, 32 + 40000), 1);
  close(fd);
  assert_int_equal(ms_state_load(fx->dir, MAX, &got), -EBADMSG);
}

static void load_rejects_truncated_file(void** state) {
  fx_t* fx = *state;
  ms_state_t got;
  store_small(fx);
  assert_int_equal(truncate(in(fx, "state"), 32 + 64 * 1024 - 1), 0);
  assert_int_equal(ms_state_load(fx->dir, MAX, &got), -EBADMSG);
  assert_int_equal(truncate(in(fx, "state"), 20), 0);
  assert_int_equal(ms_state_load(fx->dir, MAX, &got), -EBADMSG);
}

static void load_rejects_bad_magic(void** state) {
  fx_t* fx = *state;
  ms_state_t got;
  int fd;
  store_small(fx);
  fd = open(in(fx, "state"), O_WRONLY | O_CLOEXEC);
  assert_int_equal(pwrite(fd, "MSSTATE2", 8, 0), 8);
  close(fd);
  assert_int_equal(ms_state_load(fx->dir, MAX, &got), -EBADMSG);
}

static void load_rejects_state_over_max(void** state) {
  fx_t* fx = *state;
  ms_state_t got;
  store_small(fx);
  assert_int_equal(ms_state_load(fx->dir, 64 * 1024 - 1, &got), -EFBIG);
  assert_int_equal(ms_state_load(fx->dir, 64 * 1024, &got), 0);
  ms_state_clear(&got);
}

static void load_refuses_symlinked_state(void** state) {
  fx_t* fx = *state;
  ms_state_t st = make_state(100, 10), got;
  char real[128];
  snprintf(real, sizeof(real), "%s/real", fx->dir);
  assert_int_equal(mkdir(real, 0700), 0);
  assert_int_equal(ms_state_store(real, &st), 0);
  assert_int_equal(symlink("real/state", in(fx, "state")), 0);
  assert_int_equal(ms_state_load(fx->dir, MAX, &got), -ELOOP);
  ms_state_clear(&st);
}

static void dir_prepare_refuses_symlink(void** state) {
  fx_t* fx = *state;
  assert_int_equal(symlink(fx->dir, in(fx, "link")), 0);
  assert_int_equal(ms_state_dir_prepare(fx->path), -ELOOP);
}

static void dir_prepare_refuses_regular_file(void** state) {
  fx_t* fx = *state;
  int fd = open(in(fx, "file"), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  close(fd);
  assert_int_equal(ms_state_dir_prepare(fx->path), -ENOTDIR);
}

static void dir_prepare_creates_missing_dir_0700(void** state) {
  fx_t* fx = *state;
  struct stat sb;
  assert_int_equal(ms_state_dir_prepare(in(fx, "new")), 0);
  assert_int_equal(lstat(fx->path, &sb), 0);
  assert_true(S_ISDIR(sb.st_mode));
  assert_int_equal(sb.st_mode & 07777, 0700);
  assert_int_equal(ms_state_dir_prepare(fx->path), 0);
  assert_int_equal(ms_state_dir_prepare(in(fx, "no/such")), -ENOENT);
}

/* Root ignores permissions, so the chmod case can only run unprivileged. */
static void store_into_read_only_dir_fails_and_keeps_state(void** state) {
  fx_t* fx = *state;
  ms_state_t st = make_state(100, 11), got;
  if (geteuid() == 0) {
    print_message("skipped: running as root, chmod 0500 does not block\n");
    ms_state_clear(&st);
    skip();
  }
  store_small(fx);
  assert_int_equal(chmod(fx->dir, 0500), 0);
  assert_int_equal(ms_state_dir_prepare(fx->dir), -EACCES);
  assert_int_equal(ms_state_store(fx->dir, &st), -EACCES);
  assert_int_equal(ms_state_load(fx->dir, MAX, &got), 0);
  assert_int_equal(got.gen, 9);
  ms_state_clear(&got);
  ms_state_clear(&st);
}

static void store_under_regular_file_fails_with_enotdir(void** state) {
  fx_t* fx = *state;
  ms_state_t st = make_state(100, 12);
  int fd = open(in(fx, "file"), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  close(fd);
  assert_int_equal(ms_state_store(in(fx, "file/dir"), &st), -ENOTDIR);
  ms_state_clear(&st);
}

/* RLIMIT_FSIZE binds root too: the write of the new state fails halfway
 * (EFBIG), which must leave the old state and no tmp file behind. */
static void store_failing_mid_write_keeps_previous_state(void** state) {
  fx_t* fx = *state;
  ms_state_t big = make_state(3 * MIB, 13), got;
  struct rlimit old, low;
  int err;
  store_small(fx);
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
  low = old;
  low.rlim_cur = MIB;
  signal(SIGXFSZ, SIG_IGN);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &low), 0);
  err = ms_state_store(fx->dir, &big);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
  signal(SIGXFSZ, SIG_DFL);
  assert_int_equal(err, -EFBIG);
  assert_int_equal(access(in(fx, "state.tmp"), F_OK), -1);
  assert_int_equal(ms_state_load(fx->dir, MAX, &got), 0);
  assert_int_equal(got.gen, 9);
  assert_pattern(got.fd, 64 * 1024, 9);
  ms_state_clear(&got);
  ms_state_clear(&big);
}

static void replace_closes_previous_fd_and_empties_source(void** state) {
  ms_state_t cur = make_state(10, 14), next = make_state(20, 15);
  int old_fd = cur.fd, new_fd = next.fd;
  (void)state;
  ms_state_replace(&cur, &next);
  assert_int_equal(fcntl(old_fd, F_GETFD), -1);
  assert_int_equal(errno, EBADF);
  assert_int_equal(cur.fd, new_fd);
  assert_int_equal(cur.gen, 15);
  assert_int_equal(cur.bytes, 20);
  assert_int_equal(next.fd, -1);
  ms_state_clear(&cur);
  assert_int_equal(fcntl(new_fd, F_GETFD), -1);
  assert_int_equal(cur.fd, -1);
  assert_int_equal(cur.bytes, 0);
}

/* Workers may hand over hundreds of MiB: a big state is checked whole
 * (its speed is measured in bench/, not asserted here).  The memfd is
 * filled through a mapping so the test holds one copy. */
static void verify_accepts_256_mib_state(void** state) {
  size_t len = 256 * MIB;
  int fd = memfd_create("big", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  uint8_t* p;
  uint32_t crc;
  (void)state;
  assert_int_equal(ftruncate(fd, len), 0);
  p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  assert_true(p != MAP_FAILED);
  fill(p, len, 16);
  crc = memsup_crc32c(0, p, len);
  munmap(p, len);
  assert_int_equal(fcntl(fd, F_ADD_SEALS, ALL_SEALS), 0);
  assert_int_equal(ms_state_verify(fd, len, crc, len), 0);
  assert_int_equal(ms_state_verify(fd, len, crc ^ 1, len), -EBADMSG);
  close(fd);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(verify_accepts_sealed_memfd_with_matching_crc),
      T(verify_rejects_memfd_without_write_seal),
      T(verify_rejects_regular_file_as_unsealed),
      T(verify_rejects_wrong_crc),
      T(verify_rejects_size_mismatch),
      T(verify_rejects_over_max_without_reading),
      T(zero_byte_state_verifies_and_round_trips),
      T(memfd_cannot_be_written_resized_or_unsealed),
      T(store_then_load_round_trips_bytes_gen_and_time),
      T(store_replaces_stale_tmp_and_writes_mode_0600),
      T(store_replaces_planted_tmp_symlink_and_spares_its_target),
      T(store_fails_when_stale_tmp_cannot_be_removed),
      T(dup_is_close_on_exec_and_independent),
      T(dir_loose_reports_group_and_world_write_bits),
      T(load_of_missing_state_returns_enoent),
      T(load_rejects_corrupt_payload_byte),
      T(load_rejects_truncated_file),
      T(load_rejects_bad_magic),
      T(load_rejects_state_over_max),
      T(load_refuses_symlinked_state),
      T(dir_prepare_refuses_symlink),
      T(dir_prepare_refuses_regular_file),
      T(dir_prepare_creates_missing_dir_0700),
      T(store_into_read_only_dir_fails_and_keeps_state),
      T(store_under_regular_file_fails_with_enotdir),
      T(store_failing_mid_write_keeps_previous_state),
      T(replace_closes_previous_fd_and_empties_source),
      T(verify_accepts_256_mib_state),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
