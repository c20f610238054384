// The cross-node traffic of cluster.test.mjs through real nginx in front of the three nodes,
// with the deployment kit's config (tools/deploy/nginx-ringhub.conf): three ringhub nodes and
// a real Redis, one nginx as shipped (ip_hash) and one without ip_hash (round-robin).
//
// Through the ip_hash nginx, official clients negotiate over WebSockets and long polling, with
// JSON and MessagePack; every one of them lands on the same node (nginx hashes the first three
// octets of 127.0.0.1), which ringhub-ctl connections on each node's admin socket names. Direct
// clients on the two other nodes share a group with them: every message of every sender
// arrives once, in that sender's order; SendToUser and SendToConnection cross between an nginx
// client and a direct one; the backend API through nginx reaches a group and a connection on
// another node.
//
// Through the round-robin nginx, WebSocket clients with skipNegotiation (one request each, so
// no stickiness needed) spread over the nodes, which ringhub-ctl shows, and exchange group
// messages with the same exactness.
//
// "Nothing else arrived" is proved as in cluster.test.mjs: a sender's last message is a marker,
// and once a receiver has it, everything that sender sent before must be in its inbox.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { startRedis, startNodes, startNginx, ctlJson as ctl } from './cluster_helpers.mjs';
import { until } from './helpers.mjs';

const CTL = process.env.RINGHUB_CTL;
let redis;
let nodes;
let sticky; // the kit's nginx, with ip_hash
let roundRobin; // the same without ip_hash
const clients = [];

before(async () => {
  if (!CTL) throw new Error('set RINGHUB_CTL to the ringhub-ctl binary');
  redis = await startRedis();
  nodes = await startNodes(3, { redis, prefix: 'rhnginx' });
  await until(async () => (await ctl(nodes[0], 'nodes')).nodes.length === 3, 'three nodes', 15000);
  sticky = await startNginx(nodes);
  roundRobin = await startNginx(nodes, { ipHash: false });
  const upstreams = (conf) => fs.readFileSync(conf, 'utf8').match(/^\s*server 127\.0\.0\.1:\d+/gm).length;
  assert.match(fs.readFileSync(sticky.conf, 'utf8'), /^\s*ip_hash;/m);
  assert.doesNotMatch(fs.readFileSync(roundRobin.conf, 'utf8'), /^\s*ip_hash;/m);
  assert.equal(upstreams(sticky.conf), 3, 'the ip_hash nginx balances the three nodes');
  assert.equal(upstreams(roundRobin.conf), 3, 'so does the round-robin one');
});

after(async () => {
  await Promise.all(clients.map((c) => c.connection.stop().catch(() => {})));
  for (const proxy of [sticky, roundRobin]) if (proxy) await proxy.stop();
  const codes = nodes ? await nodes.stopAll() : [];
  if (redis) await redis.stop();
  assert.deepEqual(codes, [0, 0, 0], 'every node stops cleanly with nothing left allocated');
});



// The connections of @hub on each node, by ringhub-ctl: [[entry, ...] of node 1, of node 2, ...].
async function listed(hub) {
  return Promise.all(nodes.map(async (n) => {
    const r = await ctl(n, 'connections', '--hub', hub);
    assert.equal(r.truncated, false);
    return r.connections;
  }));
}

// The node whose admin socket lists connection @id of @hub; exactly one must.
async function nodeOf(hub, id) {
  const where = (await listed(hub)).flatMap((entries, i) => (entries.some((e) => e.id === id) ? [nodes[i]] : []));
  assert.equal(where.length, 1, `connection ${id} is listed by exactly one node (${where.map((n) => n.id)})`);
  return where[0];
}

const transportClass = {
  WebSockets: 'WebSocketTransport',
  LongPolling: 'LongPollingTransport',
};

// An official client; inbox holds [target, ...args] in arrival order. @via is a node (direct)
// or an nginx; @skipNegotiation connects with a WebSocket right away (no connection id).
async function connect(via, { hub = 'chat', user, protocol = 'json', transport = 'WebSockets', skipNegotiation = false } = {}) {
  const url = via.url(hub) + (user ? `?user=${encodeURIComponent(user)}` : '');
  const builder = new signalR.HubConnectionBuilder()
    .withUrl(url, { transport: signalR.HttpTransportType[transport], skipNegotiation })
    .configureLogging(signalR.LogLevel.Warning);
  if (protocol === 'messagepack') builder.withHubProtocol(new MessagePackHubProtocol());
  const connection = builder.build();
  const where = via === sticky ? 'ip_hash' : via === roundRobin ? 'round-robin' : `node ${via.id}`;
  const c = { connection, via, inbox: [], name: `${transport}/${protocol}@${where}#${clients.length}` };
  for (const target of ['msg', 'other']) {
    connection.on(target, (...args) => {
      c.inbox.push([target, ...args]);
    });
  }
  c.closed = null;
  connection.onclose((err) => (c.closed = err ?? 'closed'));
  await connection.start();
  assert.equal(connection.connection.transport.constructor.name, transportClass[transport], `${c.name}: its transport`);
  c.id = connection.connectionId;
  clients.push(c);
  return c;
}

const got = (c, target = 'msg') => c.inbox.filter(([t]) => t === target).map(([, ...args]) => args);

// Each sender's messages, in the order @c got them.
function bySender(c) {
  const out = {};
  for (const [sender, i] of got(c)) (out[sender] ??= []).push(i);
  return out;
}

// Every member joins @group, sends 0..@last to it (the members send at the same time, each in
// order), and then every member must have every sender's messages once each, in order.
async function exchange(members, group, last, outsiders = []) {
  for (const m of members) await m.connection.invoke('JoinGroup', group);
  await Promise.all(members.map(async (m, k) => {
    for (let i = 0; i <= last; i++) await m.connection.invoke('SendToGroup', group, 'msg', `s${k}`, i);
  }));
  const want = Object.fromEntries(members.map((_, k) => [`s${k}`, Array.from({ length: last + 1 }, (_, i) => i)]));
  for (const m of members) {
    await until(() => members.every((_, k) => (bySender(m)[`s${k}`] ?? []).at(-1) === last),
      `${m.name} to get every sender's last message`);
    assert.deepEqual(bySender(m), want, `${m.name}: every message once, in each sender's order`);
  }
  for (const o of outsiders) assert.deepEqual(got(o), [], `${o.name}, outside the group, gets nothing`);
  for (const m of [...members, ...outsiders]) assert.equal(m.closed, null, `${m.name} stayed connected`);
  for (const m of members) await m.connection.invoke('LeaveGroup', group);
}

async function post(base, path, body) {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text };
}

// Set by the first test: the node the ip_hash nginx sends 127.0.0.1 to, and the other two.
let home;
let others;

test('ip_hash nginx: negotiated WebSocket and long-polling clients share a group with clients on the other nodes', async () => {
  const viaNginx = [
    await connect(sticky, { transport: 'LongPolling' }),
    await connect(sticky, { transport: 'LongPolling', protocol: 'messagepack' }),
    await connect(sticky, { transport: 'WebSockets' }),
    await connect(sticky, { transport: 'WebSockets', protocol: 'messagepack' }),
  ];
  const outsider = await connect(sticky, { transport: 'LongPolling' });
  // All on one node, which each node's admin socket confirms (and the others do not list).
  home = await nodeOf('chat', viaNginx[0].id);
  for (const c of [...viaNginx.slice(1), outsider]) {
    assert.equal((await nodeOf('chat', c.id)).id, home.id, `${c.name}: ip_hash keeps 127.0.0.1 on node ${home.id}`);
  }
  others = nodes.filter((n) => n !== home);
  const direct = [
    await connect(others[0]),
    await connect(others[0], { transport: 'LongPolling', protocol: 'messagepack' }),
    await connect(others[1], { protocol: 'messagepack' }),
    await connect(others[1], { transport: 'LongPolling' }),
  ];
  for (const c of direct) assert.equal((await nodeOf('chat', c.id)).id, c.via.id, `${c.name} is on its node`);
  // Every negotiated request of the nginx clients went to one node: they still work, both ways.
  for (const c of viaNginx) assert.equal(await c.connection.invoke('Echo', c.name), c.name);
  await exchange([...viaNginx, ...direct], 'room', 25, [outsider]);
});

test('ip_hash nginx: SendToUser and SendToConnection between an nginx client and clients on other nodes', async () => {
  const ann = await connect(sticky, { hub: 'users', user: 'ann', transport: 'LongPolling' });
  const amy = await connect(sticky, { hub: 'users', user: 'amy', protocol: 'messagepack' });
  const bob = await connect(others[0], { hub: 'users', user: 'bob', protocol: 'messagepack' });
  const cid = await connect(others[1], { hub: 'users', user: 'cid', transport: 'LongPolling' });
  for (const c of [ann, amy]) assert.equal((await nodeOf('users', c.id)).id, home.id);

  // From nginx clients to the other nodes, and back.
  await ann.connection.invoke('SendToUser', 'bob', 'msg', 'ann to bob', 1);
  await amy.connection.invoke('SendToConnection', cid.id, 'msg', 'amy to cid', 2);
  await bob.connection.invoke('SendToConnection', ann.id, 'msg', 'bob to ann', 3);
  await cid.connection.invoke('SendToUser', 'amy', 'msg', 'cid to amy', 4);
  await bob.connection.invoke('SendToUser', 'ann', 'msg', 'bob to ann', 5);
  await cid.connection.invoke('SendToConnection', amy.id, 'msg', 'cid to amy', 6);
  await ann.connection.invoke('SendToConnection', bob.id, 'msg', 'ann to bob', 7);
  await amy.connection.invoke('SendToUser', 'cid', 'msg', 'amy to cid', 8);
  // Each receiver gets two from one sender, one by user and one by connection: two routes,
  // whose order among each other is not promised, so each inbox is compared as a set.
  const set = (c) => got(c).map((m) => JSON.stringify(m)).sort();
  await until(() => [ann, amy, bob, cid].every((c) => got(c).length >= 2), 'every direct message');
  assert.deepEqual(set(ann), [['bob to ann', 3], ['bob to ann', 5]].map((m) => JSON.stringify(m)));
  assert.deepEqual(set(amy), [['cid to amy', 4], ['cid to amy', 6]].map((m) => JSON.stringify(m)));
  assert.deepEqual(set(bob), [['ann to bob', 1], ['ann to bob', 7]].map((m) => JSON.stringify(m)));
  assert.deepEqual(set(cid), [['amy to cid', 2], ['amy to cid', 8]].map((m) => JSON.stringify(m)));
  // Nothing more comes: a last message from each sender to each receiver, after the others.
  await bob.connection.invoke('SendToConnection', ann.id, 'other', 'end');
  await cid.connection.invoke('SendToConnection', amy.id, 'other', 'end');
  await ann.connection.invoke('SendToConnection', bob.id, 'other', 'end');
  await amy.connection.invoke('SendToConnection', cid.id, 'other', 'end');
  await until(() => [ann, amy, bob, cid].every((c) => got(c, 'other').length === 1), 'the end markers');
  for (const c of [ann, amy, bob, cid]) assert.equal(got(c).length, 2, `${c.name}: no message twice`);
});

test('the backend API through nginx reaches a group and a connection on another node', async () => {
  const base = '/api/v1/hubs/api';
  const local = await connect(sticky, { hub: 'api' });
  const far = await connect(others[0], { hub: 'api', protocol: 'messagepack' });
  const far2 = await connect(others[1], { hub: 'api', transport: 'LongPolling' });
  assert.equal((await nodeOf('api', local.id)).id, home.id);
  for (const c of [local, far, far2]) await c.connection.invoke('JoinGroup', 'team');
  const want = new Map([local, far, far2].map((c) => [c, []]));

  // Through the ip_hash nginx: every call lands on the home node; two members are elsewhere.
  for (let i = 0; i < 4; i++) {
    const r = await post(sticky.base, `${base}/groups/team`, { target: 'msg', arguments: ['group', i] });
    assert.equal(r.status, 202, r.text);
    for (const c of [local, far, far2]) want.get(c).push(['msg', 'group', i]);
  }
  for (const c of [far, far2]) {
    const r = await post(sticky.base, `${base}/connections/${encodeURIComponent(c.id)}`, { target: 'msg', arguments: ['just you', c.name] });
    assert.equal(r.status, 202, r.text);
    want.get(c).push(['msg', 'just you', c.name]);
  }
  await until(() => [local, far, far2].every((c) => c.inbox.length >= want.get(c).length), 'the API messages through the ip_hash nginx');

  // Through the round-robin nginx each call reaches the next node, the home node or not.
  for (let i = 0; i < 6; i++) {
    const to = i % 2 ? `connections/${encodeURIComponent(far.id)}` : 'groups/team';
    const r = await post(roundRobin.base, `${base}/${to}`, { target: 'other', arguments: [to, i] });
    assert.equal(r.status, 202, r.text);
    for (const c of i % 2 ? [far] : [local, far, far2]) want.get(c).push(['other', to, i]);
  }
  await until(() => [local, far, far2].every((c) => c.inbox.length >= want.get(c).length), 'the API messages through the round-robin nginx');
  // The calls were answered by different nodes and shards, whose order among each other is not
  // promised: compare each inbox as a multiset (one of each, nothing else).
  const sorted = (list) => list.map((m) => JSON.stringify(m)).sort();
  for (const c of [local, far, far2]) {
    assert.deepEqual(sorted(c.inbox), sorted(want.get(c)), `${c.name}: every API message once`);
    assert.equal(c.closed, null, `${c.name} stayed connected`);
  }
});

test('round-robin nginx: skipNegotiation WebSocket clients spread over the nodes and exchange group messages', async () => {
  const hub = 'rr';
  const members = [];
  for (let i = 0; i < 6; i++) {
    members.push(await connect(roundRobin, { hub, skipNegotiation: true, protocol: i % 2 ? 'messagepack' : 'json' }));
  }
  for (const m of members) assert.equal(m.id, null, 'skipNegotiation: no connection id on the client side');
  const perNode = (await listed(hub)).map((entries) => entries.length);
  assert.equal(perNode.reduce((a, b) => a + b, 0), 6, `six connections in all (${perNode})`);
  assert.ok(perNode.filter((n) => n > 0).length >= 2, `at least two nodes have some (${perNode})`);
  for (const entries of await listed(hub)) {
    for (const e of entries) assert.equal(e.transport, 'WebSockets');
  }
  const outsider = await connect(roundRobin, { hub, skipNegotiation: true });
  await exchange(members, 'rr-room', 25, [outsider]);
});
