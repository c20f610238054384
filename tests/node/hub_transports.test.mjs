// The Server-Sent Events and long-polling transports with the official SignalR JavaScript
// client (negotiate, then `transport: ServerSentEvents` or `LongPolling`; JSON, and MessagePack
// over long polling) against the real ringhub binary with several shards: everything the
// WebSocket suites check (handshake, Echo of every kind of value, errors, SendToAll,
// SendToConnection, groups, users, clean client stops, a clean server stop with a Close that
// allows reconnecting), then the transports' HTTP rules checked request by request with fetch
// (status codes and bodies of ASP.NET, superseded and ended polls, DELETE, transport changes,
// the poll and disconnect timeouts).
//
// Most clients send every HTTP request with `Connection: close`, so each negotiate, poll, POST
// and DELETE goes on a TCP connection of its own and the kernel's SO_REUSEPORT hash spreads
// them over the shards: a connection's requests then mostly reach a shard that does not own it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import WebSocket from 'ws';
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { startServer } from './server.mjs';
import { until } from './helpers.mjs';

const RS = '\u001e';
const HANDSHAKE = `{"protocol":"json","version":1}${RS}`;
// A JSON hub invocation of Echo(value) with @id, as a client would POST it.
const echo = (id, value) =>
  `{"type":1,"invocationId":"${id}","target":"Echo","arguments":[${JSON.stringify(value)}]}${RS}`;
const SHUTDOWN_CLOSE = `{"type":7,"error":"Server is shutting down.","allowReconnect":true}${RS}`;

const shardsArg = /--shards[= ](\d+)/.exec(process.env.RINGHUB_ARGS ?? '');
const SHARDS = shardsArg && Number(shardsArg[1]) > 0 ? Number(shardsArg[1]) : os.availableParallelism();
const ATTEMPTS = 20 + 20 * SHARDS; // connections spread() may open to cover every shard

// The transports under test and the hub protocols each carries (SSE is Text only).
const VARIANTS = [
  { transport: 'ServerSentEvents', protocol: 'json' },
  { transport: 'LongPolling', protocol: 'json' },
  { transport: 'LongPolling', protocol: 'messagepack' },
];
const TRANSPORT_CLASS = {
  WebSockets: 'WebSocketTransport',
  ServerSentEvents: 'ServerSentEventsTransport',
  LongPolling: 'LongPollingTransport',
};

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  assert.equal(await server.stop(), 0, 'ringhub stops cleanly with nothing left allocated');
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The client's HTTP client, recording every request (method, url, status). With ownSocket,
// every request carries `Connection: close` and so gets a TCP connection of its own.
class RecordingHttpClient extends signalR.DefaultHttpClient {
  constructor(ownSocket) {
    super(signalR.NullLogger.instance);
    this.ownSocket = ownSocket;
    this.log = [];
  }

  async send(request) {
    const entry = { method: request.method, url: request.url, status: undefined };
    this.log.push(entry);
    const headers = this.ownSocket ? { ...request.headers, Connection: 'close' } : request.headers;
    try {
      const response = await super.send({ ...request, headers });
      entry.status = response.statusCode;
      return response;
    } catch (error) {
      entry.status = error.statusCode ?? error.name;
      throw error;
    }
  }

  // The connection token the client uses in ?id= (from its first request after negotiate).
  get token() {
    const entry = this.log.find((e) => new URL(e.url).searchParams.has('id'));
    return entry && new URL(entry.url).searchParams.get('id');
  }
}

const TARGETS = ['msg', 'marker'];

// One official client and what it received: inbox holds {target, args} in arrival order.
// transport: 'ServerSentEvents', 'LongPolling' or 'WebSockets' (always negotiated).
class Client {
  constructor(srv, { transport, protocol = 'json', hub = 'chat', user, ownSocket = true, reconnect }) {
    const url = srv.url(hub) + (user === undefined ? '' : `?user=${encodeURIComponent(user)}`);
    this.http = new RecordingHttpClient(ownSocket);
    const builder = new signalR.HubConnectionBuilder()
      .withUrl(url, { transport: signalR.HttpTransportType[transport], httpClient: this.http })
      .configureLogging(signalR.LogLevel.None);
    if (reconnect) builder.withAutomaticReconnect(reconnect);
    if (protocol === 'messagepack') builder.withHubProtocol(new MessagePackHubProtocol());
    this.transport = transport;
    this.protocol = protocol;
    this.user = user;
    this.connection = builder.build();
    this.inbox = [];
    this.closed = false;
    this.closeError = undefined;
    for (const target of TARGETS) {
      this.connection.on(target, (...args) => {
        this.inbox.push({ target, args });
      });
    }
    this.connection.onclose((error) => {
      this.closed = true;
      this.closeError = error;
    });
  }

  async start() {
    await this.connection.start();
    assert.equal(this.connection.state, signalR.HubConnectionState.Connected);
    // The transport asked for is the one in use (the client does not fall back when told one).
    assert.equal(this.connection.connection.transport.constructor.name, TRANSPORT_CLASS[this.transport]);
  }

  get id() {
    return this.connection.connectionId;
  }

  get shard() {
    return Number((Buffer.from(this.id, 'base64url').readBigUInt64BE(0) >> 44n) & 0xffn);
  }

  got(target = 'msg') {
    return this.inbox.filter((m) => m.target === target).map((m) => m.args);
  }

  invoke(...args) {
    return this.connection.invoke(...args);
  }

  send(...args) {
    return this.connection.send(...args);
  }

  // Every POST the server has answered so far was a 200 (a failed POST only rejects the
  // send, it does not close the client, so check it here).
  checkPosts() {
    const posts = this.http.log.filter((e) => e.method === 'POST' && e.status !== undefined);
    const bad = posts.filter((e) => e.status !== 200);
    assert.deepEqual(bad, [], 'every POST got 200');
  }

  // Stops the client and checks that it was not closed before, nor with an error.
  async stop() {
    if (this.connection.state === signalR.HubConnectionState.Disconnected) return;
    assert.equal(this.closed, false, `the ${this.transport} client was still connected`);
    this.checkPosts();
    await this.connection.stop();
    assert.equal(this.closeError, undefined, `the ${this.transport} client stopped without an error`);
  }
}

// Starts a client whose test stops it at its end (whatever happens).
async function open(t, options, srv = server) {
  const c = new Client(srv, options);
  t.after(() => c.stop());
  await c.start();
  return c;
}

// Clients, options(i) for the i-th, until every shard has at least perShard of them and there
// are at least atLeast in all.
async function spread(t, options, { perShard = 2, atLeast = 0 } = {}) {
  const clients = [];
  for (;;) {
    const counts = Array.from({ length: SHARDS }, (_, s) => clients.filter((c) => c.shard === s).length);
    if (counts.every((n) => n >= perShard) && clients.length >= atLeast) return clients;
    if (clients.length >= ATTEMPTS) {
      assert.fail(`${ATTEMPTS} connections did not cover ${SHARDS} shards (per shard: ${counts})`);
    }
    clients.push(await open(t, options(clients.length)));
  }
}

// Sends a SendToAll marker from @sender and waits until each of @clients has it: whatever was
// on its way to them before is then in their inbox (see hub_groups.test.mjs).
let markers = 0;
async function settle(sender, clients) {
  const token = `marker ${++markers}`;
  assert.equal(await sender.invoke('SendToAll', 'marker', token), null);
  await until(
    () => clients.every((c) => c.got('marker').some(([m]) => m === token)),
    `every client to get "${token}"`,
  );
}

function received(clients, count, what) {
  return until(() => clients.every((c) => c.got().length >= count), what);
}

const values = [
  'hello',
  '',
  'ünïcødé ✓ 😀',
  'quote " backslash \\ newline \n carriage return \r\n record separator \u001e nul \u0000',
  'data: not an SSE field\n\nid: 7\r\n:',
  0,
  -42,
  2 ** 40,
  3.25,
  true,
  false,
  null,
  [],
  {},
  [1, 'two', [3, null], { four: 4 }],
  { name: 'Ada', tags: ['x', 'y'], nested: { deep: { deeper: [true, false] } } },
  'x'.repeat(20000),
];

for (const variant of VARIANTS) {
  const { transport, protocol } = variant;
  const name = `${transport} ${protocol}`;
  const mine = (extra = {}) => ({ transport, protocol, ...extra });

  test(`${name}: the handshake completes and Echo returns every kind of value unchanged`, async (t) => {
    // The client as it comes (keep-alive sockets) and one with a socket per request.
    for (const ownSocket of [false, true]) {
      const c = await open(t, mine({ ownSocket }));
      assert.match(c.id, /^[A-Za-z0-9_-]{22}$/);
      for (const value of values) assert.deepEqual(await c.invoke('Echo', value), value);
      assert.equal(await c.invoke('echo', 'case-insensitive'), 'case-insensitive');
      // Many at once: the client batches them into few POSTs; each completion finds its call.
      const many = await Promise.all(Array.from({ length: 100 }, (_, i) => c.invoke('Echo', { i })));
      many.forEach((answer, i) => assert.deepEqual(answer, { i }));
      if (protocol === 'messagepack') {
        const bytes = new Uint8Array([0, 1, 2, 10, 13, 30, 250, 255]);
        assert.deepEqual(Array.from(await c.invoke('Echo', bytes)), Array.from(bytes));
      }
      await c.stop();
      assert.equal(c.connection.state, signalR.HubConnectionState.Disconnected);
    }
  });

  test(`${name}: unknown methods and bad arguments reject with the server's message`, async (t) => {
    const c = await open(t, mine());
    await assert.rejects(c.invoke('NoSuchMethod', 1), /Unknown hub method 'NoSuchMethod'/);
    await assert.rejects(c.invoke('Echo', 1, 2), /Failed to invoke 'Echo'/);
    await assert.rejects(c.invoke('JoinGroup', 42), /'JoinGroup'/);
    await assert.rejects(c.invoke('SendToUser'), /'SendToUser'/);
    // The connection survives all of them.
    assert.equal(await c.invoke('Echo', 'still here'), 'still here');
  });

  test(`${name}: SendToAll reaches every client of the hub once, on every shard, in every protocol`, async (t) => {
    const clients = await spread(t, () => mine());
    // WebSocket clients of both protocols, and long-polling ones of the other protocol.
    clients.push(await open(t, { transport: 'WebSockets', protocol: 'json' }));
    clients.push(await open(t, { transport: 'WebSockets', protocol: 'messagepack' }));
    clients.push(await open(t, { transport: 'LongPolling', protocol: protocol === 'json' ? 'messagepack' : 'json' }));
    const elsewhere = await open(t, mine({ hub: 'other' }));

    const fromMine = ['from ' + name, 42, -7, 2.5, true, null, [1, 'two'], { nested: { x: [1, 2] } }];
    const fromWs = ['from websocket', { n: 1, s: 'ünï' }, [null, false]];
    assert.equal(await clients[0].invoke('SendToAll', 'msg', ...fromMine), null);
    assert.equal(await clients.at(-2).invoke('SendToAll', 'msg', ...fromWs), null);
    await received(clients, 2, 'every client to get both messages');
    await settle(clients[1], [...clients]);

    const key = (args) => JSON.stringify(args);
    for (const c of clients) assert.deepEqual(c.got().map(key).sort(), [key(fromMine), key(fromWs)].sort());
    assert.equal(await elsewhere.invoke('Echo', 'ping'), 'ping');
    assert.deepEqual(elsewhere.got(), []);
  });

  test(`${name}: SendToConnection reaches exactly the connection named`, async (t) => {
    const clients = await spread(t, () => mine(), { atLeast: 6 });
    clients.push(await open(t, { transport: 'WebSockets', protocol: 'messagepack' }));
    const ids = clients.map((c) => c.id);
    assert.equal(new Set(ids).size, ids.length);
    await Promise.all(
      clients.map((c, i) => c.invoke('SendToConnection', ids[(i + 1) % ids.length], 'msg', { from: i })),
    );
    await received(clients, 1, 'every client to get its message');
    // An id nobody has completes quietly, as in ASP.NET.
    assert.equal(await clients[0].invoke('SendToConnection', 'AAAAAAAAAAAAAAAAAAAAAA', 'msg', 1), null);
    await settle(clients[0], clients);
    clients.forEach((c, i) => assert.deepEqual(c.got(), [[{ from: (i + clients.length - 1) % clients.length }]]));
  });

  test(`${name}: JoinGroup, SendToGroup, SendToOthersInGroup and LeaveGroup`, async (t) => {
    const members = await spread(t, () => mine());
    const outsider = await open(t, mine());
    for (const m of members) assert.equal(await m.invoke('JoinGroup', 'room'), null);

    assert.equal(await outsider.invoke('SendToGroup', 'room', 'msg', 'from outside', 1), null);
    assert.equal(await members[0].invoke('sendtogroup', 'room', 'msg', 'from inside', 2), null);
    await received(members, 2, 'every member to get both messages');
    await settle(outsider, [...members, outsider]);
    for (const m of members) {
      assert.deepEqual(m.got().map((a) => JSON.stringify(a)).sort(), [
        JSON.stringify(['from inside', 2]),
        JSON.stringify(['from outside', 1]),
      ]);
    }
    assert.deepEqual(outsider.got(), []);

    // Everyone but the caller.
    const caller = members.at(-1);
    const others = members.filter((m) => m !== caller);
    assert.equal(await caller.invoke('SendToOthersInGroup', 'room', 'msg', 'not me'), null);
    await received(others, 3, 'every other member to get "not me"');
    assert.equal(await caller.invoke('SendToGroup', 'room', 'msg', 'everyone'), null);
    await received(members, 3, 'every member to get "everyone"');
    await settle(caller, [...members, outsider]);
    assert.deepEqual(caller.got().slice(2), [['everyone']]);
    for (const m of others) assert.deepEqual(m.got().slice(2), [['not me'], ['everyone']]);

    // One member on each shard leaves; the others stay.
    const leavers = Array.from({ length: SHARDS }, (_, s) => members.find((m) => m.shard === s && m !== caller));
    for (const l of leavers) assert.equal(await l.invoke('LeaveGroup', 'room'), null);
    const stayers = members.filter((m) => !leavers.includes(m));
    assert.equal(await outsider.invoke('SendToGroup', 'room', 'msg', 'after leaving'), null);
    await received(stayers, 4, 'the members who stayed to get "after leaving"');
    await settle(outsider, [...members, outsider]);
    for (const m of stayers) {
      assert.deepEqual(m.got().slice(m === caller ? 3 : 4), [['after leaving']]);
    }
    for (const l of leavers) assert.deepEqual(l.got().slice(2), [['not me'], ['everyone']]);
    assert.deepEqual(outsider.got(), []);
  });

  test(`${name}: SendToUser reaches all connections of the ?user= and no other`, async (t) => {
    const alice = await spread(t, () => mine({ user: 'alice' }), { perShard: 1, atLeast: 3 });
    const bob = await open(t, mine({ user: 'bob' }));
    const zoe = await open(t, mine({ user: 'zoë ✓' }));
    const aliceWs = await open(t, { transport: 'WebSockets', protocol: 'messagepack', user: 'alice' });
    const anonymous = await open(t, mine());
    const everyone = [...alice, aliceWs, bob, zoe, anonymous];

    assert.equal(await bob.invoke('SendToUser', 'alice', 'msg', 'for alice', [1, 2]), null);
    await received([...alice, aliceWs], 1, "every one of alice's connections to get it");
    assert.equal(await anonymous.invoke('SendToUser', 'zoë ✓', 'msg', 'for zoë'), null);
    await received([zoe], 1, 'zoë (a percent-encoded user name) to get hers');
    assert.equal(await alice[0].invoke('SendToUser', 'alice', 'msg', 'self'), null);
    assert.equal(await alice[0].invoke('SendToUser', 'Alice', 'msg', 'other case'), null);
    await received([...alice, aliceWs], 2, "alice's connections to get alice's own message");
    await settle(bob, everyone);

    for (const a of [...alice, aliceWs]) assert.deepEqual(a.got(), [['for alice', [1, 2]], ['self']]);
    assert.deepEqual(zoe.got(), [['for zoë']]);
    assert.deepEqual(bob.got(), []);
    assert.deepEqual(anonymous.got(), []);
  });

  test(`${name}: a client that stops is closed without an error on either side`, async (t) => {
    const c = new Client(server, mine());
    await c.start();
    const peer = await open(t, { transport: 'WebSockets', protocol: 'json' });
    assert.equal(await c.invoke('JoinGroup', 'stoppers'), null);
    const { id, http } = c;
    const token = http.token;
    assert.ok(token, 'the client sent requests with ?id=');
    await c.stop();
    assert.equal(c.closed, true);
    assert.equal(c.closeError, undefined);
    if (transport === 'LongPolling') {
      const del = c.http.log.filter((e) => e.method === 'DELETE');
      assert.equal(del.length, 1, 'the client sends one DELETE');
      // 404 when the client's Close (sent just before) ended the connection first.
      assert.ok([202, 404].includes(del[0].status), `DELETE answered ${del[0].status}`);
    }
    // The server has let the connection go: its token is unknown, and sends to its id and to its
    // group complete quietly.
    await until(
      async () => (await request('POST', `/hubs/chat?id=${token}`, { body: `{"type":6}${RS}` })).status === 404,
      'a POST with the stopped connection token to get 404',
    );
    assert.equal(await peer.invoke('SendToConnection', id, 'msg', 'gone'), null);
    assert.equal(await peer.invoke('SendToGroup', 'stoppers', 'msg', 'gone'), null);
    assert.deepEqual(c.got(), []);
  });
}

// ---- raw HTTP, request by request ----

// One request on a TCP connection of its own; resolves to {status, type, text, headers}.
async function request(method, path, { body, headers = {}, signal, port = server.port } = {}) {
  const r = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    body,
    signal,
    headers: { Connection: 'close', ...headers },
  });
  return { status: r.status, type: r.headers.get('content-type'), headers: r.headers, text: await r.text() };
}

async function negotiate(port = server.port, hub = 'chat') {
  const r = await request('POST', `/hubs/${hub}/negotiate?negotiateVersion=1`, { port });
  assert.equal(r.status, 200);
  return JSON.parse(r.text);
}

// A raw long-polling JSON session: negotiated, activated by its first poll and handshaken.
// poll() and post(body) send one request each, on a TCP connection of their own.
async function longPolling(port = server.port) {
  const n = await negotiate(port);
  const path = `/hubs/chat?id=${n.connectionToken}`;
  const first = await request('GET', `${path}&_=${Date.now()}`, { port });
  assert.equal(first.status, 200, 'the first poll');
  assert.equal(first.text, '');
  const post = await request('POST', path, { body: HANDSHAKE, port });
  assert.equal(post.status, 200, 'the handshake POST');
  const session = {
    ...n,
    path,
    port,
    poll: (options = {}) => request('GET', `${path}&_=${Date.now()}`, { port, ...options }),
    post: (body) => request('POST', path, { body, port }),
  };
  const r = await session.poll();
  assert.equal(r.status, 200);
  assert.equal(r.text, `{}${RS}`, 'the handshake response');
  return session;
}

// A raw SSE stream: resolves once the headers are in; waitFor(predicate) waits until the body so
// far satisfies it (or the stream ended); done resolves when the stream ends. The GET goes on a
// socket of its own (undici's pool has no idle one while the others stream) unless close asks
// for `Connection: close`.
async function sseStream(token, { port = server.port, hub = 'chat', close = false } = {}) {
  const controller = new AbortController();
  const r = await fetch(`http://127.0.0.1:${port}/hubs/${hub}?id=${token}`, {
    headers: { Accept: 'text/event-stream', ...(close ? { Connection: 'close' } : {}) },
    signal: controller.signal,
  });
  const stream = { status: r.status, headers: r.headers, body: '', ended: false, error: undefined };
  const decoder = new TextDecoder();
  stream.done = (async () => {
    try {
      for await (const chunk of r.body) stream.body += decoder.decode(chunk, { stream: true });
      stream.ended = true;
    } catch (error) {
      stream.error = error;
    }
  })();
  stream.abort = () => controller.abort();
  stream.waitFor = (predicate, what) => until(() => predicate(stream.body) || stream.ended, what);
  return stream;
}

test('negotiate lists WebSockets, ServerSentEvents and LongPolling with their formats', async () => {
  const n = await negotiate();
  assert.equal(n.negotiateVersion, 1);
  assert.match(n.connectionId, /^[A-Za-z0-9_-]{22}$/);
  assert.match(n.connectionToken, /^[A-Za-z0-9_-]+$/);
  assert.notEqual(n.connectionToken, n.connectionId);
  assert.deepEqual(n.availableTransports, [
    { transport: 'WebSockets', transferFormats: ['Text', 'Binary'] },
    { transport: 'ServerSentEvents', transferFormats: ['Text'] },
    { transport: 'LongPolling', transferFormats: ['Text', 'Binary'] },
  ]);
});

test('requests without an id get 400 "Connection ID required"', async () => {
  for (const [method, headers] of [
    ['POST', {}],
    ['GET', {}],
    ['GET', { Accept: 'text/event-stream' }],
    ['DELETE', {}],
  ]) {
    const r = await request(method, '/hubs/chat', { body: method === 'POST' ? `{"type":6}${RS}` : undefined, headers });
    assert.equal(r.status, 400, `${method} ${JSON.stringify(headers)}`);
    assert.match(r.text, /Connection ID required/, `${method} ${JSON.stringify(headers)}`);
    assert.match(r.type, /^text\/plain/);
  }
  // An empty id is no id.
  const r = await request('POST', '/hubs/chat?id=', { body: `{"type":6}${RS}` });
  assert.equal(r.status, 400);
  assert.match(r.text, /Connection ID required/);
});

test('requests with an unknown id get 404 "No Connection with that ID"', async () => {
  for (const id of ['AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'nonsense', 'A'.repeat(60), '%2F..%2F']) {
    for (const [method, headers] of [
      ['GET', {}],
      ['GET', { Accept: 'text/event-stream' }],
      ['POST', {}],
      ['DELETE', {}],
    ]) {
      const r = await request(method, `/hubs/chat?id=${id}&_=1`, {
        body: method === 'POST' ? `{"type":6}${RS}` : undefined,
        headers,
      });
      assert.equal(r.status, 404, `${method} ${JSON.stringify(headers)} id=${id}`);
      assert.match(r.text, /No Connection with that ID/, `${method} id=${id}`);
    }
  }
  // A token serves only the hub it was negotiated for.
  const n = await negotiate(server.port, 'other');
  for (const [method, headers] of [
    ['GET', {}],
    ['GET', { Accept: 'text/event-stream' }],
    ['POST', {}],
    ['DELETE', {}],
  ]) {
    const r = await request(method, `/hubs/chat?id=${n.connectionToken}&_=1`, {
      body: method === 'POST' ? HANDSHAKE : undefined,
      headers,
    });
    assert.equal(r.status, 404, `${method} ${JSON.stringify(headers)} with another hub's token`);
  }
  assert.equal(await wsStatus(n.connectionToken), 404, "a WebSocket with another hub's token");
  // ... and still serves that one.
  const r = await request('GET', `/hubs/other?id=${n.connectionToken}&_=1`);
  assert.equal(r.status, 200, "the first poll on the token's own hub");
  assert.equal((await request('DELETE', `/hubs/other?id=${n.connectionToken}`)).status, 202);
});

test('a long unknown id (300 characters) is unknown too: 404, not "Connection ID required"', async () => {
  for (const [method, headers] of [
    ['GET', {}],
    ['GET', { Accept: 'text/event-stream' }],
    ['POST', {}],
    ['DELETE', {}],
  ]) {
    const r = await request(method, `/hubs/chat?id=${'A'.repeat(300)}`, {
      body: method === 'POST' ? `{"type":6}${RS}` : undefined,
      headers,
    });
    assert.equal(r.status, 404, `${method} ${JSON.stringify(headers)}: ${r.text}`);
    assert.match(r.text, /No Connection with that ID/);
  }
  // A WebSocket with such an id must not open a new connection either.
  assert.equal(await wsStatus('A'.repeat(300)), 404, 'a WebSocket with a 300-character unknown id');
});

test('long polling, request by request: first poll, data, superseded poll, DELETE', async () => {
  const n = await negotiate();
  const path = `/hubs/chat?id=${n.connectionToken}`;
  // The first poll activates the connection and returns at once, empty.
  const started = Date.now();
  const first = await request('GET', `${path}&_=${Date.now()}`);
  assert.equal(first.status, 200);
  assert.equal(first.text, '');
  assert.equal(first.type, 'application/octet-stream');
  assert.ok(Date.now() - started < 2000, 'the first poll is not held');

  assert.equal((await request('POST', path, { body: HANDSHAKE })).status, 200);
  let r = await request('GET', `${path}&_=${Date.now()}`);
  assert.equal(r.status, 200);
  assert.equal(r.type, 'application/octet-stream');
  assert.equal(r.headers.get('content-length'), '3');
  assert.equal(r.text, `{}${RS}`);
  assert.match(r.headers.get('cache-control') ?? '', /no-cache/);

  // Two invocations in one POST; the poll brings both completions (possibly over two polls).
  const post = await request('POST', path, {
    body: echo('1', 'a') + echo('2', { b: [1, 2] }),
    headers: { 'Content-Type': 'text/plain;charset=UTF-8' },
  });
  assert.equal(post.status, 200);
  assert.equal(post.text, '');
  let text = '';
  while (text.split(RS).length < 3) {
    r = await request('GET', `${path}&_=${Date.now()}`);
    assert.equal(r.status, 200);
    text += r.text;
  }
  assert.deepEqual(
    text.split(RS).filter(Boolean).map((m) => JSON.parse(m)),
    [
      { type: 3, invocationId: '1', result: 'a' },
      { type: 3, invocationId: '2', result: { b: [1, 2] } },
    ],
  );

  // A second poll supersedes a held one: the old one gets 204, the new one is held.
  const held = request('GET', `${path}&_=${Date.now()}`);
  await sleep(200);
  const newer = request('GET', `${path}&_=${Date.now()}`);
  const old = await held;
  assert.equal(old.status, 204, 'the superseded poll');
  assert.equal(old.text, '');
  // The newer poll still works: it gets the next message.
  await sleep(100);
  assert.equal(
    (await request('POST', path, { body: `{"type":1,"invocationId":"3","target":"Echo","arguments":[3]}${RS}` })).status,
    200,
  );
  r = await newer;
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.text.split(RS)[0]), { type: 3, invocationId: '3', result: 3 });

  // DELETE ends it: 202, the poll held meanwhile gets 204, later requests 404 (or 204).
  const waiting = request('GET', `${path}&_=${Date.now()}`);
  await sleep(200);
  const del = await request('DELETE', path);
  assert.equal(del.status, 202);
  assert.match(del.type, /^text\/plain/);
  assert.equal((await waiting).status, 204, 'the poll held during the DELETE');
  const next = await request('GET', `${path}&_=${Date.now()}`);
  assert.ok([204, 404].includes(next.status), `a poll after DELETE got ${next.status}`);
  await until(async () => (await request('GET', `${path}&_=${Date.now()}`)).status === 404, 'polls to get 404');
  assert.equal((await request('POST', path, { body: `{"type":6}${RS}` })).status, 404);
  assert.equal((await request('DELETE', path)).status, 404);
});

test('long polling: the client sees its own messages, and a DELETE of a busy connection', async () => {
  const s = await longPolling();
  const body = `{"type":1,"target":"SendToConnection","arguments":["${s.connectionId}","msg",1]}${RS}`;
  assert.equal((await s.post(body)).status, 200);
  const r = await s.poll();
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.text.split(RS)[0]), { type: 1, target: 'msg', arguments: [1] });
  // Messages pending at the DELETE are dropped with the connection.
  assert.equal((await s.post(body)).status, 200);
  assert.equal((await request('DELETE', s.path)).status, 202);
  const after = await s.poll();
  assert.ok([200, 204, 404].includes(after.status), `a poll after DELETE got ${after.status}`);
  await until(async () => (await s.poll()).status === 404, 'polls to get 404');
});

test('Server-Sent Events, request by request', async () => {
  const n = await negotiate();
  const path = `/hubs/chat?id=${n.connectionToken}`;
  const sse = await sseStream(n.connectionToken);
  assert.equal(sse.status, 200);
  assert.match(sse.headers.get('content-type'), /^text\/event-stream/);
  assert.match(sse.headers.get('cache-control') ?? '', /no-cache/);
  assert.equal(sse.headers.get('content-length'), null, 'no Content-Length on a stream');
  await sse.waitFor((b) => b.length >= 3, 'the first bytes');
  assert.equal(sse.body.slice(0, 3), ':\r\n');

  assert.equal((await request('POST', path, { body: HANDSHAKE })).status, 200);
  await sse.waitFor((b) => b.includes('\r\n\r\n'), 'the handshake event');
  assert.equal(sse.body, `:\r\ndata: {}${RS}\r\n\r\n`);

  assert.equal((await request('POST', path, { body: echo('1', 'line\nbreak') })).status, 200);
  await sse.waitFor((b) => b.split('\r\n\r\n').length >= 3, 'the completion event');
  assert.equal(
    sse.body,
    `:\r\ndata: {}${RS}\r\n\r\ndata: {"type":3,"invocationId":"1","result":"line\\nbreak"}${RS}\r\n\r\n`,
  );

  // The connection is SSE's now: a poll, a second stream, a DELETE and a WebSocket are refused.
  let r = await request('GET', `${path}&_=1`);
  assert.equal(r.status, 400, 'a poll on an SSE connection');
  assert.match(r.text, /Cannot change transports mid-connection/);
  r = await request('GET', path, { headers: { Accept: 'text/event-stream' } });
  assert.equal(r.status, 409, 'a second SSE stream for the same connection');
  r = await request('DELETE', path);
  assert.equal(r.status, 400, 'a DELETE on an SSE connection');
  assert.match(r.text, /Cannot terminate this connection using the DELETE endpoint/);
  assert.equal(await wsStatus(n.connectionToken), 400, 'a WebSocket on an SSE connection');
  // It still works after all that.
  assert.equal((await request('POST', path, { body: echo('2', 2) })).status, 200);
  await sse.waitFor((b) => b.includes('"invocationId":"2"'), 'the second completion');
  assert.equal(sse.ended, false);

  // Closing the stream (as the client does on stop, without a DELETE) ends the connection.
  sse.abort();
  await sse.done;
  await until(async () => (await request('POST', path, { body: `{"type":6}${RS}` })).status === 404, 'POSTs to get 404');
});

test('an SSE request that says Connection: close gets a working stream', async () => {
  // A proxy (nginx by default) may send every upstream request with Connection: close; that
  // only means the TCP connection ends with the response, and an SSE response is long.
  const n = await negotiate();
  const path = `/hubs/chat?id=${n.connectionToken}`;
  const sse = await sseStream(n.connectionToken, { close: true });
  assert.equal(sse.status, 200);
  await sse.waitFor((b) => b.length >= 3, 'the first bytes');
  await sleep(200);
  assert.equal(sse.ended, false, 'the stream is still open after its first bytes');
  const post = await request('POST', path, { body: HANDSHAKE });
  assert.equal(post.status, 200, `the handshake POST: ${post.text}`);
  await sse.waitFor((b) => b.includes('\r\n\r\n'), 'the handshake event');
  assert.equal(sse.body, `:\r\ndata: {}${RS}\r\n\r\n`);
  sse.abort();
  await sse.done;
});

test('a hub Close sent by POST ends an SSE stream and a long-polling connection', async () => {
  const n = await negotiate();
  const path = `/hubs/chat?id=${n.connectionToken}`;
  const sse = await sseStream(n.connectionToken);
  assert.equal((await request('POST', path, { body: HANDSHAKE })).status, 200);
  await sse.waitFor((b) => b.includes(`{}${RS}`), 'the handshake event');
  assert.equal((await request('POST', path, { body: `{"type":7}${RS}` })).status, 200);
  await until(() => sse.ended || sse.error, 'the SSE stream to end', 5000);
  assert.equal(sse.error, undefined, 'the stream ends cleanly (a complete chunked body)');
  await until(async () => (await request('POST', path, { body: `{"type":6}${RS}` })).status === 404, 'POSTs to get 404');

  const s = await longPolling();
  const held = s.poll();
  await sleep(200);
  assert.equal((await s.post(`{"type":7}${RS}`)).status, 200);
  const r = await held;
  assert.equal(r.status, 204, 'the poll held when the client closes');
  await until(async () => (await s.poll()).status === 404, 'polls to get 404');
});

// Opens a WebSocket on /hubs/chat?id=token; resolves to 'opened' or the refusal's status.
function wsStatus(token, port = server.port) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/hubs/chat?id=${token}`);
    ws.on('unexpected-response', (req, res) => {
      resolve(res.statusCode);
      req.destroy();
    });
    ws.on('open', () => {
      ws.terminate();
      resolve('opened');
    });
    ws.on('error', () => {});
  });
}

test('a WebSocket connection refuses POST (405), polls, SSE and DELETE (400)', async () => {
  const n = await negotiate();
  const path = `/hubs/chat?id=${n.connectionToken}`;
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}${path}`);
  const messages = [];
  ws.on('message', (data) => messages.push(data.toString()));
  await new Promise((resolve, reject) => {
    ws.on('open', resolve);
    ws.on('error', reject);
  });
  ws.send(HANDSHAKE);
  await until(() => messages.length >= 1, 'the handshake response');
  assert.equal(messages[0], `{}${RS}`);

  let r = await request('POST', path, { body: `{"type":1,"invocationId":"1","target":"Echo","arguments":[1]}${RS}` });
  assert.equal(r.status, 405);
  assert.match(r.text, /POST requests are not allowed for WebSocket connections/);
  r = await request('GET', `${path}&_=1`);
  assert.equal(r.status, 400, 'a poll on a WebSocket connection');
  assert.match(r.text, /Cannot change transports mid-connection/);
  r = await request('GET', path, { headers: { Accept: 'text/event-stream' } });
  assert.equal(r.status, 400, 'SSE on a WebSocket connection');
  assert.match(r.text, /Cannot change transports mid-connection/);
  r = await request('DELETE', path);
  assert.equal(r.status, 400, 'a DELETE on a WebSocket connection');
  assert.match(r.text, /Cannot terminate this connection using the DELETE endpoint/);

  // The WebSocket session did not see any of it.
  ws.send(`{"type":1,"invocationId":"2","target":"Echo","arguments":[2]}${RS}`);
  await until(() => messages.some((m) => m.includes('"invocationId":"2"')), 'the Echo over the WebSocket');
  assert.deepEqual(
    messages.slice(1).join('').split(RS).filter(Boolean).map((m) => JSON.parse(m)).filter((m) => m.type !== 6),
    [{ type: 3, invocationId: '2', result: 2 }],
  );
  const closed = new Promise((resolve) => ws.on('close', resolve));
  ws.close();
  await closed;
});

test('a long-polling connection refuses SSE and a WebSocket (400)', async () => {
  const s = await longPolling();
  let r = await request('GET', s.path, { headers: { Accept: 'text/event-stream' } });
  assert.equal(r.status, 400);
  assert.match(r.text, /Cannot change transports mid-connection/);
  assert.equal(await wsStatus(s.connectionToken), 400);
  // Still alive.
  assert.equal((await s.post(`{"type":1,"invocationId":"1","target":"Echo","arguments":[1]}${RS}`)).status, 200);
  r = await s.poll();
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.text.split(RS)[0]), { type: 3, invocationId: '1', result: 1 });
  assert.equal((await request('DELETE', s.path)).status, 202);
});

test('MessagePack over raw long polling: binary bodies both ways', async () => {
  const n = await negotiate();
  const path = `/hubs/chat?id=${n.connectionToken}`;
  assert.equal((await request('GET', `${path}&_=1`)).status, 200);
  assert.equal((await request('POST', path, { body: `{"protocol":"messagepack","version":1}${RS}` })).status, 200);
  let r = await fetch(`http://127.0.0.1:${server.port}${path}&_=2`, { headers: { Connection: 'close' } });
  assert.equal(r.status, 200);
  assert.deepEqual(Buffer.from(await r.arrayBuffer()).toString(), `{}${RS}`);
  // [1, {}, "7", "Echo", [bin 0..255]] with a varint length prefix.
  const protocol = new MessagePackHubProtocol();
  const bytes = new Uint8Array(256).map((_, i) => i);
  const message = protocol.writeMessage({ type: 1, invocationId: '7', target: 'Echo', arguments: [bytes], headers: {} });
  const post = await fetch(`http://127.0.0.1:${server.port}${path}`, {
    method: 'POST',
    body: new Uint8Array(message),
    headers: { Connection: 'close', 'Content-Type': 'application/octet-stream' },
  });
  assert.equal(post.status, 200);
  r = await fetch(`http://127.0.0.1:${server.port}${path}&_=3`, { headers: { Connection: 'close' } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/octet-stream');
  const [completion] = protocol.parseMessages(await r.arrayBuffer(), signalR.NullLogger.instance);
  assert.equal(completion.type, 3);
  assert.equal(completion.invocationId, '7');
  assert.deepEqual(Array.from(completion.result), Array.from(bytes));
  assert.equal((await request('DELETE', path)).status, 202);
});

// ---- timeouts, on a server of its own ----

test('--poll-timeout-ms and --disconnect-timeout-ms', { timeout: 30000 }, async () => {
  const srv = await startServer(['--poll-timeout-ms', '500', '--disconnect-timeout-ms', '1000']);
  const clients = [];
  try {
    const port = srv.port;
    // Official clients of every transport stay connected well past both timeouts.
    for (const v of [...VARIANTS, { transport: 'WebSockets', protocol: 'json' }]) {
      const c = new Client(srv, v);
      clients.push(c);
      await c.start();
    }

    // A raw session that keeps polling, one that stops polling, a negotiate never used.
    const polling = await longPolling(port);
    const idle = await longPolling(port);
    const unused = await negotiate(port);

    // A held poll with nothing to send returns 200, empty, text/plain, after the poll timeout.
    const started = Date.now();
    const r = await polling.poll();
    const held = Date.now() - started;
    assert.equal(r.status, 200);
    assert.equal(r.text, '');
    assert.match(r.type, /^text\/plain/);
    assert.ok(held >= 400 && held < 3000, `held ${held} ms`);

    // 3 s of polls (each times out) keep a connection; no poll for that long drops it.
    const end = started + 3000;
    while (Date.now() < end) assert.equal((await polling.poll()).status, 200);

    let p = await idle.poll();
    assert.equal(p.status, 404, 'a poll on a connection that stopped polling 3 s ago');
    assert.match(p.text, /No Connection with that ID/);
    assert.equal((await idle.post(`{"type":6}${RS}`)).status, 404);
    p = await request('GET', `/hubs/chat?id=${unused.connectionToken}&_=1`, { port });
    assert.equal(p.status, 404, 'the first poll of a negotiate 3 s old');
    assert.equal(await wsStatus(unused.connectionToken, port), 404);

    assert.equal((await polling.post(echo('1', 'alive'))).status, 200);
    p = await polling.poll();
    assert.equal(p.status, 200);
    assert.deepEqual(JSON.parse(p.text.split(RS)[0]), { type: 3, invocationId: '1', result: 'alive' });
    assert.equal((await request('DELETE', polling.path, { port })).status, 202);

    for (const c of clients) {
      assert.equal(c.closed, false, `the ${c.transport} ${c.protocol} client is still connected`);
      assert.equal(await c.invoke('Echo', 'after 3 s'), 'after 3 s');
      const polls = c.http.log.filter((e) => e.method === 'GET');
      if (c.transport === 'LongPolling') assert.ok(polls.length >= 4, `${polls.length} polls in 3 s`);
      await c.stop();
    }
  } finally {
    for (const c of clients) await c.connection.stop().catch(() => {});
    assert.equal(await srv.stop(), 0, 'ringhub stops cleanly');
  }
});

// ---- a clean server stop ----

test('SIGTERM: SSE and long-polling sessions get a Close with allowReconnect; exit 0', { timeout: 30000 }, async (t) => {
  const srv = await startServer();
  let stopped = false;
  const clients = [];
  t.after(async () => {
    for (const c of clients) await c.connection.stop().catch(() => {});
    if (!stopped) await srv.stop();
  });
  const port = srv.port;

  // Raw sessions, to see the exact bytes: held polls (several, so that some are held by a shard
  // that does not own their connection) and an SSE stream.
  const lps = [];
  for (let i = 0; i < 8; i++) lps.push(await longPolling(port));
  const n = await negotiate(port);
  const sse = await sseStream(n.connectionToken, { port });
  assert.equal((await request('POST', `/hubs/chat?id=${n.connectionToken}`, { body: HANDSHAKE, port })).status, 200);
  await sse.waitFor((b) => b.includes(`{}${RS}`), 'the SSE handshake response');

  // Official clients: with automatic reconnect (they go to Reconnecting) and without (closed).
  const reconnecting = [];
  const closing = [];
  for (const v of VARIANTS) {
    const what = `${v.transport} ${v.protocol}`;
    const r = new Client(srv, { ...v, reconnect: [0, 60000] });
    reconnecting.push(new Promise((resolve) => r.connection.onreconnecting((e) => resolve(`${what}: ${e}`))));
    const c = new Client(srv, v);
    closing.push(new Promise((resolve) => c.connection.onclose((e) => resolve(`${what}: ${e}`))));
    clients.push(r, c);
    await r.start();
    await c.start();
  }
  const heldPolls = lps.map((lp) => lp.poll().catch((error) => ({ error: `${error}: ${error.cause}` })));
  await sleep(300);

  stopped = true;
  assert.equal(await srv.stop(), 0, 'ringhub stops cleanly with nothing left allocated');

  const polled = await Promise.all(heldPolls);
  assert.deepEqual(
    polled.map((r) => r.error ?? `${r.status} ${r.text}`),
    lps.map(() => `200 ${SHUTDOWN_CLOSE}`),
    'every held poll gets the Close',
  );
  await sse.done;
  assert.equal(sse.error, undefined, 'the SSE stream ends cleanly');
  assert.equal(sse.body, `:\r\ndata: {}${RS}\r\n\r\ndata: ${SHUTDOWN_CLOSE}\r\n\r\n`);

  const errors = [...(await Promise.all(reconnecting)), ...(await Promise.all(closing))];
  for (const error of errors) assert.match(error, /Server is shutting down/);
});
