"""tests/serve/check_metrics.py: checks a Prometheus text exposition (format
0.0.4) and the gateway's JSON access log for test_serve_metrics.sh.

  check_metrics.py metrics FILE EXPECT.json   the format (HELP/TYPE lines,
      counters ending _total, histograms cumulative with _count equal to
      the +Inf bucket, escaped label values) and exact sample values:
      EXPECT is {"samples": [[name, {labels}, value]...],
                 "only": [[name, {labels that select}, [allowed label sets]]]}
  check_metrics.py value FILE NAME [LABEL=VALUE...]   prints one sample's
      value (or "none")
  check_metrics.py log FILE EXPECT.json   each line one JSON object with
      exactly the access log's fields; EXPECT is {"lines": N, "match":
      [[{field: value...} selecting, {field: value...} wanted]...]}

Prints "ok NAME" or "bad NAME: detail" lines for the shell to count.
"""
import json
import math
import re
import sys

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def unescape(v):
    return re.sub(r'\\(.)', lambda m: '\n' if m.group(1) == 'n' else m.group(1), v)


def parse(text):
    """(types, helps, samples, problems): samples as (name, labels, value)."""
    types, helps, samples, problems = {}, {}, [], []
    for n, line in enumerate(text.split('\n'), 1):
        if not line:
            continue
        if line.startswith('# HELP '):
            name, _, h = line[7:].partition(' ')
            helps[name] = h
            continue
        if line.startswith('# TYPE '):
            name, _, t = line[7:].partition(' ')
            if t not in ('counter', 'gauge', 'histogram', 'summary', 'untyped'):
                problems.append('line %d: bad type %r' % (n, t))
            types[name] = t
            continue
        if line.startswith('#'):
            continue
        m = SAMPLE.match(line)
        if not m:
            problems.append('line %d: not a sample: %r' % (n, line))
            continue
        labels, rest = {}, m.group(3) or ''
        while rest:
            lm = LABEL.match(rest)
            if not lm:
                problems.append('line %d: bad labels: %r' % (n, m.group(3)))
                break
            labels[lm.group(1)] = unescape(lm.group(2))
            rest = rest[lm.end():]
        try:
            value = float(m.group(4))
        except ValueError:
            problems.append('line %d: bad value %r' % (n, m.group(4)))
            continue
        samples.append((m.group(1), labels, value))
    return types, helps, samples, problems


def family_of(name, types):
    for suffix in ('_bucket', '_sum', '_count'):
        if name.endswith(suffix) and types.get(name[:-len(suffix)]) == 'histogram':
            return name[:-len(suffix)]
    return name


def check_format(types, helps, samples, problems):
    for name, t in types.items():
        if name not in helps:
            problems.append('%s: TYPE without HELP' % name)
        if t == 'counter' and not name.endswith('_total'):
            problems.append('%s: a counter not ending _total' % name)
    hist = {}
    for name, labels, value in samples:
        fam = family_of(name, types)
        if fam not in types:
            problems.append('%s: no TYPE line' % name)
            continue
        if value < 0 or math.isnan(value):
            problems.append('%s%s: value %r' % (name, labels, value))
        if types[fam] != 'histogram':
            continue
        key = (fam, tuple(sorted((k, v) for k, v in labels.items() if k != 'le')))
        h = hist.setdefault(key, {'buckets': [], 'sum': None, 'count': None})
        if name.endswith('_bucket'):
            le = labels.get('le')
            h['buckets'].append((float('inf') if le == '+Inf' else float(le), value))
        elif name.endswith('_sum'):
            h['sum'] = value
        else:
            h['count'] = value
    for (fam, labels), h in hist.items():
        where = '%s%s' % (fam, dict(labels))
        les = [b[0] for b in h['buckets']]
        counts = [b[1] for b in h['buckets']]
        if not les or les[-1] != float('inf'):
            problems.append('%s: no +Inf bucket last' % where)
        elif les != sorted(les) or len(set(les)) != len(les):
            problems.append('%s: le not ascending' % where)
        elif counts != sorted(counts):
            problems.append('%s: buckets not cumulative: %s' % (where, counts))
        elif h['count'] != counts[-1]:
            problems.append('%s: _count %s != +Inf bucket %s' % (where, h['count'], counts[-1]))
        elif h['sum'] is None:
            problems.append('%s: no _sum' % where)
        elif les[0] != 0.005 or les[-2] != 60:
            problems.append('%s: buckets from %s to %s, want 0.005 to 60' % (where, les[0], les[-2]))
    return hist


def find(samples, name, labels):
    return [v for n, l, v in samples if n == name and l == labels]


def cmd_metrics(path, expect_path):
    text = open(path).read()
    expect = json.load(open(expect_path))
    types, helps, samples, problems = parse(text)
    hist = check_format(types, helps, samples, problems)
    if problems:
        print('bad metrics: the exposition format: ' + '; '.join(problems[:5]))
    else:
        print('ok metrics: the exposition format (%d samples, %d histogram series)'
              % (len(samples), len(hist)))
    for name, labels, want in expect['samples']:
        got = find(samples, name, labels)
        label = '%s%s' % (name, json.dumps(labels, sort_keys=True))
        if got == [want]:
            print('ok metrics: %s = %g' % (label, want))
        else:
            print('bad metrics: %s is %s, want %g' % (label, got or 'missing', want))
    for name, select, allowed in expect.get('only', []):
        extra = [l for n, l, v in samples
                 if n == name and all(l.get(k) == v for k, v in select.items())
                 and l not in allowed]
        if extra:
            print('bad metrics: %s has unexpected series %s' % (name, extra[:3]))
        else:
            print('ok metrics: %s has no other series' % name)


def cmd_value(path, name, *pairs):
    _, _, samples, _ = parse(open(path).read())
    want = dict(p.split('=', 1) for p in pairs)
    got = find(samples, name, want)
    print('%g' % got[0] if len(got) == 1 else 'none')


FIELDS = {'time', 'key', 'method', 'path', 'route', 'provider', 'model', 'status',
          'tokens_in', 'tokens_out', 'latency_ms', 'ttft_ms', 'retries',
          'fallback', 'error'}
TIME = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$')


def matches(got, want):
    """`want`, or any number for "<number>"."""
    if want == '<number>':
        return isinstance(got, (int, float)) and not isinstance(got, bool)
    return got == want


def cmd_log(path, expect_path):
    expect = json.load(open(expect_path))
    raw = open(path).read()
    lines, problems = [], []
    if raw and not raw.endswith('\n'):
        problems.append('the last line is not ended')
    for n, line in enumerate(raw.split('\n')[:-1], 1):
        try:
            o = json.loads(line)
        except ValueError:
            problems.append('line %d is not JSON: %r' % (n, line[:100]))
            continue
        if not isinstance(o, dict) or set(o) != FIELDS:
            problems.append('line %d: fields %s' % (n, sorted(o) if isinstance(o, dict) else o))
            continue
        if not TIME.match(o['time']) or not isinstance(o['status'], int) \
                or not isinstance(o['latency_ms'], (int, float)) or o['latency_ms'] < 0:
            problems.append('line %d: time, status or latency_ms: %r' % (n, line[:200]))
        if o['ttft_ms'] is not None and not 0 <= o['ttft_ms'] <= o['latency_ms']:
            problems.append('line %d: ttft_ms %r vs latency_ms %r' % (n, o['ttft_ms'], o['latency_ms']))
        lines.append(o)
    if problems:
        print('bad log: its lines: ' + '; '.join(problems[:5]))
    else:
        print('ok log: each line one JSON object with the %d fields' % len(FIELDS))
    if len(lines) != expect['lines']:
        print('bad log: %d lines, want %d: %s' % (len(lines), expect['lines'],
                                                  [(o['path'], o['status']) for o in lines]))
    else:
        print('ok log: %d lines' % len(lines))
    for select, want in expect['match']:
        hits = [o for o in lines if all(matches(o.get(k), v) for k, v in select.items())]
        name = 'log: the line of %s' % json.dumps(select, sort_keys=True)
        if len(hits) != 1:
            print('bad %s: %d such lines' % (name, len(hits)))
            continue
        wrong = {k: hits[0][k] for k, v in want.items()
                 if not matches(hits[0][k], v)}
        if wrong:
            print('bad %s: has %s, want %s' % (name, wrong, {k: want[k] for k in wrong}))
        else:
            print('ok %s has %s' % (name, json.dumps(want, sort_keys=True)))


if __name__ == '__main__':
    {'metrics': cmd_metrics, 'value': cmd_value, 'log': cmd_log}[sys.argv[1]](*sys.argv[2:])
