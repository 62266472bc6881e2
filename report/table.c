/* table.c: open addressing with linear probing, capacity a power of two,
 * grown to twice its size before it is half full, so a probe run stays
 * short.  Keys are never removed (report only adds), so there are no
 * tombstones.
 */
#include "table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MIN_CAP 16

void ms_table_free(ms_table_t* t) {
  free(t->slots);
  memset(t, 0, sizeof(*t));
}

uint64_t ms_table_hash_str(const char* s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL;
  }
  return h ? h : 1;
}

uint64_t ms_table_hash_num(int64_t k) {
  /* splitmix64's finish: pids are small and close together, and the low
   * bits pick the slot, so every input bit must reach them. */
  uint64_t h = (uint64_t)k + 0x9e3779b97f4a7c15ULL;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h ? h : 1;
}

static int same(const ms_table_slot_t* s, uint64_t hash, const char* str,
                int64_t num) {
  if (s->hash != hash) return 0;
  if (str == NULL || s->str == NULL) return str == s->str && s->num == num;
  return strcmp(s->str, str) == 0;
}

/* The slot holding the key, or the empty slot where it would go. */
static ms_table_slot_t* find(const ms_table_t* t, uint64_t hash,
                             const char* str, int64_t num) {
  size_t mask = t->cap - 1;
  for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
    ms_table_slot_t* s = &t->slots[i];
    if (s->hash == 0 || same(s, hash, str, num)) return s;
  }
}

size_t* ms_table_get(const ms_table_t* t, uint64_t hash, const char* str,
                     int64_t num) {
  if (t->cap == 0) return NULL;
  ms_table_slot_t* s = find(t, hash ? hash : 1, str, num);
  return s->hash ? &s->val : NULL;
}

static int grow(ms_table_t* t) {
  size_t cap = t->cap ? 2 * t->cap : MIN_CAP;
  ms_table_t bigger = {calloc(cap, sizeof(ms_table_slot_t)), cap, t->n};
  if (bigger.slots == NULL) return -ENOMEM;
  for (size_t i = 0; i < t->cap; i++)
    if (t->slots[i].hash) {
      const ms_table_slot_t* s = &t->slots[i];
      *find(&bigger, s->hash, s->str, s->num) = *s;
    }
  free(t->slots);
  *t = bigger;
  return 0;
}

int ms_table_put(ms_table_t* t, uint64_t hash, const char* str, int64_t num,
                 size_t val) {
  if (hash == 0) hash = 1;
  if (2 * (t->n + 1) > t->cap && grow(t) < 0) return -ENOMEM;
  ms_table_slot_t* s = find(t, hash, str, num);
  if (s->hash) return 0;
  *s = (ms_table_slot_t){hash, str, num, val};
  t->n++;
  return 1;
}

size_t* ms_table_get_str(const ms_table_t* t, const char* key) {
  return ms_table_get(t, ms_table_hash_str(key), key, 0);
}

size_t* ms_table_get_num(const ms_table_t* t, int64_t key) {
  return ms_table_get(t, ms_table_hash_num(key), NULL, key);
}

int ms_table_put_str(ms_table_t* t, const char* key, size_t val) {
  return ms_table_put(t, ms_table_hash_str(key), key, 0, val);
}

int ms_table_put_num(ms_table_t* t, int64_t key, size_t val) {
  return ms_table_put(t, ms_table_hash_num(key), NULL, key, val);
}
