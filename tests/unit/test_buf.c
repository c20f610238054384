/* tests/unit/test_buf.c - shard-local buffers and cross-shard blobs: references, copies, and
 * a blob released by the last of several threads that read it. */
#include <pthread.h>
#include <string.h>

#include "core/alloc.h"
#include "core/blob.h"
#include "core/buf.h"
#include "tests/harness/check.h"

#define READERS 4

static _Atomic unsigned checksum_ok;

static void *read_and_release(void *arg)
{
    struct rh_blob *b = arg;
    unsigned sum = 0;
    for (uint32_t i = 0; i < b->len; i++)
        sum += b->data[i];
    if (sum == 1000u * 7) atomic_fetch_add(&checksum_ok, 1);
    rh_blob_unref(b);
    return NULL;
}

int main(void)
{
    int64_t base = rh_alloc_live_bytes();

    struct rh_buf *buf = rh_buf_copy("hello", 5);
    CHECK_EQ(buf->refs, 1);
    CHECK_EQ(buf->len, 5);
    CHECK(memcmp(buf->data, "hello", 5) == 0);
    CHECK(rh_buf_ref(buf) == buf);
    CHECK_EQ(buf->refs, 2);
    rh_buf_unref(buf);
    CHECK_EQ(buf->refs, 1);
    rh_buf_unref(buf);
    CHECK_EQ(rh_alloc_live_bytes(), base);

    struct rh_buf *grown = rh_buf_new(0);
    for (int i = 0; i < 1000; i++)
        rh_buf_append(&grown, "abc", 3);
    uint8_t *tail = rh_buf_extend(&grown, 2);
    tail[0] = 'x';
    tail[1] = 'y';
    CHECK_EQ(grown->len, 3002);
    CHECK_GE(grown->cap, 3002);
    CHECK(memcmp(grown->data + 2997, "abcxy", 5) == 0);
    rh_buf_unref(grown);

    struct rh_buf *empty = rh_buf_new(64);
    CHECK_EQ(empty->len, 0);
    CHECK_EQ(empty->cap, 64);
    rh_buf_unref(empty);

    uint8_t payload[1000];
    memset(payload, 7, sizeof(payload));
    struct rh_blob *b = rh_blob_new(42, READERS, payload, sizeof(payload));
    CHECK_EQ(b->kind, 42);
    CHECK_EQ(b->len, sizeof(payload));
    pthread_t readers[READERS];
    for (int i = 0; i < READERS; i++)
        pthread_create(&readers[i], NULL, read_and_release, b);
    for (int i = 0; i < READERS; i++)
        pthread_join(readers[i], NULL);
    CHECK_EQ(atomic_load(&checksum_ok), READERS);

    struct rh_blob *none = rh_blob_new(1, 1, NULL, 0);
    CHECK_EQ(none->len, 0);
    rh_blob_unref(none);
    CHECK_EQ(rh_alloc_live_bytes(), base);
    return rh_check_finish();
}
