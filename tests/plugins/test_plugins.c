/*
 * tests/plugins/test_plugins.c: the loader against real modules: a good
 * one, modules broken in one way each, garbage files and descriptors (all
 * in TESTMOD_DIR, never the build tree's plugins.d), plus a fake provider
 * registered in-process that counts its calls. Each test ends with
 * llmux__providers_cleanup(), so each starts from an empty cache.
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <ltdl.h>

#include "internal.h"
#include "plugins/testmod.h"

#define TDIR      TESTMOD_DIR
#define MOD(name) TDIR "/" name TESTMOD_EXT
#define ERRLEN    2048

/* ---- helpers --------------------------------------------------------------
 */

static void assert_contains(const char *hay, const char *needle)
{
    if (!hay || !strstr(hay, needle))
        fail_msg("\"%s\" does not contain \"%s\"", hay ? hay : "(null)",
                 needle);
}

static void assert_not_contains(const char *hay, const char *needle)
{
    if (hay && strstr(hay, needle))
        fail_msg("\"%s\" contains \"%s\"", hay, needle);
}

static void assert_ends_with(const char *s, const char *suffix)
{
    size_t n, m = strlen(suffix);
    assert_non_null(s);
    n = strlen(s);
    if (n < m || strcmp(s + n - m, suffix) != 0)
        fail_msg("\"%s\" does not end with \"%s\"", s, suffix);
}

/* Saves and restores $LLMUX_PLUGIN_PATH around a test that changes it. */
static char *saved_path;

static void env_save(void)
{
    const char *v = getenv("LLMUX_PLUGIN_PATH");
    free(saved_path);
    saved_path = v ? strdup(v) : NULL;
}

static void env_restore(void)
{
    if (saved_path)
        setenv("LLMUX_PLUGIN_PATH", saved_path, 1);
    else
        unsetenv("LLMUX_PLUGIN_PATH");
    free(saved_path);
    saved_path = NULL;
}

static int teardown(void **state)
{
    (void)state;
    llmux__providers_cleanup();
    env_restore();
    return 0;
}

/* A scratch directory with a few files, removed afterwards. */
typedef struct scratch {
    char dir[64];
    char *files[64];
    int n;
} scratch;

static void scratch_init(scratch *s)
{
    memset(s, 0, sizeof *s);
    strcpy(s->dir, "/tmp/llmux-plugins-XXXXXX");
    assert_non_null(mkdtemp(s->dir));
}

static const char *scratch_write(scratch *s, const char *name, const void *data,
                                 size_t len)
{
    char path[256];
    FILE *f;
    assert_true(s->n < 64);
    snprintf(path, sizeof path, "%s/%s", s->dir, name);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    s->files[s->n] = strdup(path);
    return s->files[s->n++];
}

static void scratch_free(scratch *s)
{
    int i;
    for (i = 0; i < s->n; i++) {
        unlink(s->files[i]);
        free(s->files[i]);
    }
    rmdir(s->dir);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* ---- a fake provider registered in-process (libgit2 fake_backend) -------- */

typedef struct fake_provider {
    llmux_provider base;
    int init_calls, teardown_calls, encode_calls, decode_calls;
    char last_name[64];
} fake_provider;

static fake_provider fake;

static int fake_init(const llmux_host *h, const llmux_provider_config *cfg,
                     void **provctx)
{
    assert_ptr_equal(h, llmux_host_table());
    assert_true(cfg->struct_size >= sizeof *cfg);
    snprintf(fake.last_name, sizeof fake.last_name, "%s", cfg->name);
    fake.init_calls++;
    *provctx = &fake;
    return 0;
}

static int fake_init_fail(const llmux_host *h, const llmux_provider_config *cfg,
                          void **provctx)
{
    (void)h;
    (void)cfg;
    (void)provctx;
    fake.init_calls++;
    return -7;
}

static void fake_teardown(void *provctx)
{
    assert_ptr_equal(provctx, &fake);
    fake.teardown_calls++;
}

static int fake_encode(void *provctx, llmux_call *call,
                       llmux_http_request *http)
{
    (void)call;
    (void)http;
    ((fake_provider *)provctx)->encode_calls++;
    return 0;
}

static int fake_decode(void *provctx, llmux_call *call,
                       const llmux_http_response *resp, llmux_out *out)
{
    (void)call;
    (void)resp;
    (void)out;
    ((fake_provider *)provctx)->decode_calls++;
    return 0;
}

static void fake_reset(const char *name)
{
    memset(&fake, 0, sizeof fake);
    fake.base.abi_version = LLMUX_PROVIDER_ABI;
    fake.base.struct_size = sizeof(llmux_provider);
    fake.base.name = name;
    fake.base.version = "0.0.1";
    fake.base.caps = LLMUX_CAP_CHAT | LLMUX_CAP_EMBED;
    fake.base.default_base_url = "http://fake.invalid";
    fake.base.api_key_env = "FAKE_KEY";
    fake.base.init = fake_init;
    fake.base.teardown = fake_teardown;
    fake.base.encode = fake_encode;
    fake.base.decode = fake_decode;
}

/* ---- tests ----------------------------------------------------------------
 */

static void test_caps_string(void **state)
{
    char buf[128], small[12];
    (void)state;
    assert_string_equal(llmux_caps_string(0x7f, buf, sizeof buf),
                        "chat,stream,complete,embed,models,tools,json");
    assert_string_equal(llmux_caps_string(0, buf, sizeof buf), "");
    assert_string_equal(
        llmux_caps_string(LLMUX_CAP_EMBED | LLMUX_CAP_JSON, buf, sizeof buf),
        "embed,json");
    /* unknown bits are ignored */
    assert_string_equal(
        llmux_caps_string((1ull << 40) | LLMUX_CAP_CHAT, buf, sizeof buf),
        "chat");
    /* a short buffer holds whole names only */
    assert_string_equal(llmux_caps_string(0x7f, small, sizeof small),
                        "chat,stream");
    assert_string_equal(llmux_caps_string(0x7f, small, 5), "chat");
    assert_string_equal(llmux_caps_string(0x7f, small, 4), "");
    assert_null(llmux_caps_string(0x7f, NULL, 10));
}

/* The directories of the search, ':'-joined, through the public listing
 * (caller frees). */
static int join_dir(const llmux_plugin_dir *d, void *ud)
{
    char **s = ud;
    size_t n = *s ? strlen(*s) : 0, m = strlen(d->path);
    char *t = realloc(*s, n + m + 2);
    assert_non_null(t);
    if (n)
        t[n++] = ':';
    memcpy(t + n, d->path, m + 1);
    *s = t;
    return 0;
}

static char *joined_dirs(const char *plugin_path)
{
    char *s = NULL;
    assert_int_equal(llmux_plugin_dirs_list(plugin_path, join_dir, &s), 0);
    return s ? s : strdup("");
}

static void test_plugin_dirs(void **state)
{
    char *dirs, *expect;
    (void)state;
    env_save();
    setenv("LLMUX_PLUGIN_PATH", "/nonexistent/a::/nonexistent/b:", 1);
    dirs = joined_dirs("/x:/nonexistent/a:" TDIR);
    assert_non_null(dirs);
    /* env first, then extra, empty parts and duplicates dropped */
    expect = "/nonexistent/a:/nonexistent/b:/x:" TDIR ":";
    assert_int_equal(strncmp(dirs, expect, strlen(expect)), 0);
    /* the build tree's directory is never compiled in */
    assert_not_contains(dirs, LLMUX_BUILD_PLUGIN_DIR);
    /* the one relative to the file holding the code comes last */
    assert_ends_with(dirs, "/llmux/plugins.d");
    free(dirs);

    unsetenv("LLMUX_PLUGIN_PATH");
    dirs = joined_dirs(NULL);
    assert_non_null(dirs);
    assert_true(dirs[0] == '/');
    assert_ends_with(dirs, "/llmux/plugins.d");
    free(dirs);
}

typedef struct dirs_seen {
    char paths[8][512];
    llmux_plugin_dir_source src[8];
    int exists[8];
    int n, stop_after;
} dirs_seen;

static int collect_dir(const llmux_plugin_dir *d, void *ud)
{
    dirs_seen *s = ud;
    assert_true(s->n < 8);
    snprintf(s->paths[s->n], sizeof s->paths[0], "%s", d->path);
    s->src[s->n] = d->source;
    s->exists[s->n] = d->exists;
    s->n++;
    return s->stop_after && s->n == s->stop_after;
}

static void test_plugin_dirs_list(void **state)
{
    dirs_seen s;
    char here[600];
    (void)state;
    env_save();
    setenv("LLMUX_PLUGIN_PATH", TDIR ":/nonexistent/e", 1);
    memset(&s, 0, sizeof s);
    assert_int_equal(
        llmux_plugin_dirs_list("/nonexistent/o:" TDIR, collect_dir, &s), 0);
    /* env, env, option (the duplicate TDIR keeps its first place), and
     * the directory beside the file holding the code: this test program */
    assert_int_equal(s.n, 4);
    assert_string_equal(s.paths[0], TDIR);
    assert_int_equal(s.src[0], LLMUX_PLUGIN_DIR_ENV);
    assert_int_equal(s.exists[0], 1);
    assert_string_equal(s.paths[1], "/nonexistent/e");
    assert_int_equal(s.exists[1], 0);
    assert_string_equal(s.paths[2], "/nonexistent/o");
    assert_int_equal(s.src[2], LLMUX_PLUGIN_DIR_OPTION);
    assert_int_equal(s.src[3], LLMUX_PLUGIN_DIR_RELATIVE);
    assert_non_null(realpath("/proc/self/exe", here));
    *strrchr(here, '/') = '\0';
    strcat(here, "/llmux/plugins.d");
    assert_string_equal(s.paths[3], here);
    assert_string_equal(llmux_plugin_dir_source_name(s.src[0]),
                        "LLMUX_PLUGIN_PATH");
    assert_string_equal(llmux_plugin_dir_source_name(s.src[2]), "plugin_path");
    assert_string_equal(llmux_plugin_dir_source_name(s.src[3]), "relative");
    assert_string_equal(llmux_plugin_dir_source_name(99), "unknown");

    /* the callback stops the listing */
    memset(&s, 0, sizeof s);
    s.stop_after = 1;
    assert_int_equal(llmux_plugin_dirs_list(NULL, collect_dir, &s), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(llmux_plugin_dirs_list(NULL, NULL, NULL), LLMUX_EINVAL);
}

static void test_probe_good(void **state)
{
    llmux_provider_info info;
    char err[ERRLEN];
    (void)state;
    memset(&info, 0xab, sizeof info);
    assert_int_equal(llmux_provider_probe("good", TDIR, &info, err, ERRLEN), 0);
    assert_string_equal(info.name, "good");
    assert_string_equal(info.module, "good");
    assert_string_equal(info.path, MOD("good"));
    assert_null(info.descriptor);
    assert_string_equal(info.version, "1.2.3");
    assert_string_equal(info.description, "test module good");
    assert_string_equal(info.base_url, "http://good.invalid/v1");
    assert_string_equal(info.api_key_env, "TESTMOD_API_KEY");
    assert_int_equal(info.caps,
                     LLMUX_CAP_CHAT | LLMUX_CAP_STREAM | LLMUX_CAP_MODELS);
    assert_int_equal(info.status, 0);
    assert_null(info.error);
    /* info may be NULL */
    assert_int_equal(llmux_provider_probe("good", TDIR, NULL, NULL, 0), 0);
}

/* A module built against the first header: its table ends at call_end.
 * It loads and encodes, and the core reads nothing past its struct_size
 * (the test module keeps poison there: a port of 1, hooks that abort). */
static void test_v1_table_loads(void **state)
{
    llmux_provider_info info;
    const llmux__provider *p;
    llmux_request *r;
    llmux__prepared prep;
    char err[ERRLEN];
    (void)state;
    assert_int_equal(llmux_provider_probe("v1", TDIR, &info, err, ERRLEN), 0);
    assert_int_equal(info.status, 0);
    assert_int_equal(llmux__provider_get("v1", TDIR, &p, err, ERRLEN), 0);
    assert_int_equal(p->vt->struct_size, LLMUX_PROVIDER_V1_SIZE);
    assert_false(LLMUX_PROVIDER_HAS(p->vt, default_port));
    assert_false(LLMUX_PROVIDER_HAS(p->vt, rate_limits));
    assert_false(LLMUX_PROVIDER_HAS(p->vt, classify_error));
    assert_false(LLMUX_PROVIDER_HAS(p->vt, options));

    /* a host without a port from the environment: the v1 table has no
     * default_port, so none is added (the poison would add ":1") */
    env_save();
    setenv("TESTMOD_BASE_URL", "gpu", 1);
    /* any option: a v1 table declares none, so none is refused */
    assert_int_equal(llmux_request_new(&r, LLMUX_OP_CHAT, "v1/m;anything=1"),
                     0);
    assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_USER, "hi"), 0);
    assert_int_equal(llmux__prepare(r, TDIR, &prep), 0);
    assert_non_null(strstr(prep.url, "http://gpu/"));
    llmux__prepared_free(&prep);
    llmux_request_free(r);
    unsetenv("TESTMOD_BASE_URL");
}

static void test_probe_cached(void **state)
{
    llmux_provider_info a, b;
    const llmux__provider *p1, *p2;
    const testmod_ctx *ctx;
    int refs, seq;
    char err[ERRLEN];
    (void)state;
    assert_int_equal(llmux_provider_probe("good", TDIR, &a, err, ERRLEN), 0);
    assert_int_equal(llmux__provider_get("good", TDIR, &p1, err, ERRLEN), 0);
    assert_non_null(p1->handle);
    refs = lt_dlgetinfo((lt_dlhandle)p1->handle)->ref_count;
    ctx = p1->provctx;
    assert_int_equal(ctx->magic, TESTMOD_MAGIC);
    seq = ctx->seq;

    /* again: the same strings, no new handle reference, no second init */
    assert_int_equal(llmux_provider_probe("good", TDIR, &b, err, ERRLEN), 0);
    assert_ptr_equal(a.name, b.name);
    assert_ptr_equal(a.path, b.path);
    assert_ptr_equal(a.base_url, b.base_url);
    assert_int_equal(llmux__provider_get("good", NULL, &p2, err, ERRLEN), 0);
    assert_ptr_equal(p1, p2);
    assert_int_equal(lt_dlgetinfo((lt_dlhandle)p2->handle)->ref_count, refs);
    assert_int_equal(((const testmod_ctx *)p2->provctx)->seq, seq);
}

static void test_descriptor_alias(void **state)
{
    llmux_provider_info info;
    const llmux__provider *good, *alias;
    const testmod_ctx *gctx, *actx;
    char err[ERRLEN];
    size_t i;
    int found_flavour = 0, found_auth = 0;
    (void)state;
    assert_int_equal(llmux_provider_probe("alias", TDIR, &info, err, ERRLEN),
                     0);
    assert_string_equal(info.name, "alias");
    assert_string_equal(info.module, "good");
    assert_string_equal(info.path, MOD("good"));
    assert_string_equal(info.descriptor, TDIR "/alias.conf");
    assert_string_equal(info.base_url, "http://alias.invalid/v2");
    assert_string_equal(info.api_key_env, "ALIAS_KEY");
    assert_string_equal(info.description, "good, under another name");
    assert_string_equal(info.version, "1.2.3");

    assert_int_equal(llmux__provider_get("alias", TDIR, &alias, err, ERRLEN),
                     0);
    /* it points elsewhere (its own base_url), so it does not inherit the
     * module's variable: TESTMOD_BASE_URL would redirect its traffic */
    assert_null(alias->base_url_env);
    /* other keys are options, lower-cased, in file order */
    assert_int_equal(alias->n_opts, 2);
    for (i = 0; i < alias->n_opts; i++) {
        if (strcmp(alias->opts[i].key, "flavour") == 0 &&
            strcmp(alias->opts[i].value, "vanilla") == 0)
            found_flavour = 1;
        if (strcmp(alias->opts[i].key, "auth") == 0 &&
            strcmp(alias->opts[i].value, "optional") == 0)
            found_auth = 1;
    }
    assert_true(found_flavour && found_auth);

    /* the same module under its own name: one handle, two contexts */
    assert_int_equal(llmux__provider_get("good", TDIR, &good, err, ERRLEN), 0);
    assert_ptr_equal(good->handle, alias->handle);
    assert_ptr_equal(good->vt, alias->vt);
    assert_ptr_not_equal(good->provctx, alias->provctx);
    actx = alias->provctx;
    gctx = good->provctx;
    assert_string_equal(actx->name, "alias");
    assert_string_equal(actx->flavour, "vanilla");
    assert_int_equal(actx->n_options, 2);
    assert_string_equal(gctx->name, "good");
    assert_string_equal(gctx->flavour, "");
    assert_int_equal(gctx->n_options, 0);
    assert_int_equal(gctx->seq, actx->seq + 1); /* one init each */
    assert_int_equal(lt_dlgetinfo((lt_dlhandle)good->handle)->ref_count, 2);
}

/* Each broken plugin: its code and what the message must name. */
static void check_error(const char *name, int code, const char *n1,
                        const char *n2, const char *n3)
{
    llmux_provider_info info;
    char err[ERRLEN];
    int i;
    /* twice: failures are not cached, and fail the same way */
    for (i = 0; i < 2; i++) {
        memset(err, 0, sizeof err);
        memset(&info, 0xab, sizeof info);
        if (llmux_provider_probe(name, TDIR, &info, err, ERRLEN) != code)
            fail_msg("%s: expected %s, got \"%s\"", name, llmux_err_name(code),
                     err);
        assert_null(info.name);
        assert_int_equal(info.status, 0);
        if (n1)
            assert_contains(err, n1);
        if (n2)
            assert_contains(err, n2);
        if (n3)
            assert_contains(err, n3);
    }
}

static void test_broken_modules(void **state)
{
    char want[128];
    (void)state;
    check_error("bad_abi", LLMUX_EABI, MOD("bad_abi"),
                "has ABI 999, core has 1", NULL);
    snprintf(want, sizeof want, "struct_size %u smaller than minimum %u",
             (unsigned)offsetof(llmux_provider, decode),
             (unsigned)LLMUX_PROVIDER_V1_SIZE);
    check_error("short_struct", LLMUX_EPLUGINSIZE, MOD("short_struct"), want,
                NULL);
    check_error("no_entry", LLMUX_ENOTPLUGIN,
                MOD("no_entry") ": not an llmux plugin "
                                "(no llmux_provider_entry symbol)",
                NULL, NULL);
    check_error("null_entry", LLMUX_EABI,
                MOD("null_entry") ": plugin refused host ABI 1", NULL, NULL);
    check_error("missing_hook", LLMUX_EPLUGIN, MOD("missing_hook"),
                "missing required hook encode", NULL);
    check_error("init_fails", LLMUX_EPLUGIN, MOD("init_fails"), "init failed",
                "-42");
    check_error("garbage", LLMUX_EPLUGIN, MOD("garbage") ": cannot load module",
                NULL, NULL);
}

static void test_broken_descriptors(void **state)
{
    (void)state;
    check_error("nomodule", LLMUX_ECONFIG, TDIR "/nomodule.conf",
                "missing required key \"module\"", NULL);
    check_error("ghost", LLMUX_ENOPROVIDER, TDIR "/ghost.conf",
                "module \"does_not_exist\" not found", "searched: ");
    check_error("badline", LLMUX_ECONFIG,
                TDIR "/badline.conf:3:", "key = value", NULL);
    check_error("chain", LLMUX_ECONFIG, TDIR "/chain.conf:2:", "descriptor",
                NULL);
    check_error("aliasbad", LLMUX_EABI, TDIR "/aliasbad.conf: ", MOD("bad_abi"),
                "has ABI 999");
    check_error("selfref", LLMUX_ENOPROVIDER, TDIR "/selfref.conf",
                "module \"selfref\" not found", NULL);
}

static void test_ltx_entry(void **state)
{
    llmux_provider_info info;
    char err[ERRLEN];
    (void)state;
    assert_int_equal(llmux_provider_probe("ltxmod", TDIR, &info, err, ERRLEN),
                     0);
    assert_string_equal(info.module, "ltxmod");
    assert_string_equal(info.path, MOD("ltxmod"));
}

static void test_not_found_lists_dirs(void **state)
{
    char err[ERRLEN];
    (void)state;
    env_save();
    setenv("LLMUX_PLUGIN_PATH", "/nonexistent/llmux-env", 1);
    assert_int_equal(llmux_provider_probe("nosuch", TDIR ":/nonexistent/extra",
                                          NULL, err, ERRLEN),
                     LLMUX_ENOPROVIDER);
    assert_contains(err, "provider \"nosuch\" not found; searched: "
                         "/nonexistent/llmux-env (does not exist), " TDIR
                         ", /nonexistent/extra (does not exist)");
    assert_contains(err, "/llmux/plugins.d");
    /* a directory that exists is not marked */
    assert_null(strstr(err, TDIR " (does not exist)"));

    /* extra dirs alone are not enough for names found elsewhere */
    assert_int_equal(
        llmux_provider_probe("good", "/nonexistent/extra", NULL, err, ERRLEN),
        LLMUX_ENOPROVIDER);
    assert_contains(err, "provider \"good\" not found");

    /* a short buffer is truncated, never overrun */
    {
        char small[16];
        memset(small, 'x', sizeof small);
        assert_int_equal(llmux_provider_probe("nosuch", TDIR, NULL, small, 10),
                         LLMUX_ENOPROVIDER);
        assert_int_equal(strlen(small), 9);
        assert_int_equal(small[10], 'x');
    }
}

static void test_bad_names(void **state)
{
    static const char *bad[] = {"..",      ".", ".hidden", "a b", "semi;col",
                                "tab\tab", "ü", "a\\b",    "x*"};
    char err[ERRLEN];
    size_t i;
    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(llmux_provider_probe(bad[i], TDIR, NULL, err, ERRLEN),
                         LLMUX_ECONFIG);
        assert_contains(err, "invalid provider name");
    }
    assert_int_equal(llmux_provider_probe("", TDIR, NULL, err, ERRLEN),
                     LLMUX_EINVAL);
    assert_int_equal(llmux_provider_probe(NULL, TDIR, NULL, err, ERRLEN),
                     LLMUX_EINVAL);
    /* names with '/' are paths, never joined to a plugin directory */
    assert_int_equal(
        llmux_provider_probe("../broken/good", TDIR, NULL, err, ERRLEN),
        LLMUX_ENOPROVIDER);
    assert_contains(err, "no such file");
}

static void test_direct_path(void **state)
{
    llmux_provider_info info;
    char err[ERRLEN];
    (void)state;
    /* a module by path: no plugin directory needed */
    assert_int_equal(
        llmux_provider_probe(MOD("good"), NULL, &info, err, ERRLEN), 0);
    assert_string_equal(info.name, MOD("good"));
    assert_string_equal(info.module, "good");
    assert_string_equal(info.path, MOD("good"));
    /* a descriptor by path; its module is searched in the given dirs */
    assert_int_equal(
        llmux_provider_probe(TDIR "/alias.conf", TDIR, &info, err, ERRLEN), 0);
    assert_string_equal(info.descriptor, TDIR "/alias.conf");
    assert_string_equal(info.base_url, "http://alias.invalid/v2");
    assert_int_equal(
        llmux_provider_probe(MOD("garbage"), NULL, &info, err, ERRLEN),
        LLMUX_EPLUGIN);
    assert_int_equal(
        llmux_provider_probe(MOD("no_entry"), NULL, &info, err, ERRLEN),
        LLMUX_ENOTPLUGIN);
    assert_int_equal(
        llmux_provider_probe(TDIR "/missing.so", NULL, &info, err, ERRLEN),
        LLMUX_ENOPROVIDER);
    assert_contains(err, TDIR "/missing.so");
    /* a directory is not a module */
    assert_int_equal(llmux_provider_probe(TDIR "/", NULL, &info, err, ERRLEN),
                     LLMUX_ENOPROVIDER);
}

static void test_register(void **state)
{
    llmux_provider_info info;
    const llmux__provider *p;
    char err[ERRLEN];
    (void)state;
    fake_reset("fake");
    assert_int_equal(llmux_register_provider(&fake.base), 0);
    /* the same table twice is fine; another one under the name is not */
    assert_int_equal(llmux_register_provider(&fake.base), 0);
    {
        llmux_provider other = fake.base;
        assert_int_equal(llmux_register_provider(&other), LLMUX_EINVAL);
    }
    assert_int_equal(fake.init_calls, 0); /* init waits for first use */

    assert_int_equal(llmux_provider_probe("fake", NULL, &info, err, ERRLEN), 0);
    assert_string_equal(info.name, "fake");
    assert_string_equal(info.module, "fake");
    assert_string_equal(info.path, "built-in");
    assert_null(info.descriptor);
    assert_string_equal(info.base_url, "http://fake.invalid");
    assert_int_equal(info.caps, LLMUX_CAP_CHAT | LLMUX_CAP_EMBED);
    assert_int_equal(fake.init_calls, 1);
    assert_string_equal(fake.last_name, "fake");
    assert_int_equal(llmux_provider_probe("fake", NULL, &info, err, ERRLEN), 0);
    assert_int_equal(fake.init_calls, 1);

    /* hooks get the context init made */
    assert_int_equal(llmux__provider_get("fake", NULL, &p, err, ERRLEN), 0);
    assert_null(p->handle);
    assert_int_equal(p->vt->encode(p->provctx, NULL, NULL), 0);
    assert_int_equal(p->vt->decode(p->provctx, NULL, NULL, NULL), 0);
    assert_int_equal(fake.encode_calls, 1);
    assert_int_equal(fake.decode_calls, 1);

    /* a descriptor may map a name onto a built-in */
    {
        scratch s;
        static const char conf[] = "module = fake\nbase_url = http://on\n";
        scratch_init(&s);
        scratch_write(&s, "onfake.conf", conf, sizeof conf - 1);
        assert_int_equal(
            llmux_provider_probe("onfake", s.dir, &info, err, ERRLEN), 0);
        assert_string_equal(info.path, "built-in");
        assert_string_equal(info.module, "fake");
        assert_string_equal(info.base_url, "http://on");
        assert_int_equal(fake.init_calls, 2);
        assert_string_equal(fake.last_name, "onfake");
        scratch_free(&s);
    }

    assert_int_equal(fake.teardown_calls, 0);
    llmux__providers_cleanup();
    assert_int_equal(fake.teardown_calls, 2);
    /* cleanup forgets registrations */
    assert_int_equal(llmux_provider_probe("fake", NULL, NULL, err, ERRLEN),
                     LLMUX_ENOPROVIDER);
}

static void test_register_shadows_plugin(void **state)
{
    llmux_provider_info info;
    char err[ERRLEN];
    (void)state;
    fake_reset("good");
    assert_int_equal(llmux_register_provider(&fake.base), 0);
    assert_int_equal(llmux_provider_probe("good", TDIR, &info, err, ERRLEN), 0);
    assert_string_equal(info.path, "built-in");
    assert_int_equal(fake.init_calls, 1);
}

static void test_register_checks(void **state)
{
    char err[ERRLEN];
    (void)state;
    assert_int_equal(llmux_register_provider(NULL), LLMUX_EINVAL);

    fake_reset("chk");
    fake.base.abi_version = 2;
    assert_int_equal(llmux_register_provider(&fake.base), LLMUX_EABI);
    assert_int_equal(llmux__provider_check(&fake.base, "X", err, ERRLEN),
                     LLMUX_EABI);
    assert_string_equal(err, "plugin X has ABI 2, core has 1");

    fake_reset("chk");
    fake.base.struct_size = 8;
    assert_int_equal(llmux_register_provider(&fake.base), LLMUX_EPLUGINSIZE);
    assert_int_equal(llmux__provider_check(&fake.base, "X", err, ERRLEN),
                     LLMUX_EPLUGINSIZE);
    assert_contains(err, "struct_size 8 smaller than minimum");

    fake_reset("chk");
    fake.base.struct_size = sizeof(llmux_provider) + 64; /* newer: fine */
    assert_int_equal(llmux__provider_check(&fake.base, "X", err, ERRLEN), 0);

    fake_reset(NULL);
    assert_int_equal(llmux_register_provider(&fake.base), LLMUX_EPLUGIN);
    fake_reset("chk");
    fake.base.encode = NULL;
    assert_int_equal(llmux_register_provider(&fake.base), LLMUX_EPLUGIN);
    assert_int_equal(llmux__provider_check(&fake.base, "X", err, ERRLEN),
                     LLMUX_EPLUGIN);
    assert_contains(err, "missing required hook encode");
    fake_reset("chk");
    fake.base.decode = NULL;
    assert_int_equal(llmux__provider_check(&fake.base, "X", err, ERRLEN),
                     LLMUX_EPLUGIN);
    assert_contains(err, "missing required hook decode");
    fake_reset("chk");
    fake.base.caps |= LLMUX_CAP_STREAM; /* without decode_event */
    assert_int_equal(llmux_register_provider(&fake.base), LLMUX_EPLUGIN);
    assert_int_equal(llmux__provider_check(&fake.base, "X", err, ERRLEN),
                     LLMUX_EPLUGIN);
    assert_contains(err, "missing required hook decode_event");
    /* names must be usable in config strings */
    fake_reset("a/b");
    assert_int_equal(llmux_register_provider(&fake.base), LLMUX_EINVAL);
    fake_reset("");
    assert_int_equal(llmux_register_provider(&fake.base), LLMUX_EINVAL);
    /* nothing was registered */
    assert_int_equal(llmux_provider_probe("chk", NULL, NULL, err, ERRLEN),
                     LLMUX_ENOPROVIDER);
    assert_int_equal(fake.init_calls, 0);

    /* a built-in whose init fails: not cached, never torn down */
    fake_reset("chk");
    fake.base.init = fake_init_fail;
    assert_int_equal(llmux_register_provider(&fake.base), 0);
    assert_int_equal(llmux_provider_probe("chk", NULL, NULL, err, ERRLEN),
                     LLMUX_EPLUGIN);
    assert_contains(err, "built-in: init failed for provider \"chk\" (-7)");
    assert_int_equal(llmux_provider_probe("chk", NULL, NULL, err, ERRLEN),
                     LLMUX_EPLUGIN);
    assert_int_equal(fake.init_calls, 2);
    llmux__providers_cleanup();
    assert_int_equal(fake.teardown_calls, 0);
}

/* What the listing reported, copied. */
typedef struct seen_entry {
    char name[64];
    char path[512];
    char descriptor[512];
    char error[1024];
    int status;
    int index;
} seen_entry;

typedef struct listing {
    seen_entry e[128];
    int n;
    int stop_after; /* 0: never */
} listing;

static int list_cb(const llmux_provider_info *info, void *userdata)
{
    listing *l = userdata;
    seen_entry *e;
    assert_true(l->n < 128);
    e = &l->e[l->n];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", info->name);
    snprintf(e->path, sizeof e->path, "%s", info->path ? info->path : "");
    snprintf(e->descriptor, sizeof e->descriptor, "%s",
             info->descriptor ? info->descriptor : "");
    snprintf(e->error, sizeof e->error, "%s", info->error ? info->error : "");
    e->status = info->status;
    e->index = l->n++;
    if (info->status == 0)
        assert_null(info->error);
    else
        assert_true(info->error && info->error[0]);
    return l->stop_after && l->n >= l->stop_after;
}

static const seen_entry *find_entry(const listing *l, const char *name)
{
    const seen_entry *hit = NULL;
    int i;
    for (i = 0; i < l->n; i++) {
        if (strcmp(l->e[i].name, name) == 0) {
            if (hit)
                fail_msg("%s listed twice", name);
            hit = &l->e[i];
        }
    }
    if (!hit)
        fail_msg("%s not listed", name);
    return hit;
}

static void test_list(void **state)
{
    static listing l;
    const seen_entry *e;
    static const struct {
        const char *name;
        int status;
    } want[] = {
        {"good", 0},
        {"ltxmod", 0},
        {"alias", 0},
        {"bad_abi", LLMUX_EABI},
        {"short_struct", LLMUX_EPLUGINSIZE},
        {"no_entry", LLMUX_ENOTPLUGIN},
        {"null_entry", LLMUX_EABI},
        {"missing_hook", LLMUX_EPLUGIN},
        {"init_fails", LLMUX_EPLUGIN},
        {"garbage", LLMUX_EPLUGIN},
        {"nomodule", LLMUX_ECONFIG},
        {"ghost", LLMUX_ENOPROVIDER},
        {"badline", LLMUX_ECONFIG},
        {"chain", LLMUX_ECONFIG},
        {"aliasbad", LLMUX_EABI},
        {"selfref", LLMUX_ENOPROVIDER},
    };
    size_t i;
    (void)state;
    memset(&l, 0, sizeof l);
    env_save();
    unsetenv("LLMUX_PLUGIN_PATH");
    fake_reset("fake");
    assert_int_equal(llmux_register_provider(&fake.base), 0);
    assert_int_equal(llmux_providers_list(TDIR, list_cb, &l), 0);

    /* built-ins first */
    assert_true(l.n > 0);
    assert_string_equal(l.e[0].name, "fake");
    assert_string_equal(l.e[0].path, "built-in");
    for (i = 0; i < sizeof want / sizeof want[0]; i++) {
        e = find_entry(&l, want[i].name);
        if (e->status != want[i].status)
            fail_msg("%s: status %s, expected %s (%s)", want[i].name,
                     llmux_err_name(e->status), llmux_err_name(want[i].status),
                     e->error);
    }
    e = find_entry(&l, "good");
    assert_string_equal(e->path, MOD("good"));
    assert_string_equal(e->descriptor, "");
    e = find_entry(&l, "alias");
    assert_string_equal(e->path, MOD("good"));
    assert_string_equal(e->descriptor, TDIR "/alias.conf");
    /* broken ones say which file */
    e = find_entry(&l, "bad_abi");
    assert_string_equal(e->path, MOD("bad_abi"));
    assert_contains(e->error, "has ABI 999");
    e = find_entry(&l, "nomodule");
    assert_string_equal(e->path, TDIR "/nomodule.conf");
    assert_string_equal(e->descriptor, TDIR "/nomodule.conf");
    e = find_entry(&l, "garbage");
    assert_string_equal(e->path, MOD("garbage"));

    /* the listing loaded what works: probing is a cache hit now */
    assert_int_equal(fake.init_calls, 1);
    assert_int_equal(llmux_provider_probe("fake", NULL, NULL, NULL, 0), 0);
    assert_int_equal(fake.init_calls, 1);

    assert_int_equal(llmux_providers_list(TDIR, NULL, NULL), LLMUX_EINVAL);
}

static void test_list_stop_and_shadow(void **state)
{
    static listing l;
    scratch s;
    static const char conf[] = "module = good\nbase_url = http://shadow\n";
    static const char bad[] = "module = good\n";
    const seen_entry *e;
    char path[256];
    (void)state;
    /* a callback returning non-zero stops the listing */
    memset(&l, 0, sizeof l);
    l.stop_after = 2;
    assert_int_equal(llmux_providers_list(TDIR, list_cb, &l), 0);
    assert_int_equal(l.n, 2);
    llmux__providers_cleanup();

    /* an earlier directory shadows a later one; listed once, from there */
    scratch_init(&s);
    scratch_write(&s, "good.conf", conf, sizeof conf - 1);
    scratch_write(&s, "a b.conf", bad, sizeof bad - 1);
    env_save();
    setenv("LLMUX_PLUGIN_PATH", s.dir, 1);
    memset(&l, 0, sizeof l);
    assert_int_equal(llmux_providers_list(TDIR, list_cb, &l), 0);
    e = find_entry(&l, "good");
    assert_int_equal(e->status, 0);
    snprintf(path, sizeof path, "%s/good.conf", s.dir);
    assert_string_equal(e->descriptor, path);
    assert_string_equal(e->path, MOD("good"));
    /* a file whose name can never be used is reported, not loaded */
    e = find_entry(&l, "a b");
    assert_int_equal(e->status, LLMUX_ECONFIG);
    assert_contains(e->error, "invalid provider name");
    scratch_free(&s);
}

/* The descriptors shipped in plugins.d/, on a fake "openai" built-in. */
static void test_shipped_descriptors(void **state)
{
    static const struct {
        const char *name, *url, *key_env, *url_env;
        int optional;
    } want[] = {
        {"groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY",
         "GROQ_BASE_URL", 0},
        {"together", "https://api.together.xyz/v1", "TOGETHER_API_KEY",
         "TOGETHER_BASE_URL", 0},
        {"openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY",
         "OPENROUTER_BASE_URL", 0},
        {"deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY",
         "DEEPSEEK_BASE_URL", 0},
        {"vllm", "http://127.0.0.1:8000/v1", "VLLM_API_KEY", "VLLM_BASE_URL",
         1},
        {"lmstudio", "http://127.0.0.1:1234/v1", NULL, NULL, 1},
        {"llamacpp", "http://127.0.0.1:8080/v1", NULL, NULL, 1},
    };
    const char *shipped = LLMUX_TEST_DATA "/../../plugins.d";
    const llmux__provider *p;
    char err[ERRLEN];
    size_t i, j;
    (void)state;
    env_save();
    setenv("LLMUX_PLUGIN_PATH", shipped, 1);
    fake_reset("openai");
    fake.base.base_url_env = "OPENAI_BASE_URL";
    assert_int_equal(llmux_register_provider(&fake.base), 0);
    for (i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *auth = NULL;
        if (llmux__provider_get(want[i].name, NULL, &p, err, ERRLEN) != 0)
            fail_msg("%s: %s", want[i].name, err);
        assert_non_null(p->descriptor);
        assert_contains(p->descriptor, "/plugins.d/");
        assert_string_equal(p->module, "openai");
        assert_string_equal(p->base_url, want[i].url);
        if (want[i].key_env)
            assert_string_equal(p->api_key_env, want[i].key_env);
        else
            assert_non_null(p->api_key_env);
        /* never the module's: OPENAI_BASE_URL must not redirect groq */
        assert_non_null(p->base_url_env);
        assert_string_not_equal(p->base_url_env, "OPENAI_BASE_URL");
        if (want[i].url_env)
            assert_string_equal(p->base_url_env, want[i].url_env);
        for (j = 0; j < p->n_opts; j++)
            if (strcmp(p->opts[j].key, "auth") == 0)
                auth = p->opts[j].value;
        if (want[i].optional)
            assert_string_equal(auth, "optional");
        else
            assert_null(auth);
    }
    assert_int_equal(fake.init_calls, (int)(sizeof want / sizeof want[0]));
}

static void test_descriptor_parsing(void **state)
{
    static const char ok[] =
        "# comment\r\n"
        "\n"
        "   module   =   good   \r\n"
        "\tBASE_URL=\"http://q.invalid/#frag\"\n"
        "api_key_env =\n" /* empty: none, not the module's */
        "x.y-z_1 = a = b\n"
        "x.y-z_1 = later wins\n"
        "description = caf\xc3\xa9"; /* no final newline */
    static const struct {
        const char *file, *text, *msg;
    } bad[] = {
        {"nul.conf", "module = good\n\0x = 1\n", "nul.conf:2: NUL byte"},
        {"ctl.conf", "module = good\nx = \x01\n", "ctl.conf:2: control"},
        {"key.conf", "module = good\nb@d = 1\n", "key.conf:2: invalid key"},
        {"nokey.conf", "module = good\n = 1\n", "nokey.conf:2: missing key"},
        {"empty.conf", "", "empty.conf: missing required key \"module\""},
        {"emod.conf", "module =\n", "emod.conf:1: empty module"},
        {"mname.conf", "module = a b\n", "mname.conf:1: invalid module name"},
        {"abs.conf", "module = /nonexistent/x.so\n", "abs.conf:1: module file"},
        {"badset.conf", "module = good\ntimeout = soon\n",
         "badset.conf: option \"timeout\" wants seconds, got \"soon\""},
        {"badauth.conf", "module = good\nauth = maybe\n",
         "badauth.conf: option \"auth\" wants bearer, optional or none"},
    };
    static const size_t bad_len[] = {21, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    const llmux__provider *p;
    llmux_provider_info info;
    char err[ERRLEN], name[64], dirs[512];
    scratch s;
    size_t i;
    (void)state;
    scratch_init(&s);
    snprintf(dirs, sizeof dirs, "%s:%s", s.dir, TDIR);
    scratch_write(&s, "ok.conf", ok, sizeof ok - 1);
    assert_int_equal(llmux_provider_probe("ok", dirs, &info, err, ERRLEN), 0);
    assert_string_equal(info.base_url, "http://q.invalid/#frag");
    assert_null(info.api_key_env);
    assert_string_equal(info.description, "caf\xc3\xa9");
    assert_int_equal(llmux__provider_get("ok", NULL, &p, err, ERRLEN), 0);
    /* unset, and its own base_url: not the module's variable */
    assert_null(p->base_url_env);
    {
        /* a descriptor pointing elsewhere must not pick up the module's
         * key variable: that key would go to another endpoint */
        static const char other[] =
            "module = good\nbase_url = http://o.invalid\n";
        const llmux__provider *o;
        scratch_write(&s, "other.conf", other, sizeof other - 1);
        assert_int_equal(llmux__provider_get("other", dirs, &o, err, ERRLEN),
                         0);
        assert_null(o->api_key_env);
        assert_null(o->base_url_env);
    }
    assert_int_equal(p->n_opts, 1);
    assert_string_equal(p->opts[0].key, "x.y-z_1");
    assert_string_equal(p->opts[0].value, "later wins");

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t len = bad_len[i] ? bad_len[i] : strlen(bad[i].text);
        snprintf(name, sizeof name, "%s", bad[i].file);
        scratch_write(&s, name, bad[i].text, len);
        *strrchr(name, '.') = '\0';
        memset(err, 0, sizeof err);
        assert_true(llmux_provider_probe(name, dirs, NULL, err, ERRLEN) < 0);
        assert_contains(err, bad[i].msg);
    }
    scratch_free(&s);
}

/* A descriptor's core settings are its requests' defaults: over the
 * client's options, under the config string's own keys. */
static void test_descriptor_settings(void **state)
{
    /* v1 sets a request path; good does not */
    static const char conf[] = "module = v1\n"
                               "timeout = 2.5\n"
                               "max_retries = 0\n"
                               "auth = none\n"
                               "api_key = shared\n"
                               "x-opt = kept\n";
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    llmux__settings d, set;
    llmux__prepared prep;
    llmux_request *r;
    char dirs[512];
    scratch s;
    (void)state;
    scratch_init(&s);
    snprintf(dirs, sizeof dirs, "%s:%s", s.dir, TDIR);
    scratch_write(&s, "withset.conf", conf, sizeof conf - 1);
    o.timeout_ms = 9000;
    o.max_retries = 5;
    assert_int_equal(llmux__settings_defaults(&o, &d, NULL, 0), 0);

    assert_int_equal(llmux_request_new(&r, LLMUX_OP_CHAT, "withset/m"), 0);
    assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_USER, "hi"), 0);
    assert_int_equal(llmux__prepare_ex(r, &d, &set, dirs, NULL, 0, &prep), 0);
    assert_int_equal(set.timeout_ms, 2500);
    assert_int_equal(set.max_retries, 0);
    assert_string_equal(set.auth, "none");
    assert_int_equal(prep.auth, LLMUX_AUTH_NONE);
    assert_int_equal(set.connect_timeout_ms, 10000); /* not in it */
    assert_string_equal(prep.api_key, "shared");
    /* the plugin still gets its own options, and none of the core's */
    assert_int_equal(r->n_popts, 1);
    assert_string_equal(r->popts[0].key, "x-opt");
    llmux__prepared_free(&prep);
    llmux_request_free(r);

    assert_int_equal(llmux_request_new(&r, LLMUX_OP_CHAT,
                                       "withset/m;timeout=1;max_retries=3"),
                     0);
    assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_USER, "hi"), 0);
    assert_int_equal(llmux__prepare_ex(r, &d, &set, dirs, NULL, 0, &prep), 0);
    assert_int_equal(set.timeout_ms, 1000);
    assert_int_equal(set.max_retries, 3);
    llmux__prepared_free(&prep);
    llmux_request_free(r);

    /* the config string's api_key_env wins over the descriptor's key */
    setenv("LLMUX_TEAM_KEY", "team", 1);
    assert_int_equal(llmux_request_new(&r, LLMUX_OP_CHAT,
                                       "withset/m;api_key_env=LLMUX_TEAM_KEY"),
                     0);
    assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_USER, "hi"), 0);
    assert_int_equal(llmux__prepare_ex(r, &d, &set, dirs, NULL, 0, &prep), 0);
    assert_string_equal(prep.api_key, "team");
    llmux__prepared_free(&prep);
    llmux_request_free(r);
    unsetenv("LLMUX_TEAM_KEY");

    /* another provider keeps the client's */
    assert_int_equal(llmux_request_new(&r, LLMUX_OP_CHAT, "good/m"), 0);
    assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_USER, "hi"), 0);
    (void)llmux__prepare_ex(r, &d, &set, dirs, NULL, 0, &prep);
    assert_int_equal(set.timeout_ms, 9000);
    assert_int_equal(set.max_retries, 5);
    llmux__prepared_free(&prep);
    llmux_request_free(r);
    llmux__settings_free_defaults(&d);
    scratch_free(&s);
}

/* A module that lists descriptor-only options has its descriptors' keys
 * checked: a misspelt one fails the load by name; those options are not
 * a config string's. */
static void test_descriptor_keys_checked(void **state)
{
    static const char typo[] = "module = openai\n"
                               "base_url = http://x.invalid/v1\n"
                               "organisation = org-1\n";
    static const char ok[] = "module = openai\n"
                             "base_url = http://x.invalid/v1\n"
                             "chat_path = /chat\n"
                             "max_tokens_field = max_tokens\n"
                             "organization = org-1\n"
                             "timeout = 30\n";
    const llmux__provider *p;
    llmux__prepared prep;
    llmux_request *r;
    char err[ERRLEN], dirs[512];
    scratch s;
    (void)state;
    scratch_init(&s);
    snprintf(dirs, sizeof dirs, "%s:%s", s.dir, LLMUX_BUILD_PLUGIN_DIR);
    scratch_write(&s, "typo.conf", typo, sizeof typo - 1);
    scratch_write(&s, "okd.conf", ok, sizeof ok - 1);
    memset(err, 0, sizeof err);
    assert_int_equal(llmux_provider_probe("typo", dirs, NULL, err, ERRLEN),
                     LLMUX_ECONFIG);
    assert_contains(err, "typo.conf: unknown key \"organisation\" (module "
                         "openai reads: organization, project");
    assert_contains(err, "chat_path");
    assert_contains(err, "the core's: base_url");
    assert_int_equal(llmux__provider_get("okd", dirs, &p, err, ERRLEN), 0);
    /* the dialect read its path; the header option goes with requests */
    assert_int_equal(llmux_request_new(&r, LLMUX_OP_CHAT, "okd/m;api_key=k"),
                     0);
    assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_USER, "hi"), 0);
    assert_int_equal(llmux__prepare_ex(r, NULL, NULL, dirs, NULL, 0, &prep), 0);
    assert_string_equal(prep.url, "http://x.invalid/v1/chat");
    llmux__prepared_free(&prep);
    llmux_request_free(r);
    /* a descriptor-only key is not a config string's */
    assert_int_equal(llmux_request_new(&r, LLMUX_OP_CHAT,
                                       "okd/m;api_key=k;chat_path=/other"),
                     0);
    assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_USER, "hi"), 0);
    assert_int_equal(llmux__prepare_ex(r, NULL, NULL, dirs, NULL, 0, &prep),
                     LLMUX_ECONFIG);
    assert_contains(llmux_request_errmsg(r), "unknown option \"chat_path\"");
    assert_not_contains(llmux_request_errmsg(r), "models_path");
    llmux__prepared_free(&prep);
    llmux_request_free(r);
    scratch_free(&s);
}

static void test_descriptor_garbage(void **state)
{
    static const char base[] = "# alias\nmodule = good\nbase_url = http://t\n"
                               "flavour = x\n";
    char err[ERRLEN], name[64], buf[512], dirs[512];
    scratch s;
    unsigned seed = 12345;
    size_t i, j, len;
    size_t complete = (size_t)(strstr(base, "good") + 4 - base);
    (void)state;
    scratch_init(&s);
    snprintf(dirs, sizeof dirs, "%s:%s", s.dir, TDIR);
    /* every truncation of a good descriptor: loads or fails cleanly */
    for (i = 0; i < sizeof base - 1; i += 3) {
        int rc;
        snprintf(name, sizeof name, "trunc%zu.conf", i);
        scratch_write(&s, name, base, i);
        *strrchr(name, '.') = '\0';
        rc = llmux_provider_probe(name, dirs, NULL, err, ERRLEN);
        assert_true(rc == 0 || rc == LLMUX_ECONFIG || rc == LLMUX_ENOPROVIDER);
        if (i < complete) /* "module = good" not complete yet */
            assert_int_not_equal(rc, 0);
    }
    scratch_free(&s);
    /* random bytes */
    scratch_init(&s);
    snprintf(dirs, sizeof dirs, "%s:%s", s.dir, TDIR);
    for (i = 0; i < 40; i++) {
        int rc;
        len = (i * 37) % sizeof buf;
        for (j = 0; j < len; j++) {
            seed = seed * 1103515245u + 12345u;
            buf[j] = (char)(seed >> 16);
        }
        snprintf(name, sizeof name, "rnd%zu.conf", i);
        scratch_write(&s, name, buf, len);
        *strrchr(name, '.') = '\0';
        rc = llmux_provider_probe(name, dirs, NULL, err, ERRLEN);
        assert_true(rc == LLMUX_ECONFIG || rc == LLMUX_ENOPROVIDER);
        assert_true(strlen(err) > 0);
    }
    scratch_free(&s);
}

static void test_truncated_elf(void **state)
{
    char *elf, err[ERRLEN], name[64];
    size_t len, cut;
    scratch s;
    int n = 0;
    (void)state;
    elf = read_file(MOD("good"), &len);
    scratch_init(&s);
    /* cut the good module everywhere: an error naming the file, or (once
     * only unmapped data such as the symbol table is lost) a load; never a
     * crash (glibc's dlopen alone dies with SIGBUS on some of these) */
    for (cut = 1; cut < len; cut += cut < 128 ? 13 : 241) {
        const char *path;
        int rc;
        if (s.n == 60) {
            llmux__providers_cleanup();
            scratch_free(&s);
            scratch_init(&s);
        }
        snprintf(name, sizeof name, "cut%zu" TESTMOD_EXT, cut);
        path = scratch_write(&s, name, elf, cut);
        snprintf(name, sizeof name, "cut%zu", cut);
        rc = llmux_provider_probe(name, s.dir, NULL, err, ERRLEN);
        if (cut <= 4096) {
            if (rc != LLMUX_EPLUGIN)
                fail_msg("cut at %zu: %s (%s)", cut, llmux_err_name(rc), err);
            assert_contains(err, path);
            assert_contains(err, "cannot load module");
        } else {
            assert_true(rc == 0 || rc == LLMUX_EPLUGIN ||
                        rc == LLMUX_ENOTPLUGIN);
        }
        n++;
    }
    assert_true(n > 20);
    scratch_free(&s);
    free(elf);
}

static void *probe_thread(void *arg)
{
    const llmux__provider **out = arg;
    char err[ERRLEN];
    int i;
    for (i = 0; i < 50; i++) {
        const llmux__provider *p;
        if (llmux__provider_get(i % 2 ? "good" : "alias", TDIR, &p, err,
                                ERRLEN) != 0)
            return NULL;
        if (i % 2 == 0)
            out[0] = p;
        else
            out[1] = p;
    }
    return arg;
}

static void test_threads(void **state)
{
    pthread_t t[8];
    const llmux__provider *got[8][2];
    int i;
    (void)state;
    memset(got, 0, sizeof got);
    for (i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&t[i], NULL, probe_thread, got[i]), 0);
    for (i = 0; i < 8; i++) {
        void *r;
        assert_int_equal(pthread_join(t[i], &r), 0);
        assert_non_null(r);
    }
    /* every thread saw the one provider per name */
    for (i = 1; i < 8; i++) {
        assert_ptr_equal(got[i][0], got[0][0]);
        assert_ptr_equal(got[i][1], got[0][1]);
    }
    assert_ptr_not_equal(got[0][0], got[0][1]);
}

static void test_cleanup_and_reload(void **state)
{
    llmux_provider_info info;
    char err[ERRLEN];
    int round;
    (void)state;
    for (round = 0; round < 3; round++) {
        assert_int_equal(
            llmux_provider_probe("alias", TDIR, &info, err, ERRLEN), 0);
        assert_string_equal(info.base_url, "http://alias.invalid/v2");
        assert_int_equal(
            llmux_provider_probe("bad_abi", TDIR, &info, err, ERRLEN),
            LLMUX_EABI);
        llmux__providers_cleanup();
    }
    llmux__providers_cleanup(); /* twice is harmless */
    assert_ptr_equal(llmux_host_table(), &llmux__host);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_caps_string, teardown),
        cmocka_unit_test_teardown(test_plugin_dirs, teardown),
        cmocka_unit_test_teardown(test_plugin_dirs_list, teardown),
        cmocka_unit_test_teardown(test_probe_good, teardown),
        cmocka_unit_test_teardown(test_probe_cached, teardown),
        cmocka_unit_test_teardown(test_descriptor_alias, teardown),
        cmocka_unit_test_teardown(test_broken_modules, teardown),
        cmocka_unit_test_teardown(test_v1_table_loads, teardown),
        cmocka_unit_test_teardown(test_broken_descriptors, teardown),
        cmocka_unit_test_teardown(test_ltx_entry, teardown),
        cmocka_unit_test_teardown(test_not_found_lists_dirs, teardown),
        cmocka_unit_test_teardown(test_bad_names, teardown),
        cmocka_unit_test_teardown(test_direct_path, teardown),
        cmocka_unit_test_teardown(test_register, teardown),
        cmocka_unit_test_teardown(test_register_shadows_plugin, teardown),
        cmocka_unit_test_teardown(test_register_checks, teardown),
        cmocka_unit_test_teardown(test_list, teardown),
        cmocka_unit_test_teardown(test_list_stop_and_shadow, teardown),
        cmocka_unit_test_teardown(test_shipped_descriptors, teardown),
        cmocka_unit_test_teardown(test_descriptor_parsing, teardown),
        cmocka_unit_test_teardown(test_descriptor_settings, teardown),
        cmocka_unit_test_teardown(test_descriptor_keys_checked, teardown),
        cmocka_unit_test_teardown(test_descriptor_garbage, teardown),
        cmocka_unit_test_teardown(test_truncated_elf, teardown),
        cmocka_unit_test_teardown(test_threads, teardown),
        cmocka_unit_test_teardown(test_cleanup_and_reload, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
