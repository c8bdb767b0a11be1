#!/usr/bin/env python3
"""tests/fuzz/seeds.py: raw seed inputs for every fuzz target.

Usage: seeds.py OUTDIR [FIXTURES]

Writes OUTDIR/<target>/<n> from the recorded provider traffic in FIXTURES
(default ../shared/fixtures beside the project), from the string literals of
the unit tests (tests/unit/test_*.c) and from the descriptors in plugins.d/
and tests/plugins/data/, and built by hand for the cache's values and the
job hooks. The plugin targets' inputs get their two header
bytes (operation, mode: see fuzz_plugin.c) in front of each body. The output
is large and redundant on purpose: merge it into the corpus with libFuzzer
(`fuzz_<target> -merge=1 corpus/<target> OUTDIR/<target>`, README.md).
"""
import base64
import glob
import hashlib
import json
import os
import re
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

LIT = re.compile(rb'"((?:[^"\\\n]|\\.)*)"')
ESC = {b'n': b'\n', b'r': b'\r', b't': b'\t', b'"': b'"', b'\\': b'\\',
       b"'": b"'", b'0': b'\0', b'a': b'\a', b'b': b'\b', b'f': b'\f',
       b'v': b'\v', b'?': b'?'}


def unescape(s):
    out, i = bytearray(), 0
    while i < len(s):
        c = s[i:i + 1]
        if c != b'\\':
            out += c
            i += 1
            continue
        n = s[i + 1:i + 2]
        if n == b'x':
            m = re.match(rb'[0-9a-fA-F]+', s[i + 2:])
            out.append(int(m.group(0), 16) & 0xFF)
            i += 2 + len(m.group(0))
        elif n in b'01234567' and n:
            m = re.match(rb'[0-7]{1,3}', s[i + 1:])
            out.append(int(m.group(0), 8) & 0xFF)
            i += 1 + len(m.group(0))
        else:
            out += ESC.get(n, n)
            i += 2
    return bytes(out)


def c_strings(path):
    """The string literals of a C file, adjacent ones joined."""
    src = open(path, 'rb').read()
    src = re.sub(rb'/\*.*?\*/', b' ', src, flags=re.S)
    out, cur, last_end = [], None, None
    for m in LIT.finditer(src):
        between = src[last_end:m.start()] if last_end is not None else b'x'
        if cur is not None and between.strip() == b'':
            cur += unescape(m.group(1))
        else:
            if cur is not None:
                out.append(cur)
            cur = unescape(m.group(1))
        last_end = m.end()
    if cur is not None:
        out.append(cur)
    return out


yaml.SafeLoader.add_constructor(
    '!binary', lambda loader, node: base64.b64decode(loader.construct_scalar(node)))


def cassettes(fixtures):
    for path in sorted(glob.glob(os.path.join(fixtures, 'ruby_llm', '*.yml'))):
        doc = yaml.safe_load(open(path, 'rb'))
        for it in doc.get('http_interactions', []):
            req = it['request']['body'].get('string') or b''
            res = it['response']
            body = res['body'].get('string') or b''
            if isinstance(req, str):
                req = req.encode()
            if isinstance(body, str):
                body = body.encode()
            yield os.path.basename(path), req, res['status']['code'], body


class Out:
    def __init__(self, root):
        self.root = root
        self.seen = set()

    def put(self, target, data):
        key = (target, hashlib.sha1(data).hexdigest())
        if key in self.seen:
            return
        self.seen.add(key)
        d = os.path.join(self.root, target)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, key[1]), 'wb') as f:
            f.write(data)


def sse_wire(lines):
    return b''.join(b'data: ' + l + b'\n\n' for l in lines) + b'data: [DONE]\n\n'


def main():
    out = Out(sys.argv[1])
    fixtures = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        ROOT, '..', 'shared', 'fixtures')
    plugins = ['openai', 'mistral', 'ollama', 'alephalpha']
    # bodies[plugin]: whole answers; streams[plugin]: framed streams;
    # errors[plugin]: (status index, body)
    bodies = {p: [] for p in plugins}
    streams = {p: [] for p in plugins}
    errors = {p: [] for p in plugins}
    status_ix = {400: 0, 401: 1, 402: 2, 403: 3, 404: 4, 408: 5, 409: 6,
                 413: 7, 422: 8, 429: 9, 500: 10, 502: 11, 503: 12, 504: 13,
                 529: 14}

    for vendor in ('openai', 'mistral'):
        for path in sorted(glob.glob(os.path.join(fixtures, 'vercel-ai', vendor, '*'))):
            data = open(path, 'rb').read()
            if path.endswith('.chunks.txt'):
                lines = [l for l in data.split(b'\n') if l.strip()]
                wire = sse_wire(lines)
                streams[vendor].append(wire)
                out.put('sse', b'\0\0' + wire)
                out.put('framer_diff', b'\0\3\0\7\0\x40\1\0' + wire)
            elif 'error' in path:
                errors[vendor].append((0, data))
            else:
                bodies[vendor].append(data)
    for name, req, status, body in cassettes(fixtures):
        vendor = 'mistral' if 'mistral' in name else 'openai'
        if req:
            out.put('request_json', b'\0' + req)
            out.put('request_json', b'\2' + req)
            try:
                for m in json.loads(req).get('messages', []):
                    out.put('request_json', b'\1' + json.dumps(m).encode())
            except ValueError:
                pass
        if status >= 400:
            errors[vendor].append((status_ix.get(status, 0), body))
        elif body.lstrip().startswith(b'data:'):
            streams[vendor].append(body)
            out.put('sse', b'\0\0' + body)
        else:
            bodies[vendor].append(body)

    # the unit tests' literals: bodies, streams, config strings, requests
    for p in plugins:
        for s in c_strings(os.path.join(ROOT, 'tests', 'unit', 'test_%s.c' % p)):
            if len(s) < 2:
                continue
            if b'data:' in s:
                streams[p].append(s)
                out.put('sse', b'\0\0' + s)
            elif s.lstrip()[:1] in (b'{', b'['):
                if p == 'ollama' and b'\n' in s.strip():
                    streams[p].append(s)
                    out.put('ndjson', b'\0\0' + s)
                    out.put('framer_diff', b'\1\2\0\5\0\x11' + s)
                else:
                    bodies[p].append(s)
                    errors[p].append((0, s))
                    if p == 'ollama':
                        streams[p].append(s + b'\n')
                        out.put('ndjson', b'\0\0' + s + b'\n')
    for s in c_strings(os.path.join(ROOT, 'tests', 'unit', 'test_config.c')):
        out.put('config', s)
    for s in c_strings(os.path.join(ROOT, 'tests', 'unit', 'test_request.c')):
        if s.lstrip()[:1] == b'{':
            out.put('request_json', b'\0' + s)
            out.put('request_json', b'\1' + s)
    # llmux_request_set_field: byte 0 bit 2, then KEY NUL VALUE
    for k, v in ((b'temperature', b'0.25'), (b'stop', b'["a","b"]'),
                 (b'tools', b'[{"type":"function","function":{"name":"f"}}]'),
                 (b'tool_choice', b'null'), (b'logit_bias', b'{"1":-100}'),
                 (b'max_tokens', b'7'), (b'user', b'"u"'), (b'n', b'2'),
                 (b'model', b'"m"'), (b'seed', b'1.5')):
        out.put('request_json', b'\4' + k + b'\0' + v)
    for s in c_strings(os.path.join(ROOT, 'tests', 'unit', 'test_framer.c')):
        if b'\n' in s or b'\r' in s:
            out.put('sse', b'\0\0' + s)
            out.put('ndjson', b'\0\0' + s)
            out.put('framer_diff', b'\0\1\0\3' + s)
            out.put('framer_diff', b'\1\1\0\3' + s)
    for path in sorted(glob.glob(os.path.join(ROOT, 'plugins.d', '*.conf')) +
                       glob.glob(os.path.join(ROOT, 'tests', 'plugins', 'data', '*.conf'))):
        out.put('descriptor', open(path, 'rb').read())

    # Redis URLs (fuzz_redis_url.c: byte 0 the scheme of the copy with a
    # password put in, then the URL)
    for s in c_strings(os.path.join(ROOT, 'tests', 'fleet', 'test_redis.c')):
        if b'://' in s or s.startswith(b'/'):
            out.put('redis_url', b'\0' + s)
            out.put('redis_url', b'\2' + s.split(b'://', 1)[-1])
    for u in (b'redis://127.0.0.1:6379/0', b'redis://:pw@h', b'redis://u@h:1',
              b'unix:///tmp/r.sock?db=3', b'redis+unix:///tmp/r.sock',
              b'redis://[::1]:6380/15', b'redis://a%2fb:p%40w@h/2'):
        out.put('redis_url', b'\0' + u)
        out.put('redis_url', b'\1' + u.split(b'://', 1)[-1])

    # cache values (fuzz_cache_value.c): a reply and a stream as the cache
    # writes them, each also read as a recipe
    def s32(b):
        return (b'\xff\xff\xff\xff' if b is None
                else len(b).to_bytes(4, 'big') + b)
    for body in bodies['openai'][:8]:
        out.put('cache_value', b'LXC1R' + (200).to_bytes(4, 'big') +
                s32(b'application/json') + s32(body))
    for w in streams['openai'][:8]:
        v = b'LXC1S'
        for ev in w.split(b'\n\n'):
            if ev.startswith(b'data: '):
                v += s32(None) + s32(None) + s32(ev[6:])
        out.put('cache_value', v)
    out.put('cache_value', b'\1\x10\x20application/json{"id":"x"}')
    out.put('cache_value', b'\0\3\x06eventsdata\0\x04[DONE]')

    # job hooks (fuzz_jobs.c): step byte (0 upload, 1 create, 2 status,
    # 3 cancel, 4 content), mode byte (1 metadata, 2 the id, 4 an error)
    for s in c_strings(os.path.join(ROOT, 'tests', 'unit', 'test_job_codec.c')):
        if len(s) < 2:
            continue
        for p in ('openai', 'mistral'):
            if s.lstrip()[:1] in (b'{', b'['):
                for step in range(5):
                    out.put('jobs_' + p, bytes([step, 0]) + s)
                out.put('jobs_' + p, bytes([1, 1]) + s)
                out.put('jobs_' + p, bytes([2, 4 | 9 << 4]) + s)
            else:
                out.put('jobs_' + p, bytes([2, 2]) + s)
                out.put('jobs_' + p, bytes([4, 2]) + s)

    # plugin inputs: op byte (every op; the target maps it onto the
    # plugin's), mode byte (0 a 2xx answer, 1 | status << 4 an error, 2 a
    # stream; 4/8/16 request variants)
    for p in plugins:
        for b in bodies[p]:
            for op in range(7):
                out.put(p, bytes([op, 0]) + b)
            out.put(p, bytes([0, 4]) + b)
        for ix, b in errors[p]:
            out.put(p, bytes([0, 1 | ix << 4]) + b)
            out.put(p, bytes([2, 1 | 9 << 4]) + b)
        for w in streams[p]:
            out.put(p, bytes([0, 2]) + w)
            out.put(p, bytes([1, 2]) + w)
            out.put(p, bytes([0, 6]) + w)


if __name__ == '__main__':
    main()
