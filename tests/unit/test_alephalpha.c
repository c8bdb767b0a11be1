/*
 * tests/unit/test_alephalpha.c: the Aleph Alpha plugin
 * (providers/alephalpha), driven through the core as the engine drives it:
 * requests built with the public setters are prepared with llmux__prepare
 * (which loads plugins.d/alephalpha.so) and the HTTP request is checked
 * field by field; the recorded examples of WIRE.md section 4 are decoded
 * with llmux__decode_answer, and streams are split by llmux__framer at
 * every byte offset, decoded with llmux__decode_event and folded with
 * llmux__out_merge.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugin_test.h"

#define SPEC "alephalpha/luminous-base;base_url=http://127.0.0.1:9/aleph"
#define KEY  ";api_key=aa-test"
#define URL  "http://127.0.0.1:9/aleph"

/* ---- recorded examples (WIRE.md section 4) --------------------------------
 */

static const char complete_body[] =
    "{\"completions\":[{\"index\":0,\"completion\":\"\\n\\nI\xe2\x80\x99m a "
    "little\",\"finish_reason\":\"maximum_tokens\"}],\"model_version\":"
    "\"2022-04\",\"num_tokens_prompt_total\":4,\"num_tokens_generated\":7}";

static const char chat_body[] =
    "{\"id\":\"10a59fb4-9322-4875-8280-9cad53811e99\",\"choices\":[{"
    "\"finish_reason\":\"stop\",\"index\":0,\"message\":{\"role\":"
    "\"assistant\",\"content\":\"I'm just a computer program, ...\"},"
    "\"logprobs\":null}],\"created\":1754484237,\"model\":"
    "\"llama-3.1-8b-instruct\",\"system_fingerprint\":\".unknown.\","
    "\"object\":\"chat.completion\",\"usage\":{\"prompt_tokens\":16,"
    "\"completion_tokens\":50,\"total_tokens\":66}}";

static const char semantic_body[] =
    "{\"model_version\":\"2022-04\",\"embedding\":[-2.765625,0.5,1,"
    "0.001953125],\"num_tokens_prompt_total\":1}";

static const char batch_body[] =
    "{\"model_version\":\"2022-04\",\"embeddings\":[[1.5,-2],[0.25,3],"
    "[4,0]],\"num_tokens_prompt_total\":5}";

static const char layers_body[] =
    "{\"model_version\":\"2022-04\",\"embeddings\":{\"layer_0\":{\"mean\":"
    "[0.5,-1.25],\"max\":[9,9]},\"layer_40\":{\"mean\":[7,7],\"max\":"
    "[8,8]}},\"tokens\":null,\"num_tokens_prompt_total\":1}";

static const char openai_embed_body[] =
    "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"embedding\":"
    "[0.125,-0.5],\"index\":0}],\"model\":\"qwen3-embedding-0.6b\","
    "\"usage\":{\"prompt_tokens\":8,\"total_tokens\":8}}";

static const char tokenize_body[] =
    "{\"tokens\":[\"\xc4\xa0Hello\"],\"token_ids\":[49222]}";

static const char detokenize_body[] = "{\"result\":\"tiss\"}";

#define EVAL_RESULT                                                            \
    "{\"log_probability\":-11.3125,\"log_perplexity\":11.3125,"                \
    "\"log_perplexity_per_token\":11.3125,\"log_perplexity_per_character\":"   \
    "2.2625,\"correct_greedy\":false,\"token_count\":1,\"character_count\":5," \
    "\"completion\":\",\"}"
static const char eval_result[] = EVAL_RESULT;
/* The evaluate answer holding it. */
#define EVAL_BODY                                                              \
    "{\"model_version\":\"2022-04\",\"result\":" EVAL_RESULT                   \
    ",\"num_tokens_prompt_total\":2}"

static const char models_body[] =
    "[{\"name\":\"luminous-base\",\"description\":\"...\","
    "\"max_context_size\":2048,\"hostings\":[],\"image_support\":true,"
    "\"qa_support\":false,\"summarization_support\":false,"
    "\"embedding_types\":[\"symmetric_128\"],\"maximum_completion_tokens\":"
    "8192,\"aligned\":false},{\"name\":\"llama-3.1-8b-instruct\"},"
    "{\"description\":\"no name\"},{\"name\":\"pharia-1-llm-7b-control\"}]";

/* The recorded /complete stream: typed items, no [DONE]. */
static const char complete_stream[] =
    "data: {\"type\":\"stream_chunk\",\"index\":0,\"completion\":\" The New "
    "York Times, May 15\"}\n\n"
    "data: {\"type\":\"stream_summary\",\"index\":0,\"model_version\":"
    "\"2022-04\",\"finish_reason\":\"maximum_tokens\"}\n\n"
    "data: {\"type\":\"completion_summary\",\"num_tokens_prompt_total\":1,"
    "\"num_tokens_generated\":7}\n\n";

/* The recorded chat stream with include_usage (middle filled in). */
#define CCHUNK(delta, fr, rest)                                                \
    "data: {\"id\":\"d207a5e4\",\"choices\":[{\"finish_reason\":" fr           \
    ",\"index\":0,\"delta\":" delta ",\"logprobs\":null}],\"created\":"        \
    "1754484242,\"model\":\"llama-3.1-8b-instruct\",\"system_"                 \
    "fingerprint\":" rest                                                      \
    ",\"object\":\"chat.completion.chunk\",\"usage\":null}\n\n"
static const char chat_stream[] =
    CCHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null", "null")
        CCHUNK("{\"content\":\"I'm just\"}", "null", "null")
            CCHUNK("{\"content\":\" a program.\"}", "null", "null")
                CCHUNK("{}", "\"stop\"",
                       "\".unknown.\"") "data: "
                                        "{\"id\":\"d207a5e4\",\"choices\":[],"
                                        "\"created\":1754484242,"
                                        "\"model\":\"llama-3.1-8b-instruct\","
                                        "\"system_fingerprint\":"
                                        "\".unknown.\",\"object\":\"chat."
                                        "completion.chunk\",\"usage\":{"
                                        "\"prompt_tokens\":16,\"completion_"
                                        "tokens\":50,\"total_tokens\":66}}\n\n"
                                        "data: [DONE]\n\n";

/* ---- helpers ---------------------------------------------------------------
 */

static llmux_request *stream_req(llmux_op op, llmux__prepared *p);
static llmux_request *op_req(llmux_op op, const char *opts);

/* The plugin under test, for the runners of plugin_test.c. */
static const pt_plugin aa = {"alephalpha", LLMUX_FRAMING_SSE, 1, stream_req,
                             op_req};

/* A request of `op` with the minimal content it needs; `opts` is appended
 * to the config string. */
static llmux_request *op_req(llmux_op op, const char *opts)
{
    char spec[512];
    llmux_request *r;
    snprintf(spec, sizeof spec, SPEC KEY "%s", opts ? opts : "");
    r = new_req(op, spec);
    switch (op) {
    case LLMUX_OP_CHAT:
        assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_USER, "Hi"),
                         0);
        break;
    case LLMUX_OP_COMPLETE:
    case LLMUX_OP_TOKENIZE:
        assert_int_equal(llmux_request_set_prompt(r, "Hello"), 0);
        break;
    case LLMUX_OP_EVALUATE:
        assert_int_equal(llmux_request_set_prompt(r, "Hello"), 0);
        assert_int_equal(llmux_request_set_expected(r, "world"), 0);
        break;
    case LLMUX_OP_DETOKENIZE:
        assert_int_equal(llmux_request_add_token_id(r, 4711), 0);
        break;
    case LLMUX_OP_EMBED:
        assert_int_equal(llmux_request_add_input(r, "An apple a day"), 0);
        break;
    default:
        break;
    }
    return r;
}

/* Prepares `r`, checks method, URL and exact body (NULL: none). */
static void check_request(llmux_request *r, const char *method, const char *url,
                          const char *body)
{
    llmux__prepared p;
    prep_ok(r, &p);
    assert_string_equal(p.http.method, method);
    assert_string_equal(p.url, url);
    assert_string_equal(header(&p, "Authorization"), "Bearer aa-test");
    if (body) {
        json_object *b = body_of(&p);
        assert_json_eq(b, body);
        assert_string_equal(header(&p, "Content-Type"), "application/json");
        json_object_put(b);
    } else {
        assert_null(p.http.body);
    }
    llmux__prepared_free(&p);
}

/* Decodes one complete answer for a fresh request of `op`. */
static llmux_response *decode_op(llmux_op op, const char *opts, long status,
                                 const char *body, size_t len, int *rc)
{
    return pt_decode(&aa, op_req(op, opts), op, status, body, len, rc);
}

static llmux_response *decode_str(llmux_op op, const char *opts,
                                  const char *body, int *rc)
{
    return decode_op(op, opts, 200, body, strlen(body), rc);
}

/* ---- encoding: chat -------------------------------------------------------
 */

static void test_encode_chat(void **state)
{
    llmux_request *r = new_req(LLMUX_OP_CHAT, SPEC KEY);
    (void)state;
    assert_int_equal(llmux_request_set_system(r, "Be brief."), 0);
    assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_USER, "Hi"), 0);
    assert_int_equal(llmux_request_set_max_tokens(r, 64), 0);
    assert_int_equal(llmux_request_set_temperature(r, 0.5), 0);
    assert_int_equal(llmux_request_set_top_p(r, 0.9), 0);
    assert_int_equal(llmux_request_add_stop(r, "END"), 0);
    check_request(r, "POST", URL "/chat/completions",
                  "{\"model\":\"luminous-base\",\"messages\":[{\"role\":"
                  "\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\","
                  "\"content\":\"Hi\"}],\"max_tokens\":64,\"temperature\":0.5,"
                  "\"top_p\":0.9,\"stop\":[\"END\"]}");

    /* streamed: usage asked for with stream_options */
    assert_int_equal(llmux_request_set_stream(r, 1), 0);
    check_request(r, "POST", URL "/chat/completions",
                  "{\"model\":\"luminous-base\",\"messages\":[{\"role\":"
                  "\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\","
                  "\"content\":\"Hi\"}],\"max_tokens\":64,\"temperature\":0.5,"
                  "\"top_p\":0.9,\"stop\":[\"END\"],\"stream\":true,"
                  "\"stream_options\":{\"include_usage\":true}}");
    llmux_request_free(r);

    /* the Python client's field name, on request */
    r = op_req(LLMUX_OP_CHAT, ";max_tokens_field=maximum_tokens");
    assert_int_equal(llmux_request_set_max_tokens(r, 7), 0);
    check_request(r, "POST", URL "/chat/completions",
                  "{\"model\":\"luminous-base\",\"messages\":[{\"role\":"
                  "\"user\",\"content\":\"Hi\"}],\"maximum_tokens\":7}");
    llmux_request_free(r);
}

/* parallel_tool_calls (rejected by the server), seed, user, service_tier
 * (ignored by it) are refused by name, whatever their source: never sent,
 * never dropped in silence. */
/* Aleph Alpha's chat takes text and images: audio is refused by name. */
static void test_encode_parts(void **state)
{
    llmux_request *r = NULL;
    static const char json[] = "{\"messages\":[{\"role\":\"user\","
                               "\"content\":\"Hi\"}]}";
    (void)state;
    assert_int_equal(llmux_request_new_json(&r, SPEC KEY, json, strlen(json)),
                     0);
    assert_int_equal(
        llmux_request_add_image(r, LLMUX_ROLE_USER, "image/png", "x", 1, NULL),
        0);
    {
        llmux__prepared p;
        prep_ok(r, &p);
        llmux__prepared_free(&p);
    }
    assert_int_equal(
        llmux_request_add_audio(r, LLMUX_ROLE_USER, "wav", "RIFF", 4), 0);
    pt_prep_fails(r, LLMUX_ENOTSUP, "\"input_audio\" is not supported");
    llmux_request_free(r);
}

static void test_encode_chat_never_sent(void **state)
{
    static const char json[] =
        "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
        "\"n\":1,\"tools\":[{\"type\":"
        "\"function\",\"function\":{\"name\":\"f\",\"parameters\":{"
        "\"type\":\"object\"}}}],\"tool_choice\":\"required\"}";
    static const char *const never[][2] = {
        {"\"seed\":3", "\"seed\""},
        {"\"user\":\"u1\"", "\"user\""},
        {"\"service_tier\":\"auto\"", "\"service_tier\""},
        {"\"parallel_tool_calls\":false", "\"parallel_tool_calls\""}};
    llmux_request *r = NULL;
    size_t i;
    (void)state;
    for (i = 0; i < sizeof never / sizeof never[0]; i++) {
        char j[160];
        snprintf(j, sizeof j,
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],%s}",
                 never[i][0]);
        assert_int_equal(llmux_request_new_json(&r, SPEC KEY, j, strlen(j)), 0);
        pt_prep_fails(r, LLMUX_ENOTSUP, never[i][1]);
        llmux_request_free(r);
    }
    r = new_req(LLMUX_OP_CHAT, SPEC KEY);
    assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_USER, "Hi"), 0);
    assert_int_equal(llmux_request_set_seed(r, 42), 0);
    pt_prep_fails(r, LLMUX_ENOTSUP, "\"seed\"");
    llmux_request_free(r);

    assert_int_equal(llmux_request_new_json(&r, SPEC KEY, json, strlen(json)),
                     0);
    check_request(r, "POST", URL "/chat/completions",
                  "{\"model\":\"luminous-base\",\"messages\":[{\"role\":"
                  "\"user\",\"content\":\"Hi\"}],\"tools\":[{\"type\":"
                  "\"function\",\"function\":{\"name\":\"f\",\"parameters\":"
                  "{\"type\":\"object\"}}}],\"tool_choice\":\"required\","
                  "\"n\":1}");
    llmux_request_free(r);

    /* as config-string options they are not Aleph Alpha's: refused */
    r = op_req(LLMUX_OP_CHAT, ";user=bob");
    pt_prep_fails(r, LLMUX_ECONFIG, "\"user\"");
    llmux_request_free(r);
}

static void test_encode_nice_hosting(void **state)
{
    llmux_request *r;
    (void)state;
    r = op_req(LLMUX_OP_CHAT, ";nice=true;hosting=aleph-alpha");
    check_request(r, "POST", URL "/chat/completions?nice=true",
                  "{\"model\":\"luminous-base\",\"messages\":[{\"role\":"
                  "\"user\",\"content\":\"Hi\"}],\"hosting\":\"aleph-alpha\"}");
    llmux_request_free(r);
    r = op_req(LLMUX_OP_CHAT, ";nice=false");
    check_request(r, "POST", URL "/chat/completions",
                  "{\"model\":\"luminous-base\",\"messages\":[{\"role\":"
                  "\"user\",\"content\":\"Hi\"}]}");
    llmux_request_free(r);
    r = op_req(LLMUX_OP_CHAT, ";nice=maybe");
    pt_prep_fails(r, LLMUX_EINVAL, "nice=maybe");
    llmux_request_free(r);
}

/* A descriptor mapping a name onto the module, with its own paths. */
static void test_descriptor(void **state)
{
    char dir[] = "/tmp/llmux-aa-XXXXXX", path[128], dirs[1024];
    llmux_request *r;
    llmux__prepared p;
    FILE *f;
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/pharia.conf", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("module = alephalpha\n"
          "base_url = http://127.0.0.1:9/pharia/v1\n"
          "chat_path = /chat/completions?x=1\n"
          "complete_path = none\n"
          "models_path = /model-settings\n"
          "hosting = aleph-alpha\n",
          f);
    fclose(f);
    snprintf(dirs, sizeof dirs, "%s:%s", dir, LLMUX_BUILD_PLUGIN_DIR);

    r = new_req(LLMUX_OP_CHAT, "pharia/m;api_key=k;nice=true");
    assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_USER, "x"), 0);
    if (llmux__prepare(r, dirs, &p) != 0)
        fail_msg("prepare: %s", llmux_request_errmsg(r));
    /* a path with a query already; the descriptor's hosting option */
    assert_string_equal(p.url, "http://127.0.0.1:9/pharia/v1/chat/"
                               "completions?x=1&nice=true");
    {
        json_object *b = body_of(&p);
        assert_json_eq(b, "{\"model\":\"m\",\"messages\":[{\"role\":"
                          "\"user\",\"content\":\"x\"}],\"hosting\":"
                          "\"aleph-alpha\"}");
        json_object_put(b);
    }
    llmux__prepared_free(&p);
    llmux_request_free(r);

    r = new_req(LLMUX_OP_MODELS, "pharia/m;api_key=k");
    if (llmux__prepare(r, dirs, &p) != 0)
        fail_msg("prepare: %s", llmux_request_errmsg(r));
    assert_string_equal(p.url, "http://127.0.0.1:9/pharia/v1/model-settings");
    {
        /* errors carry the name the provider is used under */
        llmux_response *res = llmux__response_new(LLMUX_OP_MODELS, "pharia");
        assert_int_equal(llmux__decode_answer(&p, 200, NULL, "{oops", 5, res),
                         LLMUX_EPROTO);
        assert_memory_equal(llmux_response_error(res)->message, "pharia: ", 8);
        llmux_response_free(res);
    }
    llmux__prepared_free(&p);
    llmux_request_free(r);

    r = new_req(LLMUX_OP_COMPLETE, "pharia/m;api_key=k");
    assert_int_equal(llmux_request_set_prompt(r, "x"), 0);
    assert_int_equal(llmux__prepare(r, dirs, &p), LLMUX_ENOTSUP);
    llmux__prepared_free(&p);
    llmux_request_free(r);
    unlink(path);
    rmdir(dir);
}

static void test_encode_response_format(void **state)
{
    static const char schema[] =
        "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"w\","
        "\"schema\":{\"type\":\"object\"},\"strict\":true}}";
    llmux_request *r;
    char want[512];
    (void)state;
    r = op_req(LLMUX_OP_CHAT, NULL);
    assert_int_equal(llmux_request_set_response_format(r, schema), 0);
    snprintf(want, sizeof want,
             "{\"model\":\"luminous-base\",\"messages\":[{\"role\":\"user\","
             "\"content\":\"Hi\"}],\"response_format\":%s}",
             schema);
    check_request(r, "POST", URL "/chat/completions", want);

    /* json_object fails here, with a message saying what works */
    assert_int_equal(
        llmux_request_set_response_format(r, "{\"type\":\"json_object\"}"), 0);
    pt_prep_fails(r, LLMUX_ENOTSUP, "json_object is not supported");
    pt_prep_fails(r, LLMUX_ENOTSUP, "json_schema");
    assert_int_equal(llmux_request_set_response_format(r, "{}"), 0);
    pt_prep_fails(r, LLMUX_ENOTSUP, "only");

    /* plain text is the default: left out */
    assert_int_equal(
        llmux_request_set_response_format(r, "{\"type\":\"text\"}"), 0);
    check_request(r, "POST", URL "/chat/completions",
                  "{\"model\":\"luminous-base\",\"messages\":[{\"role\":"
                  "\"user\",\"content\":\"Hi\"}]}");
    llmux_request_free(r);
}

/* ---- encoding: native endpoints --------------------------------------------
 */

static void test_encode_complete(void **state)
{
    llmux_request *r;
    (void)state;
    r = op_req(LLMUX_OP_COMPLETE, ";top_k=5;hosting=aleph-alpha;nice=on");
    assert_int_equal(llmux_request_set_max_tokens(r, 64), 0);
    assert_int_equal(llmux_request_set_temperature(r, 0.25), 0);
    assert_int_equal(llmux_request_set_top_p(r, 0.5), 0);
    assert_int_equal(llmux_request_set_seed(r, 1), 0); /* no seed: unsent */
    assert_int_equal(llmux_request_add_stop(r, "\n"), 0);
    assert_int_equal(llmux_request_add_stop(r, "END"), 0);
    check_request(r, "POST", URL "/complete?nice=true",
                  "{\"model\":\"luminous-base\",\"prompt\":\"Hello\","
                  "\"maximum_tokens\":64,\"temperature\":0.25,\"top_k\":5,"
                  "\"top_p\":0.5,\"stop_sequences\":[\"\\n\",\"END\"],"
                  "\"hosting\":\"aleph-alpha\"}");
    assert_int_equal(llmux_request_set_stream(r, 1), 0);
    check_request(r, "POST", URL "/complete?nice=true",
                  "{\"model\":\"luminous-base\",\"prompt\":\"Hello\","
                  "\"maximum_tokens\":64,\"temperature\":0.25,\"top_k\":5,"
                  "\"top_p\":0.5,\"stop_sequences\":[\"\\n\",\"END\"],"
                  "\"stream\":true,\"hosting\":\"aleph-alpha\"}");
    llmux_request_free(r);

    r = op_req(LLMUX_OP_COMPLETE, NULL);
    check_request(r, "POST", URL "/complete",
                  "{\"model\":\"luminous-base\",\"prompt\":\"Hello\"}");
    assert_int_equal(llmux_request_set_suffix(r, "tail"), 0);
    pt_prep_fails(r, LLMUX_ENOTSUP, "suffix");
    llmux_request_free(r);

    r = op_req(LLMUX_OP_COMPLETE, ";top_k=-1");
    pt_prep_fails(r, LLMUX_EINVAL, "top_k=-1");
    llmux_request_free(r);
    r = op_req(LLMUX_OP_COMPLETE, ";top_k=3x");
    pt_prep_fails(r, LLMUX_EINVAL, "top_k");
    llmux_request_free(r);
}

static void test_encode_embed(void **state)
{
    llmux_request *r;
    char want[8192];
    size_t i, at;
    (void)state;
    r = op_req(LLMUX_OP_EMBED, NULL);
    check_request(r, "POST", URL "/semantic_embed",
                  "{\"model\":\"luminous-base\",\"prompt\":\"An apple a day\","
                  "\"representation\":\"symmetric\"}");
    llmux_request_free(r);
    r = op_req(LLMUX_OP_EMBED, ";representation=query;compress_to_size=128;"
                               "normalize=true;nice=true;hosting=aleph-alpha");
    check_request(r, "POST", URL "/semantic_embed?nice=true",
                  "{\"model\":\"luminous-base\",\"prompt\":\"An apple a day\","
                  "\"representation\":\"query\",\"compress_to_size\":128,"
                  "\"normalize\":true,\"hosting\":\"aleph-alpha\"}");
    assert_int_equal(llmux_request_add_input(r, "keeps"), 0);
    check_request(r, "POST", URL "/batch_semantic_embed?nice=true",
                  "{\"model\":\"luminous-base\",\"prompts\":[\"An apple a "
                  "day\",\"keeps\"],\"representation\":\"query\","
                  "\"compress_to_size\":128,\"normalize\":true,\"hosting\":"
                  "\"aleph-alpha\"}");
    llmux_request_free(r);

    /* 100 inputs in one call; 101 is the caller's to split */
    r = op_req(LLMUX_OP_EMBED, ";normalize=no");
    at = (size_t)snprintf(want, sizeof want,
                          "{\"model\":\"luminous-base\",\"prompts\":[\"An "
                          "apple a day\"");
    for (i = 1; i < 100; i++) {
        char in[16];
        snprintf(in, sizeof in, "t%zu", i);
        assert_int_equal(llmux_request_add_input(r, in), 0);
        at += (size_t)snprintf(want + at, sizeof want - at, ",\"%s\"", in);
    }
    snprintf(want + at, sizeof want - at,
             "],\"representation\":\"symmetric\",\"normalize\":false}");
    check_request(r, "POST", URL "/batch_semantic_embed", want);
    assert_int_equal(llmux_request_add_input(r, "one too many"), 0);
    pt_prep_fails(r, LLMUX_EINVAL, "101 inputs");
    pt_prep_fails(r, LLMUX_EINVAL, "at most 100");
    llmux_request_free(r);

    r = op_req(LLMUX_OP_EMBED, ";compress_to_size=0");
    pt_prep_fails(r, LLMUX_EINVAL, "compress_to_size");
    llmux_request_free(r);
    r = op_req(LLMUX_OP_EMBED, ";normalize=perhaps");
    pt_prep_fails(r, LLMUX_EINVAL, "normalize");
    llmux_request_free(r);
}

static void test_encode_embed_endpoints(void **state)
{
    llmux_request *r;
    (void)state;
    r = op_req(LLMUX_OP_EMBED, ";embed_endpoint=embed");
    check_request(r, "POST", URL "/embed",
                  "{\"model\":\"luminous-base\",\"prompt\":\"An apple a day\","
                  "\"layers\":[-1],\"pooling\":[\"mean\"]}");
    llmux_request_free(r);
    r = op_req(LLMUX_OP_EMBED, ";embed_endpoint=embed;layers=0, -1;pooling="
                               "mean,max;normalize=1;nice=1");
    check_request(r, "POST", URL "/embed?nice=true",
                  "{\"model\":\"luminous-base\",\"prompt\":\"An apple a day\","
                  "\"layers\":[0,-1],\"pooling\":[\"mean\",\"max\"],"
                  "\"normalize\":true}");
    assert_int_equal(llmux_request_add_input(r, "two"), 0);
    pt_prep_fails(r, LLMUX_EINVAL, "one input");
    llmux_request_free(r);
    r = op_req(LLMUX_OP_EMBED, ";embed_endpoint=embed;layers=0,x");
    pt_prep_fails(r, LLMUX_EINVAL, "layers=0,x");
    llmux_request_free(r);
    r = op_req(LLMUX_OP_EMBED, ";embed_endpoint=embed;pooling=mean,,max");
    pt_prep_fails(r, LLMUX_EINVAL, "pooling");
    llmux_request_free(r);

    /* the OpenAI-compatible endpoint, through the codec */
    r = op_req(LLMUX_OP_EMBED, ";embed_endpoint=embeddings;nice=true;"
                               "hosting=aleph-alpha");
    assert_int_equal(llmux_request_add_input(r, "two"), 0);
    check_request(r, "POST", URL "/embeddings?nice=true",
                  "{\"model\":\"luminous-base\",\"input\":[\"An apple a day\","
                  "\"two\"],\"encoding_format\":\"float\",\"hosting\":"
                  "\"aleph-alpha\"}");
    llmux_request_free(r);

    r = op_req(LLMUX_OP_EMBED, ";embed_endpoint=instructable");
    pt_prep_fails(r, LLMUX_EINVAL, "embed_endpoint=instructable");
    llmux_request_free(r);
}

static void test_encode_tasks(void **state)
{
    llmux_request *r;
    (void)state;
    r = op_req(LLMUX_OP_EVALUATE, NULL);
    check_request(r, "POST", URL "/evaluate",
                  "{\"model\":\"luminous-base\",\"prompt\":\"Hello\","
                  "\"completion_expected\":\"world\"}");
    llmux_request_free(r);
    r = op_req(LLMUX_OP_TOKENIZE, NULL);
    check_request(r, "POST", URL "/tokenize",
                  "{\"model\":\"luminous-base\",\"prompt\":\"Hello\","
                  "\"tokens\":true,\"token_ids\":true}");
    llmux_request_free(r);
    r = op_req(LLMUX_OP_DETOKENIZE, NULL);
    check_request(r, "POST", URL "/detokenize",
                  "{\"model\":\"luminous-base\",\"token_ids\":[4711]}");
    assert_int_equal(llmux_request_add_token_id(r, 0), 0);
    assert_int_equal(llmux_request_add_token_id(r, 123456789012LL), 0);
    check_request(r, "POST", URL "/detokenize",
                  "{\"model\":\"luminous-base\",\"token_ids\":[4711,0,"
                  "123456789012]}");
    llmux_request_free(r);
    r = op_req(LLMUX_OP_MODELS, NULL);
    check_request(r, "GET", URL "/models_available", NULL);
    llmux_request_free(r);

    /* nice and hosting on every task; models is a GET without them */
    r = op_req(LLMUX_OP_EVALUATE, ";nice=yes;hosting=aleph-alpha");
    check_request(r, "POST", URL "/evaluate?nice=true",
                  "{\"model\":\"luminous-base\",\"prompt\":\"Hello\","
                  "\"completion_expected\":\"world\",\"hosting\":"
                  "\"aleph-alpha\"}");
    llmux_request_free(r);
    r = op_req(LLMUX_OP_TOKENIZE, ";nice=yes;hosting=aleph-alpha");
    check_request(r, "POST", URL "/tokenize?nice=true",
                  "{\"model\":\"luminous-base\",\"prompt\":\"Hello\","
                  "\"tokens\":true,\"token_ids\":true,\"hosting\":"
                  "\"aleph-alpha\"}");
    llmux_request_free(r);
    r = op_req(LLMUX_OP_DETOKENIZE, ";nice=yes;hosting=aleph-alpha");
    check_request(r, "POST", URL "/detokenize?nice=true",
                  "{\"model\":\"luminous-base\",\"token_ids\":[4711],"
                  "\"hosting\":\"aleph-alpha\"}");
    llmux_request_free(r);
    r = op_req(LLMUX_OP_MODELS, ";nice=yes;hosting=aleph-alpha");
    check_request(r, "GET", URL "/models_available", NULL);
    llmux_request_free(r);
}

/* Base URL and key: config string, then AA_BASE_URL / AA_TOKEN, then the
 * legacy SaaS default. */
static void test_base_url_and_key(void **state)
{
    llmux_request *r;
    llmux__prepared p;
    llmux_provider_info info;
    char err[256], caps[256];
    (void)state;
    unsetenv("AA_BASE_URL");
    setenv("AA_TOKEN", "env-token", 1);
    r = new_req(LLMUX_OP_COMPLETE, "alephalpha/luminous-base");
    assert_int_equal(llmux_request_set_prompt(r, "x"), 0);
    prep_ok(r, &p);
    assert_string_equal(p.url, "https://api.aleph-alpha.com/complete");
    assert_string_equal(header(&p, "Authorization"), "Bearer env-token");
    llmux__prepared_free(&p);
    setenv("AA_BASE_URL", "https://inference.example.com/v1/", 1);
    prep_ok(r, &p);
    assert_string_equal(p.url, "https://inference.example.com/v1/complete");
    llmux__prepared_free(&p);
    unsetenv("AA_TOKEN");
    pt_prep_fails(r, LLMUX_ENOKEY, "AA_TOKEN");
    unsetenv("AA_BASE_URL");
    llmux_request_free(r);

    assert_int_equal(llmux_provider_probe("alephalpha", LLMUX_BUILD_PLUGIN_DIR,
                                          &info, err, sizeof err),
                     0);
    assert_string_equal(info.module, "alephalpha");
    assert_string_equal(info.api_key_env, "AA_TOKEN");
    assert_string_equal(info.base_url, "https://api.aleph-alpha.com");
    assert_int_equal(info.caps, LLMUX_CAP_CHAT | LLMUX_CAP_STREAM |
                                    LLMUX_CAP_COMPLETE | LLMUX_CAP_EMBED |
                                    LLMUX_CAP_MODELS | LLMUX_CAP_TOOLS |
                                    LLMUX_CAP_JSON | LLMUX_CAP_TOKENIZE |
                                    LLMUX_CAP_DETOKENIZE | LLMUX_CAP_EVALUATE);
    llmux_caps_string(info.caps, caps, sizeof caps);
    assert_non_null(strstr(caps, "evaluate"));
}

/* ---- decoding: whole bodies -----------------------------------------------
 */

/* Evaluate and tokenize answers, and their JSON exactly. */
static void test_decode_tasks(void **state)
{
    llmux_response *res;
    json_object *got, *want;
    long long id;
    char *js;
    int rc;
    (void)state;
    res = decode_str(LLMUX_OP_EVALUATE, NULL, EVAL_BODY, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(llmux_response_result_json(res));
    got = parse_all(llmux_response_result_json(res),
                    strlen(llmux_response_result_json(res)));
    want = parse_all(eval_result, strlen(eval_result));
    assert_true(json_object_equal(got, want));
    json_object_put(got);
    js = llmux_response_to_json(res);
    got = parse_all(js, strlen(js));
    assert_true(json_object_equal(got, want));
    json_object_put(got);
    json_object_put(want);
    llmux_free(js);
    assert_int_equal(llmux_response_usage(res)->prompt_tokens, 2);
    assert_string_equal(llmux_response_model(res), "luminous-base");
    llmux_response_free(res);

    res = decode_str(LLMUX_OP_TOKENIZE, NULL, tokenize_body, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(llmux_response_token_count(res), 1);
    assert_string_equal(llmux_response_token(res, 0, &id), "\xc4\xa0Hello");
    assert_int_equal(id, 49222);
    js = llmux_response_to_json(res);
    got = parse_all(js, strlen(js));
    assert_json_eq(got,
                   "{\"tokens\":[\"\xc4\xa0Hello\"],\"token_ids\":[49222]}");
    json_object_put(got);
    llmux_free(js);
    llmux_response_free(res);
}

/* ---- streams --------------------------------------------------------------
 */

/* A prepared streaming request of `op`. */
static llmux_request *stream_req(llmux_op op, llmux__prepared *p)
{
    llmux_request *r = op_req(op, NULL);
    assert_int_equal(llmux_request_set_stream(r, 1), 0);
    prep_ok(r, p);
    return r;
}

/* Whole, byte by byte, and split in two at every offset: the same result
 * each time. Returns the summary (caller frees); *whole is the whole run. */
static char *check_splits(llmux_op op, const char *wire, pt_stream *whole)
{
    return pt_check_splits(&aa, op, wire, strlen(wire), 1, 0, whole);
}

/* Cut before the completion summary: never "done", so the engine reports
 * a stream that ended without its end marker. A bare [DONE] still ends a
 * stream. */
static void test_stream_complete_cut(void **state)
{
    const char *summ = strstr(complete_stream, "data: {\"type\":\"completion");
    size_t cut = (size_t)(summ - complete_stream), k;
    pt_stream s;
    char *sum, *wire;
    (void)state;
    assert_non_null(summ);
    /* every cut before the summary item is complete */
    for (k = 0; k <= cut + 20; k++) {
        sum = pt_run_once(&aa, LLMUX_OP_COMPLETE, complete_stream, k, NULL, 0,
                          &s);
        assert_false(s.done);
        if (s.err != 0 && s.err != LLMUX_EPROTO)
            fail_msg("cut at %zu: %d", k, s.err);
        free(sum);
        pt_stream_free(&s);
    }
    sum =
        pt_run_once(&aa, LLMUX_OP_COMPLETE, complete_stream, cut, NULL, 0, &s);
    assert_int_equal(s.err, 0);
    assert_string_equal(llmux_response_text(s.acc, NULL),
                        " The New York Times, May 15");
    assert_int_equal(llmux_response_finish(s.acc), LLMUX_FINISH_LENGTH);
    assert_int_equal(llmux_response_usage(s.acc)->total_tokens, -1);
    free(sum);
    pt_stream_free(&s);

    /* [DONE] without a summary is accepted as the end */
    wire = malloc(cut + 32);
    assert_non_null(wire);
    memcpy(wire, complete_stream, cut);
    strcpy(wire + cut, "data: [DONE]\n\n");
    sum = check_splits(LLMUX_OP_COMPLETE, wire, &s);
    assert_true(s.done);
    assert_int_equal(s.err, 0);
    assert_string_equal(llmux_response_text(s.acc, NULL),
                        " The New York Times, May 15");
    free(sum);
    pt_stream_free(&s);
    free(wire);
}

/* A /complete stream that left state behind, then an HTTP error (as on a
 * retry): the error body is still parsed, and all state is freed. */
static void test_state_then_error(void **state)
{
    static const char err[] = "{\"error\":\"busy\",\"code\":\"QUEUE_FULL\"}";
    llmux_op ops[] = {LLMUX_OP_COMPLETE, LLMUX_OP_CHAT};
    size_t i;
    (void)state;
    for (i = 0; i < 2; i++) {
        llmux__prepared p;
        llmux_request *r = stream_req(ops[i], &p);
        llmux_response *res;
        pt_stream s;
        const char *w =
            ops[i] == LLMUX_OP_COMPLETE ? complete_stream : chat_stream;
        pt_run_stream(&aa, &p, ops[i], w, strlen(w), NULL, 0, &s);
        assert_true(s.done);
        assert_non_null(p.call.state);
        res = llmux__response_new(ops[i], "alephalpha");
        assert_int_equal(llmux__decode_answer(&p, 503, "application/json", err,
                                              strlen(err), res),
                         LLMUX_EPROVIDER);
        assert_string_equal(llmux_response_error(res)->provider_code,
                            "QUEUE_FULL");
        assert_string_equal(llmux_response_error(res)->message, "busy");
        llmux_response_free(res);
        /* and a second stream on the same call state */
        pt_stream_free(&s);
        pt_run_stream(&aa, &p, ops[i], w, strlen(w), NULL, 0, &s);
        assert_true(s.done);
        pt_stream_free(&s);
        llmux__prepared_free(&p);
        llmux_request_free(r);
    }
}

/* ---- the decoder table (plugin_test.h: pt_case) ------------------------- */

/* A /complete answer whose completion 0 ends for this reason. */
#define FINISH(raw)                                                            \
    "{\"completions\":[{\"index\":1,\"completion\":\"other\"},"                \
    "{\"completion\":\"ok\",\"finish_reason\":\"" raw "\"}]}"
/* A body no answer may be: a clean EPROTO for every operation. */
#define ANY_BAD(b)                                                             \
    PT_GARBAGE(LLMUX_OP_COMPLETE, b), PT_GARBAGE(LLMUX_OP_EMBED, b),           \
        {.op = LLMUX_OP_EMBED, .inputs = 2, .body = b, .code = LLMUX_EPROTO},  \
        {.op = LLMUX_OP_EMBED,                                                 \
         .opts = ";embed_endpoint=embed",                                      \
         .body = b,                                                            \
         .code = LLMUX_EPROTO},                                                \
        PT_GARBAGE(LLMUX_OP_EVALUATE, b), PT_GARBAGE(LLMUX_OP_TOKENIZE, b),    \
        PT_GARBAGE(LLMUX_OP_DETOKENIZE, b), PT_GARBAGE(LLMUX_OP_MODELS, b),    \
        PT_GARBAGE(LLMUX_OP_CHAT, b)
/* A stream with an error item between two chunks. */
#define ERR_HI                                                                 \
    "data: {\"type\":\"stream_chunk\",\"index\":0,\"completion\":\"Hi\"}\n\n"
#define ERR_CRASH                                                              \
    "data: {\"error\":\"Worker crashed\",\"code\":\"INTERNAL\"}\n\n"
#define ERR_BANG                                                               \
    "data: {\"type\":\"stream_chunk\",\"index\":0,\"completion\":\"!\"}\n\n"

static const pt_case cases[] = {
    /* ---- decoding: whole bodies */
    {.name = "decode a completion",
     .op = LLMUX_OP_COMPLETE,
     .body = complete_body,
     .want = "{'text':'\\n\\nI\xe2\x80\x99m a little','finish':'length',"
             "'finish_raw':'maximum_tokens','model':'luminous-base',"
             "'usage':{'prompt_tokens':4,'completion_tokens':7,"
             "'total_tokens':11}}"},
    /* counts near INT64_MAX: the total saturates instead of overflowing */
    {.name = "decode counts near INT64_MAX",
     .op = LLMUX_OP_COMPLETE,
     .body = "{\"completions\":[{\"completion\":\"x\"}],"
             "\"num_tokens_prompt_total\":9223372036854775807,"
             "\"num_tokens_generated\":9223372036854775807}",
     .want = "{'usage':{'total_tokens':9223372036854775807}}"},
    /* completion 0 of several; no token counts: usage unknown */
    {.name = "decode finish_reason \"end_of_text\"",
     .op = LLMUX_OP_COMPLETE,
     .body = FINISH("end_of_text"),
     .want = "{'text':'ok','finish':'stop','finish_raw':'end_of_text',"
             "'usage':{'total_tokens':-1}}"},
    {.name = "decode finish_reason \"stop_sequence_reached\"",
     .op = LLMUX_OP_COMPLETE,
     .body = FINISH("stop_sequence_reached"),
     .want = "{'text':'ok','finish':'stop',"
             "'finish_raw':'stop_sequence_reached',"
             "'usage':{'total_tokens':-1}}"},
    {.name = "decode finish_reason \"maximum_tokens\"",
     .op = LLMUX_OP_COMPLETE,
     .body = FINISH("maximum_tokens"),
     .want = "{'text':'ok','finish':'length','finish_raw':'maximum_tokens',"
             "'usage':{'total_tokens':-1}}"},
    {.name = "decode finish_reason \"content_filter\"",
     .op = LLMUX_OP_COMPLETE,
     .body = FINISH("content_filter"),
     .want = "{'text':'ok','finish':'content_filter',"
             "'finish_raw':'content_filter','usage':{'total_tokens':-1}}"},
    {.name = "decode finish_reason \"something_new\"",
     .op = LLMUX_OP_COMPLETE,
     .body = FINISH("something_new"),
     .want = "{'text':'ok','finish':'stop','finish_raw':'something_new',"
             "'usage':{'total_tokens':-1}}"},
    {.name = "decode a chat answer",
     .op = LLMUX_OP_CHAT,
     .body = chat_body,
     .want = "{'text':\"I'm just a computer program, ...\","
             "'id':'10a59fb4-9322-4875-8280-9cad53811e99',"
             "'model':'llama-3.1-8b-instruct','created':1754484237,"
             "'finish':'stop','usage':{'prompt_tokens':16,"
             "'completion_tokens':50,'total_tokens':66}}"},
    /* the same OpenAI-shaped list as other providers */
    {.name = "decode a semantic embedding",
     .op = LLMUX_OP_EMBED,
     .body = semantic_body,
     .want = "{'embeddings':[[-2.765625,0.5,1.0,0.001953125]],"
             "'model':'luminous-base','usage':{'prompt_tokens':1,"
             "'total_tokens':1},'json':{'object':'list',"
             "'data':[{'object':'embedding','embedding':[-2.765625,0.5,1.0,"
             "0.001953125]}],'model':'luminous-base',"
             "'usage':{'prompt_tokens':1}}}"},
    {.name = "decode a batch of embeddings",
     .op = LLMUX_OP_EMBED,
     .inputs = 3,
     .body = batch_body,
     .want = "{'embeddings':[[1.5,-2.0],[0.25,3.0],[4.0,0.0]],"
             "'usage':{'prompt_tokens':5}}"},
    {.name = "decode layer embeddings",
     .op = LLMUX_OP_EMBED,
     .opts = ";embed_endpoint=embed",
     .body = layers_body,
     .want = "{'embeddings':[[0.5,-1.25]],'usage':{'prompt_tokens':1}}"},
    {.name = "decode OpenAI-shaped embeddings",
     .op = LLMUX_OP_EMBED,
     .opts = ";embed_endpoint=embeddings",
     .body = openai_embed_body,
     .want = "{'embeddings':[[0.125,-0.5]],'model':'qwen3-embedding-0.6b',"
             "'usage':{'prompt_tokens':8}}"},
    /* several tokens; ids only or tokens only */
    {.name = "decode several tokens",
     .op = LLMUX_OP_TOKENIZE,
     .body = "{\"tokens\":[\"a\",\"b\",\"\"],\"token_ids\":[1,2,3]}",
     .want = "{'tokens':[{'token':'a','id':1},{'token':'b','id':2},"
             "{'token':'','id':3}]}"},
    {.name = "decode token ids only",
     .op = LLMUX_OP_TOKENIZE,
     .body = "{\"tokens\":null,\"token_ids\":[7,8]}",
     .want = "{'tokens':[{'token':null,'id':7},{'token':null,'id':8}]}"},
    {.name = "decode tokens only",
     .op = LLMUX_OP_TOKENIZE,
     .body = "{\"tokens\":[\"x\"]}",
     .want = "{'tokens':[{'token':'x','id':-1}]}"},
    {.name = "decode no tokens",
     .op = LLMUX_OP_TOKENIZE,
     .body = "{\"tokens\":[],\"token_ids\":[]}",
     .want = "{'tokens':[]}"},
    {.name = "decode a detokenization",
     .op = LLMUX_OP_DETOKENIZE,
     .body = detokenize_body,
     .want = "{'text':'tiss'}"},
    {.name = "decode an empty detokenization",
     .op = LLMUX_OP_DETOKENIZE,
     .body = "{\"result\":\"\"}",
     .want = "{'text':''}"},
    {.name = "decode models",
     .op = LLMUX_OP_MODELS,
     .body = models_body,
     .want = "{'models':[{'id':'luminous-base'},"
             "{'id':'llama-3.1-8b-instruct'},"
             "{'id':'pharia-1-llm-7b-control'}]}"},
    {.name = "decode no models",
     .op = LLMUX_OP_MODELS,
     .body = "[]",
     .want = "{'models':[]}"},
    /* ---- decoding: errors */
    {.name = "decode error: missing capability",
     .op = LLMUX_OP_CHAT,
     .body = "{\"error\":\"Sadly the model you chose does not provide that "
             "capability: This model does not support chat conversations. You "
             "could try to choose another model.\",\"code\":"
             "\"MISSING_CAPABILITY\"}",
     .status = 400,
     .code = LLMUX_EPROVIDER,
     .want = "{'error':{'type':null,'provider_code':'MISSING_CAPABILITY',"
             "'message':'Sadly the model you chose does not provide that "
             "capability: This model does not support chat conversations. You "
             "could try to choose another model.'}}"},
    {.name = "decode error: unknown model",
     .op = LLMUX_OP_COMPLETE,
     .body = "{\"error\":\"Model not found\",\"code\":\"UNKNOWN_MODEL\"}",
     .status = 404,
     .code = LLMUX_EPROVIDER,
     .want = "{'error':{'type':null,'provider_code':'UNKNOWN_MODEL',"
             "'message':'Model not found'}}"},
    {.name = "decode error: queue full",
     .op = LLMUX_OP_TOKENIZE,
     .body =
         "{\"error\":\"Sorry we had to reject your request because we could "
         "not guarantee to finish it in a reasonable timeframe.\",\"code\":"
         "\"QUEUE_FULL\"}",
     .status = 503,
     .code = LLMUX_EPROVIDER,
     .want = "{'error':{'type':null,'provider_code':'QUEUE_FULL',"
             "'message':'Sorry we had to reject your request because we could "
             "not guarantee to finish it in a reasonable timeframe.'}}"},
    {.name = "decode error: invalid token",
     .op = LLMUX_OP_EMBED,
     .body = "{\"error\":\"Invalid token\",\"code\":\"INVALID_TOKEN\"}",
     .status = 401,
     .code = LLMUX_EAUTH,
     .want = "{'error':{'type':null,'provider_code':'INVALID_TOKEN',"
             "'message':'Invalid token'}}"},
    /* plain text from the proxies: the raw text */
    {.name = "decode error: plain text",
     .op = LLMUX_OP_COMPLETE,
     .body = "Too many requests\n",
     .status = 429,
     .code = LLMUX_ERATELIMIT,
     .want = "{'error':{'type':null,'provider_code':null,"
             "'message':'Too many requests'}}"},
    {.name = "decode error: plain text, no server",
     .op = LLMUX_OP_EVALUATE,
     .body = "No server is available to handle this request.",
     .status = 503,
     .code = LLMUX_EPROVIDER,
     .want = "{'error':{'type':null,'provider_code':null,"
             "'message':'No server is available to handle this request.'}}"},
    {.name = "decode error: cut JSON",
     .op = LLMUX_OP_MODELS,
     .body = "{\"error\":",
     .status = 500,
     .code = LLMUX_EPROVIDER,
     .want = "{'error':{'type':null,'provider_code':null,"
             "'message':'{\"error\":'}}"},
    {.name = "decode error: an empty body",
     .op = LLMUX_OP_DETOKENIZE,
     .body = "",
     .status = 502,
     .code = LLMUX_EPROVIDER,
     .want = "{'error':{'type':null,'provider_code':null,"
             "'message':'HTTP 502 with an empty body'}}"},
    /* an error inside a 2xx body */
    {.name = "decode error: inside a 200",
     .op = LLMUX_OP_COMPLETE,
     .body = "{\"error\":\"Internal error\",\"code\":\"INTERNAL_ERROR\"}",
     .status = 200,
     .code = LLMUX_EPROVIDER,
     .want = "{'error':{'type':null,'provider_code':'INTERNAL_ERROR',"
             "'message':'Internal error'}}"},
    {.name = "decode error: inside a 200, models",
     .op = LLMUX_OP_MODELS,
     .body = "{\"error\":\"no\",\"code\":\"X\"}",
     .status = 200,
     .code = LLMUX_EPROVIDER,
     .want = "{'error':{'type':null,'provider_code':'X','message':'no'}}"},
    {.name = "decode error: inside a 200, chat",
     .op = LLMUX_OP_CHAT,
     .body = "{\"error\":\"busy\",\"code\":\"QUEUE_FULL\"}",
     .status = 200,
     .code = LLMUX_EPROVIDER,
     .want = "{'error':{'type':null,'provider_code':'QUEUE_FULL',"
             "'message':'busy'}}"},
    /* ---- decoding: garbage (a clean EPROTO) */
    ANY_BAD(""),
    ANY_BAD(" "),
    ANY_BAD("null"),
    ANY_BAD("42"),
    ANY_BAD("\"str\""),
    ANY_BAD("<html>502</html>"),
    ANY_BAD("{\"a\":1} x"),
    ANY_BAD("{\"a\":NaN}"),
    ANY_BAD("\xff\xfe{}"),
    ANY_BAD("{,}"),
    PT_GARBAGE(LLMUX_OP_COMPLETE, "{}"),
    PT_GARBAGE(LLMUX_OP_COMPLETE, "[]"),
    PT_GARBAGE(LLMUX_OP_COMPLETE, "{\"completions\":{}}"),
    PT_GARBAGE(LLMUX_OP_COMPLETE, "{\"completions\":[]}"),
    PT_GARBAGE(LLMUX_OP_COMPLETE, "{\"completions\":[5]}"),
    PT_GARBAGE(LLMUX_OP_COMPLETE, "{\"completions\":[{}]}"),
    PT_GARBAGE(LLMUX_OP_COMPLETE, "{\"completions\":[{\"completion\":5}]}"),
    PT_GARBAGE(LLMUX_OP_COMPLETE, "{\"completions\":[{\"completion\":null}]}"),
    PT_GARBAGE(LLMUX_OP_COMPLETE,
               "{\"completions\":[{\"index\":1,\"completion\":\"x\"}]}"),
    PT_GARBAGE(LLMUX_OP_COMPLETE,
               "{\"completions\":[{\"index\":-1,\"completion\":\"x\"}]}"),
    PT_GARBAGE(LLMUX_OP_COMPLETE,
               "{\"completions\":[{\"index\":\"0\",\"completion\":\"x\"}]}"),
    PT_GARBAGE(LLMUX_OP_EMBED, "{}"),
    PT_GARBAGE(LLMUX_OP_EMBED, "[]"),
    PT_GARBAGE(LLMUX_OP_EMBED, "{\"embedding\":{}}"),
    PT_GARBAGE(LLMUX_OP_EMBED, "{\"embedding\":[1,\"x\"]}"),
    PT_GARBAGE(LLMUX_OP_EMBED, "{\"embedding\":[[1]]}"),
    PT_GARBAGE(LLMUX_OP_EMBED, "{\"embeddings\":[[1]]}"),
    {.op = LLMUX_OP_EMBED, .inputs = 2, .body = "{}", .code = LLMUX_EPROTO},
    {.op = LLMUX_OP_EMBED,
     .inputs = 2,
     .body = "{\"embeddings\":{}}",
     .code = LLMUX_EPROTO},
    {.op = LLMUX_OP_EMBED,
     .inputs = 2,
     .body = "{\"embeddings\":[[1]]}",
     .code = LLMUX_EPROTO},
    {.op = LLMUX_OP_EMBED,
     .inputs = 2,
     .body = "{\"embeddings\":[[1],[1],[2]]}",
     .code = LLMUX_EPROTO},
    {.op = LLMUX_OP_EMBED,
     .inputs = 2,
     .body = "{\"embeddings\":[[1],5]}",
     .code = LLMUX_EPROTO},
    {.op = LLMUX_OP_EMBED,
     .inputs = 2,
     .body = "{\"embeddings\":[[1],[true]]}",
     .code = LLMUX_EPROTO},
    {.op = LLMUX_OP_EMBED,
     .opts = ";embed_endpoint=embed",
     .body = "{}",
     .code = LLMUX_EPROTO},
    {.op = LLMUX_OP_EMBED,
     .opts = ";embed_endpoint=embed",
     .body = "{\"embeddings\":{}}",
     .code = LLMUX_EPROTO},
    {.op = LLMUX_OP_EMBED,
     .opts = ";embed_endpoint=embed",
     .body = "{\"embeddings\":[]}",
     .code = LLMUX_EPROTO},
    {.op = LLMUX_OP_EMBED,
     .opts = ";embed_endpoint=embed",
     .body = "{\"embeddings\":{\"layer_0\":{}}}",
     .code = LLMUX_EPROTO},
    {.op = LLMUX_OP_EMBED,
     .opts = ";embed_endpoint=embed",
     .body = "{\"embeddings\":{\"layer_0\":[1]}}",
     .code = LLMUX_EPROTO},
    {.op = LLMUX_OP_EMBED,
     .opts = ";embed_endpoint=embed",
     .body = "{\"embeddings\":{\"layer_0\":{\"mean\":\"x\"}}}",
     .code = LLMUX_EPROTO},
    PT_GARBAGE(LLMUX_OP_EVALUATE, "{}"),
    PT_GARBAGE(LLMUX_OP_EVALUATE, "{\"result\":5}"),
    PT_GARBAGE(LLMUX_OP_EVALUATE, "{\"result\":[1]}"),
    PT_GARBAGE(LLMUX_OP_EVALUATE, "[]"),
    PT_GARBAGE(LLMUX_OP_TOKENIZE, "{}"),
    PT_GARBAGE(LLMUX_OP_TOKENIZE, "[]"),
    PT_GARBAGE(LLMUX_OP_TOKENIZE, "{\"tokens\":null,\"token_ids\":null}"),
    PT_GARBAGE(LLMUX_OP_TOKENIZE, "{\"tokens\":5}"),
    PT_GARBAGE(LLMUX_OP_TOKENIZE, "{\"tokens\":[\"a\"],\"token_ids\":{}}"),
    PT_GARBAGE(LLMUX_OP_TOKENIZE, "{\"tokens\":[\"a\"],\"token_ids\":[1,2]}"),
    PT_GARBAGE(LLMUX_OP_TOKENIZE, "{\"tokens\":[5],\"token_ids\":[1]}"),
    PT_GARBAGE(LLMUX_OP_TOKENIZE, "{\"tokens\":[\"a\"],\"token_ids\":[-1]}"),
    PT_GARBAGE(LLMUX_OP_TOKENIZE, "{\"tokens\":[\"a\"],\"token_ids\":[\"1\"]}"),
    PT_GARBAGE(LLMUX_OP_TOKENIZE, "{\"token_ids\":[1.5]}"),
    PT_GARBAGE(LLMUX_OP_DETOKENIZE, "{}"),
    PT_GARBAGE(LLMUX_OP_DETOKENIZE, "{\"result\":5}"),
    PT_GARBAGE(LLMUX_OP_DETOKENIZE, "{\"result\":null}"),
    PT_GARBAGE(LLMUX_OP_DETOKENIZE, "[]"),
    PT_GARBAGE(LLMUX_OP_MODELS, "{}"),
    PT_GARBAGE(LLMUX_OP_MODELS, "{\"data\":[]}"),
    PT_GARBAGE(LLMUX_OP_MODELS, "5"),
    {.name = "answer detokenize with a NUL inside",
     .op = LLMUX_OP_DETOKENIZE,
     .body = "{\"result\":\"a\"\0}",
     .len = 15,
     .code = LLMUX_EPROTO},
    /* every proper prefix of a valid body is a clean protocol error; the
     * whole body decodes */
    {.name = "prefixes complete complete_body",
     .mode = PT_PREFIXES,
     .op = LLMUX_OP_COMPLETE,
     .body = complete_body},
    {.name = "prefixes chat chat_body",
     .mode = PT_PREFIXES,
     .op = LLMUX_OP_CHAT,
     .body = chat_body},
    {.name = "prefixes embed semantic_body",
     .mode = PT_PREFIXES,
     .op = LLMUX_OP_EMBED,
     .body = semantic_body},
    {.name = "prefixes embed batch_body x3",
     .mode = PT_PREFIXES,
     .op = LLMUX_OP_EMBED,
     .inputs = 3,
     .body = batch_body},
    {.name = "prefixes embed layers_body [;embed_endpoint=embed]",
     .mode = PT_PREFIXES,
     .op = LLMUX_OP_EMBED,
     .opts = ";embed_endpoint=embed",
     .body = layers_body},
    {.name = "prefixes embed openai_embed_body [;embed_endpoint=embeddings]",
     .mode = PT_PREFIXES,
     .op = LLMUX_OP_EMBED,
     .opts = ";embed_endpoint=embeddings",
     .body = openai_embed_body},
    {.name = "prefixes evaluate eval_body",
     .mode = PT_PREFIXES,
     .op = LLMUX_OP_EVALUATE,
     .body = EVAL_BODY},
    {.name = "prefixes tokenize tokenize_body",
     .mode = PT_PREFIXES,
     .op = LLMUX_OP_TOKENIZE,
     .body = tokenize_body},
    {.name = "prefixes detokenize detokenize_body",
     .mode = PT_PREFIXES,
     .op = LLMUX_OP_DETOKENIZE,
     .body = detokenize_body},
    {.name = "prefixes models models_body",
     .mode = PT_PREFIXES,
     .op = LLMUX_OP_MODELS,
     .body = models_body},
    /* ---- streams */
    /* the completion summary ends it: no [DONE] needed */
    {.name = "stream a completion (recorded)",
     .mode = PT_STREAM,
     .op = LLMUX_OP_COMPLETE,
     .body = complete_stream,
     .want = "{'done':1,'events':3,'text':' The New York Times, May 15',"
             "'finish':'length','finish_raw':'maximum_tokens',"
             "'usage':{'prompt_tokens':1,'completion_tokens':7,"
             "'total_tokens':8},'model':'luminous-base'}"},
    /* several chunks, a second completion (ignored), CRLF line ends, items
     * the decoder does not know, and a [DONE] after the end */
    {.name = "stream a completion (hand-made)",
     .mode = PT_STREAM,
     .op = LLMUX_OP_COMPLETE,
     .body =
         ": keep-alive\r\n\r\n"
         "data: {\"type\":\"stream_chunk\",\"index\":0,\"completion\":\"Hel\"}"
         "\r\n\r\n"
         "data: {\"type\":\"stream_chunk\",\"index\":1,\"completion\":\"XX\"}"
         "\r\n\r\n"
         "data:{\"type\":\"stream_chunk\",\"completion\":\"lo \xc3\xa9\","
         "\"raw_completion\":\"lo\",\"log_probs\":[{\"lo\":-0.5}]}\r\n\r\n"
         "data: {\"type\":\"something_new\",\"index\":0}\r\n\r\n"
         "data: {\"type\":\"stream_summary\",\"index\":1,\"finish_reason\":"
         "\"maximum_tokens\"}\r\n\r\n"
         "data: {\"type\":\"stream_summary\",\"index\":0,\"model_version\":"
         "\"x\",\"finish_reason\":\"end_of_text\"}\r\n\r\n"
         "data: {\"type\":\"completion_summary\",\"num_tokens_prompt_total\":"
         "3,\"num_tokens_generated\":2,\"optimized_prompt\":[]}\r\n\r\n"
         "data: [DONE]\r\n\r\n",
     .want = "{'done':1,'after_done':1,'text':'Hello \xc3\xa9',"
             "'finish':'stop','finish_raw':'end_of_text',"
             "'usage':{'total_tokens':5}}"},
    {.name = "stream a chat",
     .mode = PT_STREAM,
     .op = LLMUX_OP_CHAT,
     .body = chat_stream,
     .want = "{'done':1,'text':\"I'm just a program.\",'finish':'stop',"
             "'usage':{'prompt_tokens':16,'completion_tokens':50,"
             "'total_tokens':66},'model':'llama-3.1-8b-instruct',"
             "'id':'d207a5e4'}"},
    {.name = "stream an error item",
     .mode = PT_STREAM,
     .op = LLMUX_OP_COMPLETE,
     .body = ERR_HI ERR_CRASH ERR_BANG,
     .code = LLMUX_EPROVIDER,
     .want = "{'events':1,'text':'Hi','error':{'message':'Worker crashed',"
             "'provider_code':'INTERNAL'}}"},
    {.name = "stream a named error event",
     .mode = PT_STREAM,
     .op = LLMUX_OP_COMPLETE,
     .body = "event: error\ndata: upstream overloaded\n\n",
     .code = LLMUX_EPROVIDER,
     .want = "{'error':{'message':'upstream overloaded'}}"},
    /* the same in a chat stream (codec) */
    {.name = "stream an error item in a chat",
     .mode = PT_STREAM,
     .op = LLMUX_OP_CHAT,
     .body = ERR_CRASH ERR_BANG,
     .code = LLMUX_EPROVIDER,
     .want = "{'error':{'message':'Worker crashed',"
             "'provider_code':'INTERNAL'}}"},
    /* items: garbage is a clean EPROTO; end marks, unknown and empty items */
    PT_EVENT_CODE(LLMUX_OP_COMPLETE, "hello", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_COMPLETE, "{", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_COMPLETE, "{\"type\":", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_COMPLETE, "[1,2]", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_COMPLETE, "42", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_COMPLETE, "null", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_COMPLETE, "\"x\"", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_COMPLETE, "{}", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_COMPLETE, "{\"type\":5}", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_COMPLETE, "{\"type\":null}", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_COMPLETE, "{\"type\":\"stream_chunk\"}",
                  LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_COMPLETE,
                  "{\"type\":\"stream_chunk\",\"completion\":5}", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_COMPLETE,
                  "{\"type\":\"stream_chunk\",\"completion\":null}",
                  LLMUX_EPROTO),
    PT_EVENT_CODE(
        LLMUX_OP_COMPLETE,
        "{\"type\":\"stream_chunk\",\"index\":-1,\"completion\":\"x\"}",
        LLMUX_EPROTO),
    PT_EVENT_CODE(
        LLMUX_OP_COMPLETE,
        "{\"type\":\"stream_chunk\",\"index\":\"0\",\"completion\":\"x\"}",
        LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_COMPLETE,
                  "{\"type\":\"stream_summary\",\"index\":1.5}", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_COMPLETE, "{\"a\":1}{\"b\":2}", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_COMPLETE, "[DONE", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_COMPLETE, "[DONE]]", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_COMPLETE, "\xff", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_COMPLETE, "[DONE]", LLMUX_EVENT_DONE),
    PT_EVENT_CODE(LLMUX_OP_COMPLETE, " [DONE]\r\n", LLMUX_EVENT_DONE),
    PT_EVENT_CODE(LLMUX_OP_COMPLETE, "", 0),
    PT_EVENT_CODE(LLMUX_OP_COMPLETE, "  ", 0),
    PT_EVENT_CODE(LLMUX_OP_COMPLETE, "{\"type\":\"future_item\"}", 0),
    PT_EVENT_CODE(
        LLMUX_OP_COMPLETE,
        "{\"type\":\"stream_chunk\",\"index\":3,\"completion\":\"x\"}", 0),
    PT_EVENT_CODE(LLMUX_OP_COMPLETE,
                  "{\"type\":\"stream_summary\",\"index\":0}", 0),
    PT_EVENT_CODE(LLMUX_OP_COMPLETE, "{\"type\":\"completion_summary\"}",
                  LLMUX_EVENT_DONE),
    /* every truncation of every item of the recorded streams is EPROTO */
    {.name = "event cuts complete complete_stream",
     .mode = PT_EVENT_CUTS,
     .op = LLMUX_OP_COMPLETE,
     .body = complete_stream,
     .code = LLMUX_EPROTO},
    {.name = "event cuts chat chat_stream",
     .mode = PT_EVENT_CUTS,
     .op = LLMUX_OP_CHAT,
     .body = chat_stream,
     .code = LLMUX_EPROTO},
};

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_chat),
        cmocka_unit_test(test_encode_chat_never_sent),
        cmocka_unit_test(test_encode_parts),
        cmocka_unit_test(test_encode_nice_hosting),
        cmocka_unit_test(test_descriptor),
        cmocka_unit_test(test_encode_response_format),
        cmocka_unit_test(test_encode_complete),
        cmocka_unit_test(test_encode_embed),
        cmocka_unit_test(test_encode_embed_endpoints),
        cmocka_unit_test(test_encode_tasks),
        cmocka_unit_test(test_base_url_and_key),
        cmocka_unit_test(test_decode_tasks),
        cmocka_unit_test(test_stream_complete_cut),
        cmocka_unit_test(test_state_then_error),
    };
    return pt_run_tests(&aa, tests, sizeof tests / sizeof tests[0], cases,
                        sizeof cases / sizeof cases[0]);
}
