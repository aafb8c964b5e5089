# The fake Consul byte by byte, with curl (headers as curl -i shows them) against a
# standalone fake with two agents: the headers clients depend on (X-Consul-Index on every
# read, 404s included, never 0, growing with each write for one read and not going back
# when a key is deleted; X-Consul-Knownleader; X-Consul-Lastcontact; Content-Type),
# Consul's status codes and texts (405 with Allow for the wrong method, 400 "Request decode
# failed" for bad JSON, "Missing service name", unknown check/service 404s, "Invalid wait
# time"), blocking queries (the wait passes when nothing changes, a change answers at once,
# a write through the other agent wakes a query on this one, unrelated writes do not), and
# KV's base64 values, ?raw, ?keys, ?recurse and cas.
. "$FL_SOURCE_DIR/tests/integration/lib.sh"
. "$FL_SOURCE_DIR/tests/interop/lib.sh"
it_init

command -v curl >/dev/null 2>&1 || skip "curl is not installed"
start_fake 2
A="$AGENT1"

# req METHOD PATH [BODY]: one request to agent 1 (PATH may start with http:// for another
# agent); $CODE gets the status, $H the header block (what curl -i shows first, CRs
# dropped), $B the body, byte for byte.
H="$FL_TMP/headers"
B="$FL_TMP/body"
req() {
    _url=$2
    case "$_url" in http://*) ;; *) _url="$A$_url" ;; esac
    if [ $# -ge 3 ]; then
        curl -s --max-time 15 -D "$H.raw" -o "$B" -X "$1" --data-binary "$3" "$_url"
    else
        curl -s --max-time 15 -D "$H.raw" -o "$B" -X "$1" "$_url"
    fi
    tr -d '\r' <"$H.raw" >"$H"
    CODE=$(sed -n '1s/^HTTP\/1\.1 \([0-9]*\) .*/\1/p' "$H")
}

# hdr NAME: the value of header NAME of the last answer (case-insensitive name).
hdr() {
    grep -i "^$1:" "$H" | head -n 1 | sed 's/^[^:]*:[[:space:]]*//'
}
body() {
    cat "$B"
}

# expect_answer WHAT CODE [BODY]: the last answer's status (and exact body).
expect_answer() {
    if [ "$CODE" = "$2" ] && { [ $# -lt 3 ] || [ "$(body)" = "$3" ]; }; then
        ok "$1: $2${3+ '$3'}"
    else
        fail "$1: got $CODE '$(body)', want $2${3+ '$3'}"
    fi
}

# ---- every read carries X-Consul-Index (never 0), X-Consul-Knownleader and -Lastcontact.
# As in Consul, each read has its own index (KV's is not the services'); that one read's
# index only grows is checked further down.
check_read_headers() { # WHAT CONTENT_TYPE (- for none)
    i=$(hdr X-Consul-Index)
    case "$i" in
    '' | 0 | *[!0-9]*) fail "$1: X-Consul-Index is '$i'" ;;
    *) ok "$1: X-Consul-Index $i" ;;
    esac
    expect_eq "$1: X-Consul-Knownleader" "$(hdr X-Consul-Knownleader)" true
    expect_eq "$1: X-Consul-Lastcontact" "$(hdr X-Consul-Lastcontact)" 0
    if [ "$2" = - ]; then
        expect_eq "$1: no Content-Type" "$(hdr Content-Type)" ""
    else
        expect_eq "$1: Content-Type" "$(hdr Content-Type)" "$2"
    fi
}
J=application/json
for p in /v1/agent/self /v1/agent/services /v1/agent/checks /v1/agent/members \
    /v1/health/service/nosuch '/v1/health/service/nosuch?passing' /v1/health/checks/nosuch \
    /v1/health/state/any /v1/health/node/node-1 /v1/catalog/services /v1/catalog/service/nosuch \
    /v1/catalog/nodes /v1/catalog/node/node-2 /v1/catalog/datacenters /v1/status/leader \
    /v1/status/peers; do
    req GET "$p"
    expect_answer "GET $p" 200
    check_read_headers "GET $p" "$J"
done
req GET /v1/kv/missing
expect_answer "GET a missing key" 404 ""
check_read_headers "GET a missing key (404)" -
KV_I0=$(hdr X-Consul-Index)
req GET '/v1/kv/missing?recurse'
expect_answer "GET a missing prefix, recurse" 404 ""
check_read_headers "GET a missing prefix (404)" -
req GET /v1/catalog/node/nosuch
expect_answer "an unknown node" 200 null
check_read_headers "an unknown node" "$J"
req GET /v1/health/service/nosuch
expect_answer "an unknown service" 200 "[]"
req GET /v1/agent/self
expect_eq "agent 1's NodeName" "$(body | python3 -c 'import json,sys; print(json.load(sys.stdin)["Config"]["NodeName"])')" node-1
req GET "$AGENT2/v1/agent/self"
expect_eq "agent 2's NodeName" "$(body | python3 -c 'import json,sys; print(json.load(sys.stdin)["Config"]["NodeName"])')" node-2
req GET /v1/status/leader
expect_answer "status/leader" 200 '"127.0.0.1:8300"'
req GET '/v1/catalog/datacenters?pretty'
expect_eq "?pretty indents, with a newline at the end (lines joined by |)" "$(tr '\n' '|' <"$B")" '[|    "dc1"|]|'

# ---- the wrong method: 405 with Allow, as Consul >= 1.0 answers python-consul's GETs
for p in /v1/agent/service/register /v1/agent/service/deregister/x /v1/agent/check/register \
    /v1/agent/check/deregister/x /v1/agent/check/pass/x /v1/agent/check/warn/x \
    /v1/agent/check/fail/x /v1/agent/check/update/x /v1/catalog/register; do
    req GET "$p"
    expect_answer "GET $p" 405 "method GET not allowed"
    expect_eq "GET $p: Allow" "$(hdr Allow)" "OPTIONS,PUT"
    expect_eq "GET $p: Content-Type" "$(hdr Content-Type)" "text/plain; charset=utf-8"
done
req DELETE /v1/agent/self
expect_answer "DELETE /v1/agent/self" 405 "method DELETE not allowed"
expect_eq "... Allow" "$(hdr Allow)" "OPTIONS,GET"
req PUT /v1/health/service/x ""
expect_answer "PUT /v1/health/service/x" 405 "method PUT not allowed"
req OPTIONS /v1/agent/service/register
expect_answer "OPTIONS /v1/agent/service/register" 200 ""
expect_eq "... Allow" "$(hdr Allow)" "OPTIONS,PUT"
req GET /v1/no/such/endpoint
expect_eq "an unknown path" "$CODE" 404

# ---- bad bodies: Go's words, Consul's codes
R=/v1/agent/service/register
req PUT "$R" '{bad'
expect_answer "bad JSON" 400 "Request decode failed: invalid character 'b' looking for beginning of object key string"
expect_eq "... Content-Type" "$(hdr Content-Type)" "text/plain; charset=utf-8"
req PUT "$R" '{"Name":'
expect_answer "truncated JSON" 400 "Request decode failed: unexpected EOF"
req PUT "$R" ''
expect_answer "an empty body" 400 "Request decode failed: EOF"
req PUT "$R" 'xyz'
expect_answer "not JSON" 400 "Request decode failed: invalid character 'x' looking for beginning of value"
req PUT "$R" '{"Name":"x","Port":"80"}'
expect_answer "a string Port" 400 "Request decode failed: json: cannot unmarshal string into Go struct field .Port of type int"
req PUT "$R" '{"Name":"x","Check":{"TTL":"abc"}}'
expect_answer "a bad duration" 400 'Request decode failed: time: invalid duration "abc"'
req PUT "$R" '{"Port":80}'
expect_answer "no name" 400 "Missing service name"
req PUT "$R" '{"Name":"x","Check":{"Name":"c","TTL":"0s"}}'
expect_answer "a zero TTL" 400 "Invalid check: TTL must be > 0 for TTL checks"
req PUT "$R" '{"Name":"x","Check":{"HTTP":"http://127.0.0.1:1/"}}'
expect_answer "an HTTP check without an interval" 400 "Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or GRPC checks"
# a Check that decodes to nothing at all is no check (Go's CheckType.Empty()): registered
req PUT "$R" '{"Name":"x","Check":{"TTL":"0s"}}'
expect_answer "a Check with only a zero TTL: registered without a check" 200 ""
req GET /v1/agent/checks
expect_answer "... no check" 200 "{}"
req PUT /v1/agent/service/deregister/x
expect_answer "deregister x" 200 ""
req PUT /v1/agent/check/register '{"TTL":"10s"}'
expect_answer "a check without a name" 400 "Missing check name"

# ---- unknown checks and services: 404 with Consul's texts
req PUT /v1/agent/check/pass/nosuch
expect_answer "pass an unknown check" 404 'Unknown check ID "nosuch". Ensure that the check ID is passed, not the check name.'
expect_eq "... Content-Type" "$(hdr Content-Type)" "text/plain; charset=utf-8"
req PUT '/v1/agent/check/fail/service:nosuch?note=x'
expect_answer "fail an unknown check" 404 'Unknown check ID "service:nosuch". Ensure that the check ID is passed, not the check name.'
req PUT /v1/agent/check/update/nosuch '{"Status":"passing"}'
expect_answer "update an unknown check" 404 'Unknown check ID "nosuch". Ensure that the check ID is passed, not the check name.'
req PUT /v1/agent/service/deregister/nope
expect_answer "deregister an unknown service" 404 'Unknown service ID "nope". Ensure that the service ID is passed, not the service name.'

# ---- registration, checks, and what the index does
req GET /v1/catalog/services
I0=$(hdr X-Consul-Index)
req PUT "$R" '{"Name":"web","ID":"web-1","Address":"127.0.0.1","Port":8080,"Check":{"TTL":"30s"}}'
expect_answer "register web-1 with a TTL check" 200 ""
req GET /v1/agent/checks
expect_eq "the check's ID and status" "$(body | python3 -c 'import json,sys; d=json.load(sys.stdin); print(" ".join(k+"="+v["Status"] for k,v in d.items()))')" "service:web-1=critical"
req GET /v1/catalog/services
check_read_headers "catalog after the registration" "$J"
I1=$(hdr X-Consul-Index)
expect_eq "the registration moved the index" "$([ "$I1" -gt "$I0" ] && echo yes)" yes
expect_eq "catalog/services" "$(body)" '{"web":[]}'
req PUT /v1/agent/check/pass/service:web-1
expect_answer "PUT check/pass" 200 ""
req GET '/v1/health/service/web?passing'
expect_eq "passing after the pass" "$(body | python3 -c 'import json,sys; print([e["Service"]["ID"] for e in json.load(sys.stdin)])')" "['web-1']"
req PUT /v1/agent/check/warn/service:web-1
req GET '/v1/health/service/web?passing'
expect_answer "passing excludes warning" 200 "[]"
req PUT /v1/agent/service/register '{"Name":"web","ID":"web-1","Address":"127.0.0.1","Port":8080,"Check":{"TTL":"30s"}}'
req GET /v1/agent/checks
expect_eq "re-registering keeps the check's status" "$(body | python3 -c 'import json,sys; print(json.load(sys.stdin)["service:web-1"]["Status"])')" warning

# ---- blocking queries
# with nothing changing, the answer comes when the wait is over (plus at most 1/16 jitter)
req GET /v1/health/service/web
IW=$(hdr X-Consul-Index)
t0=$(now_ms)
req GET "/v1/health/service/web?index=$IW&wait=1s"
dt=$(($(now_ms) - t0))
expect_answer "a blocking query with nothing changing" 200
expect_eq "... returns after its 1s wait, not before nor long after (${dt} ms)" \
    "$([ "$dt" -ge 950 ] && [ "$dt" -lt 2500 ] && echo yes)" yes
expect_eq "... with the same index" "$(hdr X-Consul-Index)" "$IW"
t0=$(now_ms)
req GET "/v1/health/service/web?index=$IW&wait=1500ms"
dt=$(($(now_ms) - t0))
expect_eq "wait=1500ms (as Go's client sends it) is honoured (${dt} ms)" \
    "$([ "$dt" -ge 1450 ] && [ "$dt" -lt 3000 ] && echo yes)" yes
req GET "/v1/health/service/web?index=$IW&wait=10"
expect_answer "a bare number as wait" 400 "Invalid wait time"
t0=$(now_ms)
req GET "/v1/health/service/web?index=0&wait=5s"
dt=$(($(now_ms) - t0))
expect_eq "index=0 never waits (${dt} ms)" "$([ "$dt" -lt 1000 ] && echo yes)" yes

# a change answers at once: queries held on agent 1 are woken by writes through agent 2 (a
# registration of the same service) and agent 1 (a key that did not exist yet); a query
# about another service sleeps through both
blocking_get() { # PATH OUTFILE: curl in the background, its time in OUTFILE.time
    (
        s=$(now_ms)
        curl -si --max-time 15 "$A$1" >"$2"
        echo $(($(now_ms) - s)) >"$2.time"
    ) &
    BG=$!
    it_track "$BG"
}
req GET /v1/health/service/web
IW=$(hdr X-Consul-Index)
blocking_get "/v1/health/service/web?index=$IW&wait=10s" "$FL_TMP/q1"
Q1=$BG
blocking_get "/v1/kv/cfg/x?index=$IW&wait=3s" "$FL_TMP/q2" # a key that does not exist yet
Q2=$BG
blocking_get "/v1/catalog/service/other?index=$IW&wait=1s" "$FL_TMP/q3" # not concerned
Q3=$BG
sleep 0.4
req PUT "$AGENT2$R" '{"Name":"web","ID":"web-2","Port":8081,"Check":{"TTL":"30s","Status":"passing"}}'
expect_answer "register web-2 through agent 2" 200 ""
wait "$Q1"
expect_eq "the waiting health query on agent 1 answered at once (took $(cat "$FL_TMP/q1.time") ms of its 10s)" \
    "$([ "$(cat "$FL_TMP/q1.time")" -lt 2000 ] && echo yes)" yes
tr -d '\r' <"$FL_TMP/q1" >"$FL_TMP/q1.n"
expect_grep '^X-Consul-Index: [1-9][0-9]*$' "$FL_TMP/q1.n"
expect_eq "... with a higher index" \
    "$([ "$(sed -n 's/^X-Consul-Index: //p' "$FL_TMP/q1.n")" -gt "$IW" ] && echo yes)" yes
expect_grep '"ID":"web-2"' "$FL_TMP/q1.n"
wait "$Q3"
expect_eq "a query about another service slept through it (took $(cat "$FL_TMP/q3.time") ms of its 1s)" \
    "$([ "$(cat "$FL_TMP/q3.time")" -ge 950 ] && echo yes)" yes
# the missing key appears: the KV query wakes at once
t0=$(now_ms)
req PUT /v1/kv/cfg/x "hello"
expect_answer "PUT cfg/x" 200 true
wait "$Q2"
expect_eq "the waiting query on the missing key answered when it appeared (took $(cat "$FL_TMP/q2.time") ms of its 3s)" \
    "$([ "$(cat "$FL_TMP/q2.time")" -lt 2000 ] && echo yes)" yes
tr -d '\r' <"$FL_TMP/q2" >"$FL_TMP/q2.n"
expect_grep '^HTTP/1\.1 200 OK$' "$FL_TMP/q2.n"
expect_grep '"Key":"cfg/x".*"Value":"aGVsbG8="' "$FL_TMP/q2.n"

# ---- KV: base64 values, raw, keys, recurse, flags, cas
req GET /v1/kv/cfg/x
expect_answer "GET cfg/x" 200
check_read_headers "GET cfg/x" "$J"
KV_I1=$(hdr X-Consul-Index)
expect_eq "the KV write moved KV's index ($KV_I0 -> $KV_I1)" "$([ "$KV_I1" -gt "$KV_I0" ] && echo yes)" yes
expect_eq "its Value is base64" "$(body | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Value"])')" aGVsbG8=
req GET '/v1/kv/cfg/x?raw'
expect_answer "?raw" 200 hello
req PUT '/v1/kv/cfg/bin?flags=42' "$(printf 'a\tb\001')"
req GET /v1/kv/cfg/bin
expect_eq "bytes and flags" "$(body | python3 -c 'import json,sys,base64; e=json.load(sys.stdin)[0]; print(repr(base64.b64decode(e["Value"])), e["Flags"])')" "b'a\\tb\\x01' 42"
req PUT /v1/kv/cfg/empty ""
req GET /v1/kv/cfg/empty
expect_eq "an empty value is null" "$(body | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Value"])')" None
req PUT /v1/kv/cfg/sub/deep "d"
req GET '/v1/kv/cfg/?keys'
expect_answer "?keys" 200 '["cfg/bin","cfg/empty","cfg/sub/deep","cfg/x"]'
req GET '/v1/kv/cfg/?keys&separator=/'
expect_answer "?keys&separator=/" 200 '["cfg/bin","cfg/empty","cfg/sub/","cfg/x"]'
req GET '/v1/kv/cfg/?recurse'
expect_eq "?recurse: keys and decoded values" "$(body | python3 -c 'import json,sys,base64; print([(e["Key"], e["Value"] and base64.b64decode(e["Value"]).decode()) for e in json.load(sys.stdin)])')" \
    "[('cfg/bin', 'a\\tb\\x01'), ('cfg/empty', None), ('cfg/sub/deep', 'd'), ('cfg/x', 'hello')]"
req PUT '/v1/kv/cfg/x?cas=0' "no"
expect_answer "cas=0 on an existing key" 200 false
req PUT '/v1/kv/cfg/new?cas=0' "yes"
expect_answer "cas=0 on a new key" 200 true
req GET /v1/kv/cfg/new
M=$(body | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["ModifyIndex"])')
req PUT "/v1/kv/cfg/new?cas=$((M + 1))" "no"
expect_answer "a wrong cas" 200 false
req PUT "/v1/kv/cfg/new?cas=$M" "yes2"
expect_answer "the right cas" 200 true
req DELETE /v1/kv/cfg/x
expect_answer "DELETE cfg/x" 200 true
req GET /v1/kv/cfg/x
expect_answer "cfg/x is gone" 404 ""
check_read_headers "the deleted key (404)" -
KV_I2=$(hdr X-Consul-Index)
expect_eq "a deleted key's index does not go back ($KV_I1 -> $KV_I2)" "$([ "$KV_I2" -gt "$KV_I1" ] && echo yes)" yes
req DELETE '/v1/kv/cfg/?recurse'
expect_answer "DELETE cfg/ recurse" 200 true
req GET '/v1/kv/cfg/?keys'
expect_answer "nothing left under cfg/" 404 ""

stop_fake
it_done
