/* test_cause.c: the gauge series (supervisor/cause.c): correlation with
 * footprint, fall-back at a restart, and when a purge can give back. */
#include <math.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cause.h"

#define MIB(x) ((uint64_t)((x) * 1048576.0))
#define SEC(x) ((uint64_t)((x) * 1e9))

static void corr_of_lines_and_noise(void** state) {
  (void)state;
  double x[5] = {1, 2, 3, 4, 5}, up[5] = {10, 20, 30, 40, 50},
         down[5] = {5, 4, 3, 2, 1}, flat[5] = {7, 7, 7, 7, 7},
         gap[5] = {10, NAN, 30, NAN, 50};
  assert_true(fabs(ms_cause_corr(x, up, 5) - 1) < 1e-12);
  assert_true(fabs(ms_cause_corr(x, down, 5) + 1) < 1e-12);
  assert_true(ms_cause_corr(x, flat, 5) == 0); /* does not vary */
  assert_true(fabs(ms_cause_corr(x, gap, 5) - 1) < 1e-12); /* NaN skipped */
  assert_true(ms_cause_corr(x, gap, 2) == 0);              /* < 3 pairs */
}

static void gauge(ms_heap_t* h, const char* name, double v) {
  strcpy(h->gauges[h->ngauges].name, name);
  h->gauges[h->ngauges++].value = v;
}

static void fall_back_is_judged_at_the_first_value_of_a_life(void** state) {
  (void)state;
  ms_cause_t c;
  ms_heap_t h;
  ms_cause_init(&c);
  ms_cause_new_life(&c);
  for (int i = 0; i < 10; i++) {
    memset(&h, 0, sizeof(h));
    gauge(&h, "cache", i * 10.0);
    gauge(&h, "requests", 100.0 + i);
    ms_cause_add(&c, SEC(i), MIB(i + 1), &h);
  }
  assert_int_equal(c.g[0].fell_back, -1);
  ms_cause_new_life(&c);
  memset(&h, 0, sizeof(h));
  gauge(&h, "cache", 0);
  gauge(&h, "requests", 109);
  ms_cause_add(&c, SEC(11), MIB(1), &h);
  assert_int_equal(c.g[0].fell_back, 1);
  assert_int_equal(c.g[1].fell_back, 0);
}

static void shrinking_or_untracked_gauges_are_not_named(void** state) {
  (void)state;
  ms_cause_t c;
  ms_heap_t h;
  ms_cause_best_t b;
  ms_cause_init(&c);
  ms_cause_new_life(&c);
  for (int i = 0; i < 10; i++) {
    memset(&h, 0, sizeof(h));
    gauge(&h, "free_slots", 100.0 - i);         /* shrank */
    gauge(&h, "conns", (i % 2) ? 5 : 50);       /* does not track */
    ms_cause_add(&c, SEC(i), MIB(i + 1), &h);
  }
  ms_cause_best(&c, &b);
  assert_false(b.found);
  /* No gauges at all (a worker without the SDK). */
  ms_cause_init(&c);
  for (int i = 0; i < 10; i++) ms_cause_add(&c, SEC(i), MIB(i + 1), NULL);
  ms_cause_best(&c, &b);
  assert_false(b.found);
}

static void dense_points_replace_the_newest(void** state) {
  (void)state;
  ms_cause_t c;
  ms_cause_init(&c);
  for (int i = 0; i < 1000; i++) ms_cause_add(&c, SEC(100) + SEC(0.05) * i, MIB(1), NULL);
  /* 50 s at 50 ms: the ring keeps points 200-250 ms apart, so the last
   * 64 cover over 12 s, not 3. */
  assert_true(c.n <= MS_CAUSE_POINTS);
  assert_true(c.t_ns[(c.head + c.n - 1) % MS_CAUSE_POINTS] -
                  c.t_ns[c.head] >= SEC(12));
}

static void purge_is_useful_only_with_something_to_give_back(void** state) {
  (void)state;
  assert_true(ms_cause_purge_useful(MIB(64), 0, 0));       /* unknown */
  assert_false(ms_cause_purge_useful(MIB(64), 1, MIB(62)));
  assert_true(ms_cause_purge_useful(MIB(64), 1, MIB(56)));  /* exactly 1/8 */
  assert_false(ms_cause_purge_useful(MIB(64), 1, MIB(56) + 1));
  assert_false(ms_cause_purge_useful(MIB(64), 1, MIB(80))); /* heap above */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(corr_of_lines_and_noise),
      cmocka_unit_test(fall_back_is_judged_at_the_first_value_of_a_life),
      cmocka_unit_test(shrinking_or_untracked_gauges_are_not_named),
      cmocka_unit_test(dense_points_replace_the_newest),
      cmocka_unit_test(purge_is_useful_only_with_something_to_give_back),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
