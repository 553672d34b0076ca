#!/usr/bin/env bash
# Manage real third-party HTTP servers on loopback for the interop tests.
#
#   bash scripts/interop.sh start  [DIR]   # (re)start everything, write DIR/env
#   bash scripts/interop.sh stop   [DIR]   # stop everything (idempotent)
#   bash scripts/interop.sh status [DIR]   # show what is up
#
# DIR defaults to $PWD/target/interop. The Python venv lives in
# ${HTTPFLEET_INTEROP_CACHE:-DIR}/venv and is reused across runs.
#
# Servers: httpbin (gunicorn), nginx TLS, nginx TLS 1.2 only and nginx mTLS
# (HTTP/1.1 + h2, proxying to httpbin), tinyproxy open + tinyproxy with BasicAuth, proxy.py with a
# password full of URL syntax (tinyproxy's BasicAuth takes letters and digits
# only), microsocks (SOCKS5) open, connecting out from 127.0.0.2 so the
# origin can tell it was used, and with a username and password, and dnsmasq
# (DNS on UDP/TCP) answering fleet-dns.test with 127.0.0.1 and missing.test with
# NXDOMAIN.
set -euo pipefail

CMD=${1:-}
DIR=${2:-$PWD/target/interop}
DIR=$(realpath -m "$DIR")
CACHE=${HTTPFLEET_INTEROP_CACHE:-$DIR}
VENV=$CACHE/venv
PKI=$DIR/pki
LOGS=$DIR/logs
RUN=$DIR/run
PROXY_USER=fleet
PROXY_PASS=s3cret-proxy
# proxy.py's password, and the same percent-encoded for a proxy URL.
SPECIAL_PASS='p@ss:w/rd%41#x'
SPECIAL_PASS_ENCODED='p%40ss%3Aw%2Frd%2541%23x'
# microsocks' password, and the same percent-encoded for a proxy URL.
SOCKS_PASS='s0cks:p@ss/%'
SOCKS_PASS_ENCODED='s0cks%3Ap%40ss%2F%25'
SERVICES="httpbin nginx proxy proxy-auth proxy-special socks socks-auth dns"

log() { echo "interop: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- processes

pidfile() {
    case $1 in
        httpbin) echo "$RUN/httpbin.pid" ;;
        nginx) echo "$RUN/nginx.pid" ;;
        proxy) echo "$RUN/tinyproxy.pid" ;;
        proxy-auth) echo "$RUN/tinyproxy-auth.pid" ;;
        proxy-special) echo "$RUN/proxypy.pid" ;;
        socks) echo "$RUN/socks.pid" ;;
        socks-auth) echo "$RUN/socks-auth.pid" ;;
        dns) echo "$RUN/dnsmasq.pid" ;;
    esac
}

# Expected substring of /proc/PID/cmdline, so a recycled pid is never killed.
proc_pattern() {
    case $1 in
        httpbin) echo gunicorn ;;
        nginx) echo nginx ;;
        proxy | proxy-auth) echo tinyproxy ;;
        proxy-special) echo bin/proxy ;;
        socks | socks-auth) echo microsocks ;;
        dns) echo dnsmasq ;;
    esac
}

# Prints the pid of a running service, or fails.
running_pid() {
    local f pid
    f=$(pidfile "$1")
    [[ -s $f ]] || return 1
    pid=$(tr -dc 0-9 <"$f")
    [[ -n $pid ]] && alive "$pid" || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$(proc_pattern "$1")" || return 1
    echo "$pid"
}

# True if PID exists and is not a zombie.
alive() {
    kill -0 "$1" 2>/dev/null || return 1
    local st
    st=$(sed -n 's/.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ $st != Z ]]
}

# Direct children of the given pids (from /proc: procps may not be installed).
child_pids() {
    [[ $# -gt 0 ]] || return 0
    awk -v pids=" $* " '$1 == "PPid:" && index(pids, " " $2 " ") {
        split(FILENAME, a, "/"); print a[3]; nextfile }' /proc/[0-9]*/status 2>/dev/null || true
}

# Stops every service: SIGTERM to all masters, wait up to 5 s, then SIGKILL
# whatever is left (masters and the workers they had).
do_stop() {
    local s pid masters=() children i any
    for s in $SERVICES; do
        if pid=$(running_pid "$s"); then
            masters+=("$pid")
            log "stopping $s (pid $pid)"
        fi
    done
    if ((${#masters[@]})); then
        children=$(child_pids "${masters[@]}")
        kill -TERM "${masters[@]}" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            any=0
            for pid in "${masters[@]}"; do alive "$pid" && any=1; done
            ((any)) || break
            sleep 0.1
        done
        for pid in "${masters[@]}" $children; do
            if alive "$pid"; then
                log "pid $pid still alive, sending SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
            fi
        done
    fi
    for s in $SERVICES; do rm -f "$(pidfile "$s")"; done
    rm -f "$DIR/env"
    return 0
}

do_status() {
    local s pid rc=0
    for s in $SERVICES; do
        if pid=$(running_pid "$s"); then
            echo "$s: up (pid $pid)"
        else
            echo "$s: down"
            rc=1
        fi
    done
    [[ -f $DIR/env ]] && { echo; cat "$DIR/env"; }
    return $rc
}

# ---------------------------------------------------------------- install

have_venv() { python3 -c 'import venv, ensurepip' >/dev/null 2>&1; }

ensure_tools() {
    local missing=()
    local c
    for c in nginx tinyproxy microsocks dnsmasq openssl curl python3; do
        command -v "$c" >/dev/null 2>&1 || missing+=("$c")
    done
    # Debian's python3 ships `venv` without ensurepip unless python3-venv is
    # installed, so `python3 -m venv --help` is not a sufficient check.
    have_venv || missing+=(python3-venv)
    ((${#missing[@]} == 0)) && return 0
    log "missing: ${missing[*]}; installing with apt-get"
    [[ $(id -u) == 0 ]] || die "need root to apt-get install (missing: ${missing[*]})"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq nginx-light tinyproxy microsocks dnsmasq-base openssl python3-venv curl >/dev/null
    # Package post-install may start system-wide nginx/tinyproxy services; they
    # listen on fixed ports (80/8888) and do not interfere with ours.
    for c in nginx tinyproxy microsocks dnsmasq openssl curl python3; do
        command -v "$c" >/dev/null 2>&1 || die "$c still missing after apt-get install"
    done
}

ensure_venv() {
    if [[ -x $VENV/bin/python ]] && "$VENV/bin/python" -c 'import httpbin, gunicorn, proxy' >/dev/null 2>&1; then
        log "reusing venv $VENV"
        return 0
    fi
    log "creating venv $VENV"
    rm -rf "$VENV"
    mkdir -p "$CACHE"
    python3 -m venv "$VENV" || die "python3 -m venv failed"
    "$VENV/bin/pip" install -q --disable-pip-version-check httpbin gunicorn proxy.py ||
        die "pip install httpbin gunicorn proxy.py failed"
    "$VENV/bin/python" -c 'import httpbin, gunicorn, proxy' >/dev/null 2>&1 ||
        die "import httpbin, gunicorn or proxy failed in $VENV"
}

# ---------------------------------------------------------------- PKI

gen_pki() {
    mkdir -p "$PKI"
    local p=$PKI
    # Reuse an existing PKI if it is complete, consistent and not expiring.
    if [[ -s $p/ca.pem && -s $p/server.pem && -s $p/client.pem && -s $p/client.key && -s $p/server.key ]] &&
        openssl verify -CAfile "$p/ca.pem" -purpose sslserver "$p/server.pem" >/dev/null 2>&1 &&
        openssl verify -CAfile "$p/ca.pem" -purpose sslclient "$p/client.pem" >/dev/null 2>&1 &&
        openssl x509 -in "$p/server.pem" -noout -checkend 86400 >/dev/null 2>&1 &&
        openssl x509 -in "$p/client.pem" -noout -checkend 86400 >/dev/null 2>&1; then
        return 0
    fi
    log "generating PKI in $p"
    rm -f "$p"/*
    local ec=(-algorithm EC -pkeyopt ec_paramgen_curve:P-256)

    # PKCS#8 ("BEGIN PRIVATE KEY") EC P-256 keys.
    openssl genpkey "${ec[@]}" -out "$p/ca.key" 2>/dev/null
    openssl genpkey "${ec[@]}" -out "$p/server.key" 2>/dev/null
    openssl genpkey "${ec[@]}" -out "$p/client.key" 2>/dev/null

    cat >"$p/ext.cnf" <<'EOF'
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
    # Self-signed CA (x509 -req with -extfile always produces X.509 v3).
    openssl req -new -key "$p/ca.key" -subj "/O=httpfleet interop/CN=httpfleet interop CA" -out "$p/ca.csr"
    openssl x509 -req -in "$p/ca.csr" -signkey "$p/ca.key" -sha256 -days 3650 -set_serial "0x$(openssl rand -hex 16)" \
        -extfile "$p/ext.cnf" -extensions ca -out "$p/ca.pem" 2>/dev/null
    local who
    for who in server client; do
        local cn=localhost
        [[ $who == client ]] && cn="httpfleet interop client"
        openssl req -new -key "$p/$who.key" -subj "/O=httpfleet interop/CN=$cn" -out "$p/$who.csr"
        openssl x509 -req -in "$p/$who.csr" -CA "$p/ca.pem" -CAkey "$p/ca.key" -sha256 -days 825 \
            -set_serial "0x$(openssl rand -hex 16)" -extfile "$p/ext.cnf" -extensions "$who" -out "$p/$who.pem" 2>/dev/null
    done
    rm -f "$p"/*.csr
    openssl verify -CAfile "$p/ca.pem" -purpose sslserver "$p/server.pem" >/dev/null || die "server cert does not verify"
    openssl verify -CAfile "$p/ca.pem" -purpose sslclient "$p/client.pem" >/dev/null || die "client cert does not verify"
}

# ---------------------------------------------------------------- servers

# Prints N distinct free TCP ports on 127.0.0.1.
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

start_httpbin() {
    local extra=()
    # gunicorn >= 24 opens a control socket in ~/.gunicorn by default; skip it.
    "$VENV/bin/gunicorn" --help 2>/dev/null | grep -q -- --no-control-socket && extra+=(--no-control-socket)
    # gthread: concurrent tests must not block each other on /delay or /drip.
    (cd "$DIR" && "$VENV/bin/gunicorn" -D -p "$(pidfile httpbin)" \
        -b "127.0.0.1:$P_HTTPBIN" -w 2 -k gthread --threads 16 --timeout 60 \
        --error-logfile "$LOGS/httpbin.log" --access-logfile "$LOGS/httpbin-access.log" \
        "${extra[@]}" httpbin:app </dev/null >>"$LOGS/httpbin.out" 2>&1)
}

start_nginx() {
    local ver h2_listen="" h2_directive="" conf=$DIR/nginx/nginx.conf
    mkdir -p "$DIR/nginx/tmp"
    ver=$(nginx -v 2>&1 | sed -n 's|.*nginx/\([0-9.]*\).*|\1|p')
    # `http2 on;` exists since 1.25.1; before that it is `listen ... ssl http2;`
    # (deprecated, but still accepted, in newer versions).
    if [[ $(printf '%s\n1.25.1\n' "$ver" | sort -V | head -n1) == 1.25.1 ]]; then
        h2_directive="http2 on;"
    else
        h2_listen=" http2"
    fi
    local server_common
    server_common="
        ssl_certificate     $PKI/server.pem;
        ssl_certificate_key $PKI/server.key;
        $h2_directive
        location / {
            proxy_pass http://127.0.0.1:$P_HTTPBIN;
            proxy_http_version 1.1;
            proxy_buffering off;
            proxy_request_buffering off;
            # \$http_host (not \$host) keeps the port, so httpbin's echoed
            # \"url\" and absolute redirects point back at this server.
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header Connection \"\";
            proxy_read_timeout 60s;
            proxy_send_timeout 60s;
        }"
    cat >"$conf" <<EOF
# generated by scripts/interop.sh
$([[ $(id -u) == 0 ]] && echo "user root;")
worker_processes 2;
daemon on;
pid $(pidfile nginx);
error_log $LOGS/nginx-error.log info;
events { worker_connections 512; }
http {
    access_log $LOGS/nginx-access.log;
    client_body_temp_path $DIR/nginx/tmp/body;
    proxy_temp_path $DIR/nginx/tmp/proxy;
    fastcgi_temp_path $DIR/nginx/tmp/fastcgi;
    uwsgi_temp_path $DIR/nginx/tmp/uwsgi;
    scgi_temp_path $DIR/nginx/tmp/scgi;
    client_max_body_size 0;
    keepalive_requests 10000;

    server {
        listen 127.0.0.1:$P_NGINX ssl$h2_listen;
        server_name localhost;
        ssl_protocols TLSv1.2 TLSv1.3;
        $server_common
    }
    server {
        listen 127.0.0.1:$P_NGINX_TLS12 ssl$h2_listen;
        server_name localhost;
        ssl_protocols TLSv1.2;
        $server_common
    }
    server {
        listen 127.0.0.1:$P_NGINX_MTLS ssl$h2_listen;
        server_name localhost;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_client_certificate $PKI/ca.pem;
        ssl_verify_client on;
        $server_common
    }
}
EOF
    # -e: error log used before the config is read (default would be /var/log).
    nginx -e "$LOGS/nginx-error.log" -p "$DIR/nginx" -c "$conf" </dev/null >>"$LOGS/nginx.out" 2>&1
}

start_tinyproxy() { # name port [auth]
    local name=$1 port=$2 auth=${3:-} conf=$DIR/tinyproxy/$1.conf
    local logf=$LOGS/$1.log
    mkdir -p "$DIR/tinyproxy"
    # No ConnectPort lines: tinyproxy then allows CONNECT to any port.
    {
        echo "# generated by scripts/interop.sh"
        if [[ $(id -u) == 0 ]]; then
            # tinyproxy refuses to keep running as root; it drops to User/Group
            # after opening the log and pid file.
            echo "User nobody"
            echo "Group nogroup"
        fi
        echo "Port $port"
        echo "Listen 127.0.0.1"
        echo "Timeout 60"
        echo "Allow 127.0.0.1"
        echo "MaxClients 50"
        echo "LogFile \"$logf\""
        echo "LogLevel Info"
        echo "PidFile \"$(pidfile "$name")\""
        echo "DisableViaHeader Yes"
        # Marks what the proxy forwarded, so tests can tell it was used.
        echo "XTinyproxy Yes"
        [[ -n $auth ]] && echo "BasicAuth $auth"
    } >"$conf"
    : >"$logf"
    chmod 666 "$logf"
    # Without -d tinyproxy daemonizes itself and writes PidFile.
    tinyproxy -c "$conf" </dev/null >>"$logf" 2>&1
}

# proxy.py with basic auth; it writes its own pid file.
start_proxypy() {
    (cd "$DIR" && nohup "$VENV/bin/proxy" --hostname 127.0.0.1 --port "$P_PROXY_SPECIAL" \
        --basic-auth "$PROXY_USER:$SPECIAL_PASS" --num-workers 1 --num-acceptors 1 \
        --pid-file "$(pidfile proxy-special)" --log-file "$LOGS/proxy-special.log" \
        </dev/null >>"$LOGS/proxy-special.out" 2>&1 &)
}

# microsocks stays in the foreground: started in the background, its pid written here.
start_socks() { # name port [microsocks args...]
    local name=$1 port=$2
    shift 2
    nohup microsocks -i 127.0.0.1 -p "$port" "$@" </dev/null >>"$LOGS/$name.log" 2>&1 &
    echo $! >"$(pidfile "$name")"
}

# dnsmasq as a daemon: no upstream, no hosts file, only the names the tests ask for.
start_dns() { # port
    dnsmasq --conf-file=/dev/null --no-resolv --no-hosts --user=root --bind-interfaces \
        --listen-address=127.0.0.1 --port="$1" --address=/fleet-dns.test/127.0.0.1 \
        --address=/missing.test/ --pid-file="$(pidfile dns)" --log-facility="$LOGS/dns.log" \
        </dev/null >>"$LOGS/dns.out" 2>&1
}

# wait_for NAME deadline CURL-ARGS...  (retries until 2xx or the deadline)
wait_for() {
    local name=$1 deadline=$2
    shift 2
    until curl -sS -f -o /dev/null --max-time 3 "$@" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "$name did not come up; curl $*:"
            curl -sS -o /dev/null --max-time 3 -w 'HTTP %{http_code}\n' "$@" >&2 || true
            return 1
        fi
        sleep 0.2
    done
}

# Daemons write their pid file after forking: wait for it (up to 10 s) so a
# later stop never misses a process.
wait_pid() {
    local i
    for ((i = 0; i < 100; i++)); do
        running_pid "$1" >/dev/null && return 0
        sleep 0.1
    done
    log "$1: no live process behind $(pidfile "$1")"
    return 1
}

fail_with_logs() {
    local name=$1
    shift
    local f
    for f in "$@"; do
        [[ -f $f ]] && { log "---- tail $f"; tail -n 30 "$f" >&2; }
    done
    do_stop
    die "$name failed to start (logs in $LOGS)"
}

do_start() {
    ensure_tools
    do_stop
    rm -rf "$LOGS"
    mkdir -p "$LOGS" "$RUN"
    ensure_venv
    gen_pki
    read -r P_HTTPBIN P_NGINX P_NGINX_MTLS P_PROXY P_PROXY_AUTH P_PROXY_SPECIAL P_SOCKS P_SOCKS_AUTH \
        P_NGINX_TLS12 P_DNS <<<"$(free_ports 10)"

    { start_httpbin && wait_pid httpbin; } || fail_with_logs httpbin "$LOGS/httpbin.out" "$LOGS/httpbin.log"
    { start_nginx && wait_pid nginx; } || fail_with_logs nginx "$LOGS/nginx.out" "$LOGS/nginx-error.log"
    { start_tinyproxy proxy "$P_PROXY" && wait_pid proxy; } || fail_with_logs tinyproxy "$LOGS/proxy.log"
    { start_tinyproxy proxy-auth "$P_PROXY_AUTH" "$PROXY_USER $PROXY_PASS" && wait_pid proxy-auth; } ||
        fail_with_logs tinyproxy-auth "$LOGS/proxy-auth.log"
    { start_proxypy && wait_pid proxy-special; } ||
        fail_with_logs proxy.py "$LOGS/proxy-special.out" "$LOGS/proxy-special.log"
    { start_socks socks "$P_SOCKS" -b 127.0.0.2 && wait_pid socks; } || fail_with_logs socks "$LOGS/socks.log"
    { start_socks socks-auth "$P_SOCKS_AUTH" -u "$PROXY_USER" -P "$SOCKS_PASS" && wait_pid socks-auth; } ||
        fail_with_logs socks-auth "$LOGS/socks-auth.log"
    { start_dns "$P_DNS" && wait_pid dns; } || fail_with_logs dns "$LOGS/dns.out" "$LOGS/dns.log"

    local deadline=$((SECONDS + 30))
    local httpbin=http://127.0.0.1:$P_HTTPBIN
    wait_for httpbin $deadline "$httpbin/get" || fail_with_logs httpbin "$LOGS/httpbin.out" "$LOGS/httpbin.log"
    wait_for nginx $deadline --cacert "$PKI/ca.pem" "https://localhost:$P_NGINX/get" ||
        fail_with_logs nginx "$LOGS/nginx.out" "$LOGS/nginx-error.log"
    wait_for nginx-tls12 $deadline --cacert "$PKI/ca.pem" --tls-max 1.2 "https://localhost:$P_NGINX_TLS12/get" ||
        fail_with_logs nginx-tls12 "$LOGS/nginx.out" "$LOGS/nginx-error.log"
    wait_for nginx-mtls $deadline --cacert "$PKI/ca.pem" --cert "$PKI/client.pem" --key "$PKI/client.key" \
        "https://localhost:$P_NGINX_MTLS/get" || fail_with_logs nginx-mtls "$LOGS/nginx.out" "$LOGS/nginx-error.log"
    wait_for tinyproxy $deadline -x "http://127.0.0.1:$P_PROXY" "$httpbin/get" ||
        fail_with_logs tinyproxy "$LOGS/proxy.log"
    wait_for tinyproxy-connect $deadline -x "http://127.0.0.1:$P_PROXY" --cacert "$PKI/ca.pem" \
        "https://localhost:$P_NGINX/get" || fail_with_logs tinyproxy-connect "$LOGS/proxy.log"
    wait_for tinyproxy-auth $deadline -x "http://$PROXY_USER:$PROXY_PASS@127.0.0.1:$P_PROXY_AUTH" "$httpbin/get" ||
        fail_with_logs tinyproxy-auth "$LOGS/proxy-auth.log"
    wait_for proxy.py $deadline -x "http://$PROXY_USER:$SPECIAL_PASS_ENCODED@127.0.0.1:$P_PROXY_SPECIAL" \
        "$httpbin/get" || fail_with_logs proxy.py "$LOGS/proxy-special.out" "$LOGS/proxy-special.log"
    wait_for socks $deadline -x "socks5h://127.0.0.1:$P_SOCKS" "$httpbin/get" || fail_with_logs socks "$LOGS/socks.log"
    wait_for socks-auth $deadline -x "socks5h://$PROXY_USER:$SOCKS_PASS_ENCODED@127.0.0.1:$P_SOCKS_AUTH" \
        "$httpbin/get" || fail_with_logs socks-auth "$LOGS/socks-auth.log"

    cat >"$DIR/env.tmp" <<EOF
export HTTPFLEET_HTTPBIN_URL=$httpbin
export HTTPFLEET_NGINX_URL=https://localhost:$P_NGINX
export HTTPFLEET_NGINX_IP_URL=https://127.0.0.1:$P_NGINX
export HTTPFLEET_NGINX_MTLS_URL=https://localhost:$P_NGINX_MTLS
export HTTPFLEET_NGINX_TLS12_URL=https://localhost:$P_NGINX_TLS12
export HTTPFLEET_TLS_CA=$PKI/ca.pem
export HTTPFLEET_TLS_CLIENT_CERT=$PKI/client.pem
export HTTPFLEET_TLS_CLIENT_KEY=$PKI/client.key
export HTTPFLEET_PROXY_URL=http://127.0.0.1:$P_PROXY
export HTTPFLEET_PROXY_AUTH_URL=http://$PROXY_USER:$PROXY_PASS@127.0.0.1:$P_PROXY_AUTH
export HTTPFLEET_PROXY_AUTH_WRONG_URL=http://$PROXY_USER:wrong@127.0.0.1:$P_PROXY_AUTH
export HTTPFLEET_PROXY_SPECIAL_URL=http://$PROXY_USER:$SPECIAL_PASS_ENCODED@127.0.0.1:$P_PROXY_SPECIAL
export HTTPFLEET_SOCKS_ADDR=127.0.0.1:$P_SOCKS
export HTTPFLEET_SOCKS_AUTH_ADDR=127.0.0.1:$P_SOCKS_AUTH
export HTTPFLEET_SOCKS_CREDENTIALS=$PROXY_USER:$SOCKS_PASS_ENCODED
export HTTPFLEET_DNS_ADDR=127.0.0.1:$P_DNS
EOF
    mv "$DIR/env.tmp" "$DIR/env"
    cat "$DIR/env"
}

case $CMD in
    start) do_start ;;
    stop) do_stop ;;
    status) do_status ;;
    *)
        echo "usage: $0 start|stop|status [DIR]" >&2
        exit 2
        ;;
esac
