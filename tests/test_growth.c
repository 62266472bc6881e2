/* test_growth.c: the recent-growth estimator on the shapes memsup meets:
 * a steady leak, growth that stopped, a spike, dense and sparse sampling. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "growth.h"

#define MIB(x) ((uint64_t)((x) * 1048576.0))
#define MS(x) ((uint64_t)(x) * 1000000ull)
#define SEC(x) ((uint64_t)((x) * 1e9))

static void steady_leak_is_a_line(void** state) {
  (void)state;
  ms_growth_t g;
  ms_growth_fit_t f;
  uint64_t t;

  ms_growth_init(&g, SEC(10));
  /* 20 MiB/s from 5 MiB, a full read every 50 ms for 6 s. */
  for (t = 0; t <= SEC(6); t += MS(50))
    ms_growth_add(&g, SEC(100) + t, MIB(5) + MIB(20.0 * (double)t / 1e9));
  assert_int_equal(ms_growth_rate(&g, SEC(106), MS(500), &f), 0);
  assert_true(fabs(f.bps - 20.0 * 1048576) < 0.01 * 20 * 1048576);
  assert_true(f.r2 > 0.999);
  assert_true(f.span_s > 5.9);
  assert_int_equal(f.first, MIB(5));
  assert_int_equal(f.last, MIB(5) + MIB(120));
  assert_int_equal(f.min, f.first);
  assert_int_equal(f.max, f.last);
}

/* Seen with redis: it grew (at 296 MiB/min averaged over its life), then
 * stayed at 88 MiB for 14 s.  The recent window says flat. */
static void growth_that_stopped_is_flat(void** state) {
  (void)state;
  ms_growth_t g;
  ms_growth_fit_t f;
  uint64_t t;

  ms_growth_init(&g, SEC(10));
  for (t = 0; t <= SEC(18); t += MS(1000)) /* 0 -> 88 MiB in 18 s */
    ms_growth_add(&g, t, MIB(88.0 * (double)t / 18e9));
  for (; t <= SEC(32); t += MS(1000))
    ms_growth_add(&g, t, MIB(88));
  assert_int_equal(ms_growth_rate(&g, SEC(32), MS(500), &f), 0);
  assert_true(fabs(f.bps) < 1.0);
  assert_int_equal(f.min, MIB(88));
  assert_int_equal(f.max, MIB(88));
  assert_true(f.span_s >= 9 && f.span_s <= 10);
  /* The whole life would have said growth: the window is what differs. */
  ms_growth_init(&g, SEC(60));
  for (t = 0; t <= SEC(18); t += MS(1000))
    ms_growth_add(&g, t, MIB(88.0 * (double)t / 18e9));
  for (; t <= SEC(32); t += MS(1000))
    ms_growth_add(&g, t, MIB(88));
  assert_int_equal(ms_growth_rate(&g, SEC(32), MS(500), &f), 0);
  assert_true(f.bps > 1048576);
}

/* Flat under 1 MiB for 8 s, then 200 MiB for the last 0.6 s (sampled every
 * 50 ms there, as memsup does near the limit): the fit is poor, which
 * tells a spike from a leak's line. */
static void spike_fits_poorly(void** state) {
  (void)state;
  ms_growth_t g;
  ms_growth_fit_t f;
  uint64_t t;

  ms_growth_init(&g, SEC(10));
  for (t = 0; t < SEC(8); t += MS(1000)) ms_growth_add(&g, t, MIB(0.9));
  for (t = SEC(8); t <= SEC(8.6); t += MS(50)) ms_growth_add(&g, t, MIB(200));
  assert_int_equal(ms_growth_rate(&g, SEC(8.6), MS(500), &f), 0);
  assert_true(f.r2 < 0.8);
  assert_int_equal(f.min, MIB(0.9));
  assert_int_equal(f.max, MIB(200));
  assert_int_equal(f.last, MIB(200));
}

/* A read every 10 ms for 30 s: the ring still covers the whole window and
 * keeps the newest value. */
static void dense_samples_keep_the_window_covered(void** state) {
  (void)state;
  ms_growth_t g;
  ms_growth_fit_t f;
  uint64_t t;

  ms_growth_init(&g, SEC(10));
  for (t = 0; t <= SEC(30); t += MS(10)) ms_growth_add(&g, t, t / 1000);
  assert_true(g.n <= MS_GROWTH_POINTS);
  assert_int_equal(ms_growth_rate(&g, SEC(30), MS(500), &f), 0);
  assert_true(f.span_s >= 9.5);
  assert_true(f.n >= MS_GROWTH_POINTS / 2 - 2);
  assert_int_equal(f.last, SEC(30) / 1000);
  assert_true(fabs(f.bps - 1e6) < 1e3); /* 1 byte per us */
}

static void young_or_sparse_is_eagain(void** state) {
  (void)state;
  ms_growth_t g;
  ms_growth_fit_t f;

  ms_growth_init(&g, SEC(10));
  assert_int_equal(ms_growth_rate(&g, SEC(1), 0, &f), -EAGAIN);
  ms_growth_add(&g, SEC(1), MIB(1));
  ms_growth_add(&g, SEC(2), MIB(2));
  assert_int_equal(ms_growth_rate(&g, SEC(2), 0, &f), -EAGAIN);
  assert_int_equal(f.n, 2);
  ms_growth_add(&g, SEC(2.4), MIB(3));
  /* Three points over 1.4 s: enough unless 2 s are asked for. */
  assert_int_equal(ms_growth_rate(&g, SEC(2.4), SEC(2), &f), -EAGAIN);
  assert_int_equal(ms_growth_rate(&g, SEC(2.4), SEC(1), &f), 0);
  assert_true(f.bps > 0);
  /* Out of order: ignored. */
  ms_growth_add(&g, SEC(1.5), MIB(100));
  assert_int_equal(ms_growth_rate(&g, SEC(2.4), SEC(1), &f), 0);
  assert_int_equal(f.max, MIB(3));
  /* Points that left the window are not used. */
  assert_int_equal(ms_growth_rate(&g, SEC(11.5), 0, &f), -EAGAIN);
  assert_int_equal(f.n, 2);
  /* init starts a new line (a new worker). */
  ms_growth_init(&g, SEC(10));
  assert_int_equal(g.n, 0);
  /* Many points at one instant: no line. */
  ms_growth_init(&g, 0);
  for (int i = 0; i < 5; i++) ms_growth_add(&g, SEC(3), MIB(i));
  assert_int_equal(ms_growth_rate(&g, SEC(3), 0, &f), -EAGAIN);
}

static void shrinking_is_negative(void** state) {
  (void)state;
  ms_growth_t g;
  ms_growth_fit_t f;

  ms_growth_init(&g, SEC(10));
  for (uint64_t t = 0; t <= SEC(5); t += MS(500))
    ms_growth_add(&g, t, MIB(100) - MIB(2.0 * (double)t / 1e9));
  assert_int_equal(ms_growth_rate(&g, SEC(5), MS(500), &f), 0);
  assert_true(fabs(f.bps + 2.0 * 1048576) < 0.01 * 2 * 1048576);
}

/* The jump's shape: the floor, the rise, the top. */
static void jump_shape_splits_floor_rise_and_top(void** state) {
  (void)state;
  ms_growth_t g;
  ms_growth_fit_t f;
  uint64_t t;

  ms_growth_init(&g, SEC(10));
  for (t = 0; t < SEC(8); t += SEC(1)) ms_growth_add(&g, t, MIB(1));
  ms_growth_add(&g, SEC(7.5), MIB(20)); /* a read during the ramp */
  for (t = SEC(8); t <= SEC(8.6); t += MS(100)) ms_growth_add(&g, t, MIB(100));
  assert_int_equal(ms_growth_rate(&g, SEC(8.6), MS(500), &f), 0);
  assert_int_equal(f.floor_n, 8);
  assert_true(fabs(f.floor_s - 7.0) < 1e-6);
  assert_int_equal(f.floor_max, MIB(1));
  assert_true(fabs(f.rise_s - 1.0) < 1e-6);
  assert_true(fabs(f.high_s - 0.6) < 1e-6);
  /* A line: its floor is its first eighth. */
  ms_growth_init(&g, SEC(10));
  for (t = 0; t <= SEC(6); t += MS(100))
    ms_growth_add(&g, t, MIB(60.0 * (double)t / 6e9));
  assert_int_equal(ms_growth_rate(&g, SEC(6), MS(500), &f), 0);
  assert_true(f.floor_s < 0.76);
  assert_true(f.rise_s > 2 && f.high_s > 2.9);
  /* Flat: no top, all of it is floor. */
  ms_growth_init(&g, SEC(10));
  for (t = 0; t <= SEC(4); t += MS(500)) ms_growth_add(&g, t, MIB(5));
  assert_int_equal(ms_growth_rate(&g, SEC(4), MS(500), &f), 0);
  assert_true(fabs(f.high_s) < 1e-9);
  assert_true(fabs(f.floor_s - 4.0) < 1e-6);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(steady_leak_is_a_line),
      cmocka_unit_test(growth_that_stopped_is_flat),
      cmocka_unit_test(spike_fits_poorly),
      cmocka_unit_test(jump_shape_splits_floor_rise_and_top),
      cmocka_unit_test(dense_samples_keep_the_window_covered),
      cmocka_unit_test(young_or_sparse_is_eagain),
      cmocka_unit_test(shrinking_is_negative),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
