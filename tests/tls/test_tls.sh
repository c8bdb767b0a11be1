#!/usr/bin/env bash
#
# tests/tls/test_tls.sh: llmux over HTTPS and HTTP/2, the path every hosted
# provider takes. nginx (TLS with a throwaway CA, HTTP/2) proxies to
# llmux-mock; the checks: certificate verification (the system CAs and a
# wrong CA are refused, ca_file= and insecure=1 pass), answers and streams
# through TLS, and concurrent requests multiplexed on one HTTP/2
# connection (nginx logs each request's protocol and connection number).
#
# usage: test_tls.sh PATH/TO/llmux PATH/TO/llmux-mock
# Exits 77 (skipped) when nginx or openssl is missing.

set -u

CLI=${1:?usage: test_tls.sh LLMUX LLMUX_MOCK}
MOCK=${2:?usage: test_tls.sh LLMUX LLMUX_MOCK}
PY=${PYTHON:-python3}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ ! -x "$NGINX" ] || ! command -v openssl >/dev/null; then
    echo "skip: needs nginx and openssl"
    exit 77
fi

T_NAME=tls-test
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
# nginx runs from TMP; the mock is stopped by lib.sh
t_cleanup() {
    [ -f "$TMP/nginx.pid" ] && kill "$(cat "$TMP/nginx.pid")" 2>/dev/null
}

# ---- a CA, a certificate for 127.0.0.1, and another CA -------------------
make_certs
# ---- llmux-mock, and nginx in front of it --------------------------------
start_mock --quiet
MPORT=$PORT
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$TMP/tmp"
cat >"$TMP/nginx.conf" <<CONF
worker_processes 1;
daemon on;
pid $TMP/nginx.pid;
error_log $TMP/error.log warn;
events { worker_connections 256; }
http {
  log_format proto '\$connection \$server_protocol \$status \$request_uri';
  access_log $TMP/access.log proto;
  client_body_temp_path $TMP/tmp/body;
  proxy_temp_path $TMP/tmp/proxy;
  fastcgi_temp_path $TMP/tmp/fastcgi;
  uwsgi_temp_path $TMP/tmp/uwsgi;
  scgi_temp_path $TMP/tmp/scgi;
  server {
    listen 127.0.0.1:$PORT ssl http2;
    ssl_certificate $TMP/srv.pem;
    ssl_certificate_key $TMP/srv.key;
    location / {
      proxy_pass http://127.0.0.1:$MPORT;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
CONF
if ! "$NGINX" -p "$TMP" -e "$TMP/error.log" -c "$TMP/nginx.conf" \
    2>"$TMP/nginx.err"; then
    echo "cannot start nginx:"
    cat "$TMP/nginx.err" "$TMP/error.log" 2>/dev/null
    exit 1
fi
for _ in $(seq 1 100); do
    [ -s "$TMP/nginx.pid" ] && break
    sleep 0.05
done

export OPENAI_API_KEY=sk-test
unset OPENAI_BASE_URL
BASE="https://127.0.0.1:$PORT/v1"
M="openai/gpt-4o-mini;base_url=$BASE"
echo "# https + HTTP/2: $BASE -> llmux-mock on $MPORT"

# ---- certificate verification ----------------------------------------------
run "$CLI" chat -m "$M;ca_file=$TMP/ca.pem" hi
if [ "$RC" -eq 0 ] && [ "$(cat "$TMP/out")" = "Mock reply to: hi" ]; then
    ok "chat over https with ca_file= (the test CA): answered"
else
    bad "chat over https with ca_file=" "status $RC, out: $(head -c 200 "$TMP/out")"
fi
run "$CLI" chat -m "$M" hi
if [ "$RC" -eq 3 ] && grep -qi 'certificate' "$TMP/err"; then
    ok "chat over https, the system CAs: refused (exit 3, names the certificate)"
else
    bad "chat over https, the system CAs: refused" "status $RC"
fi
run "$CLI" chat -m "$M;ca_file=$TMP/other.pem" hi
if [ "$RC" -eq 3 ] && grep -qi 'certificate' "$TMP/err"; then
    ok "chat over https, another CA: refused (exit 3)"
else
    bad "chat over https, another CA: refused" "status $RC"
fi
run "$CLI" chat -m "$M;insecure=1" hi
if [ "$RC" -eq 0 ] && [ "$(cat "$TMP/out")" = "Mock reply to: hi" ]; then
    ok "chat over https with insecure=1: answered"
else
    bad "chat over https with insecure=1" "status $RC"
fi

# ---- streams and errors through TLS --------------------------------------
run "$CLI" chat -m "openai/gpt-4o-mini#events=40;base_url=$BASE;ca_file=$TMP/ca.pem" \
    --stream hi
want=$(seq -f 'tok%g' 0 39 | paste -sd' ')
if [ "$RC" -eq 0 ] && [ "$(cat "$TMP/out")" = "$want" ]; then
    ok "--stream over https: 40 events, every token"
else
    bad "--stream over https" "status $RC, out: $(head -c 200 "$TMP/out")"
fi
run "$CLI" chat -m "openai/gpt-4o-mini#status=429;base_url=$BASE;ca_file=$TMP/ca.pem" \
    --retries 0 hi
if [ "$RC" -eq 1 ] && grep -q 'HTTP 429' "$TMP/err"; then
    ok "a provider error over https: exit 1, HTTP 429"
else
    bad "a provider error over https" "status $RC"
fi

# ---- HTTP/2 multiplexing --------------------------------------------------
: >"$TMP/access.log"
kill -USR1 "$(cat "$TMP/nginx.pid")" # reopen the log
sleep 0.2
seq 1 40 | "$CLI" batch -m "$M;ca_file=$TMP/ca.pem" --concurrency 20 \
    >"$TMP/out" 2>"$TMP/err"
RC=$?
n_ok=$(grep -c '"status":"ok"' "$TMP/out")
if [ "$RC" -eq 0 ] && [ "$n_ok" -eq 40 ]; then
    ok "batch of 40 over https, 20 at once: all answered"
else
    bad "batch of 40 over https, 20 at once" "status $RC, $n_ok ok"
fi
sleep 0.2
n_h2=$(grep -c ' HTTP/2.0 200 /v1/chat/completions' "$TMP/access.log")
n_conn=$(awk '{print $1}' "$TMP/access.log" | sort -u | wc -l)
if [ "$n_h2" -eq 40 ]; then
    ok "every request spoke HTTP/2"
else
    bad "every request spoke HTTP/2" "$n_h2 of 40: $(head -c 300 "$TMP/access.log")"
fi
if [ "$n_conn" -eq 1 ]; then
    ok "the 40 requests shared one connection (multiplexed)"
else
    bad "the 40 requests shared one connection" "$n_conn connections"
fi

summary
