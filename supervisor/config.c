/* config.c: memsup's command line -> ms_config_t, the size and duration
 * syntax, and the cgroup lookup behind "--limit N%".  It prints nothing
 * and opens nothing but cgroup files; main.c reports errors and opens the
 * log and state paths.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define NS_PER_MS 1000000ULL
#define NS_PER_S 1000000000ULL
/* Fractions are kept as billionths, so digits past the ninth are ignored:
 * sizes are exact to the byte and durations to the nanosecond. */
#define FRAC_ONE 1000000000ULL
/* cgroup v1 reports "no limit" as a page-rounded LLONG_MAX; anything this
 * large is not a limit a machine can have. */
#define CG_UNLIMITED (1ULL << 62)

typedef unsigned __int128 u128;

const char ms_usage[] =
    "usage: memsup [options] -- command [args...]\n"
    "       memsup watch --pid PID [options]\n"
    "       memsup report [--json] [--svg FILE] [--compare A B] LOG...\n"
    "Runs command and restarts it, handing its state over, when its memory\n"
    "crosses --limit.  SIZE is bytes or K/M/G/T (binary, e.g. 128M, 1.5G);\n"
    "DURATION is ms, s, m or h (a bare number is seconds).\n"
    "\n"
    "options:\n"
    "  --limit SIZE|N%          hard limit, or N% of memsup's cgroup limit\n"
    "                           (default: none)\n"
    "  --soft-limit SIZE        ask the worker to purge above this, below"
    " --limit\n"
    "                           (default: none)\n"
    "  --metric footprint|rss|heap  what --limit measures (default"
    " footprint)\n"
    "  --interval DURATION      sampling period, 1ms..1h (default 50ms)\n"
    "  --for DURATION           limit must hold this long (default 0)\n"
    "  --grace DURATION         save timeout, then SIGTERM -> SIGKILL"
    " (default 10s)\n"
    "  --handshake-timeout DURATION  wait for the worker's SDK (default"
    " 5s)\n"
    "  --max-restarts N         crash restarts allowed ... (default 5)\n"
    "  --within DURATION        ... within this window (default 60s)\n"
    "  --restart on-failure|always  \"always\" restarts after exit 0 too\n"
    "                           (default on-failure)\n"
    "  --tree                   measure the worker and its descendants\n"
    "  --subreaper              adopt orphaned descendants (implied as"
    " PID 1)\n"
    "  --dry-run                never restart; log what would happen\n"
    "  --pid PID                watch a running process (memsup watch);\n"
    "                           implies --dry-run, no command\n"
    "  --log FILE               restart log, JSON lines (default: none)\n"
    "  --sample-log FILE        memory time series, JSON lines (default:"
    " none)\n"
    "  --sample-every DURATION  one sample-log line per worker this often\n"
    "                           (default 1s)\n"
    "  --sample-log-max SIZE    rotate the sample log to FILE.1 past this\n"
    "                           (default 64M)\n"
    "  --state-dir DIR          where handed-over state is kept (default:"
    " none)\n"
    "  --max-state SIZE         largest state accepted (default 1G)\n"
    "  -q, --quiet              errors only\n"
    "  -v, --verbose            more detail; repeat for more\n"
    "  -h, --help               this text\n"
    "  --version                print the version\n"
    "\n"
    "exit status:\n"
    "  0    the worker exited 0, or memsup was stopped\n"
    "  100  usage or configuration error\n"
    "  111  system failure\n"
    "  126  command not executable\n"
    "  127  command not found\n"
    "  otherwise the worker's own status, 128+N when killed by signal N\n"
    "\n"
    "examples:\n"
    "  memsup --limit 128M -- ./worker --port 8080\n"
    "  memsup --limit 80% --for 2s --log restarts.jsonl -- ./server\n"
    "  memsup --metric heap --soft-limit 96M --limit 128M \\\n"
    "         --state-dir /var/lib/w -- ./cache\n";

/* Reads "12" or "1.25" at the start of s: the integer part into *ip and
 * the fraction in billionths into *frac.  Returns the rest of s, or NULL
 * (with *err set) when there is no number or it does not fit.  Signs,
 * spaces and exponents are not numbers here. */
static const char* number(const char* s, uint64_t* ip, uint64_t* frac,
                          int* err) {
  uint64_t scale = FRAC_ONE;
  *ip = 0;
  *frac = 0;
  *err = -EINVAL;
  if (*s < '0' || *s > '9') return NULL;
  for (; *s >= '0' && *s <= '9'; s++) {
    if (*ip > (UINT64_MAX - (uint64_t)(*s - '0')) / 10) {
      *err = -ERANGE;
      return NULL;
    }
    *ip = *ip * 10 + (uint64_t)(*s - '0');
  }
  if (*s != '.') return s;
  if (*++s < '0' || *s > '9') return NULL;
  for (; *s >= '0' && *s <= '9'; s++) {
    scale /= 10;
    *frac += (uint64_t)(*s - '0') * scale;
  }
  return s;
}

/* ip.frac * mult, truncated to a whole unit. */
static int scale(uint64_t ip, uint64_t frac, uint64_t mult, uint64_t* out) {
  u128 v = (u128)ip * mult + (u128)frac * mult / FRAC_ONE;
  if (v > UINT64_MAX) return -ERANGE;
  *out = (uint64_t)v;
  return 0;
}

/* ms_parse_size() without the zero check, so callers can tell "0" apart
 * from garbage in their messages. */
static int size_any(const char* s, uint64_t* out) {
  static const char units[] = "kmgt";
  const char* u;
  uint64_t ip, frac, mult = 1;
  int err;

  s = number(s, &ip, &frac, &err);
  if (s == NULL) return err;
  if (*s != '\0' && (u = strchr(units, *s | 0x20)) != NULL) {
    mult <<= 10 * (u - units + 1);
    s++;
    if (strcasecmp(s, "ib") == 0) s += 2;
  }
  if (strcasecmp(s, "b") == 0) s++;
  /* A fraction of a byte is a typo, not a size. */
  if (*s != '\0' || (mult == 1 && frac != 0)) return -EINVAL;
  return scale(ip, frac, mult, out);
}

int ms_parse_size(const char* s, uint64_t* out) {
  uint64_t v;
  int r = size_any(s, &v);
  if (r == 0 && v == 0) r = -EINVAL;
  if (r == 0) *out = v;
  return r;
}

static int duration_any(const char* s, uint64_t* out_ns) {
  static const struct {
    const char* name;
    uint64_t ns;
  } units[] = {{"", NS_PER_S},       {"ms", NS_PER_MS},
               {"s", NS_PER_S},      {"m", 60 * NS_PER_S},
               {"h", 3600 * NS_PER_S}};
  uint64_t ip, frac;
  size_t i;
  int err;

  s = number(s, &ip, &frac, &err);
  if (s == NULL) return err;
  for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
    if (strcmp(s, units[i].name) == 0)
      return scale(ip, frac, units[i].ns, out_ns);
  return -EINVAL;
}

int ms_parse_duration(const char* s, int zero_ok, uint64_t* out_ns) {
  uint64_t v;
  int r = duration_any(s, &v);
  if (r == 0 && v == 0 && !zero_ok) r = -EINVAL;
  if (r == 0) *out_ns = v;
  return r;
}

/* Reads one cgroup limit file: a number, or "max" (v2) as UINT64_MAX. */
static int read_limit(const char* path, uint64_t* out) {
  char buf[64];
  uint64_t frac;
  const char* end;
  FILE* f;
  size_t n;
  int err;

  f = fopen(path, "re");
  if (f == NULL) return -errno;
  n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  buf[strcspn(buf, "\n")] = '\0';
  if (strcmp(buf, "max") == 0) {
    *out = UINT64_MAX;
    return 0;
  }
  end = number(buf, out, &frac, &err);
  if (end == NULL) return err;
  return *end == '\0' && frac == 0 ? 0 : -EINVAL;
}

/* Reads <root><mount><group>/<file>, or <root><mount>/<file> when the
 * group's directory is missing: inside a container the mount is often the
 * container's own group while /proc/self/cgroup still names the host path. */
static int read_group(const char* root, const char* mount, const char* group,
                      const char* file, uint64_t* out) {
  char path[4096];
  int r;

  snprintf(path, sizeof(path), "%s%s%s/%s", root, mount, group, file);
  r = read_limit(path, out);
  if (r != -ENOENT) return r;
  snprintf(path, sizeof(path), "%s%s/%s", root, mount, file);
  return read_limit(path, out);
}

/* Does the comma-separated controller list [s, end) name "memory"? */
static int has_memory(const char* s, const char* end) {
  while (s < end) {
    size_t n = strcspn(s, ",:");
    if (n == 6 && strncmp(s, "memory", 6) == 0) return 1;
    s += n + 1;
  }
  return 0;
}

int ms_cgroup_limit(const char* cgroup_root, const char* proc_self_cgroup,
                    uint64_t* out) {
  char line[4096], v1[4096] = "", v2[4096] = "";
  const char *ctl, *path;
  uint64_t v;
  FILE* f;
  int r = -ENOENT;

  f = fopen(proc_self_cgroup, "re");
  if (f == NULL) return -errno;
  /* Lines are "hierarchy-id:controllers:path"; v2 is "0::path". */
  while (fgets(line, sizeof(line), f) != NULL) {
    line[strcspn(line, "\n")] = '\0';
    ctl = strchr(line, ':');
    path = ctl ? strchr(ctl + 1, ':') : NULL;
    if (path == NULL || path[1] != '/') continue;
    if (strncmp(line, "0::", 3) == 0)
      snprintf(v2, sizeof(v2), "%s", path + 1);
    else if (has_memory(ctl + 1, path))
      snprintf(v1, sizeof(v1), "%s", path + 1);
  }
  fclose(f);

  /* A hybrid host lists both; the memory controller lives where its file
   * exists, so v2 wins only when it has memory.max. */
  if (v2[0] != '\0')
    r = read_group(cgroup_root, "", v2, "memory.max", &v);
  if (r == -ENOENT && v1[0] != '\0')
    r = read_group(cgroup_root, "/memory", v1, "memory.limit_in_bytes", &v);
  if (r == 0 && v >= CG_UNLIMITED) r = -ENOENT;
  if (r == 0) *out = v;
  return r;
}

static int fail(char* err, size_t errlen, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char* err, size_t errlen, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -EINVAL;
}

static int size_opt(const char* flag, const char* val, uint64_t* out,
                    char* err, size_t errlen) {
  int r = size_any(val, out);
  if (r == -ERANGE) return fail(err, errlen, "%s '%s': too large", flag, val);
  if (r < 0)
    return fail(err, errlen,
                "%s '%s': not a size (use bytes or K/M/G/T, e.g. 128M)", flag,
                val);
  if (*out == 0)
    return fail(err, errlen, "%s '%s': must be more than 0", flag, val);
  return 0;
}

static int duration_opt(const char* flag, const char* val, int zero_ok,
                        uint64_t* out, char* err, size_t errlen) {
  int r = duration_any(val, out);
  if (r == -ERANGE) return fail(err, errlen, "%s '%s': too large", flag, val);
  if (r < 0)
    return fail(err, errlen,
                "%s '%s': not a duration (use ms, s, m or h, e.g. 50ms)", flag,
                val);
  if (*out == 0 && !zero_ok)
    return fail(err, errlen, "%s '%s': must be more than 0", flag, val);
  return 0;
}

/* --limit: a size, or "N%" of memsup's own cgroup limit.  Outside tests
 * cgroup_root is "/sys/fs/cgroup" and the group comes from
 * /proc/self/cgroup; a test passes a fake tree that carries its own
 * "proc_self_cgroup" file at the top. */
static int limit_opt(const char* val, const char* cgroup_root, uint64_t* out,
                     char* err, size_t errlen) {
  char psc[4096];
  uint64_t ip, frac, cg;
  const char* end;
  int r;

  end = number(val, &ip, &frac, &r);
  if (end == NULL || strcmp(end, "%") != 0)
    return size_opt("--limit", val, out, err, errlen);
  if ((ip == 0 && frac == 0) || ip > 100 || (ip == 100 && frac != 0))
    return fail(err, errlen,
                "--limit '%s': must be more than 0%% and at most 100%%", val);
  if (strcmp(cgroup_root, "/sys/fs/cgroup") == 0)
    snprintf(psc, sizeof(psc), "/proc/self/cgroup");
  else
    snprintf(psc, sizeof(psc), "%s/proc_self_cgroup", cgroup_root);
  r = ms_cgroup_limit(cgroup_root, psc, &cg);
  if (r == -ENOENT)
    return fail(err, errlen, "--limit %s: memsup's cgroup has no memory limit",
                val);
  if (r < 0)
    return fail(err, errlen,
                "--limit %s: cannot read memsup's cgroup limit: %s", val,
                strerror(-r));
  *out = (uint64_t)((u128)cg * (ip * FRAC_ONE + frac) / (100 * FRAC_ONE));
  if (*out == 0)
    return fail(err, errlen, "--limit %s: is 0 bytes of a %llu-byte cgroup",
                val, (unsigned long long)cg);
  return 0;
}

/* A whole number >= 1 that fits an unsigned. */
static int count_opt(const char* flag, const char* val, unsigned* out,
                     char* err, size_t errlen) {
  uint64_t ip, frac;
  const char* end;
  int r;

  end = number(val, &ip, &frac, &r);
  if (end == NULL || *end != '\0' || frac != 0 || ip == 0 || ip > ~0u)
    return fail(err, errlen, "%s '%s': not a whole number from 1 to %u", flag,
                val, ~0u);
  *out = (unsigned)ip;
  return 0;
}

static void defaults(ms_config_t* cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->metric = MS_METRIC_FOOTPRINT;
  cfg->interval_ns = 50 * NS_PER_MS;
  cfg->grace_ns = 10 * NS_PER_S;
  cfg->max_restarts = 5;
  cfg->within_ns = 60 * NS_PER_S;
  cfg->restart = MS_RESTART_ON_FAILURE;
  cfg->max_state = 1ULL << 30;
  cfg->handshake_ns = 5 * NS_PER_S;
  cfg->sample_every_ns = NS_PER_S;
  cfg->sample_log_max = 64ULL << 20;
}

/* Value options take the next word unless it is "--", so that
 * "--limit -- ./w" reports the missing value rather than eating the "--". */
static int takes_value(const char* name) {
  static const char* const names[] = {
      "--limit", "--soft-limit", "--max-state", "--interval", "--for",
      "--grace", "--handshake-timeout", "--within", "--max-restarts",
      "--metric", "--restart", "--log", "--sample-log", "--state-dir",
      "--sample-every", "--sample-log-max", "--pid"};
  size_t i;
  for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (strcmp(name, names[i]) == 0) return 1;
  return 0;
}

/* Boolean options; returns 1 when name is one. */
static int flag(ms_config_t* cfg, const char* name) {
  if (strcmp(name, "--tree") == 0)
    cfg->tree = 1;
  else if (strcmp(name, "--subreaper") == 0)
    cfg->subreaper = 1;
  else if (strcmp(name, "--dry-run") == 0)
    cfg->dry_run = 1;
  else if (strcmp(name, "-q") == 0 || strcmp(name, "--quiet") == 0)
    cfg->verbosity = -1;
  else if (strcmp(name, "-v") == 0 || strcmp(name, "--verbose") == 0)
    cfg->verbosity++;
  else
    return 0;
  return 1;
}

/* One option; val was split off "--name=value" or taken from the next
 * word, NULL when there was none. */
static int option(ms_config_t* cfg, const char* name, const char* val,
                  const char* cgroup_root, char* err, size_t errlen) {
  if (val == NULL && flag(cfg, name)) return 0;
  if (!takes_value(name)) {
    if (flag(cfg, name)) return fail(err, errlen, "%s takes no value", name);
    return fail(err, errlen, "unknown option '%s' (see memsup --help)", name);
  }
  if (val == NULL || *val == '\0')
    return fail(err, errlen, "%s needs a value", name);
  if (strcmp(name, "--limit") == 0)
    return limit_opt(val, cgroup_root, &cfg->limit, err, errlen);
  if (strcmp(name, "--soft-limit") == 0)
    return size_opt(name, val, &cfg->soft_limit, err, errlen);
  if (strcmp(name, "--max-state") == 0)
    return size_opt(name, val, &cfg->max_state, err, errlen);
  if (strcmp(name, "--sample-log-max") == 0)
    return size_opt(name, val, &cfg->sample_log_max, err, errlen);
  if (strcmp(name, "--sample-every") == 0)
    return duration_opt(name, val, 0, &cfg->sample_every_ns, err, errlen);
  if (strcmp(name, "--for") == 0)
    return duration_opt(name, val, 1, &cfg->for_ns, err, errlen);
  if (strcmp(name, "--grace") == 0)
    return duration_opt(name, val, 1, &cfg->grace_ns, err, errlen);
  if (strcmp(name, "--handshake-timeout") == 0)
    return duration_opt(name, val, 0, &cfg->handshake_ns, err, errlen);
  if (strcmp(name, "--within") == 0)
    return duration_opt(name, val, 0, &cfg->within_ns, err, errlen);
  if (strcmp(name, "--max-restarts") == 0)
    return count_opt(name, val, &cfg->max_restarts, err, errlen);
  if (strcmp(name, "--pid") == 0) {
    unsigned pid;
    if (count_opt(name, val, &pid, err, errlen) < 0) return -EINVAL;
    cfg->watch_pid = (long)pid;
    cfg->dry_run = 1;
    return 0;
  }
  if (strcmp(name, "--interval") == 0) {
    if (duration_opt(name, val, 0, &cfg->interval_ns, err, errlen) < 0)
      return -EINVAL;
    if (cfg->interval_ns < NS_PER_MS || cfg->interval_ns > 3600 * NS_PER_S)
      return fail(err, errlen, "--interval '%s': must be from 1ms to 1h", val);
  } else if (strcmp(name, "--metric") == 0) {
    if (strcmp(val, "footprint") == 0)
      cfg->metric = MS_METRIC_FOOTPRINT;
    else if (strcmp(val, "rss") == 0)
      cfg->metric = MS_METRIC_RSS;
    else if (strcmp(val, "heap") == 0)
      cfg->metric = MS_METRIC_HEAP;
    else
      return fail(err, errlen, "--metric '%s': use footprint, rss or heap",
                  val);
  } else if (strcmp(name, "--restart") == 0) {
    if (strcmp(val, "on-failure") == 0)
      cfg->restart = MS_RESTART_ON_FAILURE;
    else if (strcmp(val, "always") == 0)
      cfg->restart = MS_RESTART_ALWAYS;
    else
      return fail(err, errlen, "--restart '%s': use on-failure or always",
                  val);
  } else if (strcmp(name, "--log") == 0) {
    cfg->log_path = val;
  } else if (strcmp(name, "--sample-log") == 0) {
    cfg->sample_log_path = val;
  } else {
    cfg->state_dir = val;
  }
  return 0;
}

int ms_config_parse(int argc, char** argv, ms_config_t* cfg,
                    const char* cgroup_root, char* err, size_t errlen) {
  char name[64];
  const char *arg, *val, *eq, *limit_arg = NULL, *soft_arg = NULL;
  int i, r;

  defaults(cfg);
  err[0] = '\0';
  for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
    arg = argv[i];
    if (arg[0] != '-')
      return fail(err, errlen, "missing '--' before the worker command");
    eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
    snprintf(name, sizeof(name), "%.*s", (int)(eq ? eq - arg : 63), arg);
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0)
      return MS_CONFIG_HELP;
    if (strcmp(name, "--version") == 0) return MS_CONFIG_VERSION;
    val = eq ? eq + 1 : NULL;
    if (val == NULL && takes_value(name) && i + 1 < argc &&
        strcmp(argv[i + 1], "--") != 0)
      val = argv[++i];
    r = option(cfg, name, val, cgroup_root, err, errlen);
    if (r < 0) return r;
    if (strcmp(name, "--limit") == 0) limit_arg = val;
    if (strcmp(name, "--soft-limit") == 0) soft_arg = val;
  }
  if (cfg->watch_pid) {
    if (i + 1 < argc)
      return fail(err, errlen, "--pid watches a running process: give no command");
    if (limit_arg && soft_arg && cfg->soft_limit >= cfg->limit)
      return fail(err, errlen, "--soft-limit %s must be below --limit %s",
                  soft_arg, limit_arg);
    cfg->argv = NULL;
    cfg->argc = 0;
    return MS_CONFIG_RUN;
  }
  if (i >= argc)
    return fail(err, errlen, "missing '--' before the worker command");
  if (i + 1 >= argc) return fail(err, errlen, "no worker command after '--'");
  if (limit_arg && soft_arg && cfg->soft_limit >= cfg->limit)
    return fail(err, errlen, "--soft-limit %s must be below --limit %s",
                soft_arg, limit_arg);
  cfg->argv = argv + i + 1;
  cfg->argc = argc - i - 1;
  return MS_CONFIG_RUN;
}
