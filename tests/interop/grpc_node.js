// npm @grpc/grpc-js (with @grpc/proto-loader reading services/proto/*.proto) against our
// greeter: statuses and messages, metadata and trailers, deadlines, unknown methods, large
// messages and the 4 MiB limits, health, and 200 calls in flight on one channel. One
// "ok: "/"FAIL: " line per check; "all node checks passed" and exit 0 when all pass.
//
// With "shop", against our users (instance "users-node"), a users with USERS_DELAY_MS=1000
// (instance "users-slow") and an orders without AMQP_URL: CreateUser/GetUser,
// INVALID_ARGUMENT and NOT_FOUND, deadlines, CreateOrder/GetOrder (int64 amounts), health.
//
//   node grpc_node.js PROTO_DIR ADDR
//   node grpc_node.js PROTO_DIR shop USERS SLOW_USERS ORDERS
'use strict';
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const [protoDir, addr, ...shopAddrs] = process.argv.slice(2);
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
const shop = grpc.loadPackageDefinition(protoLoader.loadSync('shop.proto', opts)).shop;

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

// unary(client, 'Method', req, timeoutMs): { err, reply, took } (took in ms)
function unary(client, method, req, timeoutMs = 5000) {
  const t0 = Date.now();
  return new Promise((resolve) => {
    client[method](req, new grpc.Metadata(), { deadline: new Date(Date.now() + timeoutMs) },
      (err, reply) => resolve({ err, reply, took: Date.now() - t0 }));
  });
}

function expectError(what, r, code, details) {
  check(what + ': ' + code, r.err && r.err.code === grpc.status[code], r.err ? r.err.code : r.reply);
  if (details !== undefined)
    check(what + ': details ' + JSON.stringify(details), r.err && r.err.details === details, r.err && r.err.details);
}

async function healthOf(a, svc) {
  const hc = new health.Health(a, grpc.credentials.createInsecure());
  const res = await new Promise((resolve) => hc.Check({ service: svc }, (err, reply) => resolve({ err, reply })));
  check('health "' + svc + '" SERVING', !res.err && res.reply.status === 'SERVING', res.err || res.reply);
  hc.close();
}

async function shopUsers(usersAddr, slowAddr) {
  const users = new shop.Users(usersAddr, grpc.credentials.createInsecure());
  let r = await unary(users, 'CreateUser', { name: 'Ada', email: 'ada@example.com' });
  check('CreateUser Ada: users-node.1', !r.err && r.reply.id === 'users-node.1' && r.reply.name === 'Ada' &&
    r.reply.email === 'ada@example.com', r.err || r.reply);
  const ada = r.reply;
  r = await unary(users, 'GetUser', { id: 'users-node.1' });
  check('GetUser users-node.1 is Ada', !r.err && JSON.stringify(r.reply) === JSON.stringify(ada), r.err || r.reply);
  r = await unary(users, 'CreateUser', { name: 'Ünïcode ☃', email: 'u@x' });
  check('CreateUser with a Unicode name', !r.err && r.reply.id === 'users-node.2' && r.reply.name === 'Ünïcode ☃', r.err || r.reply);

  expectError('CreateUser with an empty name', await unary(users, 'CreateUser', { name: '', email: 'a@b' }),
    'INVALID_ARGUMENT', 'name must be 1 to 100 characters');
  expectError('CreateUser with an email without @', await unary(users, 'CreateUser', { name: 'Bob', email: 'bob' }),
    'INVALID_ARGUMENT', 'email must contain @');
  expectError('GetUser of an unknown id', await unary(users, 'GetUser', { id: 'nope' }), 'NOT_FOUND', 'no user nope');

  const many = await Promise.all([...Array(100).keys()].map((i) =>
    unary(users, 'CreateUser', { name: 'n' + i, email: 'n' + i + '@x' }, 10000)));
  check('100 concurrent CreateUser: 100 different ids',
    many.every((x) => !x.err) && new Set(many.map((x) => x.reply.id)).size === 100);
  check('... each with its own name', many.every((x, i) => !x.err && x.reply.name === 'n' + i));
  await healthOf(usersAddr, 'shop.Users');
  users.close();

  // the users that answers 1 s late: a 200 ms deadline ends the call, and the user it asked
  // for is never made (the next one made is users-slow.1)
  const slow = new shop.Users(slowAddr, grpc.credentials.createInsecure());
  r = await unary(slow, 'CreateUser', { name: 'Late', email: 'l@x' }, 200);
  expectError('CreateUser, deadline 200 ms, answer after 1 s', r, 'DEADLINE_EXCEEDED');
  check('... in 0.2..0.9 s (' + r.took + ' ms)', r.took >= 195 && r.took < 900);
  r = await unary(slow, 'CreateUser', { name: 'Patient', email: 'p@x' }, 5000);
  check('CreateUser within a 5 s deadline, answered after ' + r.took + ' ms', !r.err && r.took >= 990, r.err);
  check('the late user was not made: the next is users-slow.1', !r.err && r.reply.id === 'users-slow.1', r.err || r.reply);
  slow.close();
}

async function shopOrders(ordersAddr) {
  const orders = new shop.Orders(ordersAddr, grpc.credentials.createInsecure());
  let r = await unary(orders, 'CreateOrder', { user_id: 'users-node.1', item: 'book', amount: 1250 });
  check('CreateOrder: an id o-<16 hex>', !r.err && /^o-[0-9a-f]{16}$/.test(r.reply.id), r.err || r.reply);
  check('CreateOrder: the order, status created', !r.err && r.reply.user_id === 'users-node.1' &&
    r.reply.item === 'book' && r.reply.amount === '1250' && r.reply.status === 'created', r.err || r.reply);
  const o = r.reply;
  r = await unary(orders, 'GetOrder', { id: o && o.id });
  check('GetOrder: the same order, still created', !r.err && JSON.stringify(r.reply) === JSON.stringify(o), r.err || r.reply);
  r = await unary(orders, 'CreateOrder', { user_id: 'u', item: 'x', amount: '9007199254740993' });
  const big = r.reply;
  r = await unary(orders, 'GetOrder', { id: big && big.id });
  check('an amount over 2^53 round-trips', !r.err && r.reply.amount === '9007199254740993', r.err || r.reply);

  const msg = 'user_id and item must be set and amount positive';
  expectError('CreateOrder with amount 0', await unary(orders, 'CreateOrder', { user_id: 'u', item: 'i', amount: 0 }),
    'INVALID_ARGUMENT', msg);
  expectError('CreateOrder with amount -5', await unary(orders, 'CreateOrder', { user_id: 'u', item: 'i', amount: -5 }),
    'INVALID_ARGUMENT', msg);
  expectError('CreateOrder with no item', await unary(orders, 'CreateOrder', { user_id: 'u', amount: 1 }),
    'INVALID_ARGUMENT', msg);
  expectError('GetOrder of an unknown id', await unary(orders, 'GetOrder', { id: 'o-nope' }), 'NOT_FOUND', 'no order o-nope');
  r = await unary(orders, 'CreateOrder', { user_id: 'u', item: 'pen', amount: 1 }, 500);
  check('CreateOrder within a 500 ms deadline (' + r.took + ' ms)', !r.err && r.reply.status === 'created', r.err);

  const many = await Promise.all([...Array(100).keys()].map((i) =>
    unary(orders, 'CreateOrder', { user_id: 'u', item: 'i' + i, amount: i + 1 }, 10000)));
  check('100 concurrent CreateOrder: 100 different ids',
    many.every((x) => !x.err) && new Set(many.map((x) => x.reply.id)).size === 100);
  const back = await Promise.all(many.map((x) => unary(orders, 'GetOrder', { id: x.reply ? x.reply.id : '' })));
  check('... each found by GetOrder', back.every((x, i) => !x.err && x.reply.item === 'i' + i && x.reply.amount === String(i + 1)));
  await healthOf(ordersAddr, 'shop.Orders');
  orders.close();
}

async function shopMain() {
  await shopUsers(shopAddrs[0], shopAddrs[1]);
  await shopOrders(shopAddrs[2]);
  if (fails) process.exit(1);
  console.log('all node checks passed');
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

(addr === 'shop' ? shopMain() : main()).catch((e) => { console.log('FAIL: ' + e.stack); process.exit(1); });
