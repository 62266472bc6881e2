/* bloat.c: a test worker that misbehaves on purpose, with plain glibc
 * malloc and no SDK.  It leaks at a fixed rate, maps a clean file, holds
 * lazy-free pages, spikes, crashes, ignores SIGTERM, leaves grandchildren
 * or orphans behind, and logs the signals it receives, so the integration
 * tests and benchmarks can check what memsup does about each case.  Modes
 * that hold file pages without footprint: writemap (writes a file with
 * write(2), then maps and reads it, as a database loads one) and
 * sharedwrite (writes through a MAP_SHARED file mapping); modes that leak
 * shared memory: memfd and devshm.  startpeak models a program that needs
 * a big buffer only while it starts (parsing a config or a dump, building
 * an index): it touches --size MiB at once, frees it the way its allocator
 * would (--free munmap: glibc's big blocks; --free madvise: MADV_FREE, as
 * jemalloc and Go do), then idles.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024.0 * 1024.0)

enum {
  M_LEAK, M_MAPFILE, M_LAZYFREE, M_SPIKE, M_WRITEMAP, M_SHAREDWRITE,
  M_MEMFD, M_DEVSHM, M_STARTPEAK, M_IDLE /* last: parse() scans up to it */
};
static const char* const mode_names[] = {
    "leak",        "mapfile", "lazyfree", "spike",     "writemap",
    "sharedwrite", "memfd",   "devshm",   "startpeak", "idle"};

typedef struct {
  int mode;
  double rate, max, size; /* MiB/s, MiB, MiB */
  double step_ms, spike_every, spike_ms, spike_after;
  double exit_after, signal_after, run_for; /* seconds, < 0 = never */
  int exit_code, signal;
  int ignore_term, orphan, tree_leak;
  int free_madvise; /* startpeak: MADV_FREE instead of munmap */
  const char *grandchild, *signals_to, *step_log;
} opts_t;

static int sig_fd = -1;
static volatile sig_atomic_t ignore_term;

static void usage(void) {
  fprintf(
      stderr,
      "usage: bloat [--mode leak|mapfile|lazyfree|spike|writemap|sharedwrite|\n"
      "  memfd|devshm|startpeak|idle] [--rate MiB/s] [--free munmap|madvise]\n"
      "  [--max MiB] [--step-ms MS] [--size MiB] [--spike-every S]\n"
      "  [--spike-ms MS] [--spike-after S] [--exit-after S [--exit-code N]]\n"
      "  [--signal-after S --signal N] [--ignore-term] [--grandchild FILE]\n"
      "  [--orphan] [--tree-leak] [--signals-to FILE] [--step-log FILE]\n"
      "  [--run-for S]\n");
  exit(2);
}

static double now_s(clockid_t clk) {
  struct timespec ts;
  clock_gettime(clk, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(double ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms * 1e6) % 1000000000L};
  nanosleep(&ts, NULL); /* EINTR is fine: the main loop re-checks time. */
}

static double num(const char* s) {
  char* end;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || v < 0) {
    fprintf(stderr, "bloat: bad number '%s'\n", s);
    usage();
  }
  return v;
}

/* Only async-signal-safe calls here: strlen, write, signal, raise. */
static void on_signal(int sig) {
  const char* name = sig == SIGHUP    ? "SIGHUP\n"
                     : sig == SIGUSR1 ? "SIGUSR1\n"
                     : sig == SIGUSR2 ? "SIGUSR2\n"
                     : sig == SIGQUIT ? "SIGQUIT\n"
                     : sig == SIGTERM ? "SIGTERM\n"
                                      : "SIGINT\n";
  int saved = errno;
  if (write(sig_fd, name, strlen(name)) < 0) {
    /* Nothing useful to do from a handler. */
  }
  if (sig == SIGINT || (sig == SIGTERM && !ignore_term)) {
    /* Die of the signal itself so the exit status shows it. */
    signal(sig, SIG_DFL);
    raise(sig);
  }
  errno = saved;
}

static void install_signals(const opts_t* o) {
  static const int sigs[] = {SIGHUP,  SIGUSR1, SIGUSR2,
                             SIGQUIT, SIGTERM, SIGINT};
  ignore_term = o->ignore_term;
  if (o->signals_to) {
    sig_fd =
        open(o->signals_to, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (sig_fd < 0) {
      perror("bloat: open --signals-to");
      exit(1);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
      sigaction(sigs[i], &sa, NULL);
  } else if (o->ignore_term) {
    signal(SIGTERM, SIG_IGN);
  }
}

/* A child in the same process group that sleeps until it is killed. */
static void spawn_grandchild(const char* file) {
  pid_t pid = fork();
  if (pid < 0) {
    perror("bloat: fork");
    exit(1);
  }
  if (pid == 0) {
    for (;;) pause();
  }
  /* tmp + rename so a reader never sees a half-written pid. */
  char tmp[4096];
  snprintf(tmp, sizeof(tmp), "%s.tmp", file);
  FILE* f = fopen(tmp, "w");
  if (!f || fprintf(f, "%d\n", (int)pid) < 0 || fclose(f) != 0 ||
      rename(tmp, file) != 0) {
    perror("bloat: write --grandchild file");
    exit(1);
  }
}

/* Double fork: the grandchild outlives its parent by 200 ms, then exits
 * and stays a zombie until whoever inherited it reaps it. */
static void spawn_orphan(void) {
  pid_t pid = fork();
  if (pid == 0) {
    if (fork() == 0) {
      sleep_ms(200);
      _exit(0);
    }
    _exit(0);
  }
  if (pid > 0) waitpid(pid, NULL, 0);
}

/* Dirty anonymous memory that glibc cannot optimise away: each block
 * links to the previous one. */
static void** leak_head;
static void leak(size_t bytes) {
  void** p = malloc(bytes);
  if (!p) return;
  memset(p, 0x5a, bytes);
  p[0] = leak_head;
  leak_head = p;
}

static char* map_anon(size_t bytes) {
  char* p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror("bloat: mmap");
    exit(1);
  }
  return p;
}

/* A file of real bytes, synced so its page-cache pages are clean, mapped
 * shared read-only and unlinked: RSS without footprint. */
static const char* map_file(size_t bytes) {
  /* Not /tmp: on tmpfs the pages would be shmem, which smaps counts as
   * dirty.  /var/tmp is on disk on Debian. */
  const char* dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
  char path[4096], buf[1 << 16];
  snprintf(path, sizeof(path), "%s/bloat-map-XXXXXX", dir);
  int fd = mkstemp(path);
  if (fd < 0) {
    perror("bloat: mkstemp");
    exit(1);
  }
  memset(buf, 0x5a, sizeof(buf));
  for (size_t done = 0; done < bytes;) {
    size_t n = bytes - done < sizeof(buf) ? bytes - done : sizeof(buf);
    ssize_t w = write(fd, buf, n);
    if (w <= 0) {
      perror("bloat: write map file");
      exit(1);
    }
    done += (size_t)w;
  }
  /* Dirty page-cache pages would count as Private_Dirty once mapped. */
  if (ftruncate(fd, (off_t)bytes) != 0 || fsync(fd) != 0) {
    perror("bloat: sync map file");
    exit(1);
  }
  const char* p = mmap(NULL, bytes, PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    perror("bloat: mmap file");
    exit(1);
  }
  unlink(path);
  close(fd);
  return p;
}

static const char* tmp_dir(void) {
  /* Not /tmp, which may be tmpfs (shmem): these files must be on disk. */
  return getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
}

static int tmp_file(char* path, size_t cap, const char* what) {
  snprintf(path, cap, "%s/bloat-%s-XXXXXX", tmp_dir(), what);
  int fd = mkstemp(path);
  if (fd < 0) {
    perror("bloat: mkstemp");
    exit(1);
  }
  return fd;
}

/* Loads a data file the way a database or a model server does: writes it
 * with write(2) in 1 MiB chunks (no fsync: the page cache holds it dirty
 * until writeback, ~30 s), then maps it read-only and reads it all.  Its
 * pages are file pages: dirty ones show in Private_Dirty, not in
 * Anonymous. */
static const char* write_then_map(size_t bytes) {
  static char chunk[1 << 20];
  char path[4096];
  int fd = tmp_file(path, sizeof(path), "data");
  for (size_t i = 0; i < sizeof(chunk); i++) chunk[i] = (char)(i * 31 + 7);
  for (size_t done = 0; done < bytes;) {
    size_t n = bytes - done < sizeof(chunk) ? bytes - done : sizeof(chunk);
    ssize_t w = write(fd, chunk, n);
    if (w <= 0) {
      perror("bloat: write data file");
      exit(1);
    }
    done += (size_t)w;
  }
  const char* p = mmap(NULL, bytes, PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    perror("bloat: mmap data file");
    exit(1);
  }
  /* Unlinked at once so a killed worker leaves nothing behind. */
  unlink(path);
  close(fd);
  return p;
}

/* A file grown to bytes and mapped MAP_SHARED read-write, as LMDB or an
 * mmap'd log writes its data: the stores dirty page-cache pages. */
static char* shared_file(size_t bytes) {
  char path[4096];
  int fd = tmp_file(path, sizeof(path), "shared");
  if (ftruncate(fd, (off_t)bytes) != 0) {
    perror("bloat: ftruncate");
    exit(1);
  }
  char* p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    perror("bloat: mmap shared file");
    exit(1);
  }
  unlink(path);
  close(fd);
  return p;
}

/* Shared memory of max bytes that the main loop fills at --rate: a memfd
 * (a state buffer, a ring shared with a helper) or a /dev/shm segment.
 * Its pages are shmem: only swap could take them away. */
static char* shared_memory(int mode, size_t bytes) {
  int fd;
  if (mode == M_MEMFD) {
    fd = memfd_create("bloat-ring", MFD_CLOEXEC);
  } else {
    char name[64];
    snprintf(name, sizeof(name), "/bloat-%d", (int)getpid());
    fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    /* Unlinked at once so a killed worker leaves nothing in /dev/shm. */
    if (fd >= 0) shm_unlink(name);
  }
  if (fd < 0 || ftruncate(fd, (off_t)bytes) != 0) {
    perror("bloat: shared memory");
    exit(1);
  }
  char* p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    perror("bloat: mmap shared memory");
    exit(1);
  }
  close(fd);
  return p;
}

static void parse(int argc, char** argv, opts_t* o) {
  static const struct option longopts[] = {{"mode", 1, 0, 'm'},
                                           {"rate", 1, 0, 'r'},
                                           {"max", 1, 0, 'M'},
                                           {"step-ms", 1, 0, 's'},
                                           {"size", 1, 0, 'z'},
                                           {"spike-every", 1, 0, 'e'},
                                           {"spike-ms", 1, 0, 'k'},
                                           {"spike-after", 1, 0, 'A'},
                                           {"exit-after", 1, 0, 'x'},
                                           {"exit-code", 1, 0, 'c'},
                                           {"signal-after", 1, 0, 'a'},
                                           {"signal", 1, 0, 'S'},
                                           {"ignore-term", 0, 0, 'i'},
                                           {"grandchild", 1, 0, 'g'},
                                           {"orphan", 0, 0, 'o'},
                                           {"tree-leak", 0, 0, 't'},
                                           {"signals-to", 1, 0, 'T'},
                                           {"step-log", 1, 0, 'L'},
                                           {"run-for", 1, 0, 'R'},
                                           {"free", 1, 0, 'F'},
                                           {0, 0, 0, 0}};
  *o = (opts_t){.mode = M_LEAK,
                .rate = 32,
                .max = 2048,
                .size = 96,
                .step_ms = 10,
                .spike_every = 3,
                .spike_ms = 1000,
                .exit_after = -1,
                .signal_after = -1,
                .run_for = -1};
  int c;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
      case 'm':
        o->mode = -1;
        for (int i = 0; i <= M_IDLE; i++)
          if (strcmp(optarg, mode_names[i]) == 0) o->mode = i;
        if (o->mode < 0) usage();
        break;
      case 'r':
        o->rate = num(optarg);
        break;
      case 'M':
        o->max = num(optarg);
        break;
      case 's':
        o->step_ms = num(optarg);
        break;
      case 'z':
        o->size = num(optarg);
        break;
      case 'e':
        o->spike_every = num(optarg);
        break;
      case 'k':
        o->spike_ms = num(optarg);
        break;
      case 'A':
        o->spike_after = num(optarg);
        break;
      case 'x':
        o->exit_after = num(optarg);
        break;
      case 'c':
        o->exit_code = atoi(optarg);
        break;
      case 'a':
        o->signal_after = num(optarg);
        break;
      case 'S':
        o->signal = atoi(optarg);
        break;
      case 'i':
        o->ignore_term = 1;
        break;
      case 'g':
        o->grandchild = optarg;
        break;
      case 'o':
        o->orphan = 1;
        break;
      case 't':
        o->tree_leak = 1;
        break;
      case 'T':
        o->signals_to = optarg;
        break;
      case 'L':
        o->step_log = optarg;
        break;
      case 'R':
        o->run_for = num(optarg);
        break;
      case 'F':
        if (strcmp(optarg, "madvise") == 0)
          o->free_madvise = 1;
        else if (strcmp(optarg, "munmap") != 0)
          usage();
        break;
      default:
        usage();
    }
  }
  if (optind != argc || o->step_ms <= 0 ||
      (o->signal_after >= 0 && (o->signal <= 0 || o->signal >= NSIG)))
    usage();
}

int main(int argc, char** argv) {
  opts_t o;
  parse(argc, argv, &o);
  install_signals(&o);
  if (o.grandchild) spawn_grandchild(o.grandchild);
  if (o.orphan) spawn_orphan();

  if (o.tree_leak) {
    printf("bloat[pid %d]: mode tree-leak rate %g MiB/s\n", (int)getpid(),
           o.rate);
    fflush(stdout); /* before fork, or the child would print it again */
    /* The parent idles; a child in the same session does the leaking. */
    pid_t pid = fork();
    if (pid < 0) {
      perror("bloat: fork");
      return 1;
    }
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the worker */
      o = (opts_t){.mode = M_LEAK,
                   .rate = o.rate,
                   .max = o.max,
                   .step_ms = o.step_ms,
                   .step_log = o.step_log,
                   .exit_after = -1,
                   .signal_after = -1,
                   .run_for = -1};
    } else {
      o.mode = M_IDLE;
    }
  } else if (o.mode == M_LEAK || o.mode == M_MEMFD || o.mode == M_DEVSHM) {
    printf("bloat[pid %d]: mode %s rate %g MiB/s\n", (int)getpid(),
           mode_names[o.mode], o.rate);
  } else if (o.mode == M_IDLE) {
    printf("bloat[pid %d]: mode idle\n", (int)getpid());
  } else {
    printf("bloat[pid %d]: mode %s size %g MiB\n", (int)getpid(),
           mode_names[o.mode], o.size);
  }
  fflush(stdout);

  int step_fd = -1;
  if (o.mode == M_LEAK && o.step_log) {
    step_fd = open(o.step_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (step_fd < 0) {
      perror("bloat: open --step-log");
      return 1;
    }
  }

  size_t size = (size_t)(o.size * MIB);
  const char* file = o.mode == M_MAPFILE    ? map_file(size)
                     : o.mode == M_WRITEMAP ? write_then_map(size)
                                            : NULL;
  /* Memory the main loop writes at --rate: a shared file mapping (up to
   * --size), or shared memory (up to --max). */
  char* fill = NULL;
  size_t fill_cap = 0, filled = 0;
  if (o.mode == M_SHAREDWRITE) {
    fill_cap = size;
    fill = shared_file(fill_cap);
  } else if (o.mode == M_MEMFD || o.mode == M_DEVSHM) {
    fill_cap = (size_t)(o.max * MIB);
    fill = shared_memory(o.mode, fill_cap);
  }
  if (o.mode == M_STARTPEAK) {
    /* All of it dirty at once, as a parser's buffer is, then given back:
     * the peak lasts as long as touching it takes (~0.1 s per 300 MiB). */
    char* p = map_anon(size);
    memset(p, 0x5a, size);
    if (o.free_madvise ? madvise(p, size, MADV_FREE) != 0
                       : munmap(p, size) != 0) {
      perror("bloat: free the start-up buffer");
      return 1;
    }
  }
  if (o.mode == M_LAZYFREE) {
    /* Dirty and free 4 MiB at a time, so the footprint never holds the
     * whole region even for a moment. */
    char* p = map_anon(size);
    for (size_t off = 0, n; off < size; off += n) {
      n = size - off < (4u << 20) ? size - off : (4u << 20);
      memset(p + off, 0x5a, n);
      if (madvise(p + off, n, MADV_FREE) != 0) {
        perror("bloat: madvise(MADV_FREE)");
        return 1;
      }
    }
  }

  /* The first spike comes at --spike-after (default at once): a server
   * that idles, then takes a burst. */
  double t0 = now_s(CLOCK_MONOTONIC), last_read = -1, spike_at = o.spike_after;
  double cap = o.max * MIB, total = 0;
  char* spike = NULL;
  volatile unsigned sum = 0;
  for (;;) {
    double t = now_s(CLOCK_MONOTONIC) - t0;
    if (o.run_for >= 0 && t >= o.run_for) return 0;
    if (o.exit_after >= 0 && t >= o.exit_after) return o.exit_code;
    if (o.signal_after >= 0 && t >= o.signal_after) {
      struct rlimit no_core = {0, 0};
      setrlimit(RLIMIT_CORE, &no_core); /* a test crash needs no core file */
      signal(o.signal, SIG_DFL);
      raise(o.signal);
      return 1; /* the signal was blocked or ignored by default */
    }
    if (o.mode == M_LEAK && total < cap) {
      /* Catch up to rate * elapsed, so sleep jitter does not slow it. */
      double want = o.rate * MIB * t;
      if (want > cap) want = cap;
      if (want - total >= 4096) {
        size_t n = (size_t)(want - total);
        leak(n);
        total += n;
        if (step_fd >= 0) {
          char line[64];
          struct timespec ts;
          clock_gettime(CLOCK_REALTIME, &ts);
          int len = snprintf(line, sizeof(line), "%lld%09ld %.0f\n",
                             (long long)ts.tv_sec, ts.tv_nsec, total);
          if (write(step_fd, line, (size_t)len) < 0) step_fd = -1;
        }
      }
    }
    if (fill && filled < fill_cap) {
      size_t want = (size_t)(o.rate * MIB * t);
      if (want > fill_cap) want = fill_cap;
      if (want > filled) {
        memset(fill + filled, 0x5a, want - filled);
        filled = want;
      }
    }
    if (file && t - last_read >= 1) {
      for (size_t i = 0; i < size; i += 4096) sum += (unsigned char)file[i];
      last_read = t;
    }
    if (o.mode == M_SPIKE) {
      if (!spike && t >= spike_at) {
        spike = map_anon(size);
        memset(spike, 0x5a, size);
      } else if (spike && t >= spike_at + o.spike_ms / 1000) {
        munmap(spike, size);
        spike = NULL;
        spike_at += o.spike_every;
      }
    }
    sleep_ms(o.step_ms);
  }
}
