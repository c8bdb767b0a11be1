/* llmux serve: TLS. h2o does the handshakes (it links OpenSSL) and speaks
 * HTTP/2 to the clients that pick h2 through ALPN; this file builds the
 * OpenSSL server context from the config's tls: section, with strong
 * defaults, and checks the files when the config loads so that a bad
 * path or a key for another certificate fails at start, not at the first
 * handshake. */
#define SERVE_INTERNAL
#include "serve.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

/* ALPN, in our order of preference: HTTP/2, then HTTP/1.1 (a client
 * offering neither gets HTTP/1.1 without ALPN) */
static const h2o_iovec_t alpn[] = {
    {H2O_STRLIT("h2")}, {H2O_STRLIT("http/1.1")}, {NULL, 0}};

/* An encrypted key cannot be used unattended: refuse it instead of
 * letting OpenSSL prompt on the terminal. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* OpenSSL's reason for the last failure, or `dflt`. */
static const char *ssl_reason(const char *dflt)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : dflt;
}

/* Opens `path` to tell "cannot read" (with errno) from "not PEM". */
static FILE *open_pem(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
    return f;
}

void *serve_tls_new(const char *cert, const char *key, int min_version,
                    const char **which, char *err, size_t errlen)
{
    SSL_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    FILE *f;

    ERR_clear_error();
    *which = "cert";
    if (!(f = open_pem(cert, err, errlen)))
        return NULL;
    fclose(f);
    if (!(ctx = SSL_CTX_new(TLS_server_method()))) {
        snprintf(err, errlen, "cannot create a TLS context: %s",
                 ssl_reason("out of memory"));
        return NULL;
    }
    SSL_CTX_set_default_passwd_cb(ctx, no_password);
    /* the certificate, then any intermediates, in one PEM file */
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        snprintf(err, errlen, "%s is not a PEM certificate (chain): %s", cert,
                 ssl_reason("no certificate"));
        goto fail;
    }
    *which = "key";
    if (!(f = open_pem(key, err, errlen)))
        goto fail;
    pkey = PEM_read_PrivateKey(f, NULL, no_password, NULL);
    fclose(f);
    if (!pkey) {
        snprintf(err, errlen, "%s is not an unencrypted PEM private key: %s",
                 key, ssl_reason("no key"));
        goto fail;
    }
    ERR_clear_error();
    if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen,
                 "%s does not match the certificate in tls.cert (%s)", key,
                 ssl_reason("key values mismatch"));
        goto fail;
    }
    EVP_PKEY_free(pkey);
    pkey = NULL;

    /* strong defaults: TLS 1.2 at least, AEAD ciphers with forward
     * secrecy only (HTTP/2's own rule), the server's preference, no
     * compression (CRIME) and no renegotiation */
    *which = "min_version";
    if (SSL_CTX_set_min_proto_version(
            ctx, min_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1) {
        snprintf(err, errlen, "cannot set the TLS version and ciphers: %s",
                 ssl_reason("unsupported"));
        goto fail;
    }
    /* no session tickets: their key would live as long as the context,
     * and with TLS 1.2 one stolen key opens every recorded session */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_TICKET);
    h2o_ssl_register_alpn_protocols(ctx, alpn);
    return ctx;
fail:
    EVP_PKEY_free(pkey);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return NULL;
}

void serve_tls_free(void *ctx)
{
    SSL_CTX_free(ctx);
}
