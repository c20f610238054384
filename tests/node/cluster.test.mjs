// Three ringhub nodes and a real Redis on loopback, as one cluster: official SignalR clients on
// different nodes exchange group messages both ways (no loss, no duplicates, each publisher's
// order kept), SendToUser/SendToConnection/SendToAll and the backend API reach connections on
// any node, the API changes the groups of a connection on another node and asks the cluster
// whether groups, users and connections exist; a group with members on one node only keeps its
// messages off Redis; Redis killed and restarted during traffic: local delivery never stops,
// the nodes reconnect and resubscribe, and what was sent across meanwhile arrives (within
// --redis-buffer). ringhub-ctl nodes and redis show the cluster and the outage.
//
// "Nothing else arrived" is proved the way hub_groups.test.mjs does, with per-publisher order:
// a publisher's last message is a marker, and once a receiver has it, everything that
// publisher sent before is in its inbox (one Redis connection carries a shard's publications
// in order, and one subscription delivers them in order).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { startRedis, startNodes, ctlJson as ctl } from './cluster_helpers.mjs';
import { until } from './helpers.mjs';

let redis;
let nodes;
const clients = [];

before(async () => {
  redis = await startRedis();
  // Node 3 keeps nothing during an outage (--redis-buffer 0): what it sends across is dropped.
  nodes = await startNodes(3, { redis, prefix: 'rhtest', args: (i) => (i === 2 ? ['--redis-buffer', '0'] : []) });
  // Every node is in the directory once shard 0's first heartbeat is through.
  await until(async () => (await ctl(nodes[0], 'nodes')).nodes.length === 3, 'three nodes', 15000);
});

after(async () => {
  await Promise.all(clients.map((c) => c.connection.stop().catch(() => {})));
  const codes = nodes ? await nodes.stopAll() : [];
  if (redis) await redis.stop();
  assert.deepEqual(codes, [0, 0, 0], 'every node stops cleanly with nothing left allocated');
});



// An official client on @node; inbox holds [target, ...args] in arrival order.
async function connect(node, { hub = 'chat', user, protocol = 'json', transport } = {}) {
  const url = node.url(hub) + (user ? `?user=${encodeURIComponent(user)}` : '');
  const builder = new signalR.HubConnectionBuilder()
    .withUrl(url, transport ? { transport } : {})
    .configureLogging(signalR.LogLevel.Warning);
  if (protocol === 'messagepack') builder.withHubProtocol(new MessagePackHubProtocol());
  const connection = builder.build();
  const c = { connection, node, inbox: [], name: `${protocol}@${node.id}` };
  for (const target of ['msg', 'marker', 'other']) connection.on(target, (...args) => {
      c.inbox.push([target, ...args]);
    });
  await connection.start();
  c.id = connection.connectionId;
  clients.push(c);
  return c;
}

const got = (c, target = 'msg') => c.inbox.filter(([t]) => t === target).map(([, ...args]) => args);

async function api(node, method, path, body) {
  const res = await fetch(`http://127.0.0.1:${node.port}${path}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  return res.status;
}

// Each publisher's messages, in the order a receiver got them.
function bySender(c) {
  const out = {};
  for (const [sender, i] of got(c)) (out[sender] ??= []).push(i);
  return out;
}

test('group: clients on three nodes exchange messages both ways, none lost, none twice, in order', async () => {
  const members = [
    await connect(nodes[0]),
    await connect(nodes[1], { protocol: 'messagepack' }),
    await connect(nodes[2], { transport: signalR.HttpTransportType.LongPolling }),
    await connect(nodes[2], { protocol: 'messagepack' }),
  ];
  const outsider = await connect(nodes[1]);
  for (const m of members) await m.connection.invoke('JoinGroup', 'room');
  const N = 30;
  await Promise.all(
    members.map(async (m, k) => {
      for (let i = 0; i <= N; i++) await m.connection.invoke('SendToGroup', 'room', 'msg', `s${k}`, i);
    }),
  );
  const want = Object.fromEntries(members.map((m, k) => [`s${k}`, Array.from({ length: N + 1 }, (_, i) => i)]));
  for (const m of members) {
    await until(() => members.every((_, k) => (bySender(m)[`s${k}`] ?? []).at(-1) === N), `${m.name} to get every last message`);
    assert.deepEqual(bySender(m), want, `${m.name}: every message once, in each sender's order`);
  }
  assert.deepEqual(got(outsider), [], 'a client outside the group gets nothing');
  for (const m of members) await m.connection.invoke('LeaveGroup', 'room');
});

test('SendToAll, SendToUser and SendToConnection from clients reach every node', async () => {
  const a = await connect(nodes[0], { user: 'ann' });
  const b = await connect(nodes[1], { user: 'bob', protocol: 'messagepack' });
  const b2 = await connect(nodes[2], { user: 'bob' });
  const other = await connect(nodes[2], { hub: 'other' });
  await a.connection.invoke('SendToUser', 'bob', 'msg', 'to bob', 1);
  await b2.connection.invoke('SendToConnection', a.id, 'msg', 'to ann', 2);
  await b.connection.invoke('SendToAll', 'msg', 'to all', 3);
  for (const c of [b, b2]) await until(() => got(c).some(([t]) => t === 'to all'), `${c.name} to get SendToAll`);
  await until(() => got(a).length === 2, 'ann to get hers');
  assert.deepEqual(got(a), [['to ann', 2], ['to all', 3]]);
  assert.deepEqual(got(b), [['to bob', 1], ['to all', 3]]);
  assert.deepEqual(got(b2), [['to bob', 1], ['to all', 3]]);
  assert.deepEqual(got(other), [], 'another hub hears nothing');
});

test('backend API on one node reaches connections on the others; groups of a remote connection', async () => {
  const a = await connect(nodes[0], { user: 'cat' });
  const b = await connect(nodes[1], { user: 'dan' });
  const c = await connect(nodes[2], { user: 'dan', protocol: 'messagepack' });
  const base = '/api/v1/hubs/chat';
  // Existence, asked of node 1 about connections on 2 and 3; a made-up id of node 2 is unknown.
  assert.equal(await api(nodes[0], 'GET', `${base}/connections/${b.id}`), 200);
  assert.equal(await api(nodes[0], 'GET', `${base}/connections/${c.id}`), 200);
  // Node 2 adds node 3's connection to a group; node 1 sends to the group.
  assert.equal(await api(nodes[1], 'PUT', `${base}/groups/team/connections/${c.id}`), 200);
  await until(async () => (await api(nodes[0], 'GET', `${base}/groups/team`)) === 200, 'the group to exist for node 1');
  assert.equal(await api(nodes[0], 'POST', `${base}/groups/team`, { target: 'msg', arguments: ['team', 1] }), 202);
  await until(() => got(c).length === 1, 'the remote member to get the group message');
  // Users: node 3 sends to dan (on nodes 2 and 3), node 1 to one connection on node 2.
  assert.equal(await api(nodes[2], 'POST', `${base}/users/dan`, { target: 'msg', arguments: ['dan', 2] }), 202);
  assert.equal(await api(nodes[0], 'POST', `${base}/connections/${b.id}`, { target: 'msg', arguments: ['b only', 3] }), 202);
  assert.equal(await api(nodes[1], 'POST', base, { target: 'msg', arguments: ['all', 4] }), 202);
  await until(() => got(b).length === 3 && got(c).length === 3 && got(a).length === 1, 'every send to arrive');
  assert.deepEqual(got(a), [['all', 4]]);
  assert.deepEqual(new Set(got(b).map(JSON.stringify)), new Set([['dan', 2], ['b only', 3], ['all', 4]].map(JSON.stringify)));
  assert.deepEqual(new Set(got(c).map(JSON.stringify)), new Set([['team', 1], ['dan', 2], ['all', 4]].map(JSON.stringify)));
  assert.equal(await api(nodes[0], 'GET', `${base}/users/dan`), 200, 'a user on other nodes exists');
  assert.equal(await api(nodes[0], 'GET', `${base}/users/nobody`), 404);
  // Node 1 removes node 3's connection from the group: the group is gone everywhere.
  assert.equal(await api(nodes[0], 'DELETE', `${base}/groups/team/connections/${c.id}`), 200);
  await until(async () => (await api(nodes[1], 'GET', `${base}/groups/team`)) === 404, 'the group to be empty');
  // Node 2 closes node 1's connection.
  const closed = new Promise((resolve) => a.connection.onclose(resolve));
  assert.equal(await api(nodes[1], 'DELETE', `${base}/connections/${a.id}?reason=bye`), 202);
  await closed;
  await until(async () => (await api(nodes[2], 'GET', `${base}/connections/${a.id}`)) === 404, 'the closed connection to be gone');
});

test('interest: a group with members on one node only sends nothing to Redis', async () => {
  const a = await connect(nodes[0]);
  const a2 = await connect(nodes[0], { protocol: 'messagepack' });
  for (const c of [a, a2]) await c.connection.invoke('JoinGroup', 'local-only');
  const publishes = async () => Number((await redis.info('commandstats')).cmdstat_publish?.match(/calls=(\d+)/)?.[1] ?? 0);
  const subscribers = async () => Number((await redis.cli('PUBSUB', 'NUMSUB', 'rhtest:group:chat:local-only')).split('\n')[1]);
  assert.equal(await subscribers(), 1, 'one node hears the group');
  const before = await publishes();
  for (let i = 0; i < 20; i++) await a.connection.invoke('SendToGroup', 'local-only', 'msg', 'here', i);
  assert.equal(await api(nodes[0], 'POST', '/api/v1/hubs/chat/groups/local-only', { target: 'msg', arguments: ['api', 20] }), 202);
  await until(() => got(a2).length === 21 && got(a).length === 21, 'local members to get all 21');
  assert.equal(await publishes(), before, 'not one PUBLISH while no other node has members');
  // A member on another node: from now on the messages cross.
  const b = await connect(nodes[1]);
  await b.connection.invoke('JoinGroup', 'local-only');
  assert.equal(await subscribers(), 2);
  await a.connection.invoke('SendToGroup', 'local-only', 'msg', 'across', 21);
  await until(() => got(b).length === 1, 'the new remote member to get it');
  assert.ok((await publishes()) > before, 'published once another node has members');
});

test('Redis killed and restarted during traffic: local delivery goes on, nodes resubscribe, buffered messages arrive', async () => {
  const a = await connect(nodes[0]);
  const a2 = await connect(nodes[0]);
  const b = await connect(nodes[1]);
  const c3 = await connect(nodes[2]);
  for (const c of [a, a2, b, c3]) await c.connection.invoke('JoinGroup', 'outage');
  await redis.kill();
  await until(async () => (await ctl(nodes[0], 'redis')).shards.some((s) => !s.command_up), 'node 1 to see Redis down');
  // Local delivery during the outage, and messages for node 2 kept.
  for (let i = 0; i < 10; i++) await a.connection.invoke('SendToGroup', 'outage', 'msg', 'during', i);
  await until(() => got(a2).length === 10, 'local members to get all 10 while Redis is down');
  const down = await ctl(nodes[0], 'redis');
  assert.ok(down.shards.some((s) => s.buffered_bytes > 0), 'what goes across is kept');
  // Past --redis-buffer (0 on node 3) it is dropped and counted; local delivery is untouched.
  await until(async () => (await ctl(nodes[2], 'redis')).shards.some((s) => !s.command_up), 'node 3 to see Redis down');
  const droppedBefore = (await ctl(nodes[2], 'redis')).shards.reduce((n, s) => n + s.dropped, 0);
  for (let i = 0; i < 5; i++) await c3.connection.invoke('SendToGroup', 'outage', 'msg', 'dropped', i);
  await until(() => got(c3).filter(([t]) => t === 'dropped').length === 5, 'node 3 to deliver its own 5 locally');
  const down3 = await ctl(nodes[2], 'redis');
  assert.equal(down3.shards.reduce((n, s) => n + s.dropped, 0) - droppedBefore, 5, 'the 5 are dropped and counted');
  assert.ok(down3.shards.every((s) => s.buffered_bytes === 0), 'nothing kept past the bound');
  await redis.restart();
  await until(async () => (await ctl(nodes[0], 'redis')).shards.every((s) => s.command_up && s.subscriber_up), 'node 1 to reconnect', 20000);
  await until(async () => (await ctl(nodes[1], 'redis')).shards.every((s) => s.command_up && s.subscriber_up), 'node 2 to reconnect', 20000);
  // The kept messages reach node 2 once its subscription is back: sent in order, once.
  // (They may arrive before node 2 has resubscribed; what the promise covers is that node 1
  // sends them, and everything sent after both are back arrives.)
  await until(async () => Number((await redis.cli('PUBSUB', 'NUMSUB', 'rhtest:group:chat:outage')).split('\n')[1]) === 3, 'the three nodes to resubscribe');
  const up = await ctl(nodes[0], 'redis');
  assert.ok(up.shards.every((s) => s.buffered_bytes === 0), 'the buffer was sent');
  assert.ok(up.shards.some((s) => s.reconnects > 0), 'reconnects are counted');
  await b.connection.invoke('SendToGroup', 'outage', 'msg', 'after', 0);
  await a.connection.invoke('SendToGroup', 'outage', 'msg', 'after', 1);
  await until(() => got(b).some(([t, i]) => t === 'after' && i === 1) && got(a).some(([t]) => t === 'after'), 'cross-node traffic after the restart');
  assert.deepEqual(got(a).filter(([t]) => t === 'dropped'), [], 'what node 3 dropped never arrives');
  const during = got(b).filter(([t]) => t === 'during').map(([, i]) => i);
  assert.deepEqual(during, [...new Set(during)].sort((x, y) => x - y), 'kept messages arrive at most once, in order');
});

test('ringhub-ctl nodes lists the three nodes with their addresses', async () => {
  // The directory is rewritten by every node's heartbeat (the restarted Redis began empty).
  let listed;
  await until(async () => (listed = await ctl(nodes[2], 'nodes')).nodes.length === 3, 'three nodes listed', 15000);
  assert.equal(listed.node, 3);
  assert.deepEqual(listed.nodes.map((n) => n.id).sort(), [1, 2, 3]);
  for (const n of nodes) assert.ok(listed.nodes.some((x) => x.address === `127.0.0.1:${n.port}`), `node ${n.id}'s address`);
});
