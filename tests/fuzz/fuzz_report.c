/* fuzz_report.c: libFuzzer target for `memsup report`'s reader, summaries
 * and writers.  Each input is read as a log file (through the same stream
 * reader as a real file), summarized, printed as text and JSON and drawn
 * as an SVG; its two halves are also loaded as logs A and B and compared.
 * Outputs go to memory and are checked for what a consumer relies on: an
 * SVG that ends whole and holds no control bytes, counts that add up.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/internal.h"

static FILE* devnull;

/* Loads data[0..size) as one log file into d.  0 or -ENOMEM. */
static int load(data_t* d, const uint8_t* data, size_t size) {
  if (size == 0) return 0; /* fmemopen refuses an empty buffer */
  FILE* f = fmemopen((void*)data, size, "r");
  if (f == NULL) return -1;
  int err = ms_report_load_stream(d, f, "fuzz");
  fclose(f);
  return err;
}

static void check_svg(const data_t* d) {
  char* buf = NULL;
  size_t len = 0;
  char* files[] = {"fuzz&<\"x\">.jsonl"};
  FILE* f = open_memstream(&buf, &len);
  if (f == NULL) return;
  int err = ms_report_svg(f, d, files, 1, 0);
  fclose(f);
  if (err == 0) {
    static const char end[] = "</svg>\n";
    if (len < sizeof(end) - 1 || strcmp(buf + len - (sizeof(end) - 1), end))
      __builtin_trap();
    for (size_t i = 0; i < len; i++)
      if ((unsigned char)buf[i] < 0x20 && buf[i] != '\n') __builtin_trap();
  }
  free(buf);
}

static void check_counts(const cJSON* s, const data_t* d) {
  double lines = ms_report_jnum(s, "lines"),
         skipped = ms_report_jnum(s, "skipped");
  if (!(skipped >= 0 && skipped <= lines) || lines != d->lines ||
      ms_report_jnum(s, "clamped") < 0)
    __builtin_trap();
  /* Medians of clamped figures stay in range. */
  static const char* const keys[] = {"before.footprint", "before.rss",
                                     "after.footprint", "after.rss",
                                     "state.median_bytes"};
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    double v = ms_report_jnum(s, keys[i]);
    if (v < 0 || v > MS_REPORT_BYTES_MAX) __builtin_trap();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  data_t d, ab[2];
  char* names[] = {"a.jsonl", "b.jsonl"};
  cJSON *s = NULL, *sa = NULL, *sb = NULL, *c = NULL;
  if (devnull == NULL && (devnull = fopen("/dev/null", "w")) == NULL) abort();
  memset(&d, 0, sizeof(d));
  memset(ab, 0, sizeof(ab));

  if (load(&d, data, size) == 0 &&
      (s = ms_report_summarize(&d, names, 1, 5)) != NULL) {
    check_counts(s, &d);
    ms_report_print_text(devnull, s);
    char* json = cJSON_PrintUnformatted(s);
    cJSON* back = json ? cJSON_Parse(json) : NULL;
    if (json && back == NULL) __builtin_trap(); /* --json must be JSON */
    cJSON_Delete(back);
    cJSON_free(json);
    check_svg(&d);
  }

  size_t half = size / 2;
  if (load(&ab[0], data, half) == 0 &&
      load(&ab[1], data + half, size - half) == 0 &&
      (sa = ms_report_summarize(&ab[0], &names[0], 1, 0)) != NULL &&
      (sb = ms_report_summarize(&ab[1], &names[1], 1, 0)) != NULL &&
      (c = ms_report_compare_summaries(sa, sb, names)) != NULL)
    ms_report_print_compare(devnull, c);

  cJSON_Delete(s);
  cJSON_Delete(sa);
  cJSON_Delete(sb);
  cJSON_Delete(c);
  ms_report_data_free(&d);
  ms_report_data_free(&ab[0]);
  ms_report_data_free(&ab[1]);
  return 0;
}
