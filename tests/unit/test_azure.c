/*
 * tests/unit/test_azure.c: the Azure OpenAI plugin (providers/azure),
 * driven through the core as the engine drives it. Requests are prepared
 * with llmux__prepare, which loads plugins.d/azure.so, and the exact HTTP
 * request is inspected: the path of each surface (deployments with
 * api-version, v1 without), the api-key header, the body, the encoding
 * of a hostile deployment name and the environment variables. Answers,
 * errors and streams shaped as Azure sends them (WIRE.md §8.1: filter
 * results, a stream opening with an empty-choices preamble) are decoded
 * through the table of plugin_test.c; streams are cut at every offset.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin_test.h"

#define URL   "http://127.0.0.1:9/res"
#define BASE  "base_url=" URL ";api_key=k-test"
#define DATED "api_version=2024-10-21"

static llmux_request *stream_req(llmux_op op, llmux__prepared *p);
static llmux_request *answer_req(llmux_op op, const char *opts);

/* The plugin under test, for the runners of plugin_test.c. */
static const pt_plugin az = {"azure", LLMUX_FRAMING_SSE, 0, stream_req,
                             answer_req};

/* The variables the plugin and the core read for azure, saved and
 * cleared by env_clear, put back by env_restore. */
static const char *const env_vars[] = {
    "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "OPENAI_API_VERSION"};
#define N_ENV (sizeof env_vars / sizeof env_vars[0])

static void env_clear(char **saved)
{
    size_t i;
    for (i = 0; i < N_ENV; i++) {
        saved[i] = getenv(env_vars[i]) ? strdup(getenv(env_vars[i])) : NULL;
        unsetenv(env_vars[i]);
    }
}

static void env_restore(char **saved)
{
    size_t i;
    for (i = 0; i < N_ENV; i++) {
        if (saved[i])
            setenv(env_vars[i], saved[i], 1);
        else
            unsetenv(env_vars[i]);
        free(saved[i]);
    }
}

static llmux_request *answer_req(llmux_op op, const char *opts)
{
    char spec[512];
    snprintf(spec, sizeof spec, "azure/dep-1;" BASE ";" DATED "%s",
             opts ? opts : "");
    return pt_op_req(op, spec);
}

static llmux_request *stream_req(llmux_op op, llmux__prepared *p)
{
    llmux_request *r = answer_req(op, NULL);
    assert_int_equal(llmux_request_set_stream(r, 1), 0);
    prep_ok(r, p);
    return r;
}

/* Prepares a request of `op` for config string `spec` (with the least
 * content) and checks its URL, method and credential header. */
static void check_request(llmux_op op, const char *spec, const char *url,
                          const char *method)
{
    llmux_request *r = pt_op_req(op, spec);
    llmux__prepared p;
    prep_ok(r, &p);
    assert_string_equal(p.url, url);
    assert_string_equal(p.http.method, method);
    assert_string_equal(header(&p, "api-key"), "k-test");
    assert_null(header(&p, "Authorization"));
    llmux__prepared_free(&p);
    llmux_request_free(r);
}

/* ---- encoding -------------------------------------------------------------*/

static void test_encode_deployments(void **state)
{
    llmux_request *r;
    llmux__prepared p;
    json_object *b;
    (void)state;
    r = new_req(LLMUX_OP_CHAT, "azure/gpt-4o-prod;" BASE ";" DATED);
    assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_USER, "2+2?"), 0);
    assert_int_equal(llmux_request_set_max_tokens(r, 100), 0);
    assert_int_equal(llmux_request_set_temperature(r, 0.5), 0);
    prep_ok(r, &p);
    assert_string_equal(p.url, URL "/openai/deployments/gpt-4o-prod/chat/"
                                   "completions?api-version=2024-10-21");
    assert_string_equal(p.http.method, "POST");
    assert_string_equal(header(&p, "api-key"), "k-test");
    assert_null(header(&p, "Authorization"));
    b = body_of(&p);
    assert_json_eq(b, "{\"model\":\"gpt-4o-prod\",\"messages\":[{\"role\":"
                      "\"user\",\"content\":\"2+2?\"}],"
                      "\"max_completion_tokens\":100,\"temperature\":0.5}");
    json_object_put(b);
    llmux__prepared_free(&p);
    /* streamed: OpenAI's stream fields, same path */
    assert_int_equal(llmux_request_set_stream(r, 1), 0);
    prep_ok(r, &p);
    assert_string_equal(p.url, URL "/openai/deployments/gpt-4o-prod/chat/"
                                   "completions?api-version=2024-10-21");
    b = body_of(&p);
    assert_true(json_object_get_boolean(jget(b, "stream")));
    assert_true(
        json_object_get_boolean(jget(b, "stream_options.include_usage")));
    json_object_put(b);
    llmux__prepared_free(&p);
    llmux_request_free(r);
    /* the other operations */
    check_request(LLMUX_OP_COMPLETE, "azure/inst;" BASE ";" DATED,
                  URL "/openai/deployments/inst/completions"
                      "?api-version=2024-10-21",
                  "POST");
    check_request(LLMUX_OP_EMBED, "azure/emb;" BASE ";" DATED,
                  URL "/openai/deployments/emb/embeddings"
                      "?api-version=2024-10-21",
                  "POST");
    check_request(LLMUX_OP_MODELS, "azure;" BASE ";" DATED,
                  URL "/openai/models?api-version=2024-10-21", "GET");
    /* a preview version is a token like any other */
    check_request(LLMUX_OP_CHAT,
                  "azure/d;" BASE ";api_version=2025-04-01-preview",
                  URL "/openai/deployments/d/chat/completions"
                      "?api-version=2025-04-01-preview",
                  "POST");
}

static void test_encode_v1(void **state)
{
    char *saved[N_ENV];
    llmux_request *r;
    llmux__prepared p;
    json_object *b;
    (void)state;
    env_clear(saved);
    check_request(LLMUX_OP_CHAT, "azure/gpt-4o-prod;" BASE ";api_version=v1",
                  URL "/openai/v1/chat/completions", "POST");
    /* no version anywhere: the v1 API */
    r = pt_op_req(LLMUX_OP_CHAT, "azure/gpt-4o-prod;" BASE);
    prep_ok(r, &p);
    assert_string_equal(p.url, URL "/openai/v1/chat/completions");
    b = body_of(&p);
    /* the deployment is the body's model */
    assert_string_equal(jstr(b, "model"), "gpt-4o-prod");
    json_object_put(b);
    llmux__prepared_free(&p);
    llmux_request_free(r);
    check_request(LLMUX_OP_COMPLETE, "azure/inst;" BASE,
                  URL "/openai/v1/completions", "POST");
    check_request(LLMUX_OP_EMBED, "azure/emb;" BASE,
                  URL "/openai/v1/embeddings", "POST");
    check_request(LLMUX_OP_MODELS, "azure;" BASE, URL "/openai/v1/models",
                  "GET");
    /* "V1" is v1 too: versions are compared without case */
    check_request(LLMUX_OP_CHAT, "azure/d;" BASE ";api_version=V1",
                  URL "/openai/v1/chat/completions", "POST");
    env_restore(saved);
}

/* A deployment name from request JSON (the untrusted kind: its "model"
 * names provider and model, no options) cannot leave its path segment. */
static void test_encode_hostile_deployment(void **state)
{
    static const struct {
        const char *model, *segment;
    } cases[] = {
        {"x/../../foo?y", "x%2F..%2F..%2Ffoo%3Fy"},
        {"a#b c%d", "a%23b%20c%25d"},
        {"d&api-version=x", "d%26api-version%3Dx"},
        {"caf\xc3\xa9", "caf%C3%A9"},
        {"\\..\\", "%5C..%5C"},
        {"ok-1.2_3~", "ok-1.2_3~"},
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char model[128], json[256], url[512];
        llmux_request *r = NULL;
        llmux__prepared p;
        json_object *j = json_object_new_object(), *b;
        snprintf(model, sizeof model, "azure/%s", cases[i].model);
        json_object_object_add(j, "model", json_object_new_string(model));
        json_object_object_add(j, "messages",
                               json_tokener_parse("[{\"role\":\"user\","
                                                  "\"content\":\"x\"}]"));
        snprintf(json, sizeof json, "%s", json_object_to_json_string(j));
        json_object_put(j);
        assert_int_equal(llmux_request_new_json(&r, NULL, json, strlen(json)),
                         0);
        assert_int_equal(llmux_request_set_option(r, "base_url", URL), 0);
        assert_int_equal(llmux_request_set_option(r, "api_key", "k"), 0);
        assert_int_equal(
            llmux_request_set_option(r, "api_version", "2024-10-21"), 0);
        assert_non_null(llmux_request_model(r));
        assert_string_equal(llmux_request_model(r), cases[i].model);
        prep_ok(r, &p);
        snprintf(url, sizeof url,
                 URL "/openai/deployments/%s/chat/completions"
                     "?api-version=2024-10-21",
                 cases[i].segment);
        assert_string_equal(p.url, url);
        /* the body keeps the name as it is */
        b = body_of(&p);
        assert_string_equal(jstr(b, "model"), cases[i].model);
        json_object_put(b);
        llmux__prepared_free(&p);
        llmux_request_free(r);
    }
}

/* Names no path segment can hold are refused, not sent. */
static void test_encode_refused_deployments(void **state)
{
    static const char *const dots[] = {".", ".."};
    size_t i;
    llmux_request *r;
    (void)state;
    for (i = 0; i < 2; i++) {
        r = pt_op_req(LLMUX_OP_CHAT, "azure;" BASE ";" DATED);
        assert_int_equal(llmux_request_set_option(r, "model", dots[i]), 0);
        pt_prep_fails(r, LLMUX_EINVAL, "azure: invalid deployment name");
        llmux_request_free(r);
    }
    /* no deployment at all: the core refuses it on both surfaces */
    r = pt_op_req(LLMUX_OP_CHAT, "azure;" BASE ";" DATED);
    pt_prep_fails(r, LLMUX_ECONFIG, "no model given");
    llmux_request_free(r);
    r = pt_op_req(LLMUX_OP_EMBED, "azure;" BASE ";api_version=v1");
    pt_prep_fails(r, LLMUX_ECONFIG, "no model given");
    llmux_request_free(r);
}

/* The api version goes into the query as it is, so it must be a token. */
static void test_encode_api_version_checked(void **state)
{
    static const char *const bad[] = {
        "2024-10-21&foo=bar",
        "2024-10-21#x",
        "2024 10 21",
        "v1/../x",
        "2024-10-21?",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxx"};
    char *saved[N_ENV];
    size_t i;
    llmux_request *r;
    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = pt_op_req(LLMUX_OP_CHAT, "azure/d;" BASE);
        assert_int_equal(llmux_request_set_option(r, "api_version", bad[i]), 0);
        pt_prep_fails(r, LLMUX_EINVAL, "azure: api_version must be");
        llmux_request_free(r);
    }
    /* from the environment too */
    env_clear(saved);
    setenv("OPENAI_API_VERSION", "2024-10-21&x=1", 1);
    r = pt_op_req(LLMUX_OP_CHAT, "azure/d;" BASE);
    pt_prep_fails(r, LLMUX_EINVAL, "azure: api_version must be");
    llmux_request_free(r);
    env_restore(saved);
}

static void test_encode_environment(void **state)
{
    char *saved[N_ENV];
    llmux_request *r;
    llmux__prepared p;
    (void)state;
    env_clear(saved);
    /* no base URL anywhere: the core's clear configuration error */
    r = pt_op_req(LLMUX_OP_CHAT, "azure/d;api_key=k");
    pt_prep_fails(r, LLMUX_ECONFIG,
                  "no base URL (set base_url=... in the config string, or "
                  "AZURE_OPENAI_ENDPOINT)");
    llmux_request_free(r);
    /* the endpoint, the key and the version from the environment */
    setenv("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com/", 1);
    setenv("AZURE_OPENAI_API_KEY", "env-key", 1);
    setenv("OPENAI_API_VERSION", "2024-06-01", 1);
    r = pt_op_req(LLMUX_OP_CHAT, "azure/d");
    prep_ok(r, &p);
    assert_string_equal(p.url, "https://res.openai.azure.com/openai/"
                               "deployments/d/chat/completions"
                               "?api-version=2024-06-01");
    assert_string_equal(header(&p, "api-key"), "env-key");
    assert_null(header(&p, "Authorization"));
    llmux__prepared_free(&p);
    llmux_request_free(r);
    /* api_version= wins over the environment, either way */
    r = pt_op_req(LLMUX_OP_CHAT, "azure/d;api_version=2024-10-21");
    prep_ok(r, &p);
    assert_string_equal(p.url, "https://res.openai.azure.com/openai/"
                               "deployments/d/chat/completions"
                               "?api-version=2024-10-21");
    llmux__prepared_free(&p);
    llmux_request_free(r);
    r = pt_op_req(LLMUX_OP_CHAT, "azure/d;api_version=v1");
    prep_ok(r, &p);
    assert_string_equal(p.url, "https://res.openai.azure.com/openai/v1/chat/"
                               "completions");
    llmux__prepared_free(&p);
    llmux_request_free(r);
    /* base_url= wins over AZURE_OPENAI_ENDPOINT */
    r = pt_op_req(LLMUX_OP_MODELS, "azure;base_url=" URL);
    prep_ok(r, &p);
    assert_string_equal(p.url, URL "/openai/models?api-version=2024-06-01");
    llmux__prepared_free(&p);
    llmux_request_free(r);
    /* an empty OPENAI_API_VERSION is no version: v1 */
    setenv("OPENAI_API_VERSION", "", 1);
    r = pt_op_req(LLMUX_OP_CHAT, "azure/d");
    prep_ok(r, &p);
    assert_string_equal(p.url, "https://res.openai.azure.com/openai/v1/chat/"
                               "completions");
    llmux__prepared_free(&p);
    llmux_request_free(r);
    /* no key: refused before anything is sent */
    unsetenv("AZURE_OPENAI_API_KEY");
    r = pt_op_req(LLMUX_OP_CHAT, "azure/d");
    pt_prep_fails(r, LLMUX_ENOKEY, NULL);
    llmux_request_free(r);
    env_restore(saved);
}

static void test_encode_options(void **state)
{
    llmux_request *r;
    llmux__prepared p;
    json_object *b;
    (void)state;
    r = pt_op_req(LLMUX_OP_CHAT,
                  "azure/d;" BASE ";" DATED ";user=u-1;service_tier=default;"
                  "reasoning_effort=low");
    prep_ok(r, &p);
    b = body_of(&p);
    assert_string_equal(jstr(b, "user"), "u-1");
    assert_string_equal(jstr(b, "service_tier"), "default");
    assert_string_equal(jstr(b, "reasoning_effort"), "low");
    /* the version is no body field */
    assert_false(jhas(b, "api_version"));
    assert_false(jhas(b, "api-version"));
    json_object_put(b);
    llmux__prepared_free(&p);
    llmux_request_free(r);
    r = pt_op_req(LLMUX_OP_EMBED, "azure/e;" BASE ";dimensions=256");
    prep_ok(r, &p);
    b = body_of(&p);
    assert_int_equal(jint(b, "dimensions"), 256);
    json_object_put(b);
    llmux__prepared_free(&p);
    llmux_request_free(r);
    /* a misspelt option is refused, naming it */
    r = pt_op_req(LLMUX_OP_CHAT, "azure/d;" BASE ";apiversion=2024-10-21");
    pt_prep_fails(r, LLMUX_ECONFIG, "apiversion");
    llmux_request_free(r);
}

/* The provider table: api-key, the hooks the core reads, the filter. */
static void test_provider_table(void **state)
{
    const llmux__provider *p;
    char err[256];
    (void)state;
    assert_int_equal(llmux__provider_get("azure", LLMUX_BUILD_PLUGIN_DIR, &p,
                                         err, sizeof err),
                     0);
    assert_true(LLMUX_PROVIDER_HAS(p->vt, auth_header));
    assert_string_equal(p->vt->auth_header, "api-key");
    assert_null(p->vt->default_base_url);
    assert_string_equal(p->vt->api_key_env, "AZURE_OPENAI_API_KEY");
    assert_string_equal(p->vt->base_url_env, "AZURE_OPENAI_ENDPOINT");
    assert_non_null(p->vt->rate_limits);
    assert_int_equal(p->vt->classify_error(p->provctx, 400, NULL,
                                           "content_filter",
                                           "The response was filtered"),
                     LLMUX_ERROR_KIND_FILTERED);
    assert_int_equal(p->vt->classify_error(p->provctx, 400, NULL,
                                           "context_length_exceeded",
                                           "too long"),
                     LLMUX_ERROR_KIND_CONTEXT_LENGTH);
    assert_int_equal(
        p->vt->classify_error(p->provctx, 401, NULL, "401", "Access denied"),
        LLMUX_ERROR_KIND_OTHER);
}

/* ---- decoding -------------------------------------------------------------*/

#define SSE(payload) "data: " payload "\n\n"
#define SSE_DONE     "data: [DONE]\n\n"

#define FILTERS                                                                \
    "{\"hate\":{\"filtered\":false,\"severity\":\"safe\"},\"self_harm\":{"     \
    "\"filtered\":false,\"severity\":\"safe\"}}"
/* The stream's first event: filter results only (WIRE.md §8.1). */
#define PREAMBLE                                                               \
    "{\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\"" \
    ",\"prompt_filter_results\":[{\"prompt_index\":0,"                         \
    "\"content_filter_results\":" FILTERS "}],\"usage\":null}"
#define CHUNK(delta, finish)                                                   \
    "{\"choices\":[{\"content_filter_results\":" FILTERS ",\"delta\":" delta   \
    ",\"finish_reason\":" finish ",\"index\":0,\"logprobs\":null}],"           \
    "\"created\":1760000000,\"id\":\"chatcmpl-az1\",\"model\":"                \
    "\"gpt-4o-2024-11-20\",\"object\":\"chat.completion.chunk\","              \
    "\"system_fingerprint\":\"fp_az\",\"usage\":null}"
#define USAGE_CHUNK                                                            \
    "{\"choices\":[],\"created\":1760000000,\"id\":\"chatcmpl-az1\","          \
    "\"model\":\"gpt-4o-2024-11-20\",\"object\":\"chat.completion.chunk\","    \
    "\"usage\":{\"completion_tokens\":2,\"prompt_tokens\":9,"                  \
    "\"total_tokens\":11}}"
/* An annotation of the asynchronous filter: no delta, after the finish. */
#define ANNOTATION                                                             \
    "{\"choices\":[{\"index\":0,\"finish_reason\":null,"                       \
    "\"content_filter_results\":" FILTERS ",\"content_filter_offsets\":{"      \
    "\"check_offset\":0,\"start_offset\":0,\"end_offset\":9}}],\"created\":0," \
    "\"id\":\"\",\"model\":\"\",\"object\":\"\",\"usage\":null}"

static const char answer_body[] =
    "{\"choices\":[{\"content_filter_results\":" FILTERS
    ",\"finish_reason\":\"stop\",\"index\":0,\"logprobs\":null,"
    "\"message\":{\"content\":\"Hello.\",\"refusal\":null,\"role\":"
    "\"assistant\"}}],\"created\":1760000000,\"id\":\"chatcmpl-az0\","
    "\"model\":\"gpt-4o-2024-11-20\",\"object\":\"chat.completion\","
    "\"prompt_filter_results\":[{\"prompt_index\":0,"
    "\"content_filter_results\":" FILTERS "}],\"system_fingerprint\":"
    "\"fp_az\",\"usage\":{\"completion_tokens\":2,\"prompt_tokens\":9,"
    "\"total_tokens\":11}}";

static const pt_case cases[] = {
    {.name = "decode an answer with filter results",
     .op = LLMUX_OP_CHAT,
     .body = answer_body,
     .want = "{'text':'Hello.','finish':'stop','id':'chatcmpl-az0',"
             "'model':'gpt-4o-2024-11-20','created':1760000000,"
             "'usage':{'prompt_tokens':9,'completion_tokens':2},"
             "'json':{'prompt_filter_results':[{'prompt_index':0,"
             "'content_filter_results':" FILTERS "}],"
             "'choices':[{'content_filter_results':" FILTERS "}]}}"},
    /* the preamble alone decodes without error */
    {.name = "decode the filter preamble event",
     .mode = PT_EVENT,
     .op = LLMUX_OP_CHAT,
     .body = PREAMBLE},
    {.name = "stream with the filter preamble",
     .mode = PT_STREAM,
     .op = LLMUX_OP_CHAT,
     .body = SSE(PREAMBLE)
         SSE(CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null"))
             SSE(CHUNK("{\"content\":\"Hel\"}", "null"))
                 SSE(CHUNK("{\"content\":\"lo.\"}", "null"))
                     SSE(CHUNK("{}", "\"stop\"")) SSE(USAGE_CHUNK) SSE_DONE,
     /* id, model and created are the real chunks', not the preamble's */
     .want = "{'text':'Hello.','finish':'stop','id':'chatcmpl-az1',"
             "'model':'gpt-4o-2024-11-20','created':1760000000,"
             "'fingerprint':'fp_az','usage':{'total_tokens':11},"
             "'done':1,'events':6,'error':null,"
             "'json':{'prompt_filter_results':[{'prompt_index':0,"
             "'content_filter_results':" FILTERS "}]}}"},
    {.name = "stream with an annotation after the finish",
     .mode = PT_STREAM,
     .op = LLMUX_OP_CHAT,
     .body = SSE(PREAMBLE) SSE(CHUNK("{\"content\":\"Hello.\"}", "null"))
         SSE(CHUNK("{}", "\"stop\"")) SSE(ANNOTATION) SSE_DONE,
     .want = "{'text':'Hello.','finish':'stop','id':'chatcmpl-az1',"
             "'created':1760000000,'done':1,'events':4,'error':null}"},
    /* a filtered completion: 200, finish_reason content_filter */
    {.name = "stream a completion the filter stopped",
     .mode = PT_STREAM,
     .op = LLMUX_OP_CHAT,
     .body = SSE(PREAMBLE) SSE(CHUNK("{\"content\":\"Once\"}", "null"))
         SSE(CHUNK("{}", "\"content_filter\"")) SSE_DONE,
     .want = "{'text':'Once','finish':'content_filter',"
             "'finish_raw':'content_filter','done':1,'error':null}"},
    /* a filtered prompt: 400, code content_filter, type null */
    {.name = "decode error: prompt filtered",
     .op = LLMUX_OP_CHAT,
     .status = 400,
     .code = LLMUX_EPROVIDER,
     .body = "{\"error\":{\"message\":\"The response was filtered due to the "
             "prompt triggering Azure OpenAI's content management policy.\","
             "\"type\":null,\"param\":\"prompt\",\"code\":\"content_filter\","
             "\"status\":400,\"innererror\":{\"code\":"
             "\"ResponsibleAIPolicyViolation\",\"content_filter_result\":{"
             "\"hate\":{\"filtered\":true,\"severity\":\"high\"}}}}}",
     .msg = "The response was filtered",
     .want = "{'error':{'provider_code':'content_filter','param':'prompt',"
             "'http_status':400}}"},
    {.name = "decode error: wrong key",
     .op = LLMUX_OP_CHAT,
     .status = 401,
     .code = LLMUX_EAUTH,
     .body = "{\"error\":{\"code\":\"401\",\"message\":\"Access denied due to "
             "invalid subscription key or wrong API endpoint. Make sure to "
             "provide a valid key for an active subscription and use a "
             "correct regional API endpoint for your resource.\"}}",
     .msg = "Access denied",
     .want = "{'error':{'provider_code':'401','http_status':401}}"},
    {.name = "decode error: resource not found",
     .op = LLMUX_OP_CHAT,
     .status = 404,
     .code = LLMUX_EPROVIDER,
     .body = "{\"error\":{\"code\":\"404\",\"message\":\"Resource not "
             "found\"}}",
     .msg = "Resource not found",
     .want = "{'error':{'provider_code':'404','http_status':404}}"},
};

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_deployments),
        cmocka_unit_test(test_encode_v1),
        cmocka_unit_test(test_encode_hostile_deployment),
        cmocka_unit_test(test_encode_refused_deployments),
        cmocka_unit_test(test_encode_api_version_checked),
        cmocka_unit_test(test_encode_environment),
        cmocka_unit_test(test_encode_options),
        cmocka_unit_test(test_provider_table),
    };
    return pt_run_tests(&az, tests, sizeof tests / sizeof tests[0], cases,
                        sizeof cases / sizeof cases[0]);
}
