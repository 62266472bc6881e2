/* policy.c: restart decisions.  Pure: state structs in, verdicts out. */
#include "policy.h"

int ms_policy_limit(ms_limit_state_t* st, uint64_t limit, uint64_t for_ns,
                    ms_value_kind_t kind, uint64_t value, uint64_t now_ns) {
  if (limit == 0) return 0;
  if (kind == MS_VALUE_KNOWN) {
    if (value < limit) {
      st->over = 0;
      return 0;
    }
    if (!st->over) {
      st->over = 1;
      st->over_since_ns = now_ns;
    }
  }
  return st->over && now_ns - st->over_since_ns >= for_ns;
}

int ms_policy_purge(uint64_t soft, uint64_t value, uint64_t now_ns,
                    uint64_t last_purge_ns, uint64_t min_gap_ns) {
  if (soft == 0 || value < soft) return 0;
  return last_purge_ns == 0 || now_ns - last_purge_ns >= min_gap_ns;
}

uint64_t ms_policy_backoff(unsigned n) {
  uint64_t d = MS_BACKOFF_BASE_NS;
  for (unsigned i = 1; i < n && d < MS_BACKOFF_MAX_NS; i++) d *= 2;
  return d < MS_BACKOFF_MAX_NS ? d : MS_BACKOFF_MAX_NS;
}

int ms_policy_crash(ms_intensity_t* in, uint64_t window_ns, uint64_t now_ns) {
  unsigned slots = in->max + 1;
  in->times[in->head] = now_ns;
  in->head = (in->head + 1) % slots;
  if (in->count < slots) in->count++;
  return ms_policy_crashes_within(in, window_ns, now_ns) > in->max;
}

unsigned ms_policy_crashes_within(const ms_intensity_t* in, uint64_t window_ns,
                                  uint64_t now_ns) {
  unsigned slots = in->max + 1, n = 0;
  for (unsigned i = 0; i < in->count; i++) {
    uint64_t t = in->times[(in->head + slots - 1 - i) % slots];
    if (now_ns - t > window_ns) break; /* older ones are older still */
    n++;
  }
  return n;
}

int ms_policy_unhelpful(uint64_t before, uint64_t after) {
  return before > 0 && after >= before / 10 * 9;
}

uint64_t ms_policy_judge_window(uint64_t prev_uptime_ns) {
  uint64_t w = prev_uptime_ns / 2;
  if (w < MS_JUDGE_MIN_NS) return MS_JUDGE_MIN_NS;
  return w > MS_JUDGE_MAX_NS ? MS_JUDGE_MAX_NS : w;
}

uint64_t ms_policy_hold(unsigned consecutive_unhelpful) {
  uint64_t d = MS_HOLD_BASE_NS;
  if (consecutive_unhelpful == 0) return 0;
  for (unsigned i = 1; i < consecutive_unhelpful && d < MS_HOLD_MAX_NS; i++)
    d *= 2;
  return d < MS_HOLD_MAX_NS ? d : MS_HOLD_MAX_NS;
}

int ms_policy_hold_broken(uint64_t held_ns, uint64_t from, uint64_t value,
                          uint64_t limit) {
  return held_ns >= MS_HOLD_GROWTH_NS && value >= from + limit;
}

int ms_policy_reclaimed(uint64_t before, uint64_t low, uint64_t old_life_ns) {
  return old_life_ns >= 2 * MS_JUDGE_MIN_NS && low <= before / 2;
}

uint64_t ms_policy_ceiling(uint64_t limit) {
  if (limit == 0) return 0;
  uint64_t margin = limit / 4;
  if (margin < MS_CEILING_MIN_MARGIN) margin = MS_CEILING_MIN_MARGIN;
  return limit > UINT64_MAX - margin ? UINT64_MAX : limit + margin;
}
