# The reference services with Consul, before the fake exists: echo-svc and pinger are started
# by hand against a small stand-in agent (Python's http.server, written to $FL_TMP) that
# records registrations and deregistrations and answers health queries, blocking ones
# included (held until the answer changes or the wait passes, released early only by a
# change). Checked: bad settings exit 2; echo retries its registration with a doubling delay
# while the agent is down or failing, then registers once with the right fields; /unhealthy
# makes /healthz answer 500; on SIGTERM it deregisters (and with FAULTLINE_BUG=no-deregister
# it does not, so the pinger keeps pinging a dead instance), bounded to 1 s when the agent
# hangs; ECHO_REGISTER=0 keeps it out of Consul. The pinger follows the health answers:
# targets as listed (Node.Address when Service.Address is empty), blocking queries on the
# last X-Consul-Index, a new list at once when the answer changes, no_target pings (and no
# connections) when it is empty, backoff on errors with the old targets kept, the index
# started over when it goes backwards and never 0, and a quick exit with a query held.
# Everything is on 127.0.0.1 and bounded in time; what the test started is stopped by PID.
. "$(dirname "$0")/lib.sh"
it_init

PY=/usr/bin/python3
CURL="curl -s --max-time 5"
STUB="$FL_TMP/consul_stub.py"
EVENTS="$FL_TMP/consul-events.jsonl"

cat >"$STUB" <<'EOF'
# A Consul agent stand-in: register / deregister / health/service (with index and wait), and
# /control/... to steer it. Every call is one JSON line in the events file.
import json, re, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

port, events = int(sys.argv[1]), sys.argv[2]
cond = threading.Condition()
st = {"index": int(sys.argv[3]), "services": {}, "override": {}, "fail": 0, "hold": 0.0}


def log(ev):
    ev["t"] = time.time()
    with open(events, "a") as f:
        f.write(json.dumps(ev) + "\n")


def bump():
    st["index"] += 1
    cond.notify_all()


def wait_seconds(w):
    m = re.fullmatch(r"(\d+)(ms|s|m)", w)
    if not m:
        return 300.0
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[m.group(2)]


def answer(name):
    if name in st["override"]:
        return st["override"][name]
    return [{"Node": {"Node": "stand-in", "Address": "127.0.0.1", "Datacenter": "dc1"},
             "Service": {"ID": sid, "Service": r["Name"], "Tags": r.get("Tags") or [],
                         "Address": r.get("Address", ""), "Port": r.get("Port", 0)},
             "Checks": [{"CheckID": "service:" + sid, "Status": "passing"}]}
            for sid, r in st["services"].items() if r.get("Name") == name]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body="", ctype="text/plain", index=None):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if index is not None:
            self.send_header("X-Consul-Index", str(index))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.route("GET")

    def do_PUT(self):
        self.route("PUT")

    def do_DELETE(self):
        self.route("DELETE")

    def route(self, method):
        u = urlsplit(self.path)
        q = parse_qs(u.query, keep_blank_values=True)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if u.path.startswith("/control/"):
            return self.control(method, u.path[9:], q, body)
        with cond:
            if st["fail"] > 0:
                st["fail"] -= 1
                log({"op": "failed", "path": u.path})
                return self.reply(500, "stand-in told to fail\nsecond line")
        if u.path == "/v1/agent/service/register":
            if method != "PUT":
                return self.reply(405, "method %s not allowed" % method)
            reg = json.loads(body)
            with cond:
                log({"op": "register", "ctype": self.headers.get("Content-Type"), "body": reg})
                st["services"][reg["ID"]] = reg
                bump()
            return self.reply(200)
        m = re.fullmatch(r"/v1/agent/service/deregister/(.+)", u.path)
        if m:
            if method != "PUT":
                return self.reply(405, "method %s not allowed" % method)
            sid = unquote(m.group(1))
            time.sleep(st["hold"])
            with cond:
                known = st["services"].pop(sid, None) is not None
                log({"op": "deregister", "id": sid, "known": known})
                if known:
                    bump()
            if not known:
                return self.reply(404, 'Unknown service ID "%s"' % sid)
            return self.reply(200)
        m = re.fullmatch(r"/v1/health/service/(.+)", u.path)
        if m and method == "GET":
            want = int(q.get("index", ["0"])[0] or 0)
            wait = q.get("wait", [""])[0]
            t0 = time.time()
            deadline = t0 + wait_seconds(wait)
            with cond:
                blocked = want > 0 and st["index"] <= want
                while want > 0 and st["index"] <= want and time.time() < deadline:
                    cond.wait(deadline - time.time())
                released = "immediate" if not blocked else (
                    "change" if st["index"] > want else "timeout")
                idx, entries = st["index"], answer(unquote(m.group(1)))
                log({"op": "health", "name": unquote(m.group(1)), "index": want, "wait": wait,
                     "passing": "passing" in q, "held_ms": int((time.time() - t0) * 1000),
                     "released": released, "answer_index": idx, "n": len(entries)})
            return self.reply(200, json.dumps(entries), "application/json", idx)
        return self.reply(404, "no such endpoint")

    def control(self, method, what, q, body):
        with cond:
            if what.startswith("health/"):
                name = what[7:]
                if method == "DELETE":
                    st["override"].pop(name, None)
                else:
                    st["override"][name] = json.loads(body)
                bump()
            elif what == "kick":  # a change that changes nothing: held queries return
                bump()
            elif what == "fail":
                st["fail"] = int(q["n"][0])
            elif what == "hold":
                st["hold"] = float(q["s"][0])
            elif what == "index":
                st["index"] = int(q["set"][0])
                cond.notify_all()
            log({"op": "control", "what": what, "method": method, "index": st["index"]})
            return self.reply(200, json.dumps({"index": st["index"]}), "application/json")


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that went away mid-answer (a cancelled query) is no news


srv = Server(("127.0.0.1", port), Handler)
print("stand-in listening on 127.0.0.1:%d" % srv.server_address[1], flush=True)
srv.serve_forever()
EOF

# ---- helpers

# stop_pid PID WHAT: SIGTERM, then (bounded) its exit status must be 0; SIGKILL if it hangs.
# $STOP_MS gets how long it took to exit.
exited() { # gone, or a zombie waiting for this shell's `wait`
    st=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null)
    [ -z "$st" ] || [ "$st" = Z ]
}
stop_pid() {
    _t0=$(now_ms)
    kill -TERM "$1"
    if wait_until 5 exited "$1"; then
        STOP_MS=$(($(now_ms) - _t0))
        wait "$1"
        expect_eq "$2: exit status after SIGTERM" "$?" 0
    else
        STOP_MS=99999
        fail "$2 still runs 5s after SIGTERM"
        kill -KILL "$1"
        wait "$1"
    fi
}

# free_port: a port nothing listens on now (the kernel's pick, released at once).
free_port() {
    $PY -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

CPORT=$(free_port)
CADDR="127.0.0.1:$CPORT"
STUB_PID=""

# start_stub FIRST_INDEX: the stand-in on $CPORT, fresh state; waits until it listens.
start_stub() {
    $PY "$STUB" "$CPORT" "$EVENTS" "$1" >"$FL_TMP/stub.log" 2>&1 &
    STUB_PID=$!
    it_track "$STUB_PID"
    wait_until 5 grep -q 'stand-in listening' "$FL_TMP/stub.log" ||
        fail "the consul stand-in did not start"
}

stop_stub() {
    kill -TERM "$STUB_PID" 2>/dev/null
    wait "$STUB_PID" 2>/dev/null
}

# ctl METHOD WHAT [BODY]: steers the stand-in (/control/WHAT).
ctl() {
    if [ $# -ge 3 ]; then
        $CURL -X "$1" --data-binary "$3" "http://$CADDR/control/$2" >/dev/null
    else
        $CURL -X "$1" "http://$CADDR/control/$2" >/dev/null
    fi
}

# ev EXPR: EXPR, a Python expression over the stand-in's events (E, a list of dicts) and the
# shell's $1.. as A, printed (strings bare). reg(id) is id's last registration body, health()
# the health queries, after(t) the events after wall-clock second t.
ev() {
    $PY -c 'import json, sys
E = [json.loads(l) for l in open(sys.argv[1])] if __import__("os").path.exists(sys.argv[1]) else []
A = sys.argv[3:]
def reg(i): return [e["body"] for e in E if e["op"] == "register" and e["body"]["ID"] == i][-1]
def health(since=0): return [e for e in E if e["op"] == "health" and e["t"] >= since]
def count(op, **kw): return len([e for e in E if e["op"] == op and all(e.get(k) == v for k, v in kw.items())])
v = eval(sys.argv[2])
print(v if isinstance(v, str) else json.dumps(v))' "$EVENTS" "$@" 2>&1
}

# expect_ev WHAT EXPR WANT [ARGS...]
expect_ev() {
    _what=$1 _expr=$2 _want=$3
    shift 3
    expect_eq "$_what" "$(ev "$_expr" "$@")" "$_want"
}

now_s() {
    $PY -c 'import time; print(repr(time.time()))'
}

# start_echo LOG VAR=VALUE...: an echo-svc on a free port with those variables; its PID in
# $EPID and its port in $EPORT once it listens.
start_echo() {
    _log=$1
    shift
    env PORT=0 "$@" "$FL_BIN_DIR/echo-svc" >"$_log" 2>&1 &
    EPID=$!
    it_track "$EPID"
    wait_until 5 grep -q 'listening on' "$_log" || fail "echo-svc did not start ($_log)"
    EPORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$_log")
}

# lines_in FILE ERE: how many lines of FILE match.
lines_in() {
    grep -Ec -- "$2" "$1"
}

# ---- bad settings exit 2 with a message
E="$FL_BIN_DIR/echo-svc"
P="$FL_BIN_DIR/pinger"
expect_exit 2 env PORT=0 CONSUL_HTTP_ADDR=consul.local:8500 "$E"
expect_grep "^echo\[echo\]: bad CONSUL_HTTP_ADDR 'consul.local:8500': want IP:PORT$" "$ERR"
expect_exit 2 env PORT=0 CONSUL_HTTP_ADDR=127.0.0.1 "$E"
expect_exit 2 env PORT=0 CONSUL_HTTP_ADDR="$CADDR" ECHO_CHECK_INTERVAL=soon "$E"
expect_grep "^echo\[echo\]: bad ECHO_CHECK_INTERVAL 'soon'" "$ERR"
expect_exit 2 env PORT=0 PINGER_CONSUL_SERVICE=web CONSUL_HTTP_ADDR= "$P"
expect_grep '^pinger\[pinger\]: PINGER_CONSUL_SERVICE is set but CONSUL_HTTP_ADDR is not' "$ERR"
expect_exit 2 env PORT=0 PINGER_CONSUL_SERVICE=web CONSUL_HTTP_ADDR=nowhere "$P"
expect_grep "^pinger\[pinger\]: bad CONSUL_HTTP_ADDR 'nowhere'" "$ERR"
for w in 10 1x "" 5µs -1s; do
    [ -z "$w" ] && continue
    expect_exit 2 env PORT=0 PINGER_CONSUL_SERVICE=web CONSUL_HTTP_ADDR="$CADDR" \
        PINGER_CONSUL_WAIT="$w" "$P"
    expect_grep "^pinger\[pinger\]: bad PINGER_CONSUL_WAIT '$w'" "$ERR"
done

# ---- echo registers: retried with a doubling delay while the agent is down, then once
start_echo "$FL_TMP/web-1.log" CONSUL_HTTP_ADDR="$CADDR" SERVICE_NAME=web INSTANCE_ID=web-1 \
    ECHO_TAGS=" blue,, v1 ," ECHO_CHECK_INTERVAL=250ms
E1PID=$EPID E1PORT=$EPORT
wait_until 5 grep -q 'retrying in 400ms' "$FL_TMP/web-1.log" ||
    fail "web-1 does not retry its registration"
start_stub 10
registered() {
    grep -q "^echo\[$1\]: registered with consul at $CADDR as $1$" "$FL_TMP/$1.log"
}
wait_until 5 registered web-1 || fail "web-1 did not register after the agent came up"
show_retries() {
    sed -n 's/.*registration failed: .* (retrying in \(.*\))$/\1/p' "$1" | head -n "$2" | tr '\n' ' '
}
expect_eq "web-1's first retry delays" "$(show_retries "$FL_TMP/web-1.log" 3)" "100ms 200ms 400ms "
expect_grep '^echo\[web-1\]: registration failed: connection refused \(retrying in 100ms\)$' \
    "$FL_TMP/web-1.log"
expect_eq "web-1 registered once" "$(lines_in "$FL_TMP/web-1.log" 'registered with consul')" 1
expect_ev "the agent saw one registration of web-1" 'count("register")' 1
expect_ev "ID" 'reg("web-1")["ID"]' web-1
expect_ev "Name" 'reg("web-1")["Name"]' web
expect_ev "Address" 'reg("web-1")["Address"]' 127.0.0.1
expect_ev "Port" 'reg("web-1")["Port"]' "$E1PORT"
expect_ev "Tags (trimmed, empty ones dropped)" 'reg("web-1")["Tags"]' '["blue", "v1"]'
expect_ev "Check" 'reg("web-1")["Check"]' \
    "{\"HTTP\": \"http://127.0.0.1:$E1PORT/healthz\", \"Interval\": \"250ms\", \"Timeout\": \"1s\", \"DeregisterCriticalServiceAfter\": \"1m\"}"
expect_ev "Content-Type" '[e["ctype"] for e in E if e["op"] == "register"][0]' application/json
expect_ev "the registration's fields" 'sorted(reg("web-1"))' '["Address", "Check", "ID", "Name", "Port", "Tags"]'

# an agent that answers 500: the reason is logged, the retries go on
ctl PUT 'fail?n=2'
start_echo "$FL_TMP/web-2.log" CONSUL_HTTP_ADDR="$CADDR" SERVICE_NAME=web INSTANCE_ID=web-2
E2PID=$EPID E2PORT=$EPORT
wait_until 5 registered web-2 || fail "web-2 did not register after two failures"
expect_grep '^echo\[web-2\]: registration failed: HTTP 500: stand-in told to fail \(retrying in 100ms\)$' \
    "$FL_TMP/web-2.log"
expect_eq "web-2's retry delays" "$(show_retries "$FL_TMP/web-2.log" 9)" "100ms 200ms "
expect_ev "web-2 without ECHO_TAGS: no tags, a 1s check" \
    '[reg("web-2")["Tags"], reg("web-2")["Check"]["Interval"]]' '[[], "1s"]'

# ---- /unhealthy fails /healthz without killing the process
code_of() {
    $CURL -o "$FL_TMP/body" -w '%{http_code}' "$1"
}
H1="http://127.0.0.1:$E1PORT"
expect_eq "healthz" "$(code_of "$H1/healthz")" 200
expect_eq "/unhealthy?on=1" "$(code_of "$H1/unhealthy?on=1")" 200
expect_eq "healthz while unhealthy" "$(code_of "$H1/healthz")" 500
expect_eq "echo still answers" "$(code_of "$H1/hello")" 200
expect_eq "/unhealthy?on=0" "$(code_of "$H1/unhealthy?on=0")" 200
expect_eq "healthz healthy again" "$(code_of "$H1/healthz")" 200
expect_eq "/unhealthy?on=yes" "$(code_of "$H1/unhealthy?on=yes")" 400
expect_eq "/unhealthy without on" "$(code_of "$H1/unhealthy")" 400
expect_grep '^echo\[web-1\]: /healthz now answers 500, as 127\.0\.0\.1:[0-9]+ asked$' "$FL_TMP/web-1.log"

# ---- the pinger follows the health answers
PLOG="$FL_TMP/pinger.log"
env PORT=0 INSTANCE_ID=client PINGER_CONSUL_SERVICE=web CONSUL_HTTP_ADDR="$CADDR" \
    PINGER_CONSUL_WAIT=1500ms PINGER_INTERVAL_MS=20 PINGER_TARGET_VAR=NOPE \
    "$P" >"$PLOG" 2>&1 &
PPID_=$!
it_track "$PPID_"
wait_until 5 grep -q 'listening on' "$PLOG" || fail "the pinger did not start"
PADDR=$(sed -n 's/.*listening on \(127\.0\.0\.1:[0-9]*\);.*/\1/p' "$PLOG")
expect_grep "^pinger\[client\]: listening on $PADDR; pinging the passing instances of web from consul at $CADDR every 20 ms$" "$PLOG"
T1="127.0.0.1:$E1PORT" T2="127.0.0.1:$E2PORT"
has_line() {
    grep -Eq -- "$1" "$PLOG"
}
wait_until 5 has_line "targets: \[$T1,$T2\] \(index [0-9]+\)$" ||
    fail "the pinger did not take web-1 and web-2 from consul"
# pings_since N ERE: how many ping lines after line N match ERE.
pings_since() {
    tail -n "+$(($1 + 1))" "$PLOG" | grep -Ec -- "^ping .*$2"
}
both_pinged() {
    [ "$(pings_since 0 "target=$T1 result=ok .* instance=web-1$")" -ge 3 ] &&
        [ "$(pings_since 0 "target=$T2 result=ok .* instance=web-2$")" -ge 3 ]
}
wait_until 5 both_pinged || fail "the pinger does not reach both discovered echo instances"
expect_ev "the first query does not block" 'health()[0]["index"]' 0
expect_ev "every query asks for passing instances and waits 1500ms" \
    'all(h["passing"] and h["wait"] == "1500ms" and h["name"] == "web" for h in health())' true

# nothing changes for 3.5 s: the pinger blocks on the index it was given, a few queries only
T0=$(now_s)
sleep 3.5
expect_ev "queries while nothing changed (held ~1.5 s each)" \
    '(lambda n: 1 <= len(n) <= 3 and all(h["released"] == "timeout" and h["held_ms"] >= 1400 for h in n))(health(float(A[0])))' \
    true "$T0"
expect_ev "each query waits on the index of the answer before it" \
    '(lambda h: all(b["index"] == a["answer_index"] for a, b in zip(h, h[1:])))(health())' true

# the answer changes: the held query returns at once, and the targets follow
N=$(wc -l <"$PLOG")
T0=$(now_s)
ctl PUT health/web "[{\"Node\":{\"Address\":\"127.0.0.9\"},\"Service\":{\"ID\":\"web-2\",\"Address\":\"127.0.0.1\",\"Port\":$E2PORT}}]"
only_t2() {
    tail -n "+$((N + 1))" "$PLOG" | grep -Eq "targets: \[$T2\] \(index [0-9]+\)$"
}
wait_until 3 only_t2 || fail "the pinger did not drop web-1 when consul did"
expect_ev "the held query was released by the change" \
    'any(h["released"] == "change" and h["held_ms"] < 1500 for h in health(float(A[0])))' true "$T0"
N=$(grep -En "targets: \[$T2\]" "$PLOG" | tail -n 1 | cut -d: -f1)
t2_pinged() {
    [ "$(pings_since "$N" "target=$T2 result=ok")" -ge 10 ]
}
wait_until 5 t2_pinged || fail "no pings to web-2 after the change"
expect_eq "pings to web-1 after it was dropped (at most the one in flight)" \
    "$([ "$(pings_since "$N" "target=$T1 ")" -le 1 ] && echo yes)" yes

# an empty Service.Address: the node's address is used; an entry without one is skipped
N=$(wc -l <"$PLOG")
ctl PUT health/web "[{\"Node\":{\"Address\":\"127.0.0.1\"},\"Service\":{\"Address\":\"\",\"Port\":$E1PORT}},{\"Node\":{\"Address\":\"\"},\"Service\":{\"Address\":\"\",\"Port\":$E2PORT}},{\"Service\":{\"Address\":\"127.0.0.1\",\"Port\":0}}]"
node_addr() {
    tail -n "+$((N + 1))" "$PLOG" | grep -Eq "targets: \[$T1\] \(index [0-9]+\)$"
}
wait_until 3 node_addr || fail "Node.Address was not used for an empty Service.Address"
expect_grep '^pinger\[client\]: ignoring entry 1 of the health answer: no IP address and port$' "$PLOG"
expect_grep '^pinger\[client\]: ignoring entry 2 of the health answer: no IP address and port$' "$PLOG"

# an empty answer: no_target pings, no connections
N=$(wc -l <"$PLOG")
ctl PUT health/web "[]"
is_empty() {
    tail -n "+$((N + 1))" "$PLOG" | grep -Eq 'targets: \[\] \(index [0-9]+\)$'
}
wait_until 3 is_empty || fail "the pinger did not empty its targets"
N=$(grep -En 'targets: \[\]' "$PLOG" | tail -n 1 | cut -d: -f1)
sleep 0.3
$CURL "http://$PADDR/stats" >"$FL_TMP/stats1.json"
sleep 0.3
$CURL "http://$PADDR/stats" >"$FL_TMP/stats2.json"
expect_grep '^ping seq=[0-9]+ target=- result=no_target status=- ms=0\.000 bytes=- conn=0 instance=-$' "$PLOG"
expect_eq "pings with no target: only no_target (but the one in flight)" \
    "$([ "$(pings_since "$N" 'result=no_target')" -ge 10 ] && [ "$(pings_since "$N" 'target=127')" -le 1 ] && echo yes)" yes
stats() {
    $PY -c 'import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
print(json.dumps(eval(sys.argv[3])))' "$FL_TMP/stats1.json" "$FL_TMP/stats2.json" "$1" 2>&1
}
expect_eq "stats: no connection opened with no target" "$(stats 'a["connections"] == b["connections"]')" true
expect_eq "stats: no_target counted, no target listed" \
    "$(stats 'b["results"]["no_target"] > a["results"]["no_target"] > 0 and b["targets"] == {}')" true
expect_eq "stats: requests add up" "$(stats 'b["requests"] == sum(b["results"].values())')" true

# back to the registrations
N=$(wc -l <"$PLOG")
ctl DELETE health/web
back() {
    tail -n "+$((N + 1))" "$PLOG" | grep -Eq "targets: \[$T1,$T2\] \(index [0-9]+\)$"
}
wait_until 3 back || fail "the pinger did not follow the registrations again"

# errors: logged, retried with a doubling delay, the targets kept meanwhile
N=$(wc -l <"$PLOG")
ctl PUT 'fail?n=3'
ctl PUT kick # releases the held query, so the failures come at once
recovered() {
    _f=$(grep -n 'retrying in 400ms' "$PLOG" | tail -n 1 | cut -d: -f1)
    [ -n "$_f" ] && [ "$_f" -gt "$N" ] &&
        tail -n "+$((_f + 1))" "$PLOG" | grep -Eq "targets: \[$T1,$T2\] \(index [0-9]+\)$"
}
wait_until 5 recovered || fail "the pinger did not recover from three failed queries"
expect_eq "query retry delays" \
    "$(tail -n "+$((N + 1))" "$PLOG" | sed -n 's/.*consul query failed: .* (retrying in \(.*\))$/\1/p' | tr '\n' ' ')" \
    "100ms 200ms 400ms "
expect_grep '^pinger\[client\]: consul query failed: HTTP 500: stand-in told to fail \(retrying in 100ms\)$' "$PLOG"
F=$(grep -n 'retrying in 400ms' "$PLOG" | tail -n 1 | cut -d: -f1)
expect_eq "pings went on during the failures" \
    "$([ "$(tail -n "+$((N + 1))" "$PLOG" | head -n "$((F - N))" | grep -c 'result=ok')" -ge 5 ] && echo yes)" yes

# an index that goes backwards starts the watch over (index=0); an index of 0 is never waited on
T0=$(now_s)
N=$(wc -l <"$PLOG")
ctl PUT 'index?set=3'
went_back() {
    tail -n "+$((N + 1))" "$PLOG" | grep -Eq 'consul index went back from [0-9]+ to 3: starting over$'
}
wait_until 4 went_back || fail "the pinger did not notice the index going back"
restarted() {
    [ "$(ev 'any(h["index"] == 0 for h in health(float(A[0])))' "$T0")" = true ]
}
wait_until 3 restarted || fail "no query with index=0 after the index went back"
T0=$(now_s)
ctl PUT 'index?set=0'
waits_on_1() {
    [ "$(ev 'any(h["index"] == 1 for h in health(float(A[0])))' "$T0")" = true ]
}
wait_until 6 waits_on_1 || fail "after an index of 0 the pinger does not wait on index 1"
expect_ev "that query blocked" \
    'next((h["released"] != "immediate" for h in health(float(A[0])) if h["index"] == 1), "no such query")' true "$T0"
ctl PUT 'index?set=100'

# ---- SIGTERM: web-1 deregisters, and the pinger drops it
N=$(wc -l <"$PLOG")
stop_pid "$E1PID" web-1
expect_grep '^echo\[web-1\]: deregistered from consul$' "$FL_TMP/web-1.log"
expect_ev "the agent saw web-1 deregister" 'count("deregister", id="web-1", known=True)' 1
only_t2_again() {
    tail -n "+$((N + 1))" "$PLOG" | grep -Eq "targets: \[$T2\] \(index [0-9]+\)$"
}
wait_until 3 only_t2_again || fail "the pinger still lists web-1 after it deregistered"

# FAULTLINE_BUG=no-deregister: it exits 0 but stays listed, so the pinger pings a dead address
start_echo "$FL_TMP/web-3.log" CONSUL_HTTP_ADDR="$CADDR" SERVICE_NAME=web INSTANCE_ID=web-3 \
    FAULTLINE_BUG=no-deregister
E3PID=$EPID T3="127.0.0.1:$EPORT"
wait_until 5 registered web-3 || fail "web-3 did not register"
stop_pid "$E3PID" web-3
expect_grep '^echo\[web-3\]: not deregistering from consul \(FAULTLINE_BUG=no-deregister\)$' "$FL_TMP/web-3.log"
expect_ev "the agent saw no deregistration of web-3" 'count("deregister", id="web-3")' 0
N=$(wc -l <"$PLOG")
dead_pinged() {
    [ "$(pings_since "$N" "target=$T3 result=refused")" -ge 2 ]
}
wait_until 5 dead_pinged || fail "the pinger should be pinging web-3's dead address"

# a hanging agent: the deregistration gives up after 1 s and the exit is still 0
ctl PUT 'hold?s=4'
start_echo "$FL_TMP/web-4.log" CONSUL_HTTP_ADDR="$CADDR" SERVICE_NAME=other INSTANCE_ID=web-4
E4PID=$EPID
wait_until 5 registered web-4 || fail "web-4 did not register"
stop_pid "$E4PID" web-4
expect_eq "web-4 exited within 1.8 s of SIGTERM" "$([ "$STOP_MS" -lt 1800 ] && echo yes)" yes
expect_grep '^echo\[web-4\]: deregistration failed: timed out$' "$FL_TMP/web-4.log"
ctl PUT 'hold?s=0'

# ECHO_REGISTER=0, or no CONSUL_HTTP_ADDR: nothing to do with consul
start_echo "$FL_TMP/web-5.log" CONSUL_HTTP_ADDR="$CADDR" SERVICE_NAME=web INSTANCE_ID=web-5 \
    ECHO_REGISTER=0
E5PID=$EPID
start_echo "$FL_TMP/web-6.log" CONSUL_HTTP_ADDR= SERVICE_NAME=web INSTANCE_ID=web-6
E6PID=$EPID
sleep 0.3
stop_pid "$E5PID" web-5
stop_pid "$E6PID" web-6
expect_ev "web-5 and web-6 never called the agent" \
    '[e for e in E if e["op"] in ("register", "deregister") and (e.get("id") or e["body"]["ID"]) in ("web-5", "web-6")]' '[]'
for i in 5 6; do
    expect_no_grep 'consul|registration' "$FL_TMP/web-$i.log"
done

# ---- the agent goes away: errors, the old targets kept; back with an older index: start over
N=$(wc -l <"$PLOG")
stop_stub
refused() {
    tail -n "+$((N + 1))" "$PLOG" | grep -Eq 'consul query failed: connection refused \(retrying in 200ms\)$'
}
wait_until 5 refused || fail "the pinger does not report the agent gone"
t2_goes_on() {
    [ "$(pings_since "$N" "target=$T2 result=ok")" -ge 5 ]
}
wait_until 3 t2_goes_on || fail "pings to web-2 stopped without the agent"
N=$(wc -l <"$PLOG")
start_stub 1
over() {
    tail -n "+$((N + 1))" "$PLOG" | grep -Eq 'targets: \[\] \(index 1\)$'
}
wait_until 6 over || fail "the pinger did not start over with the restarted agent"
expect_grep 'consul index went back from [0-9]+ to 1: starting over$' "$PLOG"

# web-2 deregisters from an agent that forgot it: 404, logged, exit 0 all the same
stop_pid "$E2PID" web-2
expect_grep '^echo\[web-2\]: deregistration failed: HTTP 404: Unknown service ID "web-2"$' "$FL_TMP/web-2.log"

# the pinger exits at once, a blocking query held or not
sleep 0.2
stop_pid "$PPID_" pinger
expect_eq "the pinger exited within 1 s with a query held" "$([ "$STOP_MS" -lt 1000 ] && echo yes)" yes
expect_grep '^pinger\[client\]: stopping on SIGTERM$' "$PLOG"
expect_grep '^pinger\[client\]: stopped$' "$PLOG"
for f in web-1 web-2 web-3 web-4; do
    expect_no_grep 'handles left open' "$FL_TMP/$f.log"
done
expect_no_grep 'handles left open|ERROR|Sanitizer' "$PLOG"
stop_stub
it_done
