/* tests/unit/test_conn_id.c - connection ids and SQE user_data keep every field apart, at the
 * edges of each field's range. */
#include "shards/shard_internal.h"
#include "tests/harness/check.h"

static uint64_t make_id(uint32_t node, uint32_t shard, uint32_t slot, uint32_t gen)
{
    return ((uint64_t)node << (RH_CONN_ID_GEN_BITS + RH_CONN_ID_SLOT_BITS +
                               RH_CONN_ID_SHARD_BITS)) |
           ((uint64_t)shard << (RH_CONN_ID_GEN_BITS + RH_CONN_ID_SLOT_BITS)) |
           ((uint64_t)slot << RH_CONN_ID_GEN_BITS) | gen;
}

int main(void)
{
    _Static_assert(RH_CONN_ID_GEN_BITS + RH_CONN_ID_SLOT_BITS + RH_CONN_ID_SHARD_BITS +
                           RH_CONN_ID_NODE_BITS ==
                       64,
                   "connection id fills 64 bits");
    _Static_assert(RH_SHARDS_MAX <= (1 << RH_CONN_ID_SHARD_BITS), "shard index fits the id");

    uint32_t nodes[] = {0, 1, 4095}, shards[] = {0, 1, 63, 255}, slots[] = {0, 1, 1048575},
             gens[] = {0, 1, 16777215};
    for (unsigned a = 0; a < 3; a++)
        for (unsigned b = 0; b < 4; b++)
            for (unsigned c = 0; c < 3; c++)
                for (unsigned d = 0; d < 3; d++) {
                    uint64_t id = make_id(nodes[a], shards[b], slots[c], gens[d]);
                    CHECK_EQ(rh_conn_id_node(id), nodes[a]);
                    CHECK_EQ(rh_conn_id_shard(id), shards[b]);
                    CHECK_EQ(rh_conn_id_slot(id), slots[c]);
                    CHECK_EQ(rh_conn_id_gen(id), gens[d]);
                }

    uint64_t ud = rh_ud_make(RH_OP_SEND, 0xabcdef, 0xfffffffe);
    CHECK_EQ(rh_ud_op(ud), RH_OP_SEND);
    CHECK_EQ(rh_ud_gen(ud), 0xabcdef);
    CHECK_EQ(rh_ud_slot(ud), 0xfffffffe);
    /* Generations wrap within 24 bits; the op never bleeds into them. */
    ud = rh_ud_make(RH_OP_RECV, 0x1000000 | 5, 7);
    CHECK_EQ(rh_ud_op(ud), RH_OP_RECV);
    CHECK_EQ(rh_ud_gen(ud), 5);
    CHECK(rh_ud_make(RH_OP_ACCEPT, 0, 0) != LIBURING_UDATA_TIMEOUT);
    return rh_check_finish();
}
