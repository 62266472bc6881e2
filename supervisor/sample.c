/* sample.c: a worker's memory read from /proc/<pid>/status (every tick) and
 * /proc/<pid>/smaps_rollup (when ms_sample_full_due() says so), summed over
 * the worker's session with --tree.  Owns only its fds and buffers; the
 * timer that calls ms_sampler_take() and the limits belong to the caller.
 */
#include "sample.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_SEC 1000000000ull

/* One "Name:   123 kB" line of a /proc file and where its value goes. */
typedef struct {
  const char* name;
  size_t len;
  size_t off;
} field_t;

#define FIELD(n, m) { n, sizeof(n) - 1, offsetof(ms_mem_t, m) }

static const field_t status_fields[] = {
  FIELD("VmRSS", rss),         FIELD("RssAnon", rss_anon),
  FIELD("RssFile", rss_file),  FIELD("RssShmem", rss_shmem),
  FIELD("VmSwap", swap),
};

/* Rss is not taken: VmRSS from status means the same for one process,
 * and keeping one source keeps rss comparable from tick to tick. */
static const field_t rollup_fields[] = {
  FIELD("Pss", pss),
  FIELD("Pss_Dirty", pss_dirty),
  FIELD("Pss_Anon", pss_anon),
  FIELD("Pss_File", pss_file),
  FIELD("Pss_Shmem", pss_shmem),
  FIELD("Shared_Clean", shared_clean),
  FIELD("Shared_Dirty", shared_dirty),
  FIELD("Private_Clean", private_clean),
  FIELD("Private_Dirty", private_dirty),
  FIELD("Anonymous", anonymous),
  FIELD("LazyFree", lazyfree),
  FIELD("Swap", smaps_swap),
  FIELD("SwapPss", swap_pss),
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t* slot(ms_mem_t* m, size_t off) {
  return (uint64_t*)((char*)m + off);
}

/* Scans text once: each line's name (up to ':') is compared with the
 * table, its kB value converted to bytes.  The fields of the table start
 * at 0 so that a missing line reads as 0.  Returns how many were found;
 * *seen (if not NULL) gets bit i for each table entry i found. */
static int parse_kb(const char* text, const field_t* f, size_t nf,
                    ms_mem_t* out, uint32_t* seen) {
  const char *p, *nl, *colon, *v;
  char* end;
  size_t i;
  int found = 0;

  for (i = 0; i < nf; i++) *slot(out, f[i].off) = 0;
  if (seen) *seen = 0;
  for (p = text; *p != '\0'; p = *nl != '\0' ? nl + 1 : nl) {
    nl = strchrnul(p, '\n');
    colon = memchr(p, ':', (size_t)(nl - p));
    if (colon == NULL) continue;
    for (i = 0; i < nf; i++)
      if (f[i].len == (size_t)(colon - p) &&
          memcmp(p, f[i].name, f[i].len) == 0)
        break;
    if (i == nf) continue;
    for (v = colon + 1; *v == ' ' || *v == '\t'; v++) {}
    /* strtoull would accept a sign; a value must start with a digit. */
    if (*v < '0' || *v > '9') continue;
    *slot(out, f[i].off) = strtoull(v, &end, 10) * 1024;
    if (seen) *seen |= 1u << i;
    found++;
  }
  return found;
}

int ms_parse_status(const char* text, ms_mem_t* out) {
  /* Kernel threads and zombies have no mm, so no Vm or Rss line: -EINVAL. */
  return parse_kb(text, status_fields, COUNT(status_fields), out, NULL) > 0
             ? 0
             : -EINVAL;
}

static uint64_t sub_sat(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

uint64_t ms_footprint(const ms_mem_t* m, int tree) {
  /* LazyFree <= Anonymous on a real kernel; saturate anyway, since the
   * two come from one text but a hand-made one may disagree. */
  if (tree && (m->have & MS_HAVE_PSS_SPLIT))
    return sub_sat(m->pss_anon, m->lazyfree) + m->swap_pss + m->pss_shmem;
  /* Swap (not VmSwap): swapped shmem pages are in it, and RssShmem holds
   * only the resident ones, so shmem counts once either way. */
  return sub_sat(m->anonymous, m->lazyfree) + m->smaps_swap + m->rss_shmem;
}

/* Index of name in rollup_fields, for the presence bits. */
static uint32_t rollup_bit(const char* name) {
  for (size_t i = 0; i < COUNT(rollup_fields); i++)
    if (strcmp(rollup_fields[i].name, name) == 0) return 1u << i;
  return 0;
}

int ms_parse_smaps_rollup(const char* text, ms_mem_t* out) {
  uint32_t seen;

  /* The "[rollup]" header line has no ':' after a name and is skipped. */
  if (parse_kb(text, rollup_fields, COUNT(rollup_fields), out, &seen) == 0)
    return -EINVAL;
  /* Say which fields the kernel gave, rather than reading an absent line
   * as 0 bytes: Pss_Anon/Pss_File/Pss_Shmem came in 5.3, Pss_Dirty in 6.0
   * (all three split fields appear together). */
  out->have = 0;
  if ((seen & rollup_bit("Pss_Anon")) && (seen & rollup_bit("Pss_Shmem")))
    out->have |= MS_HAVE_PSS_SPLIT;
  if (seen & rollup_bit("Pss_Dirty")) out->have |= MS_HAVE_PSS_DIRTY;
  out->footprint = ms_footprint(out, 0);
  out->full = 1;
  return 0;
}

static uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }

int ms_sample_full_due(uint64_t now_ns, uint64_t last_full_ns,
                       uint64_t full_cost_ns, uint64_t interval_ns,
                       uint64_t predicted, uint64_t near_bytes) {
  uint64_t since;

  if (last_full_ns == 0) return 1;
  since = now_ns > last_full_ns ? now_ns - last_full_ns : 0;
  if (predicted >= near_bytes) {
    /* The estimate says over.  Since each full read resets the estimate to
     * the footprint it measured, being over again means the estimate grew
     * past the margin that read left.  Clearly past it (a leak) is
     * confirmed at the next tick; barely past it (an estimate jittering
     * at the limit, e.g. lazy-free pages) at most every 10 read costs. */
    uint64_t gap = predicted - near_bytes >= near_bytes / 64
                       ? interval_ns
                       : max_u64(interval_ns, 10 * full_cost_ns);
    if (since >= gap) return 1;
  }
  return since >= max_u64(NS_PER_SEC, 200 * full_cost_ns);
}

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* Reads the whole of a /proc file into s->buf, NUL-terminated.  A read
 * from offset 0 makes the kernel's seq_file regenerate the text, so a
 * cached fd gives fresh numbers on every pread (checked on Linux 6.18:
 * VmRSS follows the process between preads of one fd).  When the text
 * fills the buffer it may be cut, so grow and read again. */
static int read_all(ms_sampler_t* s, int fd) {
  ssize_t n = 0;
  size_t cap;
  char* nbuf;

  for (;;) {
    if (s->bufcap == 0 || (size_t)n == s->bufcap - 1) {
      cap = s->bufcap ? s->bufcap * 2 : 4096;
      nbuf = realloc(s->buf, cap);
      if (nbuf == NULL) return -ENOMEM;
      s->buf = nbuf;
      s->bufcap = cap;
    }
    do
      n = pread(fd, s->buf, s->bufcap - 1, 0);
    while (n < 0 && errno == EINTR);
    /* Once the process has exited the read fails with ESRCH, or returns
     * nothing when its mm is already gone. */
    if (n < 0) return -errno;
    if (n == 0) return -ESRCH;
    if ((size_t)n < s->bufcap - 1) break;
  }
  s->buf[n] = '\0';
  return 0;
}

/* Reads /proc/<pid>/<name>.  With fd non-NULL the descriptor is opened
 * once and kept in *fd (it keeps naming the same process even if the pid
 * is reused); with NULL it is opened for this read only. */
static int read_proc(ms_sampler_t* s, pid_t pid, const char* name, int* fd) {
  char path[64];
  int tmp = -1;
  int err;

  if (fd == NULL) fd = &tmp;
  if (*fd < 0) {
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0) return errno == ENOENT || errno == ESRCH ? -ESRCH : -errno;
  }
  err = read_all(s, *fd);
  if (tmp >= 0) close(tmp);
  return err;
}

/* Member i of the sample: the worker itself (cached fds) or, with --tree,
 * another session member (opened per read). */
static int read_status(ms_sampler_t* s, size_t i, ms_mem_t* m) {
  pid_t pid = i == 0 ? s->pid : s->pids[i];
  int err = read_proc(s, pid, "status", i == 0 ? &s->status_fd : NULL);

  if (err != 0) return err;
  /* A zombie's status has no memory lines: it has exited. */
  return ms_parse_status(s->buf, m) == 0 ? 0 : -ESRCH;
}

static int read_rollup(ms_sampler_t* s, size_t i, ms_mem_t* m) {
  pid_t pid = i == 0 ? s->pid : s->pids[i];
  int err = read_proc(s, pid, "smaps_rollup", i == 0 ? &s->rollup_fd : NULL);

  /* smaps_rollup belongs to an address space, not a task: after the worker
   * execs (a "sh -c 'exec ./w'" wrapper), the kept descriptor reads the
   * old, empty one.  The status read just succeeded on its own kept
   * descriptor, so the process is alive and its pid is still its own:
   * reopen once. */
  if (err == -ESRCH && i == 0 && s->rollup_fd >= 0) {
    close(s->rollup_fd);
    s->rollup_fd = -1;
    err = read_proc(s, pid, "smaps_rollup", &s->rollup_fd);
  }
  if (err != 0) return err;
  return ms_parse_smaps_rollup(s->buf, m) == 0 ? 0 : -ESRCH;
}

/* Refreshes s->pids, growing the array until the session fits. */
static int rescan(ms_sampler_t* s, uint64_t now_ns) {
  pid_t* np;
  size_t cap;
  int n;

  for (;;) {
    /* Grow first when empty or when the last scan filled the array. */
    if (s->npids == s->pidcap) {
      cap = s->pidcap ? s->pidcap * 2 : 16;
      np = realloc(s->pids, cap * sizeof(*np));
      if (np == NULL) return -ENOMEM;
      s->pids = np;
      s->pidcap = cap;
    }
    n = ms_session_pids(s->pid, s->pids, s->pidcap);
    if (n < 0) return n;
    s->npids = (size_t)n;
    if (s->npids < s->pidcap) break;
  }
  s->pids_scanned_ns = now_ns;
  return 0;
}

void ms_sampler_init(ms_sampler_t* s, pid_t pid, int tree,
                     uint64_t interval_ns) {
  memset(s, 0, sizeof(*s));
  s->pid = pid;
  s->tree = tree;
  s->interval_ns = interval_ns;
  s->status_fd = -1;
  s->rollup_fd = -1;
}

void ms_sampler_free(ms_sampler_t* s) {
  if (s->status_fd >= 0) close(s->status_fd);
  if (s->rollup_fd >= 0) close(s->rollup_fd);
  s->status_fd = -1;
  s->rollup_fd = -1;
  free(s->buf);
  free(s->pids);
  s->buf = NULL;
  s->pids = NULL;
  s->bufcap = s->npids = s->pidcap = 0;
}

/* Adds member m's rollup into out, and its footprint: a tree counts the
 * Pss forms so a page shared by N members (fork's copy-on-write, a shared
 * memfd) counts once in the sum. */
static void add_rollup(ms_mem_t* out, const ms_mem_t* m, int tree) {
  out->private_dirty += m->private_dirty;
  out->private_clean += m->private_clean;
  out->shared_dirty += m->shared_dirty;
  out->shared_clean += m->shared_clean;
  out->anonymous += m->anonymous;
  out->lazyfree += m->lazyfree;
  out->smaps_swap += m->smaps_swap;
  out->pss += m->pss;
  out->pss_anon += m->pss_anon;
  out->pss_file += m->pss_file;
  out->pss_shmem += m->pss_shmem;
  out->swap_pss += m->swap_pss;
  out->pss_dirty += m->pss_dirty;
  /* One kernel for all members: the first read says what it gives. */
  out->have = out->full ? out->have & m->have : m->have;
  out->full = 1;
  out->footprint += ms_footprint(m, tree);
}

/* One tick: status of every member (cheap, O(1) each) gives an estimate;
 * smaps_rollup (cost grows with mappings and resident pages) is read only
 * when due, and each such read recalibrates the estimate.  The status
 * fields of out always come from the first pass, so rss and swap mean the
 * same on a full tick as on any other. */
int ms_sampler_take(ms_sampler_t* s, uint64_t now_ns, uint64_t near_bytes,
                    int force_full, ms_mem_t* out) {
  uint64_t t0 = mono_ns();
  uint64_t t1, est, predicted;
  size_t i, n;
  ms_mem_t m;
  int err;

  memset(out, 0, sizeof(*out));
  if (s->tree && (force_full || s->npids == 0 ||
                  now_ns - s->pids_scanned_ns >= NS_PER_SEC)) {
    err = rescan(s, now_ns);
    if (err != 0) return err;
  }
  n = s->tree ? s->npids : 1;

  for (i = 0; i < n; i++) {
    err = read_status(s, i, &m);
    if (err == -ESRCH && i > 0) continue; /* A member left: skip it. */
    if (err != 0) return err;
    out->rss += m.rss;
    out->rss_anon += m.rss_anon;
    out->rss_file += m.rss_file;
    out->rss_shmem += m.rss_shmem;
    out->swap += m.swap;
    out->nprocs++;
  }
  est = out->rss_anon + out->rss_shmem + out->swap;
  predicted = (int64_t)est > s->calib ? (uint64_t)((int64_t)est - s->calib) : 0;

  if (force_full || ms_sample_full_due(now_ns, s->last_full_ns,
                                       s->full_cost_ns, s->interval_ns,
                                       predicted, near_bytes)) {
    t1 = mono_ns();
    for (i = 0; i < n; i++) {
      /* The member's own RssShmem goes with its rollup (the footprint of
       * a process without the Pss split takes shmem from status). */
      memset(&m, 0, sizeof(m));
      err = read_status(s, i, &m);
      if (err == 0) err = read_rollup(s, i, &m);
      if (err == -ESRCH && i > 0) continue;
      if (err != 0) return err;
      add_rollup(out, &m, s->tree);
    }
    out->full = 1;
    s->full_cost_ns = mono_ns() - t1;
    s->last_full_ns = now_ns;
    s->calib = (int64_t)est - (int64_t)out->footprint;
  } else {
    out->footprint = predicted;
  }
  out->cost_ns = mono_ns() - t0;
  return 0;
}

/* The name (field 2) may hold spaces and ')', so parse after the last ')',
 * as libuv does. */
int ms_parse_stat_session(const char* text, pid_t* sid) {
  const char* p = strrchr(text, ')');
  int v;

  if (p == NULL || sscanf(p + 1, " %*c %*d %*d %d", &v) != 1) return -EINVAL;
  *sid = v;
  return 0;
}

/* Session id of pid, field 6 of /proc/<pid>/stat, or -1 if it is gone. */
static pid_t session_of(const char* pid) {
  char path[64], buf[1024];
  ssize_t n;
  pid_t sid;
  int fd;

  snprintf(path, sizeof(path), "/proc/%s/stat", pid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  do
    n = read(fd, buf, sizeof(buf) - 1);
  while (n < 0 && errno == EINTR);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  return ms_parse_stat_session(buf, &sid) == 0 ? sid : -1;
}

int ms_session_pids(pid_t sid, pid_t* pids, size_t max) {
  struct dirent* de;
  DIR* dir;
  size_t n = 1;
  int leader = 0;
  pid_t pid;

  if (max == 0) return -EINVAL;
  dir = opendir("/proc");
  if (dir == NULL) return -errno;
  while ((de = readdir(dir)) != NULL) {
    if (de->d_name[0] < '1' || de->d_name[0] > '9') continue;
    if (session_of(de->d_name) != sid) continue;
    pid = (pid_t)strtol(de->d_name, NULL, 10);
    if (pid == sid)
      leader = 1;
    else if (n < max)
      pids[n++] = pid;
  }
  closedir(dir);
  pids[0] = sid;
  return leader ? (int)n : -ESRCH;
}

/* The "Name:" line of a status text (the kernel's comm, at most 15 bytes)
 * into name[16]; "?" when absent. */
static void status_name(const char* text, char name[16]) {
  const char* p = strstr(text, "Name:");
  size_t n = 0;

  if (p != NULL && (p == text || p[-1] == '\n')) {
    p += 5;
    p += strspn(p, " \t");
    n = strcspn(p, "\n");
  }
  if (n == 0) {
    p = "?";
    n = 1;
  }
  if (n > 15) n = 15;
  memcpy(name, p, n);
  name[n] = '\0';
}

static int by_footprint_desc(const void* a, const void* b) {
  const ms_proc_t *x = a, *y = b;
  if (x->mem.footprint != y->mem.footprint)
    return x->mem.footprint < y->mem.footprint ? 1 : -1;
  return x->pid < y->pid ? -1 : x->pid > y->pid;
}

static int by_rss_desc(const void* a, const void* b) {
  const ms_proc_t *x = a, *y = b;
  if (x->mem.rss != y->mem.rss) return x->mem.rss < y->mem.rss ? 1 : -1;
  return x->pid < y->pid ? -1 : x->pid > y->pid;
}

int ms_session_split(pid_t sid, int tree, int rank_rss, ms_proc_t* out,
                     size_t max, size_t* total) {
  ms_sampler_t s;
  ms_proc_t* all = NULL;
  size_t i, n = 0;
  int err;

  if (out == NULL && max > 0) return -EINVAL;
  /* A scratch sampler lends its buffer and session scan. */
  ms_sampler_init(&s, sid, 1, 0);
  err = rescan(&s, 0);
  if (err != 0) goto end;
  all = calloc(s.npids, sizeof(*all));
  if (all == NULL) {
    err = -ENOMEM;
    goto end;
  }
  for (i = 0; i < s.npids; i++) {
    ms_proc_t* p = &all[n];
    p->pid = s.pids[i];
    err = read_proc(&s, p->pid, "status", NULL);
    if (err == 0) err = ms_parse_status(s.buf, &p->mem) == 0 ? 0 : -ESRCH;
    if (err == 0) status_name(s.buf, p->comm);
    if (err == 0) err = read_proc(&s, p->pid, "smaps_rollup", NULL);
    if (err == 0) err = ms_parse_smaps_rollup(s.buf, &p->mem) == 0 ? 0 : -ESRCH;
    if (err == -ESRCH && i > 0) continue; /* left meanwhile */
    if (err != 0) goto end;
    p->mem.footprint = ms_footprint(&p->mem, tree);
    p->mem.nprocs = 1;
    n++;
  }
  qsort(all, n, sizeof(*all), rank_rss ? by_rss_desc : by_footprint_desc);
  if (total) *total = n;
  if (max > n) max = n;
  if (max > 0) memcpy(out, all, max * sizeof(*out));
  err = (int)max;

end:
  free(all);
  ms_sampler_free(&s);
  return err;
}

int ms_descendants_dominate(uint64_t worker, uint64_t others) {
  return others >= MS_DESC_RATIO * worker &&
         others - worker >= MS_DESC_MIN_GAP;
}

int ms_sampler_descendants(ms_sampler_t* s, uint64_t now_ns,
                           uint64_t worker_footprint, ms_descendants_t* out) {
  ms_sampler_t scan;
  ms_mem_t m;
  uint64_t t0, est;
  int err;

  if (s->desc_found || now_ns < s->desc_next_ns) return 0;
  t0 = mono_ns();
  memset(out, 0, sizeof(*out));
  /* Its own scratch state: s->pids belongs to --tree's sampling. */
  ms_sampler_init(&scan, s->pid, 1, 0);
  err = rescan(&scan, now_ns);
  for (size_t i = 1; err == 0 && i < scan.npids; i++) {
    if (read_proc(&scan, scan.pids[i], "status", NULL) != 0 ||
        ms_parse_status(scan.buf, &m) != 0)
      continue; /* gone, or a zombie */
    est = m.rss_anon + m.rss_shmem + m.swap;
    out->nprocs++;
    out->footprint += est;
    if (out->top_pid == 0 || est > out->top_footprint) {
      out->top_pid = scan.pids[i];
      out->top_footprint = est;
      status_name(scan.buf, out->top_comm);
    }
  }
  ms_sampler_free(&scan);
  /* Rate: a /proc scan cost 0.9 ms with 114 processes here (~8 us per
   * process); at most 0.5% of a core however many there are. */
  s->desc_cost_ns = mono_ns() - t0;
  s->desc_next_ns = now_ns + max_u64(MS_DESC_EVERY_NS, 200 * s->desc_cost_ns);
  if (err != 0) return err;
  if (!ms_descendants_dominate(worker_footprint, out->footprint)) return 0;
  s->desc_found = 1;
  return 1;
}
