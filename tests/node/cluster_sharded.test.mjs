// Three ringhub nodes on a three-master Redis Cluster the test creates (redis-server
// cluster-enabled, redis-cli --cluster create): the nodes find the cluster from their seeds and
// use sharded pub/sub routed by hash slot (SPUBLISH/SSUBSCRIBE; never a classic PUBLISH, which
// a cluster sends to every node). Official clients on different nodes exchange group, user,
// connection and all messages; a group's slot is migrated to another master during traffic and
// a master is restarted: the nodes follow the slot, subscribe again, and traffic goes on.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { startRedisCluster, startNodes, ctlJson as ctl } from './cluster_helpers.mjs';
import { until } from './helpers.mjs';

const PREFIX = 'rhshard';
let cluster;
let nodes;
const clients = [];

before(async () => {
  cluster = await startRedisCluster({ masters: 3 });
  nodes = await startNodes(3, { redis: cluster, prefix: PREFIX });
  await until(async () => (await redisState(nodes[0])).every((s) => s.command_up && s.subscriber_up), 'node 1 on every master', 15000);
});

after(async () => {
  await Promise.all(clients.map((c) => c.connection.stop().catch(() => {})));
  const codes = nodes ? await nodes.stopAll() : [];
  if (cluster) await cluster.stop();
  assert.deepEqual(codes, [0, 0, 0], 'every node stops cleanly with nothing left allocated');
});


const redisState = async (node) => (await ctl(node, 'redis')).shards;

async function connect(node, { user, protocol = 'json' } = {}) {
  const url = node.url('chat') + (user ? `?user=${user}` : '');
  const builder = new signalR.HubConnectionBuilder().withUrl(url).configureLogging(signalR.LogLevel.Warning);
  if (protocol === 'messagepack') builder.withHubProtocol(new MessagePackHubProtocol());
  const connection = builder.build();
  const c = { connection, inbox: [] };
  connection.on('msg', (...args) => {
    c.inbox.push(args);
  });
  await connection.start();
  c.id = connection.connectionId;
  clients.push(c);
  return c;
}

// Each publisher's values, in the order @c got them.
function bySender(c, tag) {
  const out = {};
  for (const [t, sender, i] of c.inbox) if (t === tag) (out[sender] ??= []).push(i);
  return out;
}

async function publishes() {
  let classic = 0;
  let sharded = 0;
  for (const port of cluster.ports) {
    const stats = await cluster.cli(port, 'info', 'commandstats');
    classic += Number(/cmdstat_publish:calls=(\d+)/.exec(stats)?.[1] ?? 0);
    sharded += Number(/cmdstat_spublish:calls=(\d+)/.exec(stats)?.[1] ?? 0);
  }
  return { classic, sharded };
}

// Every member sends N values to @group tagged @tag; each member gets each sender's 0..N once,
// in order.
async function exchange(members, group, tag, N = 20) {
  await Promise.all(
    members.map(async (m, k) => {
      for (let i = 0; i <= N; i++) await m.connection.invoke('SendToGroup', group, 'msg', tag, `s${k}`, i);
    }),
  );
  const want = Object.fromEntries(members.map((_, k) => [`s${k}`, Array.from({ length: N + 1 }, (_, i) => i)]));
  for (const m of members) {
    await until(() => members.every((_, k) => (bySender(m, tag)[`s${k}`] ?? []).at(-1) === N), `every last "${tag}" message`, 15000);
    assert.deepEqual(bySender(m, tag), want, 'every message once, in each sender order');
  }
}

test('sharded pub/sub: group, user, connection and all messages across nodes; no classic PUBLISH', async () => {
  const before = await publishes();
  const members = [await connect(nodes[0], { user: 'ann' }), await connect(nodes[1], { protocol: 'messagepack' }), await connect(nodes[2], { user: 'bob' })];
  for (const m of members) await m.connection.invoke('JoinGroup', 'room');
  await exchange(members, 'room', 'first');
  await members[1].connection.invoke('SendToUser', 'bob', 'msg', 'user', 'x', 1);
  await members[2].connection.invoke('SendToConnection', members[0].id, 'msg', 'conn', 'x', 2);
  await members[0].connection.invoke('SendToAll', 'msg', 'all', 'x', 3);
  await until(() => members[2].inbox.some(([t]) => t === 'user') && members[0].inbox.some(([t]) => t === 'conn') &&
    members.every((m) => m.inbox.some(([t]) => t === 'all')), 'user, connection and all messages');
  const after = await publishes();
  assert.equal(after.classic, before.classic, 'no classic PUBLISH on a cluster');
  assert.ok(after.sharded > before.sharded, 'SPUBLISH carries the messages');
  // The group's channel is subscribed on the master that owns its slot, by the three nodes.
  const channel = `${PREFIX}:group:chat:room`;
  const owner = await cluster.slotOwner(await cluster.keySlot(channel));
  assert.equal(Number((await cluster.cli(owner, 'pubsub', 'shardnumsub', channel)).split('\n')[1]), 3);
});

test("the group's slot migrates to another master during traffic: the nodes follow it", async () => {
  const members = [await connect(nodes[0]), await connect(nodes[1]), await connect(nodes[2])];
  for (const m of members) await m.connection.invoke('JoinGroup', 'moving');
  await exchange(members, 'moving', 'before');
  const channel = `${PREFIX}:group:chat:moving`;
  const slot = await cluster.keySlot(channel);
  const from = await cluster.slotOwner(slot);
  const to = cluster.ports.find((p) => p !== from);
  // Traffic while the slot moves; then, once every node is subscribed on the new owner, an
  // exact exchange.
  let sending = true;
  const during = (async () => {
    for (let i = 0; sending; i++) await members[0].connection.invoke('SendToGroup', 'moving', 'msg', 'during', 's0', i);
  })();
  await cluster.migrateSlot(slot, to);
  await until(async () => Number((await cluster.cli(to, 'pubsub', 'shardnumsub', channel)).split('\n')[1]) === 3, 'three subscribers on the new owner', 15000);
  sending = false;
  await during;
  for (const m of members) {
    const got = bySender(m, 'during').s0 ?? [];
    assert.deepEqual(got, [...new Set(got)].sort((a, b) => a - b), 'nothing twice, in order, across the move');
  }
  await exchange(members, 'moving', 'after');
});

test('a master restarted during traffic: the nodes reconnect, subscribe again, traffic goes on', async () => {
  const members = [await connect(nodes[0]), await connect(nodes[2])];
  for (const m of members) await m.connection.invoke('JoinGroup', 'restart');
  await exchange(members, 'restart', 'before');
  const channel = `${PREFIX}:group:chat:restart`;
  const owner = await cluster.slotOwner(await cluster.keySlot(channel));
  await cluster.restartMaster(owner);
  await until(async () => Number((await cluster.cli(owner, 'pubsub', 'shardnumsub', channel)).split('\n')[1]) === 2, 'both nodes subscribed again', 20000);
  await until(async () => (await redisState(nodes[0])).every((s) => s.command_up && s.subscriber_up), 'node 1 up again', 20000);
  await until(async () => (await redisState(nodes[2])).every((s) => s.command_up && s.subscriber_up), 'node 3 up again', 20000);
  await exchange(members, 'restart', 'after');
  assert.ok((await redisState(nodes[0])).some((s) => s.reconnects > 0), 'the reconnect is counted');
});
