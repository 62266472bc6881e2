/* biglog.c: writes a large restart log and sample log for timing
 * `memsup report` (figure 7), shaped like a year of a fleet's restarts:
 * every restart ends one worker life and starts the next (a new pid), each
 * life has a few sample lines, and each restart's evidence names one
 * library mapping no other restart names, beside [heap] and anonymous
 * memory.  So N lives give N distinct pids and N + 2 distinct mapping
 * names: the two sizes that made the report quadratic.
 *
 *   biglog --lives N [--samples S] [--seed K] RESTARTS.jsonl SAMPLES.jsonl
 *
 * Figures follow from the seed (a fixed xorshift), so a run is repeatable.
 * Lines are what memsup writes (docs/restart-log.md), key for key.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MIB 1048576ULL

static uint64_t rng = 88172645463325252ULL;

static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void ts(char buf[32], double t) {
  time_t s = (time_t)t;
  struct tm tm;
  gmtime_r(&s, &tm);
  size_t n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, 32 - n, ".%03dZ", (int)((t - (double)s) * 1000));
}

static int usage(void) {
  fputs("usage: biglog --lives N [--samples S] [--seed K] RESTARTS SAMPLES\n",
        stderr);
  return 2;
}

int main(int argc, char** argv) {
  long lives = 0, samples = 3;
  const char* paths[2] = {NULL, NULL};
  int np = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--lives") == 0 && i + 1 < argc)
      lives = atol(argv[++i]);
    else if (strcmp(argv[i], "--samples") == 0 && i + 1 < argc)
      samples = atol(argv[++i]);
    else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
      rng += strtoull(argv[++i], NULL, 10) * 0x9e3779b97f4a7c15ULL;
    else if (argv[i][0] != '-' && np < 2)
      paths[np++] = argv[i];
    else
      return usage();
  }
  if (lives < 1 || samples < 0 || np != 2) return usage();
  FILE* rf = fopen(paths[0], "w");
  FILE* sf = fopen(paths[1], "w");
  if (rf == NULL || sf == NULL) {
    perror("biglog: open");
    return 1;
  }
  const uint64_t limit = 128 * MIB;
  double t = 1763683200.0; /* 2025-11-21T00:00:00Z */
  char when[32];
  uint64_t requests = 0;
  int pid = 1000;
  ts(when, t);
  fprintf(rf,
          "{\"ts\":\"%s\",\"event\":\"start\",\"pid\":%d,\"gen\":1,"
          "\"cmd\":[\"./worker\"],\"state\":null}\n",
          when, pid);
  for (long i = 0; i < lives; i++) {
    /* A life of 2-6 minutes growing from ~4 MiB to the limit. */
    double up = 120 + (double)(next() % 240000) / 1000;
    uint64_t base = 4 * MIB + next() % MIB, entries = 0;
    for (long k = 0; k < samples; k++) {
      double at = t + up * (double)(k + 1) / (double)(samples + 1);
      uint64_t fp = base + (uint64_t)((double)(limit - base) * (double)(k + 1) /
                                      (double)(samples + 1));
      entries = fp / 4096;
      requests += 1 + next() % 1000;
      ts(when, at);
      fprintf(sf,
              "{\"ts\":\"%s\",\"event\":\"sample\",\"pid\":%d,\"gen\":%ld,"
              "\"footprint\":%llu,\"rss\":%llu,\"swap\":0,\"lazyfree\":null,"
              "\"file\":1667072,\"heap\":%llu,\"allocator\":{\"allocated\":%llu,"
              "\"active\":%llu,\"resident\":%llu,\"retained\":0},\"gauges\":"
              "{\"cache.entries\":%llu,\"requests\":%llu},\"full\":false,"
              "\"limit\":%llu}\n",
              when, pid, i + 1, (unsigned long long)fp,
              (unsigned long long)(fp + 2 * MIB), (unsigned long long)(fp - MIB),
              (unsigned long long)(fp - MIB), (unsigned long long)fp,
              (unsigned long long)fp, (unsigned long long)entries,
              (unsigned long long)requests, (unsigned long long)limit);
    }
    t += up;
    uint64_t before = limit + next() % (4 * MIB), lib = 65536 + next() % MIB;
    ts(when, t + 0.05);
    fprintf(rf,
            "{\"ts\":\"%s\",\"event\":\"restart\",\"pid\":%d,\"gen\":%ld,"
            "\"reason\":\"limit\",\"metric\":\"footprint\",\"limit\":%llu,"
            "\"value\":%llu,\"over_for_s\":0,\"decided_unix_s\":%.6f,"
            "\"old_pid\":%d,\"new_pid\":%d,\"uptime_s\":%.3f,"
            "\"before\":{\"footprint\":%llu,\"rss\":%llu,\"swap\":0,"
            "\"lazyfree\":0,\"file\":1667072,\"heap\":%llu,\"gauges\":"
            "{\"cache.entries\":%llu,\"requests\":%llu}},"
            "\"after\":{\"footprint\":%llu,\"rss\":%llu,\"swap\":0,"
            "\"lazyfree\":0,\"file\":1667072,\"heap\":%llu,\"gauges\":"
            "{\"cache.entries\":0,\"requests\":%llu}},"
            "\"evidence\":{\"mappings\":["
            "{\"name\":\"[heap]\",\"class\":\"heap\",\"count\":1,\"size\":%llu,"
            "\"rss\":%llu,\"private_dirty\":%llu,\"swap\":0},"
            "{\"name\":\"\",\"class\":\"anon\",\"count\":4,\"size\":%llu,"
            "\"rss\":%llu,\"private_dirty\":%llu,\"swap\":0},"
            "{\"name\":\"/opt/fleet/lib/plugin-%07ld.so\",\"class\":\"file\","
            "\"count\":5,\"size\":%llu,\"rss\":%llu,\"private_dirty\":%llu,"
            "\"swap\":0}],\"growth_bps\":%.3f,\"classification\":\"growth\","
            "\"why\":\"footprint grew\"},\"helped\":true,\"downtime_ms\":%.3f,"
            "\"spawn_ms\":0.5,\"stop_ms\":3.1,\"state\":{\"outcome\":\"restored\","
            "\"handed\":\"save\",\"bytes\":%llu,\"save_ms\":2.1,\"verify_ms\":0.04,"
            "\"received_unix_s\":%.6f,\"held_unix_s\":%.6f,\"restore_ms\":0.2,"
            "\"restore\":\"restored\"}}\n",
            when, pid + 1, i + 2, (unsigned long long)limit,
            (unsigned long long)before, t, pid, pid + 1, up,
            (unsigned long long)before, (unsigned long long)(before + 2 * MIB),
            (unsigned long long)(before - MIB), (unsigned long long)entries,
            (unsigned long long)requests, (unsigned long long)base,
            (unsigned long long)(base + 2 * MIB), (unsigned long long)(base / 2),
            (unsigned long long)requests, (unsigned long long)(before / 2),
            (unsigned long long)(before / 2), (unsigned long long)(before / 2),
            (unsigned long long)(before / 3), (unsigned long long)(before / 3),
            (unsigned long long)(before / 3), i, (unsigned long long)lib,
            (unsigned long long)lib, (unsigned long long)lib,
            (double)(before - base) / up, 2 + (double)(next() % 3000) / 1000,
            (unsigned long long)(900 + next() % 200), t + 0.002, t + 0.004);
    pid++;
    t += 0.05;
  }
  if (fclose(rf) != 0 || fclose(sf) != 0) {
    perror("biglog: write");
    return 1;
  }
  return 0;
}
