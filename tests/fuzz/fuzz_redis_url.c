/*
 * tests/fuzz/fuzz_redis_url.c: llmux__redis_url_parse (core/redis.c) and
 * llmux__url_masked (core/config.c), which read the limits= setting and
 * the gateway's redis: entry, and show them in messages and logs.
 *
 * Each input is parsed twice:
 * - as it is: a parse either fails with a message or gives a host and
 *   port or a socket path (never both), a port in 1..65535 and a
 *   database >= 0;
 * - with a password put in: byte 0 picks the scheme, and the URL is
 *   SCHEME://user:PASSWORD@ followed by the rest of the input, where
 *   PASSWORD is a marker. Neither the parse's message nor the masked URL
 *   may hold the marker; a successful parse has the password, as given,
 *   percent-decoded (the marker has no '%').
 */
#include <string.h>

#include "fuzz.h"
#include "internal.h"
#include "redis.h"

#define SECRET "Zq7SecretMarker"

static void parse_plain(const char *url)
{
    llmux__redis_url u;
    char err[256] = "";
    memset(&u, 0, sizeof u);
    if (llmux__redis_url_parse(url, &u, err, sizeof err) == 0) {
        FUZZ_CHECK((u.host != NULL) != (u.path != NULL));
        FUZZ_CHECK(u.port >= 1 && u.port <= 65535);
        FUZZ_CHECK(u.db >= 0);
    } else {
        FUZZ_CHECK(err[0] != '\0');
    }
    llmux__redis_url_free(&u);
}

static void parse_secret(const char *scheme, const char *rest)
{
    llmux__redis_url u;
    char err[256] = "", *url, *shown;
    size_t n = strlen(scheme) + strlen(rest) + sizeof "://user:" SECRET "@";
    if (strstr(rest, SECRET))
        return; /* the marker is not only the password's */
    url = malloc(n);
    FUZZ_CHECK(url != NULL);
    snprintf(url, n, "%s://user:" SECRET "@%s", scheme, rest);
    memset(&u, 0, sizeof u);
    if (llmux__redis_url_parse(url, &u, err, sizeof err) == 0)
        FUZZ_CHECK(u.password && strstr(u.password, SECRET));
    else
        FUZZ_CHECK(err[0] != '\0');
    FUZZ_CHECK(!strstr(err, SECRET));
    shown = llmux__url_masked(url);
    FUZZ_CHECK(shown != NULL);
    FUZZ_CHECK(!strstr(shown, SECRET));
    llmux__free(shown);
    llmux__redis_url_free(&u);
    free(url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const schemes[] = {"redis", "rediss", "unix",
                                          "redis+unix"};
    char *s;
    if (size < 1 || size > 4096)
        return 0;
    s = malloc(size);
    FUZZ_CHECK(s != NULL);
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    parse_plain(s);
    parse_secret(schemes[data[0] % 4], s);
    free(s);
    return 0;
}
