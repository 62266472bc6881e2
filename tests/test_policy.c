/* test_policy.c: the restart decisions, exactly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "policy.h"

#define MS(x) ((uint64_t)(x) * 1000000ull)
#define SEC(x) ((uint64_t)(x) * 1000000000ull)

static void limit_restarts_on_first_sample_over_without_for(void** state) {
  (void)state;
  ms_limit_state_t st = {0};
  assert_int_equal(ms_policy_limit(&st, 100, 0, MS_VALUE_KNOWN, 99, MS(0)), 0);
  assert_int_equal(ms_policy_limit(&st, 100, 0, MS_VALUE_KNOWN, 100, MS(50)), 1);
}

static void limit_zero_means_no_limit(void** state) {
  (void)state;
  ms_limit_state_t st = {0};
  assert_int_equal(ms_policy_limit(&st, 0, 0, MS_VALUE_KNOWN, UINT64_MAX, 1), 0);
}

static void limit_with_for_needs_continuous_overs(void** state) {
  (void)state;
  ms_limit_state_t st = {0};
  uint64_t f = SEC(2);
  assert_int_equal(ms_policy_limit(&st, 100, f, MS_VALUE_KNOWN, 150, SEC(1)), 0);
  assert_int_equal(ms_policy_limit(&st, 100, f, MS_VALUE_KNOWN, 150, SEC(2)), 0);
  /* A dip under the limit restarts the clock: a spike is not a trend. */
  assert_int_equal(ms_policy_limit(&st, 100, f, MS_VALUE_KNOWN, 50, SEC(2) + 1), 0);
  assert_int_equal(ms_policy_limit(&st, 100, f, MS_VALUE_KNOWN, 150, SEC(3)), 0);
  assert_int_equal(ms_policy_limit(&st, 100, f, MS_VALUE_KNOWN, 150, SEC(5) - 1), 0);
  assert_int_equal(ms_policy_limit(&st, 100, f, MS_VALUE_KNOWN, 150, SEC(5)), 1);
}

static void limit_unknown_value_keeps_last_verdict(void** state) {
  (void)state;
  ms_limit_state_t st = {0};
  assert_int_equal(ms_policy_limit(&st, 100, SEC(1), MS_VALUE_UNKNOWN, 0, 0), 0);
  assert_int_equal(ms_policy_limit(&st, 100, SEC(1), MS_VALUE_KNOWN, 120, SEC(1)), 0);
  /* Still over as far as we know: the --for clock keeps running. */
  assert_int_equal(ms_policy_limit(&st, 100, SEC(1), MS_VALUE_UNKNOWN, 0, SEC(2)), 1);
}

static void purge_is_rate_limited(void** state) {
  (void)state;
  assert_int_equal(ms_policy_purge(0, 500, SEC(1), 0, SEC(10)), 0);
  assert_int_equal(ms_policy_purge(100, 99, SEC(1), 0, SEC(10)), 0);
  assert_int_equal(ms_policy_purge(100, 100, SEC(1), 0, SEC(10)), 1);
  assert_int_equal(ms_policy_purge(100, 200, SEC(5), SEC(1), SEC(10)), 0);
  assert_int_equal(ms_policy_purge(100, 200, SEC(11), SEC(1), SEC(10)), 1);
}

static void backoff_doubles_from_100ms_and_caps_at_30s(void** state) {
  (void)state;
  assert_int_equal(ms_policy_backoff(1), MS(100));
  assert_int_equal(ms_policy_backoff(2), MS(200));
  assert_int_equal(ms_policy_backoff(3), MS(400));
  assert_int_equal(ms_policy_backoff(9), MS(25600));
  assert_int_equal(ms_policy_backoff(10), SEC(30));
  assert_int_equal(ms_policy_backoff(1000), SEC(30));
}

static void intensity_gives_up_on_the_crash_after_max(void** state) {
  (void)state;
  uint64_t times[4];
  ms_intensity_t in = {times, 3, 0, 0};
  assert_int_equal(ms_policy_crash(&in, SEC(10), SEC(1)), 0);
  assert_int_equal(ms_policy_crash(&in, SEC(10), SEC(2)), 0);
  assert_int_equal(ms_policy_crash(&in, SEC(10), SEC(3)), 0);
  assert_int_equal(ms_policy_crash(&in, SEC(10), SEC(4)), 1);
  assert_int_equal(ms_policy_crashes_within(&in, SEC(10), SEC(4)), 4);
}

static void intensity_forgets_crashes_outside_the_window(void** state) {
  (void)state;
  uint64_t times[3];
  ms_intensity_t in = {times, 2, 0, 0};
  assert_int_equal(ms_policy_crash(&in, SEC(10), SEC(1)), 0);
  assert_int_equal(ms_policy_crash(&in, SEC(10), SEC(5)), 0);
  /* The first crash is 11 s old by now: only two count. */
  assert_int_equal(ms_policy_crash(&in, SEC(10), SEC(12)), 0);
  assert_int_equal(ms_policy_crashes_within(&in, SEC(10), SEC(12)), 2);
  assert_int_equal(ms_policy_crash(&in, SEC(10), SEC(13)), 1);
}

static void unhelpful_restart_detected_and_backed_off(void** state) {
  (void)state;
  assert_int_equal(ms_policy_unhelpful(100 << 20, 3 << 20), 0);
  assert_int_equal(ms_policy_unhelpful(100 << 20, 95 << 20), 1);
  assert_int_equal(ms_policy_unhelpful(0, 0), 0);
  assert_int_equal(ms_policy_hold(0), 0);
  assert_int_equal(ms_policy_hold(1), SEC(10));
  assert_int_equal(ms_policy_hold(3), SEC(40));
  assert_int_equal(ms_policy_hold(6), SEC(300));
  assert_int_equal(ms_policy_hold(50), SEC(300));
}

static void hold_ends_only_for_a_worker_still_growing(void** state) {
  (void)state;
  const uint64_t M = 1 << 20;
  /* Flat over the limit (steady state, a spike): held. */
  assert_int_equal(ms_policy_hold_broken(SEC(60), 130 * M, 140 * M, 128 * M), 0);
  /* Grown by more than the limit, but not for long (a start-up peak
   * still touching its buffer): held. */
  assert_int_equal(ms_policy_hold_broken(SEC(4), 130 * M, 300 * M, 128 * M), 0);
  /* A cache that went on filling after the crossing, even past the save
   * ceiling (128 + 64 MiB): held (restarting it would loop). */
  assert_int_equal(ms_policy_hold_broken(SEC(60), 129 * M, 200 * M, 128 * M), 0);
  /* Still growing 5 s on, by the limit: a leak, restarted. */
  assert_int_equal(ms_policy_hold_broken(SEC(5), 130 * M, 258 * M, 128 * M), 1);
  assert_int_equal(ms_policy_hold_broken(SEC(5), 130 * M, 257 * M, 128 * M), 0);
}

static void reclaimed_needs_a_long_old_life_and_a_small_new_start(void** state) {
  (void)state;
  const uint64_t M = 1 << 20;
  assert_int_equal(ms_policy_reclaimed(100 * M, 50 * M, SEC(8)), 1);
  assert_int_equal(ms_policy_reclaimed(100 * M, 51 * M, SEC(8)), 0);
  assert_int_equal(ms_policy_reclaimed(100 * M, 1 * M, SEC(7)), 0);
}

static void judge_window_is_half_the_last_life_within_4s_and_60s(void** state) {
  (void)state;
  assert_int_equal(ms_policy_judge_window(0), SEC(4));
  assert_int_equal(ms_policy_judge_window(SEC(1)), SEC(4));
  /* 20 MiB/s under 128 MiB: lives of 6.4 s, judged at 4 s (the floor). */
  assert_int_equal(ms_policy_judge_window(6400ull * 1000 * 1000), SEC(4));
  assert_int_equal(ms_policy_judge_window(SEC(20)), SEC(10));
  assert_int_equal(ms_policy_judge_window(SEC(3600)), SEC(60));
}

/* limit + max(limit / 4, 64 MiB), saturating; no limit, no ceiling. */
static void ceiling_is_the_limit_plus_a_quarter_or_64_mib(void** state) {
  (void)state;
  const uint64_t mib = 1ull << 20;
  assert_int_equal(ms_policy_ceiling(0), 0);
  assert_int_equal(ms_policy_ceiling(64 * mib), 128 * mib);
  assert_int_equal(ms_policy_ceiling(256 * mib), 320 * mib);
  assert_int_equal(ms_policy_ceiling(1024 * mib), 1280 * mib);
  assert_true(ms_policy_ceiling(UINT64_MAX) == UINT64_MAX);
  assert_true(ms_policy_ceiling(UINT64_MAX - mib) == UINT64_MAX);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(limit_restarts_on_first_sample_over_without_for),
      cmocka_unit_test(limit_zero_means_no_limit),
      cmocka_unit_test(limit_with_for_needs_continuous_overs),
      cmocka_unit_test(limit_unknown_value_keeps_last_verdict),
      cmocka_unit_test(purge_is_rate_limited),
      cmocka_unit_test(backoff_doubles_from_100ms_and_caps_at_30s),
      cmocka_unit_test(intensity_gives_up_on_the_crash_after_max),
      cmocka_unit_test(intensity_forgets_crashes_outside_the_window),
      cmocka_unit_test(unhelpful_restart_detected_and_backed_off),
      cmocka_unit_test(ceiling_is_the_limit_plus_a_quarter_or_64_mib),
      cmocka_unit_test(reclaimed_needs_a_long_old_life_and_a_small_new_start),
      cmocka_unit_test(judge_window_is_half_the_last_life_within_4s_and_60s),
      cmocka_unit_test(hold_ends_only_for_a_worker_still_growing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
