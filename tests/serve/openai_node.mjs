// tests/serve/openai_node.mjs: the official OpenAI Node SDK against
// llmux-serve, each call also sent straight to llmux-mock's OpenAI surface:
// where the two disagree on anything but ids, created and timing, the
// gateway is wrong. Run by test_serve_node.sh with
//   OPENAI_DIR   the directory holding node_modules/openai
//   GATEWAY      http://127.0.0.1:PORT of llmux-serve (routes fast, emb,
//                slow, and mistral, ollama, alephalpha on the other
//                providers' plugins; no keys)
//   DIRECT       http://127.0.0.1:PORT of the llmux-mock behind fast/emb
//   SLOW_MOCK    http://127.0.0.1:PORT of the llmux-mock behind slow (its
//                --chunk-delay makes a stream last many seconds)
// Prints "ok NAME" or "FAIL NAME: why" per check; exits 1 on a failure.
import { pathToFileURL } from 'node:url';

const { default: OpenAI } = await import(
    pathToFileURL(`${process.env.OPENAI_DIR}/node_modules/openai/index.mjs`).href);
const env = (k) => {
    if (!process.env[k]) throw new Error(`${k} is not set`);
    return process.env[k];
};
const opts = { apiKey: 'sk-test', maxRetries: 0, timeout: 30000 };
const gw = new OpenAI({ ...opts, baseURL: `${env('GATEWAY')}/v1` });
const direct = new OpenAI({ ...opts, baseURL: `${env('DIRECT')}/v1` });
// the route names of the gateway and the models behind them on the mock
const MODEL = { fast: 'gpt-4o-mini', emb: 'text-embedding-3-small' };

let failed = 0;
async function check(name, fn) {
    try {
        await fn();
        console.log(`ok ${name}`);
    } catch (e) {
        failed++;
        console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
    }
}
function assert(cond, msg) {
    if (!cond) throw new Error(msg);
}

// ids and created differ between two answers; nothing else may
function norm(o) {
    if (Array.isArray(o)) return o.map(norm);
    if (o && typeof o === 'object') {
        const r = {};
        for (const k of Object.keys(o).sort())
            if (k !== 'id' && k !== 'created') r[k] = norm(o[k]);
        return r;
    }
    return o;
}
function same(via, dir, what) {
    const a = JSON.stringify(norm(via)), b = JSON.stringify(norm(dir));
    assert(a === b, `${what}: the gateway and llmux-mock differ\n  via    ${a}\n  direct ${b}`);
}
// the same request through the gateway (route) and straight to the mock
async function both(call, body) {
    const via = await call(gw)({ ...body });
    const dir = await call(direct)({ ...body, model: MODEL[body.model] });
    return [via, dir];
}

const ask = [{ role: 'user', content: 'hello from node' }];

await check('chat: as llmux-mock answers', async () => {
    const [via, dir] = await both((c) => (b) => c.chat.completions.create(b),
        { model: 'fast', messages: ask });
    assert(via.choices[0].message.content === 'Mock reply to: hello from node',
        `content ${via.choices[0].message.content}`);
    same(via, dir, 'chat');
});

await check('stream: the SDK stream helper, chunks as llmux-mock sends', async () => {
    const collect = async (c, model) => {
        const s = c.chat.completions.stream({ model, messages: ask,
            stream_options: { include_usage: true } });
        const chunks = [];
        for await (const ch of s) chunks.push(ch);
        return [chunks, await s.finalChatCompletion()];
    };
    const [vc, vf] = await collect(gw, 'fast');
    const [dc, df] = await collect(direct, MODEL.fast);
    assert(vc.length > 3, `only ${vc.length} chunks`);
    assert(vf.choices[0].message.content === 'Mock reply to: hello from node',
        `final ${vf.choices[0].message.content}`);
    // the one difference allowed besides ids: OpenAI's first chunk of a
    // choice may carry only its role and "" (the library delivers no
    // event without content, so the gateway names the role on the first
    // chunk with content): fold such a chunk into the next
    const fold = (cs) => cs.flatMap((c, i) => {
        const d = c.choices[0]?.delta;
        if (d && d.role && d.content === '' && Object.keys(d).length === 2 &&
            cs[i + 1]?.choices[0]) {
            cs[i + 1].choices[0].delta = { role: d.role, ...cs[i + 1].choices[0].delta };
            return [];
        }
        return [c];
    });
    same(vc, fold(dc), 'stream chunks');
    same(vf, df, 'final completion');
});

// The other providers behind the same SDK: what it gets through the
// gateway is OpenAI's shape whichever plugin answered, with the answer
// the mock gives every protocol ("Mock reply to: <prompt>").
for (const route of ['mistral', 'ollama', 'alephalpha']) {
    await check(`${route}: chat through the SDK, OpenAI's shape`, async () => {
        const r = await gw.chat.completions.create({ model: route, messages: ask });
        assert(r.object === 'chat.completion', `object ${r.object}`);
        assert(r.choices.length === 1 && r.choices[0].message.role === 'assistant',
            `choices ${JSON.stringify(r.choices)}`);
        assert(r.choices[0].message.content === 'Mock reply to: hello from node',
            `content ${r.choices[0].message.content}`);
        assert(r.choices[0].finish_reason === 'stop', `finish ${r.choices[0].finish_reason}`);
        assert(r.usage && r.usage.total_tokens > 0, `usage ${JSON.stringify(r.usage)}`);
    });
    await check(`${route}: the SDK stream helper`, async () => {
        const s = gw.chat.completions.stream({ model: route, messages: ask });
        let n = 0;
        for await (const ch of s) {
            assert(ch.object === 'chat.completion.chunk', `object ${ch.object}`);
            n++;
        }
        const f = await s.finalChatCompletion();
        assert(n > 1, `only ${n} chunks`);
        assert(f.choices[0].message.content === 'Mock reply to: hello from node',
            `final ${f.choices[0].message.content}`);
        assert(f.choices[0].message.role === 'assistant', 'role');
    });
}

await check('tools: a tool call round trip', async () => {
    const tools = [{ type: 'function', function: { name: 'get_weather',
        parameters: { type: 'object', properties: { input: { type: 'string' } } } } }];
    const msgs = [{ role: 'user', content: 'weather in Paris?' }];
    const [v1, d1] = await both((c) => (b) => c.chat.completions.create(b),
        { model: 'fast', messages: msgs, tools });
    const call = v1.choices[0].message.tool_calls?.[0];
    assert(call && call.function.name === 'get_weather' &&
        JSON.parse(call.function.arguments).input === 'weather in Paris?',
        `tool call ${JSON.stringify(v1.choices[0].message)}`);
    assert(v1.choices[0].finish_reason === 'tool_calls', v1.choices[0].finish_reason);
    same(v1, d1, 'tool call');
    const turn2 = [...msgs, v1.choices[0].message,
        { role: 'tool', tool_call_id: call.id, content: 'sunny' }];
    const [v2, d2] = await both((c) => (b) => c.chat.completions.create(b),
        { model: 'fast', messages: turn2, tools });
    assert(v2.choices[0].message.content === 'Mock reply to: tool result sunny',
        `answer ${v2.choices[0].message.content}`);
    same(v2, d2, 'tool result turn');
});

await check('completions: plain, as llmux-mock answers', async () => {
    const [via, dir] = await both((c) => (b) => c.completions.create(b),
        { model: 'fast', prompt: 'complete me', max_tokens: 3 });
    assert(via.object === 'text_completion', via.object);
    same(via, dir, 'completion');
});

await check('embeddings: the SDK default (base64) and float', async () => {
    for (const encoding_format of [undefined, 'float']) {
        const body = { model: 'emb', input: ['one', 'two'] };
        if (encoding_format) body.encoding_format = encoding_format;
        const [via, dir] = await both((c) => (b) => c.embeddings.create(b), body);
        assert(via.data.length === 2 && via.data[1].embedding.length === 8,
            `shape ${JSON.stringify(via.data)}`);
        via.data.forEach((d, i) => d.embedding.forEach((x, k) => assert(
            Math.abs(x - dir.data[i].embedding[k]) < 1e-6,
            `${encoding_format || 'default'}: data[${i}][${k}] ${x} != ${dir.data[i].embedding[k]}`)));
        same({ ...via, data: via.data.map((d) => ({ ...d, embedding: null })) },
            { ...dir, data: dir.data.map((d) => ({ ...d, embedding: null })) },
            'embeddings');
    }
});

await check('models: the routes as a list', async () => {
    const ids = [];
    for await (const m of gw.models.list()) ids.push(`${m.id}:${m.object}`);
    assert(ids.join(',') === 'fast:model,emb:model,slow:model,mistral:model,' +
        'ollama:model,alephalpha:model', ids.join(','));
});

await check('errors: NotFoundError and BadRequestError with status', async () => {
    try {
        await gw.chat.completions.create({ model: 'nosuch', messages: ask });
        assert(false, 'no error');
    } catch (e) {
        assert(e instanceof OpenAI.NotFoundError, `not a NotFoundError: ${e}`);
        assert(e.status === 404 && e.code === 'model_not_found' &&
            e.param === 'model', `status ${e.status} code ${e.code}`);
    }
    try {
        await gw.embeddings.create({ model: 'emb', input: [[1, 2]] });
        assert(false, 'no error');
    } catch (e) {
        assert(e instanceof OpenAI.BadRequestError, `not a BadRequestError: ${e}`);
        assert(e.status === 400 && /token ids/.test(e.message), `${e.status} ${e.message}`);
    }
});

// GET /_mock/stats of the slow mock: its in_flight count
async function inFlight() {
    const r = await fetch(`${env('SLOW_MOCK')}/_mock/stats`);
    return (await r.json()).in_flight;
}
async function waitFor(cond, ms) {
    const end = Date.now() + ms;
    while (Date.now() < end) {
        if (await cond()) return true;
        await new Promise((r) => setTimeout(r, 50));
    }
    return false;
}

await check('abort mid-stream: the gateway cancels upstream', async () => {
    // 60 words at the mock's chunk delay: a whole stream would take far
    // longer than the wait for in_flight to drop below
    const words = Array.from({ length: 60 }, (_, i) => `w${i}`).join(' ');
    const ac = new AbortController();
    const stream = await gw.chat.completions.create(
        { model: 'slow', stream: true, messages: [{ role: 'user', content: words }] },
        { signal: ac.signal });
    let got = 0, aborted = false;
    const t0 = Date.now();
    try {
        for await (const ch of stream) {
            if (++got === 3) {
                assert(await inFlight() === 1, 'the mock is not streaming');
                ac.abort();
            }
        }
    } catch (e) {
        aborted = e instanceof OpenAI.APIUserAbortError || e.name === 'AbortError';
        if (!aborted) throw e;
    }
    assert(aborted || got < 60, `the stream was not cut (${got} chunks)`);
    const cut = await waitFor(async () => (await inFlight()) === 0, 5000);
    assert(cut, `the mock still streams ${Date.now() - t0} ms after the abort`);
});

process.exit(failed ? 1 : 0);
