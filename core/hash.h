#pragma once
/*
 * core/hash.h - keyed hashing for tables whose keys come from clients (group names, user
 * names, connection ids). SipHash with a 128-bit key chosen at random once per process, so a
 * client cannot pick names that all land in one bucket (hash flooding). rh_hash() uses
 * SipHash-1-3, the fast variant also used by Rust's and Python's tables; rh_siphash24() is the
 * full-strength PRF for anything that needs more than table placement.
 *
 * Hash values differ between processes and between runs: never store them, send them to
 * another node, or use them to name anything outside this process.
 */
#include <stddef.h>
#include <stdint.h>

#define RH_HASH_KEY_SIZE 16

/* Start-up only, before any shard thread starts (rh_hash() reads the key without ordering).
 * Fills the process key from getrandom(2). Aborts with a message when the kernel cannot give
 * random bytes: running with a guessable key would silently reopen hash flooding. */
void rh_hash_seed_random(void);

/* Sets the process key to @key (RH_HASH_KEY_SIZE bytes): for tests that need repeatable
 * hashes. Same threading rule as rh_hash_seed_random(). Until one of the two is called the key
 * is all zeros. */
void rh_hash_seed(const uint8_t key[RH_HASH_KEY_SIZE]);

/* SipHash-1-3 of @len bytes at @data (any alignment; may be NULL when @len is 0) under the
 * process key. Any thread, once seeding is done. */
uint64_t rh_hash(const void *data, size_t len);

/* SipHash-2-4 and SipHash-1-3 under an explicit @key (bytes 0-7 are k0 and 8-15 are k1, both
 * little-endian, as in the reference implementation). Pure functions; any thread. */
uint64_t rh_siphash24(const uint8_t key[RH_HASH_KEY_SIZE], const void *data, size_t len);
uint64_t rh_siphash13(const uint8_t key[RH_HASH_KEY_SIZE], const void *data, size_t len);
