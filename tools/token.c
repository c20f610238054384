/*
 * tools/token.c - ringhub-token: mints the HS256 tokens ringhub checks, for clients (user,
 * roles) and for backends calling the HTTP API (audience = the request URL), signed with the
 * server's access key. The key comes from a file or the RINGHUB_ACCESS_KEY environment
 * variable, never from the command line, where other users could read it in ps.
 *
 *   ringhub-token --key-file FILE [--user ID] [--role NAME]... [--aud URL]... [--ttl SECONDS]
 *                 [--nbf-in SECONDS]
 *
 * Prints the token and a newline. Exit status 0, or 2 with a message for bad arguments.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "transports/json.h"
#include "transports/jwt.h"

#define KEY_MAX  4096
#define AUDS_MAX 16

static int usage(const char *why);
static long number_arg(const char *text, const char *name);
static size_t read_key(const char *path, char *key);

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"key-file", required_argument, NULL, 'k'}, {"user", required_argument, NULL, 'u'},
        {"role", required_argument, NULL, 'r'},     {"aud", required_argument, NULL, 'a'},
        {"ttl", required_argument, NULL, 't'},      {"nbf-in", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    const char *key_file = NULL, *user = NULL;
    const char *roles[RH_JWT_ROLES_MAX], *auds[AUDS_MAX];
    size_t role_count = 0, aud_count = 0;
    long ttl_s = 3600, nbf_in_s = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'k':
            key_file = optarg;
            break;
        case 'u':
            user = optarg;
            break;
        case 'r':
            if (role_count == RH_JWT_ROLES_MAX) return usage("too many --role");
            roles[role_count++] = optarg;
            break;
        case 'a':
            if (aud_count == AUDS_MAX) return usage("too many --aud");
            auds[aud_count++] = optarg;
            break;
        case 't':
            ttl_s = number_arg(optarg, "--ttl");
            break;
        case 'n':
            nbf_in_s = number_arg(optarg, "--nbf-in");
            break;
        case 'h':
            usage(NULL);
            return 0;
        default:
            return usage("unknown option");
        }
    }
    if (optind != argc) return usage("stray argument");
    char key[KEY_MAX + 1];
    size_t key_len;
    if (key_file) {
        key_len = read_key(key_file, key);
    } else if (getenv("RINGHUB_ACCESS_KEY")) {
        key_len = strlen(getenv("RINGHUB_ACCESS_KEY"));
        if (key_len > KEY_MAX) return usage("RINGHUB_ACCESS_KEY is too long");
        memcpy(key, getenv("RINGHUB_ACCESS_KEY"), key_len);
    } else {
        return usage("give the key with --key-file or RINGHUB_ACCESS_KEY");
    }
    if (!key_len) return usage("the key is empty");

    int64_t now_s = (int64_t)time(NULL);
    struct rh_buf *payload = rh_buf_new(256);
    char number[64];
    int n = snprintf(number, sizeof(number), "{\"exp\":%lld,\"nbf\":%lld,\"iat\":%lld",
                     (long long)(now_s + ttl_s), (long long)(now_s + nbf_in_s), (long long)now_s);
    rh_buf_append(&payload, number, (uint32_t)n);
    if (user) {
        rh_buf_append(&payload, ",\"nameid\":", 10);
        rh_json_write_string(&payload, user, strlen(user));
    }
    for (size_t i = 0; i < aud_count; i++) {
        rh_buf_append(&payload, i ? "," : ",\"aud\":[", i ? 1 : 8);
        rh_json_write_string(&payload, auds[i], strlen(auds[i]));
    }
    if (aud_count) rh_buf_append(&payload, "]", 1);
    for (size_t i = 0; i < role_count; i++) {
        rh_buf_append(&payload, i ? "," : ",\"role\":[", i ? 1 : 9);
        rh_json_write_string(&payload, roles[i], strlen(roles[i]));
    }
    if (role_count) rh_buf_append(&payload, "]", 1);
    rh_buf_append(&payload, "}", 1);
    char token[RH_JWT_TEXT_MAX + 1];
    ssize_t len = rh_jwt_sign(rh_span_make(payload->data, payload->len),
                              rh_span_make(key, (uint32_t)key_len), token, sizeof(token));
    rh_buf_unref(payload);
    if (len < 0) return usage("the token would be longer than 4096 bytes");
    printf("%s\n", token);
    return 0;
}

static int usage(const char *why)
{
    if (why) fprintf(stderr, "ringhub-token: %s\n", why);
    fprintf(why ? stderr : stdout,
            "usage: ringhub-token --key-file FILE [--user ID] [--role NAME]... [--aud URL]...\n"
            "                     [--ttl SECONDS] [--nbf-in SECONDS]\n"
            "Prints an HS256 token signed with the access key in FILE (or $RINGHUB_ACCESS_KEY;\n"
            "the file's last newline is not part of the key). --user sets nameid, --role adds a\n"
            "role claim (ringhub.sendToAll, ringhub.joinLeaveGroup.<group>, ...), --aud an\n"
            "audience; the token is valid from now + --nbf-in (default 0) for --ttl seconds\n"
            "(default 3600; negative values make expired tokens, for tests).\n");
    return why ? 2 : 0;
}

static long number_arg(const char *text, const char *name)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || !*text || *end || v < -315360000 || v > 315360000) {
        fprintf(stderr, "ringhub-token: %s takes seconds (within ten years)\n", name);
        exit(2);
    }
    return v;
}

/* The key in @path without its last line end; exits 2 when it cannot be read. */
static size_t read_key(const char *path, char *key)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "ringhub-token: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    size_t len = fread(key, 1, KEY_MAX + 1, f);
    fclose(f);
    if (len > KEY_MAX) {
        fprintf(stderr, "ringhub-token: %s: the key is longer than %d bytes\n", path, KEY_MAX);
        exit(2);
    }
    if (len && key[len - 1] == '\n') len--;
    if (len && key[len - 1] == '\r') len--;
    return len;
}
