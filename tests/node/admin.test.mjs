// The admin socket (issue 7) through ringhub-ctl and raw Unix-socket clients, against the real
// ringhub binary with 2 shards and a fleet of official SignalR clients connected: WebSockets
// (JSON and MessagePack), Server-Sent Events and long polling, in hubs 'chat' and 'other', some
// with users (?user=, the server runs without a key), members of groups, plus one plain
// EventSource stream. Every command is checked against what the test made: help, stats, shards,
// connections, conn, groups, group, kick, loglevel, config, drain; then the line protocol
// (quoting, flags anywhere, JSON one line, text ending in an empty line, errors that keep the
// session, too-long and binary lines that end only their own session), the socket's mode, uid
// checks (SO_PEERCRED, --admin-uids), stale and live socket files, the default path, and
// ringhub-ctl itself (--help, cannot connect, -p, $RINGHUB_ADMIN_SOCKET).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import WebSocket from 'ws';
import EventSource from 'eventsource';
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { OwnSocketHttpClient, until as waitUntil } from './helpers.mjs';

const RS = '\u001e';
const CTL =
  process.env.RINGHUB_CTL ?? path.join(path.dirname(process.env.RINGHUB ?? '.'), '..', 'tools', 'ringhub-ctl');
const COMMANDS = ['help', 'stats', 'shards', 'connections', 'conn', 'groups', 'group', 'kick', 'drain', 'loglevel', 'config', 'nodes', 'redis'];
const SHARD_FIELDS = [
  'connections',
  'sessions',
  'groups',
  'messages_in',
  'messages_out',
  'messages_in_per_s',
  'messages_out_per_s',
  'bytes_in',
  'bytes_out',
  'send_queue_bytes',
  'closes',
  'drops',
];
const CLOSE_REASONS = ['rate', 'too_large', 'handshake_timeout', 'slow_consumer', 'kicked', 'client_timeout'];

// Sockets live in a directory others may enter (the uid tests connect as uid 65534).
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rh-admin-'));
fs.chmodSync(tmp, 0o755);
let sockets = 0;
const socketPath = (name = 'admin') => path.join(tmp, `${name}-${++sockets}.sock`);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Generous: the machine may be busy.
const until = (condition, what, ms = 20000) => waitUntil(condition, what, ms);

// ---- servers -----------------------------------------------------------------------------------

const servers = new Set();

// ringhub as server.mjs starts it (2 shards, an admin socket of its own unless @socket is null:
// then no --admin-socket flag at all), with its log kept and `exited`: a promise of its exit code
// (or signal name). env: extra environment (RINGHUB_ACCESS_KEY is dropped unless given).
async function launch(flags = [], { env = {}, socket = socketPath() } = {}) {
  const binary = process.env.RINGHUB;
  if (!binary) throw new Error('set RINGHUB to the ringhub binary');
  const extra = (process.env.RINGHUB_ARGS ?? '').split(' ').filter(Boolean);
  const childEnv = { ...process.env, ...env };
  if (!('RINGHUB_ACCESS_KEY' in env)) delete childEnv.RINGHUB_ACCESS_KEY;
  const own = socket === null ? [] : ['--admin-socket', socket];
  const child = spawn(
    binary,
    ['--listen', '127.0.0.1', '--port', '0', ...extra, '--shards', '2', ...own, ...flags],
    { stdio: ['ignore', 'inherit', 'pipe'], env: childEnv },
  );
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve(signal ?? code));
  });
  const log = [];
  const lines = readline.createInterface({ input: child.stderr });
  lines.on('line', (line) => {
    log.push(line);
    process.stderr.write(line + '\n');
  });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('ringhub did not start listening')), 15000);
    exited.then((code) => reject(new Error(`ringhub exited with ${code} at start:\n${log.join('\n')}`)));
    lines.on('line', (line) => {
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
  const s = {
    port,
    pid: child.pid,
    socket,
    log,
    exited,
    url: (hub) => `http://127.0.0.1:${port}/hubs/${hub}`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      servers.delete(s);
      return exited;
    },
  };
  servers.add(s);
  return s;
}

// ---- ringhub-ctl -------------------------------------------------------------------------------

// Runs ringhub-ctl with @args; resolves to {code, stdout, stderr, out (both)}.
function run(args, { uid, env = {} } = {}) {
  const command = uid === undefined ? CTL : 'setpriv';
  const argv = uid === undefined ? args : [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', CTL, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: signal ?? code, stdout, stderr, out: stdout + stderr });
    });
  });
}

const show = (r) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

// ringhub-ctl -s SOCKET ARGS... (text); asserts exit 0 and returns stdout.
async function ctlText(s, ...args) {
  const r = await run(['-s', s.socket, ...args]);
  assert.equal(r.code, 0, `ringhub-ctl ${args.join(' ')}: ${show(r)}`);
  return r.stdout;
}

// ringhub-ctl -s SOCKET --json ARGS...: asserts exit 0 and one line holding {"ok":true,...}.
async function ctl(s, ...args) {
  const r = await run(['-s', s.socket, '--json', ...args]);
  assert.equal(r.code, 0, `ringhub-ctl --json ${args.join(' ')}: ${show(r)}`);
  assert.match(r.stdout, /^[^\n]+\n?$/, `one line of JSON for ${args.join(' ')}: ${show(r)}`);
  const reply = JSON.parse(r.stdout);
  assert.equal(reply.ok, true, r.stdout);
  return reply;
}

// An error reply: exit 1 and @pattern in what it printed. With --json the line is
// {"ok":false,"error":...}, when it is printed at all.
async function ctlFails(s, args, pattern, { json = false } = {}) {
  const r = await run(['-s', s.socket, ...(json ? ['--json'] : []), ...args]);
  assert.equal(r.code, 1, `ringhub-ctl ${args.join(' ')} fails: ${show(r)}`);
  assert.match(r.out, pattern, `ringhub-ctl ${args.join(' ')}: ${show(r)}`);
  // The JSON error line, wherever ringhub-ctl printed it.
  r.reply = null;
  if (json) {
    const line = r.out.split('\n').find((l) => l.startsWith('{'));
    assert.ok(line, `a JSON error line: ${show(r)}`);
    r.reply = JSON.parse(line);
    assert.equal(r.reply.ok, false);
    assert.equal(typeof r.reply.error, 'string');
  }
  return r;
}

// ---- raw admin sessions ------------------------------------------------------------------------

// A raw Unix-socket session: send(text), line() (the next line, without its LF), reply() (text
// lines up to the empty line), closed (resolves once the server closed it), all (bytes so far).
function rawAdmin(socket) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socket);
    let buffer = '';
    const session = {
      sock,
      all: '',
      closed: new Promise((done) => sock.on('close', () => done())),
      send: (text) => sock.write(text),
      async line(ms = 20000) {
        await until(() => buffer.includes('\n') || sock.destroyed, 'a line from the admin socket', ms);
        const i = buffer.indexOf('\n');
        if (i < 0) throw new Error(`admin session closed; had ${JSON.stringify(buffer)}`);
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 1);
        return line;
      },
      async reply() {
        const lines = [];
        for (;;) {
          const line = await session.line();
          if (line === '') return lines;
          lines.push(line);
        }
      },
      async json(command) {
        session.send(`${command}\n`);
        return JSON.parse(await session.line());
      },
      pending: () => buffer,
    };
    sock.on('data', (d) => {
      buffer += d.toString('latin1');
      session.all += d.toString('latin1');
    });
    sock.on('error', () => {});
    sock.once('connect', () => resolve(session));
    sock.once('error', reject);
  });
}

// ---- clients -----------------------------------------------------------------------------------

const shardOf = (id) => Number((Buffer.from(id, 'base64url').readBigUInt64BE(0) >> 44n) & 0xffn);

// One official client (always negotiated, on a TCP connection of its own per request so that
// the kernel spreads them over the shards) and what happened to it.
class Client {
  constructor(srv, { hub = 'chat', transport = 'WebSockets', protocol = 'json', user, reconnect = false }) {
    const url = srv.url(hub) + (user === undefined ? '' : `?user=${encodeURIComponent(user)}`);
    const builder = new signalR.HubConnectionBuilder()
      .withUrl(url, {
        transport: signalR.HttpTransportType[transport],
        httpClient: new OwnSocketHttpClient(signalR.NullLogger.instance),
      })
      .configureLogging(signalR.LogLevel.None);
    if (reconnect) builder.withAutomaticReconnect([0, 60000]);
    if (protocol === 'messagepack') builder.withHubProtocol(new MessagePackHubProtocol());
    Object.assign(this, { hub, transport, protocol, user: user ?? '', groups: new Set() });
    this.connection = builder.build();
    this.inbox = [];
    this.closed = false;
    this.closeError = undefined;
    this.reconnecting = undefined;
    this.connection.on('msg', (...args) => this.inbox.push(args));
    this.connection.onclose((error) => {
      this.closed = true;
      this.closeError = error;
    });
    this.connection.onreconnecting((error) => {
      this.reconnecting = error ?? new Error('reconnecting without an error');
    });
  }

  async start() {
    await this.connection.start();
    this.id = this.connection.connectionId;
    assert.ok(this.id, 'a negotiated connection has an id');
    this.shard = shardOf(this.id);
    return this;
  }

  async join(group) {
    assert.equal(await this.connection.invoke('JoinGroup', group), null);
    this.groups.add(group);
  }

  async leave(group) {
    assert.equal(await this.connection.invoke('LeaveGroup', group), null);
    this.groups.delete(group);
  }

  invoke(...args) {
    return this.connection.invoke(...args);
  }

  async stop() {
    await this.connection.stop().catch(() => {});
  }
}

// ---- the fleet ---------------------------------------------------------------------------------

let server; // the fleet's server
let fleet; // its clients
let stream; // a plain EventSource stream (user 'erin')

// What the fleet is: one of each kind at least, then WebSockets JSON clients in 'chat' until both
// shards hold some of the fleet.
const FLEET = [
  { hub: 'chat', transport: 'WebSockets', protocol: 'json', user: 'alice' },
  { hub: 'chat', transport: 'WebSockets', protocol: 'json', user: 'alice' },
  { hub: 'chat', transport: 'WebSockets', protocol: 'json' },
  { hub: 'chat', transport: 'WebSockets', protocol: 'messagepack', user: 'bob' },
  { hub: 'chat', transport: 'WebSockets', protocol: 'messagepack' },
  { hub: 'chat', transport: 'ServerSentEvents', protocol: 'json', user: 'carol' },
  { hub: 'chat', transport: 'LongPolling', protocol: 'json', user: 'dave' },
  { hub: 'other', transport: 'WebSockets', protocol: 'json', user: 'alice' },
];

const inHub = (hub) => fleet.filter((c) => c.hub === hub);
const sortedIds = (list) => list.map((c) => c.id).sort();

// The groups the fleet is in: chat/room (every chat client), chat/ws-room (the chat WebSockets
// JSON ones), other/room.
function fleetGroups() {
  const groups = new Map();
  for (const c of fleet) {
    for (const g of c.groups) {
      const key = `${c.hub}\u0000${g}`;
      if (!groups.has(key)) groups.set(key, { hub: c.hub, group: g, members: [] });
      groups.get(key).members.push(c);
    }
  }
  return [...groups.values()].sort((a, b) =>
    a.hub === b.hub ? (a.group < b.group ? -1 : a.group > b.group ? 1 : 0) : a.hub < b.hub ? -1 : 1,
  );
}

before(async () => {
  server = await launch();
  fleet = [];
  for (const spec of FLEET) fleet.push(await new Client(server, spec).start());
  while (new Set(fleet.map((c) => c.shard)).size < 2) {
    assert.ok(fleet.length < 60, 'the fleet did not cover both shards');
    fleet.push(await new Client(server, { hub: 'chat', transport: 'WebSockets', protocol: 'json', user: 'extra' }).start());
  }
  for (const c of fleet) {
    await c.join('room');
    if (c.hub === 'chat' && c.transport === 'WebSockets' && c.protocol === 'json') await c.join('ws-room');
  }
  stream = new EventSource(`http://127.0.0.1:${server.port}/api/events/erin`);
  await new Promise((resolve, reject) => {
    stream.onopen = resolve;
    stream.onerror = reject;
  });
});

after(async () => {
  try {
    stream?.close();
    for (const c of fleet ?? []) await c.stop();
    for (const s of [...servers]) {
      const code = await s.stop();
      if (s === server) assert.equal(code, 0, 'the fleet server stops cleanly with nothing left allocated');
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

// Sends @count messages to chat/room from fleet[0] and waits until every member has them.
async function traffic(count, tag) {
  const members = inHub('chat');
  const before = members.map((c) => c.inbox.length);
  for (let i = 0; i < count; i++) {
    assert.equal(await fleet[0].invoke('SendToGroup', 'room', 'msg', tag, i), null);
  }
  await until(
    () => members.every((c, i) => c.inbox.length >= before[i] + count),
    `every member of chat/room to get ${count} "${tag}" messages`,
  );
  return members.length;
}

// Every fleet client is connected and gets a message sent to its hub's 'room' now.
async function fleetAlive(tag) {
  for (const c of fleet) assert.equal(c.closed, false, `fleet client ${c.id} (${c.transport}) is connected`);
  for (const hub of ['chat', 'other']) {
    const members = inHub(hub);
    const sender = members[0];
    assert.equal(await sender.invoke('SendToGroup', 'room', 'msg', tag), null);
    await until(
      () => members.every((c) => c.inbox.some(([t]) => t === tag)),
      `every ${hub} fleet client to get "${tag}"`,
    );
  }
}

const num = (x) => typeof x === 'number' && Number.isFinite(x) && x >= 0;

function sessionsOf(list) {
  const s = {
    websockets: { json: 0, messagepack: 0 },
    sse: { json: 0, messagepack: 0 },
    longpolling: { json: 0, messagepack: 0 },
    eventsource: { json: 0, messagepack: 0 },
  };
  const key = { WebSockets: 'websockets', ServerSentEvents: 'sse', LongPolling: 'longpolling' };
  for (const c of list) s[key[c.transport]][c.protocol]++;
  return s;
}

// ---- help --------------------------------------------------------------------------------------

test('help lists the 13 commands, as text and as JSON', async () => {
  const reply = await ctl(server, 'help');
  assert.ok(Array.isArray(reply.commands));
  assert.deepEqual(reply.commands.map((c) => c.name).sort(), [...COMMANDS].sort());
  for (const c of reply.commands) {
    assert.equal(typeof c.usage, 'string');
    assert.ok(c.usage.startsWith(c.name), `usage of ${c.name}: ${c.usage}`);
    assert.equal(typeof c.summary, 'string');
    assert.ok(c.summary.length > 0, `summary of ${c.name}`);
  }
  const text = await ctlText(server, 'help');
  for (const name of COMMANDS) assert.match(text, new RegExp(`^${name}\\b`, 'm'), `help text names ${name}`);
  assert.doesNotMatch(text, /\n\n$/, 'ringhub-ctl drops the empty line that ends the reply');
});

// ---- stats -------------------------------------------------------------------------------------

function checkShardFields(entry, what) {
  for (const f of SHARD_FIELDS) assert.ok(f in entry, `${what} has ${f}`);
  for (const f of ['connections', 'groups', 'messages_in', 'messages_out', 'messages_in_per_s', 'messages_out_per_s', 'bytes_in', 'bytes_out', 'send_queue_bytes']) {
    assert.ok(num(entry[f]), `${what}.${f} is a number >= 0: ${entry[f]}`);
  }
  assert.deepEqual(Object.keys(entry.sessions).sort(), ['eventsource', 'longpolling', 'sse', 'websockets']);
  for (const t of Object.keys(entry.sessions)) {
    assert.deepEqual(Object.keys(entry.sessions[t]).sort(), ['json', 'messagepack'], `${what}.sessions.${t}`);
    for (const p of ['json', 'messagepack']) assert.ok(Number.isInteger(entry.sessions[t][p]));
  }
  assert.equal(entry.sessions.sse.messagepack, 0);
  assert.equal(entry.sessions.eventsource.messagepack, 0);
  assert.deepEqual(Object.keys(entry.closes).sort(), [...CLOSE_REASONS].sort(), `${what}.closes`);
  assert.deepEqual(Object.keys(entry.drops).sort(), ['bytes', 'frames', 'refused_joins'], `${what}.drops`);
  for (const v of [...Object.values(entry.closes), ...Object.values(entry.drops)]) assert.ok(Number.isInteger(v) && v >= 0);
}

// Sums the shard entries field by field (nested objects too).
function sumShards(shards) {
  const add = (a, b) => {
    if (typeof b === 'number') return (a ?? 0) + b;
    const o = { ...(a ?? {}) };
    for (const [k, v] of Object.entries(b)) o[k] = add(o[k], v);
    return o;
  };
  let total;
  for (const s of shards) {
    const { shard, cpu, ...rest } = s;
    total = add(total, rest);
  }
  return total;
}

test('stats: totals and 2 shards, sessions exactly as made, messages counted', async () => {
  const s0 = await ctl(server, 'stats');
  assert.equal(s0.node, 0);
  assert.ok(num(s0.uptime_s), `uptime_s ${s0.uptime_s}`);
  assert.equal(typeof s0.io, 'string');
  assert.ok(s0.io.length > 0, 'io names the io_uring path');
  assert.equal(s0.shards.length, 2, 'one entry per shard');
  assert.deepEqual(s0.shards.map((x) => x.shard), [0, 1]);
  for (const entry of s0.shards) {
    assert.ok(Number.isInteger(entry.cpu) && entry.cpu >= 0, `cpu ${entry.cpu}`);
    checkShardFields(entry, `shard ${entry.shard}`);
  }
  checkShardFields(s0.totals, 'totals');
  assert.ok(!('shard' in s0.totals) && !('cpu' in s0.totals), 'totals have no shard nor cpu');

  // Sessions per transport and protocol: exactly the fleet (hubs together) and the one stream.
  const expected = sessionsOf(fleet);
  expected.eventsource.json = 1;
  assert.deepEqual(s0.totals.sessions, expected);
  // Totals are the sum of the shards (one snapshot).
  const sum = sumShards(s0.shards);
  assert.deepEqual(s0.totals.sessions, sum.sessions);
  assert.equal(s0.totals.groups, sum.groups);
  assert.equal(s0.totals.connections, sum.connections);
  // TCP connections: every WebSocket and SSE stream, and the EventSource, at least.
  const held = fleet.filter((c) => c.transport !== 'LongPolling').length + 1;
  assert.ok(s0.totals.connections >= held, `connections ${s0.totals.connections} >= ${held}`);
  // chat/room, chat/ws-room, other/room.
  assert.equal(s0.totals.groups, fleetGroups().length);

  // Traffic: N messages in, N * members deliveries out.
  const N = 12;
  const members = await traffic(N, 'stats');
  let s1;
  await until(async () => {
    s1 = await ctl(server, 'stats');
    return (
      s1.totals.messages_in >= s0.totals.messages_in + N &&
      s1.totals.messages_out >= s0.totals.messages_out + N * members
    );
  }, `messages_in to grow by ${N} and messages_out by ${N * members}`);
  assert.ok(s1.totals.bytes_in > s0.totals.bytes_in, 'bytes_in grows');
  assert.ok(s1.totals.bytes_out > s0.totals.bytes_out, 'bytes_out grows');
  assert.ok(s1.uptime_s >= s0.uptime_s);
  const sum1 = sumShards(s1.shards);
  for (const f of ['messages_in', 'messages_out', 'bytes_in', 'bytes_out']) {
    assert.equal(s1.totals[f], sum1[f], `totals.${f} is the sum of the shards`);
  }
  assert.deepEqual(s1.totals.closes, sum1.closes);
  assert.deepEqual(s1.totals.drops, sum1.drops);
  // Nothing was closed by a limit nor dropped.
  for (const r of ['rate', 'too_large', 'handshake_timeout', 'slow_consumer']) assert.equal(s1.totals.closes[r], 0, r);
  assert.deepEqual(s1.totals.drops, { bytes: 0, frames: 0, refused_joins: 0 });

  // The text form: the same numbers, in "key: value" lines or tables.
  const text = await ctlText(server, 'stats');
  assert.ok(!text.trim().startsWith('{'), 'text by default');
  assert.match(text, /conn/i);
  assert.match(text, /^0\s/m, 'a row for shard 0');
  assert.match(text, /^1\s/m, 'a row for shard 1');
  assert.match(text, /total/i);
  assert.match(text, new RegExp(`\\b${expected.websockets.json}\\b`));
  assert.match(text, new RegExp(`\\b${s1.totals.groups}\\b`));
  // --json as the command's flag, anywhere after the command word, gives the same JSON.
  const again = JSON.parse(await ctlText(server, 'stats', '--json'));
  assert.equal(again.ok, true);
  assert.deepEqual(again.totals.sessions, expected);
});

test('stats: messages_in/out_per_s show the last second of traffic', async () => {
  // Keep sending for a while; some sample of the per-second rates must see it.
  let seen = false;
  const deadline = Date.now() + 20000;
  while (!seen && Date.now() < deadline) {
    // Paced below --message-rate (1,000/s) so the sender is not closed for flooding.
    for (let i = 0; i < 20; i++) await fleet[0].invoke('SendToGroup', 'ws-room', 'msg', 'rate', i);
    await sleep(50);
    const s = await ctl(server, 'stats');
    seen = s.totals.messages_in_per_s > 0 && s.totals.messages_out_per_s > 0;
  }
  assert.ok(seen, 'messages_in_per_s and messages_out_per_s went above 0 while sending');
});

// ---- shards ------------------------------------------------------------------------------------

test('shards: one entry per shard with its loop figures', async () => {
  const reply = await ctl(server, 'shards');
  assert.equal(reply.shards.length, 2);
  assert.deepEqual(reply.shards.map((x) => x.shard), [0, 1]);
  for (const s of reply.shards) {
    assert.ok(Number.isInteger(s.cpu) && s.cpu >= 0);
    assert.equal(typeof s.io, 'string');
    for (const f of ['connections', 'ring_depth', 'blobs_in', 'wakes_received']) {
      assert.ok(Number.isInteger(s[f]) && s[f] >= 0, `shard ${s.shard} ${f}: ${s[f]}`);
    }
    assert.ok(typeof s.loop_utilization === 'number' && s.loop_utilization >= 0 && s.loop_utilization <= 1);
  }
  // Both shards hold fleet clients, so both hold TCP connections.
  const onShard = (n) => fleet.filter((c) => c.shard === n && c.transport !== 'LongPolling').length;
  for (const s of reply.shards) {
    assert.ok(s.connections >= onShard(s.shard), `shard ${s.shard}: ${s.connections} >= ${onShard(s.shard)}`);
  }
  // Cross-shard questions travel as blobs: after a few admin questions both shards received some.
  assert.ok(reply.shards.some((s) => s.blobs_in > 0), 'blobs_in counts the admin questions');
  const text = await ctlText(server, 'shards');
  assert.match(text, /loop/i);
});

// ---- connections -------------------------------------------------------------------------------

function checkEntry(entry, c) {
  assert.equal(entry.id, c.id);
  assert.equal(entry.hub, c.hub, `hub of ${c.id}`);
  assert.equal(entry.transport, c.transport, `transport of ${c.id}`);
  assert.equal(entry.protocol, c.protocol, `protocol of ${c.id}`);
  assert.equal(entry.user, c.user, `user of ${c.id}`);
  assert.equal(entry.shard, c.shard, `shard of ${c.id}`);
  assert.ok(num(entry.queue_bytes), `queue_bytes of ${c.id}`);
  assert.ok(num(entry.age_s), `age_s of ${c.id}`);
}

test('connections: every fleet connection with its fields; --hub filters; --limit truncates', async () => {
  const all = await ctl(server, 'connections');
  assert.equal(all.truncated, false);
  assert.equal(all.total, all.connections.length);
  const ids = all.connections.map((e) => e.id);
  assert.equal(new Set(ids).size, ids.length, 'no connection twice');
  for (const c of fleet) {
    const entry = all.connections.find((e) => e.id === c.id);
    assert.ok(entry, `${c.transport} ${c.protocol} client ${c.id} is listed`);
    checkEntry(entry, c);
    assert.equal(entry.groups, c.groups.size, `groups of ${c.id} (named groups only, not the user)`);
  }
  // Anything else listed is not a hub connection of the fleet's hubs.
  for (const e of all.connections) {
    if (!fleet.some((c) => c.id === e.id)) assert.ok(!['chat', 'other'].includes(e.hub), JSON.stringify(e));
    assert.ok(['WebSockets', 'ServerSentEvents', 'LongPolling'].includes(e.transport), e.transport);
  }

  const chat = await ctl(server, 'connections', '--hub', 'chat');
  assert.deepEqual(chat.connections.map((e) => e.id).sort(), sortedIds(inHub('chat')));
  assert.equal(chat.total, inHub('chat').length);
  assert.equal(chat.truncated, false);
  const other = await ctl(server, 'connections', '--hub=other');
  assert.deepEqual(other.connections.map((e) => e.id), sortedIds(inHub('other')));
  assert.equal(other.total, 1);
  const none = await ctl(server, 'connections', '--hub', 'nosuchhub');
  assert.deepEqual(none.connections, []);
  assert.equal(none.total, 0);

  const two = await ctl(server, 'connections', '--limit', '2');
  assert.equal(two.connections.length, 2);
  assert.equal(two.truncated, true);
  assert.equal(two.total, all.total);
  const one = await ctl(server, 'connections', '--limit=1', '--hub', 'chat');
  assert.equal(one.connections.length, 1);
  assert.equal(one.truncated, true);
  assert.equal(one.total, inHub('chat').length);
  assert.ok(inHub('chat').some((c) => c.id === one.connections[0].id));
  // A limit equal to the total is not truncated.
  const exact = await ctl(server, 'connections', '--hub', 'chat', '--limit', String(inHub('chat').length));
  assert.equal(exact.truncated, false);
  assert.equal(exact.connections.length, inHub('chat').length);

  // Text: one row per connection, the ids in it.
  const text = await ctlText(server, 'connections', '--hub', 'chat');
  for (const c of inHub('chat')) assert.ok(text.includes(c.id), `text lists ${c.id}`);
  assert.ok(!text.includes(inHub('other')[0].id), 'text filtered by hub');

  // Bad arguments: error replies.
  await ctlFails(server, ['connections', '--limit', '0'], /error|limit/i, { json: true });
  await ctlFails(server, ['connections', '--limit', '100001'], /error|limit/i);
  await ctlFails(server, ['connections', '--limit', 'ten'], /error|limit/i);
  await ctlFails(server, ['connections', '--limit'], /error/i);
  await ctlFails(server, ['connections', '--bogus'], /error/i);
  await ctlFails(server, ['connections', 'extra'], /error/i);
});

// ---- conn --------------------------------------------------------------------------------------

test('conn <id>: transport, protocol, user, group names, shard and peer of each client', async () => {
  for (const c of fleet) {
    const { connection: e } = await ctl(server, 'conn', c.id);
    checkEntry(e, c);
    assert.ok(Array.isArray(e.groups), 'conn lists the group names');
    assert.deepEqual([...e.groups].sort(), [...c.groups].sort(), `groups of ${c.id}`);
    if (c.transport === 'LongPolling') assert.equal(e.peer, '', 'no peer for long polling');
    else assert.match(e.peer, /^127\.0\.0\.1:\d+$/, `peer of ${c.transport} ${c.id}`);
  }
  // The text form names the id, the user and the groups.
  const alice = fleet.find((c) => c.user === 'alice' && c.hub === 'chat');
  const text = await ctlText(server, 'conn', alice.id);
  assert.ok(text.includes(alice.id));
  assert.match(text, /alice/);
  assert.match(text, /ws-room/);

  // A raw WebSocket of our own (negotiated): its peer is exactly our socket's local address.
  const n = await (await fetch(`${server.url('chat')}/negotiate?negotiateVersion=1`, { method: 'POST' })).json();
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/hubs/chat?id=${n.connectionToken}`);
  const got = [];
  ws.on('message', (d) => got.push(String(d)));
  await new Promise((resolve, reject) => {
    ws.on('open', resolve);
    ws.on('error', reject);
  });
  ws.send(`{"protocol":"json","version":1}${RS}`);
  await until(() => got.length > 0, 'the handshake answer');
  try {
    const { connection: e } = await ctl(server, 'conn', n.connectionId);
    assert.equal(e.peer, `127.0.0.1:${ws._socket.localPort}`);
    assert.equal(e.transport, 'WebSockets');
    assert.equal(e.user, '');
    assert.deepEqual(e.groups, []);
    assert.equal(e.shard, shardOf(n.connectionId));
  } finally {
    ws.close();
  }
  await until(async () => (await run(['-s', server.socket, 'conn', n.connectionId])).code === 1, 'the raw WebSocket to be gone');

  // Unknown ids and bad arguments.
  const unknown = 'AAAAAAAAAAAAAAAAAAAAAA';
  const r = await ctlFails(server, ['conn', unknown], new RegExp(`no connection ${unknown}`), { json: true });
  assert.deepEqual(r.reply, { ok: false, error: `no connection ${unknown}` });
  await ctlFails(server, ['conn', 'not-an-id'], /no connection not-an-id/);
  await ctlFails(server, ['conn'], /error/i);
  await ctlFails(server, ['conn', fleet[0].id, fleet[1].id], /error/i);
});

// ---- groups and group --------------------------------------------------------------------------

test('groups and group: names, member counts per shard, owner, messages', async () => {
  const expected = fleetGroups();
  const reply = await ctl(server, 'groups');
  assert.equal(reply.truncated, false);
  assert.equal(reply.total, expected.length);
  assert.deepEqual(
    reply.groups.map((g) => [g.hub, g.group, g.members, g.shards]),
    expected.map((g) => [g.hub, g.group, g.members.length, new Set(g.members.map((c) => c.shard)).size]),
    'sorted by hub then group, members and shards as made',
  );
  const chat = await ctl(server, 'groups', '--hub', 'chat');
  assert.deepEqual(chat.groups.map((g) => g.group), ['room', 'ws-room']);
  assert.equal(chat.total, 2);
  const limited = await ctl(server, 'groups', '--limit', '1');
  assert.equal(limited.groups.length, 1);
  assert.equal(limited.truncated, true);
  assert.equal(limited.total, expected.length);
  assert.deepEqual([limited.groups[0].hub, limited.groups[0].group], [expected[0].hub, expected[0].group]);

  const N = 5;
  const before = await ctl(server, 'group', 'chat', 'room');
  await traffic(N, 'group');
  for (const g of expected) {
    const { group } = await ctl(server, 'group', g.hub, g.group);
    assert.equal(group.hub, g.hub);
    assert.equal(group.group, g.group);
    assert.equal(group.members, g.members.length);
    assert.ok([0, 1].includes(group.owner_shard), `owner_shard ${group.owner_shard}`);
    const perShard = [0, 1]
      .map((shard) => ({ shard, members: g.members.filter((c) => c.shard === shard).length }))
      .filter((x) => x.members > 0);
    assert.deepEqual(group.shards, perShard, `${g.hub}/${g.group} members per shard`);
    assert.ok(num(group.messages) && num(group.messages_per_s));
    assert.equal(typeof group.path, 'string');
  }
  await until(
    async () => (await ctl(server, 'group', 'chat', 'room')).group.messages >= before.group.messages + N,
    `chat/room messages to grow by ${N}`,
  );
  const text = await ctlText(server, 'group', 'chat', 'ws-room');
  assert.match(text, /ws-room/);

  // A name with spaces, quotes and a backslash: ringhub-ctl quotes it, the server unquotes it.
  const odd = 'big room "q" \\ end';
  const joiner = inHub('chat')[2];
  await joiner.join(odd);
  try {
    const { group } = await ctl(server, 'group', 'chat', odd);
    assert.equal(group.group, odd);
    assert.equal(group.members, 1);
    assert.deepEqual(group.shards, [{ shard: joiner.shard, members: 1 }]);
    const listed = await ctl(server, 'groups', '--hub', 'chat');
    assert.ok(listed.groups.some((g) => g.group === odd), 'groups lists the odd name as it is');
    const { connection } = await ctl(server, 'conn', joiner.id);
    assert.ok(connection.groups.includes(odd));
  } finally {
    await joiner.leave(odd);
  }
  await ctlFails(server, ['group', 'chat', odd], /no group/);

  // Unknown groups, groups of another hub, bad arguments.
  const r = await ctlFails(server, ['group', 'chat', 'nosuch'], /no group nosuch in hub chat/, { json: true });
  assert.deepEqual(r.reply, { ok: false, error: 'no group nosuch in hub chat' });
  await ctlFails(server, ['group', 'other', 'ws-room'], /no group ws-room in hub other/);
  await ctlFails(server, ['group', 'chat'], /error/i);
  await ctlFails(server, ['group', 'chat', 'room', 'extra'], /error/i);
  await ctlFails(server, ['groups', '--limit', '-1'], /error/i);
});

// ---- kick --------------------------------------------------------------------------------------

async function closesOf(srv) {
  return (await ctl(srv, 'stats')).totals.closes;
}

// The sum of ringhub_closes_total{reason=@reason} in /metrics.
async function metricCloses(srv, reason) {
  const text = await (await fetch(`http://127.0.0.1:${srv.port}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^ringhub_closes_total\{([^}]*)\}\s+(\S+)/.exec(line);
    if (m && m[1].includes(`reason="${reason}"`)) sum += Number(m[2]);
  }
  return sum;
}

test('kick: exactly that client gets a Close with the reason (no reconnect); the others stay', async () => {
  const victims = [];
  for (const spec of [
    { transport: 'WebSockets', protocol: 'json', reason: 'gone fishing: "quoted" \\ text' },
    { transport: 'WebSockets', protocol: 'messagepack', reason: undefined },
    { transport: 'ServerSentEvents', protocol: 'json', reason: 'sse goes' },
    { transport: 'LongPolling', protocol: 'json', reason: 'polling goes' },
  ]) {
    const c = await new Client(server, { ...spec, reconnect: true, user: 'victim' }).start();
    c.reason = spec.reason;
    await c.join('room');
    victims.push(c);
  }
  // Victims on both shards, if the kernel put them there: add until it did (bounded).
  while (new Set(victims.map((c) => c.shard)).size < 2 && victims.length < 30) {
    const c = await new Client(server, { reconnect: true, user: 'victim' }).start();
    c.reason = `extra ${victims.length}`;
    victims.push(c);
  }
  const closes0 = await closesOf(server);
  const metric0 = await metricCloses(server, 'kicked');
  try {
    for (const v of victims) {
      const args = ['kick', v.id, ...(v.reason === undefined ? [] : [v.reason])];
      const reply = await ctl(server, ...args);
      assert.deepEqual(reply, { ok: true, kicked: v.id });
    }
    for (const v of victims) {
      await until(() => v.closed, `the kicked ${v.transport} ${v.protocol} client to close`);
      assert.ok(v.closeError instanceof Error, `${v.transport}: onclose with an Error`);
      const reason = v.reason ?? 'kicked by an operator';
      assert.ok(
        v.closeError.message.includes(reason),
        `${v.transport} ${v.protocol}: "${v.closeError.message}" holds "${reason}"`,
      );
      assert.equal(v.reconnecting, undefined, `${v.transport}: a kick does not allow reconnecting`);
    }
    // Gone from the server, and counted.
    for (const v of victims) {
      await until(async () => (await run(['-s', server.socket, 'conn', v.id])).code === 1, `${v.id} to be gone`);
    }
    await until(async () => (await closesOf(server)).kicked === closes0.kicked + victims.length, 'closes.kicked to count them');
    await until(
      async () => (await metricCloses(server, 'kicked')) === metric0 + victims.length,
      'ringhub_closes_total{reason="kicked"} to count them',
    );
    // The fleet is untouched and still served.
    await fleetAlive('after the kicks');
    // A kicked id is unknown now; so is a made-up one.
    await ctlFails(server, ['kick', victims[0].id], new RegExp(`no connection ${victims[0].id}`));
    await ctlFails(server, ['kick', 'AAAAAAAAAAAAAAAAAAAAAA', 'why'], /no connection/, { json: true });
    await ctlFails(server, ['kick'], /error/i);
    await ctlFails(server, ['kick', fleet[0].id, 'one', 'two'], /error/i);
    assert.equal(fleet[0].closed, false, 'a kick with bad arguments kicks no one');
  } finally {
    for (const v of victims) await v.stop();
  }
});

// ---- loglevel ----------------------------------------------------------------------------------

test('loglevel: debug, then info; a bad level is an error', async () => {
  assert.deepEqual(await ctl(server, 'loglevel', 'debug'), { ok: true, log_level: 'debug' });
  assert.match(await ctlText(server, 'loglevel', 'warn'), /warn/);
  assert.deepEqual(await ctl(server, 'loglevel', 'error'), { ok: true, log_level: 'error' });
  assert.deepEqual(await ctl(server, 'loglevel', 'info'), { ok: true, log_level: 'info' });
  await ctlFails(server, ['loglevel', 'verbose'], /verbose/, { json: true });
  await ctlFails(server, ['loglevel'], /error/i);
  await ctlFails(server, ['loglevel', 'info', 'debug'], /error/i);
  // Still working afterwards.
  await fleetAlive('after loglevel');
});

// ---- config ------------------------------------------------------------------------------------

// The option names `ringhub --help` lists (but --config, --help and --version).
async function optionNames() {
  const help = await new Promise((resolve, reject) => {
    const child = spawn(process.env.RINGHUB, ['--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', () => resolve(out));
  });
  const names = [...help.matchAll(/^\s+--([a-z0-9-]+)/gm)].map((m) => m[1]);
  return names.filter((n) => !['config', 'help', 'version'].includes(n));
}

test('config: every option by its flag name as text; the port; no access key', async () => {
  const { config } = await ctl(server, 'config');
  assert.equal(config.port, String(server.port), 'the bound port');
  assert.equal(config.listen, '127.0.0.1');
  assert.equal(config.shards, '2');
  assert.equal(config['admin-socket'], server.socket);
  assert.equal(config['access-key'], '');
  for (const v of Object.values(config)) assert.equal(typeof v, 'string');
  for (const name of await optionNames()) {
    if (name === 'access-key-file') continue; // shown as access-key
    assert.ok(name in config, `config has --${name}`);
  }
  const text = await ctlText(server, 'config');
  assert.match(text, new RegExp(`port\\b.*\\b${server.port}\\b`));
});

test('config: an access key (RINGHUB_ACCESS_KEY or --access-key-file) is "(set)", never its text', async () => {
  const key = `KEYTEXT${crypto.randomBytes(24).toString('hex')}`;
  const byEnv = await launch([], { env: { RINGHUB_ACCESS_KEY: key } });
  const keyFile = path.join(tmp, 'key');
  fs.writeFileSync(keyFile, `${key}\n`, { mode: 0o600 });
  const byFile = await launch(['--access-key-file', keyFile]);
  for (const s of [byEnv, byFile]) {
    const { config } = await ctl(s, 'config');
    assert.equal(config['access-key'], '(set)');
    for (const args of [['--json', 'config'], ['config'], ['--json', 'stats'], ['stats'], ['help']]) {
      const r = await run(['-s', s.socket, ...args]);
      assert.equal(r.code, 0, show(r));
      assert.ok(!r.out.includes(key), `the key never appears in ${args.join(' ')}`);
      assert.ok(!r.out.includes(key.slice(0, 20)), `nor a part of it in ${args.join(' ')}`);
    }
    assert.equal(await s.stop(), 0);
  }
});

// ---- the line protocol, raw ----------------------------------------------------------------------

test('the socket is created mode 0600', () => {
  const st = fs.statSync(server.socket);
  assert.ok(st.isSocket(), 'a Unix socket');
  assert.equal(st.mode & 0o777, 0o600);
  assert.equal(st.uid, process.getuid());
});

test('line protocol: nothing on connect, JSON one line, text ends with an empty line, quoting, errors keep the session', async () => {
  const a = await rawAdmin(server.socket);
  try {
    // Nothing on connect (waiting a little is the only way to show an absence).
    await sleep(300);
    assert.equal(a.all, '', 'the server sends nothing on connect');
    // An empty line and a line of spaces get no reply; then the JSON line comes first.
    a.send('\n   \n\t\nhelp --json\n');
    const help = JSON.parse(await a.line());
    assert.equal(help.ok, true);
    assert.equal(help.commands.length, COMMANDS.length);
    // Exactly one line: the next reply follows at once, no empty line between.
    a.send('shards --json\r\n'); // CR LF too
    const shards = JSON.parse(await a.line());
    assert.equal(shards.shards.length, 2);
    // Text: lines, then the empty line that ends the reply, and no empty line before it: the
    // reply read up to the first empty line, the next line is the answer to the next command.
    for (const command of ['help', 'stats', 'shards', 'connections', `conn ${fleet[0].id}`, 'groups', 'group chat room', 'config', 'loglevel info']) {
      a.send(`${command}\n`);
      const lines = await a.reply();
      assert.ok(lines.length > 0, `${command}: a text reply`);
      a.send('help --json\n');
      const next = await a.line();
      assert.ok(
        next.startsWith('{"ok":true'),
        `the text reply of "${command}" holds an empty line before its end: after ${JSON.stringify(lines.join('\n'))} came ${JSON.stringify(next)}`,
      );
      // Drop whatever is left of a broken reply, so that the next check starts clean.
    }
    // Flags anywhere after the command word, = forms, tabs.
    const chatIds = sortedIds(inHub('chat'));
    for (const line of ['connections --json --hub chat', 'connections --hub=chat --json', 'connections\t--hub\tchat\t--json', '  connections --limit=100 --hub "chat" --json  ']) {
      const r = await a.json(line);
      assert.equal(r.ok, true, line);
      assert.deepEqual(r.connections.map((e) => e.id).sort(), chatIds, line);
    }
    // Quoted words with escapes.
    const odd = 'say "hi" \\ there';
    const joiner = inHub('chat')[0];
    await joiner.join(odd);
    try {
      const r = await a.json('group chat "say \\"hi\\" \\\\ there" --json');
      assert.equal(r.ok, true, JSON.stringify(r));
      assert.equal(r.group.group, odd);
    } finally {
      await joiner.leave(odd);
    }
    // Errors: text error then the empty line; JSON errors as one line; the session stays.
    for (const line of ['frobnicate', 'stats --bogus', 'stats extra', 'connections --limit x', 'connections --limit', 'conn', 'group chat', 'loglevel loud', 'drain --timeout soon', 'group chat "unterminated']) {
      a.send(`${line}\n`);
      const reply = await a.reply();
      assert.equal(reply.length, 1, `${line}: ${JSON.stringify(reply)}`);
      assert.match(reply[0], /^error: ./, line);
    }
    a.send('frobnicate\n');
    assert.match((await a.reply())[0], /frobnicate/, 'the error names the unknown command');
    for (const line of ['frobnicate --json', 'conn nope --json', 'stats --bogus --json']) {
      const r = await a.json(line);
      assert.equal(r.ok, false, line);
      assert.equal(typeof r.error, 'string');
    }
    assert.deepEqual(await a.json('conn nope --json'), { ok: false, error: 'no connection nope' });
    // A line just under the limit is a line (an unknown id here), not "too long".
    a.send(`conn ${'x'.repeat(4000)}\n`);
    assert.match((await a.reply())[0], /^error: no connection x+/);
    assert.equal((await a.json('stats --json')).ok, true, 'the session still works');
    assert.equal(a.sock.destroyed, false);
  } finally {
    a.sock.destroy();
  }
  // The server still drains no one: a bad --timeout did not start a drain.
  assert.equal((await fetch(`http://127.0.0.1:${server.port}/readyz`)).status, 200);
});

test('a too-long line or binary input ends that admin session only', async () => {
  const other = await rawAdmin(server.socket);
  try {
    for (const [bad, message] of [
      [`stats ${'a'.repeat(5000)}\n`, 'error: line too long'],
      ['a'.repeat(5000), 'error: line too long'], // no line end at all
      ['stats\u0000 --json\n', 'error: binary input'],
      ['stats --json\u0001\n', 'error: binary input'],
      ['help\u001b[A\n', 'error: binary input'],
    ]) {
      const a = await rawAdmin(server.socket);
      a.send(bad);
      // A command queued behind it is never answered.
      a.send('help --json\n');
      await Promise.race([a.closed, sleep(20000)]);
      assert.ok(a.sock.destroyed, `the server closed the session after ${JSON.stringify(bad.slice(0, 12))}`);
      assert.equal(a.all, `${message}\n\n`, `exactly one error reply for ${JSON.stringify(bad.slice(0, 12))}`);
      // The other session keeps working.
      const r = await other.json('stats --json');
      assert.equal(r.ok, true);
      assert.equal(r.totals.closes.kicked >= 0, true);
    }
    const r = await run(['-s', server.socket, '--json', 'stats']);
    assert.equal(r.code, 0, show(r));
    // Clients are unaffected.
    await fleetAlive('after bad admin input');
  } finally {
    other.sock.destroy();
  }
});

// ---- uids --------------------------------------------------------------------------------------

const canSwitchUid = () => process.getuid() === 0 && fs.existsSync('/usr/bin/setpriv');

test('a peer of another uid is refused; --admin-uids lets it in', async (t) => {
  if (!canSwitchUid()) {
    t.skip('needs root and setpriv (util-linux) to connect as uid 65534');
    return;
  }
  // Everyone may open the socket file, so that the uid check itself is what refuses.
  fs.chmodSync(server.socket, 0o666);
  try {
    const r = await run(['-s', server.socket, 'stats'], { uid: 65534 });
    assert.equal(r.code, 1, show(r));
    assert.match(r.out, /permission denied/);
    assert.match(r.out, /uid 65534 is not allowed/);
    const rj = await run(['-s', server.socket, '--json', 'stats'], { uid: 65534 });
    assert.equal(rj.code, 1, show(rj));
    assert.match(rj.out, /permission denied/);
  } finally {
    fs.chmodSync(server.socket, 0o600);
  }
  // Our own uid is still served, and the clients are unaffected.
  await ctl(server, 'stats');
  await fleetAlive('after a refused uid');

  const allowing = await launch(['--admin-uids', '65534']);
  fs.chmodSync(allowing.socket, 0o666);
  const ok = await run(['-s', allowing.socket, '--json', 'stats'], { uid: 65534 });
  assert.equal(ok.code, 0, show(ok));
  assert.equal(JSON.parse(ok.stdout).ok, true);
  assert.equal((await ctl(allowing, 'config')).config['admin-uids'], '65534');
  // Another uid is still refused there; root (our own uid) too is let in.
  const nobodyElse = await run(['-s', allowing.socket, 'stats'], { uid: 65533 });
  assert.equal(nobodyElse.code, 1, show(nobodyElse));
  assert.match(nobodyElse.out, /permission denied: uid 65533 is not allowed/);
  await ctl(allowing, 'stats');
  assert.equal(await allowing.stop(), 0);
});

// ---- socket files ------------------------------------------------------------------------------

test('a stale socket file is replaced; a live one makes start-up fail', async () => {
  const shared = socketPath('shared');
  const first = await launch([], { socket: shared });
  await ctl(first, 'stats');
  // A second server on the same (live) socket does not start.
  await assert.rejects(launch([], { socket: shared }), /exited with [1-9]/);
  // The first one is still served there.
  await ctl(first, 'stats');
  // Killed without cleaning up: the file stays, and the next server replaces it.
  process.kill(first.pid, 'SIGKILL');
  assert.equal(await first.exited, 'SIGKILL');
  servers.delete(first);
  assert.ok(fs.existsSync(shared), 'the stale socket file is left behind');
  const next = await launch([], { socket: shared });
  const { config } = await ctl(next, 'config');
  assert.equal(config.port, String(next.port));
  assert.equal(fs.statSync(shared).mode & 0o777, 0o600);
  assert.equal(await next.stop(), 0);
});

test('default socket /tmp/ringhub-PORT.sock (ringhub-ctl -p, $RINGHUB_ADMIN_SOCKET); empty disables', async () => {
  const s = await launch([], { socket: null });
  const expected = `/tmp/ringhub-${s.port}.sock`;
  try {
    assert.ok(fs.statSync(expected).isSocket(), `${expected} exists`);
    assert.equal(fs.statSync(expected).mode & 0o777, 0o600);
    // The server answering is this one: its connections list holds our marker connection.
    const marker = await new Client(s, { hub: `marker${s.port}` }).start();
    try {
      const byPort = await run(['-p', String(s.port), '--json', 'connections']);
      assert.equal(byPort.code, 0, show(byPort));
      assert.deepEqual(JSON.parse(byPort.stdout).connections.map((e) => e.id), [marker.id]);
      const byEnv = await run(['--json', 'connections'], { env: { RINGHUB_ADMIN_SOCKET: expected } });
      assert.equal(byEnv.code, 0, show(byEnv));
      assert.deepEqual(JSON.parse(byEnv.stdout).connections.map((e) => e.id), [marker.id]);
    } finally {
      await marker.stop();
    }
    // --socket, the long form.
    const longForm = await run(['--socket', expected, 'help']);
    assert.equal(longForm.code, 0, show(longForm));
  } finally {
    assert.equal(await s.stop(), 0);
  }

  const none = await launch(['--admin-socket', ''], { socket: null });
  try {
    assert.ok(!fs.existsSync(`/tmp/ringhub-${none.port}.sock`), 'no admin socket with --admin-socket ""');
    const r = await run(['-p', String(none.port), 'stats']);
    assert.equal(r.code, 1, show(r));
    assert.ok(r.stderr.length > 0, 'a message on stderr');
  } finally {
    assert.equal(await none.stop(), 0);
  }
});

// ---- ringhub-ctl itself ------------------------------------------------------------------------

test('ringhub-ctl --help is a man page naming every command; cannot connect is exit 1', async () => {
  const r = await run(['--help']);
  assert.equal(r.code, 0, show(r));
  for (const section of ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'COMMANDS', 'OPTIONS', 'EXIT STATUS', 'FILES', 'EXAMPLES']) {
    assert.match(r.stdout, new RegExp(`^${section}\\b`, 'm'), `--help has ${section}`);
  }
  for (const name of COMMANDS) assert.match(r.stdout, new RegExp(`\\b${name}\\b`), `--help names ${name}`);
  for (const option of ['--socket', '--json', '--timeout', '-p', 'RINGHUB_ADMIN_SOCKET']) {
    assert.ok(r.stdout.includes(option), `--help names ${option}`);
  }

  const missing = await run(['-s', path.join(tmp, 'nothing-here.sock'), 'stats']);
  assert.equal(missing.code, 1, show(missing));
  assert.ok(missing.stderr.trim().length > 0, 'a message on stderr');
  assert.equal(missing.stdout, '');
  // A socket file nobody listens on.
  const dead = path.join(tmp, 'dead.sock');
  const listener = net.createServer().listen(dead);
  await new Promise((resolve) => listener.once('listening', resolve));
  await new Promise((resolve) => listener.close(resolve));
  const refused = await run(['-s', dead, 'stats']);
  assert.equal(refused.code, 1, show(refused));
  // A server that answers nothing: --timeout ends the wait with exit 1.
  const mute = path.join(tmp, 'mute.sock');
  const held = [];
  const silent = net.createServer((c) => held.push(c)).listen(mute);
  await new Promise((resolve) => silent.once('listening', resolve));
  try {
    const started = Date.now();
    const late = await run(['-s', mute, '--timeout', '1', 'stats']);
    assert.equal(late.code, 1, show(late));
    assert.ok(Date.now() - started < 15000, 'the timeout ended the wait');
    assert.ok(late.stderr.trim().length > 0);
    // One that closes without an answer: exit 1 too.
    for (const c of held) c.destroy();
    const closer = path.join(tmp, 'closer.sock');
    const closing = net.createServer((c) => {
      held.push(c);
      c.end();
    }).listen(closer);
    await new Promise((resolve) => closing.once('listening', resolve));
    const early = await run(['-s', closer, 'stats']);
    assert.equal(early.code, 1, show(early));
    for (const c of held) c.destroy(); // a half-closed socket would hold close() up
    await new Promise((resolve) => closing.close(resolve));
  } finally {
    for (const c of held) c.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
  // Unknown commands and no command.
  await ctlFails(server, ['frobnicate'], /frobnicate/);
  const bare = await run(['-s', server.socket]);
  assert.equal(bare.code, 1, show(bare));
});

// ---- drain (last: on a server of its own) ------------------------------------------------------

// A raw JSON hub session over WebSockets: its messages, and closed -> {messages, code}.
function rawSession(port) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/hubs/chat`);
    const messages = [];
    const closed = new Promise((done) => ws.on('close', (code) => done({ messages, code })));
    ws.on('open', () => ws.send(`{"protocol":"json","version":1}${RS}`));
    ws.on('message', (data) => {
      messages.push(data.toString());
      if (messages.length === 1) resolve({ ws, closed, messages });
    });
    ws.on('error', reject);
  });
}

// One HTTP/1.1 keep-alive connection: get(path) -> {status, body} or null once the server closed it.
function keepAlive(port) {
  const sock = net.connect(port, '127.0.0.1');
  let buffer = '';
  let ended = false;
  sock.on('data', (d) => (buffer += d));
  sock.on('close', () => (ended = true));
  sock.on('error', () => (ended = true));
  return {
    sock,
    async get(p) {
      buffer = '';
      if (ended) return null;
      sock.write(`GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
      await until(() => {
        const m = /\r\ncontent-length: *(\d+)/i.exec(buffer);
        const head = buffer.indexOf('\r\n\r\n');
        return ended || (m && head >= 0 && buffer.length >= head + 4 + Number(m[1]));
      }, `an answer to GET ${p}`);
      const head = buffer.indexOf('\r\n\r\n');
      if (head < 0) return null;
      return { status: Number(buffer.slice(9, 12)), body: buffer.slice(head + 4).trim() };
    },
  };
}

test('drain --timeout 5: every client gets a Close allowing reconnect, /readyz 503, exit 0', async () => {
  const d = await launch();
  const clients = [];
  for (const spec of [
    { transport: 'WebSockets', protocol: 'json' },
    { transport: 'WebSockets', protocol: 'messagepack' },
    { transport: 'ServerSentEvents', protocol: 'json' },
    { transport: 'LongPolling', protocol: 'json' },
    { transport: 'WebSockets', protocol: 'json', hub: 'other' },
  ]) {
    clients.push(await new Client(d, { ...spec, reconnect: true }).start());
  }
  const raw = await rawSession(d.port);
  const http = keepAlive(d.port);
  try {
    assert.deepEqual(await http.get('/readyz'), { status: 200, body: 'ready' });
    // Bad arguments do not drain.
    await ctlFails(d, ['drain', '--timeout', 'soon'], /error/i);
    await ctlFails(d, ['drain', 'now'], /error/i);
    assert.deepEqual(await http.get('/readyz'), { status: 200, body: 'ready' });

    const started = Date.now();
    const reply = await ctl(d, 'drain', '--timeout', '5');
    assert.equal(reply.timeout_s, 5);
    assert.ok(Number.isInteger(reply.draining) && reply.draining >= 5, `draining ${reply.draining} connections`);

    // /readyz answers 503 while draining, where it can still be asked (our keep-alive
    // connection, if the server has not closed it yet).
    const ready = await http.get('/readyz');
    if (ready) assert.deepEqual(ready, { status: 503, body: 'draining' });
    else process.stderr.write('note: the keep-alive connection was closed at the drain; /readyz 503 not observed\n');

    // Every session gets a Close with allowReconnect.
    const { messages, code } = await raw.closed;
    assert.equal(messages[0], `{}${RS}`);
    const close = JSON.parse(messages.at(-1).slice(0, -1));
    assert.equal(close.type, 7);
    assert.equal(close.allowReconnect, true);
    assert.ok(code === 1000 || code === 1001, `WebSocket close code ${code}`);
    for (const c of clients) {
      await until(() => c.reconnecting !== undefined, `the ${c.transport} ${c.protocol} client to start reconnecting`);
    }
    // New connections are not accepted (refused, or answered 503) while draining.
    const fresh = await new Promise((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${d.port}/hubs/chat`);
      ws.on('open', () => resolve('open'));
      ws.on('unexpected-response', (req, res) => resolve(res.statusCode));
      ws.on('error', () => resolve('refused'));
    });
    assert.ok(fresh !== 'open', 'no new WebSocket while draining');

    // The process exits 0 once they are gone (at the latest at the timeout).
    const code0 = await Promise.race([d.exited, sleep(30000).then(() => 'still running')]);
    assert.equal(code0, 0, 'ringhub exits 0 after the drain, with nothing left allocated');
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 5000 + 10000, `exited ${elapsed} ms after the drain began`);
    servers.delete(d);
    // ringhub-ctl now cannot connect.
    const after = await run(['-s', d.socket, 'stats']);
    assert.equal(after.code, 1, show(after));
  } finally {
    http.sock.destroy();
    raw.ws.terminate();
    for (const c of clients) await c.stop();
  }
});

// A drain with a session that cannot be told (a long-polling connection that never polls
// again): the process still exits 0, at the latest at the timeout.
test('drain --timeout=2 with a long-polling session that never polls again: exit 0 by the timeout', async () => {
  const d = await launch();
  // A long-polling connection that never polls again holds a session that cannot be told.
  const n = await (await fetch(`${d.url('chat')}/negotiate?negotiateVersion=1`, { method: 'POST' })).json();
  const lp = `${d.url('chat')}?id=${n.connectionToken}`;
  assert.equal((await fetch(lp)).status, 200);
  assert.equal((await fetch(lp, { method: 'POST', body: `{"protocol":"json","version":1}${RS}` })).status, 200);
  await until(async () => (await ctl(d, 'connections')).total === 1, 'the long-polling session to be listed');
  const started = Date.now();
  const reply = await ctl(d, 'drain', '--timeout=2');
  assert.equal(reply.timeout_s, 2);
  const code = await Promise.race([d.exited, sleep(30000).then(() => 'still running')]);
  assert.equal(code, 0);
  const elapsed = Date.now() - started;
  assert.ok(elapsed < 2000 + 10000, `exited ${elapsed} ms after the drain began`);
  servers.delete(d);
});
