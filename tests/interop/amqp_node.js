// AMQP 0-9-1 interop and differential client: npm amqplib (tests/interop/package.json).
//
// Usage: node amqp_node.js AMQP_URL [PREFIX]
//
// Drives a broker the way Node services use amqplib (promise API): assertExchange /
// assertQueue / bindQueue, sendToQueue and publish, a confirm channel with per-message
// callbacks and waitForConfirms, prefetch, consume with server-named consumer tags
// (amq.ctag-...), cancel, get, ack / nack / reject with allUpTo and requeue, recover, the
// 'return' event for mandatory messages, and broker errors seen as they reach an amqplib
// user: rejected promises and channel 'close' / 'error' events carrying codes and texts.
// It prints a normalized transcript, one line per observable result; against a real
// RabbitMQ and against the fake broker the transcripts must be equal
// (tests/interop/test_amqp_diff.sh). Server-generated names become amq.gen-* / amq.ctag-*;
// every name starts with PREFIX (default "flnd-"; it must occur in no other text), which the
// transcript leaves out. Every wait is bounded; an unexpected error is printed as
// "UNEXPECTED ..." and makes the exit status 1.
"use strict";

const path = require("path");
const amqp = require(path.join(__dirname, "node_modules", "amqplib"));

const URL = process.argv[2];
const P = process.argv[3] || "flnd-";
let unexpected = 0;

function norm(s) {
  return String(s)
    .replace(/amq\.gen-[A-Za-z0-9_-]+/g, "amq.gen-*")
    .replace(/amq\.ctag-[A-Za-z0-9_-]+/g, "amq.ctag-*")
    .split(P)
    .join("");
}

function say(...parts) {
  process.stdout.write(norm(parts.map((p) => (typeof p === "string" ? p : JSON.stringify(p))).join(" ")) + "\n");
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// until(fn, ms): polls fn (which may be async) every 20 ms until it is truthy, at most ms.
async function until(fn, ms = 5000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v || Date.now() >= deadline) return v;
    await sleep(20);
  }
}

// The server's own words in an amqplib error: "<code> <text>".
function closeText(err) {
  const m = /with message "(.*)"$/.exec(err.message);
  return `${err.code} ${m ? m[1] : err.message}`;
}

// expectClose(label, ch, fn): fn should make the broker close ch; shows the rejected
// promise and the channel's 'close'/'error' events as amqplib reports them.
async function expectClose(label, ch, fn) {
  const events = [];
  ch.on("error", (e) => events.push(`error event ${closeText(e)}`));
  ch.on("close", () => events.push("close event"));
  try {
    const r = await fn();
    say(label, "-> no error", r === undefined ? "" : r);
  } catch (e) {
    say(label, "-> rejected", closeText(e));
  }
  await until(() => events.includes("close event"), 2000);
  say(label, "-> events", events);
}

function showMsg(tag, m) {
  if (!m) return say(tag, "get-empty");
  const f = m.fields;
  say(
    tag,
    `tag=${f.deliveryTag} redelivered=${f.redelivered} ex=${JSON.stringify(f.exchange)} key=${JSON.stringify(f.routingKey)}` +
      (f.messageCount !== undefined ? ` count=${f.messageCount}` : "") +
      ` body=${JSON.stringify(m.content.toString())}`,
  );
}

async function sConnection(conn) {
  const sp = conn.connection.serverProperties;
  for (const k of Object.keys(sp).sort()) {
    let v = sp[k];
    if (["version", "platform", "cluster_name"].includes(k)) v = "<dropped>";
    say("server-property", k, "=", v);
  }
  say("negotiated frameMax", conn.connection.frameMax, "channelMax", conn.connection.channelMax, "heartbeat", conn.connection.heartbeat);
}

async function sAuth() {
  const u = new globalThis.URL(URL);
  const bad = `amqp://${u.username}:wrong@${u.host}`;
  try {
    const c = await amqp.connect(bad);
    say("wrong password: connected");
    await c.close();
  } catch (e) {
    say("wrong password:", e.message);
  }
  try {
    const c = await amqp.connect(`amqp://${u.username}:${u.password}@${u.host}/nope`);
    say("vhost nope: connected");
    await c.close();
  } catch (e) {
    say("vhost nope:", e.message);
  }
}

async function sTopology(conn) {
  const ch = await conn.createConfirmChannel();
  for (const t of ["direct", "fanout", "topic", "headers"]) {
    const r = await ch.assertExchange(P + "x-" + t, t, { durable: false });
    say("assertExchange", t, "->", r);
  }
  const q1 = await ch.assertQueue(P + "q1", { durable: false });
  say("assertQueue q1 ->", q1);
  const anon = await ch.assertQueue("", { exclusive: true });
  say("assertQueue '' ->", anon, "well formed", /^amq\.gen-[A-Za-z0-9_-]{22}$/.test(anon.queue));
  await ch.bindQueue(q1.queue, P + "x-topic", "order.*");
  await ch.bindQueue(anon.queue, P + "x-topic", "#.created");
  await ch.bindQueue(q1.queue, P + "x-headers", "", { "x-match": "any", kind: "a", n: 2 });
  await ch.bindExchange(P + "x-fanout", P + "x-direct", "k");
  await ch.bindQueue(anon.queue, P + "x-fanout", "");
  for (const key of ["order.created", "order.paid", "order.x.created", "user.created"]) {
    ch.publish(P + "x-topic", key, Buffer.from("topic " + key));
  }
  ch.publish(P + "x-headers", "", Buffer.from("headers kind=a"), { headers: { kind: "a" } });
  ch.publish(P + "x-headers", "", Buffer.from("headers n=2"), { headers: { n: 2 } });
  ch.publish(P + "x-headers", "", Buffer.from("headers kind=b"), { headers: { kind: "b" } });
  ch.publish(P + "x-direct", "k", Buffer.from("direct k via fanout"));
  ch.publish(P + "x-direct", "j", Buffer.from("direct j"));
  await ch.waitForConfirms();
  for (const [name, q] of [["q1", q1.queue], ["anon", anon.queue]]) {
    const got = [];
    for (;;) {
      const m = await ch.get(q, { noAck: true });
      if (!m) break;
      got.push(m.content.toString());
    }
    say("queue", name, "->", got);
  }
  say("checkQueue q1 ->", await ch.checkQueue(q1.queue));
  say("checkExchange amq.topic ->", await ch.checkExchange("amq.topic"));
  await ch.unbindQueue(q1.queue, P + "x-topic", "order.*");
  await ch.unbindExchange(P + "x-fanout", P + "x-direct", "k");
  say("deleteQueue q1 ->", await ch.deleteQueue(q1.queue));
  for (const t of ["direct", "fanout", "topic", "headers"]) await ch.deleteExchange(P + "x-" + t);
  await ch.close();

  let c2 = await conn.createChannel();
  await expectClose("checkQueue of a missing queue", c2, () => c2.checkQueue(P + "missing"));
  c2 = await conn.createChannel();
  await expectClose("checkExchange of a missing exchange", c2, () => c2.checkExchange(P + "missing"));
  c2 = await conn.createChannel();
  await c2.assertQueue(P + "durable", { durable: true });
  await expectClose("assertQueue durable as transient", c2, () => c2.assertQueue(P + "durable", { durable: false }));
  c2 = await conn.createChannel();
  await expectClose("bindQueue to a missing exchange", c2, () => c2.bindQueue(P + "durable", P + "missing", "k"));
  c2 = await conn.createChannel();
  await c2.sendToQueue(P + "durable", Buffer.from("x"));
  await expectClose("deleteQueue ifEmpty", c2, () => c2.deleteQueue(P + "durable", { ifEmpty: true }));
  c2 = await conn.createChannel();
  say("purgeQueue ->", await c2.purgeQueue(P + "durable"));
  say("deleteQueue ->", await c2.deleteQueue(P + "durable"));
  await c2.close();
}

async function sConfirms(conn) {
  const ch = await conn.createConfirmChannel();
  const q = (await ch.assertQueue(P + "confirm", { durable: false })).queue;
  await ch.assertExchange(P + "lonely", "direct", { durable: false });
  const order = [];
  ch.on("return", (m) => order.push(`return ${m.fields.replyCode} ${m.fields.replyText} ${m.fields.routingKey} ${m.content}`));
  const plan = [
    ["", q, false],
    [P + "lonely", "nowhere", true],
    ["", q, true],
    [P + "lonely", "nowhere", false],
    [P + "lonely", "nowhere", true],
  ];
  const acks = plan.map(
    ([ex, key, mandatory], i) =>
      new Promise((resolve) => {
        const ok = ch.publish(ex, key, Buffer.from(`n${i + 1}`), { mandatory }, (err) => {
          order.push(`${err ? "nack" : "ack"} n${i + 1}`);
          resolve();
        });
        if (!ok) order.push(`publish ${i + 1} returned false`);
      }),
  );
  await Promise.all(acks);
  await ch.waitForConfirms();
  // each returned message's basic.return must come before its ack
  for (let i = 1; i <= plan.length; i++) {
    const ev = order.filter((e) => e.endsWith(` n${i}`));
    say(`confirm channel: message n${i}:`, ev.join("; "));
  }
  say("queue holds", (await ch.checkQueue(q)).messageCount);
  await ch.deleteQueue(q);
  await ch.deleteExchange(P + "lonely");
  await ch.close();
  const c2 = await conn.createConfirmChannel();
  await expectClose("confirm publish to a missing exchange", c2, () => {
    c2.publish(P + "missing", "k", Buffer.from("x"));
    return c2.waitForConfirms();
  });
}

async function sAcks(conn) {
  let ch = await conn.createConfirmChannel();
  const q = (await ch.assertQueue(P + "acks", { durable: false })).queue;
  for (let i = 1; i <= 4; i++) ch.sendToQueue(q, Buffer.from(`m${i}`));
  await ch.waitForConfirms();
  const msgs = [];
  for (let i = 0; i < 4; i++) {
    const m = await ch.get(q);
    showMsg("get", m);
    msgs.push(m);
  }
  ch.nack(msgs[1], true, true); // m1, m2 back
  ch.reject(msgs[2], false); // m3 dropped
  ch.ack(msgs[3]);
  const ready = await until(async () => ((await ch.checkQueue(q)).messageCount === 2 ? 2 : 0), 3000);
  say("ready after nack allUpTo requeue, reject, ack:", ready);
  for (let i = 0; i < 3; i++) showMsg("get", await ch.get(q));
  ch.nackAll(true);
  say("ready after nackAll:", await until(async () => ((await ch.checkQueue(q)).messageCount === 2 ? 2 : 0), 3000));
  for (let i = 0; i < 2; i++) showMsg("get", await ch.get(q));
  await ch.recover();
  say("ready after recover:", await until(async () => ((await ch.checkQueue(q)).messageCount === 2 ? 2 : 0), 3000));
  const a = await ch.get(q);
  showMsg("get", a);
  ch.ack(a);
  await expectClose("double ack", ch, async () => {
    ch.ack(a);
    return (await ch.checkQueue(q)).messageCount;
  });
  ch = await conn.createChannel();
  say("deleteQueue ->", await ch.deleteQueue(q));
  await ch.close();
}

async function sConsume(conn) {
  const ch = await conn.createConfirmChannel();
  const q = (await ch.assertQueue(P + "consume", { durable: false })).queue;
  for (let i = 1; i <= 5; i++) ch.sendToQueue(q, Buffer.from(`c${i}`));
  await ch.waitForConfirms();
  await ch.prefetch(2);
  const got = [];
  const held = [];
  const { consumerTag } = await ch.consume(q, (m) => {
    got.push(`${m.fields.deliveryTag}:${m.fields.redelivered}:${m.content}`);
    held.push(m);
  });
  say("consumerTag", consumerTag, "well formed", /^amq\.ctag-[A-Za-z0-9_-]{22}$/.test(consumerTag));
  await until(() => got.length >= 2);
  await sleep(300);
  say("prefetch 2: delivered", got);
  ch.nack(held[0], false, true); // c1 requeued: redelivered to this consumer
  ch.ack(held[1]);
  await until(() => got.length >= 4);
  await sleep(300);
  say("after nack requeue and ack: delivered", got);
  say("cancel ->", await ch.cancel(consumerTag));
  await ch.close(); // unacked ones go back
  const ch2 = await conn.createChannel();
  say("ready after close:", await until(async () => ((await ch2.checkQueue(q)).messageCount === 4 ? 4 : 0), 3000));
  const auto = [];
  const r = await ch2.consume(q, (m) => auto.push(`${m.fields.redelivered}:${m.content}`), { noAck: true, consumerTag: "mine" });
  say("named noAck consumer", r);
  await until(() => auto.length >= 4);
  say("noAck delivered", auto);
  await ch2.cancel("mine");
  // the broker cancels a consumer whose queue is deleted: amqplib calls back with null
  const dq = (await ch2.assertQueue(P + "doomed", { durable: false })).queue;
  const seen = [];
  await ch2.consume(dq, (m) => seen.push(m === null ? "null (cancelled by the broker)" : String(m.content)), { consumerTag: "watcher" });
  const other = await conn.createChannel();
  say("deleteQueue under a consumer ->", await other.deleteQueue(dq));
  await until(() => seen.length > 0);
  say("consumer callback got", seen);
  await other.close();
  await expectClose("consume from a missing queue", ch2, () => ch2.consume(P + "nope", () => {}));
  const ch3 = await conn.createChannel();
  await ch3.deleteQueue(q);
  await ch3.close();
}

async function sErrors(conn) {
  const ch = await conn.createChannel();
  await expectClose("publish to a missing exchange", ch, async () => {
    ch.publish(P + "missing", "k", Buffer.from("x"));
    await ch.assertQueue(P + "after", { durable: false });
  });
  let c2 = await conn.createChannel();
  const q = await c2.assertQueue("", { exclusive: true });
  const other = await amqp.connect(URL);
  const oc = await other.createChannel();
  oc.on("error", () => {});
  await expectClose("exclusive queue from another connection", oc, () => oc.checkQueue(q.queue));
  await other.close();
  await expectClose("ack of an unknown tag", c2, async () => {
    c2.ack({ fields: { deliveryTag: 42 } });
    await c2.checkQueue(q.queue);
  });
}

async function main() {
  let conn = null;
  const sections = [
    ["connection", sConnection],
    ["auth", sAuth],
    ["topology", sTopology],
    ["confirms", sConfirms],
    ["acks", sAcks],
    ["consume", sConsume],
    ["errors", sErrors],
  ];
  for (const [name, fn] of sections) {
    say("==", name);
    try {
      conn = await amqp.connect(URL);
      conn.on("error", (e) => say("connection error event", e.message));
      await fn(conn);
    } catch (e) {
      unexpected++;
      say("UNEXPECTED", e && e.stack ? e.stack.split("\n")[0] : e);
    }
    try {
      await conn.close();
    } catch (e) {
      // already closed by the broker
    }
  }
  say("== end");
  return unexpected ? 1 : 0;
}

const watchdog = setTimeout(() => {
  say("UNEXPECTED watchdog: still running after 60 s");
  process.exit(1);
}, 60000);
main().then((rc) => {
  clearTimeout(watchdog);
  process.exitCode = rc;
});
