/* compare.c: `memsup report --compare A B`, before and after a fix: the
 * growth and restart rate of each side, and which gauges and mappings that
 * grew in A stopped growing in B.  Items are matched by name through a
 * hash table, so the comparison is linear in the number of names.
 */
#include <errno.h>
#include <math.h> /* NAN and isfinite() only: memsup does not link libm */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define num ms_report_num
#define str ms_report_str
#define at ms_report_at
#define jnum ms_report_jnum
#define fmt ms_report_fmt
#define size ms_report_size
#define add_num ms_report_add_num

/* Adds to out the items of a's list key (value mean_key) that grew in A,
 * each to "stopped_growing" or "still_growing" by B's value.  -ENOMEM. */
static int compare_list(cJSON* out, const cJSON* a, const cJSON* b,
                        const char* key, const char* kind,
                        const char* mean_key) {
  const cJSON *e, *list_b = cJSON_GetObjectItemCaseSensitive(b, key);
  const cJSON** items_b = NULL;
  ms_table_t byname = {0};
  size_t n = 0;
  int err = -ENOMEM;
  /* B's items by name (the table points at B's own strings); the first of
   * a name wins, though summaries have one item per name. */
  if ((items_b = calloc((size_t)cJSON_GetArraySize(list_b) + 1,
                        sizeof(*items_b))) == NULL)
    goto end;
  cJSON_ArrayForEach(e, list_b) {
    if (str(e, "name") && ms_table_put_str(&byname, str(e, "name"), n) < 0)
      goto end;
    items_b[n++] = e;
  }
  cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(a, key)) {
    double va = num(e, mean_key), vb = NAN;
    const char* name = str(e, "name");
    if (!(va > 0) || name == NULL) continue;
    const size_t* at_b = ms_table_get_str(&byname, name);
    if (at_b) vb = num(items_b[*at_b], mean_key);
    /* "About zero" is relative: under 5% of what A grew. */
    int stopped = !isfinite(vb) || vb <= 0.05 * va;
    cJSON* o = cJSON_CreateObject();
    if (o == NULL) goto end;
    cJSON_AddStringToObject(o, "kind", kind);
    cJSON_AddStringToObject(o, "name", name);
    add_num(o, "a", va);
    add_num(o, "b", vb);
    cJSON_AddItemToArray(
        cJSON_GetObjectItemCaseSensitive(
            out, stopped ? "stopped_growing" : "still_growing"),
        o);
  }
  err = 0;
end:
  ms_table_free(&byname);
  free(items_b);
  return err;
}

static cJSON* side(const cJSON* s, const char* list) {
  cJSON* o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "files", list);
  add_num(o, "growth_mib_per_min", jnum(s, "growth_mib_per_min.median"));
  add_num(o, "restarts_per_hour", jnum(s, "restarts.per_hour"));
  add_num(o, "restarts", jnum(s, "restarts.total"));
  add_num(o, "hours", jnum(s, "period.hours"));
  return o;
}

cJSON* ms_report_compare_summaries(cJSON* a, cJSON* b, char** ab) {
  cJSON* s[2] = {a, b};
  cJSON* c = cJSON_CreateObject();
  if (c == NULL) return NULL;
  cJSON_AddItemToObject(c, "a", side(a, ab[0]));
  cJSON_AddItemToObject(c, "b", side(b, ab[1]));
  cJSON_AddItemToObject(c, "stopped_growing", cJSON_CreateArray());
  cJSON_AddItemToObject(c, "still_growing", cJSON_CreateArray());
  if (compare_list(c, a, b, "gauges", "gauge", "per_life") < 0) goto fail;
  /* Mappings are sizes at restart; per restart keeps A and B comparable
   * when one side restarted more often. */
  for (int i = 0; i < 2; i++) {
    cJSON* e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(s[i], "mappings"))
        add_num(e, "per_restart", num(e, "private_dirty") / num(e, "restarts"));
  }
  if (compare_list(c, a, b, "mappings", "mapping", "per_restart") < 0)
    goto fail;
  /* Regions that grew over a life, when the evidence has them: growth,
   * not size, so fixed pages cannot show up at all. */
  for (int i = 0; i < 2; i++) {
    cJSON* e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(s[i], "grew"))
        add_num(e, "per_restart", num(e, "growth") / num(e, "restarts"));
  }
  if (compare_list(c, a, b, "grew", "region", "per_restart") < 0) goto fail;
  return c;
fail:
  cJSON_Delete(c);
  return NULL;
}

cJSON* ms_report_compare(char** ab) {
  data_t d[2];
  cJSON* s[2] = {NULL, NULL};
  cJSON* c = NULL;
  memset(d, 0, sizeof(d));
  for (int i = 0; i < 2; i++) {
    int err = ms_report_load_list(&d[i], ab[i]);
    if (err == -ENOMEM) fputs("memsup report: out of memory\n", stderr);
    if (err < 0) goto end;
    if ((s[i] = ms_report_summarize(&d[i], &ab[i], 1, 0)) == NULL) {
      fputs("memsup report: out of memory\n", stderr);
      goto end;
    }
    /* The summary holds copies of all it needs: A's records go before B's
     * are read, which halves the peak memory of a big comparison. */
    ms_report_data_free(&d[i]);
  }
  if ((c = ms_report_compare_summaries(s[0], s[1], ab)) == NULL)
    fputs("memsup report: out of memory\n", stderr);
end:
  for (int i = 0; i < 2; i++) {
    cJSON_Delete(s[i]);
    ms_report_data_free(&d[i]);
  }
  return c;
}

void ms_report_print_compare(FILE* f, const cJSON* c) {
  static const char* const lists[] = {"stopped_growing", "still_growing"};
  char a[32], b[32];
  const cJSON* e;
  fprintf(f, "%-26s %-12s %s\n", "", "A", "B");
  fprintf(f, "%-26s %-12s %s\n", "growth (MiB/min, median)",
          fmt(a, "%.2f", jnum(c, "a.growth_mib_per_min")),
          fmt(b, "%.2f", jnum(c, "b.growth_mib_per_min")));
  fprintf(f, "%-26s %-12s %s\n", "restarts per hour",
          fmt(a, "%.2f", jnum(c, "a.restarts_per_hour")),
          fmt(b, "%.2f", jnum(c, "b.restarts_per_hour")));
  for (int i = 0; i < 2; i++) {
    fputs(
        i ? "still growing in B:\n" : "stopped growing (grew in A, ~0 in B):\n",
        f);
    cJSON_ArrayForEach(e, at(c, lists[i])) {
      int gauge = strcmp(str(e, "kind"), "gauge") == 0;
      const char* unit = gauge ? "per life"
                         : strcmp(str(e, "kind"), "region") == 0
                             ? "grown per restart"
                             : "private dirty per restart";
      if (gauge)
        fprintf(
            f, "  gauge %s: %+g %s in A, %s in B\n", str(e, "name"),
            num(e, "a"), unit,
            isfinite(num(e, "b")) ? fmt(b, "%+g", num(e, "b")) : "not seen");
      else
        fprintf(f, "  %s %s: %s %s in A, %s in B\n", str(e, "kind"),
                *str(e, "name") ? str(e, "name") : "(anonymous)",
                size(a, num(e, "a")), unit,
                isfinite(num(e, "b")) ? size(b, num(e, "b")) : "not seen");
    }
    if (cJSON_GetArraySize(at(c, lists[i])) == 0) fputs("  none\n", f);
  }
}
