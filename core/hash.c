/*
 * core/hash.c - SipHash (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012),
 * written from the paper: four 64-bit lanes, c rounds per 8-byte word, d rounds to finish.
 * One inlined body serves both round counts so the compiler unrolls each. Words are read with
 * memcpy, which is one unaligned load on x86-64 and arm64, then converted from little-endian.
 */
#include "core/hash.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/log.h"

/* Written only before shard threads start (see hash.h), then read-only. */
static uint8_t hash_key[RH_HASH_KEY_SIZE];

static inline uint64_t siphash(const uint8_t key[RH_HASH_KEY_SIZE], const void *data, size_t len,
                               int c_rounds, int d_rounds) __attribute__((always_inline));
static inline uint64_t load_le64(const uint8_t *p);

void rh_hash_seed_random(void)
{
    uint8_t key[RH_HASH_KEY_SIZE];
    size_t got = 0;

    while (got < sizeof(key)) {
        ssize_t n = getrandom(key + got, sizeof(key) - got, 0);
        if (n == -1 && errno == EINTR) continue;
        if (n == -1) {
            rh_log_error("hash",
                         "getrandom: %s: cannot seed the hash key (needs Linux 3.17+; a seccomp "
                         "filter or container runtime may be blocking getrandom)",
                         strerror(errno));
            abort();
        }
        got += (size_t)n;
    }
    rh_hash_seed(key);
}

void rh_hash_seed(const uint8_t key[RH_HASH_KEY_SIZE])
{
    memcpy(hash_key, key, sizeof(hash_key));
}

uint64_t rh_hash(const void *data, size_t len)
{
    return siphash(hash_key, data, len, 1, 3);
}

uint64_t rh_siphash24(const uint8_t key[RH_HASH_KEY_SIZE], const void *data, size_t len)
{
    return siphash(key, data, len, 2, 4);
}

uint64_t rh_siphash13(const uint8_t key[RH_HASH_KEY_SIZE], const void *data, size_t len)
{
    return siphash(key, data, len, 1, 3);
}

#define ROTL64(x, b) (((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND(v0, v1, v2, v3)                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL64(v1, 13);                                                                       \
        v1 ^= v0;                                                                                  \
        v0 = ROTL64(v0, 32);                                                                       \
        v2 += v3;                                                                                  \
        v3 = ROTL64(v3, 16);                                                                       \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL64(v3, 21);                                                                       \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL64(v1, 17);                                                                       \
        v1 ^= v2;                                                                                  \
        v2 = ROTL64(v2, 32);                                                                       \
    } while (0)

static inline uint64_t siphash(const uint8_t key[RH_HASH_KEY_SIZE], const void *data, size_t len,
                               int c_rounds, int d_rounds)
{
    /* NULL + 0 is undefined behaviour in C, and UBSan says so. */
    const uint8_t *p = len ? data : (const uint8_t *)"";
    const uint8_t *words_end = p + (len & ~(size_t)7);
    uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
    /* "somepseudorandomlygeneratedbytes", the initial state from the paper. */
    uint64_t v0 = k0 ^ 0x736f6d6570736575ULL;
    uint64_t v1 = k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ULL;
    uint64_t v3 = k1 ^ 0x7465646279746573ULL;

    for (; p != words_end; p += 8) {
        uint64_t m = load_le64(p);
        v3 ^= m;
        for (int i = 0; i < c_rounds; i++)
            SIPROUND(v0, v1, v2, v3);
        v0 ^= m;
    }

    /* The last word holds the 0..7 trailing bytes and the length mod 256 in its top byte. */
    uint64_t last = (uint64_t)len << 56;
    for (size_t i = 0; i < (len & 7); i++)
        last |= (uint64_t)p[i] << (8 * i);
    v3 ^= last;
    for (int i = 0; i < c_rounds; i++)
        SIPROUND(v0, v1, v2, v3);
    v0 ^= last;

    v2 ^= 0xff;
    for (int i = 0; i < d_rounds; i++)
        SIPROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

static inline uint64_t load_le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return le64toh(v);
}
