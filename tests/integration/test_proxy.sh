# `faultline proxy` on its own: an echo-svc behind it, the JSON control API driven with curl —
# proxies created, listed and deleted; toxics added, listed, read and removed, with their
# effect seen by curl (latency in %{time_total}, refuse as a failed request); Toxiproxy's
# attribute names; first = N; /reset; the 400, 404, 405 and 409 errors; and a clean exit on
# SIGTERM. Everything listens on 127.0.0.1 ports the kernel picks (port 0), and whatever the
# test started is stopped by PID.
. "$(dirname "$0")/lib.sh"
it_init

CURL="curl -s --max-time 5"

# api METHOD PATH [BODY]: a control API call; the status in $CODE, the body in $BODY (a file).
BODY="$FL_TMP/body"
api() {
    if [ $# -ge 3 ]; then
        CODE=$($CURL -o "$BODY" -w '%{http_code}' -X "$1" --data-binary "$3" "$API$2")
    else
        CODE=$($CURL -o "$BODY" -w '%{http_code}' -X "$1" "$API$2")
    fi
}

# expect_api STATUS METHOD PATH [BODY]: the call answers STATUS.
expect_api() {
    _want=$1
    shift
    api "$@"
    if [ "$CODE" = "$_want" ]; then
        ok "$1 $2 answers $_want"
    else
        fail "$1 $2 answered $CODE, want $_want"
        show "$BODY" 5
    fi
}

# json FILE EXPR: EXPR, a Python expression over the JSON document in FILE (as d), printed
# as JSON (strings bare): json F 'd["stats"]["refused"] > 0' prints true.
json() {
    python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
v = eval(sys.argv[2])
print(v if isinstance(v, str) else json.dumps(v))' "$1" "$2" 2>&1
}

# json_is EXPR WANT: EXPR over the last answer prints WANT.
json_is() {
    expect_eq "$1" "$(json "$BODY" "$1")" "$2"
}

# through PORT: a GET through a proxy port; curl's time_total in $TIME, exit status in $CRC.
through() {
    TIME=$($CURL -o "$FL_TMP/through" -w '%{time_total}' "http://127.0.0.1:$1/hello")
    CRC=$?
}

# stop_pid PID WHAT: SIGTERM, then (bounded) its exit status must be 0; SIGKILL if it hangs.
exited() { # gone, or a zombie waiting for this shell's `wait`
    st=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null)
    [ -z "$st" ] || [ "$st" = Z ]
}
stop_pid() {
    kill -TERM "$1"
    if wait_until 5 exited "$1"; then
        wait "$1"
        expect_eq "$2: exit status after SIGTERM" "$?" 0
    else
        fail "$2 still runs 5s after SIGTERM"
        kill -KILL "$1"
        wait "$1"
    fi
}

# ms_of SECONDS: "0.301234" → 301
ms_of() {
    awk -v s="$1" 'BEGIN { printf "%d", s * 1000 }'
}

# ---- an echo-svc upstream and the proxy in front of it
PORT=0 INSTANCE_ID=px-echo "$FL_BIN_DIR/echo-svc" >"$FL_TMP/echo.log" 2>&1 &
EPID=$!
it_track "$EPID"
wait_until 5 grep -q 'listening on' "$FL_TMP/echo.log" || fail "echo-svc did not start"
EPORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$FL_TMP/echo.log")

"$FL" proxy --control 127.0.0.1:0 --listen 127.0.0.1:0 --upstream "127.0.0.1:$EPORT" \
    --seed 3 2>"$FL_TMP/proxy.log" &
PPID_=$!
it_track "$PPID_"
wait_until 5 grep -q 'control API on' "$FL_TMP/proxy.log" || fail "the proxy did not start"
API=$(sed -n 's/.*control API on \(http:[^ ]*\)$/\1/p' "$FL_TMP/proxy.log")
MPORT=$(sed -n 's/.*proxy main: 127\.0\.0\.1:\([0-9]*\) -> .*/\1/p' "$FL_TMP/proxy.log")
[ -n "$EPORT" ] && [ -n "$API" ] && [ -n "$MPORT" ] &&
    ok "echo on $EPORT, proxy main on $MPORT, control at $API" ||
    {
        fail "could not read the ports"
        show "$FL_TMP/echo.log"
        show "$FL_TMP/proxy.log"
        it_done
    }

# ---- proxies: list, forward, create, duplicate
expect_api 200 GET /proxies
json_is 'd["main"]["listen"]' "127.0.0.1:$MPORT"
json_is 'd["main"]["upstream"]' "127.0.0.1:$EPORT"
json_is 'len(d["main"]["toxics"])' 0
through "$MPORT"
expect_eq "curl through main" "$CRC" 0
expect_eq "echo answered" "$(json "$FL_TMP/through" 'd["instance"]')" px-echo
BASE=$(ms_of "$TIME")
# no toxic: both directions went straight through, spliced socket to socket
expect_api 200 GET /proxies/main
json_is 'd["stats"]["bytes_up"] > 0 and d["stats"]["bytes_down"] > 0' true
json_is 'd["stats"]["bytes_spliced"] == d["stats"]["bytes_up"] + d["stats"]["bytes_down"]' true

expect_api 201 POST /proxies "{\"name\":\"second\",\"listen\":\"127.0.0.1:0\",\"upstream\":\"127.0.0.1:$EPORT\"}"
json_is 'd["name"]' second
SPORT=$(json "$BODY" 'd["listen"]' | sed 's/.*://')
through "$SPORT"
expect_eq "curl through second" "$CRC" 0
expect_api 409 POST /proxies "{\"name\":\"second\",\"listen\":\"127.0.0.1:0\",\"upstream\":\"127.0.0.1:$EPORT\"}"
json_is 'd["status"]' 409
expect_grep "already exists" "$BODY"
expect_api 409 POST /proxies "{\"name\":\"third\",\"listen\":\"127.0.0.1:$MPORT\",\"upstream\":\"127.0.0.1:$EPORT\"}"
expect_api 200 GET /proxies
json_is '",".join(sorted(d))' "main,second"

# ---- latency: added, seen by curl, listed, counted, removed
expect_api 200 POST /proxies/main/toxics '{"type":"latency","attributes":{"ms":300}}'
json_is 'd["name"]' latency_downstream
json_is 'd["stream"]' downstream
json_is 'd["attributes"]["ms"] == 300' true
through "$MPORT"
t=$(ms_of "$TIME")
[ "$CRC" -eq 0 ] && [ "$t" -ge 295 ] && [ "$t" -lt 2500 ] &&
    ok "latency 300ms: curl took ${t}ms" || fail "latency 300ms: curl took ${t}ms (exit $CRC)"
expect_api 200 GET /proxies/main/toxics
json_is '",".join(t["name"] for t in d)' latency_downstream
expect_api 200 GET /proxies/main/toxics/latency_downstream
json_is 'd["stats"]["chunks"] > 0' true
json_is 'd["stats"]["connections"]' 1
expect_api 409 POST /proxies/main/toxics '{"type":"latency","name":"latency_downstream","attributes":{"ms":1}}'
expect_api 204 DELETE /proxies/main/toxics/latency_downstream
expect_api 404 GET /proxies/main/toxics/latency_downstream
expect_grep "not found" "$BODY"
through "$MPORT"
t=$(ms_of "$TIME")
[ "$CRC" -eq 0 ] && [ "$t" -lt 250 ] && ok "fast again after the delete: ${t}ms" ||
    fail "after the delete curl took ${t}ms (exit $CRC), before the toxic ${BASE}ms"

# ---- Toxiproxy's attribute names: latency → ms, rate (KB/s) → kbps
expect_api 200 POST /proxies/main/toxics '{"type":"latency","name":"tp","stream":"upstream","attributes":{"latency":200}}'
json_is 'd["attributes"]["ms"] == 200' true
json_is 'd["stream"]' upstream
through "$MPORT"
t=$(ms_of "$TIME")
[ "$CRC" -eq 0 ] && [ "$t" -ge 195 ] && ok "Toxiproxy latency 200: curl took ${t}ms" ||
    fail "Toxiproxy latency 200: curl took ${t}ms (exit $CRC)"
expect_api 204 DELETE /proxies/main/toxics/tp
expect_api 200 POST /proxies/second/toxics '{"type":"bandwidth","attributes":{"rate":10}}'
json_is 'd["attributes"]["kbps"] == 80' true
expect_api 204 DELETE /proxies/second/toxics/bandwidth_downstream

# ---- refuse with first = 1: one connection refused, then everything goes through
expect_api 200 POST /proxies/main/toxics '{"type":"refuse","first":1}'
json_is 'd["first"]' 1
through "$MPORT"
[ "$CRC" -ne 0 ] && ok "the first connection is refused (curl exit $CRC)" ||
    fail "the first connection went through"
through "$MPORT"
expect_eq "the second connection (curl exit)" "$CRC" 0
through "$MPORT"
expect_eq "the third connection (curl exit)" "$CRC" 0
expect_api 200 GET /proxies/main/toxics/refuse_downstream
json_is 'd["stats"]["refused"]' 1
expect_api 200 GET /proxies/main
json_is 'd["stats"]["refused"]' 1

# ---- /reset removes every toxic from every proxy
expect_api 200 POST /proxies/main/toxics '{"type":"latency","attributes":{"ms":500}}'
expect_api 200 POST /proxies/second/toxics '{"type":"timeout","attributes":{"timeout":0}}'
expect_api 204 POST /reset
expect_api 200 GET /proxies
json_is 'sum(len(p["toxics"]) for p in d.values())' 0
through "$MPORT"
t=$(ms_of "$TIME")
[ "$CRC" -eq 0 ] && [ "$t" -lt 250 ] && ok "main is fast after /reset: ${t}ms" ||
    fail "main after /reset: ${t}ms (exit $CRC)"
through "$SPORT"
expect_eq "second answers after /reset (curl exit)" "$CRC" 0

# ---- errors: JSON {"error", "status"}
expect_api 400 POST /proxies/main/toxics '{"type": "latency",'
json_is 'd["status"]' 400
expect_grep "invalid JSON" "$BODY"
expect_api 400 POST /proxies/main/toxics '{"type":"latncy","attributes":{"ms":1}}'
expect_fgrep "unknown toxic 'latncy' (did you mean 'latency'?)" "$BODY"
expect_api 400 POST /proxies/main/toxics '{"type":"latency","attributes":{"ms":-1}}'
expect_grep "latency: ms must be from 0 to [0-9e+.]+, got -1" "$BODY"
expect_api 400 POST /proxies/main/toxics '{"type":"latency","attributes":{"msec":1}}'
expect_fgrep "latency has no parameter 'msec'" "$BODY"
expect_api 400 POST /proxies/main/toxics '{"type":"latency","attributes":{"ms":"slow"}}'
expect_api 400 POST /proxies/main/toxics '{"type":"refuse","toxicity":2}'
expect_api 400 POST /proxies '{"name":"x"}'
expect_api 400 POST /proxies "{\"name\":\"bad name\",\"listen\":\"127.0.0.1:0\",\"upstream\":\"127.0.0.1:$EPORT\"}"
expect_api 404 GET /proxies/nope
json_is 'd["status"]' 404
expect_fgrep "proxy 'nope' not found" "$BODY"
expect_api 404 POST /proxies/nope/toxics '{"type":"latency","attributes":{"ms":1}}'
expect_api 404 GET /nothing/here
expect_api 405 PUT /proxies
json_is 'd["status"]' 405
expect_api 405 DELETE /proxies/main/toxics
expect_api 405 POST /proxies/main
expect_api 200 GET /proxies
json_is 'sum(len(p["toxics"]) for p in d.values())' 0

# ---- deleting a proxy closes its port
expect_api 204 DELETE /proxies/second
expect_api 404 GET /proxies/second
through "$SPORT"
[ "$CRC" -ne 0 ] && ok "second's port is closed (curl exit $CRC)" || fail "second still answers"
expect_api 200 GET /toxics
json_is '",".join(t["type"] for t in d)' "latency,bandwidth,slicer,limit_data,timeout,reset_peer,slow_close,refuse"

# ---- --no-splice: the same bytes, copied through the proxy's memory
"$FL" proxy --control 127.0.0.1:0 --listen 127.0.0.1:0 --upstream "127.0.0.1:$EPORT" \
    --no-splice 2>"$FL_TMP/proxy2.log" &
P2=$!
it_track "$P2"
wait_until 5 grep -q 'control API on' "$FL_TMP/proxy2.log" || fail "the --no-splice proxy did not start"
API2=$(sed -n 's/.*control API on \(http:[^ ]*\)$/\1/p' "$FL_TMP/proxy2.log")
P2PORT=$(sed -n 's/.*proxy main: 127\.0\.0\.1:\([0-9]*\) -> .*/\1/p' "$FL_TMP/proxy2.log")
through "$P2PORT"
expect_eq "curl through the --no-splice proxy" "$CRC" 0
expect_eq "echo answered through it" "$(json "$FL_TMP/through" 'd["instance"]')" px-echo
API_SAVED=$API
API=$API2
expect_api 200 GET /proxies/main
json_is 'd["stats"]["bytes_up"] > 0 and d["stats"]["bytes_down"] > 0' true
json_is 'd["stats"]["bytes_spliced"]' 0
API=$API_SAVED
stop_pid "$P2" "faultline proxy --no-splice"

# ---- SIGTERM: a clean exit 0
stop_pid "$PPID_" "faultline proxy"
expect_fgrep "stopping on SIGTERM" "$FL_TMP/proxy.log"
expect_no_grep "internal error|handles left open" "$FL_TMP/proxy.log"
through "$MPORT"
[ "$CRC" -ne 0 ] && ok "main's port is closed" || fail "main still answers after the exit"
stop_pid "$EPID" echo-svc

it_done
