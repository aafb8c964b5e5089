# The Consul integration in scenarios (scenarios/consul/): echo-svc replicas register
# themselves with the fake Consul (HTTP check every 100 ms) and a pinger discovers them with
# blocking health queries on its own agent. Checked, all through Lua scenarios that must
# pass: t:healthy counts; t:consul_view answers with the client's link addresses; a crashed
# replica goes critical within about an interval, leaves the client's view and returns
# after t:restart; t:stop deregisters (and FAULTLINE_BUG=no-deregister leaves the stopped
# replica registered but critical); a failing /healthz; link faults reach discovered
# connections; t.consul down/up (the client keeps its targets, registrations retry),
# latency, freeze/thaw, stale, flap/steady and heal. Then the timeline must show what the
# fake saw, usage errors must be "faultline: FILE:LINE: ..." with exit 2, consul = "none"
# gives no CONSUL_HTTP_ADDR, consul = "host:port" is handed to instances as it is, and
# nothing may be left running.
IT_LIMIT=${IT_LIMIT:-120} # faults.lua takes ~13 s, more under ASan on a small machine
. "$(dirname "$0")/lib.sh"
it_init

MARK=$(new_mark)

# section FILE START END: the lines of FILE from the first matching START (ERE) to the next
# matching END, into $FL_TMP/section.
section() {
    awk -v a="$2" -v b="$3" '!on && $0 ~ a { on = 1 } on { print } on && $0 ~ b { exit }' "$1" \
        >"$FL_TMP/section"
}

T0=$(now_ms)

# ---- discovery: healthy counts, views are links, crash / restart, stop, /healthz, link faults
suite consul/discovery.lua
# the fake ran echo-2's check against the dead process, and said so in Go's words
expect_grep '\[note\] echo-2: consul: check service:echo-2 passing -> critical: Get "http://127\.[0-9.]+:[0-9]+/healthz": dial tcp 127\.[0-9.]+:[0-9]+: connect: connection refused$' "$S"
expect_grep '\[note\] echo-2: consul: updated service echo-2 \(echo\) at 127\.[0-9.]+:[0-9]+, 1 check$' "$S"
# t:stop: echo-3 deregistered before it exited
section "$S" '\[fault\] echo-3: stop ' '\[process\] echo-3: exited'
expect_grep '\[note\] echo-3: consul: deregistered service echo-3$' "$FL_TMP/section"
expect_grep '\[note\] echo-1: consul: check service:echo-1 passing -> critical: HTTP GET http://.*/healthz: 500 Internal Server Error Output: unhealthy$' "$S"
expect_grep '\[fault\] client-1->echo-1: removed refuse\{\}: applied to [0-9]+ connections, refused [1-9]' "$S"
expect_grep '\[fault\] client-1 <-/-> echo-2: removed partition: applied to [0-9]+ connections?' "$S"
expect_no_grep '\[process\] (echo|client)-[0-9]: .*\(unexpected\)' "$S"
expect_no_marker "$MARK" 3 "after consul/discovery.lua"

# ---- t.consul faults
suite consul/faults.lua
for f in 'down' 'up' 'latency 0\.4s' 'frozen' 'thawed' 'stale 2s' 'stale 0s' 'flap echo every 0\.3s' 'steady echo'; do
    expect_grep "\[fault\] consul: $f \(consul/faults\.lua:[0-9]+\)$" "$S"
done
expect_grep '\[note\] consul: .*down: agents refuse connections$' "$S"
expect_grep '\[note\] consul: .*up: agents listen again$' "$S"
expect_grep '\[note\] consul: .*frozen: blocking queries hang, writes wait$' "$S"
expect_grep '\[note\] consul: .*stale: answers describe the catalog 2s ago$' "$S"
expect_grep '\[note\] consul: .*flap echo every 300ms$' "$S"
# late-1's registration, refused while down (its log is checked in the scenario), accepted
expect_grep '\[note\] late-1: consul: registered service late-1 \(late\) at 127\.[0-9.]+:[0-9]+, 1 check$' "$S"
expect_no_grep '\[process\] (echo|client|late)-[0-9]: .*\(unexpected\)' "$S"
expect_no_marker "$MARK" 3 "after consul/faults.lua"

# ---- FAULTLINE_BUG=no-deregister: the stopped replica stays registered, critical
suite consul/no_deregister.lua
section "$S" '\[fault\] echo-1: stop ' 'scenario ended'
expect_grep '\[note\] echo-1: consul: check service:echo-1 passing -> critical: ' "$FL_TMP/section"
expect_no_grep 'deregistered service echo-1' "$FL_TMP/section"
expect_no_marker "$MARK" 3 "after consul/no_deregister.lua"

# ---- usage errors: FILE:LINE and the message, exit 2; the good scenario after them runs
usage_checks consul/usage.lua
expect_grep '^✓ consul/usage\.lua: a good scenario after them still runs' "$OUT"
expect_summary "1 passed, 0 failed, 8 errors, 0 skipped"
expect_no_marker "$MARK" 3 "after consul/usage.lua"

# ---- consul = "none": no CONSUL_HTTP_ADDR, and the fake's calls are usage errors
usage_checks consul/none.lua
expect_grep '^✓ consul/none\.lua: no CONSUL_HTTP_ADDR, and echo-svc stays out of Consul' "$OUT"
expect_summary "1 passed, 0 failed, 3 errors, 0 skipped"
expect_no_marker "$MARK" 3 "after consul/none.lua"

# ---- consul = "host:port": handed to every instance as it is
usage_checks consul/real.lua
expect_grep '^✓ consul/real\.lua: every instance gets the real agent' "$OUT"
expect_summary "1 passed, 0 failed, 2 errors, 0 skipped"
expect_no_marker "$MARK" 3 "after consul/real.lua"

# ---- ready = "healthy" without the fake: a load error at the topology
expect_exit 2 env IT_MARK="$MARK" "$FL" run consul/healthy_without_fake.lua
expect_eq "the load error" "$(cat "$ERR")" \
    "faultline: consul/healthy_without_fake.lua:3: service 'echo': ready = \"healthy\" needs the fake Consul (topology consul = \"fake\", the default)"
expect_no_fgrep 'never runs' "$OUT"

echo "  (test_consul.sh took $(($(now_ms) - T0))ms)"
it_done
