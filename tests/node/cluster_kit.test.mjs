// The multi-node harness (cluster_helpers.mjs) and the deployment kit (tools/deploy/,
// tools/cluster.sh), for real, with what works without a backplane: a standalone Redis that
// is killed and restarted; a Redis Cluster whose slot moves by the manual resharding steps and
// whose master restarts; nginx with the shipped config in front of ringhub nodes, with the
// official SignalR client on all three transports and the backend API going through it;
// ip_hash keeping one client address on one node (and round-robin breaking negotiated
// clients); the systemd unit; and tools/cluster.sh started and stopped.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import * as signalR from '@microsoft/signalr';
import { until } from './helpers.mjs';
import {
  startRedis, startRedisCluster, startNodes, startNginx, freePort, repoRoot, nginxKitPath,
  rewriteNginxKit,
} from './cluster_helpers.mjs';

const run = (cmd, args, opts = {}) =>
  new Promise((resolve) => {
    execFile(cmd, args, { timeout: 30000, ...opts }, (err, stdout, stderr) =>
      resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr }));
  });

// Runs @fn when @t ends, in the reverse order of registration (clients before nginx before
// the nodes).
const stacks = new WeakMap();
function cleanup(t, fn) {
  if (!stacks.has(t)) {
    const stack = [];
    stacks.set(t, stack);
    t.after(async () => {
      while (stack.length) await stack.pop()();
    });
  }
  stacks.get(t).push(fn);
}

describe('startRedis', () => {
  test('SET and GET through cli, INFO, kill and restart on the same port', async (t) => {
    const redis = await startRedis();
    cleanup(t, () => redis.stop());
    assert.equal(await redis.cli('set', 'ringhub:k', 'v1'), 'OK');
    assert.equal(await redis.cli('get', 'ringhub:k'), 'v1');
    const info = await redis.info('server');
    assert.match(info.redis_version, /^\d+\.\d+/);
    assert.equal(Number(info.tcp_port), redis.port);
    assert.equal((await redis.info('persistence')).aof_enabled, '0', 'no persistence');
    assert.equal((await redis.cli('config', 'get', 'save')).split('\n')[1] ?? '', '', 'no RDB saves');

    const before = redis.pid;
    await redis.kill();
    await assert.rejects(redis.cli('ping'), /Connection refused|Could not connect/);
    await redis.restart();
    assert.notEqual(redis.pid, before);
    assert.equal(await redis.cli('ping'), 'PONG');
    assert.equal(await redis.cli('get', 'ringhub:k'), '', 'nothing was persisted across the restart');
  });
});

describe('startRedisCluster', () => {
  test('three masters cover every slot; a slot migrates; a master restarts', async (t) => {
    const cluster = await startRedisCluster({ masters: 3 });
    cleanup(t, () => cluster.stop());
    assert.equal(cluster.ports.length, 3);
    assert.equal(cluster.seeds, cluster.ports.map((p) => `127.0.0.1:${p}`).join(','));
    for (const port of cluster.ports) {
      const info = await cluster.info(port);
      assert.equal(info.cluster_state, 'ok');
      assert.equal(info.cluster_slots_assigned, '16384');
      assert.equal(info.cluster_known_nodes, '3');
      const slots = await cluster.json(port, 'cluster', 'slots');
      assert.equal(slots.reduce((n, [from, to]) => n + to - from + 1, 0), 16384);
      // Each range names its master by address: 127.0.0.1 and its port, never an empty host.
      for (const [, , [host, p]] of slots) {
        assert.equal(host, '127.0.0.1');
        assert.ok(cluster.ports.includes(p));
      }
    }

    const key = 'ringhub:chat:{room1}';
    const slot = await cluster.keySlot(key);
    assert.equal(Number(await cluster.cli(cluster.ports[1], 'cluster', 'keyslot', key)), slot);
    const from = await cluster.slotOwner(slot);
    const to = cluster.ports.find((p) => p !== from);
    assert.equal(await cluster.cli(from, 'set', key, 'kept'), 'OK');
    assert.match(await cluster.cli(to, 'get', key), new RegExp(`^MOVED ${slot} 127\\.0\\.0\\.1:${from}$`));

    await cluster.migrateSlot(slot, to);
    for (const port of cluster.ports) {
      assert.equal(await cluster.slotOwner(slot, port), to, `CLUSTER SLOTS on ${port}`);
    }
    const slots = await cluster.json(from, 'cluster', 'slots');
    assert.ok(slots.some(([a, b, [, p]]) => a === slot && b === slot && p === to), 'the slot is a range of its own');
    assert.equal(await cluster.cli(to, 'get', key), 'kept', 'its key moved with it');
    assert.match(await cluster.cli(from, 'get', key), new RegExp(`^MOVED ${slot} 127\\.0\\.0\\.1:${to}$`));

    // kill -9 and a restart on the same port with its nodes.conf.
    const toId = await cluster.nodeId(to);
    await cluster.restartMaster(to);
    assert.equal(await cluster.nodeId(to), toId);
    assert.equal(await cluster.cli(to, 'cluster', 'myid'), toId, 'the node keeps its id (nodes.conf)');
    for (const port of cluster.ports) assert.equal((await cluster.info(port)).cluster_state, 'ok');
    assert.equal(await cluster.slotOwner(slot), to, 'and its slots');
    assert.equal(await cluster.cli(to, 'get', key), '', 'but not its data: nothing is persisted');
  });

  test('sharded pub/sub: SSUBSCRIBE on the owner, sunsubscribe when the slot migrates', async (t) => {
    const cluster = await startRedisCluster({ masters: 3 });
    cleanup(t, () => cluster.stop());
    const channel = 'ringhub:chat:g:room1';
    const slot = await cluster.keySlot(channel);
    const from = await cluster.slotOwner(slot);
    const to = cluster.ports.find((p) => p !== from);
    assert.match(await cluster.cli(to, 'ssubscribe', channel), new RegExp(`^MOVED ${slot} `),
      'SSUBSCRIBE is refused by a node that does not own the slot');

    const sub = spawn('redis-cli', ['-p', String(from), 'ssubscribe', channel], { stdio: ['ignore', 'pipe', 'pipe'] });
    cleanup(t, () => sub.kill('SIGKILL'));
    const lines = [];
    readline.createInterface({ input: sub.stdout }).on('line', (l) => lines.push(l));
    await until(() => lines.length >= 3, 'the ssubscribe confirmation');
    assert.deepEqual(lines.slice(0, 3), ['ssubscribe', channel, '1']);
    assert.equal(await cluster.cli(from, 'spublish', channel, 'm1'), '1');
    assert.match(await cluster.cli(to, 'spublish', channel, 'x'), /^MOVED /, 'SPUBLISH only on the owner');
    await until(() => lines.includes('m1'), 'the smessage');

    await cluster.migrateSlot(slot, to);
    // The old owner drops its subscribers of the slot with a server-side sunsubscribe (count
    // 0); the connection stays open, and the client must SSUBSCRIBE on the new owner.
    await until(() => lines.includes('sunsubscribe'), 'sunsubscribe after the migration');
    assert.deepEqual(lines.slice(-3), ['sunsubscribe', channel, '0']);
    assert.equal(await cluster.cli(to, 'spublish', channel, 'm2'), '0', 'nobody listens on the new owner yet');
    assert.equal(sub.exitCode, null, 'the subscriber connection is still open');
  });
});

const transportClass = {
  WebSockets: 'WebSocketTransport',
  ServerSentEvents: 'ServerSentEventsTransport',
  LongPolling: 'LongPollingTransport',
};

// A SignalR client over @transport (negotiated) to @url, collecting what it receives.
async function client(t, url, transport) {
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(url, { transport: signalR.HttpTransportType[transport] })
    .configureLogging(signalR.LogLevel.Warning)
    .build();
  const inbox = [];
  for (const target of ['msg', 'news']) {
    connection.on(target, (...args) => {
      inbox.push({ target, args });
    });
  }
  let closedWith = null;
  connection.onclose((err) => (closedWith = err ?? 'closed'));
  await connection.start();
  cleanup(t, () => connection.stop());
  assert.equal(connection.connection.transport.constructor.name, transportClass[transport]);
  return {
    connection,
    inbox,
    get closedWith() {
      return closedWith;
    },
    got: (target) => inbox.filter((m) => m.target === target).map((m) => m.args),
    // The ringhub node id inside the connection id (its top 12 bits).
    node: () => Number(Buffer.from(connection.connectionId, 'base64url').readBigUInt64BE(0) >> 52n),
  };
}

const transports = ['WebSockets', 'ServerSentEvents', 'LongPolling'];

describe('nginx with the shipped config in front of one ringhub node', () => {
  test('SignalR over every transport, groups, and the backend API go through nginx', async (t) => {
    const nodes = await startNodes(1);
    cleanup(t, async () => assert.deepEqual(await nodes.stopAll(), [0], 'ringhub stops cleanly'));
    const nginx = await startNginx(nodes);
    cleanup(t, () => nginx.stop());

    const conf = fs.readFileSync(nginx.conf, 'utf8');
    assert.match(conf, new RegExp(`server 127\\.0\\.0\\.1:${nodes[0].port} max_fails`));
    assert.match(conf, new RegExp(`listen 127\\.0\\.0\\.1:${nginx.port};`));
    assert.match(conf, /ip_hash;/);

    const health = await fetch(`${nginx.base}/healthz`);
    assert.equal(health.status, 200);
    assert.equal((await health.text()).trim(), 'ok');

    const clients = {};
    for (const transport of transports) {
      const c = await client(t, nginx.url('chat'), transport);
      clients[transport] = c;
      assert.equal(c.node(), 1, 'served by node 1');
      assert.equal(await c.connection.invoke('Echo', `via nginx: ${transport}`), `via nginx: ${transport}`);
      assert.deepEqual(await c.connection.invoke('Echo', { n: [1, 2], s: 'ü' }), { n: [1, 2], s: 'ü' });
      const group = `room-${transport}`;
      await c.connection.invoke('JoinGroup', group);
      await c.connection.invoke('SendToGroup', group, 'msg', 'to my group', transport);
      await until(() => c.got('msg').length === 1, `${transport}: its group message`);
      assert.deepEqual(c.got('msg'), [['to my group', transport]]);
    }
    // One client reaches the others: SendToAll from the long-polling one.
    await clients.LongPolling.connection.invoke('SendToAll', 'news', 'from a long poll');
    await until(() => transports.every((tr) => clients[tr].got('news').length === 1), 'SendToAll to every transport');

    // The backend API (both path forms) through nginx: 202, and every client gets it.
    const v1 = await fetch(`${nginx.base}/api/v1/hubs/chat`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ target: 'news', arguments: ['from the v1 API'] }),
    });
    assert.equal(v1.status, 202, await v1.text());
    const v2022 = await fetch(`${nginx.base}/api/hubs/chat/:send?api-version=2022-06-01`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ target: 'news', arguments: ['from the 2022 API'] }),
    });
    assert.equal(v2022.status, 202, await v2022.text());
    const group = await fetch(`${nginx.base}/api/v1/hubs/chat/groups/room-WebSockets`, {
      method: 'POST',
      body: JSON.stringify({ target: 'msg', arguments: ['from the API to a group'] }),
    });
    assert.equal(group.status, 202, await group.text());
    await until(() => transports.every((tr) => clients[tr].got('news').length === 3), 'the API messages');
    for (const tr of transports) {
      assert.deepEqual(clients[tr].got('news'), [['from a long poll'], ['from the v1 API'], ['from the 2022 API']]);
    }
    await until(() => clients.WebSockets.got('msg').length === 2, 'the group message of the API');
    assert.equal(clients.ServerSentEvents.got('msg').length, 1, 'only the group got it');
    for (const tr of transports) assert.equal(clients[tr].closedWith, null, `${tr} stayed connected`);
  });
});

describe('nginx balancing two ringhub nodes', () => {
  // The node that answers each of @n negotiates made through @nginx (one TCP connection each).
  async function negotiatedNodes(nginx, n) {
    const seen = [];
    for (let i = 0; i < n; i++) {
      const res = await fetch(`${nginx.url('chat')}/negotiate?negotiateVersion=1`, {
        method: 'POST',
        headers: { Connection: 'close' },
      });
      assert.equal(res.status, 200);
      const { connectionId } = await res.json();
      seen.push(Number(Buffer.from(connectionId, 'base64url').readBigUInt64BE(0) >> 52n));
    }
    return seen;
  }

  test('ip_hash keeps one client address on one node; without it requests alternate', async (t) => {
    const nodes = await startNodes(2, { args: ['--disconnect-timeout-ms', '1000'] });
    cleanup(t, async () => assert.deepEqual(await nodes.stopAll(), [0, 0]));
    const sticky = await startNginx(nodes);
    cleanup(t, () => sticky.stop());
    const roundRobin = await startNginx(nodes, { ipHash: false });
    cleanup(t, () => roundRobin.stop());
    assert.doesNotMatch(fs.readFileSync(roundRobin.conf, 'utf8'), /^\s*ip_hash;/m);

    const s = await negotiatedNodes(sticky, 6);
    assert.equal(new Set(s).size, 1, `ip_hash: one node for 127.0.0.1 (${s})`);
    const r = await negotiatedNodes(roundRobin, 6);
    assert.deepEqual(new Set(r), new Set([1, 2]), `round-robin: both nodes (${r})`);

    // With ip_hash, a negotiated client (negotiate, then polls and sends) works through nginx
    // in front of two nodes. Round-robin sends its poll to the node that did not negotiate it,
    // which knows no such connection: why the kit balances with ip_hash.
    const c = await client(t, sticky.url('chat'), 'LongPolling');
    assert.equal(await c.connection.invoke('Echo', 'sticky'), 'sticky');
    const lost = new signalR.HubConnectionBuilder()
      .withUrl(roundRobin.url('chat'), { transport: signalR.HttpTransportType.LongPolling })
      .configureLogging(signalR.LogLevel.None)
      .build();
    await assert.rejects(lost.start(), /No Connection with that ID: Status code '404'/);
  });
});

describe('the deployment kit files', () => {
  test('the nginx kit has its upstream, listen, upgrade map and proxy settings', () => {
    const kit = fs.readFileSync(nginxKitPath, 'utf8');
    for (const re of [
      /map \$http_upgrade \$connection_upgrade/, /upstream ringhub \{/, /^\s*ip_hash;/m, /^\s*keepalive \d+;/m,
      /server 127\.0\.0\.1:5001/, /server 127\.0\.0\.1:5002/, /server 127\.0\.0\.1:5003/,
      /proxy_http_version 1\.1;/, /proxy_buffering off;/, /proxy_read_timeout \d+s;/, /proxy_send_timeout \d+s;/,
      /location \/hubs\//, /location \/api\//, /location = \/healthz/, /X-Forwarded-For/,
    ]) assert.match(kit, re);
    const site = rewriteNginxKit(kit, { ports: [7001, 7002], listenPort: 9000 });
    assert.equal((site.match(/^\s*server 127\.0\.0\.1:\d+/gm) ?? []).length, 2);
    assert.equal((site.match(/^\s*listen /gm) ?? []).length, 1);
  });

  test('the systemd unit verifies', async (t) => {
    const unit = path.join(repoRoot, 'tools/deploy/ringhub.service');
    const text = fs.readFileSync(unit, 'utf8');
    for (const re of [/^Type=simple$/m, /^ExecStart=.*--redis /m, /^Restart=on-failure$/m, /^LimitNOFILE=\d+$/m,
      /^User=ringhub$/m, /^RuntimeDirectory=ringhub$/m, /^KillSignal=SIGTERM$/m, /--admin-socket \/run\/ringhub\//]) {
      assert.match(text, re);
    }
    const grace = Number(/--shutdown-grace-ms[ =](\d+)/.exec(text)?.[1] ?? 5000);
    assert.ok(Number(/^TimeoutStopSec=(\d+)/m.exec(text)[1]) * 1000 > grace, 'TimeoutStopSec above the grace');
    const verify = await run('systemd-analyze', ['--version']);
    if (verify.code !== 0) return t.skip('no systemd-analyze');
    // The unit names /usr/local/bin/ringhub and the user ringhub, which need not exist here:
    // verify a copy that runs /bin/true, and report anything but those.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringhub-unit-'));
    cleanup(t, () => fs.rmSync(dir, { recursive: true, force: true }));
    const copy = path.join(dir, 'ringhub.service');
    fs.writeFileSync(copy, text.replace(/^ExecStart=\S+/m, 'ExecStart=/bin/true'));
    const { stdout, stderr } = await run('systemd-analyze', ['verify', copy]);
    const problems = (stdout + stderr).split('\n').filter((l) => l.trim() && !/ringhub\.env|Failed to resolve user|user ringhub|System has not been booted|Failed to connect/i.test(l));
    assert.deepEqual(problems, []);
  });
});

describe('tools/cluster.sh', () => {
  const script = path.join(repoRoot, 'tools/cluster.sh');

  test('--help works and bash -n passes', async () => {
    const help = await run(script, ['--help']);
    assert.equal(help.code, 0);
    for (const flag of ['--nginx', '--port', '--redis-port', '--nodes']) assert.match(help.stdout, new RegExp(flag));
    assert.equal((await run('bash', ['-n', script])).code, 0);
    const bad = await run(script, ['--no-such-flag']);
    assert.equal(bad.code, 2);
    const shellcheck = await run('shellcheck', ['--version']);
    if (shellcheck.code === 0) assert.deepEqual(await run('shellcheck', [script]), { code: 0, stdout: '', stderr: '' });
  });

  test('starts Redis, three nodes and nginx, and stops them all on SIGTERM', async (t) => {
    // Three consecutive free ports for the nodes, one for nginx.
    let base;
    for (let tries = 0; !base && tries < 50; tries++) {
      const p = await freePort();
      if (p > 65000) continue;
      const run3 = await Promise.all([p + 1, p + 2].map((q) => run('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${q}`])));
      if (run3.every((x) => x.code !== 0)) base = p;
    }
    assert.ok(base, 'three free ports');
    const nginxPort = await freePort();
    const redisPort = await freePort();
    const extra = (process.env.RINGHUB_ARGS ?? '').split(' ').filter(Boolean);
    const args = ['--port', String(base), '--redis-port', String(redisPort), '--nginx', '--nginx-port', String(nginxPort),
      '--', ...extra];
    const child = spawn(script, args, {
      env: process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanup(t, () => child.exitCode === null && child.kill('SIGKILL'));
    const out = [];
    const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));
    for (const s of [child.stdout, child.stderr]) readline.createInterface({ input: s }).on('line', (l) => out.push(l));
    await until(() => out.some((l) => l.startsWith('ready')) || child.exitCode !== null, 'cluster.sh to be ready', 30000);
    assert.ok(out.some((l) => l.startsWith('ready')), out.join('\n'));
    const tmp = /files in (\S+)/.exec(out.join('\n'))[1];
    for (let i = 0; i < 3; i++) {
      assert.ok(out.some((l) => l.includes(`node ${i + 1}  http://127.0.0.1:${base + i}/hubs/chat`)));
      assert.ok(out.some((l) => l.includes(`-s ${tmp}/node-${i + 1}.sock stats`)));
      assert.equal((await fetch(`http://127.0.0.1:${base + i}/healthz`)).status, 200);
    }
    assert.ok(out.some((l) => l.includes(`nginx   http://127.0.0.1:${nginxPort}/hubs/chat`)));
    assert.ok(out.some((l) => l.includes(`redis-cli -h 127.0.0.1 -p ${redisPort}`)));
    assert.equal((await run('redis-cli', ['-p', String(redisPort), 'ping'])).stdout.trim(), 'PONG');
    const c = await client(t, `http://127.0.0.1:${nginxPort}/hubs/chat`, 'LongPolling');
    assert.equal(await c.connection.invoke('Echo', 'through cluster.sh'), 'through cluster.sh');
    await c.connection.stop();
    // The nodes are one cluster: a group message from node 1 reaches a member on node 3.
    const one = await client(t, `http://127.0.0.1:${base}/hubs/chat`, 'WebSockets');
    const three = await client(t, `http://127.0.0.1:${base + 2}/hubs/chat`, 'WebSockets');
    const heard = new Promise((resolve) => three.connection.on('msg', (text) => resolve(text)));
    await one.connection.invoke('JoinGroup', 'kit');
    await three.connection.invoke('JoinGroup', 'kit');
    await one.connection.invoke('SendToGroup', 'kit', 'msg', 'across');
    assert.equal(await heard, 'across');
    await one.connection.stop();
    await three.connection.stop();

    child.kill('SIGTERM');
    assert.equal(await exited, 143);
    assert.ok(!fs.existsSync(tmp), 'its temp dir is gone');
    for (const port of [base, base + 1, base + 2, nginxPort, redisPort]) {
      assert.notEqual((await run('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`])).code, 0, `port ${port} is closed`);
    }
  });
});
