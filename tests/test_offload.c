/* test_offload.c: the threadpool jobs (supervisor/offload.c) on a real
 * libuv loop: each answers once, on the loop thread, with what the
 * blocking call it wraps would have said. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "handoff.h"
#include "memsup_wire.h"
#include "offload.h"

typedef struct {
  int calls;
  int err;
  int fd;
  uint64_t seq;
  unsigned id;
  int n;
  pid_t top;
  uv_thread_t thread;
} answer_t;

static void verified(void* arg, const ms_ev_state_t* st, int err) {
  answer_t* a = arg;
  a->calls++;
  a->err = err;
  a->fd = st->fd;
  a->seq = st->seq;
  a->thread = uv_thread_self();
}

static void evidenced(void* arg, unsigned id, int n, const ms_mapping_t* rows,
                      const ms_evidence_where_t* where) {
  answer_t* a = arg;
  a->calls++;
  a->id = id;
  a->n = n;
  a->top = where ? where->top : -1;
  if (n > 0) assert_non_null(rows);
  a->thread = uv_thread_self();
}

static ms_ev_state_t state_of(int fd, const char* bytes, size_t len) {
  ms_ev_state_t st;
  memset(&st, 0, sizeof(st));
  st.fd = fd;
  st.seq = 7;
  st.bytes = len;
  st.crc32c = memsup_crc32c(0, bytes, len);
  strcpy(st.kind, "save");
  return st;
}

static void verify_of_a_sealed_memfd_passes_off_the_loop(void** state) {
  (void)state;
  uv_loop_t loop;
  answer_t a = {0};
  uv_thread_t self = uv_thread_self();
  assert_int_equal(uv_loop_init(&loop), 0);
  int fd = ms_state_memfd("hello state", 11);
  assert_true(fd >= 0);
  ms_ev_state_t st = state_of(fd, "hello state", 11);
  ms_offload_verify(&loop, &st, 1 << 20, verified, &a);
  assert_int_equal(a.calls, 0); /* queued, not done in the call */
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(a.calls, 1);
  assert_int_equal(a.err, 0);
  assert_int_equal(a.fd, fd); /* handed back, still the caller's */
  assert_int_equal(a.seq, 7);
  assert_true(uv_thread_equal(&a.thread, &self));
  assert_int_equal(close(fd), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void verify_refuses_a_wrong_checksum_and_an_oversized_state(void** state) {
  (void)state;
  uv_loop_t loop;
  answer_t a = {0};
  assert_int_equal(uv_loop_init(&loop), 0);
  int fd = ms_state_memfd("hello state", 11);
  ms_ev_state_t st = state_of(fd, "hello state", 11);
  st.crc32c ^= 1;
  ms_offload_verify(&loop, &st, 1 << 20, verified, &a);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(a.err, -EBADMSG);
  st = state_of(fd, "hello state", 11);
  ms_offload_verify(&loop, &st, 4, verified, &a);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(a.calls, 2);
  assert_int_equal(a.err, -EFBIG);
  close(fd);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void verify_without_a_memfd_answers_at_once(void** state) {
  (void)state;
  uv_loop_t loop;
  answer_t a = {0};
  assert_int_equal(uv_loop_init(&loop), 0);
  ms_ev_state_t st = state_of(-1, "", 0);
  ms_offload_verify(&loop, &st, 1 << 20, verified, &a);
  assert_int_equal(a.calls, 1);
  assert_int_equal(a.err, -EBADMSG);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void evidence_of_a_live_process_has_rows(void** state) {
  (void)state;
  uv_loop_t loop;
  answer_t a = {0};
  assert_int_equal(uv_loop_init(&loop), 0);
  ms_offload_evidence(&loop, getpid(), 0, MS_RANK_FOOTPRINT, 42, evidenced, &a);
  assert_int_equal(a.calls, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(a.calls, 1);
  assert_int_equal(a.id, 42);
  assert_true(a.n > 0);
  assert_int_equal(a.top, getpid()); /* without --tree: the worker's own */
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void evidence_of_a_gone_process_says_so(void** state) {
  (void)state;
  uv_loop_t loop;
  answer_t a = {0};
  assert_int_equal(uv_loop_init(&loop), 0);
  ms_offload_evidence(&loop, 0x3fffffff, 0, MS_RANK_FOOTPRINT, 1, evidenced, &a);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(a.calls, 1);
  assert_true(a.n < 0);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void store_writes_the_state_and_once_more_when_it_changed(void** state) {
  (void)state;
  uv_loop_t loop;
  char dir[] = "/tmp/test_offload.XXXXXX";
  assert_non_null(mkdtemp(dir));
  assert_int_equal(uv_loop_init(&loop), 0);
  ms_state_t cur;
  ms_state_init(&cur);
  ms_store_t s;
  ms_store_init(&s, &loop, dir, &cur);
  ms_store_request(&s); /* no state yet: nothing */
  assert_int_equal(s.storing, 0);

  cur.fd = ms_state_memfd("first", 5);
  cur.bytes = 5;
  cur.crc32c = memsup_crc32c(0, "first", 5);
  strcpy(cur.kind, "save");
  ms_store_request(&s);
  assert_int_equal(s.storing, 1);
  ms_state_t next;
  ms_state_init(&next);
  next.fd = ms_state_memfd("second!", 7);
  next.bytes = 7;
  next.crc32c = memsup_crc32c(0, "second!", 7);
  strcpy(next.kind, "checkpoint");
  ms_state_replace(&cur, &next);
  ms_store_request(&s); /* while the first runs: once more after it */
  assert_int_equal(s.again, 1);
  uv_run(&loop, UV_RUN_DEFAULT);

  ms_state_t back;
  assert_int_equal(ms_state_load(dir, 1 << 20, &back), 0);
  assert_int_equal(back.bytes, 7);
  char buf[8] = {0};
  assert_int_equal(pread(back.fd, buf, 7, 0), 7);
  assert_string_equal(buf, "second!");
  ms_state_clear(&back);

  ms_store_stop(&s);
  ms_store_request(&s);
  assert_int_equal(s.storing, 0);
  ms_state_clear(&cur);
  assert_int_equal(uv_loop_close(&loop), 0);
  char path[64];
  snprintf(path, sizeof(path), "%s/state", dir);
  unlink(path);
  rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(verify_of_a_sealed_memfd_passes_off_the_loop),
      cmocka_unit_test(verify_refuses_a_wrong_checksum_and_an_oversized_state),
      cmocka_unit_test(verify_without_a_memfd_answers_at_once),
      cmocka_unit_test(evidence_of_a_live_process_has_rows),
      cmocka_unit_test(evidence_of_a_gone_process_says_so),
      cmocka_unit_test(store_writes_the_state_and_once_more_when_it_changed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
