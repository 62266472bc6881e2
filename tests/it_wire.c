/* it_wire.c: the worker channel under hostile input, end to end.  A
 * worker whose helper process floods fd 3 (with garbage, or with one
 * 4 GiB "frame" memsup must skip by its length) while the worker itself
 * leaks: memsup bounds what it reads per window, says so once, and still
 * restarts the worker at the limit.  Behaviour only: no figure of CPU or
 * time is asserted (the bound is measured in docs/protocol.md).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MIB (1024.0 * 1024.0)

static int count_lines_with(const char* text, const char* needle) {
  int n = 0;
  for (const char* p = text; p && (p = strstr(p, needle)); p++) n++;
  return n;
}

/* The worker is a shell that starts flood (its helper, writing to the
 * inherited channel on fd 3) and then becomes bloat, leaking 32 MiB/s. */
static void flood_while_leaking(h_run_t* h, const char* flood) {
  char script[512];
  snprintf(script, sizeof(script), "%s >&3 & exec %s --mode leak --rate 32",
           flood, h_example("bloat"));
  h_start(h, "--limit", "40M", "--log", h->log, "--", "/bin/sh", "-c", script,
          NULL);
  assert_true(h_wait_event(h, "restart", 2, 30000) >= 2);

  cJSON* rs = h_events(h, "restart");
  for (int i = 0; i < cJSON_GetArraySize(rs); i++) {
    cJSON* r = cJSON_GetArrayItem(rs, i);
    assert_string_equal(h_str(r, "reason"), "limit");
    assert_true(h_num(h_get(r, "before"), "footprint") >= 40 * MIB);
  }
  cJSON_Delete(rs);

  /* Each worker's channel pauses often, but says so once. */
  char* err = h_read_file(h->err);
  int lines = count_lines_with(err, "byte flood from worker: reading paused");
  int workers = h_count(h, "start");
  if (lines < 1 || lines > workers)
    fail_msg("%d \"byte flood\" lines for %d workers:\n%s", lines, workers,
             err ? err : "(none)");
  free(err);

  h_signal(h, SIGTERM);
  assert_int_equal(h_wait(h, 15000), 143);
}

static void garbage_flood_while_leaking_is_restarted_at_limit(void** state) {
  flood_while_leaking(*state, "tr -d m </dev/urandom");
}

/* A header announcing 4 GiB - 1 of payload, then zeros without end: every
 * byte is skipped by the length, none is taken for a frame. */
static void endless_skipped_frame_while_leaking_is_restarted_at_limit(
    void** state) {
  flood_while_leaking(*state, "{ printf 'ms\\001J\\377\\377\\377\\377'; "
                              "cat /dev/zero; }");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(
          garbage_flood_while_leaking_is_restarted_at_limit, h_setup,
          h_teardown),
      cmocka_unit_test_setup_teardown(
          endless_skipped_frame_while_leaking_is_restarted_at_limit, h_setup,
          h_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
