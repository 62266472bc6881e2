/* evidence.c: restart evidence.  Parses /proc/PID/smaps into per-owner
 * rows, classifies the bloat from the sampled figures, and renders both as
 * JSON.  Reading smaps is the only I/O here; when to capture, and writing
 * the result to the restart log, belong to the caller (supervise.c).
 */
#include "evidence.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "logkeys.h"
#include "sample.h"

static int starts(const char* s, size_t len, const char* prefix) {
  size_t n = strlen(prefix);
  return len >= n && memcmp(s, prefix, n) == 0;
}

/* Class of the name s[0..len), which need not be NUL-terminated. */
static ms_map_class_t classify_name(const char* s, size_t len) {
  if (len == 0) return MS_MAP_ANON;
  if (len == 6 && memcmp(s, "[heap]", 6) == 0) return MS_MAP_HEAP;
  if (starts(s, len, "[stack]") || starts(s, len, "[stack:"))
    return MS_MAP_STACK;
  /* Names given with prctl(PR_SET_VMA_ANON_NAME), e.g. glibc's
   * "[anon: glibc: malloc arena]": anonymous memory all the same. */
  if (starts(s, len, "[anon_shmem:")) return MS_MAP_SHMEM;
  if (starts(s, len, "[anon:")) return MS_MAP_ANON;
  /* memfd and SysV segments live on internal shmem mounts and show as
   * "/memfd:x (deleted)" and "/SYSV%08x (deleted)"; MAP_SHARED|
   * MAP_ANONYMOUS memory shows as "/dev/zero (deleted)". */
  if (starts(s, len, "/dev/shm/") || starts(s, len, "/memfd:") ||
      starts(s, len, "/SYSV") || starts(s, len, "SYSV") ||
      starts(s, len, "/dev/zero"))
    return MS_MAP_SHMEM;
  if (starts(s, len, "/dev/")) return MS_MAP_DEVICE;
  if (s[0] == '/') return MS_MAP_FILE;
  return MS_MAP_OTHER;
}

ms_map_class_t ms_map_class(const char* name) {
  return classify_name(name ? name : "", name ? strlen(name) : 0);
}

const char* ms_map_class_name(ms_map_class_t c) {
  static const char* names[] = {"heap",  "anon",   "file", "stack",
                                "shmem", "device", "other"};
  return (unsigned)c < sizeof(names) / sizeof(names[0]) ? names[c] : "other";
}

/* Rows grouped by (class, name): an array of rows plus an open-addressing
 * hash table of row indices (+1, 0 = empty), kept at most half full. */
typedef struct {
  ms_mapping_t* rows;
  size_t nrows, caprows;
  uint32_t* slots;
  size_t nslots;
} table_t;

static uint64_t hash(ms_map_class_t cls, const char* s, size_t len) {
  uint64_t h = 14695981039346656037ull ^ (uint64_t)cls;
  for (size_t i = 0; i < len; i++)
    h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

static uint32_t* find_slot(table_t* t, ms_map_class_t cls, const char* s,
                           size_t len) {
  size_t i = hash(cls, s, len) & (t->nslots - 1);
  ms_mapping_t* r;

  for (;; i = (i + 1) & (t->nslots - 1)) {
    if (t->slots[i] == 0) return &t->slots[i];
    r = &t->rows[t->slots[i] - 1];
    if (r->cls == cls && strlen(r->name) == len && memcmp(r->name, s, len) == 0)
      return &t->slots[i];
  }
}

static int grow(table_t* t) {
  size_t n = t->nslots ? t->nslots * 2 : 1024;
  uint32_t* old = t->slots;
  size_t oldn = t->nslots;
  ms_mapping_t* rows = realloc(t->rows, n / 2 * sizeof(*rows));

  if (rows == NULL) return -ENOMEM;
  t->rows = rows;
  t->caprows = n / 2;
  t->slots = calloc(n, sizeof(*t->slots));
  if (t->slots == NULL) {
    t->slots = old;
    return -ENOMEM;
  }
  t->nslots = n;
  for (size_t i = 0; i < oldn; i++) {
    if (old[i] == 0) continue;
    ms_mapping_t* r = &t->rows[old[i] - 1];
    *find_slot(t, r->cls, r->name, strlen(r->name)) = old[i];
  }
  free(old);
  return 0;
}

/* The row of the mapping named s[0..len), added if new.  Returns its
 * index or -ENOMEM. */
static long row_for(table_t* t, const char* s, size_t len) {
  ms_map_class_t cls = classify_name(s, len);
  uint32_t* slot;
  ms_mapping_t* r;

  /* Cut long names at a UTF-8 character boundary, so the JSON stays valid. */
  if (len > MS_MAP_NAME_MAX) {
    len = MS_MAP_NAME_MAX;
    while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80) len--;
  }
  if (t->nrows == t->caprows && grow(t) != 0) return -ENOMEM;
  slot = find_slot(t, cls, s, len);
  if (*slot != 0) return (long)*slot - 1;
  r = &t->rows[t->nrows];
  memset(r, 0, sizeof(*r));
  memcpy(r->name, s, len);
  r->cls = cls;
  *slot = (uint32_t)++t->nrows;
  return (long)t->nrows - 1;
}

/* A header line is "start-end perms offset dev inode [name]".  Returns 1
 * and the name (possibly empty) when p..nl is one. */
static int header(const char* p, const char* nl, const char** name,
                  size_t* len) {
  const char* q;

  /* Most lines are "Key: value"; keys start with a capital. */
  if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return 0;
  q = p + strspn(p, "0123456789abcdef");
  if (q >= nl || *q != '-') return 0;
  p = ++q;
  q += strspn(q, "0123456789abcdef");
  if (q == p || q >= nl || *q != ' ') return 0;
  for (int field = 0; field < 4; field++) {
    while (q < nl && *q == ' ') q++;
    while (q < nl && *q != ' ') q++;
  }
  while (q < nl && *q == ' ') q++;
  *name = q;
  *len = (size_t)(nl - q);
  return 1;
}

/* The "Key: N kB" lines kept, and where their value goes. */
static const struct {
  const char* key; /* with the colon, so "Swap:" is not "SwapPss:" */
  size_t len, off;
} keys[] = {
    {"Size:", 5, offsetof(ms_mapping_t, size)},
    {"Rss:", 4, offsetof(ms_mapping_t, rss)},
    {"Private_Dirty:", 14, offsetof(ms_mapping_t, private_dirty)},
    {"Swap:", 5, offsetof(ms_mapping_t, swap)},
    {"Anonymous:", 10, offsetof(ms_mapping_t, anonymous)},
    {"LazyFree:", 9, offsetof(ms_mapping_t, lazyfree)},
};

static void add_value(ms_mapping_t* r, const char* p, const char* nl) {
  const char* v;

  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    if ((size_t)(nl - p) < keys[i].len || memcmp(p, keys[i].key, keys[i].len))
      continue;
    v = p + keys[i].len + strspn(p + keys[i].len, " ");
    /* strtoull would accept a sign; a value must start with a digit. */
    if (v < nl && *v >= '0' && *v <= '9')
      *(uint64_t*)((char*)r + keys[i].off) += strtoull(v, NULL, 10) * 1024;
    return;
  }
}

uint64_t ms_mapping_footprint(const ms_mapping_t* r) {
  uint64_t fp = (r->anonymous > r->lazyfree ? r->anonymous - r->lazyfree : 0) +
                r->swap;
  /* A shmem mapping's resident pages are shmem, except anonymous copies
   * that a MAP_PRIVATE mapping of it made on write (counted above). */
  if (r->cls == MS_MAP_SHMEM && r->rss > r->anonymous)
    fp += r->rss - r->anonymous;
  return fp;
}

static int by_key_desc(uint64_t kx, uint64_t ky, const ms_mapping_t* x,
                       const ms_mapping_t* y) {
  if (kx != ky) return kx < ky ? 1 : -1;
  if (x->cls != y->cls) return x->cls < y->cls ? -1 : 1;
  return strcmp(x->name, y->name);
}

static int by_footprint_desc(const void* a, const void* b) {
  return by_key_desc(ms_mapping_footprint(a), ms_mapping_footprint(b), a, b);
}

static int by_rss_desc(const void* a, const void* b) {
  const ms_mapping_t *x = a, *y = b;
  return by_key_desc(x->rss, y->rss, x, y);
}

int ms_smaps_top(const char* smaps_text, ms_mapping_t* out, size_t max) {
  return ms_smaps_top_by(smaps_text, MS_RANK_FOOTPRINT, out, max);
}

int ms_smaps_read_top(pid_t pid, ms_mapping_t* out, size_t max) {
  return ms_smaps_read_top_by(pid, MS_RANK_FOOTPRINT, out, max);
}

int ms_smaps_top_by(const char* smaps_text, ms_rank_t rank, ms_mapping_t* out,
                    size_t max) {
  table_t t = {0};
  const char *p, *nl, *name;
  size_t len;
  long cur = -1;
  int err = -EINVAL;

  if (smaps_text == NULL || (out == NULL && max > 0)) return -EINVAL;
  for (p = smaps_text; *p != '\0'; p = *nl != '\0' ? nl + 1 : nl) {
    nl = strchrnul(p, '\n');
    if (header(p, nl, &name, &len)) {
      cur = row_for(&t, name, len);
      if (cur < 0) {
        err = -ENOMEM;
        goto end;
      }
      t.rows[cur].count++;
    } else if (cur >= 0) {
      add_value(&t.rows[cur], p, nl);
    }
  }
  if (t.nrows == 0) goto end;
  qsort(t.rows, t.nrows, sizeof(*t.rows),
        rank == MS_RANK_RSS ? by_rss_desc : by_footprint_desc);
  if (max > t.nrows) max = t.nrows;
  if (max > 0) memcpy(out, t.rows, max * sizeof(*out));
  err = (int)max;

end:
  free(t.rows);
  free(t.slots);
  return err;
}

int ms_smaps_read_top_by(pid_t pid, ms_rank_t rank, ms_mapping_t* out,
                         size_t max) {
  char path[64];
  char *buf = NULL, *nbuf;
  size_t len = 0, cap = 0;
  ssize_t n;
  int fd, err;

  snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? -ESRCH : -errno;
  /* seq_file hands out smaps a page or so per read: read to EOF. */
  for (;;) {
    if (cap - len < 4096) {
      cap = cap ? cap * 2 : 256 * 1024;
      nbuf = realloc(buf, cap);
      if (nbuf == NULL) {
        err = -ENOMEM;
        goto end;
      }
      buf = nbuf;
    }
    do {
      n = read(fd, buf + len, cap - len - 1);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      err = -errno;
      goto end;
    }
    if (n == 0) break;
    len += (size_t)n;
  }
  buf[len] = '\0';
  /* A zombie, or a process whose mm is already gone, has no mappings. */
  err = len == 0 ? -ESRCH : ms_smaps_top_by(buf, rank, out, max);

end:
  close(fd);
  free(buf);
  return err;
}

/* "10.1 MiB/min" (or "-2.0 KiB/min") into buf of at least 24 bytes. */
static const char* rate(char* buf, double bps) {
  char b[16];
  double per_min = bps * 60;
  snprintf(
      buf, 24, "%s%s/min", per_min < 0 ? "-" : "",
      ms_fmt_bytes(b, (unsigned long long)(per_min < 0 ? -per_min : per_min)));
  return buf;
}

/* The spike rule of evidence.h on the recent window's fit. */
static int is_spike(const ms_growth_fit_t* f) {
  uint64_t jump = f->max - f->min;
  return jump >= MS_CLASSIFY_MIN_GAP && f->high_s <= MS_CLASSIFY_SPIKE_MAX_S &&
         f->rise_s <= MS_CLASSIFY_SPIKE_MAX_RISE_S && f->floor_n >= 3 &&
         f->floor_s >= 1.0 && f->floor_s >= 2 * (f->rise_s + f->high_s) &&
         (f->floor_max - f->min) * 8 <= jump;
}

void ms_classify(const ms_classify_in_t* in, ms_classify_out_t* out) {
  char a[16], b[16], c[16], d[16], r[24];
  uint64_t fp = in->footprint, heap = in->heap_allocated;
  const ms_cause_best_t* g = &in->gauge;
  size_t len = sizeof(out->why);

  out->gauge = NULL;
  if (in->rss >= MS_CLASSIFY_RATIO * fp &&
      in->rss - fp >= MS_CLASSIFY_MIN_GAP) {
    int lazy = in->lazyfree > in->rss_file;
    out->cls = lazy ? "lazy-free" : "file-backed";
    snprintf(out->why, len,
             "RSS %s is far above footprint %s, mostly %s (file-backed %s, "
             "lazy-free %s): pages the kernel can drop, not a leak; matters "
             "only if a container limits RSS",
             ms_fmt_bytes(a, in->rss), ms_fmt_bytes(b, fp),
             lazy ? "pages freed with MADV_FREE" : "mapped-file pages",
             ms_fmt_bytes(c, in->rss_file), ms_fmt_bytes(d, in->lazyfree));
  } else if (in->has_growth && is_spike(&in->fit)) {
    out->cls = "spike";
    snprintf(out->why, len,
             "footprint jumped from %s to %s within the last %.1f s after "
             "%.1f s flat: a transient peak, not growth; --for longer than "
             "the peak would ride it out",
             ms_fmt_bytes(a, in->fit.min), ms_fmt_bytes(b, in->fit.max),
             in->fit.rise_s + in->fit.high_s, in->fit.floor_s);
  } else if (in->has_heap && fp >= MS_CLASSIFY_RATIO * heap &&
             fp - heap >= MS_CLASSIFY_MIN_GAP) {
    out->cls = "allocator-retention";
    snprintf(out->why, len,
             "footprint %s is far above heap-in-use %s (allocator resident "
             "%s): the allocator holds freed memory; purge or tune it, not "
             "a leak",
             ms_fmt_bytes(a, fp), ms_fmt_bytes(b, heap),
             ms_fmt_bytes(c, in->heap_resident));
  } else if ((!in->has_heap || heap * 100 >= fp * MS_CLASSIFY_HEAP_SHARE_PCT) &&
             in->has_growth && in->footprint_growth_bps > 0) {
    rate(r, in->footprint_growth_bps);
    if (g->found && g->fell_back == 1) {
      out->cls = "unbounded-cache";
      out->gauge = g->name;
      snprintf(out->why, len,
               "footprint %s grew %s and gauge %s grew with it (%.0f -> "
               "%.0f, r = %.2f) and fell back at the last restart: an "
               "unbounded cache; bound it or evict",
               ms_fmt_bytes(a, fp), r, g->name, g->first, g->last, g->r);
    } else if (!in->has_heap) {
      out->cls = "leak-or-cache";
      snprintf(out->why, len,
               "footprint %s grew %s (no heap statistics): leak or unbounded "
               "cache; link the SDK to tell them apart",
               ms_fmt_bytes(a, fp), r);
    } else if (g->found && g->fell_back == -1) {
      out->cls = "leak-or-cache";
      snprintf(out->why, len,
               "heap-in-use %s is %.0f%% of footprint %s, footprint grew %s "
               "and gauge %s with it (r = %.2f): leak or unbounded cache; "
               "the next restart tells (a cache's gauge falls back)",
               ms_fmt_bytes(a, heap),
               fp ? 100.0 * (double)heap / (double)fp : 100.0,
               ms_fmt_bytes(b, fp), r, g->name, g->r);
    } else {
      out->cls = "leak";
      snprintf(out->why, len,
               "heap-in-use %s is %.0f%% of footprint %s, footprint grew %s, "
               "and no gauge of the worker falls back with it%s%s%s: the "
               "program holds memory it does not give back: a leak",
               ms_fmt_bytes(a, heap),
               fp ? 100.0 * (double)heap / (double)fp : 100.0,
               ms_fmt_bytes(b, fp), r, g->found ? " (" : "",
               g->found ? g->name : "",
               g->found ? " grows with it but carries over restarts)" : "");
    }
  } else {
    out->cls = "unknown";
    snprintf(out->why, len,
             "footprint %s, RSS %s, heap-in-use %s, growth %s: no rule "
             "matched",
             ms_fmt_bytes(a, fp), ms_fmt_bytes(b, in->rss),
             in->has_heap ? ms_fmt_bytes(c, heap) : "not reported",
             in->has_growth ? rate(r, in->footprint_growth_bps) : "unknown");
  }
}

cJSON* ms_evidence_json(const ms_mapping_t* rows, int n,
                        const ms_classify_out_t* cls) {
  cJSON *root = cJSON_CreateObject(), *arr, *o;
  const ms_mapping_t* r;

  if (root == NULL) return NULL;
  if (cls != NULL &&
      (!cJSON_AddStringToObject(root, MS_K_CLASSIFICATION, cls->cls) ||
       !cJSON_AddStringToObject(root, MS_K_WHY, cls->why)))
    goto fail;
  arr = cJSON_AddArrayToObject(root, MS_K_MAPPINGS);
  if (arr == NULL) goto fail;
  for (r = rows; r < rows + n; r++) {
    o = cJSON_CreateObject();
    if (o == NULL || !cJSON_AddItemToArray(arr, o)) {
      cJSON_Delete(o);
      goto fail;
    }
    if (!cJSON_AddStringToObject(o, MS_K_NAME, r->name) ||
        !cJSON_AddStringToObject(o, MS_K_CLASS, ms_map_class_name(r->cls)) ||
        !cJSON_AddNumberToObject(o, MS_K_COUNT, r->count) ||
        !cJSON_AddNumberToObject(o, MS_K_SIZE, (double)r->size) ||
        !cJSON_AddNumberToObject(o, MS_K_RSS, (double)r->rss) ||
        !cJSON_AddNumberToObject(o, MS_K_PRIVATE_DIRTY,
                                 (double)r->private_dirty) ||
        !cJSON_AddNumberToObject(o, MS_K_SWAP, (double)r->swap) ||
        !cJSON_AddNumberToObject(o, MS_K_ANONYMOUS, (double)r->anonymous) ||
        !cJSON_AddNumberToObject(o, MS_K_LAZYFREE, (double)r->lazyfree) ||
        !cJSON_AddNumberToObject(o, MS_K_FOOTPRINT,
                                 (double)ms_mapping_footprint(r)))
      goto fail;
  }
  return root;

fail:
  cJSON_Delete(root);
  return NULL;
}

/* "processes" and "nprocs": a tree's members holding the most. */
static int add_processes(cJSON* ev, const ms_proc_t* procs, int n,
                         size_t total) {
  cJSON *arr = cJSON_AddArrayToObject(ev, MS_K_PROCESSES), *o;

  if (arr == NULL || !cJSON_AddNumberToObject(ev, MS_K_NPROCS, (double)total))
    return -1;
  for (int i = 0; i < n; i++) {
    o = cJSON_CreateObject();
    if (o == NULL || !cJSON_AddItemToArray(arr, o)) {
      cJSON_Delete(o);
      return -1;
    }
    if (!cJSON_AddNumberToObject(o, MS_K_PID, procs[i].pid) ||
        !cJSON_AddStringToObject(o, MS_K_COMMAND, procs[i].comm) ||
        !cJSON_AddNumberToObject(o, MS_K_FOOTPRINT,
                                 (double)procs[i].mem.footprint) ||
        !cJSON_AddNumberToObject(o, MS_K_RSS, (double)procs[i].mem.rss))
      return -1;
  }
  return 0;
}

int ms_evidence_read(pid_t pid, int tree, ms_rank_t rank, ms_mapping_t* rows,
                     size_t max, ms_evidence_where_t* where) {
  memset(where, 0, sizeof(*where));
  where->tree = tree;
  where->rank = rank;
  where->top = pid;
  /* The split comes first: it names the process whose mappings matter. */
  if (tree) {
    int np = ms_session_split(pid, 1, rank == MS_RANK_RSS, where->procs,
                              MS_EVIDENCE_PROCS, &where->total);
    where->np = np < 0 ? 0 : np; /* gone meanwhile: empty lists */
    if (where->np > 0) where->top = where->procs[0].pid;
  }
  return ms_smaps_read_top_by(where->top, rank, rows, max);
}

int ms_evidence_add_where(cJSON* ev, const ms_evidence_where_t* where) {
  if (!cJSON_AddStringToObject(ev, MS_K_RANKED_BY,
                               where->rank == MS_RANK_RSS ? "rss" : "footprint") ||
      !cJSON_AddNumberToObject(ev, MS_K_MAPPINGS_PID, where->top))
    return -1;
  if (where->tree)
    return add_processes(ev, where->procs, where->np, where->total);
  return cJSON_AddNullToObject(ev, MS_K_PROCESSES) == NULL ? -1 : 0;
}

cJSON* ms_evidence_capture(pid_t pid, int tree, ms_rank_t rank,
                           size_t max_rows, const ms_classify_out_t* cls) {
  ms_evidence_where_t where;
  ms_mapping_t* rows = calloc(max_rows ? max_rows : 1, sizeof(*rows));
  if (rows == NULL) return NULL;
  int n = ms_evidence_read(pid, tree, rank, rows, max_rows, &where);
  cJSON* ev = ms_evidence_json(rows, n < 0 ? 0 : n, cls);
  free(rows);
  if (ev == NULL) return NULL;
  if (ms_evidence_add_where(ev, &where) != 0) {
    cJSON_Delete(ev);
    return NULL;
  }
  return ev;
}

static int by_growth_desc(const void* a, const void* b) {
  const ms_grew_t *x = a, *y = b;
  uint64_t gx = x->late - x->early, gy = y->late - y->early;
  if (gx != gy) return gx < gy ? 1 : -1;
  if (x->cls != y->cls) return x->cls < y->cls ? -1 : 1;
  return strcmp(x->name, y->name);
}

int ms_evidence_grew(const ms_mapping_t* early, int nearly,
                     const ms_mapping_t* late, int nlate, ms_grew_t* out,
                     int max) {
  ms_grew_t all[64];
  int n = 0;
  /* Both lists are short (tens of rows): a nested scan is the simple way. */
  for (int i = 0; i < nlate && n < (int)(sizeof(all) / sizeof(all[0])); i++) {
    uint64_t was = 0, now = ms_mapping_footprint(&late[i]);
    for (int j = 0; j < nearly; j++)
      if (early[j].cls == late[i].cls &&
          strcmp(early[j].name, late[i].name) == 0) {
        was = ms_mapping_footprint(&early[j]);
        break;
      }
    if (now <= was) continue;
    memcpy(all[n].name, late[i].name, sizeof(all[n].name));
    all[n].cls = late[i].cls;
    all[n].early = was;
    all[n].late = now;
    n++;
  }
  qsort(all, (size_t)n, sizeof(all[0]), by_growth_desc);
  if (n > max) n = max;
  if (n > 0) memcpy(out, all, sizeof(all[0]) * (size_t)n);
  return n;
}

int ms_evidence_add_grew(cJSON* ev, const ms_grew_t* rows, int n) {
  if (n < 0) return cJSON_AddNullToObject(ev, MS_K_GREW) == NULL ? -1 : 0;
  cJSON *arr = cJSON_AddArrayToObject(ev, MS_K_GREW), *o;
  if (arr == NULL) return -1;
  for (int i = 0; i < n; i++) {
    o = cJSON_CreateObject();
    if (o == NULL || !cJSON_AddItemToArray(arr, o)) {
      cJSON_Delete(o);
      return -1;
    }
    if (!cJSON_AddStringToObject(o, MS_K_NAME, rows[i].name) ||
        !cJSON_AddStringToObject(o, MS_K_CLASS, ms_map_class_name(rows[i].cls)) ||
        !cJSON_AddNumberToObject(o, MS_K_EARLY, (double)rows[i].early) ||
        !cJSON_AddNumberToObject(o, MS_K_LATE, (double)rows[i].late) ||
        !cJSON_AddNumberToObject(o, MS_K_GREW,
                                 (double)(rows[i].late - rows[i].early)))
      return -1;
  }
  return 0;
}
