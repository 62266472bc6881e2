/* fuzz_cli.c: libFuzzer target for memsup's command line.  The input is
 * split on NUL bytes into words, "memsup" is put in front, and the whole
 * argv goes through ms_config_parse (cgroup lookups for "N%" read a
 * fixture tree, never the host's); each word also goes through the SIZE
 * and DURATION parsers.  The parser must return (never exit or print) and
 * everything it accepts must be inside the documented ranges.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define MAX_WORDS 64
#define NS_PER_MS 1000000ULL
#define NS_PER_H (3600ULL * 1000 * NS_PER_MS)

static void check(int ok) {
  if (!ok) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  char* buf = malloc(size + 1);
  char* argv[MAX_WORDS + 2];
  char err[256];
  ms_config_t cfg;
  uint64_t v;
  int argc = 1, r;

  if (buf == NULL) return 0;
  if (size > 0) memcpy(buf, data, size);
  buf[size] = '\0';
  argv[0] = "memsup";
  for (size_t i = 0; i <= size && argc <= MAX_WORDS;) {
    argv[argc++] = buf + i;
    i += strlen(buf + i) + 1;
  }
  argv[argc] = NULL;

  for (int i = 1; i < argc; i++) {
    if (ms_parse_size(argv[i], &v) == 0) check(v > 0);
    if (ms_parse_duration(argv[i], 0, &v) == 0) check(v > 0);
    ms_parse_duration(argv[i], 1, &v);
  }

  memset(err, 'x', sizeof(err));
  r = ms_config_parse(argc, argv, &cfg, "tests/fixtures/cgroup/v2-limited",
                      err, sizeof(err));
  if (r < 0) {
    /* A one-line message, terminated inside the buffer. */
    check(r == -22 && memchr(err, '\0', sizeof(err)) != NULL);
    check(err[0] != '\0' && strchr(err, '\n') == NULL);
  } else if (r == MS_CONFIG_RUN) {
    check(cfg.interval_ns >= NS_PER_MS && cfg.interval_ns <= NS_PER_H);
    check(cfg.max_restarts >= 1 && cfg.max_restarts <= 10000);
    check(cfg.limit <= (1ULL << 53) && cfg.soft_limit <= (1ULL << 53));
    check(cfg.max_state >= 1 && cfg.max_state <= (1ULL << 53));
    check(cfg.sample_log_max >= 1 && cfg.sample_log_max <= (1ULL << 53));
    check(cfg.for_ns <= 720 * NS_PER_H && cfg.grace_ns <= 720 * NS_PER_H);
    check(cfg.handshake_ns >= 1 && cfg.handshake_ns <= 720 * NS_PER_H);
    check(cfg.within_ns >= 1 && cfg.within_ns <= 720 * NS_PER_H);
    check(cfg.sample_every_ns >= 1 && cfg.sample_every_ns <= 720 * NS_PER_H);
    if (cfg.limit && cfg.soft_limit) check(cfg.soft_limit < cfg.limit);
    if (cfg.watch_pid) {
      check(cfg.watch_pid >= 1 && cfg.watch_pid <= 4194304);
      check(cfg.argv == NULL && cfg.dry_run);
    } else {
      check(cfg.argc >= 1 && cfg.argv != NULL && cfg.argv[cfg.argc] == NULL);
      check(cfg.argv > argv && cfg.argv + cfg.argc == argv + argc);
    }
  } else {
    check(r == MS_CONFIG_HELP || r == MS_CONFIG_VERSION);
  }
  free(buf);
  return 0;
}
