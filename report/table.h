/* table.h: a small open-addressing hash table for `memsup report`, mapping
 * a string or an integer key to a size_t (an index into the caller's
 * array).  It keeps the report linear in the size of the logs: every
 * lookup by pid or by name is O(1) on average.  Written here, not taken
 * from a library, because memsup's dependencies are fixed.
 *
 * The table does not own string keys: the caller keeps each key alive and
 * unchanged while it is in the table (report keeps them in its records).
 */
#ifndef MS_TABLE_H
#define MS_TABLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint64_t hash;   /* 0 marks an empty slot (real hashes are made non-0) */
  const char* str; /* string key, or NULL for an integer key */
  int64_t num;     /* integer key */
  size_t val;
} ms_table_slot_t;

typedef struct {
  ms_table_slot_t* slots; /* cap slots; NULL until the first insert */
  size_t cap, n;          /* cap is 0 or a power of two; load <= 1/2 */
} ms_table_t;

/* A zeroed ms_table_t is an empty table; ms_table_free() releases it and
 * leaves it empty again. */
void ms_table_free(ms_table_t* t);

/* Hashes used by the calls below (FNV-1a for strings, a splitmix64 finish
 * for integers); never 0. */
uint64_t ms_table_hash_str(const char* s);
uint64_t ms_table_hash_num(int64_t k);

/* The value stored under a key, or NULL.  The pointer is valid until the
 * next insert. */
size_t* ms_table_get_str(const ms_table_t* t, const char* key);
size_t* ms_table_get_num(const ms_table_t* t, int64_t key);

/* Stores val under key unless the key is there already.  Returns 1 when
 * inserted, 0 when present (its value unchanged), -ENOMEM. */
int ms_table_put_str(ms_table_t* t, const char* key, size_t val);
int ms_table_put_num(ms_table_t* t, int64_t key, size_t val);

/* The same with the hash given (it must be the same for equal keys): the
 * calls above use it; tests use it to force collisions.  str NULL means
 * the integer key num. */
size_t* ms_table_get(const ms_table_t* t, uint64_t hash, const char* str,
                     int64_t num);
int ms_table_put(ms_table_t* t, uint64_t hash, const char* str, int64_t num,
                 size_t val);

#endif
