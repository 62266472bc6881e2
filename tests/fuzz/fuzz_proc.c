/* fuzz_proc.c: libFuzzer target for the /proc parsers of sampling and
 * reaping.  The first byte selects the parser (mod 4), the rest is the
 * file text: 0 /proc/PID/status (ms_parse_status), 1 smaps_rollup
 * (ms_parse_smaps_rollup, after status as the sampler does), 2
 * /proc/PID/stat (ms_parse_stat_session), 3 /proc/self/task/TID/children
 * (ms_reaper_next_child).  The kernel writes these files, but a parser that
 * reads past its text or loops is memsup's bug whatever the text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reaper.h"
#include "sample.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ms_mem_t m;
  pid_t pid;
  const char* p;
  char* text;
  size_t n = 0;

  if (size == 0) return 0;
  /* The readers hand the parsers a NUL-terminated buffer. */
  text = malloc(size);
  if (text == NULL) abort();
  memcpy(text, data + 1, size - 1);
  text[size - 1] = '\0';
  memset(&m, 0xa5, sizeof(m));
  switch (data[0] % 4) {
  case 0:
    /* Each parser sets only its own fields. */
    (void)ms_parse_status(text, &m);
    if (m.pss != 0xa5a5a5a5a5a5a5a5ull || m.have != 0xa5a5a5a5u)
      __builtin_trap();
    break;
  case 1:
    ms_parse_status("VmRSS: 4 kB\nRssShmem: 8 kB\n", &m);
    if (ms_parse_smaps_rollup(text, &m) == 0 &&
        (m.full != 1 || m.footprint != ms_footprint(&m, 0)))
      __builtin_trap();
    if (m.rss != 4096 || m.rss_shmem != 8192) __builtin_trap();
    (void)ms_footprint(&m, 1);
    break;
  case 2:
    (void)ms_parse_stat_session(text, &pid);
    break;
  case 3:
    /* Every call consumes at least one byte, so at most size calls. */
    for (p = text; ms_reaper_next_child(&p, &pid); n++)
      if (n >= size || pid < 0 || p > text + size - 1) __builtin_trap();
    break;
  }
  free(text);
  return 0;
}
