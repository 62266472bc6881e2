/* prof_cost.c: what jemalloc heap profiling costs an allocation-heavy
 * loop (docs/profiling.md).  Build and run:
 *   gcc -O2 -g bench/prof_cost.c -o build/prof_cost -ljemalloc
 *   for c in "" prof:true prof:true,lg_prof_sample:17 \
 *            prof:true,lg_prof_sample:15; do
 *     MALLOC_CONF=$c build/prof_cost; done
 * Each run: 20 million malloc+free pairs of 16 B to 4 KiB, with 4096
 * blocks live at a time; prints ns per pair and the peak RSS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define LIVE 4096
#define OPS 20000000UL

int main(void) {
  static void* live[LIVE];
  struct timespec a, b;
  unsigned x = 12345;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (unsigned long i = 0; i < OPS; i++) {
    x = x * 1103515245u + 12345u;
    size_t k = (x >> 8) % LIVE, size = 16 + (x >> 4) % 4080;
    free(live[k]);
    live[k] = malloc(size);
    ((char*)live[k])[0] = (char)i;
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  const char* conf = getenv("MALLOC_CONF");
  printf("%-32s %6.1f ns per malloc+free, max rss %ld KiB\n",
         conf && *conf ? conf : "(profiling off)",
         ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / OPS,
         ru.ru_maxrss);
  return 0;
}
