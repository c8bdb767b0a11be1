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

static const char eval_result[] =
    "{\"log_probability\":-11.3125,\"log_perplexity\":11.3125,"
    "\"log_perplexity_per_token\":11.3125,\"log_perplexity_per_character\":"
    "2.2625,\"correct_greedy\":false,\"token_count\":1,\"character_count\":5,"
    "\"completion\":\",\"}";

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

/* op_req with `n_inputs` inputs in all (the first one op_req's). */
static llmux_request *inputs_req(llmux_op op, const char *opts, size_t n_inputs)
{
    llmux_request *r = op_req(op, opts);
    size_t i;
    for (i = 1; i < n_inputs; i++)
        assert_int_equal(llmux_request_add_input(r, "more"), 0);
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
    assert_int_equal(llmux_request_set_seed(r, 42), 0); /* ignored: unsent */
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

/* parallel_tool_calls (rejected), seed, user, service_tier (ignored) are
 * never sent, whatever their source. */
static void test_encode_chat_never_sent(void **state)
{
    static const char json[] =
        "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
        "\"seed\":3,\"user\":\"u1\",\"service_tier\":\"auto\","
        "\"parallel_tool_calls\":false,\"n\":1,\"tools\":[{\"type\":"
        "\"function\",\"function\":{\"name\":\"f\",\"parameters\":{"
        "\"type\":\"object\"}}}],\"tool_choice\":\"required\"}";
    llmux_request *r = NULL;
    (void)state;
    assert_int_equal(llmux_request_new_json(&r,
                                            SPEC KEY ";user=bob;service_tier="
                                                     "flex;seed=9",
                                            json, strlen(json)),
                     0);
    check_request(r, "POST", URL "/chat/completions",
                  "{\"model\":\"luminous-base\",\"messages\":[{\"role\":"
                  "\"user\",\"content\":\"Hi\"}],\"tools\":[{\"type\":"
                  "\"function\",\"function\":{\"name\":\"f\",\"parameters\":"
                  "{\"type\":\"object\"}}}],\"tool_choice\":\"required\","
                  "\"n\":1}");
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
                               "hosting=aleph-alpha;user=bob");
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

static void test_decode_complete(void **state)
{
    static const struct {
        const char *raw;
        llmux_finish want;
    } fr[] = {{"end_of_text", LLMUX_FINISH_STOP},
              {"stop_sequence_reached", LLMUX_FINISH_STOP},
              {"maximum_tokens", LLMUX_FINISH_LENGTH},
              {"content_filter", LLMUX_FINISH_CONTENT_FILTER},
              {"something_new", LLMUX_FINISH_STOP}};
    llmux_response *res;
    const llmux_usage *u;
    char body[512];
    size_t i;
    int rc;
    (void)state;
    res = decode_str(LLMUX_OP_COMPLETE, NULL, complete_body, &rc);
    assert_int_equal(rc, 0);
    assert_null(llmux_response_error(res));
    assert_string_equal(llmux_response_text(res, NULL),
                        "\n\nI\xe2\x80\x99m a little");
    assert_int_equal(llmux_response_finish(res), LLMUX_FINISH_LENGTH);
    assert_string_equal(llmux_response_finish_raw(res), "maximum_tokens");
    /* the request's model, not the API's model_version date */
    assert_string_equal(llmux_response_model(res), "luminous-base");
    u = llmux_response_usage(res);
    assert_int_equal(u->prompt_tokens, 4);
    assert_int_equal(u->completion_tokens, 7);
    assert_int_equal(u->total_tokens, 11);
    llmux_response_free(res);

    /* counts near INT64_MAX: the total saturates instead of overflowing */
    res = decode_str(LLMUX_OP_COMPLETE, NULL,
                     "{\"completions\":[{\"completion\":\"x\"}],"
                     "\"num_tokens_prompt_total\":9223372036854775807,"
                     "\"num_tokens_generated\":9223372036854775807}",
                     &rc);
    assert_int_equal(rc, 0);
    assert_true(llmux_response_usage(res)->total_tokens == INT64_MAX);
    llmux_response_free(res);

    for (i = 0; i < sizeof fr / sizeof fr[0]; i++) {
        snprintf(body, sizeof body,
                 "{\"completions\":[{\"index\":1,\"completion\":\"other\"},"
                 "{\"completion\":\"ok\",\"finish_reason\":\"%s\"}]}",
                 fr[i].raw);
        res = decode_str(LLMUX_OP_COMPLETE, NULL, body, &rc);
        assert_int_equal(rc, 0);
        assert_string_equal(llmux_response_text(res, NULL), "ok");
        assert_int_equal(llmux_response_finish(res), fr[i].want);
        assert_string_equal(llmux_response_finish_raw(res), fr[i].raw);
        /* no token counts: usage unknown */
        assert_int_equal(llmux_response_usage(res)->total_tokens, -1);
        llmux_response_free(res);
    }
}

static void test_decode_chat(void **state)
{
    llmux_response *res;
    const llmux_usage *u;
    int rc;
    (void)state;
    res = decode_str(LLMUX_OP_CHAT, NULL, chat_body, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(llmux_response_text(res, NULL),
                        "I'm just a computer program, ...");
    assert_string_equal(llmux_response_id(res),
                        "10a59fb4-9322-4875-8280-9cad53811e99");
    assert_string_equal(llmux_response_model(res), "llama-3.1-8b-instruct");
    assert_int_equal(llmux_response_created(res), 1754484237);
    assert_int_equal(llmux_response_finish(res), LLMUX_FINISH_STOP);
    u = llmux_response_usage(res);
    assert_int_equal(u->prompt_tokens, 16);
    assert_int_equal(u->completion_tokens, 50);
    assert_int_equal(u->total_tokens, 66);
    llmux_response_free(res);
}

static void check_vec(const llmux_response *res, size_t i, const float *want,
                      size_t n)
{
    size_t dim, k;
    const float *v = llmux_response_embedding(res, i, &dim);
    assert_non_null(v);
    assert_int_equal(dim, n);
    for (k = 0; k < n; k++)
        if (v[k] != want[k])
            fail_msg("embedding %zu[%zu]: %g, want %g", i, k, (double)v[k],
                     (double)want[k]);
}

/* Decodes an embeddings body for a request of n_inputs inputs. */
static llmux_response *decode_embed(const char *opts, size_t n_inputs,
                                    const char *body, int *rc)
{
    return pt_decode(&aa, inputs_req(LLMUX_OP_EMBED, opts, n_inputs),
                     LLMUX_OP_EMBED, 200, body, strlen(body), rc);
}

static void test_decode_embeddings(void **state)
{
    static const float sem[] = {-2.765625f, 0.5f, 1.0f, 0.001953125f};
    static const float b0[] = {1.5f, -2.0f}, b1[] = {0.25f, 3.0f},
                       b2[] = {4.0f, 0.0f};
    static const float layer[] = {0.5f, -1.25f}, oai[] = {0.125f, -0.5f};
    llmux_response *res;
    char *js;
    json_object *o;
    int rc;
    (void)state;
    res = decode_embed(NULL, 1, semantic_body, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(llmux_response_embedding_count(res), 1);
    check_vec(res, 0, sem, 4);
    assert_string_equal(llmux_response_model(res), "luminous-base");
    assert_int_equal(llmux_response_usage(res)->prompt_tokens, 1);
    assert_int_equal(llmux_response_usage(res)->total_tokens, 1);
    /* the same OpenAI-shaped list as other providers */
    js = llmux_response_to_json(res);
    assert_non_null(js);
    o = parse_all(js, strlen(js));
    assert_string_equal(jstr(o, "object"), "list");
    assert_string_equal(jstr(o, "data.0.object"), "embedding");
    assert_int_equal(json_object_array_length(jget(o, "data.0.embedding")), 4);
    assert_string_equal(jstr(o, "model"), "luminous-base");
    assert_int_equal(json_object_get_int(jget(o, "usage.prompt_tokens")), 1);
    json_object_put(o);
    llmux_free(js);
    llmux_response_free(res);

    res = decode_embed(NULL, 3, batch_body, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(llmux_response_embedding_count(res), 3);
    check_vec(res, 0, b0, 2);
    check_vec(res, 1, b1, 2);
    check_vec(res, 2, b2, 2);
    assert_int_equal(llmux_response_usage(res)->prompt_tokens, 5);
    llmux_response_free(res);

    res = decode_embed(";embed_endpoint=embed", 1, layers_body, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(llmux_response_embedding_count(res), 1);
    check_vec(res, 0, layer, 2);
    assert_int_equal(llmux_response_usage(res)->prompt_tokens, 1);
    llmux_response_free(res);

    res = decode_embed(";embed_endpoint=embeddings", 1, openai_embed_body, &rc);
    assert_int_equal(rc, 0);
    check_vec(res, 0, oai, 2);
    assert_string_equal(llmux_response_model(res), "qwen3-embedding-0.6b");
    assert_int_equal(llmux_response_usage(res)->prompt_tokens, 8);
    llmux_response_free(res);
}

static void test_decode_tasks(void **state)
{
    llmux_response *res;
    json_object *got, *want;
    long long id;
    char *js;
    int rc;
    char body[1024];
    (void)state;
    snprintf(body, sizeof body,
             "{\"model_version\":\"2022-04\",\"result\":%s,"
             "\"num_tokens_prompt_total\":2}",
             eval_result);
    res = decode_str(LLMUX_OP_EVALUATE, NULL, body, &rc);
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

    /* several tokens; ids only or tokens only */
    res = decode_str(LLMUX_OP_TOKENIZE, NULL,
                     "{\"tokens\":[\"a\",\"b\",\"\"],\"token_ids\":[1,2,3]}",
                     &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(llmux_response_token_count(res), 3);
    assert_string_equal(llmux_response_token(res, 1, &id), "b");
    assert_int_equal(id, 2);
    assert_string_equal(llmux_response_token(res, 2, &id), "");
    llmux_response_free(res);
    res = decode_str(LLMUX_OP_TOKENIZE, NULL,
                     "{\"tokens\":null,\"token_ids\":[7,8]}", &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(llmux_response_token_count(res), 2);
    assert_null(llmux_response_token(res, 1, &id));
    assert_int_equal(id, 8);
    llmux_response_free(res);
    res = decode_str(LLMUX_OP_TOKENIZE, NULL, "{\"tokens\":[\"x\"]}", &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(llmux_response_token(res, 0, &id), "x");
    assert_int_equal(id, -1);
    llmux_response_free(res);
    res = decode_str(LLMUX_OP_TOKENIZE, NULL,
                     "{\"tokens\":[],\"token_ids\":[]}", &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(llmux_response_token_count(res), 0);
    llmux_response_free(res);

    res = decode_str(LLMUX_OP_DETOKENIZE, NULL, detokenize_body, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(llmux_response_text(res, NULL), "tiss");
    llmux_response_free(res);
    res = decode_str(LLMUX_OP_DETOKENIZE, NULL, "{\"result\":\"\"}", &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(llmux_response_text(res, NULL), "");
    llmux_response_free(res);

    res = decode_str(LLMUX_OP_MODELS, NULL, models_body, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(llmux_response_model_count(res), 3);
    assert_string_equal(llmux_response_model_id(res, 0), "luminous-base");
    assert_string_equal(llmux_response_model_id(res, 1),
                        "llama-3.1-8b-instruct");
    assert_string_equal(llmux_response_model_id(res, 2),
                        "pharia-1-llm-7b-control");
    llmux_response_free(res);
    res = decode_str(LLMUX_OP_MODELS, NULL, "[]", &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(llmux_response_model_count(res), 0);
    llmux_response_free(res);
}

/* ---- decoding: errors -----------------------------------------------------
 */

typedef struct err_case {
    llmux_op op;
    long status;
    const char *body;
    int code;
    const char *pcode, *message;
} err_case;

static void check_error(const err_case *c)
{
    llmux_response *res;
    const llmux_error *e;
    int rc;
    res = decode_op(c->op, NULL, c->status, c->body, strlen(c->body), &rc);
    assert_int_equal(rc, c->code);
    e = llmux_response_error(res);
    assert_non_null(e);
    assert_int_equal(e->code, c->code);
    assert_int_equal(e->http_status, c->status);
    if (e->type && *e->type && (!c->pcode || strcmp(e->type, c->pcode)))
        fail_msg("%s: unexpected type %s", c->body, e->type);
    if (c->pcode)
        assert_string_equal(e->provider_code ? e->provider_code : "(null)",
                            c->pcode);
    else if (e->provider_code && *e->provider_code)
        fail_msg("%s: unexpected code %s", c->body, e->provider_code);
    assert_string_equal(e->message, c->message);
    llmux_response_free(res);
}

static void test_decode_errors(void **state)
{
    static const err_case cases[] = {
        {LLMUX_OP_CHAT, 400,
         "{\"error\":\"Sadly the model you chose does not provide that "
         "capability: This model does not support chat conversations. You "
         "could try to choose another model.\",\"code\":"
         "\"MISSING_CAPABILITY\"}",
         LLMUX_EPROVIDER, "MISSING_CAPABILITY",
         "Sadly the model you chose does not provide that capability: This "
         "model does not support chat conversations. You could try to "
         "choose another model."},
        {LLMUX_OP_COMPLETE, 404,
         "{\"error\":\"Model not found\",\"code\":\"UNKNOWN_MODEL\"}",
         LLMUX_EPROVIDER, "UNKNOWN_MODEL", "Model not found"},
        {LLMUX_OP_TOKENIZE, 503,
         "{\"error\":\"Sorry we had to reject your request because we could "
         "not guarantee to finish it in a reasonable timeframe.\",\"code\":"
         "\"QUEUE_FULL\"}",
         LLMUX_EPROVIDER, "QUEUE_FULL",
         "Sorry we had to reject your request because we could not "
         "guarantee to finish it in a reasonable timeframe."},
        {LLMUX_OP_EMBED, 401,
         "{\"error\":\"Invalid token\",\"code\":\"INVALID_TOKEN\"}",
         LLMUX_EAUTH, "INVALID_TOKEN", "Invalid token"},
        /* plain text from the proxies: the raw text */
        {LLMUX_OP_COMPLETE, 429, "Too many requests\n", LLMUX_ERATELIMIT, NULL,
         "Too many requests"},
        {LLMUX_OP_EVALUATE, 503,
         "No server is available to handle this request.", LLMUX_EPROVIDER,
         NULL, "No server is available to handle this request."},
        {LLMUX_OP_MODELS, 500, "{\"error\":", LLMUX_EPROVIDER, NULL,
         "{\"error\":"},
        {LLMUX_OP_DETOKENIZE, 502, "", LLMUX_EPROVIDER, NULL,
         "HTTP 502 with an empty body"},
        /* an error inside a 2xx body */
        {LLMUX_OP_COMPLETE, 200,
         "{\"error\":\"Internal error\",\"code\":\"INTERNAL_ERROR\"}",
         LLMUX_EPROVIDER, "INTERNAL_ERROR", "Internal error"},
        {LLMUX_OP_MODELS, 200, "{\"error\":\"no\",\"code\":\"X\"}",
         LLMUX_EPROVIDER, "X", "no"},
        {LLMUX_OP_CHAT, 200, "{\"error\":\"busy\",\"code\":\"QUEUE_FULL\"}",
         LLMUX_EPROVIDER, "QUEUE_FULL", "busy"},
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_error(&cases[i]);
}

/* ---- decoding: garbage and truncation -------------------------------------
 */

static void expect_proto(llmux_op op, const char *opts, size_t n_inputs,
                         const char *body, size_t len)
{
    int rc;
    llmux_response *res =
        pt_decode(&aa, inputs_req(op, opts, n_inputs), op, 200, body, len, &rc);
    pt_assert_proto(&aa, res, rc, op, body, len);
}

static void test_decode_garbage(void **state)
{
    static const char *any_bad[] = {"",
                                    " ",
                                    "null",
                                    "42",
                                    "\"str\"",
                                    "<html>502</html>",
                                    "{\"a\":1} x",
                                    "{\"a\":NaN}",
                                    "\xff\xfe{}",
                                    "{,}"};
    static const char *complete_bad[] = {
        "{}",
        "[]",
        "{\"completions\":{}}",
        "{\"completions\":[]}",
        "{\"completions\":[5]}",
        "{\"completions\":[{}]}",
        "{\"completions\":[{\"completion\":5}]}",
        "{\"completions\":[{\"completion\":null}]}",
        "{\"completions\":[{\"index\":1,\"completion\":\"x\"}]}",
        "{\"completions\":[{\"index\":-1,\"completion\":\"x\"}]}",
        "{\"completions\":[{\"index\":\"0\",\"completion\":\"x\"}]}"};
    static const char *semantic_bad[] = {"{}",
                                         "[]",
                                         "{\"embedding\":{}}",
                                         "{\"embedding\":[1,\"x\"]}",
                                         "{\"embedding\":[[1]]}",
                                         "{\"embeddings\":[[1]]}"};
    static const char *batch_bad[] = {"{}",
                                      "{\"embeddings\":{}}",
                                      "{\"embeddings\":[[1]]}",
                                      "{\"embeddings\":[[1],[1],[2]]}",
                                      "{\"embeddings\":[[1],5]}",
                                      "{\"embeddings\":[[1],[true]]}"};
    static const char *layers_bad[] = {
        "{}",
        "{\"embeddings\":{}}",
        "{\"embeddings\":[]}",
        "{\"embeddings\":{\"layer_0\":{}}}",
        "{\"embeddings\":{\"layer_0\":[1]}}",
        "{\"embeddings\":{\"layer_0\":{\"mean\":\"x\"}}}"};
    static const char *eval_bad[] = {"{}", "{\"result\":5}", "{\"result\":[1]}",
                                     "[]"};
    static const char *tok_bad[] = {
        "{}",
        "[]",
        "{\"tokens\":null,\"token_ids\":null}",
        "{\"tokens\":5}",
        "{\"tokens\":[\"a\"],\"token_ids\":{}}",
        "{\"tokens\":[\"a\"],\"token_ids\":[1,2]}",
        "{\"tokens\":[5],\"token_ids\":[1]}",
        "{\"tokens\":[\"a\"],\"token_ids\":[-1]}",
        "{\"tokens\":[\"a\"],\"token_ids\":[\"1\"]}",
        "{\"token_ids\":[1.5]}"};
    static const char *detok_bad[] = {"{}", "{\"result\":5}",
                                      "{\"result\":null}", "[]"};
    static const char *models_bad[] = {"{}", "{\"data\":[]}", "5"};
    size_t i;
    (void)state;
#define EACH(list, op, opts, n)                                                \
    for (i = 0; i < sizeof list / sizeof list[0]; i++)                         \
    expect_proto(op, opts, n, list[i], strlen(list[i]))
    for (i = 0; i < sizeof any_bad / sizeof any_bad[0]; i++) {
        const char *b = any_bad[i];
        expect_proto(LLMUX_OP_COMPLETE, NULL, 1, b, strlen(b));
        expect_proto(LLMUX_OP_EMBED, NULL, 1, b, strlen(b));
        expect_proto(LLMUX_OP_EMBED, NULL, 2, b, strlen(b));
        expect_proto(LLMUX_OP_EMBED, ";embed_endpoint=embed", 1, b, strlen(b));
        expect_proto(LLMUX_OP_EVALUATE, NULL, 1, b, strlen(b));
        expect_proto(LLMUX_OP_TOKENIZE, NULL, 1, b, strlen(b));
        expect_proto(LLMUX_OP_DETOKENIZE, NULL, 1, b, strlen(b));
        expect_proto(LLMUX_OP_MODELS, NULL, 1, b, strlen(b));
        expect_proto(LLMUX_OP_CHAT, NULL, 1, b, strlen(b));
    }
    EACH(complete_bad, LLMUX_OP_COMPLETE, NULL, 1);
    EACH(semantic_bad, LLMUX_OP_EMBED, NULL, 1);
    EACH(batch_bad, LLMUX_OP_EMBED, NULL, 2);
    EACH(layers_bad, LLMUX_OP_EMBED, ";embed_endpoint=embed", 1);
    EACH(eval_bad, LLMUX_OP_EVALUATE, NULL, 1);
    EACH(tok_bad, LLMUX_OP_TOKENIZE, NULL, 1);
    EACH(detok_bad, LLMUX_OP_DETOKENIZE, NULL, 1);
    EACH(models_bad, LLMUX_OP_MODELS, NULL, 1);
#undef EACH
    {
        static const char nul[] = "{\"result\":\"a\"\0}";
        expect_proto(LLMUX_OP_DETOKENIZE, NULL, 1, nul, sizeof nul - 1);
    }
}

/* Every proper prefix of a valid body is a clean protocol error; the
 * whole body decodes. */
static void check_prefixes(llmux_op op, const char *opts, size_t n_inputs,
                           const char *body)
{
    size_t len = strlen(body), k;
    for (k = 0; k < len; k++)
        expect_proto(op, opts, n_inputs, body, k);
    {
        llmux_request *r = inputs_req(op, opts, n_inputs);
        llmux__prepared p;
        llmux_response *res;
        int rc;
        prep_ok(r, &p);
        res = llmux__response_new(op, "alephalpha");
        rc = llmux__decode_answer(&p, 200, NULL, body, len, res);
        assert_int_equal(rc, 0);
        llmux_response_free(res);
        llmux__prepared_free(&p);
        llmux_request_free(r);
    }
}

static void test_decode_truncated(void **state)
{
    char eval[1024];
    (void)state;
    snprintf(eval, sizeof eval,
             "{\"model_version\":\"2022-04\",\"result\":%s,"
             "\"num_tokens_prompt_total\":2}",
             eval_result);
    check_prefixes(LLMUX_OP_COMPLETE, NULL, 1, complete_body);
    check_prefixes(LLMUX_OP_CHAT, NULL, 1, chat_body);
    check_prefixes(LLMUX_OP_EMBED, NULL, 1, semantic_body);
    check_prefixes(LLMUX_OP_EMBED, NULL, 3, batch_body);
    check_prefixes(LLMUX_OP_EMBED, ";embed_endpoint=embed", 1, layers_body);
    check_prefixes(LLMUX_OP_EMBED, ";embed_endpoint=embeddings", 1,
                   openai_embed_body);
    check_prefixes(LLMUX_OP_EVALUATE, NULL, 1, eval);
    check_prefixes(LLMUX_OP_TOKENIZE, NULL, 1, tokenize_body);
    check_prefixes(LLMUX_OP_DETOKENIZE, NULL, 1, detokenize_body);
    check_prefixes(LLMUX_OP_MODELS, NULL, 1, models_body);
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

static void test_stream_complete(void **state)
{
    pt_stream s;
    char *sum;
    (void)state;
    sum = check_splits(LLMUX_OP_COMPLETE, complete_stream, &s);
    /* the completion summary ends it: no [DONE] needed */
    assert_true(s.done);
    assert_int_equal(s.err, 0);
    assert_int_equal(s.events, 3);
    assert_string_equal(llmux_response_text(s.acc, NULL),
                        " The New York Times, May 15");
    assert_int_equal(llmux_response_finish(s.acc), LLMUX_FINISH_LENGTH);
    assert_string_equal(llmux_response_finish_raw(s.acc), "maximum_tokens");
    assert_int_equal(llmux_response_usage(s.acc)->prompt_tokens, 1);
    assert_int_equal(llmux_response_usage(s.acc)->completion_tokens, 7);
    assert_int_equal(llmux_response_usage(s.acc)->total_tokens, 8);
    assert_string_equal(llmux_response_model(s.acc), "luminous-base");
    pt_stream_free(&s);
    free(sum);
}

/* Several chunks, a second completion (ignored), CRLF line ends, items the
 * decoder does not know, and a [DONE] after the end. */
static void test_stream_complete_hand(void **state)
{
    static const char wire[] =
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
        "data: [DONE]\r\n\r\n";
    pt_stream s;
    char *sum;
    (void)state;
    sum = check_splits(LLMUX_OP_COMPLETE, wire, &s);
    assert_true(s.done);
    assert_int_equal(s.after_done, 1);
    assert_int_equal(s.err, 0);
    assert_string_equal(llmux_response_text(s.acc, NULL), "Hello \xc3\xa9");
    assert_int_equal(llmux_response_finish(s.acc), LLMUX_FINISH_STOP);
    assert_string_equal(llmux_response_finish_raw(s.acc), "end_of_text");
    assert_int_equal(llmux_response_usage(s.acc)->total_tokens, 5);
    pt_stream_free(&s);
    free(sum);
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

static void test_stream_chat(void **state)
{
    pt_stream s;
    char *sum;
    (void)state;
    sum = check_splits(LLMUX_OP_CHAT, chat_stream, &s);
    assert_true(s.done);
    assert_int_equal(s.err, 0);
    assert_string_equal(llmux_response_text(s.acc, NULL),
                        "I'm just a program.");
    assert_int_equal(llmux_response_finish(s.acc), LLMUX_FINISH_STOP);
    assert_int_equal(llmux_response_usage(s.acc)->prompt_tokens, 16);
    assert_int_equal(llmux_response_usage(s.acc)->completion_tokens, 50);
    assert_int_equal(llmux_response_usage(s.acc)->total_tokens, 66);
    assert_string_equal(llmux_response_model(s.acc), "llama-3.1-8b-instruct");
    assert_string_equal(llmux_response_id(s.acc), "d207a5e4");
    pt_stream_free(&s);
    free(sum);
}

static void test_stream_errors(void **state)
{
    static const char wire[] =
        "data: {\"type\":\"stream_chunk\",\"index\":0,\"completion\":\"Hi\"}"
        "\n\ndata: {\"error\":\"Worker crashed\",\"code\":\"INTERNAL\"}\n\n"
        "data: {\"type\":\"stream_chunk\",\"index\":0,\"completion\":\"!\"}"
        "\n\n";
    static const char named[] = "event: error\ndata: upstream overloaded\n\n";
    pt_stream s;
    char *sum;
    (void)state;
    sum = pt_run_once(&aa, LLMUX_OP_COMPLETE, wire, strlen(wire), NULL, 0, &s);
    assert_int_equal(s.err, LLMUX_EPROVIDER);
    assert_int_equal(s.events, 1);
    assert_string_equal(s.err_msg, "Worker crashed");
    assert_string_equal(s.err_pcode, "INTERNAL");
    assert_string_equal(llmux_response_text(s.acc, NULL), "Hi");
    free(sum);
    pt_stream_free(&s);
    sum =
        pt_run_once(&aa, LLMUX_OP_COMPLETE, named, strlen(named), NULL, 0, &s);
    assert_int_equal(s.err, LLMUX_EPROVIDER);
    assert_string_equal(s.err_msg, "upstream overloaded");
    free(sum);
    pt_stream_free(&s);
    /* the same in a chat stream (codec) */
    sum = pt_run_once(&aa, LLMUX_OP_CHAT, wire + strcspn(wire, "\n") + 2,
                      strlen(wire + strcspn(wire, "\n") + 2), NULL, 0, &s);
    assert_int_equal(s.err, LLMUX_EPROVIDER);
    assert_string_equal(s.err_msg, "Worker crashed");
    assert_string_equal(s.err_pcode, "INTERNAL");
    free(sum);
    pt_stream_free(&s);
}

/* Decodes one event payload on a fresh streaming request of `op`. */
static int one_event(llmux_op op, const char *data, size_t len, char **msg)
{
    return pt_one_event(&aa, op, data, len, msg, NULL);
}

static void test_stream_garbage(void **state)
{
    static const char *bad[] = {
        "hello",
        "{",
        "{\"type\":",
        "[1,2]",
        "42",
        "null",
        "\"x\"",
        "{}",
        "{\"type\":5}",
        "{\"type\":null}",
        "{\"type\":\"stream_chunk\"}",
        "{\"type\":\"stream_chunk\",\"completion\":5}",
        "{\"type\":\"stream_chunk\",\"completion\":null}",
        "{\"type\":\"stream_chunk\",\"index\":-1,\"completion\":\"x\"}",
        "{\"type\":\"stream_chunk\",\"index\":\"0\",\"completion\":\"x\"}",
        "{\"type\":\"stream_summary\",\"index\":1.5}",
        "{\"a\":1}{\"b\":2}",
        "[DONE",
        "[DONE]]",
        "\xff"};
    static const struct {
        const char *data;
        int rc;
    } ok[] = {
        {"[DONE]", LLMUX_EVENT_DONE},
        {" [DONE]\r\n", LLMUX_EVENT_DONE},
        {"", 0},
        {"  ", 0},
        {"{\"type\":\"future_item\"}", 0},
        {"{\"type\":\"stream_chunk\",\"index\":3,\"completion\":\"x\"}", 0},
        {"{\"type\":\"stream_summary\",\"index\":0}", 0},
        {"{\"type\":\"completion_summary\"}", LLMUX_EVENT_DONE},
    };
    size_t i;
    char *msg;
    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = one_event(LLMUX_OP_COMPLETE, bad[i], strlen(bad[i]), &msg);
        if (rc != LLMUX_EPROTO)
            fail_msg("event \"%s\": rc %d", bad[i], rc);
        assert_non_null(msg);
        assert_memory_equal(msg, "alephalpha: ", 12);
        free(msg);
    }
    for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int rc =
            one_event(LLMUX_OP_COMPLETE, ok[i].data, strlen(ok[i].data), &msg);
        if (rc != ok[i].rc)
            fail_msg("event \"%s\": rc %d", ok[i].data, rc);
        assert_null(msg);
    }
}

/* Every truncation of every item of the recorded streams is EPROTO. */
static void test_stream_truncated_events(void **state)
{
    static const char *const streams[] = {complete_stream, chat_stream};
    static const llmux_op ops[] = {LLMUX_OP_COMPLETE, LLMUX_OP_CHAT};
    size_t f, k;
    (void)state;
    for (f = 0; f < 2; f++) {
        const char *p = streams[f];
        while ((p = strstr(p, "data: {")) != NULL) {
            const char *end = strstr(p, "\n\n");
            size_t len;
            p += 6;
            assert_non_null(end);
            len = (size_t)(end - p);
            for (k = 1; k < len; k++) {
                char *msg;
                int rc = one_event(ops[f], p, k, &msg);
                if (rc != LLMUX_EPROTO)
                    fail_msg("item %.30s cut at %zu: rc %d", p, k, rc);
                assert_non_null(msg);
                free(msg);
            }
            p = end;
        }
    }
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_chat),
        cmocka_unit_test(test_encode_chat_never_sent),
        cmocka_unit_test(test_encode_nice_hosting),
        cmocka_unit_test(test_descriptor),
        cmocka_unit_test(test_encode_response_format),
        cmocka_unit_test(test_encode_complete),
        cmocka_unit_test(test_encode_embed),
        cmocka_unit_test(test_encode_embed_endpoints),
        cmocka_unit_test(test_encode_tasks),
        cmocka_unit_test(test_base_url_and_key),
        cmocka_unit_test(test_decode_complete),
        cmocka_unit_test(test_decode_chat),
        cmocka_unit_test(test_decode_embeddings),
        cmocka_unit_test(test_decode_tasks),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_decode_garbage),
        cmocka_unit_test(test_decode_truncated),
        cmocka_unit_test(test_stream_complete),
        cmocka_unit_test(test_stream_complete_hand),
        cmocka_unit_test(test_stream_complete_cut),
        cmocka_unit_test(test_stream_chat),
        cmocka_unit_test(test_stream_errors),
        cmocka_unit_test(test_stream_garbage),
        cmocka_unit_test(test_stream_truncated_events),
        cmocka_unit_test(test_state_then_error),
    };
    return cmocka_run_group_tests(tests, NULL, pt_teardown);
}
