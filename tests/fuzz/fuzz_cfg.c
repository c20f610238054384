/* tests/fuzz/fuzz_cfg.c - feeds arbitrary text to the config file parser (inih plus the line
 * checks and value parsers of core/cfg.c). Whatever the input, loading must succeed or fail
 * with -EINVAL and a message, leave every field inside its limits, and free cleanly. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rh_cfg cfg;
    char err[256] = "";

    /* The API takes a C string; a NUL inside the input just ends it early. */
    char *text = malloc(size + 1);
    RH_ASSERT(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';

    rh_cfg_defaults(&cfg);
    int rc = rh_cfg_load_string(&cfg, text, err, sizeof(err));
    RH_ASSERT(rc == 0 || rc == -EINVAL);
    RH_ASSERT(rc == 0 || strncmp(err, "<string>:", 9) == 0);
    rh_cfg_validate(&cfg);
    rh_cfg_free(&cfg);
    free(text);
    return 0;
}
