"""Debian's python3-consul 0.7.1 against faultline's fake Consul, for what that library does
right: registration with HTTP, TCP and TTL checks (consul.Check.http/tcp/ttl), health
queries with passing, the catalog, KV with recurse (values base64-decoded by the library),
blocking reads (kv.get and health.service with index/wait) woken by writes, status.leader,
agent.self, and the 400 it raises for a bad registration.

Its known incompatibility is asserted as well: it sends GET for deregistration and for
check pass/warn/fail, which Consul >= 1.0 answers with 405 (method GET not allowed), and
so does the fake; the library's calls return False and nothing changes. The same
operations done with PUT (what the library should send) work.

    /usr/bin/python3 consul_py.py ECHO_HOST:PORT AGENT2_HOST:PORT

with CONSUL_HTTP_ADDR set to the first agent (the library reads it itself). ECHO is an
echo-svc (not registered itself) the HTTP and TCP checks point at. Prints "ok: ..." or
"FAIL: ..." per check and exits 1 if any failed; every wait is bounded.
"""
import os
import sys
import threading
import time
import urllib.error
import urllib.request

import consul

ECHO = sys.argv[1]
ECHO_HOST, ECHO_PORT = ECHO.split(":")[0], int(ECHO.split(":")[1])
AGENT1 = os.environ["CONSUL_HTTP_ADDR"]
AGENT2_HOST, AGENT2_PORT = sys.argv[2].split(":")[0], int(sys.argv[2].split(":")[1])

failures = 0


def ok(what):
    print("ok: " + what, flush=True)


def fail(what):
    global failures
    failures += 1
    print("FAIL: " + what, flush=True)


def expect(cond, what, got=None):
    if cond:
        ok(what)
    else:
        fail(what + ("" if got is None else " (got %r)" % (got,)))
    return cond


def eq(what, got, want):
    if got == want:
        ok("%s = %r" % (what, want))
    else:
        fail("%s: got %r, want %r" % (what, got, want))


def eventually(fn, seconds, what):
    deadline = time.monotonic() + seconds
    last_err = None
    while True:
        try:
            v = fn()
            if v:
                ok(what)
                return v
        except Exception as e:  # a failing call counts as "not yet"
            last_err = e
        if time.monotonic() > deadline:
            fail("%s: still not true after %gs%s" % (what, seconds,
                 "" if last_err is None else " (last error: %r)" % last_err))
            return None
        time.sleep(0.05)


def raw(method, path):
    """A request the way the library should have sent it: (status, body)."""
    req = urllib.request.Request("http://%s%s" % (AGENT1, path), method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def later(seconds, fn):
    """Runs fn in a thread after seconds; returns the thread."""
    th = threading.Thread(target=lambda: (time.sleep(seconds), fn()), daemon=True)
    th.start()
    return th


def ids(nodes):
    return sorted(n["Service"]["ID"] for n in nodes)


c = consul.Consul()  # CONSUL_HTTP_ADDR
# 0.7.1 lets CONSUL_HTTP_ADDR win over host/port given in the call: hide it for the second
os.environ.pop("CONSUL_HTTP_ADDR")
c2 = consul.Consul(host=AGENT2_HOST, port=AGENT2_PORT)
os.environ["CONSUL_HTTP_ADDR"] = AGENT1
Check = consul.Check

# ---- the agent
eq("agent.self Config.NodeName", c.agent.self()["Config"]["NodeName"], "node-1")
eq("agent 2's agent.self Member.Name", c2.agent.self()["Member"]["Name"], "node-2")
eq("status.leader", c.status.leader(), "127.0.0.1:8300")
eq("status.peers", c.status.peers(), ["127.0.0.1:8300"])

# ---- registration with HTTP, TCP and TTL checks
eq("register web-1 with Check.http", c.agent.service.register(
    "web", service_id="web-1", address=ECHO_HOST, port=ECHO_PORT, tags=["py", "v1"],
    check=Check.http("http://%s/healthz" % ECHO, "100ms", timeout="1s")), True)
eq("register db-1 with Check.tcp", c.agent.service.register(
    "db", service_id="db-1", address=ECHO_HOST, port=ECHO_PORT,
    check=Check.tcp(ECHO_HOST, ECHO_PORT, "100ms", timeout="1s")), True)
eq("register worker-1 with Check.ttl", c.agent.service.register(
    "worker", service_id="worker-1", port=9000, check=Check.ttl("30s")), True)
svcs = c.agent.services()
eq("agent.services", sorted(svcs), ["db-1", "web-1", "worker-1"])
eq("web-1 as the agent has it", [svcs["web-1"][k] for k in ("Service", "Address", "Port", "Tags")],
   ["web", ECHO_HOST, ECHO_PORT, ["py", "v1"]])
checks = c.agent.checks()
eq("the checks' IDs", sorted(checks), ["service:db-1", "service:web-1", "service:worker-1"])
eq("the TTL check starts critical", checks["service:worker-1"]["Status"], "critical")
eq("the TTL check's type", checks["service:worker-1"].get("Type"), "ttl")

web = eventually(lambda: c.health.service("web", passing=True)[1], 3,
                 "the HTTP check passes: health.service(web, passing=True) lists web-1")
if web:
    eq("its Service.ID / Port / Node", [web[0]["Service"]["ID"], web[0]["Service"]["Port"],
                                        web[0]["Node"]["Node"]], ["web-1", ECHO_PORT, "node-1"])
    chk = [k for k in web[0]["Checks"] if k["CheckID"] == "service:web-1"]
    expect(chk and chk[0]["Status"] == "passing" and
           chk[0]["Output"].startswith("HTTP GET http://%s/healthz: 200 OK" % ECHO),
           "its HTTP check is passing, with Consul's output", chk)
db = eventually(lambda: c.health.service("db", passing=True)[1], 3,
                "the TCP check passes: health.service(db, passing=True) lists db-1")
if db:
    chk = [k for k in db[0]["Checks"] if k["CheckID"] == "service:db-1"]
    eq("its TCP check's output", chk and chk[0]["Output"], "TCP connect %s: Success" % ECHO)
eq("worker (passing): the TTL check is critical", c.health.service("worker", passing=True)[1], [])
eq("worker (all)", ids(c.health.service("worker")[1]), ["worker-1"])
eq("an unknown service", c.health.service("nosuch", passing=True)[1], [])
index, _ = c.health.service("web", passing=True)
expect(int(index) > 0, "health.service's index is a positive number", index)

# ---- the catalog
index, services = c.catalog.services()
eq("catalog.services", services, {"db": [], "web": ["py", "v1"], "worker": []})
_, nodes = c.catalog.service("web")
eq("catalog.service(web)", [(n["ServiceID"], n["ServiceAddress"], n["ServicePort"], n["Node"])
                            for n in nodes], [("web-1", ECHO_HOST, ECHO_PORT, "node-1")])
eq("catalog.service(web, tag=py)", len(c.catalog.service("web", tag="py")[1]), 1)
eq("catalog.service(web, tag=nope)", c.catalog.service("web", tag="nope")[1], [])
eq("catalog.nodes", sorted(n["Node"] for n in c.catalog.nodes()[1]), ["node-1", "node-2"])

# ---- errors the library raises
try:
    c.agent.service.register("bad", check=Check.ttl("soon"))
    fail("a bad TTL was accepted")
except consul.base.BadRequest as e:
    eq("a bad TTL raises BadRequest with Consul's text", str(e),
       '400 Request decode failed: time: invalid duration "soon"')

# ---- KV, with recurse; values come back decoded from base64
eq("kv.put app/a", c.kv.put("app/a", "hello"), True)
eq("kv.put app/bin (bytes)", c.kv.put("app/bin", b"\x00\xff\x01bin"), True)
eq("kv.put app/sub/c with flags", c.kv.put("app/sub/c", "deep", flags=7), True)
_, item = c.kv.get("app/a")
eq("kv.get app/a Value", item and item["Value"], b"hello")
eq("kv.get app/bin Value (binary round trip)", c.kv.get("app/bin")[1]["Value"], b"\x00\xff\x01bin")
eq("kv.get app/sub/c Flags", c.kv.get("app/sub/c")[1]["Flags"], 7)
_, items = c.kv.get("app/", recurse=True)
eq("kv.get(app/, recurse=True)", [(i["Key"], i["Value"]) for i in items or []],
   [("app/a", b"hello"), ("app/bin", b"\x00\xff\x01bin"), ("app/sub/c", b"deep")])
eq("kv.get(app/, keys=True)", c.kv.get("app/", keys=True)[1], ["app/a", "app/bin", "app/sub/c"])
eq("kv.get(app/, keys=True, separator=/)", c.kv.get("app/", keys=True, separator="/")[1],
   ["app/a", "app/bin", "app/sub/"])
eq("kv.put with cas=0 on an existing key", c.kv.put("app/a", "x", cas=0), False)
eq("kv.put with the right cas", c.kv.put("app/a", "v2", cas=item["ModifyIndex"]), True)
eq("kv.put with a stale cas", c.kv.put("app/a", "v3", cas=item["ModifyIndex"]), False)
eq("app/a after them", c.kv.get("app/a")[1]["Value"], b"v2")
index, missing = c.kv.get("app/nope")
eq("a missing key", missing, None)
expect(int(index) > 0, "a missing key still has an index", index)
eq("kv.delete app/a", c.kv.delete("app/a"), True)
eq("app/a after the delete", c.kv.get("app/a")[1], None)
eq("kv.delete(app/, recurse=True)", c.kv.delete("app/", recurse=True), True)
eq("app/ after the recursive delete", c.kv.get("app/", recurse=True)[1], None)

# ---- blocking reads: the wait passes when nothing changes; a write wakes them at once
c.kv.put("cfg/x", "one")
index, _ = c.kv.get("cfg/x")
t0 = time.monotonic()
index2, item = c.kv.get("cfg/x", index=index, wait="1s")
took = time.monotonic() - t0
expect(0.9 <= took < 2.5, "a blocking kv.get with nothing changing returns after its 1s wait "
       "(%.2fs)" % took)
eq("... with the same index and value", [index2, item["Value"]], [index, b"one"])
t0 = time.monotonic()
th = later(0.3, lambda: c2.kv.put("cfg/x", "two"))
index3, item = c.kv.get("cfg/x", index=index, wait="5s")
took = time.monotonic() - t0
th.join(5)
eq("a blocking kv.get woken by a write through the other agent", item["Value"], b"two")
expect(0.25 <= took < 1.5, "... at once, not at its 5s wait (%.2fs)" % took)
expect(int(index3) > int(index), "... with a higher index", (index, index3))

index, before = c.health.service("web")
eq("web before web-2 registers", ids(before), ["web-1"])
t0 = time.monotonic()
th = later(0.3, lambda: c2.agent.service.register(
    "web", service_id="web-2", address=ECHO_HOST, port=ECHO_PORT,
    check=Check.http("http://%s/healthz" % ECHO, "100ms")))
index2, after = c.health.service("web", index=index, wait="5s")
took = time.monotonic() - t0
th.join(5)
eq("a blocking health.service woken by web-2's registration on node-2", ids(after),
   ["web-1", "web-2"])
expect(0.25 <= took < 1.5, "... at once, not at its 5s wait (%.2fs)" % took)


# a watcher loop as python-consul users write it: passing=True, following the index
def watch_passing():
    idx, seen = None, []
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        idx, nodes = c.health.service("web", index=idx, wait="2s", passing=True)
        seen = ids(nodes)
        if seen == ["web-1", "web-2"]:
            return seen
    return seen


eq("a passing=True watcher sees web-2 once its HTTP check passes", watch_passing(),
   ["web-1", "web-2"])
eq("web-2's node", [n["Node"]["Node"] for n in c.health.service("web", passing=True)[1]
                    if n["Service"]["ID"] == "web-2"], ["node-2"])

# ---- the known incompatibility: GET for deregister and check updates, 405 as in Consul
eq("agent.service.deregister(web-2) returns False (405 for its GET)",
   c2.agent.service.deregister("web-2"), False)
eq("... and web-2 is still registered", ids(c.health.service("web")[1]), ["web-1", "web-2"])
eq("agent.check.ttl_pass returns False (405 for its GET)",
   c.agent.check.ttl_pass("service:worker-1"), False)
eq("agent.check.ttl_fail returns False too", c.agent.check.ttl_fail("service:worker-1"), False)
eq("... and the TTL check is still critical", c.agent.checks()["service:worker-1"]["Status"],
   "critical")
eq("what the fake answers that GET (Consul's words)",
   raw("GET", "/v1/agent/check/pass/service:worker-1"), (405, "method GET not allowed"))
eq("the PUT the library should send passes the check",
   raw("PUT", "/v1/agent/check/pass/service:worker-1?note=by+hand"), (200, ""))
eq("worker (passing) after it", ids(c.health.service("worker", passing=True)[1]), ["worker-1"])
for sid in ("web-1", "db-1", "worker-1"):
    eq("PUT deregister " + sid, raw("PUT", "/v1/agent/service/deregister/" + sid), (200, ""))
eq("web after web-1 left (web-2 was registered through node-2)",
   ids(c.health.service("web")[1]), ["web-2"])

print("%d python checks FAILED" % failures if failures else "all python checks passed")
sys.exit(1 if failures else 0)
