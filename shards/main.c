/*
 * shards/main.c - the ringhub server: configuration, then the shard runtime serving the HTTP
 * front (shards/front.h) until SIGINT or SIGTERM.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "core/cfg.h"
#include "core/hash.h"
#include "core/log.h"
#include "shards/front.h"
#include "shards/shard.h"

int main(int argc, char **argv)
{
    struct rh_cfg cfg;
    char err_text[256];
    rh_cfg_defaults(&cfg);
    int rc = rh_cfg_parse_args(&cfg, argc, argv, err_text, sizeof(err_text));
    if (rc != 0) {
        if (rc < 0) fprintf(stderr, "ringhub: %s (see --help)\n", err_text);
        rh_cfg_free(&cfg);
        return rc < 0 ? 2 : 0;
    }
    rh_log_set_level(cfg.log_level);
    rh_hash_seed_random();

    int err = rh_runtime_serve(&cfg, rh_front_handler());
    rh_cfg_free(&cfg);
    int64_t leaked = rh_alloc_live_bytes();
    if (!err && leaked)
        rh_log_warn("main", "%lld bytes still allocated at exit", (long long)leaked);
    return err ? 1 : 0;
}
