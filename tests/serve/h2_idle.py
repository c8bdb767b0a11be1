#!/usr/bin/env python3
"""h2_idle.py HOST PORT [CAFILE]: opens an HTTP/2 connection (TLS with ALPN
h2 when CAFILE is given, else cleartext with prior knowledge), sends the
preface and an empty SETTINGS frame, prints "open" and then stays idle,
reading frames until the server closes. Prints "goaway CODE DEBUG-DATA"
for each GOAWAY frame and "closed" at the end, so a test can tell a
graceful shutdown (h2o's "graceful shutdown" GOAWAY) from an idle
timeout. Python's standard library only."""
import socket
import ssl
import sys


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    sock = socket.create_connection((host, port), timeout=60)
    if len(sys.argv) > 3:
        ctx = ssl.create_default_context(cafile=sys.argv[3])
        ctx.set_alpn_protocols(["h2"])
        sock = ctx.wrap_socket(sock, server_hostname=host)
        if sock.selected_alpn_protocol() != "h2":
            print("alpn %s" % sock.selected_alpn_protocol(), flush=True)
            return 1
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\0\0\0\4\0\0\0\0\0")
    print("open", flush=True)
    buf = b""
    while True:
        try:
            data = sock.recv(65536)
        except (OSError, socket.timeout):
            data = b""
        if not data:
            break
        buf += data
        while len(buf) >= 9:
            length = int.from_bytes(buf[0:3], "big")
            if len(buf) < 9 + length:
                break
            ftype, payload = buf[3], buf[9:9 + length]
            buf = buf[9 + length:]
            if ftype == 7:  # GOAWAY: last stream id, error code, debug data
                code = int.from_bytes(payload[4:8], "big")
                print("goaway %d %s" % (code, payload[8:].decode("latin-1")),
                      flush=True)
    print("closed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
