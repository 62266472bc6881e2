/* test_config.c: command-line parsing, the SIZE and DURATION syntax, and
 * the cgroup limit lookup against fake cgroup trees in
 * $MEMSUP_FIXTURES/cgroup/ (each with its own proc_self_cgroup file).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

#define MiB (1ULL << 20)
#define MS 1000000ULL
#define SEC 1000000000ULL

static ms_config_t cfg;
static char err[256];
static char root[4096];

/* Points root at one fake cgroup tree; "" is the fixtures directory. */
static const char* tree(const char* name) {
  const char* dir = getenv("MEMSUP_FIXTURES");
  snprintf(root, sizeof(root), "%s/cgroup/%s", dir ? dir : "tests/fixtures",
           name);
  return root;
}

static int parse_argv(char** argv) {
  int argc = 0;
  while (argv[argc] != NULL) argc++;
  memset(err, 0, sizeof(err));
  return ms_config_parse(argc, argv, &cfg, root, err, sizeof(err));
}
#define PARSE(...) parse_argv((char*[]){"memsup", __VA_ARGS__, NULL})

/* The call failed with -EINVAL and a message that contains want. */
static void assert_error(int r, const char* want) {
  assert_int_equal(r, -EINVAL);
  if (strstr(err, want) == NULL) fail_msg("error '%s' lacks '%s'", err, want);
  assert_null(strchr(err, '\n'));
}

static int use_tree_root(void** state) {
  (void)state;
  tree("v1-limited");
  return 0;
}

static void size_accepts_binary_units_in_any_case(void** state) {
  static const struct {
    const char* in;
    uint64_t want;
  } ok[] = {{"4096", 4096},          {"4096b", 4096},
            {"1K", 1024},            {"1k", 1024},
            {"1KB", 1024},           {"1kib", 1024},
            {"128M", 134217728},     {"128MiB", 134217728},
            {"128mb", 134217728},    {"128MIB", 134217728},
            {"2G", 2147483648ULL},   {"1T", 1ULL << 40},
            {"1.5G", 1610612736ULL}, {"0.5K", 512},
            {"1.25M", 1310720},      {"0.1K", 102},
            {"007M", 7 * MiB},       {"18446744073709551615", UINT64_MAX}};
  uint64_t v;
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    v = 0;
    if (ms_parse_size(ok[i].in, &v) != 0) fail_msg("'%s' rejected", ok[i].in);
    if (v != ok[i].want)
      fail_msg("'%s' = %llu, want %llu", ok[i].in, (unsigned long long)v,
               (unsigned long long)ok[i].want);
  }
}

static void size_rejects_garbage_zero_and_negatives(void** state) {
  static const char* const bad[] = {
      "12Q", "-5M", "0",  "0M", "",     "M",   "1.2.3M", "1e3M", " 5M",
      "5M ", "+5M", "5.", ".5M", "1.5", "5iB", "5MM",    "5Bi",  "0.0001K"};
  uint64_t v = 42;
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (ms_parse_size(bad[i], &v) != -EINVAL)
      fail_msg("'%s' not rejected with -EINVAL", bad[i]);
  assert_int_equal(v, 42); /* Untouched on failure. */
}

static void size_rejects_overflow_with_erange(void** state) {
  static const char* const big[] = {"99999999999T", "16777216T",
                                    "18446744073709551616",
                                    "99999999999999999999999"};
  uint64_t v;
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(big) / sizeof(big[0]); i++)
    if (ms_parse_size(big[i], &v) != -ERANGE)
      fail_msg("'%s' not rejected with -ERANGE", big[i]);
  assert_int_equal(ms_parse_size("16777215T", &v), 0);
  assert_int_equal(v, 16777215ULL << 40);
}

static void duration_accepts_units_and_bare_seconds(void** state) {
  static const struct {
    const char* in;
    uint64_t want;
  } ok[] = {{"50ms", 50 * MS},    {"1ms", MS},         {"10s", 10 * SEC},
            {"2m", 120 * SEC},    {"1h", 3600 * SEC},  {"3", 3 * SEC},
            {"1.5s", 1500 * MS},  {"0.25", 250 * MS},  {"1.5ms", 1500000},
            {"0.5m", 30 * SEC},   {"1.5h", 5400 * SEC}, {"0.001", MS},
            {"0.000000001", 1}};
  uint64_t v;
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    v = 0;
    if (ms_parse_duration(ok[i].in, 0, &v) != 0)
      fail_msg("'%s' rejected", ok[i].in);
    if (v != ok[i].want)
      fail_msg("'%s' = %llu ns, want %llu", ok[i].in, (unsigned long long)v,
               (unsigned long long)ok[i].want);
  }
}

static void duration_zero_allowed_only_when_zero_ok(void** state) {
  uint64_t v = 7;
  (void)state;
  assert_int_equal(ms_parse_duration("0", 0, &v), -EINVAL);
  assert_int_equal(ms_parse_duration("0ms", 0, &v), -EINVAL);
  assert_int_equal(v, 7);
  assert_int_equal(ms_parse_duration("0", 1, &v), 0);
  assert_int_equal(v, 0);
  v = 7;
  assert_int_equal(ms_parse_duration("0.0s", 1, &v), 0);
  assert_int_equal(v, 0);
}

static void duration_rejects_garbage_negatives_and_overflow(void** state) {
  static const char* const bad[] = {"", "s", "-1s", "5x", "5 s", "1.s",
                                    "1e3", "5sec", "5MS", "1.2.3s", "5d"};
  uint64_t v;
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (ms_parse_duration(bad[i], 1, &v) != -EINVAL)
      fail_msg("'%s' not rejected with -EINVAL", bad[i]);
  assert_int_equal(ms_parse_duration("99999999999h", 1, &v), -ERANGE);
  assert_int_equal(ms_parse_duration("18446744074", 1, &v), -ERANGE);
}

static int cgroup_limit_of(const char* name, uint64_t* out) {
  char psc[4096 + 32];
  tree(name);
  snprintf(psc, sizeof(psc), "%s/proc_self_cgroup", root);
  return ms_cgroup_limit(root, psc, out);
}

static void cgroup_limit_reads_v1_group_and_v2_memory_max(void** state) {
  uint64_t v = 0;
  (void)state;
  assert_int_equal(cgroup_limit_of("v1-limited", &v), 0);
  assert_int_equal(v, 256 * MiB);
  assert_int_equal(cgroup_limit_of("v2-limited", &v), 0);
  assert_int_equal(v, 1024 * MiB);
}

static void cgroup_limit_falls_back_to_root_group_in_container(void** state) {
  uint64_t v = 0;
  (void)state;
  assert_int_equal(cgroup_limit_of("v1-container", &v), 0);
  assert_int_equal(v, 512 * MiB);
}

static void cgroup_limit_reports_unlimited_as_enoent(void** state) {
  uint64_t v = 99;
  (void)state;
  assert_int_equal(cgroup_limit_of("v1-unlimited", &v), -ENOENT);
  assert_int_equal(cgroup_limit_of("v2-max", &v), -ENOENT);
  assert_int_equal(v, 99);
}

static void cgroup_limit_reports_unreadable_files(void** state) {
  uint64_t v;
  (void)state;
  assert_int_equal(cgroup_limit_of("v1-garbage", &v), -EINVAL);
  assert_int_equal(cgroup_limit_of("no-such-tree", &v), -ENOENT);
}

static void cgroup_limit_on_this_machine_is_a_limit_or_none(void** state) {
  uint64_t v = 0;
  int r = ms_cgroup_limit("/sys/fs/cgroup", "/proc/self/cgroup", &v);
  (void)state;
  if (r != 0 && r != -ENOENT) fail_msg("unexpected %s", strerror(-r));
  if (r == 0) assert_true(v > 0 && v < (1ULL << 62));
}

static void config_defaults_when_only_a_command_is_given(void** state) {
  (void)state;
  assert_int_equal(PARSE("--", "./w"), MS_CONFIG_RUN);
  assert_int_equal(cfg.limit, 0);
  assert_int_equal(cfg.soft_limit, 0);
  assert_int_equal(cfg.metric, MS_METRIC_FOOTPRINT);
  assert_int_equal(cfg.interval_ns, 50 * MS);
  assert_int_equal(cfg.for_ns, 0);
  assert_int_equal(cfg.grace_ns, 10 * SEC);
  assert_int_equal(cfg.handshake_ns, 5 * SEC);
  assert_int_equal(cfg.max_restarts, 5);
  assert_int_equal(cfg.within_ns, 60 * SEC);
  assert_int_equal(cfg.restart, MS_RESTART_ON_FAILURE);
  assert_int_equal(cfg.max_state, 1024 * MiB);
  assert_int_equal(cfg.tree + cfg.subreaper + cfg.dry_run + cfg.verbosity, 0);
  assert_null(cfg.log_path);
  assert_null(cfg.sample_log_path);
  assert_null(cfg.state_dir);
}

static void config_worker_argv_points_into_argv_untouched(void** state) {
  char* argv[] = {"memsup", "--tree", "--", "./w", "--limit", "-v", "--",
                  NULL};
  (void)state;
  assert_int_equal(parse_argv(argv), MS_CONFIG_RUN);
  assert_ptr_equal(cfg.argv, &argv[3]);
  assert_int_equal(cfg.argc, 4);
  assert_null(cfg.argv[cfg.argc]);
  assert_int_equal(cfg.verbosity, 0); /* The worker's -v is not ours. */
  assert_int_equal(cfg.limit, 0);
}

/* Every value option, as "--opt value" and as "--opt=value". */
static void config_value_options_accept_both_spellings(void** state) {
  static const struct {
    const char* flag;
    const char* val;
    size_t off;
    uint64_t want;
  } opts[] = {
      {"--limit", "128M", offsetof(ms_config_t, limit), 128 * MiB},
      {"--soft-limit", "1.5M", offsetof(ms_config_t, soft_limit), 3 * MiB / 2},
      {"--max-state", "64KiB", offsetof(ms_config_t, max_state), 65536},
      {"--interval", "250ms", offsetof(ms_config_t, interval_ns), 250 * MS},
      {"--for", "2s", offsetof(ms_config_t, for_ns), 2 * SEC},
      {"--grace", "1.5", offsetof(ms_config_t, grace_ns), 1500 * MS},
      {"--handshake-timeout", "1m", offsetof(ms_config_t, handshake_ns),
       60 * SEC},
      {"--within", "1h", offsetof(ms_config_t, within_ns), 3600 * SEC},
  };
  char joined[64];
  uint64_t got;
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
    char* sep[] = {"memsup", (char*)opts[i].flag, (char*)opts[i].val, "--",
                   "w", NULL};
    char* eq[] = {"memsup", joined, "--", "w", NULL};
    snprintf(joined, sizeof(joined), "%s=%s", opts[i].flag, opts[i].val);
    if (parse_argv(sep) != 0)
      fail_msg("%s %s: %s", opts[i].flag, opts[i].val, err);
    memcpy(&got, (char*)&cfg + opts[i].off, sizeof(got));
    assert_int_equal(got, opts[i].want);
    if (parse_argv(eq) != 0) fail_msg("%s: %s", joined, err);
    memcpy(&got, (char*)&cfg + opts[i].off, sizeof(got));
    assert_int_equal(got, opts[i].want);
  }
}

static void config_enum_count_and_path_options(void** state) {
  (void)state;
  assert_int_equal(PARSE("--metric", "rss", "--restart=always",
                         "--max-restarts", "3", "--log", "r.jsonl",
                         "--sample-log=s.jsonl", "--state-dir", "/tmp/st",
                         "--", "w"),
                   0);
  assert_int_equal(cfg.metric, MS_METRIC_RSS);
  assert_int_equal(cfg.restart, MS_RESTART_ALWAYS);
  assert_int_equal(cfg.max_restarts, 3);
  assert_string_equal(cfg.log_path, "r.jsonl");
  assert_string_equal(cfg.sample_log_path, "s.jsonl");
  assert_string_equal(cfg.state_dir, "/tmp/st");
  assert_int_equal(PARSE("--metric=heap", "--max-restarts=1",
                         "--restart", "on-failure", "--", "w"), 0);
  assert_int_equal(cfg.metric, MS_METRIC_HEAP);
  assert_int_equal(cfg.max_restarts, 1);
  assert_int_equal(cfg.restart, MS_RESTART_ON_FAILURE);
  assert_int_equal(PARSE("--metric", "footprint", "--", "w"), 0);
  assert_int_equal(cfg.metric, MS_METRIC_FOOTPRINT);
}

static void config_boolean_flags_and_verbosity(void** state) {
  (void)state;
  assert_int_equal(PARSE("--tree", "--subreaper", "--dry-run", "-v",
                         "--verbose", "--", "w"), 0);
  assert_int_equal(cfg.tree, 1);
  assert_int_equal(cfg.subreaper, 1);
  assert_int_equal(cfg.dry_run, 1);
  assert_int_equal(cfg.verbosity, 2);
  assert_int_equal(PARSE("-q", "--", "w"), 0);
  assert_int_equal(cfg.verbosity, -1);
  assert_int_equal(PARSE("--quiet", "--", "w"), 0);
  assert_int_equal(cfg.verbosity, -1);
  assert_error(PARSE("--tree=yes", "--", "w"), "--tree takes no value");
}

static void config_requires_double_dash_and_a_command(void** state) {
  (void)state;
  assert_error(PARSE("--limit", "1G", "./w"),
               "missing '--' before the worker command './w'");
  assert_error(PARSE("--limit", "128M"), "no worker command");
  assert_error(PARSE("--tree"), "no worker command");
  assert_error(parse_argv((char*[]){"memsup", NULL}), "no worker command");
  assert_error(PARSE("--limit", "1G", "--"), "no worker command after '--'");
  /* The message for a missing command does not talk about "--". */
  PARSE("--limit", "128M");
  assert_null(strstr(err, "missing"));
}

/* Short flags combine as with any getopt program. */
static void config_short_flags_combine(void** state) {
  (void)state;
  assert_int_equal(PARSE("-vv", "--", "w"), 0);
  assert_int_equal(cfg.verbosity, 2);
  assert_int_equal(PARSE("-vvv", "-v", "--", "w"), 0);
  assert_int_equal(cfg.verbosity, 4);
  assert_int_equal(PARSE("-vq", "--", "w"), 0);
  assert_int_equal(cfg.verbosity, -1);
  assert_int_equal(PARSE("-qv", "--", "w"), 0);
  assert_int_equal(cfg.verbosity, 0);
  assert_int_equal(PARSE("-vh", "--", "w"), MS_CONFIG_HELP);
  assert_error(PARSE("-vx", "--", "w"), "unknown option '-x'");
}

static void config_watch_needs_a_pid_and_no_command(void** state) {
  (void)state;
  assert_int_equal(PARSE("watch", "--pid", "42", "--limit", "1G"), 0);
  assert_int_equal(cfg.watch_pid, 42);
  assert_int_equal(cfg.dry_run, 1);
  assert_int_equal(cfg.limit, 1024 * MiB);
  assert_null(cfg.argv);
  assert_int_equal(PARSE("--pid=7"), 0); /* --pid alone means watch too */
  assert_int_equal(cfg.watch_pid, 7);
  assert_error(PARSE("watch"), "memsup watch needs --pid PID");
  assert_error(PARSE("watch", "--limit", "1G", "-v"),
               "memsup watch needs --pid PID");
  assert_error(PARSE("watch", "--limit", "1G", "--", "w"),
               "memsup watch needs --pid PID");
  assert_error(PARSE("watch", "--pid", "42", "--", "w"), "give no command");
  assert_error(PARSE("watch", "--pid", "42", "--workers", "2"),
               "--workers runs workers: not with --pid");
  assert_error(PARSE("watch", "--pid", "42", "w"), "give no command");
  assert_error(PARSE("watch", "--pid"), "--pid needs a value");
}

/* getopt_long would take "--lim" for --limit; memsup wants the name. */
static void config_rejects_abbreviated_options(void** state) {
  (void)state;
  assert_error(PARSE("--lim", "1G", "--", "w"), "unknown option '--lim'");
  assert_error(PARSE("--lim=1G", "--", "w"), "unknown option '--lim'");
  assert_error(PARSE("--max=1", "--", "w"), "unknown option '--max'");
  assert_error(PARSE("--tre", "--", "w"), "unknown option '--tre'");
  assert_error(PARSE("--tre=1", "--", "w"), "unknown option '--tre'");
  assert_error(PARSE("--verb", "--", "w"), "unknown option '--verb'");
  assert_error(PARSE("--lim"), "unknown option '--lim'");
  /* The full names, and one that is a prefix of another, still work. */
  assert_int_equal(PARSE("--sample-log", "s", "--sample-log-max", "1M", "--",
                         "w"), 0);
  assert_string_equal(cfg.sample_log_path, "s");
  assert_int_equal(cfg.sample_log_max, MiB);
  /* The restart log is bounded too: 64M unless --log-max says. */
  assert_int_equal(PARSE("--log", "r", "--", "w"), 0);
  assert_int_equal(cfg.log_max, 64 * MiB);
  assert_int_equal(PARSE("--log", "r", "--log-max", "2M", "--", "w"), 0);
  assert_int_equal(cfg.log_max, 2 * MiB);
}

/* Every numeric flag, at and past each end of its range: a clear message
 * naming the flag and the value, never a wrapped or truncated number. */
static void config_every_numeric_flag_is_range_checked(void** state) {
  static const struct {
    const char* flag;
    const char* val;
    const char* msg; /* NULL: accepted */
  } cases[] = {
      /* counts: max+1 wrapped to 0 once (calloc(0), modulo by zero) */
      {"--max-restarts", "4294967295", "not a whole number from 1 to 10000"},
      {"--max-restarts", "4294967294", "not a whole number from 1 to 10000"},
      {"--max-restarts", "10001", "not a whole number from 1 to 10000"},
      {"--max-restarts", "18446744073709551616", "from 1 to 10000"},
      {"--max-restarts", "-1", "from 1 to 10000"},
      {"--max-restarts", "0", "from 1 to 10000"},
      {"--max-restarts", "10000", NULL},
      {"--max-restarts", "1", NULL},
      {"--workers", "0", "not a whole number from 1 to 64"},
      {"--workers", "65", "not a whole number from 1 to 64"},
      {"--workers", "4294967297", "not a whole number from 1 to 64"},
      {"--workers", "2.5", "not a whole number from 1 to 64"},
      {"--workers", "64", NULL},
      /* pids: 4294967295 as pid_t is -1, "every process" to kill(2) */
      {"--pid", "4294967295", "not a process id from 1 to 4194304"},
      {"--pid", "2147483648", "not a process id from 1 to 4194304"},
      {"--pid", "4194305", "not a process id from 1 to 4194304"},
      {"--pid", "-1", "not a process id"},
      {"--pid", "0", "not a process id"},
      {"--pid", "1.5", "not a process id"},
      /* sizes: suffix overflow, past 8192T, zero, negative, fractions */
      {"--limit", "16777216T", "too large"},
      {"--limit", "8193T", "too large (at most 8192T)"},
      {"--limit", "9007199254740993", "too large"},
      {"--limit", "18446744073709551615", "too large"},
      {"--limit", "8192T", NULL},
      {"--soft-limit", "8193T", "too large"},
      {"--soft-limit", "0", "must be more than 0"},
      {"--soft-limit", "-1M", "not a size"},
      {"--max-state", "99999999999999999999K", "too large"},
      {"--max-state", "0K", "must be more than 0"},
      {"--max-state", "0.5", "not a size"},
      {"--sample-log-max", "17000000000G", "too large"},
      {"--sample-log-max", "0", "must be more than 0"},
      {"--sample-log-max", "-64M", "not a size"},
      {"--log-max", "17000000000G", "too large"},
      {"--log-max", "0", "must be more than 0"},
      /* durations: ns overflow, past 720h, zero where meaningless */
      {"--grace", "18446744074s", "too large"},
      {"--grace", "721h", "too large (at most 720h)"},
      {"--grace", "720h", NULL},
      {"--grace", "-1", "not a duration"},
      {"--for", "99999999999999h", "too large"},
      {"--for", "30.5d", "not a duration"},
      {"--for", "43201m", "too large"},
      {"--handshake-timeout", "0ms", "must be more than 0"},
      {"--handshake-timeout", "1000h", "too large"},
      {"--within", "0", "must be more than 0"},
      {"--within", "0.0s", "must be more than 0"},
      {"--within", "2592001s", "too large"},
      {"--within", "2592000s", NULL},
      {"--sample-every", "0", "must be more than 0"},
      {"--sample-every", "721h", "too large"},
      {"--sample-every", "-1s", "not a duration"},
      {"--interval", "0", "must be from 1ms to 1h"},
      {"--interval", "0ms", "must be from 1ms to 1h"},
      {"--interval", "99999999999999999999h", "must be from 1ms to 1h"},
      {"--interval", "-50ms", "not a duration"},
  };
  char want[128];
  size_t i;
  int r;
  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    r = cases[i].flag[2] == 'p'
            ? PARSE("watch", (char*)cases[i].flag, (char*)cases[i].val)
            : PARSE((char*)cases[i].flag, (char*)cases[i].val, "--", "w");
    if (cases[i].msg == NULL) {
      if (r != 0) fail_msg("%s %s: %s", cases[i].flag, cases[i].val, err);
      continue;
    }
    snprintf(want, sizeof(want), "%s '%s': ", cases[i].flag, cases[i].val);
    if (r != -EINVAL || strstr(err, want) == NULL ||
        strstr(err, cases[i].msg) == NULL)
      fail_msg("%s %s: got %d '%s', want '%s%s'", cases[i].flag,
               cases[i].val, r, err, want, cases[i].msg);
  }
}

/* A value or an unknown option with a newline in it (a quoted shell
 * argument) still gives a one-line message.  Found by fuzz_cli. */
static void config_error_stays_one_line_with_control_characters(void** state) {
  (void)state;
  assert_error(PARSE("--limit", "1\n2M", "--", "w"), "--limit '1?2M'");
  assert_error(PARSE("--bo\ngus\t", "--", "w"), "unknown option '--bo?gus?'");
  assert_error(PARSE("--metric=a\rb", "--", "w"), "--metric 'a?b'");
}

/* getopt keeps its position in globals: a second parse must start over. */
static void config_parses_again_after_an_error(void** state) {
  (void)state;
  assert_error(PARSE("-v", "--limit"), "--limit needs a value");
  assert_error(PARSE("-vx", "--", "w"), "unknown option '-x'");
  assert_int_equal(PARSE("-v", "--", "w"), 0);
  assert_int_equal(cfg.verbosity, 1);
  assert_ptr_not_equal(cfg.argv, NULL);
  assert_string_equal(cfg.argv[0], "w");
}

static void config_rejects_unknown_options(void** state) {
  (void)state;
  assert_error(PARSE("--foo", "--", "w"),
               "unknown option '--foo' (see memsup --help)");
  assert_error(PARSE("--foo=1", "--", "w"), "unknown option '--foo'");
  assert_error(PARSE("-x", "--", "w"), "unknown option '-x'");
  assert_error(PARSE("--limit128M", "--", "w"), "unknown option '--limit128M'");
}

static void config_reports_missing_values(void** state) {
  (void)state;
  assert_error(PARSE("--limit"), "--limit needs a value");
  assert_error(PARSE("--limit", "--", "w"), "--limit needs a value");
  assert_error(PARSE("--log=", "--", "w"), "--log needs a value");
  assert_error(PARSE("--metric", "--", "w"), "--metric needs a value");
}

/* A bad value is reported with the flag and the value as typed. */
static void config_error_names_the_flag_and_value(void** state) {
  (void)state;
  assert_error(PARSE("--limit", "12Q", "--", "w"),
               "--limit '12Q': not a size (use bytes or K/M/G/T, e.g. 128M)");
  assert_error(PARSE("--limit=-5M", "--", "w"), "--limit '-5M': not a size");
  assert_error(PARSE("--limit", "0", "--", "w"),
               "--limit '0': must be more than 0");
  assert_error(PARSE("--limit", "99999999999T", "--", "w"),
               "--limit '99999999999T': too large");
  assert_error(PARSE("--soft-limit", "M", "--", "w"), "--soft-limit 'M'");
  assert_error(PARSE("--max-state", "1.2.3M", "--", "w"),
               "--max-state '1.2.3M'");
  assert_error(PARSE("--for", "-1s", "--", "w"),
               "--for '-1s': not a duration");
  assert_error(PARSE("--grace=soon", "--", "w"), "--grace 'soon'");
  assert_error(PARSE("--handshake-timeout", "0", "--", "w"),
               "--handshake-timeout '0': must be more than 0");
  assert_error(PARSE("--within", "0s", "--", "w"), "--within '0s'");
  assert_error(PARSE("--max-restarts", "0", "--", "w"), "--max-restarts '0'");
  assert_error(PARSE("--max-restarts", "1.5", "--", "w"),
               "--max-restarts '1.5'");
  assert_error(PARSE("--max-restarts", "9999999999", "--", "w"),
               "--max-restarts '9999999999'");
  assert_error(PARSE("--metric", "pss", "--", "w"), "--metric 'pss'");
  assert_error(PARSE("--restart", "never", "--", "w"), "--restart 'never'");
}

static void config_zero_for_and_grace_are_allowed(void** state) {
  (void)state;
  assert_int_equal(PARSE("--for", "0", "--grace=0", "--", "w"), 0);
  assert_int_equal(cfg.for_ns, 0);
  assert_int_equal(cfg.grace_ns, 0);
}

static void config_interval_must_be_from_1ms_to_1h(void** state) {
  (void)state;
  assert_int_equal(PARSE("--interval", "1ms", "--", "w"), 0);
  assert_int_equal(cfg.interval_ns, MS);
  assert_int_equal(PARSE("--interval", "1h", "--", "w"), 0);
  assert_int_equal(cfg.interval_ns, 3600 * SEC);
  assert_error(PARSE("--interval", "0.5ms", "--", "w"),
               "--interval '0.5ms': must be from 1ms to 1h");
  assert_error(PARSE("--interval", "61m", "--", "w"), "--interval '61m'");
  assert_error(PARSE("--interval", "0", "--", "w"), "--interval '0'");
}

static void config_soft_limit_must_be_below_limit(void** state) {
  (void)state;
  assert_error(PARSE("--soft-limit", "128M", "--limit", "128M", "--", "w"),
               "--soft-limit 128M must be below --limit 128M");
  assert_error(PARSE("--limit=100M", "--soft-limit=1G", "--", "w"),
               "--soft-limit 1G must be below --limit 100M");
  assert_int_equal(PARSE("--soft-limit", "96M", "--limit", "128M", "--", "w"),
                   0);
  assert_int_equal(cfg.soft_limit, 96 * MiB);
  assert_int_equal(cfg.limit, 128 * MiB);
  assert_int_equal(PARSE("--soft-limit", "96M", "--", "w"), 0);
}

static void config_percent_limit_uses_each_cgroup_fixture(void** state) {
  (void)state;
  tree("v1-limited"); /* 256 MiB */
  assert_int_equal(PARSE("--limit", "50%", "--", "w"), 0);
  assert_int_equal(cfg.limit, 128 * MiB);
  tree("v2-limited"); /* 1 GiB */
  assert_int_equal(PARSE("--limit=12.5%", "--", "w"), 0);
  assert_int_equal(cfg.limit, 128 * MiB);
  assert_int_equal(PARSE("--limit=100%", "--", "w"), 0);
  assert_int_equal(cfg.limit, 1024 * MiB);
  tree("v1-container"); /* 512 MiB in the root group */
  assert_int_equal(PARSE("--limit", "75%", "--", "w"), 0);
  assert_int_equal(cfg.limit, 384 * MiB);
}

static void config_percent_limit_without_cgroup_limit_fails(void** state) {
  (void)state;
  tree("v1-unlimited");
  assert_error(PARSE("--limit", "50%", "--", "w"),
               "--limit 50%: memsup's cgroup has no memory limit");
  tree("v2-max");
  assert_error(PARSE("--limit=80%", "--", "w"),
               "--limit 80%: memsup's cgroup has no memory limit");
  tree("v1-garbage");
  assert_error(PARSE("--limit=80%", "--", "w"),
               "--limit 80%: cannot read memsup's cgroup limit");
}

static void config_percent_limit_must_be_in_range(void** state) {
  (void)state;
  tree("v1-limited");
  assert_error(PARSE("--limit", "0%", "--", "w"), "--limit '0%'");
  assert_error(PARSE("--limit", "100.5%", "--", "w"), "--limit '100.5%'");
  assert_error(PARSE("--limit", "150%", "--", "w"), "--limit '150%'");
  assert_error(PARSE("--limit", "-5%", "--", "w"), "--limit '-5%'");
  assert_error(PARSE("--limit", "%", "--", "w"), "--limit '%'");
}

static void config_help_and_version_stop_parsing(void** state) {
  (void)state;
  assert_int_equal(PARSE("--help"), MS_CONFIG_HELP);
  assert_int_equal(PARSE("-h", "--bogus"), MS_CONFIG_HELP);
  assert_int_equal(PARSE("--limit", "1G", "--help", "--", "w"), MS_CONFIG_HELP);
  assert_int_equal(PARSE("--version"), MS_CONFIG_VERSION);
  /* After "--" they belong to the worker. */
  assert_int_equal(PARSE("--", "w", "--help"), MS_CONFIG_RUN);
}

static void usage_lists_every_option_and_exit_code(void** state) {
  static const char* const want[] = {
      "--limit", "--soft-limit", "--metric", "--interval", "--for ",
      "--grace", "--handshake-timeout", "--max-restarts", "--within",
      "--restart", "--tree", "--subreaper", "--dry-run", "--log",
      "--sample-log", "--state-dir", "--max-state", "--quiet", "--verbose",
      "--help", "--version", "100", "111", "126", "127", "128+N",
      "--log-max", "exits 143", "memsup --limit 128M -- ./worker"};
  size_t i;
  (void)state;
  assert_true(strncmp(ms_usage, "usage: memsup", 13) == 0);
  for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
    if (strstr(ms_usage, want[i]) == NULL)
      fail_msg("usage lacks '%s'", want[i]);
  /* Stopped, memsup exits with the worker's status, not 0 (README). */
  assert_null(strstr(ms_usage, "or memsup was stopped"));
}

/* Parsing never writes to stdout or stderr, even on errors or --help:
 * both are pointed at a pipe that must stay empty. */
static void config_parse_prints_nothing(void** state) {
  int fds[2], saved[2], i;
  char c;
  (void)state;
  assert_int_equal(pipe2(fds, O_NONBLOCK), 0);
  for (i = 0; i < 2; i++) {
    saved[i] = dup(1 + i);
    dup2(fds[1], 1 + i);
  }
  PARSE("--help");
  PARSE("--foo", "--", "w");
  PARSE("--limit", "12Q", "--", "w");
  PARSE("--limit");
  fflush(stdout);
  fflush(stderr);
  for (i = 0; i < 2; i++) {
    dup2(saved[i], 1 + i);
    close(saved[i]);
  }
  close(fds[1]);
  assert_int_equal(read(fds[0], &c, 1), 0);
  close(fds[0]);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, use_tree_root, NULL)
  const struct CMUnitTest tests[] = {
      T(size_accepts_binary_units_in_any_case),
      T(size_rejects_garbage_zero_and_negatives),
      T(size_rejects_overflow_with_erange),
      T(duration_accepts_units_and_bare_seconds),
      T(duration_zero_allowed_only_when_zero_ok),
      T(duration_rejects_garbage_negatives_and_overflow),
      T(cgroup_limit_reads_v1_group_and_v2_memory_max),
      T(cgroup_limit_falls_back_to_root_group_in_container),
      T(cgroup_limit_reports_unlimited_as_enoent),
      T(cgroup_limit_reports_unreadable_files),
      T(cgroup_limit_on_this_machine_is_a_limit_or_none),
      T(config_defaults_when_only_a_command_is_given),
      T(config_worker_argv_points_into_argv_untouched),
      T(config_value_options_accept_both_spellings),
      T(config_enum_count_and_path_options),
      T(config_boolean_flags_and_verbosity),
      T(config_requires_double_dash_and_a_command),
      T(config_short_flags_combine),
      T(config_watch_needs_a_pid_and_no_command),
      T(config_rejects_abbreviated_options),
      T(config_every_numeric_flag_is_range_checked),
      T(config_parses_again_after_an_error),
      T(config_error_stays_one_line_with_control_characters),
      T(config_rejects_unknown_options),
      T(config_reports_missing_values),
      T(config_error_names_the_flag_and_value),
      T(config_zero_for_and_grace_are_allowed),
      T(config_interval_must_be_from_1ms_to_1h),
      T(config_soft_limit_must_be_below_limit),
      T(config_percent_limit_uses_each_cgroup_fixture),
      T(config_percent_limit_without_cgroup_limit_fails),
      T(config_percent_limit_must_be_in_range),
      T(config_help_and_version_stop_parsing),
      T(usage_lists_every_option_and_exit_code),
      T(config_parse_prints_nothing),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
