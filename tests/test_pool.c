/* test_pool.c: the early-restart plan of a pool (supervisor/pool.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pool.h"

#define MIB (1024.0 * 1024.0)
#define LIMIT ((uint64_t)(100 * MIB))

static ms_pool_slot_t at(double value_mib, double mib_per_s) {
  ms_pool_slot_t s = {1, value_mib * MIB, mib_per_s * MIB};
  return s;
}

/* Four workers started together, leaking alike: all due in 24 s.  Back to
 * back, with 2 s restarts, the first must start 6 s before its due time:
 * not yet. */
static void far_from_due_nothing_is_early(void** state) {
  (void)state;
  ms_pool_slot_t s[4] = {at(76, 1), at(76, 1), at(76, 1), at(76, 1)};
  ms_early_t why;
  assert_int_equal(ms_pool_stagger(s, 4, LIMIT, 2.0, 0.75, &why), -1);
}

/* The same four 5 s from the limit: the plan (due 5, starts 5, 3, 1, -1)
 * says the first must go now, and names the next one and the chain. */
static void four_due_together_the_first_goes_early(void** state) {
  (void)state;
  ms_pool_slot_t s[4] = {at(95, 1), at(95, 1), at(95, 1), at(95, 1)};
  ms_early_t why;
  assert_int_equal(ms_pool_stagger(s, 4, LIMIT, 2.0, 0.75, &why), 0);
  assert_true(why.due_in_s > 4.99 && why.due_in_s < 5.01);
  assert_int_equal(why.next_slot, 1);
  assert_int_equal(why.planned, 4);
  assert_true(why.restart_s == 2.0);
  assert_true(why.fraction == 0.75);
}

/* The slot due first is the one asked, whatever its number. */
static void the_slot_due_first_is_asked(void** state) {
  (void)state;
  ms_pool_slot_t s[3] = {at(90, 1), at(96, 1), at(95, 1)};
  ms_early_t why;
  /* due 10, 4, 5: starts 10, min(4, 5-2)=3, 5 -> slot 1 within 2 s? 3 > 2:
   * not yet; a second later it is. */
  assert_int_equal(ms_pool_stagger(s, 3, LIMIT, 2.0, 0.75, &why), -1);
  s[1] = at(97, 1);
  s[2] = at(96, 1);
  s[0] = at(91, 1);
  assert_int_equal(ms_pool_stagger(s, 3, LIMIT, 2.0, 0.75, &why), 1);
  assert_int_equal(why.next_slot, 2);
  assert_int_equal(why.planned, 2);
}

/* Due times already a restart apart: each restart at its limit is fine. */
static void spread_out_slots_are_left_to_their_limit(void** state) {
  (void)state;
  ms_pool_slot_t s[4] = {at(95, 1), at(90, 1), at(85, 1), at(80, 1)};
  ms_early_t why;
  assert_int_equal(ms_pool_stagger(s, 4, LIMIT, 2.0, 0.75, &why), -1);
}

/* Never below the fraction, even when the plan asks: the slot then goes
 * as soon as it reaches it. */
static void never_below_the_fraction(void** state) {
  (void)state;
  ms_pool_slot_t s[2] = {at(50, 50), at(50, 50)}; /* due in 1 s each */
  ms_early_t why;
  assert_int_equal(ms_pool_stagger(s, 2, LIMIT, 2.0, 0.75, &why), -1);
  s[0] = at(76, 50);
  s[1] = at(76, 50);
  assert_int_equal(ms_pool_stagger(s, 2, LIMIT, 2.0, 0.75, &why), 0);
}

/* Slots not in the plan (restarting, held, no clear trend) and slots not
 * growing do not make anyone early. */
static void only_eligible_growing_slots_count(void** state) {
  (void)state;
  ms_pool_slot_t s[3] = {at(95, 1), at(95, 1), at(95, 0)};
  ms_early_t why;
  s[1].eligible = 0;
  assert_int_equal(ms_pool_stagger(s, 3, LIMIT, 2.0, 0.75, &why), -1);
  s[2].bps = -MIB;
  assert_int_equal(ms_pool_stagger(s, 3, LIMIT, 2.0, 0.75, &why), -1);
  s[1].eligible = 1; /* two due in 5 s: not yet; at 4 s they are */
  assert_int_equal(ms_pool_stagger(s, 3, LIMIT, 2.0, 0.75, &why), -1);
  s[0] = at(96, 1);
  s[1] = at(96, 1);
  assert_int_equal(ms_pool_stagger(s, 3, LIMIT, 2.0, 0.75, &why), 0);
  assert_int_equal(why.next_slot, 1);
}

/* No limit, one slot, or no restart time: no plan. */
static void degenerate_pools_plan_nothing(void** state) {
  (void)state;
  ms_pool_slot_t s[2] = {at(95, 1), at(95, 1)};
  ms_early_t why;
  assert_int_equal(ms_pool_stagger(s, 2, 0, 2.0, 0.75, &why), -1);
  assert_int_equal(ms_pool_stagger(s, 1, LIMIT, 2.0, 0.75, &why), -1);
  assert_int_equal(ms_pool_stagger(s, 2, LIMIT, 0, 0.75, &why), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(far_from_due_nothing_is_early),
      cmocka_unit_test(four_due_together_the_first_goes_early),
      cmocka_unit_test(the_slot_due_first_is_asked),
      cmocka_unit_test(spread_out_slots_are_left_to_their_limit),
      cmocka_unit_test(never_below_the_fraction),
      cmocka_unit_test(only_eligible_growing_slots_count),
      cmocka_unit_test(degenerate_pools_plan_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
