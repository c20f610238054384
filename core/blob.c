/* core/blob.c - allocation of cross-shard blobs. */
#include "core/blob.h"

#include <string.h>

#include "core/alloc.h"

struct rh_blob *rh_blob_new(uint16_t kind, uint32_t refs, const void *data, uint32_t len)
{
    RH_ASSERT(refs >= 1);
    struct rh_blob *blob = rh_alloc(sizeof(*blob) + len);
    /* Relaxed is enough: the blob is published to other shards by the release store of the
     * ring tail in rh_spsc_push, which orders this and the payload copy before it. */
    atomic_init(&blob->refs, refs);
    blob->kind = kind;
    blob->origin_shard = 0;
    blob->arg = 0;
    blob->len = len;
    if (len && data) memcpy(blob->data, data, len);
    return blob;
}

void rh_blob_free(struct rh_blob *blob)
{
    rh_free(blob);
}
