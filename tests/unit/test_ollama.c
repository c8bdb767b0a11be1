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

    /* logprobs as a caller sets them reach Ollama at the top level */
    r = chat_req(NULL);
    assert_int_equal(llmux_request_set_field(r, "logprobs", "true"), 0);
    assert_int_equal(llmux_request_set_field(r, "top_logprobs", "2"), 0);
    assert_int_equal(llmux_request_set_field(r, "n", "1"), 0);
    assert_body(r, "/api/chat",
                "{\"model\":\"llama3.2\",\"messages\":[{\"role\":\"user\","
                "\"content\":\"Hi\"}],\"stream\":false,\"logprobs\":true,"
                "\"top_logprobs\":2}");
    llmux_request_free(r);
    /* one choice is all Ollama gives: more is refused by name */
    r = chat_req(NULL);
    assert_int_equal(llmux_request_set_field(r, "n", "2"), 0);
    pt_prep_fails(r, LLMUX_ENOTSUP, "\"n\"");
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
    /* no tool_choice in Ollama: auto keeps the tools (and sends no
     * tool_choice), none leaves them out, any other is refused by name */
    assert_int_equal(llmux_request_set_tool_choice(r, "auto"), 0);
    assert_body(r, "/api/chat", want);
    assert_int_equal(llmux_request_set_tool_choice(r, "required"), 0);
    pt_prep_fails(r, LLMUX_ENOTSUP, "tool_choice");
    assert_int_equal(
        llmux_request_set_tool_choice(
            r, "{\"type\":\"function\",\"function\":{\"name\":\"f\"}}"),
        0);
    pt_prep_fails(r, LLMUX_ENOTSUP, "tool_choice");
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
    pt_prep_fails(r, LLMUX_ENOTSUP, "data: URLs");
    llmux_request_free(r);
    r = new_req(LLMUX_OP_CHAT, "ollama/llava;" BASE);
    assert_int_equal(llmux_request_add_message_json(r, audio, strlen(audio)),
                     0);
    pt_prep_fails(r, LLMUX_ENOTSUP, "\"input_audio\" is not supported");
    llmux_request_free(r);

    /* typed parts: text and image bytes reach Ollama's own shape */
    {
        static const unsigned char png[] = {0x89, 'P', 'N', 'G'};
        r = new_req(LLMUX_OP_CHAT, "ollama/llava;" BASE);
        assert_int_equal(
            llmux_request_add_message(r, LLMUX_ROLE_USER, "What is it?"), 0);
        assert_int_equal(llmux_request_add_image(r, LLMUX_ROLE_USER,
                                                 "image/png", png, 4, NULL),
                         0);
        assert_body(r, "/api/chat",
                    "{\"model\":\"llava\",\"messages\":[{\"role\":\"user\","
                    "\"content\":\"What is it?\",\"images\":[\"iVBORw==\"]}],"
                    "\"stream\":false}");
        llmux_request_free(r);
        r = new_req(LLMUX_OP_CHAT, "ollama/llava;" BASE);
        assert_int_equal(llmux_request_add_file(r, LLMUX_ROLE_USER, "a.pdf",
                                                "application/pdf", "%PDF", 4),
                         0);
        pt_prep_fails(r, LLMUX_ENOTSUP, "\"file\" is not supported");
        llmux_request_free(r);
        r = new_req(LLMUX_OP_CHAT, "ollama/llava;" BASE);
        assert_int_equal(llmux_request_add_document_url(
                             r, LLMUX_ROLE_USER, "https://x.test/a.pdf", NULL),
                         0);
        pt_prep_fails(r, LLMUX_ENOTSUP, "\"document_url\" is not supported");
        llmux_request_free(r);
    }
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

/* Tool calls: their arguments are JSON text of the object (compared as
 * JSON). */
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
}

/* WIRE.md 3.4: docs/api.md's /api/chat stream, one object per line. */
#define WIRE_CHAT_1                                                            \
    "{\"model\":\"llama3.2\",\"created_at\":\"2023-08-04T08:52:19.385406455-"  \
    "07:00\",\"message\":{\"role\":\"assistant\",\"content\":\"The\","         \
    "\"images\":null},\"done\":false}"
#define WIRE_CHAT_2                                                            \
    "{\"model\":\"llama3.2\",\"created_at\":\"2023-08-04T19:22:45.499127Z\","  \
    "\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,"     \
    "\"total_duration\":4883583458,\"load_duration\":1334875,"                 \
    "\"prompt_eval_count\":26,\"prompt_eval_duration\":342546000,"             \
    "\"eval_count\":282,\"eval_duration\":4535599000}"
static const char wire_chat[] = WIRE_CHAT_1 "\n" WIRE_CHAT_2 "\n";

/* ---- streams ------------------------------------------------------------- */

static llmux_request *stream_req(llmux_op op, llmux__prepared *p)
{
    llmux_request *r = pt_op_req(op, "ollama/llama3.2;" BASE);
    assert_int_equal(llmux_request_set_stream(r, 1), 0);
    prep_ok(r, p);
    assert_int_equal(p->http.framing, LLMUX_FRAMING_NDJSON);
    return r;
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

/* Decodes one line on a fresh streaming request. */
static int one_event(llmux_op op, const char *data, size_t len, char **msg)
{
    return pt_one_event(&oll, op, data, len, msg, NULL);
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

/* ---- the decoder table (plugin_test.h: pt_case) ------------------------- */

/* An answer with this done_reason member (or none). */
#define DONE_REASON(member)                                                    \
    "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":"        \
    "\"\"}" member ",\"done\":true}"
/* An answer stamped created_at. */
#define CREATED_AT(t)                                                          \
    "{\"created_at\":\"" t "\",\"message\":{\"content\":\"x\"},\"done\":true}"
/* A stream of two lines, the last with this done_reason. */
#define STREAM_DONE_REASON(reason)                                             \
    "{\"model\":\"m\",\"message\":{\"content\":\"a\"},\"done\":false}\n"       \
    "{\"model\":\"m\",\"message\":{\"content\":\"\"},\"done\":true,"           \
    "\"done_reason\":\"" reason "\"}\n"

static const pt_case cases[] = {
    /* native logprobs: top-level, per line in a stream (WIRE.md 8.4);
     * durations and other members kept as fields */
    {.name = "stream logprobs and fields not modelled",
     .mode = PT_STREAM,
     .op = LLMUX_OP_CHAT,
     .body = "{\"model\":\"m\",\"created_at\":\"2025-10-26T17:15:24Z\","
             "\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},"
             "\"done\":false,\"logprobs\":[{\"token\":\"Hi\",\"logprob\":"
             "-0.125,\"bytes\":[72,105],\"top_logprobs\":[{\"token\":\"Hi\","
             "\"logprob\":-0.125},{\"token\":\"Yo\",\"logprob\":-3}]}]}\n"
             "{\"model\":\"m\",\"created_at\":\"2025-10-26T17:15:25Z\","
             "\"message\":{\"role\":\"assistant\",\"content\":\"!\"},"
             "\"done\":false,\"logprobs\":[{\"token\":\"!\",\"logprob\":-1}]}\n"
             "{\"model\":\"m\",\"created_at\":\"2025-10-26T17:15:25Z\","
             "\"message\":{\"role\":\"assistant\",\"content\":\"\"},"
             "\"done\":true,\"done_reason\":\"stop\",\"total_duration\":5,"
             "\"eval_duration\":3,\"prompt_eval_count\":2,\"eval_count\":2}\n",
     .want = "{'done':1,'text':'Hi!','json':{'choices':[{'logprobs':{"
             "'refusal':null,'content':[{'token':'Hi','logprob':-0.125,"
             "'bytes':[72,105],'top_logprobs':[{'token':'Hi',"
             "'logprob':-0.125,'bytes':null},{'token':'Yo','logprob':-3}]},"
             "{'token':'!','logprob':-1,'bytes':null,'top_logprobs':[]}]}}],"
             "'total_duration':5,'eval_duration':3}}"},
    {.name = "garbage logprobs",
     .op = LLMUX_OP_CHAT,
     .body = "{\"model\":\"m\",\"message\":{\"content\":\"x\"},\"done\":true,"
             "\"logprobs\":{\"token\":\"x\"}}",
     .code = LLMUX_EPROTO,
     .msg = "bad logprobs"},
    /* ---- decoding: whole answers */
    {.name = "decode a chat answer",
     .op = LLMUX_OP_CHAT,
     .body = chat_answer,
     .want = "{'text':'A sweet question!...','model':'llama3:8b',"
             "'created':1751084064,'finish':'stop','finish_raw':'stop',"
             "'usage':{'prompt_tokens':17,'completion_tokens':358,"
             "'total_tokens':375},'reasoning':null,'tool_calls':[]}"},
    /* thinking models: message.thinking is reasoning; prompt_eval_count
     * omitted (omitempty: zero, e.g. cached) */
    {.name = "decode a thinking answer",
     .op = LLMUX_OP_CHAT,
     .body = "{\"model\":\"qwen3\",\"message\":{\"role\":\"assistant\","
             "\"content\":\"4\",\"thinking\":\"2+2 is 4.\"},"
             "\"done\":true,\"done_reason\":\"length\","
             "\"eval_count\":3}",
     .want = "{'text':'4','reasoning':'2+2 is 4.','finish':'length',"
             "'usage':{'prompt_tokens':0,'completion_tokens':3,"
             "'total_tokens':3},'created':0}"},
    {.name = "decode a generate answer",
     .op = LLMUX_OP_COMPLETE,
     .body = "{\"model\":\"gemma4\",\"created_at\":\"2025-10-26T17:15:"
             "24.097767Z\",\"response\":\"That is all!\","
             "\"thinking\":\"hm\",\"done\":true,\"done_reason\":"
             "\"length\",\"context\":[1,2,3],\"prompt_eval_count\":5,"
             "\"eval_count\":4}",
     .want = "{'text':'That is all!','reasoning':'hm','created':1761498924,"
             "'model':'gemma4','finish':'length','finish_raw':'length',"
             "'usage':{'total_tokens':9}}"},
    /* counts near INT64_MAX: the total saturates (UBSan aborted on the
     * signed overflow; release builds wrapped to a negative total) */
    {.name = "decode counts near INT64_MAX",
     .op = LLMUX_OP_COMPLETE,
     .body = "{\"model\":\"m\",\"response\":\"x\",\"done\":true,"
             "\"prompt_eval_count\":9223372036854775807,"
             "\"eval_count\":9223372036854775000}",
     .want = "{'usage':{'total_tokens':9223372036854775807,"
             "'completion_tokens':9223372036854775000}}"},
    /* a generate answer has "response", not "message" */
    {.name = "decode a chat answer to a generate request",
     .op = LLMUX_OP_COMPLETE,
     .body = chat_answer,
     .code = LLMUX_EPROTO},
    {.name = "decode a generate answer to a chat request",
     .op = LLMUX_OP_CHAT,
     .body = "{\"model\":\"m\",\"response\":\"x\",\"done\":true}",
     .code = LLMUX_EPROTO},
    /* WIRE.md 3.6 */
    {.name = "decode embeddings",
     .op = LLMUX_OP_EMBED,
     .body = "{\"model\":\"all-minilm\",\"embeddings\":[[0.010071029,"
             "-0.0017594862,0.05007221]],\"total_duration\":14143917,"
             "\"load_duration\":1019500,\"prompt_eval_count\":8}",
     .want = "{'embeddings':[[0.010071029,-0.0017594862,0.05007221]],"
             "'model':'all-minilm','usage':{'prompt_tokens':8,"
             "'total_tokens':8}}"},
    {.name = "decode two embeddings",
     .op = LLMUX_OP_EMBED,
     .body = "{\"model\":\"m\",\"embeddings\":[[1,2],[3,4,5]]}",
     .want = "{'embeddings':[[1,2],[3,4,5]],'usage':{'total_tokens':-1}}"},
    /* the legacy /api/embeddings shape */
    {.name = "decode a legacy embedding",
     .op = LLMUX_OP_EMBED,
     .body = "{\"embedding\":[0.5,0.25]}",
     .want = "{'embeddings':[[0.5,0.25]]}"},
    PT_GARBAGE(LLMUX_OP_EMBED, "{}"),
    PT_GARBAGE(LLMUX_OP_EMBED, "{\"embeddings\":5}"),
    PT_GARBAGE(LLMUX_OP_EMBED, "{\"embeddings\":[[1,\"x\"]]}"),
    PT_GARBAGE(LLMUX_OP_EMBED, "{\"embeddings\":[3]}"),
    PT_GARBAGE(LLMUX_OP_EMBED, "{\"embedding\":{}}"),
    /* WIRE.md 3.7, plus a second model and one without a name;
     * modified_at (-07:00) as the creation time, a bad stamp is unknown */
    {.name = "decode tags",
     .op = LLMUX_OP_MODELS,
     .body =
         "{\"models\":[{\"name\":\"llama3.2:latest\",\"model\":\"llama3.2:"
         "latest\",\"modified_at\":\"2025-05-04T17:37:44.706015396-07:00\","
         "\"size\":2019393189,\"digest\":\"a80c\",\"details\":{\"parent_model"
         "\":\"\",\"format\":\"gguf\",\"family\":\"llama\",\"families\":["
         "\"llama\"],\"parameter_size\":\"3.2B\",\"quantization_level\":"
         "\"Q4_K_M\"}},{\"model\":\"qwen3:0.6b\",\"modified_at\":\"bad\"},"
         "{\"size\":1}]}",
     .want = "{'models':[{'id':'llama3.2:latest','created':1746405464,"
             "'owned_by':null},{'id':'qwen3:0.6b','created':0}]}"},
    {.name = "decode no tags",
     .op = LLMUX_OP_MODELS,
     .body = "{\"models\":[]}",
     .want = "{'models':[]}"},
    {.name = "decode null tags",
     .op = LLMUX_OP_MODELS,
     .body = "{\"models\":null}"},
    {.name = "decode tags in another shape",
     .op = LLMUX_OP_MODELS,
     .body = "{\"data\":[]}",
     .code = LLMUX_EPROTO},
    /* loose servers: string arguments, absent arguments */
    {.name = "decode loose tool calls",
     .op = LLMUX_OP_CHAT,
     .body = "{\"message\":{\"tool_calls\":[{\"function\":{\"name\":"
             "\"f\",\"arguments\":\"{\\\"a\\\":1}\"}},{\"function\":"
             "{\"name\":\"g\"}}]},\"done\":true}",
     .want = "{'tool_calls':[{'arguments':'{\"a\":1}'},{'arguments':'{}',"
             "'id':'call_1'}],'finish_raw':null,'finish':'tool_calls'}"},
    PT_GARBAGE(LLMUX_OP_CHAT,
               "{\"message\":{\"tool_calls\":{}},\"done\":true}"),
    PT_GARBAGE(LLMUX_OP_CHAT,
               "{\"message\":{\"tool_calls\":[5]},\"done\":true}"),
    PT_GARBAGE(
        LLMUX_OP_CHAT,
        "{\"message\":{\"tool_calls\":[{\"name\":\"f\"}]},\"done\":true}"),
    PT_GARBAGE(LLMUX_OP_CHAT,
               "{\"message\":{\"tool_calls\":[{\"function\":{\"name\":3}}]}}"),
    PT_GARBAGE(LLMUX_OP_CHAT,
               "{\"message\":{\"tool_calls\":[{\"function\":{\"arguments\":7}}]"
               "}}"),
    /* done_reason: no counts at all (load/unload answers): usage unknown */
    {.name = "decode done_reason \"stop\"",
     .op = LLMUX_OP_CHAT,
     .body = DONE_REASON(",\"done_reason\":\"stop\""),
     .want = "{'finish':'stop','finish_raw':'stop',"
             "'usage':{'total_tokens':-1}}"},
    {.name = "decode done_reason \"length\"",
     .op = LLMUX_OP_CHAT,
     .body = DONE_REASON(",\"done_reason\":\"length\""),
     .want = "{'finish':'length','finish_raw':'length',"
             "'usage':{'total_tokens':-1}}"},
    {.name = "decode done_reason \"load\"",
     .op = LLMUX_OP_CHAT,
     .body = DONE_REASON(",\"done_reason\":\"load\""),
     .want = "{'finish':'stop','finish_raw':'load',"
             "'usage':{'total_tokens':-1}}"},
    {.name = "decode done_reason \"unload\"",
     .op = LLMUX_OP_CHAT,
     .body = DONE_REASON(",\"done_reason\":\"unload\""),
     .want = "{'finish':'stop','finish_raw':'unload',"
             "'usage':{'total_tokens':-1}}"},
    {.name = "decode done_reason \"content_filter\"",
     .op = LLMUX_OP_CHAT,
     .body = DONE_REASON(",\"done_reason\":\"content_filter\""),
     .want = "{'finish':'stop','finish_raw':'content_filter',"
             "'usage':{'total_tokens':-1}}"},
    {.name = "decode done_reason \"brand_new\"",
     .op = LLMUX_OP_CHAT,
     .body = DONE_REASON(",\"done_reason\":\"brand_new\""),
     .want = "{'finish':'stop','finish_raw':'brand_new',"
             "'usage':{'total_tokens':-1}}"},
    {.name = "decode no done_reason",
     .op = LLMUX_OP_CHAT,
     .body = DONE_REASON(""),
     .want = "{'finish':'stop','finish_raw':null,"
             "'usage':{'total_tokens':-1}}"},
    /* created_at in its RFC 3339 forms; unknown: Go's zero time, malformed
     * stamps */
    {.name = "decode created_at \"2023-08-04T08:52:19.385406455-07:00\"",
     .op = LLMUX_OP_CHAT,
     .body = CREATED_AT("2023-08-04T08:52:19.385406455-07:00"),
     .want = "{'created':1691164339}"},
    {.name = "decode created_at \"2023-08-04T19:22:45.499127Z\"",
     .op = LLMUX_OP_CHAT,
     .body = CREATED_AT("2023-08-04T19:22:45.499127Z"),
     .want = "{'created':1691176965}"},
    {.name = "decode created_at \"2023-08-04T19:22:45Z\"",
     .op = LLMUX_OP_CHAT,
     .body = CREATED_AT("2023-08-04T19:22:45Z"),
     .want = "{'created':1691176965}"},
    {.name = "decode created_at \"2023-08-04t19:22:45z\"",
     .op = LLMUX_OP_CHAT,
     .body = CREATED_AT("2023-08-04t19:22:45z"),
     .want = "{'created':1691176965}"},
    {.name = "decode created_at \"2023-08-04 19:22:45+00:00\"",
     .op = LLMUX_OP_CHAT,
     .body = CREATED_AT("2023-08-04 19:22:45+00:00"),
     .want = "{'created':1691176965}"},
    {.name = "decode created_at \"2024-02-29T23:59:59-05:30\"",
     .op = LLMUX_OP_CHAT,
     .body = CREATED_AT("2024-02-29T23:59:59-05:30"),
     .want = "{'created':1709270999}"},
    {.name = "decode created_at \"2024-02-29T23:59:59Z\"",
     .op = LLMUX_OP_CHAT,
     .body = CREATED_AT("2024-02-29T23:59:59Z"),
     .want = "{'created':1709251199}"},
    {.name = "decode created_at \"1970-01-01T00:00:01Z\"",
     .op = LLMUX_OP_CHAT,
     .body = CREATED_AT("1970-01-01T00:00:01Z"),
     .want = "{'created':1}"},
    {.name = "decode created_at \"0001-01-01T00:00:00Z\"",
     .op = LLMUX_OP_CHAT,
     .body = CREATED_AT("0001-01-01T00:00:00Z"),
     .want = "{'created':0}"},
    {.name = "decode created_at \"2023-02-29T00:00:00Z\"",
     .op = LLMUX_OP_CHAT,
     .body = CREATED_AT("2023-02-29T00:00:00Z"),
     .want = "{'created':0}"},
    {.name = "decode created_at \"2023-13-01T00:00:00Z\"",
     .op = LLMUX_OP_CHAT,
     .body = CREATED_AT("2023-13-01T00:00:00Z"),
     .want = "{'created':0}"},
    {.name = "decode created_at \"2023-08-04T24:00:00Z\"",
     .op = LLMUX_OP_CHAT,
     .body = CREATED_AT("2023-08-04T24:00:00Z"),
     .want = "{'created':0}"},
    {.name = "decode created_at \"2023-08-04T19:22:45\"",
     .op = LLMUX_OP_CHAT,
     .body = CREATED_AT("2023-08-04T19:22:45"),
     .want = "{'created':0}"},
    {.name = "decode created_at \"2023-08-04T19:22:45.Z\"",
     .op = LLMUX_OP_CHAT,
     .body = CREATED_AT("2023-08-04T19:22:45.Z"),
     .want = "{'created':0}"},
    {.name = "decode created_at \"2023-08-04T19:22:45+0700\"",
     .op = LLMUX_OP_CHAT,
     .body = CREATED_AT("2023-08-04T19:22:45+0700"),
     .want = "{'created':0}"},
    {.name = "decode created_at \"2023-08-04T19:22:45Zjunk\"",
     .op = LLMUX_OP_CHAT,
     .body = CREATED_AT("2023-08-04T19:22:45Zjunk"),
     .want = "{'created':0}"},
    {.name = "decode created_at \"2023-8-4T19:22:45Z\"",
     .op = LLMUX_OP_CHAT,
     .body = CREATED_AT("2023-8-4T19:22:45Z"),
     .want = "{'created':0}"},
    {.name = "decode created_at \"\"",
     .op = LLMUX_OP_CHAT,
     .body = CREATED_AT(""),
     .want = "{'created':0}"},
    /* ---- errors */
    {.op = LLMUX_OP_CHAT,
     .body = "{\"error\":\"model \\\"llama9\\\" not found, try pulling it "
             "first\"}",
     .status = 404,
     .code = LLMUX_EPROVIDER,
     .msg = "model \"llama9\" not found, try pulling it first"},
    {.op = LLMUX_OP_CHAT,
     .body = "{\"error\":\"invalid options: num_ctx\"}",
     .status = 400,
     .code = LLMUX_EPROVIDER,
     .msg = "invalid options: num_ctx"},
    {.op = LLMUX_OP_CHAT,
     .body = "{\"error\":\"llama runner process has terminated\"}",
     .status = 500,
     .code = LLMUX_EPROVIDER,
     .msg = "llama runner process has terminated"},
    {.op = LLMUX_OP_CHAT,
     .body = "{\"error\":\"server busy, please try again.  maximum pending "
             "requests exceeded\"}",
     .status = 503,
     .code = LLMUX_EPROVIDER,
     .msg =
         "server busy, please try again.  maximum pending requests exceeded"},
    {.op = LLMUX_OP_CHAT,
     .body = "{\"error\":\"unauthorized\",\"signin_url\":\"https://x\"}",
     .status = 401,
     .code = LLMUX_EAUTH,
     .msg = "unauthorized"},
    {.op = LLMUX_OP_CHAT,
     .body = "{\"error\":\"too many requests\"}",
     .status = 429,
     .code = LLMUX_ERATELIMIT,
     .msg = "too many requests"},
    {.op = LLMUX_OP_CHAT,
     .body = "Bad Gateway",
     .status = 502,
     .code = LLMUX_EPROVIDER,
     .msg = "Bad Gateway"},
    {.op = LLMUX_OP_CHAT,
     .body = "{\"error\":",
     .status = 500,
     .code = LLMUX_EPROVIDER,
     .msg = "{\"error\":"},
    {.op = LLMUX_OP_CHAT,
     .body = "{\"error\":\"unexpected EOF\"}",
     .status = 200,
     .code = LLMUX_EPROVIDER,
     .msg = "unexpected EOF"},
    /* garbage and every truncation of a real answer: a clean EPROTO */
    PT_GARBAGE(LLMUX_OP_CHAT, ""),
    PT_GARBAGE(LLMUX_OP_CHAT, "hello"),
    PT_GARBAGE(LLMUX_OP_CHAT, "[1,2]"),
    PT_GARBAGE(LLMUX_OP_CHAT, "42"),
    PT_GARBAGE(LLMUX_OP_CHAT, "null"),
    PT_GARBAGE(LLMUX_OP_CHAT, "\"x\""),
    PT_GARBAGE(LLMUX_OP_CHAT, "{}"),
    PT_GARBAGE(LLMUX_OP_CHAT, "{\"message\":5}"),
    PT_GARBAGE(LLMUX_OP_CHAT, "{\"message\":{\"content\":7}}"),
    PT_GARBAGE(LLMUX_OP_CHAT, "{\"message\":{\"thinking\":[]}}"),
    PT_GARBAGE(LLMUX_OP_CHAT, "{\"message\":{},\"done\":1}"),
    PT_GARBAGE(LLMUX_OP_CHAT, "{\"a\":1}{\"b\":2}"),
    PT_GARBAGE(LLMUX_OP_CHAT, "{\"message\":{}}\n{\"done\":7}"),
    PT_GARBAGE(LLMUX_OP_CHAT, "{\"message\":{}}\nnull"),
    PT_GARBAGE(LLMUX_OP_CHAT, "{\n\"message\":{}"),
    {.name = "prefixes chat chat_answer",
     .mode = PT_PREFIXES,
     .op = LLMUX_OP_CHAT,
     .body = chat_answer},
    {.name = "prefixes models chat_answer",
     .mode = PT_PREFIXES,
     .op = LLMUX_OP_MODELS,
     .body = chat_answer,
     .code = LLMUX_EPROTO},
    {.name = "answer chat with a NUL inside",
     .op = LLMUX_OP_CHAT,
     .body = "{\"message\":{}}\0x",
     .len = 16,
     .code = LLMUX_EPROTO},
    /* a non-streamed request answered with NDJSON lines folds them */
    {.name = "decode folded lines",
     .op = LLMUX_OP_CHAT,
     .body = wire_chat,
     .want = "{'text':'The','created':1691164339,"
             "'usage':{'total_tokens':308},'finish':'stop'}"},
    {.name = "decode folded lines with tool calls",
     .op = LLMUX_OP_CHAT,
     .body = "{\"model\":\"q\",\"created_at\":\"2025-01-02T03:04:05Z\","
             "\"message\":{\"content\":\"a\",\"tool_calls\":[{\"function\":{"
             "\"index\":0,\"name\":\"f\",\"arguments\":{}}}]},\"done\":false}\n"
             "\n"
             "{\"model\":\"q\",\"created_at\":\"2026-01-02T03:04:05Z\","
             "\"message\":{\"content\":\"b\",\"tool_calls\":[{\"function\":{"
             "\"index\":0,\"name\":\"g\",\"arguments\":{\"x\":1}}}]},\"done\":"
             "true,\"done_reason\":\"stop\",\"eval_count\":2}\n"
             "{\"message\":{\"content\":\"ignored\"}}\n",
     .want = "{'text':'ab','created':1735787045,'tool_calls':[{},"
             "{'id':'call_1','name':'g'}],'finish':'tool_calls',"
             "'usage':{'prompt_tokens':0}}"},
    /* an error line inside */
    {.name = "decode folded lines with an error",
     .op = LLMUX_OP_COMPLETE,
     .body = "{\"response\":\"a\",\"done\":false}\n{\"error\":"
             "\"out of memory\"}\n",
     .code = LLMUX_EPROVIDER,
     .want = "{'error':{'message':'out of memory'}}"},
    /* ---- streams */
    {.name = "stream a chat (docs/api.md)",
     .mode = PT_STREAM,
     .op = LLMUX_OP_CHAT,
     .body = wire_chat,
     .want = "{'done':1,'events':2,'text':'The','model':'llama3.2',"
             "'created':1691164339,'finish':'stop','finish_raw':null,"
             "'usage':{'prompt_tokens':26,'completion_tokens':282,"
             "'total_tokens':308}}"},
    /* WIRE.md 3.4: a /api/generate stream; the final line has text too */
    {.name = "stream a generate answer",
     .mode = PT_STREAM,
     .op = LLMUX_OP_COMPLETE,
     .body =
         "{\"model\":\"gemma4\",\"created_at\":\"2025-10-26T17:15:24.097767Z\","
         "\"response\":\"That\",\"done\":false}\n"
         "{\"model\":\"gemma4\",\"created_at\":\"2025-10-26T17:15:24.2Z\","
         "\"response\":\" is\",\"thinking\":\"\",\"done\":false}\n"
         "{\"model\":\"gemma4\",\"created_at\":\"2025-10-26T17:15:25Z\","
         "\"response\":\"!\",\"done\":true,\"done_reason\":\"stop\","
         "\"context\":[1,2,3],\"prompt_eval_count\":11,\"eval_count\":3}\n",
     .want = "{'done':1,'events':3,'text':'That is!','created':1761498924,"
             "'finish':'stop','finish_raw':'stop',"
             "'usage':{'total_tokens':14}}"},
    {.name = "stream tool calls",
     .mode = PT_STREAM,
     .op = LLMUX_OP_CHAT,
     .body = wire_tools,
     .want = "{'done':1,'after_done':1,'events':6,"
             "'reasoning':'Need weather.','text':'Checking \xc3\xa9\\n',"
             "'tool_calls':[{'index':0,'id':'call_0','name':'get_weather',"
             "'arguments':'{\"city\":\"Tokyo\"}'},{'index':1,'id':'call_1',"
             "'arguments':'{\"city\":\"Paris\"}'},{'index':2,'id':'call_k2',"
             "'name':'get_time','arguments':'{\"tz\":[\"CET\",1]}'}],"
             "'finish':'tool_calls','finish_raw':'stop',"
             "'usage':{'total_tokens':65},'created':1735787045}"},
    {.name = "stream done_reason \"load\"",
     .mode = PT_STREAM,
     .op = LLMUX_OP_CHAT,
     .body = STREAM_DONE_REASON("load"),
     .want = "{'done':1,'finish':'stop','finish_raw':'load',"
             "'usage':{'total_tokens':-1}}"},
    {.name = "stream done_reason \"unload\"",
     .mode = PT_STREAM,
     .op = LLMUX_OP_CHAT,
     .body = STREAM_DONE_REASON("unload"),
     .want = "{'done':1,'finish':'stop','finish_raw':'unload',"
             "'usage':{'total_tokens':-1}}"},
    {.name = "stream done_reason \"whatever\"",
     .mode = PT_STREAM,
     .op = LLMUX_OP_CHAT,
     .body = STREAM_DONE_REASON("whatever"),
     .want = "{'done':1,'finish':'stop','finish_raw':'whatever',"
             "'usage':{'total_tokens':-1}}"},
    {.name = "stream done_reason \"length\"",
     .mode = PT_STREAM,
     .op = LLMUX_OP_CHAT,
     .body = STREAM_DONE_REASON("length"),
     .want = "{'done':1,'finish':'length','finish_raw':'length',"
             "'usage':{'total_tokens':-1}}"},
    {.name = "stream an error line",
     .mode = PT_STREAM,
     .op = LLMUX_OP_CHAT,
     .body =
         "{\"model\":\"m\",\"message\":{\"content\":\"Hel\"},\"done\":false}\n"
         "{\"error\":\"an error was encountered while running the model: "
         "unexpected EOF\"}\n"
         "{\"model\":\"m\",\"message\":{\"content\":\"lo\"},\"done\":false}\n",
     .code = LLMUX_EPROVIDER,
     .want = "{'done':0,'events':1,'text':'Hel',"
             "'error':{'message':'an error was encountered while running the "
             "model: unexpected EOF'}}"},
    /* first line an error, in a generate stream */
    {.name = "stream an error first",
     .mode = PT_STREAM,
     .op = LLMUX_OP_COMPLETE,
     .body = "{\"error\":\"boom\"}",
     .code = LLMUX_EPROVIDER,
     .want = "{'error':{'message':'boom'}}"},
    /* a stream cut short (no done line) keeps what arrived, unfinished */
    {.name = "stream cut short",
     .mode = PT_STREAM,
     .op = LLMUX_OP_CHAT,
     .body = WIRE_CHAT_1,
     .want = "{'done':0,'text':'The','finish':null}"},
    /* lines: garbage is a clean EPROTO; blank and empty ones are fine */
    PT_EVENT_CODE(LLMUX_OP_CHAT, "hello", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "{", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "{\"model\":", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "[1,2]", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "42", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "null", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "\"x\"", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "true", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "{\"message\":5}", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "{\"message\":{\"content\":[1]}}",
                  LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "{\"message\":{\"thinking\":{}}}",
                  LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "{\"message\":{\"tool_calls\":\"x\"}}",
                  LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_CHAT,
                  "{\"message\":{\"tool_calls\":[{\"function\":[]}]}}",
                  LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "{\"done\":\"yes\"}", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "{\"a\":1}{\"b\":2}", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "{\"message\":{\"content\":\"\\ud800x\"}}x",
                  LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "", 0),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "  ", 0),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "\r", 0),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "{}", 0),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "{\"message\":null,\"done\":false}", 0),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "{\"message\":{}}", 0),
    /* generate lines must have a string "response" when they have one */
    PT_EVENT_CODE(LLMUX_OP_COMPLETE, "{\"response\":1}", LLMUX_EPROTO),
    /* every truncation of every line of the hand-made streams: EPROTO */
    {.name = "event cuts chat wire_chat",
     .mode = PT_EVENT_CUTS,
     .op = LLMUX_OP_CHAT,
     .body = wire_chat,
     .code = LLMUX_EPROTO},
    {.name = "event cuts chat wire_tools",
     .mode = PT_EVENT_CUTS,
     .op = LLMUX_OP_CHAT,
     .body = wire_tools,
     .code = LLMUX_EPROTO},
};

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
        cmocka_unit_test(test_decode_tool_calls),
        cmocka_unit_test(test_stream_tool_chunks),
        cmocka_unit_test(test_stream_mutations),
    };
    /* the environment must not pick another server or send a key */
    unsetenv("OLLAMA_HOST");
    unsetenv("OLLAMA_API_KEY");
    return pt_run_tests(&oll, tests, sizeof tests / sizeof tests[0], cases,
                        sizeof cases / sizeof cases[0]);
}
