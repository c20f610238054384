// The plain EventSource stream GET /api/events/{user}[?hub=H][&lastEventId=ID] against the real
// ringhub binary. Messages are produced by official SignalR clients (@microsoft/signalr, JSON and
// MessagePack, every transport) calling SendToUser(user, target, ...args) and
// SendToAll(target, ...args); they are read with the `eventsource` npm package (the one the
// official client uses under Node), exactly as a browser page would
// (es.addEventListener('notification', (e) => JSON.parse(e.data))), and with raw HTTP requests
// where the bytes on the wire matter (headers, the `retry:` line, heartbeat comments, the
// Last-Event-ID header and the lastEventId query parameter).
//
// Checked: one event per message, named after the target, data = the JSON of the single argument
// or the array of all of them; ids <epoch>-<seq> with seq 1, 2, 3 ...; every stream of a user sees
// the same ids; users and hubs are kept apart; resuming (the package's own reconnect through a
// proxy we cut, the Last-Event-ID header, the lastEventId query) replays what was missed with no
// gap and no duplicate; a too-old or unknown-epoch id gets `ringhub.resync` first; heartbeats;
// response headers and CORS; bad user names are refused with 400; clean stops.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import EventSource from 'eventsource';
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { startServer } from './server.mjs';
import { until } from './helpers.mjs';

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  for (const s of openStreams) s.close();
  await Promise.all([...senders.values()].map(async (c) => (await c).stop()));
  assert.equal(await server.stop(), 0, 'ringhub stops cleanly with nothing left allocated');
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A user name no other test uses, so every test starts with a fresh history.
let users = 0;
const fresh = (name) => `${name}-${++users}-${process.pid}`;

// ---- SignalR senders ---------------------------------------------------------------------------

const TRANSPORTS = {
  ws: signalR.HttpTransportType.WebSockets,
  sse: signalR.HttpTransportType.ServerSentEvents,
  lp: signalR.HttpTransportType.LongPolling,
};

// One official client per (server, hub, protocol, transport), connected on first use and
// stopped at the end of the file (or by the test that started its own server).
const senders = new Map();
function sender({ srv = server, hub = 'events', protocol = 'json', transport = 'ws' } = {}) {
  const key = `${srv.port} ${hub} ${protocol} ${transport}`;
  if (!senders.has(key)) {
    const options =
      transport === 'ws'
        ? { skipNegotiation: true, transport: TRANSPORTS.ws }
        : { transport: TRANSPORTS[transport] };
    const builder = new signalR.HubConnectionBuilder()
      .withUrl(srv.url(hub), options)
      .configureLogging(signalR.LogLevel.Warning);
    if (protocol === 'messagepack') builder.withHubProtocol(new MessagePackHubProtocol());
    const c = builder.build();
    // Senders get the SendToAll broadcasts too; these keep the client from warning about them.
    for (const name of NAMES) c.on(name, () => {});
    senders.set(
      key,
      c.start().then(() => c),
    );
  }
  return senders.get(key);
}

async function stopSendersOf(srv) {
  for (const [key, c] of senders) {
    if (key.startsWith(`${srv.port} `)) {
      await (await c).stop();
      senders.delete(key);
    }
  }
}

// SendToUser(user, target, ...args) from a sender; resolves when the hub call has completed.
async function toUser(user, target, args, options) {
  const c = await sender(options);
  assert.equal(await c.invoke('SendToUser', user, target, ...args), null);
}

async function toAll(target, args, options) {
  const c = await sender(options);
  assert.equal(await c.invoke('SendToAll', target, ...args), null);
}

// ---- streams -----------------------------------------------------------------------------------

const openStreams = new Set();

// The event names the package listens to (it only reports names someone listens to).
const NAMES = ['notification', 'dataUpdate', 'n', 'marker', 'ringhub.resync', 'message'];

// An EventSource of the `eventsource` package and the events it delivered:
// {type, id (the event's lastEventId), data (JSON.parse of e.data), raw (e.data)}.
class Stream {
  constructor(url, init) {
    this.url = url;
    this.es = new EventSource(url, init);
    this.events = [];
    this.opens = 0;
    this.errors = [];
    this.es.addEventListener('open', () => this.opens++);
    this.es.addEventListener('error', (e) => this.errors.push(e));
    for (const type of NAMES) {
      this.es.addEventListener(type, (e) =>
        this.events.push({ type, id: e.lastEventId, data: JSON.parse(e.data), raw: e.data }),
      );
    }
    openStreams.add(this);
  }

  static async open(url, init) {
    const s = new Stream(url, init);
    await until(() => s.opens > 0 || s.es.readyState === EventSource.CLOSED, `${url} to open`);
    assert.equal(s.opens, 1, `${url} opened (errors: ${JSON.stringify(s.errors)})`);
    return s;
  }

  of(type) {
    return this.events.filter((e) => e.type === type);
  }

  close() {
    this.es.close();
    openStreams.delete(this);
  }
}

// The path of a user's stream on @srv (or a proxy's port).
const eventsUrl = (port, user, query = '') =>
  `http://127.0.0.1:${port}/api/events/${encodeURIComponent(user)}${query}`;

// A GET read and parsed by hand, its own TCP connection (so on a kernel-chosen shard): status,
// headers, every line, comments, `retry:` values and events {id (the block's own id line, or
// undefined), event, data (the raw string)}. Node's agent-less request would say
// `Connection: close`; like a browser's EventSource this one says keep-alive unless told
// otherwise (a test below checks `Connection: close` on its own).
class RawStream {
  constructor(port, path, headers = {}) {
    headers = { Connection: 'keep-alive', ...headers };
    this.lines = [];
    this.comments = [];
    this.retries = [];
    this.events = [];
    this.ended = false;
    this.pending = '';
    this.block = { data: [] };
    this.response = new Promise((resolve, reject) => {
      this.req = http.request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
        this.status = res.statusCode;
        this.headers = res.headers;
        res.setEncoding('utf8');
        res.on('data', (chunk) => this.feed(chunk));
        res.on('end', () => {
          this.ended = true;
        });
        res.on('error', () => {});
        res.on('close', () => {
          this.ended = true;
        });
        resolve(res);
      });
      this.req.on('error', (err) => {
        this.ended = true;
        reject(err);
      });
      this.req.end();
    });
    openStreams.add(this);
  }

  static async open(port, path, headers) {
    const s = new RawStream(port, path, headers);
    await s.response;
    assert.equal(s.status, 200, `GET ${path}`);
    // The body starts with `retry:` and a comment; once the comment is here the stream is set up.
    await until(() => s.comments.length > 0, `the first comment on ${path}`);
    return s;
  }

  feed(chunk) {
    this.pending += chunk;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.pending);
      if (!m) break;
      // A lone \r at the very end may be half of \r\n: wait for more.
      if (m[0] === '\r' && m.index === this.pending.length - 1) break;
      const line = this.pending.slice(0, m.index);
      this.pending = this.pending.slice(m.index + m[0].length);
      this.line(line);
    }
  }

  line(line) {
    this.lines.push(line);
    if (line === '') {
      if (this.block.data.length > 0) {
        this.events.push({
          id: this.block.id,
          event: this.block.event ?? 'message',
          data: this.block.data.join('\n'),
        });
      }
      this.block = { data: [] };
      return;
    }
    if (line.startsWith(':')) {
      this.comments.push(line.slice(1));
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.block.data.push(value);
    else if (field === 'event') this.block.event = value;
    else if (field === 'id') this.block.id = value;
    else if (field === 'retry') this.retries.push(value);
  }

  named(type) {
    return this.events.filter((e) => e.event === type);
  }

  close() {
    this.req.destroy();
    openStreams.delete(this);
  }
}

// A request whose answer ends (an error status): {status, headers, body}.
function request(port, path, { method = 'GET', headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

// "<epoch>-<seq>" -> {epoch, seq}.
function parseId(id) {
  assert.equal(typeof id, 'string', 'the event has an id');
  const m = /^(.+)-(\d+)$/.exec(id);
  assert.ok(m, `id "${id}" is <epoch>-<seq>`);
  return { epoch: m[1], seq: Number(m[2]) };
}

// The ids of @events are of one epoch and number @first, @first + 1, ...
function assertConsecutive(events, first) {
  const ids = events.map((e) => parseId(e.id));
  assert.equal(new Set(ids.map((i) => i.epoch)).size, 1, `one epoch: ${events.map((e) => e.id)}`);
  assert.deepEqual(
    ids.map((i) => i.seq),
    ids.map((_, k) => first + k),
    `ids ${events.map((e) => e.id).join(' ')} are consecutive from ${first}`,
  );
}

// ---- a cuttable TCP proxy ------------------------------------------------------------------------

// Forwards every connection to ringhub; cut() destroys all of them at once. While held, new
// connections wait (paused) until release(). heads holds the first request head of each
// connection, to see what the client sent on reconnecting.
class Proxy {
  constructor(targetPort) {
    this.targetPort = targetPort;
    this.pairs = new Set();
    this.waiting = [];
    this.heads = [];
    this.held = false;
    this.server = net.createServer((client) => {
      client.pause();
      client.on('error', () => {});
      if (this.held) this.waiting.push(client);
      else this.forward(client);
    });
  }

  async listen() {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = this.server.address().port;
    return this;
  }

  forward(client) {
    const upstream = net.connect(this.targetPort, '127.0.0.1');
    upstream.on('error', () => {});
    const pair = { client, upstream };
    this.pairs.add(pair);
    let head = '';
    let headDone = false;
    client.on('data', (chunk) => {
      if (!headDone) {
        head += chunk.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end >= 0) {
          headDone = true;
          this.heads.push(head.slice(0, end));
        }
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => client.write(chunk));
    const drop = () => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on('close', drop);
    upstream.on('close', drop);
    client.resume();
  }

  cut() {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  hold() {
    this.held = true;
  }

  release() {
    this.held = false;
    for (const client of this.waiting.splice(0)) this.forward(client);
  }

  // The value of @name in the @i-th request head.
  header(i, name) {
    const line = this.heads[i]
      .split('\r\n')
      .find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
    return line === undefined ? undefined : line.slice(line.indexOf(':') + 1).trim();
  }

  async close() {
    this.cut();
    for (const c of this.waiting.splice(0)) c.destroy();
    this.server.close();
  }
}

// ---- tests -------------------------------------------------------------------------------------

test('each message is one named event: data is the single argument, or the array of all; ids count 1, 2, 3', async () => {
  const user = fresh('ada');
  const es = await Stream.open(eventsUrl(server.port, user));
  const notifications = [];
  const updates = [];
  // As in the React snippet.
  es.es.addEventListener('notification', (e) => notifications.push(JSON.parse(e.data)));
  es.es.addEventListener('dataUpdate', (e) => updates.push(JSON.parse(e.data)));

  const sent = [
    ['notification', [{ title: 'Hello', body: 'ünïcødé ✓ 😀', unread: 3 }]],
    ['dataUpdate', [{ id: 7, values: [1.5, null, true, 'x'] }]],
    ['dataUpdate', ['several', 2, [3, { four: 4 }], null]],
    ['notification', ['a string with "quotes", \\ and a\nnewline\u001e']],
    ['notification', []],
    ['dataUpdate', [42]],
    ['notification', [null]],
  ];
  for (const [target, args] of sent) await toUser(user, target, args);
  await until(() => es.events.length >= sent.length, `${sent.length} events`);

  const expected = sent.map(([target, args]) => ({
    type: target,
    data: args.length === 1 ? args[0] : args,
  }));
  assert.deepEqual(
    es.events.map(({ type, data }) => ({ type, data })),
    expected,
  );
  assertConsecutive(es.events, 1);
  // The listeners of the snippet got the same.
  assert.deepEqual(notifications, expected.filter((e) => e.type === 'notification').map((e) => e.data));
  assert.deepEqual(updates, expected.filter((e) => e.type === 'dataUpdate').map((e) => e.data));
  // Each event's data is one `data:` line.
  for (const e of es.events) assert.ok(!e.raw.includes('\n'), `one data line: ${JSON.stringify(e.raw)}`);
  es.close();
});

test('messages from clients of every transport and protocol reach the stream', async () => {
  const user = fresh('bea');
  const es = await Stream.open(eventsUrl(server.port, user));
  const via = [
    { transport: 'ws', protocol: 'json' },
    { transport: 'ws', protocol: 'messagepack' },
    { transport: 'sse', protocol: 'json' },
    { transport: 'lp', protocol: 'json' },
    { transport: 'lp', protocol: 'messagepack' },
  ];
  const value = (v) => ({ via: `${v.transport}/${v.protocol}`, nested: { list: [1, 'two', null, 2.5, false] }, s: 'ü✓' });
  for (const v of via) await toUser(user, 'notification', [value(v)], v);
  for (const v of via) await toUser(user, 'dataUpdate', [value(v), v.transport], v);
  await until(() => es.events.length >= 2 * via.length, `${2 * via.length} events`);
  // One sender's messages keep their order; across senders only the set is fixed.
  const key = (e) => JSON.stringify([e.type, e.data]);
  assert.deepEqual(
    es.events.map(key).sort(),
    [
      ...via.map((v) => key({ type: 'notification', data: value(v) })),
      ...via.map((v) => key({ type: 'dataUpdate', data: [value(v), v.transport] })),
    ].sort(),
  );
  assertConsecutive(es.events, 1);
  es.close();
});

test('every stream of a user sees the same events with the same ids; other users see none of them', async () => {
  const alice = fresh('alice');
  const bob = fresh('bob');
  // Separate TCP connections, so they land on the shards the kernel picks.
  const alices = await Promise.all(Array.from({ length: 4 }, () => Stream.open(eventsUrl(server.port, alice))));
  const rawAlice = await RawStream.open(server.port, `/api/events/${alice}`);
  const bobs = await Promise.all(Array.from({ length: 2 }, () => Stream.open(eventsUrl(server.port, bob))));

  // One sender: its messages keep their order (two senders' messages may interleave).
  for (let i = 0; i < 10; i++) await toUser(alice, 'n', [i]);
  await toUser(bob, 'marker', ['bob marker']);
  await until(
    () => alices.every((s) => s.events.length >= 10) && rawAlice.events.length >= 10 && bobs.every((s) => s.events.length >= 1),
    'alice streams to get 10 events and bob the marker',
  );
  await sleep(200); // anything else on its way arrives meanwhile
  const first = alices[0].events;
  assert.deepEqual(
    first.map((e) => e.data),
    Array.from({ length: 10 }, (_, i) => i),
  );
  assertConsecutive(first, 1);
  for (const s of alices) assert.deepEqual(s.events, first);
  assert.deepEqual(
    rawAlice.events.map((e) => ({ id: e.id, event: e.event, data: JSON.parse(e.data) })),
    first.map((e) => ({ id: e.id, event: e.type, data: e.data })),
  );
  for (const s of bobs) {
    assert.deepEqual(
      s.events.map(({ type, data }) => ({ type, data })),
      [{ type: 'marker', data: 'bob marker' }],
    );
    assert.equal(parseId(s.events[0].id).seq, 1, "bob's history is his own");
    assert.notEqual(parseId(s.events[0].id).epoch, parseId(first[0].id).epoch, 'each user history has its own epoch');
  }
  for (const s of [...alices, ...bobs, rawAlice]) s.close();
});

test('SendToAll reaches the stream of every user of the hub, and only of that hub', async () => {
  const users = [fresh('carl'), fresh('dora'), fresh('emil')];
  const streams = await Promise.all(users.map((u) => Stream.open(eventsUrl(server.port, u))));
  const elsewhere = await Stream.open(eventsUrl(server.port, users[0], '?hub=other'));

  await toAll('dataUpdate', [{ version: 1 }, 'all']);
  await toAll('notification', ['from msgpack'], { protocol: 'messagepack' });
  await until(() => streams.every((s) => s.events.length >= 2), 'every user to get both');
  // Then one for the other hub, which shows its stream is alive and got nothing before.
  await toAll('marker', ['other hub'], { hub: 'other' });
  await until(() => elsewhere.events.length >= 1, "the other hub's stream to get its marker");
  await sleep(200);

  // Two senders (perhaps on two shards): their messages may come in either order.
  const key = (e) => JSON.stringify([e.type, e.data]);
  for (const s of streams) {
    assert.deepEqual(
      s.events.map(key).sort(),
      [
        { type: 'dataUpdate', data: [{ version: 1 }, 'all'] },
        { type: 'notification', data: 'from msgpack' },
      ]
        .map(key)
        .sort(),
    );
    assertConsecutive(s.events, 1);
  }
  assert.deepEqual(
    elsewhere.events.map(({ type, data }) => ({ type, data })),
    [{ type: 'marker', data: 'other hub' }],
  );
  for (const s of [...streams, elsewhere]) s.close();
});

test('?hub= selects the hub whose SendToUser the stream carries; the default is "events"', async () => {
  const user = fresh('finn');
  const byDefault = await Stream.open(eventsUrl(server.port, user));
  const explicit = await Stream.open(eventsUrl(server.port, user, '?hub=events'));
  const news = await Stream.open(eventsUrl(server.port, user, '?hub=news'));

  await toUser(user, 'notification', ['to events'], { hub: 'events' });
  await toUser(user, 'notification', ['to news'], { hub: 'news', protocol: 'messagepack' });
  await toUser(user, 'notification', ['to chat'], { hub: 'chat' });
  await toUser(user, 'marker', ['events done'], { hub: 'events' });
  await toUser(user, 'marker', ['news done'], { hub: 'news', protocol: 'messagepack' });
  await until(
    () => [byDefault, explicit, news].every((s) => s.of('marker').length >= 1),
    'every stream to get its marker',
  );
  await sleep(200);
  const plain = (s) => s.events.map(({ type, data }) => ({ type, data }));
  const eventsHub = [
    { type: 'notification', data: 'to events' },
    { type: 'marker', data: 'events done' },
  ];
  assert.deepEqual(plain(byDefault), eventsHub);
  assert.deepEqual(plain(explicit), eventsHub);
  assert.deepEqual(byDefault.events, explicit.events, 'same hub, same ids');
  assert.deepEqual(plain(news), [
    { type: 'notification', data: 'to news' },
    { type: 'marker', data: 'news done' },
  ]);
  assertConsecutive(news.events, 1);
  for (const s of [byDefault, explicit, news]) s.close();
});

test('a user name is the URL-decoded path segment: spaces, slashes, non-ASCII', async () => {
  const user = fresh('Zoë Ä/b?c&d=e%');
  const es = await Stream.open(eventsUrl(server.port, user)); // encodeURIComponent of it
  await toUser(user, 'notification', ['decoded']);
  await until(() => es.events.length >= 1, 'the event');
  assert.deepEqual(es.events.map((e) => e.data), ['decoded']);
  es.close();
});

test('the eventsource package reconnects by itself after a cut and resumes with Last-Event-ID: no gap, no duplicate', async () => {
  const user = fresh('gus');
  const proxy = await new Proxy(server.port).listen();
  try {
    const es = await Stream.open(eventsUrl(proxy.port, user));
    for (let i = 0; i < 5; i++) await toUser(user, 'n', [i]);
    await until(() => es.events.length >= 5, 'the first 5');
    const lastSeen = es.events[4].id;

    // Cut the connection; the reconnect waits at the proxy until we have sent 10 more.
    proxy.hold();
    proxy.cut();
    await until(() => es.errors.length >= 1, 'the stream to notice the cut');
    await sleep(200); // and ringhub, so that no stream of the user is connected
    for (let i = 5; i < 15; i++) await toUser(user, 'n', [i]);
    await sleep(100);
    assert.equal(es.events.length, 5, 'nothing arrives while cut');
    proxy.release();

    // The package waits for the server's `retry: 3000`, then reconnects.
    await until(() => es.events.length >= 15, 'the 10 missed ones after the reconnect', 10000);
    assert.equal(es.opens, 2);
    assert.equal(proxy.heads.length, 2);
    assert.equal(proxy.header(0, 'Last-Event-ID'), undefined);
    assert.equal(proxy.header(1, 'Last-Event-ID'), lastSeen, 'the package resumed from the last id');
    for (let i = 15; i < 20; i++) await toUser(user, 'n', [i]);
    await until(() => es.events.length >= 20, 'the live ones after the replay');
    await sleep(200);

    assert.deepEqual(
      es.events.map((e) => e.data),
      Array.from({ length: 20 }, (_, i) => i),
    );
    assertConsecutive(es.events, 1);
    es.close();
  } finally {
    await proxy.close();
  }
});

test('Last-Event-ID header and lastEventId query resume a raw request; the header wins over the query', async () => {
  const user = fresh('hana');
  const path = `/api/events/${user}`;
  const a = await RawStream.open(server.port, path);
  for (let i = 0; i < 6; i++) await toUser(user, 'n', [i]);
  await until(() => a.events.length >= 6, 'the first 6');
  const ids = a.events.map((e) => e.id);
  assertConsecutive(a.events, 1);
  a.close();
  await sleep(100);
  for (let i = 6; i < 9; i++) await toUser(user, 'n', [i]); // nobody connected: kept

  // Header: after ids[2] (message 2) come 3..8 replayed, then live.
  const b = await RawStream.open(server.port, path, { 'Last-Event-ID': ids[2] });
  await until(() => b.events.length >= 6, 'the replay of 3..8');
  await toUser(user, 'n', [9]);
  await until(() => b.events.length >= 7, 'the live 9');

  // Query: after ids[4].
  const c = await RawStream.open(server.port, `${path}?lastEventId=${encodeURIComponent(ids[4])}`);
  await until(() => c.events.length >= 5, 'the replay of 5..9');
  // Both: the header names ids[5], the query ids[0]; the header wins.
  const d = await RawStream.open(server.port, `${path}?lastEventId=${encodeURIComponent(ids[0])}`, {
    'Last-Event-ID': ids[5],
  });
  await until(() => d.events.length >= 4, 'the replay of 6..9');
  // The package's initial Last-Event-ID header (its documented option).
  const e = await Stream.open(eventsUrl(server.port, user), { headers: { 'Last-Event-ID': ids[0] } });
  await until(() => e.events.length >= 9, 'the replay of 1..9 to the package');

  await toUser(user, 'n', [10]);
  await until(
    () =>
      [b, c, d].every((s) => s.events.length >= 1 && JSON.parse(s.events.at(-1).data) === 10) &&
      e.events.length >= 10,
    'the live 10 everywhere',
  );
  await sleep(200);

  const values = (s) => s.events.map((ev) => JSON.parse(ev.data));
  const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
  assert.deepEqual(values(b), range(3, 10));
  assertConsecutive(b.events, 4);
  assert.deepEqual(values(c), range(5, 10));
  assertConsecutive(c.events, 6);
  assert.deepEqual(values(d), range(6, 10), 'the Last-Event-ID header wins over ?lastEventId');
  assertConsecutive(d.events, 7);
  assert.deepEqual(e.events.map((ev) => ev.data), range(1, 10));
  assertConsecutive(e.events, 2);
  // Replayed events keep the ids they had live.
  assert.deepEqual(b.events.slice(0, 3).map((ev) => ev.id), ids.slice(3, 6));
  for (const s of [b, c, d]) assert.deepEqual(s.named('ringhub.resync'), []);
  for (const s of [b, c, d, e]) s.close();
});

test('an id of another epoch gets ringhub.resync first, with the current position, then live events', async () => {
  const user = fresh('ivan');
  const path = `/api/events/${user}`;
  const a = await RawStream.open(server.port, path);
  await toUser(user, 'n', [0]);
  await toUser(user, 'n', [1]);
  await until(() => a.events.length >= 2, 'two events');
  const { epoch } = parseId(a.events[0].id);
  a.close();
  const otherEpoch = (epoch[0] === '1' ? '2' : '1') + epoch.slice(1);
  const forged = `${otherEpoch}-1`;

  for (const how of ['header', 'query']) {
    const s =
      how === 'header'
        ? await RawStream.open(server.port, path, { 'Last-Event-ID': forged })
        : await RawStream.open(server.port, `${path}?lastEventId=${encodeURIComponent(forged)}`);
    await until(() => s.events.length >= 1, `the resync (${how})`);
    const resync = s.events[0];
    assert.equal(resync.event, 'ringhub.resync', `${how}: the first event is ringhub.resync`);
    const body = JSON.parse(resync.data);
    assert.equal(typeof body.reason, 'string');
    assert.ok(body.reason.length > 0, 'the resync says why');
    assert.equal(body.lastEventId, forged);
    assert.deepEqual(parseId(resync.id), { epoch, seq: 2 }, 'the resync carries the current position');
    s.close();
  }

  // A user nobody ever sent to: an id from elsewhere is of another epoch too.
  const stranger = fresh('stranger');
  const s = await RawStream.open(server.port, `/api/events/${stranger}`, { 'Last-Event-ID': forged });
  await until(() => s.events.length >= 1, 'the resync of a fresh user');
  assert.equal(s.events[0].event, 'ringhub.resync');
  assert.equal(JSON.parse(s.events[0].data).lastEventId, forged);
  await toUser(stranger, 'n', ['live']);
  await until(() => s.events.length >= 2, 'the live event after the resync');
  await sleep(100);
  assert.equal(s.events.length, 2);
  assert.equal(s.events[1].event, 'n');
  assert.equal(JSON.parse(s.events[1].data), 'live');
  const resyncAt = parseId(s.events[0].id);
  const liveAt = parseId(s.events[1].id);
  assert.equal(liveAt.epoch, resyncAt.epoch);
  assert.equal(liveAt.seq, resyncAt.seq + 1, 'the resync id is the position just before the next event');
  s.close();
});

test('any id the server did not issue gets ringhub.resync echoing it: garbage, quotes, over 63 bytes', async () => {
  const ids = ['garbage', 'x"y\\z-3', `${'a'.repeat(70)}-1`];
  const got = [];
  const expected = [];
  for (const id of ids) {
    for (const how of ['header', 'query']) {
      const path = `/api/events/${fresh('olga')}`;
      const s =
        how === 'header'
          ? await RawStream.open(server.port, path, { 'Last-Event-ID': id })
          : await RawStream.open(server.port, `${path}?lastEventId=${encodeURIComponent(id)}`);
      await until(() => s.events.length >= 1, `the resync for ${JSON.stringify(id)} (${how})`, 1000).catch(() => {});
      got.push([how, id, ...s.events.map((e) => [e.event, JSON.parse(e.data).lastEventId])]);
      expected.push([how, id, ['ringhub.resync', id]]);
      s.close();
    }
  }
  assert.deepEqual(got, expected);
});

test('with --events-history 5: an id still in the history replays; a too-old one gets ringhub.resync first', async () => {
  const small = await startServer(['--events-history', '5']);
  let stopped = false;
  try {
    // 4 missed: the last seen message and all later ones are in the history.
    const near = fresh('jo');
    let a = await RawStream.open(small.port, `/api/events/${near}`);
    await toUser(near, 'n', [0], { srv: small });
    await until(() => a.events.length >= 1, 'the first event');
    let seen = a.events[0].id;
    a.close();
    await sleep(100);
    for (let i = 1; i <= 4; i++) await toUser(near, 'n', [i], { srv: small });
    const b = await RawStream.open(small.port, `/api/events/${near}`, { 'Last-Event-ID': seen });
    await until(() => b.events.length >= 4, 'the replay of 4');
    await sleep(100);
    assert.deepEqual(b.events.map((e) => [e.event, JSON.parse(e.data)]), [1, 2, 3, 4].map((i) => ['n', i]));
    assertConsecutive(b.events, 2);
    b.close();

    // 20 missed: the history lost some, so the stream starts with a resync at the current
    // position and goes on live, replaying nothing.
    const far = fresh('kim');
    a = await RawStream.open(small.port, `/api/events/${far}`);
    await toUser(far, 'n', [0], { srv: small });
    await until(() => a.events.length >= 1, 'the first event');
    seen = a.events[0].id;
    const { epoch } = parseId(seen);
    a.close();
    await sleep(100);
    for (let i = 1; i <= 20; i++) await toUser(far, 'n', [i], { srv: small });
    const c = await RawStream.open(small.port, `/api/events/${far}`, { 'Last-Event-ID': seen });
    await until(() => c.events.length >= 1, 'the resync');
    await toUser(far, 'n', [21], { srv: small });
    await until(() => c.events.length >= 2, 'the live event');
    await sleep(200);
    assert.equal(c.events.length, 2, `only the resync and the live event: ${JSON.stringify(c.events)}`);
    assert.equal(c.events[0].event, 'ringhub.resync');
    const body = JSON.parse(c.events[0].data);
    assert.equal(body.lastEventId, seen);
    assert.equal(typeof body.reason, 'string');
    assert.deepEqual(parseId(c.events[0].id), { epoch, seq: 21 });
    assert.equal(c.events[1].event, 'n');
    assert.equal(JSON.parse(c.events[1].data), 21);
    assert.deepEqual(parseId(c.events[1].id), { epoch, seq: 22 });
    // Left open: the stop below must close it and still exit cleanly.
    await stopSendersOf(small);
    stopped = true;
    assert.equal(await small.stop(), 0, 'ringhub stops cleanly with an event stream open');
    await until(() => c.ended, 'the stream to be closed by the stop');
    c.close();
  } finally {
    if (!stopped) {
      await stopSendersOf(small).catch(() => {});
      await small.stop();
    }
  }
});

test('heartbeat comments every --events-heartbeat-ms; the stream starts with retry: 3000 and a comment', async () => {
  const beating = await startServer(['--events-heartbeat-ms', '200']);
  try {
    const s = await RawStream.open(beating.port, `/api/events/${fresh('lee')}`);
    const t0 = Date.now();
    assert.equal(s.lines[0], 'retry: 3000');
    assert.ok(s.lines[1].startsWith(':'), `the second line is a comment: ${JSON.stringify(s.lines[1])}`);
    await sleep(1100);
    const beats = s.comments.length - 1;
    assert.ok(beats >= 3 && beats <= 8, `${beats} heartbeats in ${Date.now() - t0} ms at 200 ms`);
    // Heartbeats are comments only: no event, no data.
    assert.deepEqual(s.events, []);
    assert.ok(!s.ended);
    s.close();
  } finally {
    assert.equal(await beating.stop(), 0);
  }
});

test('response headers: 200, text/event-stream, no-cache, X-Accel-Buffering: no, close-delimited, CORS echoes the Origin', async () => {
  const origin = 'http://app.example.test:3000';
  const s = await RawStream.open(server.port, `/api/events/${fresh('mia')}`, { Origin: origin });
  assert.equal(s.status, 200);
  assert.match(s.headers['content-type'], /^text\/event-stream\b/);
  // The spec says no-cache; ringhub adds no-store (and Pragma: no-cache), which only strengthens it.
  assert.ok(
    s.headers['cache-control'].split(/\s*,\s*/).includes('no-cache'),
    `Cache-Control: ${s.headers['cache-control']}`,
  );
  assert.equal(s.headers['x-accel-buffering'], 'no');
  assert.equal(s.headers['content-length'], undefined, 'no Content-Length');
  assert.equal(s.headers['transfer-encoding'], undefined, 'no chunked encoding');
  assert.equal(s.headers['access-control-allow-origin'], origin);
  assert.equal(s.headers['access-control-allow-credentials'], 'true');
  assert.equal(s.lines[0], 'retry: 3000');
  // The default heartbeat is 15 s: nothing more within half a second.
  await sleep(500);
  assert.equal(s.comments.length, 1);
  assert.equal(s.ended, false);
  s.close();
});

test('a request that says Connection: close still gets a stream that lasts (close-delimited body)', async () => {
  // What Python's urllib, or Node's http.request without an agent, send.
  const user = fresh('nils');
  const s = await RawStream.open(server.port, `/api/events/${user}`, { Connection: 'close' });
  await sleep(200);
  assert.equal(s.ended, false, 'the stream is still open after its first comment');
  await toUser(user, 'notification', ['after Connection: close']);
  await until(() => s.events.length >= 1 || s.ended, 'the event (or the end of the stream)');
  assert.deepEqual(
    s.events.map((e) => [e.event, JSON.parse(e.data)]),
    [['notification', 'after Connection: close']],
  );
  s.close();
});

test('a bad user name is refused with 400: empty, or over 256 bytes once URL-decoded', async () => {
  const bad = ['/api/events/', `/api/events/${'u'.repeat(257)}`, `/api/events/${'%C3%A9'.repeat(129)}`];
  for (const path of bad) {
    const r = await request(server.port, path);
    assert.equal(r.status, 400, `GET ${path.slice(0, 40)}... (${path.length} chars)`);
    assert.notEqual(r.headers['content-type'], 'text/event-stream');
  }
  // 256 bytes is fine, in ASCII or in 2-byte characters.
  for (const user of ['u'.repeat(256), 'é'.repeat(128)]) {
    const s = await RawStream.open(server.port, `/api/events/${encodeURIComponent(user)}`);
    await toUser(user, 'notification', ['long name']);
    await until(() => s.events.length >= 1, 'the event to the longest name');
    assert.equal(JSON.parse(s.events[0].data), 'long name');
    s.close();
  }
});
