/* fuzz_smaps.c: libFuzzer target for the restart evidence's smaps parser
 * (ms_smaps_top_by in evidence.c) on the input as /proc/PID/smaps text,
 * ranked both ways, then the JSON built from the rows.  The first byte
 * picks how many rows to keep (0..15).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "evidence.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ms_mapping_t rows[16];
  size_t max;
  char* text;
  int n, r;

  if (size == 0) return 0;
  max = data[0] % 16;
  text = malloc(size);
  if (text == NULL) abort();
  memcpy(text, data + 1, size - 1);
  text[size - 1] = '\0';
  for (r = MS_RANK_FOOTPRINT; r <= MS_RANK_RSS; r++) {
    n = ms_smaps_top_by(text, (ms_rank_t)r, rows, max);
    if (n > (int)max) __builtin_trap();
    for (int i = 0; i < n; i++) {
      /* Names are cut to MS_MAP_NAME_MAX and terminated; ranked largest
       * first. */
      if (memchr(rows[i].name, '\0', sizeof(rows[i].name)) == NULL)
        __builtin_trap();
      if (i > 0 && (r == MS_RANK_RSS ? rows[i].rss > rows[i - 1].rss
                                     : ms_mapping_footprint(&rows[i]) >
                                           ms_mapping_footprint(&rows[i - 1])))
        __builtin_trap();
    }
    if (n > 0) cJSON_Delete(ms_evidence_json(rows, n, NULL));
  }
  free(text);
  return 0;
}
