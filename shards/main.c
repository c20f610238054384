/*
 * shards/main.c - the ringhub server: configuration, then the shard runtime serving the HTTP
 * front (shards/front.h) until SIGINT or SIGTERM.
 */
#include "shards/front.h"
#include "shards/shard.h"

int main(int argc, char **argv)
{
    return rh_runtime_main(argc, argv, rh_front_handler());
}
