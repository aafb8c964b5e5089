// The npm `consul` package (2.0.1) against faultline's fake Consul, the way a Node service
// uses it: registration with an HTTP and a TTL check, TTL pass/warn/fail, health queries
// with `passing`, a watch woken by a registration, a blocking health query woken by a
// check going critical, deregistration, KV with the client's own base64 handling,
// agent.self, status.leader, and the errors the client reports.
//
//   node consul_node.js AGENT1_URL AGENT2_URL ECHO_ADDR
//
// AGENT1/2_URL: two agents of one standalone fake (`faultline fake consul --nodes 2`);
// ECHO_ADDR: host:port of an echo-svc (not registered itself) the HTTP check points at;
// its /unhealthy?on=1|0 fails and restores /healthz. Prints "ok: ..." or "FAIL: ..." per
// check (the shell counts them) and exits 1 if any failed; every wait is bounded.
"use strict";

const http = require("http");
const { EventEmitter } = require("events");
const Consul = require("consul");

const [agent1, agent2, echoAddr] = process.argv.slice(2);
if (!agent1 || !agent2 || !echoAddr) {
  console.error("usage: node consul_node.js AGENT1_URL AGENT2_URL ECHO_HOST:PORT");
  process.exit(2);
}

let failures = 0;
function ok(what) {
  console.log("ok: " + what);
}
function fail(what) {
  failures++;
  console.log("FAIL: " + what);
}
function expect(cond, what, got) {
  if (cond) ok(what);
  else fail(what + (got === undefined ? "" : " (got " + JSON.stringify(got) + ")"));
  return cond;
}
function eq(what, got, want) {
  const g = JSON.stringify(got),
    w = JSON.stringify(want);
  if (g === w) ok(what + " = " + w);
  else fail(what + ": got " + g + ", want " + w);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// eventually(fn, ms, what): polls the async fn every 50 ms until it returns a truthy value.
async function eventually(fn, ms, what) {
  const deadline = Date.now() + ms;
  let last, err;
  for (;;) {
    try {
      last = await fn();
      err = undefined;
      if (last) {
        ok(what);
        return last;
      }
    } catch (e) {
      err = e;
    }
    if (Date.now() > deadline) {
      fail(what + ": still not true after " + ms + " ms" + (err ? " (last error: " + err.message + ")" : ""));
      return undefined;
    }
    await sleep(50);
  }
}

// rejects(promise, what) → the error it was rejected with, or undefined (and a failure).
async function rejects(promise, what) {
  try {
    const v = await promise;
    fail(what + ": resolved with " + JSON.stringify(v) + " instead of failing");
    return undefined;
  } catch (e) {
    ok(what + ": rejected (" + e.message + ")");
    return e;
  }
}

// A GET on the echo service (to turn /healthz off and on).
function echoGet(path) {
  const [host, port] = echoAddr.split(":");
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port: Number(port), path, timeout: 3000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode));
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
  });
}

function client(url) {
  const u = new URL(url);
  // timeout bounds every request, blocking ones included (their waits stay below it)
  return new Consul({ host: u.hostname, port: Number(u.port), timeout: 10000 });
}

// withResponse(): a ctx that makes the client hand back [response, body], for the headers.
function withResponse() {
  const ctx = new EventEmitter();
  ctx.includeResponse = true;
  return ctx;
}

const ids = (entries) => entries.map((e) => e.Service.ID).sort();

async function main() {
  const c1 = client(agent1);
  const c2 = client(agent2);
  const [echoHost, echoPort] = echoAddr.split(":");

  // ---- the agent and the cluster
  const self = await c1.agent.self();
  eq("agent.self Config.NodeName", self.Config.NodeName, "node-1");
  eq("agent.self Config.Datacenter", self.Config.Datacenter, "dc1");
  eq("agent.self Member.Name", self.Member.Name, "node-1");
  eq("the second agent's agent.self", (await c2.agent.self()).Config.NodeName, "node-2");
  const leader = await c1.status.leader();
  expect(typeof leader === "string" && /^127\.0\.0\.1:8300$/.test(leader), "status.leader is the first agent's host, port 8300", leader);
  const peers = await c1.status.peers();
  expect(Array.isArray(peers) && peers.includes(leader), "status.peers lists the leader", peers);
  eq("agent.members names", (await c1.agent.members()).map((m) => m.Name).sort(), ["node-1", "node-2"]);

  // ---- a service with an HTTP check
  await c1.agent.service.register({
    name: "web",
    id: "web-1",
    address: echoHost,
    port: Number(echoPort),
    tags: ["blue", "v1"],
    meta: { version: "1" },
    check: { http: "http://" + echoAddr + "/healthz", interval: "100ms", timeout: "1s" },
  });
  ok("agent.service.register web-1 with an HTTP check");
  const svcs = await c1.agent.service.list();
  expect(svcs["web-1"] && svcs["web-1"].Service === "web" && svcs["web-1"].Port === Number(echoPort), "agent.service.list has web-1 on the echo's port", svcs);
  eq("web-1's tags", svcs["web-1"] && svcs["web-1"].Tags, ["blue", "v1"]);
  eq("web-1's meta", svcs["web-1"] && svcs["web-1"].Meta, { version: "1" });
  const passingWeb = await eventually(async () => {
    const h = await c1.health.service({ service: "web", passing: true });
    return h.length === 1 ? h : null;
  }, 3000, "the HTTP check passes: health.service web (passing) lists web-1");
  if (passingWeb) {
    const e = passingWeb[0];
    eq("its Service.ID", e.Service.ID, "web-1");
    eq("its Service.Address / Port", [e.Service.Address, e.Service.Port], [echoHost, Number(echoPort)]);
    eq("its Node.Node", e.Node.Node, "node-1");
    const chk = e.Checks.find((k) => k.CheckID === "service:web-1");
    expect(chk && chk.Status === "passing" && chk.ServiceID === "web-1", "its check service:web-1 is passing", e.Checks);
    expect(chk && /^HTTP GET http:\/\/.*\/healthz: 200 OK Output: ok/.test(chk.Output), "the check's output is Consul's", chk && chk.Output);
    expect(e.Checks.some((k) => k.CheckID === "serfHealth" && k.Status === "passing"), "the node's serfHealth is listed and passing", e.Checks);
  }
  eq("health.service by tag 'BLUE' (tags match case-insensitively)", ids(await c1.health.service({ service: "web", tag: "BLUE" })), ["web-1"]);
  eq("health.service by tag 'green'", await c1.health.service({ service: "web", tag: "green" }), []);
  eq("health.service for an unknown service", await c1.health.service("nosuch"), []);
  eq("catalog.service.nodes web", (await c1.catalog.service.nodes("web")).map((n) => [n.ServiceID, n.Node]), [["web-1", "node-1"]]);
  const catalogList = await c1.catalog.service.list();
  eq("catalog.service.list web's tags", catalogList.web, ["blue", "v1"]);

  // the same catalog through the other agent
  eq("node-2's agent sees web-1 too", ids(await c2.health.service({ service: "web", passing: true })), ["web-1"]);

  // a blocking health query, on the index of the last answer, woken by the check failing
  const ctx = withResponse();
  const [res0, before] = await c1.health.service({ service: "web", passing: true, ctx });
  const index0 = res0.headers["x-consul-index"];
  expect(/^[1-9][0-9]*$/.test(index0 || ""), "X-Consul-Index as the client sees it is a positive number", index0);
  eq("passing before /healthz fails", ids(before), ["web-1"]);
  let t0 = Date.now();
  const blocked = c1.health.service({ service: "web", passing: true, index: index0, wait: "5s" });
  await sleep(150);
  eq("echo /unhealthy?on=1", await echoGet("/unhealthy?on=1"), 200);
  const during = await blocked;
  let took = Date.now() - t0;
  eq("the blocking query returns without web-1", during, []);
  expect(took < 2500, "... woken by the check going critical, not by its 5 s wait (" + took + " ms)");
  const crit = await c1.health.checks("web");
  expect(crit.length === 1 && crit[0].Status === "critical" && /500 Internal Server Error/.test(crit[0].Output), "health.checks web: critical, with the 500 in the output", crit);
  eq("health.service without passing still lists it", ids(await c1.health.service("web")), ["web-1"]);
  eq("echo /unhealthy?on=0", await echoGet("/unhealthy?on=0"), 200);
  await eventually(async () => (await c1.health.service({ service: "web", passing: true })).length === 1, 3000, "web-1 passes again once /healthz answers 200");

  // ---- a service with a TTL check: critical until passed; pass, warn and fail from the client
  await c1.agent.service.register({ name: "worker", id: "worker-1", port: 9, check: { ttl: "30s", notes: "heartbeat" } });
  ok("agent.service.register worker-1 with a TTL check");
  const ttlCheck = async () => (await c1.agent.check.list())["service:worker-1"];
  eq("a new TTL check starts critical", (await ttlCheck()).Status, "critical");
  eq("worker (passing) before any pass", await c1.health.service({ service: "worker", passing: true }), []);
  await c1.agent.check.pass({ id: "service:worker-1", note: "all good" });
  ok("agent.check.pass service:worker-1");
  let k = await ttlCheck();
  eq("after pass: status and output", [k.Status, k.Output], ["passing", "all good"]);
  eq("worker (passing) after the pass", ids(await c1.health.service({ service: "worker", passing: true })), ["worker-1"]);
  await c1.agent.check.warn("service:worker-1");
  eq("after warn", (await ttlCheck()).Status, "warning");
  eq("a warning check is not passing", await c1.health.service({ service: "worker", passing: true }), []);
  eq("health.state warning", (await c1.health.state("warning")).map((x) => x.CheckID), ["service:worker-1"]);
  await c1.agent.check.fail({ id: "service:worker-1", note: "disk full" });
  k = await ttlCheck();
  eq("after fail: status and output", [k.Status, k.Output], ["critical", "disk full"]);
  eq("worker (passing) after the fail", await c1.health.service({ service: "worker", passing: true }), []);
  await c1.agent.check.pass("service:worker-1");
  eq("passed again", (await ttlCheck()).Status, "passing");

  // ---- a watch (blocking queries driven by the client) woken by a registration
  const changes = [];
  let wake;
  const watch = c1.watch({ method: c1.health.service, options: { service: "api", passing: true, wait: "5s" } });
  watch.on("change", (data) => {
    changes.push({ at: Date.now(), data });
    if (wake) wake();
  });
  const watchErrors = [];
  watch.on("error", (err) => watchErrors.push(err.message));
  const nextChange = (n, ms) =>
    new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      wake = () => {
        if (changes.length >= n) {
          clearTimeout(timer);
          resolve(true);
        }
      };
      wake();
    });
  expect(await nextChange(1, 3000), "the watch's first answer arrives");
  eq("... for a service not registered yet: []", changes[0] && changes[0].data, []);
  await sleep(300); // the watch is now blocked on its index
  t0 = Date.now();
  await c2.agent.service.register({ name: "api", id: "api-1", address: "127.0.0.1", port: 7001, check: { ttl: "30s", status: "passing" } });
  const woke = await nextChange(2, 3000);
  took = Date.now() - t0;
  expect(woke, "the watch is woken by api-1's registration (on the other agent)");
  expect(woke && took < 1000, "... within 1 s of it, not at its 5 s wait (" + took + " ms)");
  if (woke) {
    const e = changes[1].data;
    eq("the watch's new answer", e.map((x) => [x.Service.ID, x.Node.Node, x.Service.Port]), [["api-1", "node-2", 7001]]);
  }
  // a second registration wakes it again; a write elsewhere (KV) does not
  await c1.kv.set("unrelated", "x");
  await sleep(400);
  eq("a KV write does not wake the health watch", changes.length, 2);
  await c1.agent.service.register({ name: "api", id: "api-2", port: 7002, check: { ttl: "30s", status: "passing" } });
  if (expect(await nextChange(3, 3000), "api-2's registration wakes the watch again"))
    eq("the watch's third answer", ids(changes[2].data), ["api-1", "api-2"]);
  eq("api-2 without an address: the node's", (changes[2] ? changes[2].data : []).filter((x) => x.Service.ID === "api-2").map((x) => [x.Service.Address, x.Node.Address]), [["", "127.0.0.1"]]);
  watch.end();
  eq("no watch errors", watchErrors, []);

  // ---- deregistration
  await c2.agent.service.deregister("api-1");
  ok("agent.service.deregister api-1 (PUT, as Consul wants)");
  eq("api after api-1 left", ids(await c1.health.service("api")), ["api-2"]);
  await c1.agent.service.deregister({ id: "web-1" });
  eq("web after web-1 left", await c1.health.service("web"), []);
  expect(!("web-1" in (await c1.agent.service.list())), "agent.service.list no longer has web-1");
  expect(!("service:web-1" in (await c1.agent.check.list())), "its check is gone with it");
  let err = await rejects(c1.agent.service.deregister("web-1"), "deregistering web-1 twice");
  if (err) {
    eq("... status", err.statusCode, 404);
    // papi puts a text/plain body in err.message only when it is under 80 bytes; Consul's
    // longer texts stay in the response
    expect(String(err.response && err.response.body).startsWith('Unknown service ID "web-1". Ensure that the service ID is passed, not the service name.'), "... the body is Consul's text", err.response && String(err.response.body));
  }

  // ---- errors the client reports
  err = await rejects(c1.agent.check.pass("service:nosuch"), "agent.check.pass on an unknown check");
  if (err) {
    eq("... err.statusCode", err.statusCode, 404);
    eq("... err.response.statusCode", err.response && err.response.statusCode, 404);
    eq("... err.message (papi's words for a 404 with a long body)", err.message, "not found");
    eq("... the body is Consul's text", String(err.response && err.response.body), 'Unknown check ID "service:nosuch". Ensure that the check ID is passed, not the check name.');
  }
  err = await rejects(c1.agent.check.fail("service:web-1"), "agent.check.fail on a deregistered service's check");
  if (err) eq("... status", err.statusCode, 404);
  err = await rejects(c1.agent.service.register({ name: "bad", check: { ttl: "soon" } }), "registering a check with a bad TTL");
  if (err) {
    eq("... status", err.statusCode, 400);
    expect(/time: invalid duration "soon"/.test(err.message), "... Go's duration error", err.message);
  }
  err = await rejects(c1.agent.check.pass("service:api-2x"), "a check ID that is a prefix away");
  if (err) eq("... status", err.statusCode, 404);

  // ---- KV, base64 handled by the client
  eq("kv.set cfg/a", await c1.kv.set("cfg/a", "hello"), true);
  const a = await c1.kv.get("cfg/a");
  eq("kv.get cfg/a: the decoded value", a && a.Value, "hello");
  expect(a && a.CreateIndex > 0 && a.ModifyIndex >= a.CreateIndex && a.Flags === 0, "... with its indexes and flags", a);
  const utf8 = "grüße, 世界 \u0000 ✓";
  eq("kv.set cfg/b (UTF-8, a NUL)", await c1.kv.set({ key: "cfg/b", value: utf8, flags: 42 }), true);
  const b = await c1.kv.get("cfg/b");
  eq("kv.get cfg/b round-trips", b && b.Value, utf8);
  eq("... flags", b && b.Flags, 42);
  eq("kv.set cfg/sub/c", await c2.kv.set("cfg/sub/c", "deep"), true);
  eq("kv.set cfg/empty (an empty value)", await c1.kv.set("cfg/empty", ""), true);
  const empty = await c1.kv.get("cfg/empty");
  expect(empty && (empty.Value === null || empty.Value === ""), "an empty value reads back empty (null in JSON)", empty);
  eq("kv.get raw", (await c1.kv.get({ key: "cfg/a", raw: true })).toString(), "hello");
  eq("kv.keys cfg/", await c1.kv.keys("cfg/"), ["cfg/a", "cfg/b", "cfg/empty", "cfg/sub/c"]);
  eq("kv.keys cfg/ with separator /", await c1.kv.keys({ key: "cfg/", separator: "/" }), ["cfg/a", "cfg/b", "cfg/empty", "cfg/sub/"]);
  const all = await c1.kv.get({ key: "cfg/", recurse: true });
  eq("kv.get recurse: keys and decoded values", (all || []).map((x) => [x.Key, x.Value]), [
    ["cfg/a", "hello"],
    ["cfg/b", utf8],
    ["cfg/empty", null],
    ["cfg/sub/c", "deep"],
  ]);
  eq("kv.get of a missing key", await c1.kv.get("cfg/nope"), undefined);
  // a refused CAS is the JSON body `false`, which papi resolves as undefined (it drops falsy
  // bodies): falsy is what a caller can test
  let r = await c1.kv.set({ key: "cfg/a", value: "x", cas: 0 });
  expect(!r, "kv.set with cas=0 on an existing key is refused", r);
  eq("kv.set with the right cas", await c1.kv.set({ key: "cfg/a", value: "v2", cas: a.ModifyIndex }), true);
  r = await c1.kv.set({ key: "cfg/a", value: "v3", cas: a.ModifyIndex });
  expect(!r, "kv.set with a stale cas is refused", r);
  eq("kv.set with cas=0 on a new key", await c1.kv.set({ key: "cfg/new", value: "n", cas: 0 }), true);
  eq("cfg/a after the cas writes", (await c1.kv.get("cfg/a")).Value, "v2");
  eq("kv.del cfg/a", await c1.kv.del("cfg/a"), true);
  eq("cfg/a is gone", await c1.kv.get("cfg/a"), undefined);
  eq("kv.del cfg/ recurse", await c1.kv.del({ key: "cfg/", recurse: true }), true);
  eq("kv.keys cfg/ after it (404: undefined)", await c1.kv.keys("cfg/").catch((e) => e.statusCode), 404);
  eq("unrelated survives", (await c2.kv.get("unrelated")).Value, "x");

  // a blocking KV read woken by a write
  const kctx = withResponse();
  const [kres] = await c1.kv.get({ key: "unrelated", ctx: kctx });
  t0 = Date.now();
  const kblocked = c1.kv.get({ key: "unrelated", index: kres.headers["x-consul-index"], wait: "5s" });
  await sleep(150);
  await c2.kv.set("unrelated", "y");
  const kv2 = await kblocked;
  took = Date.now() - t0;
  eq("the blocking kv.get returns the new value", kv2 && kv2.Value, "y");
  expect(took < 1500, "... woken by the write (" + took + " ms)");

  await c2.agent.service.deregister("api-2").catch(() => {}); // registered through node-1
  await c1.agent.service.deregister("api-2");
  await c1.agent.service.deregister("worker-1");
  eq("the catalog is empty again", Object.keys(await c1.catalog.service.list()), []);
  c1.destroy();
  c2.destroy();
}

main().then(
  () => {
    console.log(failures ? failures + " node checks FAILED" : "all node checks passed");
    process.exit(failures ? 1 : 0);
  },
  (e) => {
    fail("unexpected error: " + (e && e.stack ? e.stack : e));
    process.exit(1);
  },
);
