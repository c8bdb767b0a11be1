#!/usr/bin/env python3
"""tests/serve/life_client.py: raw-socket clients for test_serve_life.sh.

Each subcommand drives llmux-serve (on 127.0.0.1:PORT) the way a hard
client does and prints its checks, one a line: "ok<TAB>NAME" or
"bad<TAB>NAME<TAB>DETAIL", which the shell test counts. Conditions are
waited for with generous deadlines, never fixed sleeps.

  slowread PORT MOCK_URL GW_PID MODEL   a reader that stops reading
  leave PORT MOCK_URL MODEL stream|plain  a client that leaves early
  sse PORT MODEL OUT READY               a stream read to its end, into OUT
                                         (READY written at its first event)
  pipelined PORT MODEL READY MOCK_URL    a slow chat and GET /health on one
                                         connection (the shell sends SIGTERM)
  heartbeat PORT MODEL                   comments on an idle stream, then the
                                         request_timeout error event
  reload PORT GW_PID CONFIG NEW BAD ERRFILE  SIGHUP on a kept connection
  many PORT MODEL N                      N concurrent streams
  idle PORT SECONDS                      a kept-alive connection left idle is
                                         closed by the gateway after SECONDS
  stall PORT MODEL READY                 starts a big stream and never reads
  stopread PORT MOCK_URL MODEL           a reader that stops for good: cut
                                         after the gateway's idle_timeout
"""
import asyncio
import json
import os
import signal
import socket
import sys
import time
import urllib.request


def check(name, cond, detail=""):
    if cond:
        print("ok\t%s" % name, flush=True)
    else:
        print("bad\t%s\t%s" % (name, str(detail).replace("\n", " ")[:400]),
              flush=True)
    return cond


def wait_for(pred, timeout, step=0.05):
    """Polls pred() until it is true or `timeout` seconds pass."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > end:
            return v
        time.sleep(step)


def mock_in_flight(mock_url):
    with urllib.request.urlopen(mock_url + "/_mock/stats", timeout=10) as r:
        return json.load(r)["in_flight"]


def chat_body(model, stream, text="hello"):
    return json.dumps({"model": model, "stream": stream,
                       "messages": [{"role": "user", "content": text}]})


def request_bytes(method, path, body=None, close=False):
    head = "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n" % (method, path)
    if close:
        head += "Connection: close\r\n"
    if body is None:
        return (head + "\r\n").encode()
    b = body.encode()
    head += "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(b)
    return head.encode() + b


def connect(port, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(60)
    s.connect(("127.0.0.1", port))
    return s


class Reader:
    """HTTP/1.1 responses from a socket: status, headers, body (chunked or
    Content-Length), several in a row on one connection."""

    def __init__(self, sock):
        self.s = sock
        self.buf = b""

    def fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("connection closed")
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l.decode("latin-1")

    def take(self, n):
        while len(self.buf) < n:
            self.fill()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def head(self):
        status = int(self.line().split()[1])
        hdrs = {}
        while True:
            l = self.line()
            if not l:
                return status, hdrs
            k, v = l.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()

    def chunks(self, hdrs):
        """Yields the body's pieces as they come."""
        if hdrs.get("transfer-encoding", "").lower() == "chunked":
            while True:
                n = int(self.line().split(";")[0], 16)
                if n == 0:
                    self.line()
                    return
                yield self.take(n)
                self.take(2)
        else:
            yield self.take(int(hdrs.get("content-length", "0")))

    def response(self):
        status, hdrs = self.head()
        return status, hdrs, b"".join(self.chunks(hdrs))


def events(text):
    """The data of each SSE event and the number of comment lines."""
    data, comments = [], 0
    for l in text.split("\n"):
        if l.startswith("data: "):
            data.append(l[6:])
        elif l.startswith(":"):
            comments += 1
    return data, comments


def vmrss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for l in f:
            if l.startswith("VmRSS:"):
                return int(l.split()[1])
    return 0


def start_unread_stream(port, model, name):
    """A stream:true chat on a connection with a small receive buffer,
    read up to its headers only: the socket."""
    s = connect(port, rcvbuf=16384)
    s.sendall(request_bytes("POST", "/v1/chat/completions",
                            chat_body(model, True)))
    status, hdrs = Reader(s).head()
    check("%s: the stream starts" % name, status == 200, status)
    return s


def cmd_slowread(port, mock_url, pid, model):
    """The mock sends ~70 MB as fast as it can; this client reads the
    headers and then nothing. The gateway must pause the upstream: its RSS
    stays bounded and the mock's request stays in flight (unpaused, the
    gateway would swallow the stream and the mock would finish)."""
    base = vmrss_kib(pid)
    s = start_unread_stream(port, model, "slow reader")
    # RSS steady: under 1 MiB of growth in 2 s (at most 60 s)
    samples = []

    def steady():
        samples.append((time.monotonic(), vmrss_kib(pid)))
        old = [v for t, v in samples if t <= samples[-1][0] - 2]
        return old and samples[-1][1] - old[-1] < 1024

    wait_for(steady, 60, 0.25)
    grown = (samples[-1][1] - base) / 1024.0
    check("slow reader: the gateway's RSS stays bounded (grew %.1f MiB, "
          "the stream is ~70 MB)" % grown, grown < 32, "grew %.1f MiB" % grown)
    check("slow reader: the upstream is paused, not finished",
          mock_in_flight(mock_url) == 1, "the mock finished the stream")
    s.close()
    check("slow reader: leaving cancels the paused upstream",
          wait_for(lambda: mock_in_flight(mock_url) == 0, 20),
          "mock in_flight still %d" % mock_in_flight(mock_url))


def cmd_stopread(port, mock_url, model):
    """A reader that stops reading for good and never closes: once a write
    waits longer than limits.idle_timeout, the gateway cancels the
    upstream and cuts the connection (else the request would hold its
    slot and buffers until shutdown)."""
    s = start_unread_stream(port, model, "stopped reader")
    check("stopped reader: the upstream is in flight",
          wait_for(lambda: mock_in_flight(mock_url) == 1, 20))
    check("stopped reader: past idle_timeout the upstream is canceled",
          wait_for(lambda: mock_in_flight(mock_url) == 0, 60),
          "mock in_flight still %d" % mock_in_flight(mock_url))
    # what the kernels held is still readable, then the connection ends
    s.settimeout(30)
    cut = False
    try:
        while s.recv(1 << 20):
            pass
        cut = True
    except ConnectionResetError:
        cut = True
    except socket.timeout:
        pass
    s.close()
    check("stopped reader: its connection is cut", cut)


def cmd_leave(port, mock_url, model, kind):
    stream = kind == "stream"
    s = connect(port)
    s.sendall(request_bytes("POST", "/v1/chat/completions",
                            chat_body(model, stream, "a b c d e f g h i j")))
    if stream:
        r = Reader(s)
        r.head()
        while b"data: " not in r.buf:
            r.fill()
    ok = wait_for(lambda: mock_in_flight(mock_url) == 1, 20)
    check("%s: the upstream request is in flight" % kind, ok)
    t0 = time.monotonic()
    s.close()
    gone = wait_for(lambda: mock_in_flight(mock_url) == 0, 20)
    check("%s: a client leaving cancels the upstream (%.2f s)"
          % (kind, time.monotonic() - t0), gone and time.monotonic() - t0 < 5,
          "mock in_flight %d after %.1f s" % (mock_in_flight(mock_url),
                                               time.monotonic() - t0))


def cmd_sse(port, model, out, ready):
    """Reads a stream to its end: OUT gets "STATUS\\n" then the body."""
    s = connect(port)
    s.sendall(request_bytes("POST", "/v1/chat/completions",
                            chat_body(model, True, "a b c d e f g h i j"),
                            close=True))
    r = Reader(s)
    status, hdrs = r.head()
    body = b""
    said = False
    try:
        for piece in r.chunks(hdrs):
            body += piece
            if not said and b"data: " in body:
                said = True
                open(ready, "w").write("1\n")
    except (EOFError, OSError) as e:
        body += ("\n<cut: %s>" % e).encode()
    with open(out, "w") as f:
        f.write("%d\n%s" % (status, body.decode("utf-8", "replace")))


def cmd_pipelined(port, model, ready, mock_url):
    """A slow chat and GET /health pipelined: the shell sends SIGTERM while
    the chat is in flight; the chat finishes (the drain) and /health,
    answered after it, is 503."""
    s = connect(port)
    s.sendall(request_bytes("POST", "/v1/chat/completions",
                            chat_body(model, False)) +
              request_bytes("GET", "/health"))
    wait_for(lambda: mock_in_flight(mock_url) == 1, 20)
    open(ready, "w").write("1\n")
    r = Reader(s)
    st1, _, b1 = r.response()
    st2, _, b2 = r.response()
    check("drain: the chat in flight at SIGTERM completes", st1 == 200,
          "%d %s" % (st1, b1[:200]))
    err = json.loads(b2).get("error", {}) if b2.startswith(b"{") else {}
    check("drain: /health answers 503 while draining",
          st2 == 503 and err.get("type") == "api_error", "%d %s" % (st2, b2))


def cmd_heartbeat(port, model):
    """A stream that stalls (the mock's stall_after): the gateway sends SSE
    comments every limits.heartbeat, then request_timeout ends it with an
    error event."""
    s = connect(port)
    s.sendall(request_bytes("POST", "/v1/chat/completions",
                            chat_body(model, True, "a b c d e f g h i j")))
    r = Reader(s)
    status, hdrs = r.head()
    body = b"".join(r.chunks(hdrs)).decode()
    data, comments = events(body)
    check("heartbeat: ': keep-alive' comments on an idle stream (%d)"
          % comments, status == 200 and comments >= 2 and
          ": keep-alive\n\n" in body, body[-300:])
    last = json.loads(data[-1]) if data and data[-1].startswith("{") else {}
    check("request_timeout: a stream's last event is the error",
          last.get("error", {}).get("code") == "request_timeout" and
          "[DONE]" not in data, data[-2:])


def get_json(conn, path):
    conn.request("GET", path)
    res = conn.getresponse()
    return res.status, json.loads(res.read())


def cmd_reload(port, pid, config, new, bad, errfile):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    st, j = get_json(conn, "/v1/models")
    before = [m["id"] for m in j["data"]]
    check("reload: the routes before", st == 200 and "extra" not in before,
          before)

    def log():
        return open(errfile).read()

    os.replace(new, config)
    os.kill(pid, signal.SIGHUP)
    check("reload: SIGHUP logs the reload",
          wait_for(lambda: "reloaded" in log(), 20), log()[-300:])
    st, j = get_json(conn, "/v1/models")
    after = [m["id"] for m in j["data"]]
    check("reload: a new route is listed, on the same connection",
          st == 200 and "extra" in after, after)
    conn.request("POST", "/v1/chat/completions", chat_body("extra", False),
                 {"Content-Type": "application/json"})
    res = conn.getresponse()
    b = json.loads(res.read())
    check("reload: the new route answers", res.status == 200 and
          b["choices"][0]["message"]["content"] == "Mock reply to: hello", b)
    os.replace(bad, config)
    os.kill(pid, signal.SIGHUP)
    check("reload: a bad config is refused, naming its line",
          wait_for(lambda: "reload refused" in log(), 20) and
          ("%s:" % config) in log().split("reload refused", 1)[1],
          log()[-300:])
    st, j = get_json(conn, "/v1/models")
    check("reload: the running routes stay after a refused one",
          st == 200 and [m["id"] for m in j["data"]] == after, j)
    conn.close()


async def one_stream(port, body):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(request_bytes("POST", "/v1/chat/completions", body, close=True))
    await w.drain()
    data = await r.read()
    w.close()
    return data.rstrip().endswith(b"data: [DONE]\r\n\r\n0") or \
        b"data: [DONE]" in data


async def many(port, model, n):
    body = chat_body(model, True, "one two three")
    res = await asyncio.gather(*(one_stream(port, body) for _ in range(n)),
                               return_exceptions=True)
    return sum(1 for x in res if x is True), [x for x in res if x is not True][:3]


def cmd_many(port, model, n):
    t0 = time.monotonic()
    done, errs = asyncio.run(many(port, model, n))
    check("%d concurrent streams all end with [DONE] (%.1f s)"
          % (n, time.monotonic() - t0), done == n,
          "%d of %d; %s" % (done, n, errs))


def cmd_idle(port, seconds):
    s = connect(port)
    s.sendall(request_bytes("GET", "/health"))
    r = Reader(s)
    st, _, _ = r.response()
    t0 = time.monotonic()
    try:
        closed = s.recv(1) == b""
    except OSError:
        closed = True
    took = time.monotonic() - t0
    check("idle_timeout: an idle kept-alive connection is closed (%.1f s)"
          % took, st == 200 and closed and seconds * 0.8 <= took < seconds + 10,
          "status %d, closed %s after %.1f s" % (st, closed, took))


def cmd_stall(port, model, ready):
    s = connect(port, rcvbuf=16384)
    s.sendall(request_bytes("POST", "/v1/chat/completions",
                            chat_body(model, True)))
    Reader(s).head()
    open(ready, "w").write("1\n")
    time.sleep(120)  # the shell ends it


def main(argv):
    cmd, a = argv[1], argv[2:]
    if cmd == "slowread":
        cmd_slowread(int(a[0]), a[1], int(a[2]), a[3])
    elif cmd == "leave":
        cmd_leave(int(a[0]), a[1], a[2], a[3])
    elif cmd == "sse":
        cmd_sse(int(a[0]), a[1], a[2], a[3])
    elif cmd == "pipelined":
        cmd_pipelined(int(a[0]), a[1], a[2], a[3])
    elif cmd == "heartbeat":
        cmd_heartbeat(int(a[0]), a[1])
    elif cmd == "reload":
        cmd_reload(int(a[0]), int(a[1]), a[2], a[3], a[4], a[5])
    elif cmd == "many":
        cmd_many(int(a[0]), a[1], int(a[2]))
    elif cmd == "idle":
        cmd_idle(int(a[0]), float(a[1]))
    elif cmd == "stall":
        cmd_stall(int(a[0]), a[1], a[2])
    elif cmd == "stopread":
        cmd_stopread(int(a[0]), a[1], a[2])
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except Exception as e:  # a crash is a failed check, not a silent pass
        check("%s: no client error" % sys.argv[1], False,
              "%s: %s" % (type(e).__name__, e))
