// GET /metrics (Prometheus text format 0.0.4), /healthz and /readyz of the real ringhub binary
// with 2 shards (issue 7), with official SignalR clients (WebSockets JSON and MessagePack, SSE,
// long polling) and a plain EventSource stream as traffic: the exposition passes
// `promtool check metrics`, every family of the spec is there with its type, the session gauges
// are exactly the clients made, counters move as the traffic says (messages received and
// delivered, bytes, closes by reason for a rate-limited flood), the group fan-out histogram
// counts group sends and its buckets are cumulative, labels stay bounded (no group names nor
// connection ids; hubs beyond 32 per shard are "other"), and --metrics-port moves /metrics to a
// port of its own.
//
// Families are read with the small parser below (name{labels} value) and summed over labels.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import WebSocket from 'ws';
import EventSource from 'eventsource';
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { startServer } from './server.mjs';
import { OwnSocketHttpClient, until as waitUntil } from './helpers.mjs';

const RS = '\u001e';
const PROMTOOL = '/usr/bin/promtool';

const until = (condition, what, ms = 20000) => waitUntil(condition, what, ms);

// ---- the exposition format ---------------------------------------------------------------------

// Parses Prometheus text format 0.0.4: {samples: [{name, labels, value}], types: Map(name -> type),
// helps: Map(name -> text)}. Throws on a line it cannot read.
function parse(text) {
  const samples = [];
  const types = new Map();
  const helps = new Map();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (TYPE|HELP) ([a-zA-Z_:][a-zA-Z0-9_:]*) ?(.*)$/.exec(line);
      if (m && m[1] === 'TYPE') types.set(m[2], m[3]);
      if (m && m[1] === 'HELP') helps.set(m[2], m[3]);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?[ \t]+(\S+)(?:[ \t]+-?\d+)?$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const labels = {};
    if (m[2]) {
      const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/gy;
      let rest = m[2];
      let lm;
      let consumed = 0;
      while (consumed < rest.length && (lm = re.exec(rest))) {
        labels[lm[1]] = lm[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
        consumed = re.lastIndex;
      }
      if (consumed !== rest.length) throw new Error(`bad labels in ${JSON.stringify(line)}`);
    }
    const raw = m[3];
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : raw === 'NaN' ? NaN : Number(raw);
    if (raw !== 'NaN' && Number.isNaN(value)) throw new Error(`bad value in ${JSON.stringify(line)}`);
    samples.push({ name: m[1], labels, value });
  }
  return { samples, types, helps, text };
}

// The samples of @name whose labels include @filter.
function select(m, name, filter = {}) {
  return m.samples.filter((s) => s.name === name && Object.entries(filter).every(([k, v]) => s.labels[k] === v));
}

function sum(m, name, filter = {}) {
  return select(m, name, filter).reduce((a, s) => a + s.value, 0);
}

async function metrics(port) {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  const ct = res.headers.get('content-type');
  assert.ok(ct.startsWith('text/plain'), `content-type ${ct}`);
  return parse(await res.text());
}

// The families of the spec and their types.
const FAMILIES = {
  ringhub_up: 'gauge',
  ringhub_start_time_seconds: 'gauge',
  ringhub_shards: 'gauge',
  ringhub_connections: 'gauge',
  ringhub_sessions: 'gauge',
  ringhub_messages_received_total: 'counter',
  ringhub_messages_sent_total: 'counter',
  ringhub_hub_bytes_received_total: 'counter',
  ringhub_hub_bytes_sent_total: 'counter',
  ringhub_bytes_received_total: 'counter',
  ringhub_bytes_sent_total: 'counter',
  ringhub_connections_accepted_total: 'counter',
  ringhub_connections_refused_total: 'counter',
  ringhub_closes_total: 'counter',
  ringhub_dropped_bytes_total: 'counter',
  ringhub_refused_joins_total: 'counter',
  ringhub_groups: 'gauge',
  ringhub_send_queue_bytes: 'gauge',
  ringhub_loop_utilization: 'gauge',
  ringhub_loop_busy_seconds_total: 'counter',
  ringhub_ring_depth: 'gauge',
  ringhub_group_fanout_seconds: 'histogram',
  ringhub_draining: 'gauge',
};
const LABELS = new Set(['shard', 'hub', 'transport', 'protocol', 'reason', 'le']);

// ---- clients -----------------------------------------------------------------------------------

const shardOf = (id) => Number((Buffer.from(id, 'base64url').readBigUInt64BE(0) >> 44n) & 0xffn);

class Client {
  constructor(srv, { hub = 'chat', transport = 'WebSockets', protocol = 'json' } = {}) {
    const builder = new signalR.HubConnectionBuilder()
      .withUrl(srv.url(hub), {
        transport: signalR.HttpTransportType[transport],
        httpClient: new OwnSocketHttpClient(signalR.NullLogger.instance),
      })
      .configureLogging(signalR.LogLevel.None);
    if (protocol === 'messagepack') builder.withHubProtocol(new MessagePackHubProtocol());
    Object.assign(this, { hub, transport, protocol });
    this.connection = builder.build();
    this.inbox = [];
    this.closed = new Promise((resolve) => this.connection.onclose((e) => resolve(e ? String(e) : 'clean')));
    this.connection.on('msg', (...args) => this.inbox.push(args));
  }

  async start() {
    await this.connection.start();
    this.id = this.connection.connectionId;
    this.shard = shardOf(this.id);
    return this;
  }

  invoke(...args) {
    return this.connection.invoke(...args);
  }

  async stop() {
    await this.connection.stop().catch(() => {});
  }
}

// ---- the main server and its clients -----------------------------------------------------------

let server;
let fleet;
let stream;
const others = []; // servers of single tests, stopped at the end
const extraClients = [];

const FLEET = [
  { transport: 'WebSockets', protocol: 'json' },
  { transport: 'WebSockets', protocol: 'json' },
  { transport: 'WebSockets', protocol: 'json', hub: 'other' },
  { transport: 'WebSockets', protocol: 'messagepack' },
  { transport: 'WebSockets', protocol: 'messagepack' },
  { transport: 'ServerSentEvents', protocol: 'json' },
  { transport: 'LongPolling', protocol: 'json' },
  { transport: 'LongPolling', protocol: 'messagepack' },
];

before(async () => {
  server = await startServer(['--shards', '2']);
  fleet = [];
  for (const spec of FLEET) fleet.push(await new Client(server, spec).start());
  while (new Set(fleet.map((c) => c.shard)).size < 2) {
    assert.ok(fleet.length < 60, 'the fleet did not cover both shards');
    fleet.push(await new Client(server, { transport: 'WebSockets', protocol: 'json' }).start());
  }
  stream = new EventSource(`http://127.0.0.1:${server.port}/api/events/erin`);
  await new Promise((resolve, reject) => {
    stream.onopen = resolve;
    stream.onerror = reject;
  });
});

after(async () => {
  stream?.close();
  for (const c of [...(fleet ?? []), ...extraClients]) await c.stop();
  for (const s of others) assert.equal(await s.stop(), 0, 'ringhub stops cleanly');
  assert.equal(await server.stop(), 0, 'ringhub stops cleanly with nothing left allocated');
});

function promtool(text) {
  return new Promise((resolve, reject) => {
    const child = spawn(PROMTOOL, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
    child.stdin.end(text);
  });
}

// ---- tests -------------------------------------------------------------------------------------

test('/metrics: content type, every family with its type, passes promtool check metrics', async (t) => {
  // Some traffic first, so that the histogram and the per-hub counters have samples.
  const members = fleet.filter((c) => c.hub === 'chat');
  for (const c of members) await c.invoke('JoinGroup', 'warmup');
  await fleet[0].invoke('SendToGroup', 'warmup', 'msg', 'hello');
  await until(() => members.every((c) => c.inbox.length >= 1), 'the warm-up message');

  const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  const text = await res.text();
  assert.ok(text.endsWith('\n'), 'the exposition ends with a line end');
  const m = parse(text);

  for (const [family, type] of Object.entries(FAMILIES)) {
    assert.equal(m.types.get(family), type, `# TYPE ${family} ${type}`);
    const names = type === 'histogram' ? [`${family}_bucket`, `${family}_sum`, `${family}_count`] : [family];
    for (const name of names) assert.ok(select(m, name).length > 0, `${name} has samples`);
  }
  for (const s of m.samples) {
    assert.ok(s.name.startsWith('ringhub_'), s.name);
    for (const l of Object.keys(s.labels)) assert.ok(LABELS.has(l), `label ${l} of ${s.name} is one of the bounded ones`);
  }
  assert.equal(sum(m, 'ringhub_up'), 1);
  assert.equal(sum(m, 'ringhub_shards'), 2);
  assert.equal(sum(m, 'ringhub_draining'), 0);
  const start = sum(m, 'ringhub_start_time_seconds');
  assert.ok(start > Date.now() / 1000 - 3600 && start <= Date.now() / 1000 + 1, `start time ${start}`);
  for (const family of ['ringhub_connections', 'ringhub_groups', 'ringhub_send_queue_bytes', 'ringhub_loop_utilization', 'ringhub_ring_depth', 'ringhub_bytes_received_total', 'ringhub_loop_busy_seconds_total']) {
    assert.deepEqual(select(m, family).map((s) => s.labels.shard).sort(), ['0', '1'], `${family} per shard`);
  }
  for (const s of select(m, 'ringhub_loop_utilization')) assert.ok(s.value >= 0 && s.value <= 1, `utilization ${s.value}`);
  assert.deepEqual(
    select(m, 'ringhub_closes_total').map((s) => s.labels.reason).sort(),
    ['client_timeout', 'handshake_timeout', 'kicked', 'rate', 'slow_consumer', 'too_large'],
  );
  assert.ok(sum(m, 'ringhub_connections') >= fleet.filter((c) => c.transport !== 'LongPolling').length + 1);
  assert.ok(sum(m, 'ringhub_connections_accepted_total') >= fleet.length);

  const r = await promtool(text);
  if (r.code !== 0) t.diagnostic(`promtool: ${r.out}`);
  assert.equal(r.code, 0, `promtool check metrics failed:\n${r.out}\n--- exposition ---\n${text}`);
});

test('ringhub_sessions is exactly the clients made, per transport and protocol', async () => {
  const key = { WebSockets: 'websockets', ServerSentEvents: 'sse', LongPolling: 'longpolling' };
  const expected = {};
  for (const t of ['websockets', 'sse', 'longpolling', 'eventsource']) for (const p of ['json', 'messagepack']) expected[`${t} ${p}`] = 0;
  for (const c of fleet) expected[`${key[c.transport]} ${c.protocol}`]++;
  expected['eventsource json'] = 1;
  let got;
  await until(async () => {
    const m = await metrics(server.port);
    got = {};
    for (const k of Object.keys(expected)) {
      const [transport, protocol] = k.split(' ');
      got[k] = sum(m, 'ringhub_sessions', { transport, protocol });
    }
    return JSON.stringify(got) === JSON.stringify(expected);
  }, 'the session gauges to match the clients').catch((e) => {
    assert.deepEqual(got, expected, e.message);
  });
  // Per hub too.
  const m = await metrics(server.port);
  assert.equal(sum(m, 'ringhub_sessions', { hub: 'other' }), fleet.filter((c) => c.hub === 'other').length);
  assert.equal(sum(m, 'ringhub_sessions', { hub: 'chat' }), fleet.filter((c) => c.hub === 'chat').length);
  for (const s of select(m, 'ringhub_sessions')) {
    assert.ok(['websockets', 'sse', 'longpolling', 'eventsource'].includes(s.labels.transport), s.labels.transport);
    assert.ok(['json', 'messagepack'].includes(s.labels.protocol), s.labels.protocol);
  }
});

test('counters follow the traffic: K group sends to M members; bytes; the fan-out histogram', async () => {
  const members = fleet.filter((c) => c.hub === 'chat');
  for (const c of members) await c.invoke('JoinGroup', 'counted');
  const M = members.length;
  const K = 25;
  const m0 = await metrics(server.port);
  const inbox0 = members.map((c) => c.inbox.length);
  for (let i = 0; i < K; i++) assert.equal(await fleet[0].invoke('SendToGroup', 'counted', 'msg', i), null);
  await until(() => members.every((c, i) => c.inbox.length >= inbox0[i] + K), `all ${M} members to get ${K} messages`);

  let m1;
  await until(async () => {
    m1 = await metrics(server.port);
    return (
      sum(m1, 'ringhub_messages_received_total') >= sum(m0, 'ringhub_messages_received_total') + K &&
      sum(m1, 'ringhub_messages_sent_total') >= sum(m0, 'ringhub_messages_sent_total') + K * M &&
      sum(m1, 'ringhub_group_fanout_seconds_count') > sum(m0, 'ringhub_group_fanout_seconds_count')
    );
  }, `received +${K}, sent +${K * M} and the fan-out count to grow`).catch((e) => {
    throw new Error(
      `${e.message}: received ${sum(m0, 'ringhub_messages_received_total')} -> ${sum(m1, 'ringhub_messages_received_total')}, ` +
        `sent ${sum(m0, 'ringhub_messages_sent_total')} -> ${sum(m1, 'ringhub_messages_sent_total')}, ` +
        `fanout count ${sum(m0, 'ringhub_group_fanout_seconds_count')} -> ${sum(m1, 'ringhub_group_fanout_seconds_count')}`,
    );
  });
  // The chat hub's counters moved; by the sender's transport and protocol (WebSockets JSON).
  assert.ok(
    sum(m1, 'ringhub_messages_received_total', { hub: 'chat', transport: 'websockets', protocol: 'json' }) >=
      sum(m0, 'ringhub_messages_received_total', { hub: 'chat', transport: 'websockets', protocol: 'json' }) + K,
  );
  // Every kind of member had deliveries counted under its own labels.
  for (const [transport, protocol] of [['websockets', 'json'], ['websockets', 'messagepack'], ['sse', 'json'], ['longpolling', 'json'], ['longpolling', 'messagepack']]) {
    const n = members.filter((c) => c.transport.toLowerCase().replace('serversentevents', 'sse') === transport && c.protocol === protocol).length;
    const d = sum(m1, 'ringhub_messages_sent_total', { transport, protocol }) - sum(m0, 'ringhub_messages_sent_total', { transport, protocol });
    assert.ok(d >= K * n, `${transport} ${protocol}: ${d} deliveries >= ${K} * ${n}`);
  }
  for (const f of ['ringhub_hub_bytes_received_total', 'ringhub_hub_bytes_sent_total', 'ringhub_bytes_received_total', 'ringhub_bytes_sent_total']) {
    assert.ok(sum(m1, f) > sum(m0, f), `${f} grows`);
  }
  // Busy time may be taken once a second: wait for it.
  await until(
    async () => sum(await metrics(server.port), 'ringhub_loop_busy_seconds_total') > sum(m0, 'ringhub_loop_busy_seconds_total'),
    'ringhub_loop_busy_seconds_total to grow',
  );
  // Counters never go down.
  for (const s of m0.samples) {
    if (!/_total$|_count$|_sum$|_bucket$/.test(s.name)) continue;
    const later = m1.samples.find((x) => x.name === s.name && JSON.stringify(x.labels) === JSON.stringify(s.labels));
    assert.ok(later, `${s.name}${JSON.stringify(s.labels)} is still there`);
    assert.ok(later.value >= s.value, `${s.name}${JSON.stringify(s.labels)}: ${s.value} -> ${later.value}`);
  }

  // The histogram: le ascending, cumulative, +Inf last and equal to _count; _sum >= 0.
  const buckets = select(m1, 'ringhub_group_fanout_seconds_bucket');
  assert.ok(buckets.length >= 2);
  const les = buckets.map((b) => (b.labels.le === '+Inf' ? Infinity : Number(b.labels.le)));
  for (const le of les) assert.ok(!Number.isNaN(le), 'le is a number');
  const order = les.map((le, i) => [le, buckets[i].value]).sort((a, b) => a[0] - b[0]);
  assert.equal(order.at(-1)[0], Infinity, 'a +Inf bucket');
  for (let i = 1; i < order.length; i++) {
    assert.ok(order[i][0] > order[i - 1][0], 'no le twice');
    assert.ok(order[i][1] >= order[i - 1][1], `bucket le=${order[i][0]} (${order[i][1]}) >= le=${order[i - 1][0]} (${order[i - 1][1]})`);
  }
  assert.equal(order.at(-1)[1], sum(m1, 'ringhub_group_fanout_seconds_count'), '+Inf bucket == _count');
  assert.ok(sum(m1, 'ringhub_group_fanout_seconds_sum') >= 0);
  assert.ok(order[0][1] <= order.at(-1)[1]);
});

test('labels stay bounded: no group name nor connection id in /metrics; ringhub_groups counts groups', async () => {
  const c = fleet[0];
  const m0 = await metrics(server.port);
  const g0 = sum(m0, 'ringhub_groups');
  const tag = crypto.randomBytes(6).toString('hex');
  const names = Array.from({ length: 50 }, (_, i) => `grp${tag}n${i}`);
  for (const g of names) assert.equal(await c.invoke('JoinGroup', g), null);
  for (const g of names.slice(0, 10)) assert.equal(await c.invoke('SendToGroup', g, 'msg', g), null);
  await until(() => c.inbox.some(([x]) => x === names[9]), 'the last group message');
  let m;
  await until(async () => {
    m = await metrics(server.port);
    return sum(m, 'ringhub_groups') === g0 + 50;
  }, `ringhub_groups to be ${g0} + 50`).catch((e) => {
    throw new Error(`${e.message}: it is ${sum(m, 'ringhub_groups')}`);
  });
  assert.ok(!m.text.includes(tag), 'no group name appears in /metrics');
  for (const f of fleet) assert.ok(!m.text.includes(f.id), `connection id ${f.id} does not appear`);
  for (const s of m.samples) for (const l of Object.keys(s.labels)) assert.ok(LABELS.has(l), l);
  for (const g of names) assert.equal(await c.invoke('LeaveGroup', g), null);
  await until(async () => sum(await metrics(server.port), 'ringhub_groups') === g0, `ringhub_groups back to ${g0}`);
});

test('hub labels are bounded: beyond 32 hub names a shard sees, "other"', async () => {
  const s = await startServer(['--shards', '2']);
  others.push(s);
  const tag = crypto.randomBytes(4).toString('hex');
  const sockets = [];
  const HUBS = 80; // more than 2 shards x 32 names
  try {
    for (let i = 0; i < HUBS; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${s.port}/hubs/h${tag}x${i}`);
      sockets.push(ws);
      const got = [];
      ws.on('message', (d) => got.push(String(d)));
      await new Promise((resolve, reject) => {
        ws.on('open', resolve);
        ws.on('error', reject);
      });
      ws.send(`{"protocol":"json","version":1}${RS}`);
      await until(() => got.length > 0, 'the handshake answer');
      assert.equal(got[0], `{}${RS}`);
    }
    let m;
    await until(async () => {
      m = await metrics(s.port);
      return sum(m, 'ringhub_sessions', { transport: 'websockets', protocol: 'json' }) === HUBS;
    }, `${HUBS} WebSocket JSON sessions`);
    const hubs = new Set(m.samples.filter((x) => 'hub' in x.labels).map((x) => x.labels.hub));
    assert.ok(hubs.has('other'), 'hubs beyond the bound are "other"');
    assert.ok(hubs.size <= 2 * 32 + 1, `${hubs.size} hub label values`);
    for (const h of hubs) assert.ok(h === 'other' || h.startsWith(`h${tag}x`), h);
    const r = await promtool(m.text);
    assert.equal(r.code, 0, `promtool:\n${r.out}`);
  } finally {
    for (const ws of sockets) ws.close();
  }
});

test('a rate-limit close counts in ringhub_closes_total{reason="rate"}', async () => {
  const s = await startServer(['--shards', '2', '--message-rate', '5', '--message-burst', '5']);
  others.push(s);
  const m0 = await metrics(s.port);
  const before = Object.fromEntries(select(m0, 'ringhub_closes_total').map((x) => [x.labels.reason, x.value]));
  assert.equal(before.rate, 0);
  const bystander = await new Client(s).start();
  extraClients.push(bystander);
  const flooder = await new Client(s).start();
  extraClients.push(flooder);
  for (let i = 0; i < 200; i++) flooder.connection.send('Echo', i).catch(() => {});
  assert.match(await flooder.closed, /more than 5 messages per second/);
  await until(async () => sum(await metrics(s.port), 'ringhub_closes_total', { reason: 'rate' }) === 1, 'closes_total{reason="rate"} 1');
  const m1 = await metrics(s.port);
  for (const r of ['too_large', 'handshake_timeout', 'slow_consumer', 'kicked']) {
    assert.equal(sum(m1, 'ringhub_closes_total', { reason: r }), before[r], `${r} did not move`);
  }
  assert.equal(await bystander.invoke('Echo', 'still here'), 'still here');
});

async function get(port, p) {
  const res = await fetch(`http://127.0.0.1:${port}${p}`);
  return { status: res.status, body: (await res.text()).trim(), type: res.headers.get('content-type') };
}

test('/healthz and /readyz answer 200', async () => {
  const h = await get(server.port, '/healthz');
  assert.equal(h.status, 200);
  assert.equal(h.body, 'ok');
  const r = await get(server.port, '/readyz');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'ready');
});

async function freePort() {
  const srv = net.createServer();
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

test('--metrics-port: /metrics is served there and is 404 on the main port; health on both', async () => {
  const port = await freePort();
  const s = await startServer(['--shards', '2', '--metrics-port', String(port)]);
  others.push(s);
  const c = await new Client(s).start();
  extraClients.push(c);
  const m = await metrics(port);
  assert.equal(sum(m, 'ringhub_up'), 1);
  assert.equal(sum(m, 'ringhub_sessions', { transport: 'websockets', protocol: 'json' }), 1);
  const main = await get(s.port, '/metrics');
  assert.equal(main.status, 404, '/metrics is not on the main port');
  for (const p of [s.port, port]) {
    assert.deepEqual([(await get(p, '/healthz')).status, (await get(p, '/healthz')).body], [200, 'ok'], `/healthz on ${p}`);
    assert.deepEqual([(await get(p, '/readyz')).status, (await get(p, '/readyz')).body], [200, 'ready'], `/readyz on ${p}`);
  }
  // The metrics port shows the main port's traffic.
  assert.equal(await c.invoke('Echo', 'x'), 'x');
  await until(async () => sum(await metrics(port), 'ringhub_messages_received_total') >= 1, 'a message counted');
});
