/* config.c: memsup's command line -> ms_config_t, the size and duration
 * syntax, and the cgroup lookup behind "--limit N%".  It prints nothing
 * and opens nothing but cgroup files; main.c reports errors and opens the
 * log and state paths.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "addr.h"

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
    "crosses --limit.  SIZE is bytes or K/M/G/T (binary, e.g. 128M, 1.5G),\n"
    "at most 8192T; DURATION is ms, s, m or h (a bare number is seconds),\n"
    "at most 720h.\n"
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
    "  --max-restarts N         crash restarts allowed, 1..10000 ... (default"
    " 5)\n"
    "  --within DURATION        ... within this window (default 60s)\n"
    "  --restart on-failure|always  \"always\" restarts after exit 0 too\n"
    "                           (default on-failure)\n"
    "  --tree                   measure the worker and its descendants\n"
    "  --subreaper              adopt orphaned descendants (implied as"
    " PID 1)\n"
    "  --dry-run                never restart; log what would happen\n"
    "  --pid PID                watch a running process (memsup watch);\n"
    "                           implies --dry-run, no command\n"
    "  --log FILE|-             restart log, JSON lines; - is stdout\n"
    "                           (default: none)\n"
    "  --log-max SIZE           rotate the restart log to FILE.1 past this\n"
    "                           (default 64M)\n"
    "  --sample-log FILE        memory time series, JSON lines (default:"
    " none)\n"
    "  --sample-every DURATION  one sample-log line per worker this often\n"
    "                           (default 1s)\n"
    "  --sample-log-max SIZE    rotate the sample log to FILE.1 past this\n"
    "                           (default 64M)\n"
    "  --state-dir DIR          where handed-over state is kept (default:"
    " none)\n"
    "  --max-state SIZE         largest state accepted (default 1G)\n"
    "  --metrics [ADDR:]PORT    serve /metrics, /healthz, /readyz over HTTP\n"
    "                           (default address 127.0.0.1; IPv6 [::1]:PORT)\n"
    "  --listen [ADDR:]PORT     hold a listening socket across restarts and\n"
    "                           hand it to each worker at fd 3.. (LISTEN_FDS);\n"
    "                           repeatable\n"
    "  --workers N              run N workers (1..64) sharing the --listen\n"
    "                           sockets, each with its own --limit and state;\n"
    "                           memory restarts go one at a time (default 1)\n"
    "  -q, --quiet              errors only\n"
    "  -v, --verbose            more detail; repeat (-vv) for more\n"
    "  -h, --help               this text\n"
    "  --version                print the version\n"
    "\n"
    "exit status:\n"
    "  0    the worker exited 0 (--restart on-failure), or a watch ended\n"
    "  100  usage or configuration error\n"
    "  111  system failure\n"
    "  126  command not executable\n"
    "  127  command not found\n"
    "  otherwise the worker's own status, 128+N when killed by signal N:\n"
    "       stopped with SIGTERM, memsup exits 143 when the worker dies of it\n"
    "\n"
    "examples:\n"
    "  memsup --limit 128M -- ./worker --port 8080\n"
    "  memsup --limit 80% --for 2s --log restarts.jsonl -- ./server\n"
    "  memsup --workers 4 --listen 8080 --limit 128M -- ./server\n"
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
/* The message quotes what was typed: a control character in it (a
 * newline in a quoted shell argument) becomes '?', so the message stays
 * one line on a terminal and in a log. */
static int fail(char* err, size_t errlen, const char* fmt, ...) {
  va_list ap;
  char* p;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  for (p = err; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
  return -EINVAL;
}

/* The largest size any flag takes: 2^53 bytes is exact as a JSON number
 * (the log writes doubles) and leaves room for sums such as limit plus a
 * margin without overflow.  No machine has 8 PiB of memory. */
#define SIZE_MAX_FLAG (1ULL << 53)
/* The longest duration any flag but --interval takes.  Timers round
 * nanoseconds up to milliseconds by adding 999,999, so a value near 2^64
 * would wrap to a timer of almost nothing; 30 days is longer than any
 * grace, handshake or restart window a service needs. */
#define DURATION_MAX_FLAG (30 * 24 * 3600 * NS_PER_S)
/* --max-restarts keeps one timestamp per allowed restart (plus one), so
 * the count bounds memory; 10,000 within any window is "never give up". */
#define RESTARTS_MAX 10000u
/* PID_MAX_LIMIT in <linux/threads.h>: the kernel never hands out a pid
 * above 2^22 on 64-bit machines, and a larger number cast to pid_t could
 * turn negative, which kill(2) reads as a process group or "every
 * process". */
#define PID_MAX 4194304u

static int size_opt(const char* flag, const char* val, uint64_t* out,
                    char* err, size_t errlen) {
  int r = size_any(val, out);
  if (r == -ERANGE || (r == 0 && *out > SIZE_MAX_FLAG))
    return fail(err, errlen, "%s '%s': too large (at most 8192T)", flag, val);
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
  if (r == -ERANGE || (r == 0 && *out > DURATION_MAX_FLAG))
    return fail(err, errlen, "%s '%s': too large (at most 720h)", flag, val);
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
  if (*out > SIZE_MAX_FLAG)
    return fail(err, errlen, "--limit %s: %llu bytes is too large (at most "
                "8192T)", val, (unsigned long long)*out);
  return 0;
}

/* A whole number from lo to hi (what: "a whole number", "a process id"). */
static int count_opt(const char* flag, const char* val, const char* what,
                     unsigned lo, unsigned hi, unsigned* out, char* err,
                     size_t errlen) {
  uint64_t ip, frac;
  const char* end;
  int r;

  end = number(val, &ip, &frac, &r);
  if (end == NULL || *end != '\0' || frac != 0 || ip < lo || ip > hi)
    return fail(err, errlen, "%s '%s': not %s from %u to %u", flag, val, what,
                lo, hi);
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
  cfg->workers = 1;
  cfg->sample_every_ns = NS_PER_S;
  cfg->sample_log_max = 64ULL << 20;
  cfg->log_max = 64ULL << 20;
}

/* getopt_long() values of the long-only options; the short ones are their
 * own letters. */
enum {
  OPT_LIMIT = 256, OPT_SOFT_LIMIT, OPT_METRIC, OPT_INTERVAL, OPT_FOR,
  OPT_GRACE, OPT_HANDSHAKE, OPT_MAX_RESTARTS, OPT_WITHIN, OPT_RESTART,
  OPT_TREE, OPT_SUBREAPER, OPT_DRY_RUN, OPT_PID, OPT_LOG, OPT_SAMPLE_LOG,
  OPT_SAMPLE_EVERY, OPT_SAMPLE_LOG_MAX, OPT_STATE_DIR, OPT_MAX_STATE,
  OPT_VERSION, OPT_METRICS, OPT_LISTEN, OPT_LOG_MAX, OPT_WORKERS
};

static const struct option longopts[] = {
    {"limit", required_argument, NULL, OPT_LIMIT},
    {"soft-limit", required_argument, NULL, OPT_SOFT_LIMIT},
    {"metric", required_argument, NULL, OPT_METRIC},
    {"interval", required_argument, NULL, OPT_INTERVAL},
    {"for", required_argument, NULL, OPT_FOR},
    {"grace", required_argument, NULL, OPT_GRACE},
    {"handshake-timeout", required_argument, NULL, OPT_HANDSHAKE},
    {"max-restarts", required_argument, NULL, OPT_MAX_RESTARTS},
    {"within", required_argument, NULL, OPT_WITHIN},
    {"restart", required_argument, NULL, OPT_RESTART},
    {"tree", no_argument, NULL, OPT_TREE},
    {"subreaper", no_argument, NULL, OPT_SUBREAPER},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"pid", required_argument, NULL, OPT_PID},
    {"log", required_argument, NULL, OPT_LOG},
    {"sample-log", required_argument, NULL, OPT_SAMPLE_LOG},
    {"sample-every", required_argument, NULL, OPT_SAMPLE_EVERY},
    {"sample-log-max", required_argument, NULL, OPT_SAMPLE_LOG_MAX},
    {"log-max", required_argument, NULL, OPT_LOG_MAX},
    {"state-dir", required_argument, NULL, OPT_STATE_DIR},
    {"max-state", required_argument, NULL, OPT_MAX_STATE},
    {"metrics", required_argument, NULL, OPT_METRICS},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0}};

/* "+": stop at the first word that is not an option (the worker command
 * must not have its own options taken as ours, and argv is not permuted);
 * ":": report a missing value as ':' rather than printing it. */
static const char optstring[] = "+:hqv";

static const char* long_name(int val) {
  size_t i;
  for (i = 0; longopts[i].name != NULL; i++)
    if (longopts[i].val == val) return longopts[i].name;
  return "?";
}

/* One option with its value (NULL for flags). */
static int option(ms_config_t* cfg, int c, const char* val,
                  const char* cgroup_root, char* err, size_t errlen) {
  char flag[32];
  uint64_t v;
  unsigned n;
  int r;

  snprintf(flag, sizeof(flag), "--%s", long_name(c));
  switch (c) {
    case 'q':
      cfg->verbosity = -1;
      return 0;
    case 'v':
      cfg->verbosity++;
      return 0;
    case OPT_TREE:
      cfg->tree = 1;
      return 0;
    case OPT_SUBREAPER:
      cfg->subreaper = 1;
      return 0;
    case OPT_DRY_RUN:
      cfg->dry_run = 1;
      return 0;
    case OPT_LIMIT:
      return limit_opt(val, cgroup_root, &cfg->limit, err, errlen);
    case OPT_SOFT_LIMIT:
      return size_opt(flag, val, &cfg->soft_limit, err, errlen);
    case OPT_MAX_STATE:
      return size_opt(flag, val, &cfg->max_state, err, errlen);
    case OPT_SAMPLE_LOG_MAX:
      return size_opt(flag, val, &cfg->sample_log_max, err, errlen);
    case OPT_LOG_MAX:
      return size_opt(flag, val, &cfg->log_max, err, errlen);
    case OPT_SAMPLE_EVERY:
      return duration_opt(flag, val, 0, &cfg->sample_every_ns, err, errlen);
    case OPT_FOR:
      return duration_opt(flag, val, 1, &cfg->for_ns, err, errlen);
    case OPT_GRACE:
      return duration_opt(flag, val, 1, &cfg->grace_ns, err, errlen);
    case OPT_HANDSHAKE:
      return duration_opt(flag, val, 0, &cfg->handshake_ns, err, errlen);
    case OPT_WITHIN:
      return duration_opt(flag, val, 0, &cfg->within_ns, err, errlen);
    case OPT_MAX_RESTARTS:
      return count_opt(flag, val, "a whole number", 1, RESTARTS_MAX,
                       &cfg->max_restarts, err, errlen);
    case OPT_WORKERS:
      return count_opt(flag, val, "a whole number", 1, MS_WORKERS_MAX,
                       &cfg->workers, err, errlen);
    case OPT_PID:
      if (count_opt(flag, val, "a process id", 1, PID_MAX, &n, err, errlen))
        return -EINVAL;
      cfg->watch_pid = (long)n;
      cfg->dry_run = 1;
      return 0;
    case OPT_INTERVAL:
      r = duration_any(val, &v);
      if (r == -EINVAL)
        return duration_opt(flag, val, 0, &v, err, errlen);
      if (r < 0 || v < NS_PER_MS || v > 3600 * NS_PER_S)
        return fail(err, errlen, "--interval '%s': must be from 1ms to 1h",
                    val);
      cfg->interval_ns = v;
      return 0;
    case OPT_METRIC:
      if (strcmp(val, "footprint") == 0)
        cfg->metric = MS_METRIC_FOOTPRINT;
      else if (strcmp(val, "rss") == 0)
        cfg->metric = MS_METRIC_RSS;
      else if (strcmp(val, "heap") == 0)
        cfg->metric = MS_METRIC_HEAP;
      else
        return fail(err, errlen, "--metric '%s': use footprint, rss or heap",
                    val);
      return 0;
    case OPT_RESTART:
      if (strcmp(val, "on-failure") == 0)
        cfg->restart = MS_RESTART_ON_FAILURE;
      else if (strcmp(val, "always") == 0)
        cfg->restart = MS_RESTART_ALWAYS;
      else
        return fail(err, errlen, "--restart '%s': use on-failure or always",
                    val);
      return 0;
    case OPT_LOG:
      cfg->log_path = val;
      return 0;
    case OPT_SAMPLE_LOG:
      cfg->sample_log_path = val;
      return 0;
    case OPT_STATE_DIR:
      cfg->state_dir = val;
      return 0;
    case OPT_METRICS: {
      ms_addr_t a;
      char why[160];
      if (ms_addr_parse(val, &a, why, sizeof(why)) < 0)
        return fail(err, errlen, "--metrics %s", why);
      cfg->metrics = val;
      return 0;
    }
    case OPT_LISTEN: {
      ms_addr_t a;
      char why[160];
      if (ms_addr_parse(val, &a, why, sizeof(why)) < 0)
        return fail(err, errlen, "--listen %s", why);
      if (cfg->nlisten == sizeof(cfg->listen) / sizeof(cfg->listen[0]))
        return fail(err, errlen, "--listen: at most 64 sockets");
      cfg->listen[cfg->nlisten++] = val;
      return 0;
    }
  }
  return fail(err, errlen, "unknown option (see memsup --help)");
}

/* getopt_long() accepts any unambiguous prefix ("--lim" for --limit).
 * memsup does not: a script that relies on one breaks the day an option
 * with the same prefix is added, and messages name flags as typed. */
static int exact(const char* word, const char* name) {
  size_t n = strcspn(word + 2, "=");
  return n == strlen(name) && strncmp(word + 2, name, n) == 0;
}

/* What getopt_long() refused in word: an unknown option, or a value given
 * to a flag ("--tree=yes").  opt is the option's value, 0 when getopt
 * found no option of that name. */
static int refused(const char* word, int opt, char* err, size_t errlen) {
  int n = (int)strcspn(word, "=");
  if (strncmp(word, "--", 2) != 0)
    return fail(err, errlen, "unknown option '-%c' (see memsup --help)", opt);
  if (opt != 0 && word[n] == '=' && exact(word, long_name(opt)))
    return fail(err, errlen, "%.*s takes no value", n, word);
  return fail(err, errlen, "unknown option '%.*s' (see memsup --help)", n,
              word);
}

int ms_config_parse(int argc, char** argv, ms_config_t* cfg,
                    const char* cgroup_root, char* err, size_t errlen) {
  const char *limit_arg = NULL, *soft_arg = NULL;
  int watch = 0, at, c, idx, r, dashes;

  defaults(cfg);
  err[0] = '\0';
  if (argc > 1 && strcmp(argv[1], "watch") == 0) {
    /* "memsup watch ..." parses as if "watch" were the program name. */
    watch = 1;
    argc--;
    argv++;
  }
  /* optind = 0 makes glibc start over (it keeps state between calls). */
  optind = 0;
  opterr = 0;
  for (;;) {
    /* The word being read; getopt moves optind past a cluster such as
     * "-vv" only after its last letter. */
    at = optind > 0 ? optind : 1;
    idx = -1;
    c = getopt_long(argc, argv, optstring, longopts, &idx);
    if (c == -1) break;
    if (c == '?') return refused(argv[at], optopt, err, errlen);
    if (c == ':' && exact(argv[at], long_name(optopt)))
      return fail(err, errlen, "--%s needs a value", long_name(optopt));
    if (c == ':') return refused(argv[at], 0, err, errlen);
    if (idx >= 0 && !exact(argv[at], longopts[idx].name))
      return refused(argv[at], 0, err, errlen);
    if (c == 'h') return MS_CONFIG_HELP;
    if (c == OPT_VERSION) return MS_CONFIG_VERSION;
    if (optarg != NULL && idx >= 0 && longopts[idx].has_arg) {
      /* "--limit -- ./w": the "--" ends memsup's options, it is not the
       * value; "--log=" gives no value either. */
      if (*optarg == '\0' ||
          (optarg == argv[optind - 1] && strcmp(optarg, "--") == 0))
        return fail(err, errlen, "--%s needs a value", longopts[idx].name);
    }
    r = option(cfg, c, optarg, cgroup_root, err, errlen);
    if (r < 0) return r;
    if (c == OPT_LIMIT) limit_arg = optarg;
    if (c == OPT_SOFT_LIMIT) soft_arg = optarg;
  }
  /* getopt ends on "--" (and skips it) or on the first other word. */
  dashes = at < argc && optind == at + 1 && strcmp(argv[at], "--") == 0;
  if (limit_arg && soft_arg && cfg->soft_limit >= cfg->limit)
    return fail(err, errlen, "--soft-limit %s must be below --limit %s",
                soft_arg, limit_arg);
  if (watch && cfg->watch_pid == 0)
    return fail(err, errlen,
                "memsup watch needs --pid PID (the process to watch)");
  if (cfg->watch_pid) {
    if (cfg->workers > 1)
      return fail(err, errlen, "--workers runs workers: not with --pid");
    if (optind < argc)
      return fail(err, errlen,
                  "--pid watches a running process: give no command");
    cfg->argv = NULL;
    cfg->argc = 0;
    return MS_CONFIG_RUN;
  }
  if (optind >= argc)
    return fail(err, errlen, dashes ? "no worker command after '--'"
                                    : "no worker command (memsup [options] "
                                      "-- command [args...])");
  if (!dashes)
    return fail(err, errlen, "missing '--' before the worker command '%s'",
                argv[optind]);
  cfg->argv = argv + optind;
  cfg->argc = argc - optind;
  return MS_CONFIG_RUN;
}
