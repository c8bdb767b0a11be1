/*
 * tests/unit/test_ollama.c: the Ollama plugin (providers/ollama, native
 * API), driven through the core as the engine drives it: requests built
 * with the public setters are prepared with llmux__prepare (which loads
 * plugins.d/ollama.so) and the exact request JSON is checked; answers are
 * decoded with llmux__decode_answer, and NDJSON streams are split by
 * llmux__framer (at every byte offset), decoded with llmux__decode_event
 * and folded with llmux__out_merge.
 *
 * The answers are the examples of ../shared/design/WIRE.md section 3
 * (taken from Ollama's docs/api.md and a recorded cassette) and hand-made
 * streams; there are no recorded native-API fixtures.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin_test.h"

#define BASE "base_url=http://127.0.0.1:9"

/* ---- helpers ------------------------------------------------------------- */

static llmux_request *stream_req(llmux_op op, llmux__prepared *p);
static llmux_request *answer_req(llmux_op op, const char *opts);

/* The plugin under test, for the runners of plugin_test.c. */
static const pt_plugin oll = {"ollama", LLMUX_FRAMING_NDJSON, 1, stream_req,
                              answer_req};

/* A chat request with one user message; `opts` follow the model. */
static llmux_request *chat_req(const char *opts)
{
    char spec[1024];
    llmux_request *r;
    snprintf(spec, sizeof spec, "ollama/llama3.2;" BASE "%s", opts ? opts : "");
    r = new_req(LLMUX_OP_CHAT, spec);
    assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_USER, "Hi"), 0);
    return r;
}

/* The whole request body of `r` must equal `json`. */
static void assert_body(llmux_request *r, const char *path, const char *json)
{
    llmux__prepared p;
    json_object *b;
    char url[256];
    prep_ok(r, &p);
    snprintf(url, sizeof url, "http://127.0.0.1:9%s", path);
    assert_string_equal(p.url, url);
    assert_string_equal(p.http.method, "POST");
    assert_string_equal(header(&p, "Content-Type"), "application/json");
    b = body_of(&p);
    assert_json_eq(b, json);
    json_object_put(b);
    llmux__prepared_free(&p);
}

/* A request of `op` whose answers are decoded; `opts` end its config
 * string. */
static llmux_request *answer_req(llmux_op op, const char *opts)
{
    char spec[512];
    snprintf(spec, sizeof spec, "ollama/llama3;" BASE "%s", opts ? opts : "");
    return pt_op_req(op, spec);
}

/* Decodes one complete answer for a fresh request of `op`. */
static llmux_response *decode_op(llmux_op op, long status, const char *body,
                                 size_t len, int *rc)
{
    return pt_decode(&oll, answer_req(op, NULL), op, status, body, len, rc);
}

static llmux_response *decode_str(llmux_op op, long status, const char *body,
                                  int *rc)
{
    return decode_op(op, status, body, strlen(body), rc);
}

/* ---- encoding: chat ------------------------------------------------------ */

static void test_encode_chat(void **state)
{
    llmux_request *r;
    llmux__prepared p;
    (void)state;
    r = new_req(LLMUX_OP_CHAT, "ollama/llama3:8b;" BASE);
    assert_int_equal(llmux_request_set_system(r, "Be brief."), 0);
    assert_int_equal(
        llmux_request_add_message(r, LLMUX_ROLE_USER, "Say \"hi\" / \xc3\xa9"),
        0);
    assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_DEVELOPER, "d"),
                     0);
    assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_ASSISTANT, NULL),
                     0);
    assert_int_equal(llmux_request_set_max_tokens(r, 100), 0);
    assert_int_equal(llmux_request_set_temperature(r, 0.7), 0);
    assert_int_equal(llmux_request_set_top_p(r, 0.9), 0);
    assert_int_equal(llmux_request_set_seed(r, 42), 0);
    assert_int_equal(llmux_request_add_stop(r, "END"), 0);
    assert_int_equal(llmux_request_add_stop(r, "\n\n"), 0);
    assert_body(r, "/api/chat",
                "{\"model\":\"llama3:8b\",\"messages\":["
                "{\"role\":\"system\",\"content\":\"Be brief.\"},"
                "{\"role\":\"user\",\"content\":\"Say \\\"hi\\\" / "
                "\xc3\xa9\"},"
                "{\"role\":\"system\",\"content\":\"d\"},"
                "{\"role\":\"assistant\",\"content\":\"\"}],"
                "\"stream\":false,"
                "\"options\":{\"num_predict\":100,\"temperature\":0.7,"
                "\"top_p\":0.9,\"seed\":42,\"stop\":[\"END\",\"\\n\\n\"]}}");
    prep_ok(r, &p);
    /* numbers are written short, "stream":false is really there */
    assert_non_null(strstr(p.http.body, "\"temperature\":0.7"));
    assert_non_null(strstr(p.http.body, "\"stream\":false"));
    assert_string_equal(header(&p, "Accept"), "application/json");
    assert_null(header(&p, "Authorization"));
    assert_int_equal(p.http.framing, LLMUX_FRAMING_NDJSON);
    llmux__prepared_free(&p);
    llmux_request_free(r);
}

static void test_encode_chat_stream(void **state)
{
    llmux_request *r = chat_req(NULL);
    llmux__prepared p;
    (void)state;
    assert_int_equal(llmux_request_set_stream(r, 1), 0);
    /* no options at all: no "options" member */
    assert_body(r, "/api/chat",
                "{\"model\":\"llama3.2\",\"messages\":[{\"role\":\"user\","
                "\"content\":\"Hi\"}],\"stream\":true}");
    prep_ok(r, &p);
    assert_string_equal(header(&p, "Accept"), "application/x-ndjson");
    llmux__prepared_free(&p);
    llmux_request_free(r);
}

static void test_encode_provider_options(void **state)
{
    llmux_request *r;
    (void)state;
    r = chat_req(";think=high;keep_alive=5m;num_ctx=8192;top_k=40;"
                 "min_p=0.05;repeat_penalty=1.1;use_mmap=false;"
                 "num_gpu=-1;tfs_z=1e2;stop=END;system=sys;dimensions=3;"
                 "raw=true;truncate=false;custom=abc;num_thread=007");
    assert_body(r, "/api/chat",
                "{\"model\":\"llama3.2\",\"messages\":[{\"role\":\"user\","
                "\"content\":\"Hi\"}],\"stream\":false,"
                "\"options\":{\"num_ctx\":8192,\"top_k\":40,\"min_p\":0.05,"
                "\"repeat_penalty\":1.1,\"use_mmap\":false,\"num_gpu\":-1,"
                "\"tfs_z\":1e2,\"stop\":[\"END\"],\"custom\":\"abc\","
                "\"num_thread\":\"007\"},"
                "\"think\":\"high\",\"keep_alive\":\"5m\","
                "\"truncate\":false}");
    llmux_request_free(r);

    /* numbers for keep_alive; booleans for think; JSON arrays for stop */
    r = chat_req(";think=true;keep_alive=300;stop={[\"a\",\"b\"]}");
    assert_body(r, "/api/chat",
                "{\"model\":\"llama3.2\",\"messages\":[{\"role\":\"user\","
                "\"content\":\"Hi\"}],\"stream\":false,"
                "\"options\":{\"stop\":[\"a\",\"b\"]},"
                "\"think\":true,\"keep_alive\":300}");
    llmux_request_free(r);
    r = chat_req(";think=FALSE;keep_alive=-1;logprobs=yes;top_logprobs=3");
    assert_body(r, "/api/chat",
                "{\"model\":\"llama3.2\",\"messages\":[{\"role\":\"user\","
                "\"content\":\"Hi\"}],\"stream\":false,\"think\":false,"
                "\"keep_alive\":-1,\"logprobs\":true,\"top_logprobs\":3}");
    llmux_request_free(r);

    /* typed parameters win over options of the same name */
    r = chat_req(";num_predict=5;temperature=0.2;seed=9");
    assert_int_equal(llmux_request_set_max_tokens(r, 50), 0);
    assert_int_equal(llmux_request_set_temperature(r, 0.5), 0);
    assert_body(r, "/api/chat",
                "{\"model\":\"llama3.2\",\"messages\":[{\"role\":\"user\","
                "\"content\":\"Hi\"}],\"stream\":false,"
                "\"options\":{\"num_predict\":50,\"temperature\":0.5,"
                "\"seed\":9}}");
    llmux_request_free(r);

    /* bad values are refused with the option's name */
    r = chat_req(";think=maybe");
    pt_prep_fails(r, LLMUX_EINVAL, "think");
    llmux_request_free(r);
    r = chat_req(";truncate=sometimes");
    pt_prep_fails(r, LLMUX_EINVAL, "truncate");
    llmux_request_free(r);
    r = chat_req(";top_logprobs=-2");
    pt_prep_fails(r, LLMUX_EINVAL, "top_logprobs");
    llmux_request_free(r);
    r = chat_req(";num_ctx={[1,}");
    pt_prep_fails(r, LLMUX_EINVAL, "num_ctx");
    llmux_request_free(r);
}

static void test_encode_format(void **state)
{
    static const char *schema =
        "{\"type\":\"object\",\"properties\":{\"age\":{\"type\":\"integer\"}},"
        "\"required\":[\"age\"]}";
    char rf[512], want[1024];
    llmux_request *r;
    (void)state;
    r = chat_req(NULL);
    assert_int_equal(
        llmux_request_set_response_format(r, "{\"type\":\"json_object\"}"), 0);
    assert_body(r, "/api/chat",
                "{\"model\":\"llama3.2\",\"messages\":[{\"role\":\"user\","
                "\"content\":\"Hi\"}],\"stream\":false,\"format\":\"json\"}");
    snprintf(rf, sizeof rf,
             "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"p\","
             "\"schema\":%s,\"strict\":true}}",
             schema);
    assert_int_equal(llmux_request_set_response_format(r, rf), 0);
    snprintf(want, sizeof want,
             "{\"model\":\"llama3.2\",\"messages\":[{\"role\":\"user\","
             "\"content\":\"Hi\"}],\"stream\":false,\"format\":%s}",
             schema);
    assert_body(r, "/api/chat", want);
    assert_int_equal(
        llmux_request_set_response_format(r, "{\"type\":\"text\"}"), 0);
    assert_body(r, "/api/chat",
                "{\"model\":\"llama3.2\",\"messages\":[{\"role\":\"user\","
                "\"content\":\"Hi\"}],\"stream\":false}");
    assert_int_equal(llmux_request_set_response_format(r, "{\"type\":\"xml\"}"),
                     0);
    pt_prep_fails(r, LLMUX_EINVAL, "xml");
    assert_int_equal(
        llmux_request_set_response_format(r, "{\"type\":\"json_schema\"}"), 0);
    pt_prep_fails(r, LLMUX_EINVAL, "schema");
    llmux_request_free(r);

    /* the format option, when response_format is not set */
    r = chat_req(";format=json");
    assert_body(r, "/api/chat",
                "{\"model\":\"llama3.2\",\"messages\":[{\"role\":\"user\","
                "\"content\":\"Hi\"}],\"stream\":false,\"format\":\"json\"}");
    assert_int_equal(llmux_request_set_response_format(r, rf), 0);
    assert_body(r, "/api/chat", want); /* response_format wins */
    llmux_request_free(r);
    r = chat_req(";format={{\"type\":\"string\"}}");
    assert_body(r, "/api/chat",
                "{\"model\":\"llama3.2\",\"messages\":[{\"role\":\"user\","
                "\"content\":\"Hi\"}],\"stream\":false,"
                "\"format\":{\"type\":\"string\"}}");
    llmux_request_free(r);
    r = chat_req(";format=yaml");
    pt_prep_fails(r, LLMUX_EINVAL, "format");
    llmux_request_free(r);
}

static void test_encode_tools(void **state)
{
    static const char *params =
        "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},"
        "\"required\":[\"city\"]}";
    llmux_request *r = chat_req(NULL);
    char want[1024];
    (void)state;
    assert_int_equal(
        llmux_request_add_tool(r, "get_weather", "Weather now", params), 0);
    snprintf(want, sizeof want,
             "{\"model\":\"llama3.2\",\"messages\":[{\"role\":\"user\","
             "\"content\":\"Hi\"}],\"stream\":false,\"tools\":[{\"type\":"
             "\"function\",\"function\":{\"name\":\"get_weather\","
             "\"description\":\"Weather now\",\"parameters\":%s}}]}",
             params);
    assert_body(r, "/api/chat", want);
    /* no tool_choice in Ollama: auto and required keep the tools (and
     * send no tool_choice), none leaves them out */
    assert_int_equal(llmux_request_set_tool_choice(r, "auto"), 0);
    assert_body(r, "/api/chat", want);
    assert_int_equal(llmux_request_set_tool_choice(r, "required"), 0);
    assert_body(r, "/api/chat", want);
    assert_int_equal(llmux_request_set_tool_choice(r, "none"), 0);
    assert_body(r, "/api/chat",
                "{\"model\":\"llama3.2\",\"messages\":[{\"role\":\"user\","
                "\"content\":\"Hi\"}],\"stream\":false}");
    llmux_request_free(r);
}

static void test_encode_tool_history(void **state)
{
    llmux_tool_call calls[3] = {
        {0, "call_a", "get_weather", "{\"city\":\"Paris\",\"n\":[1,2.5]}"},
        {1, "call_b", "get_time", " "},
        {2, NULL, "noop", "{}"}};
    llmux_request *r = chat_req(NULL);
    static const char *msg_json =
        "{\"role\":\"tool\",\"tool_call_id\":\"call_b\",\"name\":\"clock\","
        "\"content\":\"12:00\"}";
    static const char *reply_json =
        "{\"role\":\"assistant\",\"content\":\"It is 18C.\","
        "\"reasoning_content\":\"The tool said so.\"}";
    (void)state;
    assert_int_equal(llmux_request_add_tool_calls(r, NULL, calls, 3), 0);
    assert_int_equal(llmux_request_add_tool_result(r, "call_a", "18C"), 0);
    assert_int_equal(
        llmux_request_add_message_json(r, msg_json, strlen(msg_json)), 0);
    assert_int_equal(llmux_request_add_tool_result(r, "call_zz", "?"), 0);
    assert_int_equal(
        llmux_request_add_message_json(r, reply_json, strlen(reply_json)), 0);
    assert_body(
        r, "/api/chat",
        "{\"model\":\"llama3.2\",\"messages\":["
        "{\"role\":\"user\",\"content\":\"Hi\"},"
        "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":["
        "{\"id\":\"call_a\",\"function\":{\"name\":\"get_weather\","
        "\"arguments\":{\"city\":\"Paris\",\"n\":[1,2.5]}}},"
        "{\"id\":\"call_b\",\"function\":{\"name\":\"get_time\","
        "\"arguments\":{}}},"
        "{\"function\":{\"name\":\"noop\",\"arguments\":{}}}]},"
        "{\"role\":\"tool\",\"content\":\"18C\",\"tool_name\":"
        "\"get_weather\",\"tool_call_id\":\"call_a\"},"
        "{\"role\":\"tool\",\"content\":\"12:00\",\"tool_name\":\"clock\","
        "\"tool_call_id\":\"call_b\"},"
        "{\"role\":\"tool\",\"content\":\"?\",\"tool_call_id\":\"call_zz\"},"
        "{\"role\":\"assistant\",\"content\":\"It is 18C.\",\"thinking\":"
        "\"The tool said so.\"}],\"stream\":false}");
    llmux_request_free(r);

    /* arguments that are not a JSON object cannot be sent */
    {
        static const char *const bad[] = {"[1,2]", "\"x\"", "{\"a\":", "42"};
        size_t i;
        for (i = 0; i < sizeof bad / sizeof *bad; i++) {
            llmux_tool_call c = {0, "c1", "f", bad[i]};
            r = chat_req(NULL);
            assert_int_equal(llmux_request_add_tool_calls(r, NULL, &c, 1), 0);
            pt_prep_fails(r, LLMUX_EINVAL, "arguments");
            llmux_request_free(r);
        }
    }
}

static void test_encode_content_parts(void **state)
{
    static const char *parts =
        "{\"role\":\"user\",\"name\":\"ann\",\"content\":[{\"type\":\"text\","
        "\"text\":\"What is this?\"},{\"type\":\"image_url\",\"image_url\":"
        "{\"url\":\"data:image/png;base64,iVBORw0K\"}},{\"type\":\"text\","
        "\"text\":\"Be short.\"},{\"type\":\"image_url\",\"image_url\":"
        "\"data:image/jpeg;base64,/9j/4A==\"}]}";
    static const char *url =
        "{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
        "\"image_url\":{\"url\":\"https://example.com/cat.png\"}}]}";
    static const char *audio =
        "{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\","
        "\"input_audio\":{\"data\":\"AAAA\",\"format\":\"wav\"}}]}";
    static const char *texts =
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"\"},{\"type\":\"input_text\",\"text\":\"b\"},\"c\"]}";
    static const char *notext =
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}";
    llmux_request *r = new_req(LLMUX_OP_CHAT, "ollama/llava;" BASE);
    (void)state;
    assert_int_equal(llmux_request_add_message_json(r, parts, strlen(parts)),
                     0);
    assert_body(r, "/api/chat",
                "{\"model\":\"llava\",\"messages\":[{\"role\":\"user\","
                "\"content\":\"What is this?\\nBe short.\",\"images\":"
                "[\"iVBORw0K\",\"/9j/4A==\"]}],\"stream\":false}");
    llmux_request_free(r);

    /* an empty first text still gets its separator; a bare string part */
    r = new_req(LLMUX_OP_CHAT, "ollama/llava;" BASE);
    assert_int_equal(llmux_request_add_message_json(r, texts, strlen(texts)),
                     0);
    assert_body(r, "/api/chat",
                "{\"model\":\"llava\",\"messages\":[{\"role\":\"user\","
                "\"content\":\"\\nb\\nc\"}],\"stream\":false}");
    llmux_request_free(r);
    r = new_req(LLMUX_OP_CHAT, "ollama/llava;" BASE);
    assert_int_equal(llmux_request_add_message_json(r, notext, strlen(notext)),
                     0);
    pt_prep_fails(r, LLMUX_EINVAL, "content part 0");
    llmux_request_free(r);

    r = new_req(LLMUX_OP_CHAT, "ollama/llava;" BASE);
    assert_int_equal(llmux_request_add_message_json(r, url, strlen(url)), 0);
    pt_prep_fails(r, LLMUX_EINVAL, "data: URLs");
    llmux_request_free(r);
    r = new_req(LLMUX_OP_CHAT, "ollama/llava;" BASE);
    assert_int_equal(llmux_request_add_message_json(r, audio, strlen(audio)),
                     0);
    pt_prep_fails(r, LLMUX_EINVAL, "input_audio");
    llmux_request_free(r);
}

static void test_encode_extra_json(void **state)
{
    static const char *json =
        "{\"model\":\"ollama/qwen3;" BASE "\",\"messages\":[{\"role\":"
        "\"user\",\"content\":\"Hi\"}],\"max_tokens\":7,\"top_k\":5,"
        "\"frequency_penalty\":0.5,\"options\":{\"num_ctx\":4096,"
        "\"top_k\":6},\"keep_alive\":\"1h\",\"foo\":[1]}";
    llmux_request *r = NULL;
    (void)state;
    /* a model with options: the trusted form */
    assert_int_equal(llmux_request_new_json_ex(&r, NULL, json, strlen(json),
                                               LLMUX_JSON_TRUSTED),
                     0);
    assert_body(r, "/api/chat",
                "{\"model\":\"qwen3\",\"messages\":[{\"role\":\"user\","
                "\"content\":\"Hi\"}],\"stream\":false,"
                "\"options\":{\"num_predict\":7,\"num_ctx\":4096,"
                "\"top_k\":6,\"frequency_penalty\":0.5},"
                "\"keep_alive\":\"1h\",\"foo\":[1]}");
    llmux_request_free(r);
}

/* ---- encoding: generate, embed, tags ------------------------------------- */

static void test_encode_generate(void **state)
{
    llmux_request *r;
    (void)state;
    r = new_req(LLMUX_OP_COMPLETE,
                "ollama/codellama:7b-code;" BASE
                ";system=You write C.;raw=true;"
                "think=low;keep_alive=0;num_ctx=2048;dimensions=5");
    assert_int_equal(llmux_request_set_option(r, "template", "{{ .Prompt }}"),
                     0);
    assert_int_equal(llmux_request_set_prompt(r, "int main("), 0);
    assert_int_equal(llmux_request_set_suffix(r, "}"), 0);
    assert_int_equal(llmux_request_set_max_tokens(r, 64), 0);
    assert_int_equal(llmux_request_set_temperature(r, 0), 0);
    assert_body(r, "/api/generate",
                "{\"model\":\"codellama:7b-code\",\"prompt\":\"int main(\","
                "\"suffix\":\"}\",\"stream\":false,"
                "\"options\":{\"num_predict\":64,\"temperature\":0,"
                "\"num_ctx\":2048},\"think\":\"low\",\"keep_alive\":0,"
                "\"system\":\"You write C.\",\"template\":\"{{ .Prompt }}\","
                "\"raw\":true}");
    assert_int_equal(llmux_request_set_stream(r, 1), 0);
    assert_body(r, "/api/generate",
                "{\"model\":\"codellama:7b-code\",\"prompt\":\"int main(\","
                "\"suffix\":\"}\",\"stream\":true,"
                "\"options\":{\"num_predict\":64,\"temperature\":0,"
                "\"num_ctx\":2048},\"think\":\"low\",\"keep_alive\":0,"
                "\"system\":\"You write C.\",\"template\":\"{{ .Prompt }}\","
                "\"raw\":true}");
    llmux_request_free(r);
}

static void test_encode_embed(void **state)
{
    llmux_request *r;
    (void)state;
    r = new_req(LLMUX_OP_EMBED, "ollama/all-minilm;" BASE);
    assert_int_equal(llmux_request_add_input(r, "Why is the sky blue?"), 0);
    assert_body(r, "/api/embed",
                "{\"model\":\"all-minilm\",\"input\":\"Why is the sky "
                "blue?\"}");
    assert_int_equal(llmux_request_add_input(r, "Why is grass green?"), 0);
    assert_body(r, "/api/embed",
                "{\"model\":\"all-minilm\",\"input\":[\"Why is the sky "
                "blue?\",\"Why is grass green?\"]}");
    llmux_request_free(r);

    r = new_req(LLMUX_OP_EMBED,
                "ollama/all-minilm;" BASE ";keep_alive=10m;truncate=false;"
                "dimensions=256;num_ctx=512;think=true");
    assert_int_equal(llmux_request_add_input(r, "x"), 0);
    assert_body(r, "/api/embed",
                "{\"model\":\"all-minilm\",\"input\":\"x\",\"options\":"
                "{\"num_ctx\":512},\"keep_alive\":\"10m\",\"truncate\":false,"
                "\"dimensions\":256}");
    llmux_request_free(r);
}

static void test_encode_models(void **state)
{
    llmux_request *r = new_req(LLMUX_OP_MODELS, "ollama;" BASE);
    llmux__prepared p;
    (void)state;
    prep_ok(r, &p);
    assert_string_equal(p.http.method, "GET");
    assert_string_equal(p.url, "http://127.0.0.1:9/api/tags");
    assert_null(p.http.body);
    llmux__prepared_free(&p);
    llmux_request_free(r);
}

/* OLLAMA_HOST as Ollama's own tools take it; OLLAMA_API_KEY optional. */
static void test_env_host_and_key(void **state)
{
    static const struct {
        const char *env;
        const char *url;
    } cases[] = {{NULL, "http://127.0.0.1:11434/api/chat"},
                 {"", "http://127.0.0.1:11434/api/chat"},
                 {"gpu", "http://gpu:11434/api/chat"},
                 {"gpu:8080", "http://gpu:8080/api/chat"},
                 {"10.0.0.5", "http://10.0.0.5:11434/api/chat"},
                 {"http://gpu", "http://gpu/api/chat"},
                 {"http://gpu:11434/", "http://gpu:11434/api/chat"},
                 {"https://ollama.com", "https://ollama.com/api/chat"}};
    llmux_request *r;
    llmux__prepared p;
    size_t i;
    (void)state;
    for (i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (cases[i].env)
            setenv("OLLAMA_HOST", cases[i].env, 1);
        else
            unsetenv("OLLAMA_HOST");
        r = new_req(LLMUX_OP_CHAT, "ollama/llama3");
        assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_USER, "x"), 0);
        prep_ok(r, &p);
        assert_string_equal(p.url, cases[i].url);
        assert_null(header(&p, "Authorization")); /* no key: no header */
        llmux__prepared_free(&p);
        llmux_request_free(r);
    }
    /* base_url in the config string wins over the environment */
    setenv("OLLAMA_HOST", "gpu", 1);
    r = new_req(LLMUX_OP_MODELS, "ollama;base_url=http://other:1/ollama");
    prep_ok(r, &p);
    assert_string_equal(p.url, "http://other:1/ollama/api/tags");
    llmux__prepared_free(&p);
    llmux_request_free(r);
    unsetenv("OLLAMA_HOST");

    setenv("OLLAMA_API_KEY", "ok-secret", 1);
    r = new_req(LLMUX_OP_MODELS, "ollama");
    prep_ok(r, &p);
    assert_string_equal(header(&p, "Authorization"), "Bearer ok-secret");
    llmux__prepared_free(&p);
    llmux_request_free(r);
    unsetenv("OLLAMA_API_KEY");
}

/* ---- decoding: whole answers --------------------------------------------- */

/* WIRE.md 3.3 (foobara/ollama-api cassette), content shortened. */
static const char chat_answer[] =
    "{\"model\":\"llama3:8b\",\"created_at\":\"2025-06-28T04:14:24."
    "642830704Z\",\"message\":{\"role\":\"assistant\",\"content\":\"A sweet "
    "question!...\"},\"done_reason\":\"stop\",\"done\":true,"
    "\"total_duration\":579168209073,\"load_duration\":5401885674,"
    "\"prompt_eval_count\":17,\"prompt_eval_duration\":21730375963,"
    "\"eval_count\":358,\"eval_duration\":552034145799}";

static void test_decode_chat(void **state)
{
    int rc;
    llmux_response *res;
    const llmux_usage *u;
    (void)state;
    res = decode_str(LLMUX_OP_CHAT, 200, chat_answer, &rc);
    assert_int_equal(rc, 0);
    assert_null(llmux_response_error(res));
    assert_string_equal(llmux_response_text(res, NULL), "A sweet question!...");
    assert_string_equal(llmux_response_model(res), "llama3:8b");
    assert_int_equal(llmux_response_created(res), 1751084064LL);
    assert_int_equal(llmux_response_finish(res), LLMUX_FINISH_STOP);
    assert_string_equal(llmux_response_finish_raw(res), "stop");
    u = llmux_response_usage(res);
    assert_int_equal(u->prompt_tokens, 17);
    assert_int_equal(u->completion_tokens, 358);
    assert_int_equal(u->total_tokens, 375);
    assert_null(llmux_response_reasoning(res));
    assert_int_equal(llmux_response_tool_call_count(res), 0);
    llmux_response_free(res);

    /* thinking models: message.thinking is reasoning */
    res = decode_str(LLMUX_OP_CHAT, 200,
                     "{\"model\":\"qwen3\",\"message\":{\"role\":\"assistant\","
                     "\"content\":\"4\",\"thinking\":\"2+2 is 4.\"},"
                     "\"done\":true,\"done_reason\":\"length\","
                     "\"eval_count\":3}",
                     &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(llmux_response_text(res, NULL), "4");
    assert_string_equal(llmux_response_reasoning(res), "2+2 is 4.");
    assert_int_equal(llmux_response_finish(res), LLMUX_FINISH_LENGTH);
    /* prompt_eval_count omitted (omitempty: zero, e.g. cached) */
    assert_int_equal(llmux_response_usage(res)->prompt_tokens, 0);
    assert_int_equal(llmux_response_usage(res)->completion_tokens, 3);
    assert_int_equal(llmux_response_usage(res)->total_tokens, 3);
    assert_int_equal(llmux_response_created(res), 0);
    llmux_response_free(res);
}

static void test_decode_generate(void **state)
{
    int rc;
    llmux_response *res;
    (void)state;
    res = decode_str(LLMUX_OP_COMPLETE, 200,
                     "{\"model\":\"gemma4\",\"created_at\":\"2025-10-26T17:15:"
                     "24.097767Z\",\"response\":\"That is all!\","
                     "\"thinking\":\"hm\",\"done\":true,\"done_reason\":"
                     "\"length\",\"context\":[1,2,3],\"prompt_eval_count\":5,"
                     "\"eval_count\":4}",
                     &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(llmux_response_text(res, NULL), "That is all!");
    assert_string_equal(llmux_response_reasoning(res), "hm");
    assert_int_equal(llmux_response_created(res), 1761498924LL);
    assert_string_equal(llmux_response_model(res), "gemma4");
    assert_int_equal(llmux_response_finish(res), LLMUX_FINISH_LENGTH);
    assert_string_equal(llmux_response_finish_raw(res), "length");
    assert_int_equal(llmux_response_usage(res)->total_tokens, 9);
    llmux_response_free(res);

    /* counts near INT64_MAX: the total saturates (UBSan aborted on the
     * signed overflow; release builds wrapped to a negative total) */
    res = decode_str(LLMUX_OP_COMPLETE, 200,
                     "{\"model\":\"m\",\"response\":\"x\",\"done\":true,"
                     "\"prompt_eval_count\":9223372036854775807,"
                     "\"eval_count\":9223372036854775000}",
                     &rc);
    assert_int_equal(rc, 0);
    assert_true(llmux_response_usage(res)->total_tokens == INT64_MAX);
    assert_true(llmux_response_usage(res)->completion_tokens ==
                9223372036854775000LL);
    llmux_response_free(res);

    /* a generate answer has "response", not "message" */
    res = decode_str(LLMUX_OP_COMPLETE, 200, chat_answer, &rc);
    assert_int_equal(rc, LLMUX_EPROTO);
    llmux_response_free(res);
    res = decode_str(LLMUX_OP_CHAT, 200,
                     "{\"model\":\"m\",\"response\":\"x\",\"done\":true}", &rc);
    assert_int_equal(rc, LLMUX_EPROTO);
    llmux_response_free(res);
}

static void test_decode_embed(void **state)
{
    int rc;
    llmux_response *res;
    size_t n;
    const float *v;
    (void)state;
    /* WIRE.md 3.6 */
    res = decode_str(LLMUX_OP_EMBED, 200,
                     "{\"model\":\"all-minilm\",\"embeddings\":[[0.010071029,"
                     "-0.0017594862,0.05007221]],\"total_duration\":14143917,"
                     "\"load_duration\":1019500,\"prompt_eval_count\":8}",
                     &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(llmux_response_embedding_count(res), 1);
    v = llmux_response_embedding(res, 0, &n);
    assert_int_equal(n, 3);
    assert_true(v[0] == 0.010071029f && v[1] == -0.0017594862f &&
                v[2] == 0.05007221f);
    assert_string_equal(llmux_response_model(res), "all-minilm");
    assert_int_equal(llmux_response_usage(res)->prompt_tokens, 8);
    assert_int_equal(llmux_response_usage(res)->total_tokens, 8);
    llmux_response_free(res);

    res = decode_str(LLMUX_OP_EMBED, 200,
                     "{\"model\":\"m\",\"embeddings\":[[1,2],[3,4,5]]}", &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(llmux_response_embedding_count(res), 2);
    v = llmux_response_embedding(res, 1, &n);
    assert_int_equal(n, 3);
    assert_true(v[0] == 3.0f && v[2] == 5.0f);
    assert_int_equal(llmux_response_usage(res)->total_tokens, -1);
    llmux_response_free(res);

    /* the legacy /api/embeddings shape */
    res = decode_str(LLMUX_OP_EMBED, 200, "{\"embedding\":[0.5,0.25]}", &rc);
    assert_int_equal(rc, 0);
    v = llmux_response_embedding(res, 0, &n);
    assert_int_equal(n, 2);
    assert_true(v[1] == 0.25f);
    llmux_response_free(res);

    {
        static const char *const bad[] = {
            "{}", "{\"embeddings\":5}", "{\"embeddings\":[[1,\"x\"]]}",
            "{\"embeddings\":[3]}", "{\"embedding\":{}}"};
        size_t i;
        for (i = 0; i < sizeof bad / sizeof *bad; i++) {
            res = decode_str(LLMUX_OP_EMBED, 200, bad[i], &rc);
            if (rc != LLMUX_EPROTO)
                fail_msg("%s: rc %d", bad[i], rc);
            assert_non_null(
                strstr(llmux_response_error(res)->message, "ollama: "));
            llmux_response_free(res);
        }
    }
}

static void test_decode_tags(void **state)
{
    int rc;
    llmux_response *res;
    (void)state;
    /* WIRE.md 3.7, plus a second model and one without a name */
    res = decode_str(
        LLMUX_OP_MODELS, 200,
        "{\"models\":[{\"name\":\"llama3.2:latest\",\"model\":\"llama3.2:"
        "latest\",\"modified_at\":\"2025-05-04T17:37:44.706015396-07:00\","
        "\"size\":2019393189,\"digest\":\"a80c\",\"details\":{\"parent_model"
        "\":\"\",\"format\":\"gguf\",\"family\":\"llama\",\"families\":["
        "\"llama\"],\"parameter_size\":\"3.2B\",\"quantization_level\":"
        "\"Q4_K_M\"}},{\"model\":\"qwen3:0.6b\",\"modified_at\":\"bad\"},"
        "{\"size\":1}]}",
        &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(llmux_response_model_count(res), 2);
    assert_string_equal(llmux_response_model_id(res, 0), "llama3.2:latest");
    assert_string_equal(llmux_response_model_id(res, 1), "qwen3:0.6b");
    /* modified_at (-07:00) as the creation time; a bad stamp is unknown */
    assert_int_equal(res->o.models[0].created, 1746405464LL);
    assert_int_equal(res->o.models[1].created, 0);
    assert_null(res->o.models[0].owned_by);
    llmux_response_free(res);

    res = decode_str(LLMUX_OP_MODELS, 200, "{\"models\":[]}", &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(llmux_response_model_count(res), 0);
    llmux_response_free(res);
    res = decode_str(LLMUX_OP_MODELS, 200, "{\"models\":null}", &rc);
    assert_int_equal(rc, 0);
    llmux_response_free(res);
    res = decode_str(LLMUX_OP_MODELS, 200, "{\"data\":[]}", &rc);
    assert_int_equal(rc, LLMUX_EPROTO);
    llmux_response_free(res);
}

static void test_decode_tool_calls(void **state)
{
    int rc;
    llmux_response *res;
    const llmux_tool_call *tc;
    json_object *args;
    (void)state;
    res = decode_str(
        LLMUX_OP_CHAT, 200,
        "{\"model\":\"llama3.2\",\"created_at\":\"2025-01-01T00:00:00Z\","
        "\"message\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":"
        "[{\"function\":{\"index\":0,\"name\":\"get_weather\",\"arguments\":"
        "{\"city\":\"Tokyo\",\"days\":[1,2],\"opts\":{\"unit\":\"C\"}}}},"
        "{\"id\":\"call_x9\",\"function\":{\"index\":1,\"name\":\"get_time\","
        "\"arguments\":{}}}]},\"done_reason\":\"stop\",\"done\":true,"
        "\"prompt_eval_count\":10,\"eval_count\":20}",
        &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(llmux_response_tool_call_count(res), 2);
    tc = llmux_response_tool_call(res, 0);
    assert_int_equal(tc->index, 0);
    assert_string_equal(tc->id, "call_0");
    assert_string_equal(tc->name, "get_weather");
    /* arguments are JSON text of the object */
    args = parse_all(tc->arguments, strlen(tc->arguments));
    assert_json_eq(args,
                   "{\"city\":\"Tokyo\",\"days\":[1,2],\"opts\":{\"unit\":"
                   "\"C\"}}");
    json_object_put(args);
    tc = llmux_response_tool_call(res, 1);
    assert_int_equal(tc->index, 1);
    assert_string_equal(tc->id, "call_x9");
    assert_string_equal(tc->name, "get_time");
    assert_string_equal(tc->arguments, "{}");
    assert_int_equal(llmux_response_finish(res), LLMUX_FINISH_TOOL_CALLS);
    assert_string_equal(llmux_response_finish_raw(res), "stop");
    assert_string_equal(llmux_response_text(res, NULL), "");
    llmux_response_free(res);

    /* loose servers: string arguments, absent arguments */
    res = decode_str(LLMUX_OP_CHAT, 200,
                     "{\"message\":{\"tool_calls\":[{\"function\":{\"name\":"
                     "\"f\",\"arguments\":\"{\\\"a\\\":1}\"}},{\"function\":"
                     "{\"name\":\"g\"}}]},\"done\":true}",
                     &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(llmux_response_tool_call(res, 0)->arguments,
                        "{\"a\":1}");
    assert_string_equal(llmux_response_tool_call(res, 1)->arguments, "{}");
    assert_string_equal(llmux_response_tool_call(res, 1)->id, "call_1");
    assert_null(llmux_response_finish_raw(res));
    assert_int_equal(llmux_response_finish(res), LLMUX_FINISH_TOOL_CALLS);
    llmux_response_free(res);

    {
        static const char *const bad[] = {
            "{\"message\":{\"tool_calls\":{}},\"done\":true}",
            "{\"message\":{\"tool_calls\":[5]},\"done\":true}",
            "{\"message\":{\"tool_calls\":[{\"name\":\"f\"}]},\"done\":true}",
            "{\"message\":{\"tool_calls\":[{\"function\":{\"name\":3}}]}}",
            "{\"message\":{\"tool_calls\":[{\"function\":{\"arguments\":7}}]"
            "}}"};
        size_t i;
        for (i = 0; i < sizeof bad / sizeof *bad; i++) {
            res = decode_str(LLMUX_OP_CHAT, 200, bad[i], &rc);
            if (rc != LLMUX_EPROTO)
                fail_msg("%s: rc %d", bad[i], rc);
            llmux_response_free(res);
        }
    }
}

static void test_decode_done_reasons(void **state)
{
    static const struct {
        const char *reason; /* NULL: absent */
        llmux_finish finish;
    } cases[] = {{"stop", LLMUX_FINISH_STOP},
                 {"length", LLMUX_FINISH_LENGTH},
                 {"load", LLMUX_FINISH_STOP},
                 {"unload", LLMUX_FINISH_STOP},
                 {"content_filter", LLMUX_FINISH_STOP},
                 {"brand_new", LLMUX_FINISH_STOP},
                 {NULL, LLMUX_FINISH_STOP}};
    size_t i;
    (void)state;
    for (i = 0; i < sizeof cases / sizeof *cases; i++) {
        char body[256];
        int rc;
        llmux_response *res;
        if (cases[i].reason)
            snprintf(body, sizeof body,
                     "{\"model\":\"m\",\"message\":{\"role\":\"assistant\","
                     "\"content\":\"\"},\"done_reason\":\"%s\",\"done\":true}",
                     cases[i].reason);
        else
            snprintf(body, sizeof body,
                     "{\"model\":\"m\",\"message\":{\"role\":\"assistant\","
                     "\"content\":\"\"},\"done\":true}");
        res = decode_str(LLMUX_OP_CHAT, 200, body, &rc);
        assert_int_equal(rc, 0);
        assert_int_equal(llmux_response_finish(res), cases[i].finish);
        if (cases[i].reason)
            assert_string_equal(llmux_response_finish_raw(res),
                                cases[i].reason);
        else
            assert_null(llmux_response_finish_raw(res));
        /* no counts at all (load/unload answers): usage unknown */
        assert_int_equal(llmux_response_usage(res)->total_tokens, -1);
        llmux_response_free(res);
    }
}

/* created_at in its RFC 3339 forms. */
static void test_decode_created_at(void **state)
{
    static const struct {
        const char *t;
        long long want;
    } cases[] = {{"2023-08-04T08:52:19.385406455-07:00", 1691164339LL},
                 {"2023-08-04T19:22:45.499127Z", 1691176965LL},
                 {"2023-08-04T19:22:45Z", 1691176965LL},
                 {"2023-08-04t19:22:45z", 1691176965LL},
                 {"2023-08-04 19:22:45+00:00", 1691176965LL},
                 {"2024-02-29T23:59:59-05:30", 1709270999LL},
                 {"2024-02-29T23:59:59Z", 1709251199LL},
                 {"1970-01-01T00:00:01Z", 1LL},
                 /* unknown: Go's zero time, malformed stamps */
                 {"0001-01-01T00:00:00Z", 0},
                 {"2023-02-29T00:00:00Z", 0},
                 {"2023-13-01T00:00:00Z", 0},
                 {"2023-08-04T24:00:00Z", 0},
                 {"2023-08-04T19:22:45", 0},
                 {"2023-08-04T19:22:45.Z", 0},
                 {"2023-08-04T19:22:45+0700", 0},
                 {"2023-08-04T19:22:45Zjunk", 0},
                 {"2023-8-4T19:22:45Z", 0},
                 {"", 0}};
    size_t i;
    (void)state;
    for (i = 0; i < sizeof cases / sizeof *cases; i++) {
        char body[256];
        int rc;
        llmux_response *res;
        snprintf(body, sizeof body,
                 "{\"created_at\":\"%s\",\"message\":{\"content\":\"x\"},"
                 "\"done\":true}",
                 cases[i].t);
        res = decode_str(LLMUX_OP_CHAT, 200, body, &rc);
        assert_int_equal(rc, 0);
        if (llmux_response_created(res) != cases[i].want)
            fail_msg("%s: %lld, want %lld", cases[i].t,
                     llmux_response_created(res), cases[i].want);
        llmux_response_free(res);
    }
}

static void test_decode_errors(void **state)
{
    static const struct {
        long status;
        const char *body;
        int code;
        const char *msg;
    } cases[] = {
        {404,
         "{\"error\":\"model \\\"llama9\\\" not found, try pulling it "
         "first\"}",
         LLMUX_EPROVIDER, "model \"llama9\" not found, try pulling it first"},
        {400, "{\"error\":\"invalid options: num_ctx\"}", LLMUX_EPROVIDER,
         "invalid options: num_ctx"},
        {500, "{\"error\":\"llama runner process has terminated\"}",
         LLMUX_EPROVIDER, "llama runner process has terminated"},
        {503,
         "{\"error\":\"server busy, please try again.  maximum pending "
         "requests exceeded\"}",
         LLMUX_EPROVIDER,
         "server busy, please try again.  maximum pending requests exceeded"},
        {401, "{\"error\":\"unauthorized\",\"signin_url\":\"https://x\"}",
         LLMUX_EAUTH, "unauthorized"},
        {429, "{\"error\":\"too many requests\"}", LLMUX_ERATELIMIT,
         "too many requests"},
        /* plain text from a proxy: the raw text */
        {502, "Bad Gateway", LLMUX_EPROVIDER, "Bad Gateway"},
        {500, "{\"error\":", LLMUX_EPROVIDER, "{\"error\":"},
        /* an error inside a 200 body */
        {200, "{\"error\":\"unexpected EOF\"}", LLMUX_EPROVIDER,
         "unexpected EOF"}};
    size_t i;
    (void)state;
    for (i = 0; i < sizeof cases / sizeof *cases; i++) {
        int rc;
        llmux_response *res =
            decode_str(LLMUX_OP_CHAT, cases[i].status, cases[i].body, &rc);
        const llmux_error *e = llmux_response_error(res);
        assert_int_equal(rc, cases[i].code);
        assert_non_null(e);
        if (!strstr(e->message, cases[i].msg))
            fail_msg("%ld: \"%s\" lacks \"%s\"", cases[i].status, e->message,
                     cases[i].msg);
        assert_int_equal(e->http_status, cases[i].status);
        llmux_response_free(res);
    }
}

/* Garbage and every truncation of a real answer: a clean EPROTO. */
static void test_decode_garbage(void **state)
{
    static const char *const bad[] = {"",
                                      "hello",
                                      "[1,2]",
                                      "42",
                                      "null",
                                      "\"x\"",
                                      "{}",
                                      "{\"message\":5}",
                                      "{\"message\":{\"content\":7}}",
                                      "{\"message\":{\"thinking\":[]}}",
                                      "{\"message\":{},\"done\":1}",
                                      "{\"a\":1}{\"b\":2}",
                                      "{\"message\":{}}\n{\"done\":7}",
                                      "{\"message\":{}}\nnull",
                                      "{\n\"message\":{}"};
    size_t i, k, len = strlen(chat_answer);
    int rc;
    llmux_response *res;
    (void)state;
    for (i = 0; i < sizeof bad / sizeof *bad; i++) {
        res = decode_str(LLMUX_OP_CHAT, 200, bad[i], &rc);
        if (rc != LLMUX_EPROTO)
            fail_msg("\"%s\": rc %d", bad[i], rc);
        assert_non_null(strstr(llmux_response_error(res)->message, "ollama: "));
        llmux_response_free(res);
    }
    for (k = 0; k < len; k++) {
        char *cut = pt_strndup(chat_answer, k);
        res = decode_op(LLMUX_OP_CHAT, 200, cut, k, &rc);
        if (rc != LLMUX_EPROTO)
            fail_msg("cut at %zu: rc %d", k, rc);
        llmux_response_free(res);
        res = decode_op(LLMUX_OP_MODELS, 200, cut, k, &rc);
        assert_int_equal(rc, LLMUX_EPROTO);
        llmux_response_free(res);
        free(cut);
    }
    /* a NUL inside the body */
    res = decode_op(LLMUX_OP_CHAT, 200, "{\"message\":{}}\0x", 16, &rc);
    assert_int_equal(rc, LLMUX_EPROTO);
    llmux_response_free(res);
}

/* WIRE.md 3.4: docs/api.md's /api/chat stream, one object per line. */
static const char wire_chat[] =
    "{\"model\":\"llama3.2\",\"created_at\":\"2023-08-04T08:52:19.385406455-"
    "07:00\",\"message\":{\"role\":\"assistant\",\"content\":\"The\","
    "\"images\":null},\"done\":false}\n"
    "{\"model\":\"llama3.2\",\"created_at\":\"2023-08-04T19:22:45.499127Z\","
    "\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,"
    "\"total_duration\":4883583458,\"load_duration\":1334875,"
    "\"prompt_eval_count\":26,\"prompt_eval_duration\":342546000,"
    "\"eval_count\":282,\"eval_duration\":4535599000}\n";

/* A non-streamed request answered with NDJSON lines folds them. */
static void test_decode_folded(void **state)
{
    static const char tools[] =
        "{\"model\":\"q\",\"created_at\":\"2025-01-02T03:04:05Z\","
        "\"message\":{\"content\":\"a\",\"tool_calls\":[{\"function\":{"
        "\"index\":0,\"name\":\"f\",\"arguments\":{}}}]},\"done\":false}\n"
        "\n"
        "{\"model\":\"q\",\"created_at\":\"2026-01-02T03:04:05Z\","
        "\"message\":{\"content\":\"b\",\"tool_calls\":[{\"function\":{"
        "\"index\":0,\"name\":\"g\",\"arguments\":{\"x\":1}}}]},\"done\":"
        "true,\"done_reason\":\"stop\",\"eval_count\":2}\n"
        "{\"message\":{\"content\":\"ignored\"}}\n";
    int rc;
    llmux_response *res;
    (void)state;
    res = decode_str(LLMUX_OP_CHAT, 200, wire_chat, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(llmux_response_text(res, NULL), "The");
    assert_int_equal(llmux_response_created(res), 1691164339LL);
    assert_int_equal(llmux_response_usage(res)->total_tokens, 308);
    assert_int_equal(llmux_response_finish(res), LLMUX_FINISH_STOP);
    llmux_response_free(res);

    res = decode_str(LLMUX_OP_CHAT, 200, tools, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(llmux_response_text(res, NULL), "ab");
    assert_int_equal(llmux_response_created(res), 1735787045LL);
    assert_int_equal(llmux_response_tool_call_count(res), 2);
    assert_string_equal(llmux_response_tool_call(res, 1)->id, "call_1");
    assert_string_equal(llmux_response_tool_call(res, 1)->name, "g");
    assert_int_equal(llmux_response_finish(res), LLMUX_FINISH_TOOL_CALLS);
    assert_int_equal(llmux_response_usage(res)->prompt_tokens, 0);
    llmux_response_free(res);

    /* an error line inside */
    res = decode_str(LLMUX_OP_COMPLETE, 200,
                     "{\"response\":\"a\",\"done\":false}\n{\"error\":"
                     "\"out of memory\"}\n",
                     &rc);
    assert_int_equal(rc, LLMUX_EPROVIDER);
    assert_string_equal(llmux_response_error(res)->message, "out of memory");
    llmux_response_free(res);
}

/* ---- streams ------------------------------------------------------------- */

static llmux_request *stream_req(llmux_op op, llmux__prepared *p)
{
    llmux_request *r = pt_op_req(op, "ollama/llama3.2;" BASE);
    assert_int_equal(llmux_request_set_stream(r, 1), 0);
    prep_ok(r, p);
    assert_int_equal(p->http.framing, LLMUX_FRAMING_NDJSON);
    return r;
}

/*
 * Runs the stream whole, byte by byte, and split in two at every offset;
 * every run must fold into the same summary. Fills *whole with the whole
 * run (free with pt_stream_free) and returns its summary (caller frees).
 */
static char *check_splits(llmux_op op, const char *wire, pt_stream *whole)
{
    return pt_check_splits(&oll, op, wire, strlen(wire), 1, 0, whole);
}

static void test_stream_chat_wire(void **state)
{
    pt_stream s;
    char *sum;
    (void)state;
    sum = check_splits(LLMUX_OP_CHAT, wire_chat, &s);
    assert_true(s.done);
    assert_int_equal(s.err, 0);
    assert_int_equal(s.events, 2);
    assert_string_equal(llmux_response_text(s.acc, NULL), "The");
    assert_string_equal(s.acc->o.model, "llama3.2");
    /* the first line's stamp, -07:00 taken into account */
    assert_int_equal(llmux_response_created(s.acc), 1691164339LL);
    assert_int_equal(llmux_response_finish(s.acc), LLMUX_FINISH_STOP);
    assert_null(llmux_response_finish_raw(s.acc)); /* no done_reason */
    assert_int_equal(llmux_response_usage(s.acc)->prompt_tokens, 26);
    assert_int_equal(llmux_response_usage(s.acc)->completion_tokens, 282);
    assert_int_equal(llmux_response_usage(s.acc)->total_tokens, 308);
    pt_stream_free(&s);
    free(sum);
}

/* WIRE.md 3.4: a /api/generate stream; the final line has text too. */
static void test_stream_generate(void **state)
{
    static const char wire[] =
        "{\"model\":\"gemma4\",\"created_at\":\"2025-10-26T17:15:24.097767Z\","
        "\"response\":\"That\",\"done\":false}\n"
        "{\"model\":\"gemma4\",\"created_at\":\"2025-10-26T17:15:24.2Z\","
        "\"response\":\" is\",\"thinking\":\"\",\"done\":false}\n"
        "{\"model\":\"gemma4\",\"created_at\":\"2025-10-26T17:15:25Z\","
        "\"response\":\"!\",\"done\":true,\"done_reason\":\"stop\","
        "\"context\":[1,2,3],\"prompt_eval_count\":11,\"eval_count\":3}\n";
    pt_stream s;
    char *sum;
    (void)state;
    sum = check_splits(LLMUX_OP_COMPLETE, wire, &s);
    assert_true(s.done);
    assert_int_equal(s.events, 3);
    assert_string_equal(llmux_response_text(s.acc, NULL), "That is!");
    assert_int_equal(llmux_response_created(s.acc), 1761498924LL);
    assert_int_equal(llmux_response_finish(s.acc), LLMUX_FINISH_STOP);
    assert_string_equal(llmux_response_finish_raw(s.acc), "stop");
    assert_int_equal(llmux_response_usage(s.acc)->total_tokens, 14);
    pt_stream_free(&s);
    free(sum);
}

/* Hand-made: thinking, content, CRLF and blank lines, three tool calls all
 * numbered 0 by Ollama, then the final line; and trailing junk after it. */
static const char wire_tools[] =
    "{\"model\":\"qwen3\",\"created_at\":\"2025-01-02T03:04:05Z\",\"message\""
    ":{\"role\":\"assistant\",\"content\":\"\",\"thinking\":\"Need \"},"
    "\"done\":false}\r\n"
    "\n"
    "{\"model\":\"qwen3\",\"message\":{\"role\":\"assistant\",\"content\":"
    "\"\",\"thinking\":\"weather.\"},\"done\":false}\n"
    "   \n"
    "{\"model\":\"qwen3\",\"message\":{\"role\":\"assistant\",\"content\":"
    "\"Checking \\u00e9\\n\"},\"done\":false}\n"
    "{\"model\":\"qwen3\",\"message\":{\"role\":\"assistant\",\"content\":"
    "\"\",\"tool_calls\":[{\"function\":{\"index\":0,\"name\":\"get_weather"
    "\",\"arguments\":{\"city\":\"Tokyo\"}}}]},\"done\":false}\n"
    "{\"model\":\"qwen3\",\"message\":{\"role\":\"assistant\",\"content\":"
    "\"\",\"tool_calls\":[{\"function\":{\"index\":0,\"name\":\"get_weather"
    "\",\"arguments\":{\"city\":\"Paris\"}}},{\"id\":\"call_k2\","
    "\"function\":{\"index\":0,\"name\":\"get_time\",\"arguments\":{\"tz\":"
    "[\"CET\",1]}}}]},\"done\":false}\n"
    "{\"model\":\"qwen3\",\"message\":{\"role\":\"assistant\",\"content\":"
    "\"\"},\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":"
    "40,\"eval_count\":25}\n"
    "{\"model\":\"qwen3\",\"message\":{\"content\":\"after\"},\"done\":false}"
    "\n";

static void test_stream_tool_calls(void **state)
{
    pt_stream s;
    char *sum;
    const llmux_tool_call *tc;
    (void)state;
    sum = check_splits(LLMUX_OP_CHAT, wire_tools, &s);
    assert_true(s.done);
    assert_int_equal(s.after_done, 1);
    assert_int_equal(s.events, 6);
    assert_string_equal(llmux_response_reasoning(s.acc), "Need weather.");
    assert_string_equal(llmux_response_text(s.acc, NULL),
                        "Checking \xc3\xa9\n");
    assert_int_equal(llmux_response_tool_call_count(s.acc), 3);
    tc = llmux_response_tool_call(s.acc, 0);
    assert_int_equal(tc->index, 0);
    assert_string_equal(tc->id, "call_0");
    assert_string_equal(tc->name, "get_weather");
    assert_string_equal(tc->arguments, "{\"city\":\"Tokyo\"}");
    tc = llmux_response_tool_call(s.acc, 1);
    assert_int_equal(tc->index, 1);
    assert_string_equal(tc->id, "call_1");
    assert_string_equal(tc->arguments, "{\"city\":\"Paris\"}");
    tc = llmux_response_tool_call(s.acc, 2);
    assert_int_equal(tc->index, 2);
    assert_string_equal(tc->id, "call_k2");
    assert_string_equal(tc->name, "get_time");
    assert_string_equal(tc->arguments, "{\"tz\":[\"CET\",1]}");
    assert_int_equal(llmux_response_finish(s.acc), LLMUX_FINISH_TOOL_CALLS);
    assert_string_equal(llmux_response_finish_raw(s.acc), "stop");
    assert_int_equal(llmux_response_usage(s.acc)->total_tokens, 65);
    assert_int_equal(llmux_response_created(s.acc), 1735787045LL);
    pt_stream_free(&s);
    free(sum);
}

/* Each chunk of a tool-call stream carries its own call, numbered on. */
static void test_stream_tool_chunks(void **state)
{
    static const char *const lines[] = {
        "{\"message\":{\"tool_calls\":[{\"function\":{\"index\":0,\"name\":"
        "\"a\",\"arguments\":{}}}]},\"done\":false}",
        "{\"message\":{\"tool_calls\":[{\"function\":{\"name\":\"b\","
        "\"arguments\":{\"x\":1}}}]},\"done\":false}",
        "{\"message\":{\"tool_calls\":[{\"function\":{\"index\":0,\"name\":"
        "\"c\",\"arguments\":{}}}]},\"done\":true,\"done_reason\":\"stop\"}"};
    llmux__prepared p;
    llmux_request *r = stream_req(LLMUX_OP_CHAT, &p);
    llmux_chunk ch;
    llmux_event ev;
    size_t i;
    (void)state;
    memset(&ch, 0, sizeof ch);
    llmux__out_init(&ch.o, LLMUX_OP_CHAT, 1);
    for (i = 0; i < 3; i++) {
        const llmux_tool_call *tc;
        char id[16];
        memset(&ev, 0, sizeof ev);
        ev.struct_size = sizeof ev;
        ev.data = lines[i];
        ev.data_len = strlen(lines[i]);
        assert_int_equal(llmux__decode_event(&p, &ev, &ch),
                         i == 2 ? LLMUX_EVENT_DONE : 0);
        assert_int_equal(llmux_chunk_tool_call_count(&ch), 1);
        tc = llmux_chunk_tool_call(&ch, 0);
        assert_int_equal(tc->index, (int)i);
        snprintf(id, sizeof id, "call_%zu", i);
        assert_string_equal(tc->id, id);
        assert_int_equal(llmux_chunk_finish(&ch),
                         i == 2 ? LLMUX_FINISH_TOOL_CALLS : LLMUX_FINISH_NONE);
    }
    llmux__out_free(&ch.o);
    llmux__prepared_free(&p);
    llmux_request_free(r);
}

static void test_stream_done_reasons(void **state)
{
    static const char *const reasons[] = {"load", "unload", "whatever",
                                          "length"};
    size_t i;
    (void)state;
    for (i = 0; i < sizeof reasons / sizeof *reasons; i++) {
        char wire[512];
        pt_stream s;
        char *sum;
        snprintf(wire, sizeof wire,
                 "{\"model\":\"m\",\"message\":{\"content\":\"a\"},\"done\":"
                 "false}\n{\"model\":\"m\",\"message\":{\"content\":\"\"},"
                 "\"done\":true,\"done_reason\":\"%s\"}\n",
                 reasons[i]);
        sum = check_splits(LLMUX_OP_CHAT, wire, &s);
        assert_true(s.done);
        assert_int_equal(llmux_response_finish(s.acc),
                         i == 3 ? LLMUX_FINISH_LENGTH : LLMUX_FINISH_STOP);
        assert_string_equal(llmux_response_finish_raw(s.acc), reasons[i]);
        assert_int_equal(llmux_response_usage(s.acc)->total_tokens, -1);
        pt_stream_free(&s);
        free(sum);
    }
}

static void test_stream_error_line(void **state)
{
    static const char wire[] =
        "{\"model\":\"m\",\"message\":{\"content\":\"Hel\"},\"done\":false}\n"
        "{\"error\":\"an error was encountered while running the model: "
        "unexpected EOF\"}\n"
        "{\"model\":\"m\",\"message\":{\"content\":\"lo\"},\"done\":false}\n";
    pt_stream s;
    char *sum;
    (void)state;
    sum = check_splits(LLMUX_OP_CHAT, wire, &s);
    assert_int_equal(s.err, LLMUX_EPROVIDER);
    assert_false(s.done);
    assert_int_equal(s.events, 1);
    assert_string_equal(s.err_msg, "an error was encountered while running "
                                   "the model: unexpected EOF");
    assert_string_equal(llmux_response_text(s.acc, NULL), "Hel");
    pt_stream_free(&s);
    free(sum);

    /* first line an error, in a generate stream */
    sum = check_splits(LLMUX_OP_COMPLETE, "{\"error\":\"boom\"}", &s);
    assert_int_equal(s.err, LLMUX_EPROVIDER);
    assert_string_equal(s.err_msg, "boom");
    pt_stream_free(&s);
    free(sum);
}

/* A stream cut short (no done line) keeps what arrived, unfinished. */
static void test_stream_cut(void **state)
{
    pt_stream s;
    char *sum,
        *wire = pt_strndup(wire_chat, strchr(wire_chat, '\n') - wire_chat);
    (void)state;
    sum = check_splits(LLMUX_OP_CHAT, wire, &s);
    assert_false(s.done);
    assert_int_equal(s.err, 0);
    assert_string_equal(llmux_response_text(s.acc, NULL), "The");
    assert_int_equal(llmux_response_finish(s.acc), LLMUX_FINISH_NONE);
    pt_stream_free(&s);
    free(sum);
    free(wire);
}

/* Decodes one line on a fresh streaming request. */
static int one_event(llmux_op op, const char *data, size_t len, char **msg)
{
    return pt_one_event(&oll, op, data, len, msg, NULL);
}

static void test_stream_garbage(void **state)
{
    static const char *const bad[] = {
        "hello",
        "{",
        "{\"model\":",
        "[1,2]",
        "42",
        "null",
        "\"x\"",
        "true",
        "{\"message\":5}",
        "{\"message\":{\"content\":[1]}}",
        "{\"message\":{\"thinking\":{}}}",
        "{\"message\":{\"tool_calls\":\"x\"}}",
        "{\"message\":{\"tool_calls\":[{\"function\":[]}]}}",
        "{\"done\":\"yes\"}",
        "{\"a\":1}{\"b\":2}",
        "{\"message\":{\"content\":\"\\ud800x\"}}x"};
    static const char *const ok[] = {"",
                                     "  ",
                                     "\r",
                                     "{}",
                                     "{\"message\":null,\"done\":false}",
                                     "{\"message\":{}}"};
    size_t i;
    char *msg;
    (void)state;
    for (i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = one_event(LLMUX_OP_CHAT, bad[i], strlen(bad[i]), &msg);
        if (rc != LLMUX_EPROTO)
            fail_msg("line \"%s\": rc %d", bad[i], rc);
        assert_non_null(msg);
        assert_memory_equal(msg, "ollama: ", 8);
        free(msg);
    }
    for (i = 0; i < sizeof ok / sizeof *ok; i++) {
        int rc = one_event(LLMUX_OP_CHAT, ok[i], strlen(ok[i]), &msg);
        if (rc != 0)
            fail_msg("line \"%s\": rc %d", ok[i], rc);
        assert_null(msg);
    }
    /* generate lines must have a string "response" when they have one */
    assert_int_equal(one_event(LLMUX_OP_COMPLETE, "{\"response\":1}", 14, &msg),
                     LLMUX_EPROTO);
    free(msg);
}

/* Every truncation of every line of the hand-made streams: EPROTO. */
static void test_stream_truncated_lines(void **state)
{
    static const char *const wires[] = {wire_chat, wire_tools};
    size_t w, k;
    (void)state;
    for (w = 0; w < sizeof wires / sizeof *wires; w++) {
        const char *line = wires[w], *nl;
        for (; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
            size_t len = (size_t)(nl - line);
            while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
                len--;
            if (!len)
                continue;
            for (k = 1; k < len; k++) {
                char *msg;
                int rc = one_event(LLMUX_OP_CHAT, line, k, &msg);
                if (rc != LLMUX_EPROTO)
                    fail_msg("line cut at %zu: rc %d: %.*s", k, rc, (int)k,
                             line);
                assert_non_null(msg);
                free(msg);
            }
        }
    }
}

/* Every byte value at every position of a line: never a crash, and only
 * results a decoder may give. */
static void test_stream_mutations(void **state)
{
    const char *line;
    char buf[512];
    size_t len, i;
    int c;
    (void)state;
    /* the tool-call line with two calls */
    line = strstr(wire_tools, "{\"model\":\"qwen3\",\"message\":{\"role\":"
                              "\"assistant\",\"content\":\"\",\"tool_calls\":"
                              "[{\"function\":{\"index\":0,\"name\":"
                              "\"get_weather\",\"arguments\":{\"city\":"
                              "\"Paris\"");
    assert_non_null(line);
    len = (size_t)(strchr(line, '\n') - line);
    assert_true(len < sizeof buf);
    for (i = 0; i < len; i += 3) {
        for (c = 0; c < 256; c += 17) {
            char *msg;
            int rc;
            memcpy(buf, line, len);
            buf[i] = (char)c;
            rc = one_event(LLMUX_OP_CHAT, buf, len, &msg);
            assert_true(rc == 0 || rc == LLMUX_EVENT_DONE ||
                        rc == LLMUX_EPROTO || rc == LLMUX_EPROVIDER);
            free(msg);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_chat),
        cmocka_unit_test(test_encode_chat_stream),
        cmocka_unit_test(test_encode_provider_options),
        cmocka_unit_test(test_encode_format),
        cmocka_unit_test(test_encode_tools),
        cmocka_unit_test(test_encode_tool_history),
        cmocka_unit_test(test_encode_content_parts),
        cmocka_unit_test(test_encode_extra_json),
        cmocka_unit_test(test_encode_generate),
        cmocka_unit_test(test_encode_embed),
        cmocka_unit_test(test_encode_models),
        cmocka_unit_test(test_env_host_and_key),
        cmocka_unit_test(test_decode_chat),
        cmocka_unit_test(test_decode_generate),
        cmocka_unit_test(test_decode_embed),
        cmocka_unit_test(test_decode_tags),
        cmocka_unit_test(test_decode_tool_calls),
        cmocka_unit_test(test_decode_done_reasons),
        cmocka_unit_test(test_decode_created_at),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_decode_garbage),
        cmocka_unit_test(test_decode_folded),
        cmocka_unit_test(test_stream_chat_wire),
        cmocka_unit_test(test_stream_generate),
        cmocka_unit_test(test_stream_tool_calls),
        cmocka_unit_test(test_stream_tool_chunks),
        cmocka_unit_test(test_stream_done_reasons),
        cmocka_unit_test(test_stream_error_line),
        cmocka_unit_test(test_stream_cut),
        cmocka_unit_test(test_stream_garbage),
        cmocka_unit_test(test_stream_truncated_lines),
        cmocka_unit_test(test_stream_mutations),
    };
    int rc;
    /* the environment must not pick another server or send a key */
    unsetenv("OLLAMA_HOST");
    unsetenv("OLLAMA_API_KEY");
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    llmux__providers_cleanup();
    return rc;
}
