// npm @grpc/grpc-js (with @grpc/proto-loader reading services/proto/*.proto) against our
// greeter: statuses and messages, metadata and trailers, deadlines, unknown methods, large
// messages and the 4 MiB limits, health, and 200 calls in flight on one channel. One
// "ok: "/"FAIL: " line per check; "all node checks passed" and exit 0 when all pass.
//
//   node grpc_node.js PROTO_DIR ADDR
'use strict';
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const [protoDir, addr] = process.argv.slice(2);
let fails = 0;
function check(what, cond, detail) {
  if (cond) {
    console.log('ok: ' + what);
  } else {
    fails++;
    console.log('FAIL: ' + what + (detail === undefined ? '' : ' ' + JSON.stringify(detail)));
  }
}

const opts = { keepCase: true, longs: String, enums: String, defaults: true, includeDirs: [protoDir] };
const hello = grpc.loadPackageDefinition(protoLoader.loadSync('hello.proto', opts)).hello;
const health = grpc.loadPackageDefinition(protoLoader.loadSync('health.proto', opts)).grpc.health.v1;

function sayHello(client, req, options = {}) {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(options.meta || {})) md.add(k, v);
  return new Promise((resolve) => {
    let header = null, trailer = null;
    const deadline = new Date(Date.now() + (options.timeoutMs || 5000));
    const call = client.SayHello(req, md, { deadline }, (err, reply) => {
      // the status event (with trailers) comes after the callback
      setImmediate(() => resolve({ err, reply, header, trailer }));
    });
    call.on('metadata', (m) => { header = m; });
    call.on('status', (s) => { trailer = s.metadata; });
  });
}

async function main() {
  const client = new hello.Greeter(addr, grpc.credentials.createInsecure());
  let r = await sayHello(client, { name: 'World' });
  check('SayHello World', !r.err && r.reply.message === 'Hello World', r.err || r.reply);
  r = await sayHello(client, { name: 'Ünïcode ☃' });
  check('SayHello with a Unicode name', !r.err && r.reply.message === 'Hello Ünïcode ☃', r.err || r.reply);

  r = await sayHello(client, { name: 'md' }, { meta: { 'x-echo': 'v3' } });
  check('initial metadata', r.header && r.header.get('x-echo')[0] === 'v3', r.header && r.header.getMap());
  check('trailing metadata', r.trailer && r.trailer.get('x-echo-trailer')[0] === 'v3', r.trailer && r.trailer.getMap());

  for (const code of ['NOT_FOUND', 'PERMISSION_DENIED', 'UNAVAILABLE', 'INTERNAL', 'UNAUTHENTICATED']) {
    r = await sayHello(client, { name: 'x' }, { meta: { 'x-fail-code': code, 'x-fail-message': 'nope: 100%25 %F0%9F%98%80' } });
    check('x-fail-code=' + code, r.err && r.err.code === grpc.status[code], r.err && r.err.code);
    check('x-fail-code=' + code + ': details', r.err && r.err.details === 'nope: 100% 😀', r.err && r.err.details);
  }

  let t0 = Date.now();
  r = await sayHello(client, { name: 'slow' }, { timeoutMs: 200, meta: { 'x-delay-ms': '2000' } });
  let took = Date.now() - t0;
  check('deadline 200 ms, answer after 2 s: DEADLINE_EXCEEDED', r.err && r.err.code === grpc.status.DEADLINE_EXCEEDED, r.err && r.err.code);
  check('... in 0.2..1.5 s (' + took + ' ms)', took >= 195 && took < 1500);
  r = await sayHello(client, { name: 'in time' }, { timeoutMs: 2000, meta: { 'x-delay-ms': '100' } });
  check('a delayed answer within its deadline', !r.err && r.reply.message === 'Hello in time', r.err);

  const raw = await new Promise((resolve) => {
    client.makeUnaryRequest('/hello.Greeter/Nope', (x) => x, (x) => x, Buffer.alloc(0),
      new grpc.Metadata(), { deadline: new Date(Date.now() + 5000) }, (err) => resolve(err));
  });
  check('unknown method: UNIMPLEMENTED', raw && raw.code === grpc.status.UNIMPLEMENTED, raw && raw.code);

  r = await sayHello(client, { name: 'x'.repeat(3000000) }, { timeoutMs: 10000 });
  check('3 MB request and answer', !r.err && r.reply.message.length === 3000006, r.err);
  r = await sayHello(client, { name: 'x'.repeat(4194305) }, { timeoutMs: 10000 });
  check('a 4 MiB + 1 request: RESOURCE_EXHAUSTED', r.err && r.err.code === grpc.status.RESOURCE_EXHAUSTED, r.err && r.err.code);
  const small = new hello.Greeter(addr, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': 1000000 });
  r = await sayHello(small, { name: 'x'.repeat(2000000) }, { timeoutMs: 10000 });
  check('a 2 MB answer to a client that takes 1 MB: RESOURCE_EXHAUSTED', r.err && r.err.code === grpc.status.RESOURCE_EXHAUSTED, r.err && r.err.code);
  small.close();

  const hc = new health.Health(addr, grpc.credentials.createInsecure());
  for (const svc of ['', 'hello.Greeter']) {
    const res = await new Promise((resolve) => hc.Check({ service: svc }, (err, reply) => resolve({ err, reply })));
    check('health "' + svc + '" SERVING', !res.err && res.reply.status === 'SERVING', res.err || res.reply);
  }
  const unk = await new Promise((resolve) => hc.Check({ service: 'nope' }, (err) => resolve(err)));
  check('health of an unknown service: NOT_FOUND', unk && unk.code === grpc.status.NOT_FOUND, unk && unk.code);
  hc.close();

  t0 = Date.now();
  const many = await Promise.all([...Array(200).keys()].map((i) =>
    sayHello(client, { name: 'n' + i }, { timeoutMs: 10000, meta: { 'x-delay-ms': '200' } })));
  took = Date.now() - t0;
  check('200 concurrent calls answered', many.every((x, i) => !x.err && x.reply.message === 'Hello n' + i));
  check('... concurrently (' + took + ' ms)', took < 3000);
  client.close();

  if (fails) process.exit(1);
  console.log('all node checks passed');
}

main().catch((e) => { console.log('FAIL: ' + e.stack); process.exit(1); });
