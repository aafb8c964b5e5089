# gRPC health checks run by the fake Consul: a real gRPC server (our greeter, which serves
# grpc.health.v1: "" and "hello.Greeter" SERVING) is registered with GRPC checks through the
# agent's HTTP API (curl). Checked: the whole server and its service pass with Consul's output;
# an unknown service name is critical (SERVICE_UNKNOWN); a dead server is critical with a
# dial error; a target without a port is critical with Go's words; and the fake exits cleanly.
. "$(dirname "$0")/lib.sh"
it_init

CURL="curl -s --max-time 5"
"$FL" fake consul --listen 127.0.0.1:0 >"$FL_TMP/fake.out" 2>"$FL_TMP/fake.err" &
FAKE=$!
it_track "$FAKE"
wait_until 5 grep -q '^node-1 http://' "$FL_TMP/fake.out" || { fail "the fake did not start"; it_done; }
AGENT=$(sed -n 's/^node-1 \(http:.*\)$/\1/p' "$FL_TMP/fake.out")

env BIND=127.0.0.1 PORT=0 SERVICE_NAME=greeter INSTANCE_ID=greeter-1 "$FL_BIN_DIR/greeter" \
    >"$FL_TMP/greeter.log" 2>&1 &
G=$!
it_track "$G"
wait_until 5 grep -q 'listening on' "$FL_TMP/greeter.log" || { fail "greeter did not start"; show "$FL_TMP/greeter.log"; it_done; }
GADDR=$(sed -n 's/.*listening on \(127\.0\.0\.1:[0-9]*\).*/\1/p' "$FL_TMP/greeter.log" | head -n 1)
ok "greeter listens on $GADDR"

register() { # ID CHECK-JSON
    $CURL -X PUT -d "{\"ID\":\"$1\",\"Name\":\"greeter\",\"Address\":\"127.0.0.1\",\"Port\":1,\"Check\":$2}" \
        "$AGENT/v1/agent/service/register"
}
status_of() { # ID → "status|output"
    $CURL "$AGENT/v1/agent/checks" | /usr/bin/python3 -c '
import json, sys
c = json.load(sys.stdin).get("service:" + sys.argv[1], {})
print("%s|%s" % (c.get("Status"), c.get("Output")))' "$1"
}
is_status() { status_of "$1" | grep -q "^$2|"; }

register whole "{\"GRPC\":\"$GADDR\",\"Interval\":\"100ms\"}"
register svc "{\"GRPC\":\"$GADDR/hello.Greeter\",\"Interval\":\"100ms\"}"
register unknown "{\"GRPC\":\"$GADDR/no.Such\",\"Interval\":\"100ms\"}"
register noport "{\"GRPC\":\"127.0.0.1\",\"Interval\":\"100ms\"}"

wait_until 5 is_status whole passing || fail "the whole server's check did not pass: $(status_of whole)"
expect_eq "the whole server passes" "$(status_of whole)" "passing|gRPC check $GADDR: success"
wait_until 5 is_status svc passing || fail "hello.Greeter's check did not pass: $(status_of svc)"
expect_eq "hello.Greeter passes" "$(status_of svc)" "passing|gRPC check $GADDR/hello.Greeter: success"
wait_until 5 sh -c "$CURL '$AGENT/v1/agent/checks' | grep -q 'SERVICE_UNKNOWN\|NOT_FOUND\|critical'"
sleep 0.5
expect_eq "an unknown service is critical" "$(status_of unknown | cut -d'|' -f1)" critical
s=$(status_of unknown)
case "$s" in
*"serving status: SERVICE_UNKNOWN"* | *"rpc error: code = NotFound"*) ok "its output says why: $s" ;;
*) fail "unexpected output for an unknown service: $s" ;;
esac
expect_eq "a target without a port" "$(status_of noport)" \
    "critical|dial tcp: address 127.0.0.1: missing port in address"

kill -TERM "$G"
wait "$G"
wait_until 5 is_status whole critical || fail "the check did not go critical with the server gone"
s=$(status_of whole)
case "$s" in
"critical|rpc error: code = Unavailable desc = "*) ok "a dead server is Unavailable: $s" ;;
*) fail "unexpected output for a dead server: $s" ;;
esac

kill -TERM "$FAKE"
wait "$FAKE"
expect_eq "the fake's exit status" "$?" 0
expect_no_grep 'Sanitizer|runtime error|handles left open' "$FL_TMP/fake.err"
it_done
