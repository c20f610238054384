// The backend HTTP API on the Azure SignalR Service REST paths (v1, /api/v1/..., and 2022-06-01,
// /api/hubs/...?api-version=2022-06-01 with /:send paths) against the real ringhub binary with
// several shards, official SignalR clients (JSON and MessagePack over WebSockets, Server-Sent
// Events and long polling, spread over the shards) on the receiving end: every send (to all with
// excluded ids, to a group with excluded ids, to a user, to a connection on any shard), the
// connection operations (exists, close with a reason, add to and remove from a group, leave all
// groups), group and user existence, users in groups, health; the body forms (either key case,
// no or null arguments, 32 arguments, every JSON kind of value into both protocols); the errors
// (400, 404, 405, 413, with JSON bodies) and a hub list (--hubs); then a server with an access
// key, whose API takes only tokens for the request's URL.
//
// API requests go on a TCP connection each (`Connection: close`, no agent), so the kernel spreads
// them over the shards as it does the clients' negotiates: most requests reach a shard that does
// not own the connection, group or user they name.
//
// "Nothing else arrived" is proved as in hub_groups.test.mjs: a shard hands a message to all its
// local receivers at once and a connection keeps its order, so once a message has reached a
// receiver on every shard, a marker sent afterwards with a send to all arrives after anything
// the message should not have brought to anyone (settle() below).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { startServer } from './server.mjs';
import { OwnSocketHttpClient, until } from './helpers.mjs';

const shardsArg = /--shards[= ](\d+)/.exec(process.env.RINGHUB_ARGS ?? '');
const SHARDS = shardsArg && Number(shardsArg[1]) > 0 ? Number(shardsArg[1]) : os.availableParallelism();
const ATTEMPTS = 20 + 20 * SHARDS; // connections spread() may open to cover every shard

// The receiving clients: every transport, with each hub protocol it carries (SSE is text only).
const VARIANTS = [
  { transport: 'WebSockets', protocol: 'json' },
  { transport: 'ServerSentEvents', protocol: 'json' },
  { transport: 'LongPolling', protocol: 'messagepack' },
  { transport: 'WebSockets', protocol: 'messagepack' },
  { transport: 'LongPolling', protocol: 'json' },
];
const TRANSPORT_CLASS = {
  WebSockets: 'WebSocketTransport',
  ServerSentEvents: 'ServerSentEventsTransport',
  LongPolling: 'LongPollingTransport',
};

// The two path styles of every operation. rest is what follows /hubs/{hub}.
const V1 = {
  name: 'v1',
  health: '/api/v1/health',
  send: (hub, rest = '') => `/api/v1/hubs/${hub}${rest}`,
  path: (hub, rest = '') => `/api/v1/hubs/${hub}${rest}`,
  query: (params = []) => (params.length ? `?${new URLSearchParams(params)}` : ''),
  closed: 202, // DELETE connection
  userAdded: 202,
  userRemoved: 202,
};
const V2022 = {
  name: '2022-06-01',
  health: '/api/health?api-version=2022-06-01',
  send: (hub, rest = '') => `/api/hubs/${hub}${rest}/:send`,
  path: (hub, rest = '') => `/api/hubs/${hub}${rest}`,
  query: (params = []) => `?${new URLSearchParams([['api-version', '2022-06-01'], ...params])}`,
  closed: 200,
  userAdded: 200,
  userRemoved: 204,
};
const STYLES = [V1, V2022];

const seg = (name) => encodeURIComponent(name);

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  assert.equal(await server.stop(), 0, 'ringhub stops cleanly with nothing left allocated');
});

// One HTTP request on a TCP connection of its own. Resolves to {status, headers, text}.
function request(srv, method, target, { body, headers = {}, chunked = false } = {}) {
  return new Promise((resolve, reject) => {
    const data =
      body === undefined
        ? undefined
        : Buffer.isBuffer(body)
          ? body
          : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const h = { Connection: 'close', ...headers };
    if (data && !chunked) h['Content-Length'] = data.length;
    if (data && !('Content-Type' in h)) h['Content-Type'] = 'application/json; charset=utf-8';
    let answered = false;
    const req = http.request(
      { host: '127.0.0.1', port: srv.port, method, path: target, headers: h, agent: false },
      (res) => {
        answered = true;
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString() }),
        );
        res.on('error', reject);
      },
    );
    // A server that refuses a body early may close while it is still being written.
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    if (data && chunked) {
      for (let at = 0; at < data.length; at += 64 * 1024) req.write(data.subarray(at, at + 64 * 1024));
      req.end();
    } else {
      req.end(data);
    }
  });
}

const api = (method, target, options) => request(server, method, target, options);

// Checks an error answer: @status, and a JSON body with a code and a message.
function assertError(res, status, what, code) {
  assert.equal(res.status, status, `${what}: status (body ${res.text})`);
  assert.match(res.headers['content-type'] ?? '', /^application\/json/, `${what}: a JSON error body`);
  let body;
  assert.doesNotThrow(() => (body = JSON.parse(res.text)), `${what}: the body parses: ${res.text}`);
  assert.equal(typeof body.code, 'string', `${what}: code`);
  assert.ok(body.code.length > 0, `${what}: code`);
  if (code) assert.equal(body.code, code, `${what}: code`);
  assert.equal(typeof body.message, 'string', `${what}: message`);
  assert.ok(body.message.length > 0, `${what}: message`);
  return body;
}

// A target that needs escaping in JSON, for the bodies test.
const WEIRD = 'we"ird \\ ✓ \n';
const TARGETS = ['msg', 'marker', WEIRD];

// One official client and what it received: inbox holds {target, args} in arrival order.
class Client {
  constructor(srv, { transport = 'WebSockets', protocol = 'json', hub = 'chat', user, token }) {
    const url = srv.url(hub) + (user === undefined ? '' : `?user=${encodeURIComponent(user)}`);
    const options = {
      transport: signalR.HttpTransportType[transport],
      httpClient: new OwnSocketHttpClient(signalR.NullLogger.instance),
    };
    if (token) options.accessTokenFactory = () => token;
    const builder = new signalR.HubConnectionBuilder()
      .withUrl(url, options)
      .configureLogging(signalR.LogLevel.None);
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

  get name() {
    return `${this.transport}/${this.protocol} client on shard ${this.shard}`;
  }

  async start() {
    await this.connection.start();
    assert.equal(this.connection.state, signalR.HubConnectionState.Connected);
    assert.equal(this.connection.connection.transport.constructor.name, TRANSPORT_CLASS[this.transport]);
    this.startedId = this.connection.connectionId;
  }

  // The connection's id (kept once it has stopped).
  get id() {
    return this.connection.connectionId ?? this.startedId;
  }

  // The shard the connection lives on: its id starts with the big-endian u64 route
  // node:12 | shard:8 | slot:20 | gen:24.
  get shard() {
    return Number((Buffer.from(this.id, 'base64url').readBigUInt64BE(0) >> 44n) & 0xffn);
  }

  got(target = 'msg') {
    return this.inbox.filter((m) => m.target === target).map((m) => m.args);
  }

  invoke(...args) {
    return this.connection.invoke(...args);
  }

  // Stops the client and checks that it was not closed before, nor with an error.
  async stop() {
    if (this.connection.state === signalR.HubConnectionState.Disconnected) return;
    assert.equal(this.closed, false, `the ${this.name} was still connected`);
    await this.connection.stop();
    assert.equal(this.closeError, undefined, 'the client stopped without an error');
  }
}

// Starts a client whose test stops it at its end (whatever happens).
async function open(t, options = {}, srv = server) {
  const c = new Client(srv, options);
  t.after(() => c.stop());
  await c.start();
  return c;
}

// Clients of VARIANTS in turn (with options(i) for the i-th), until every shard has at least
// perShard of them and there are at least atLeast (by default one of each variant).
async function spread(t, options = () => ({}), { perShard = 2, atLeast = VARIANTS.length } = {}) {
  const clients = [];
  for (;;) {
    const counts = Array.from({ length: SHARDS }, (_, s) => clients.filter((c) => c.shard === s).length);
    if (counts.every((n) => n >= perShard) && clients.length >= atLeast) return clients;
    if (clients.length >= ATTEMPTS) {
      assert.fail(`${ATTEMPTS} connections did not cover ${SHARDS} shards (per shard: ${counts})`);
    }
    const i = clients.length;
    clients.push(await open(t, { ...VARIANTS[i % VARIANTS.length], ...options(i) }));
  }
}

// One client per shard out of @clients (the first found on each).
function onEveryShard(clients) {
  return Array.from({ length: SHARDS }, (_, s) => clients.find((c) => c.shard === s));
}

// A marker sent to all of @hub through the API; waits until each of @clients has it: whatever
// was on its way to them before is then in their inbox.
let markers = 0;
async function settle(clients, hub = 'chat', srv = server, headers = () => ({})) {
  const token = `marker ${++markers}`;
  const target = V1.send(hub);
  const res = await request(srv, 'POST', target, {
    body: { target: 'marker', arguments: [token] },
    headers: headers(target),
  });
  assert.equal(res.status, 202, `the marker's send: ${res.text}`);
  await until(
    () => clients.every((c) => c.got('marker').some(([m]) => m === token)),
    `every client to get "${token}"`,
  );
}

// Separate API requests are separate fire-and-forget sends (each answered 202 once handed to
// the shards), so a receiver may get them in any order: @actual and @expected (lists of
// argument lists) are compared as multisets, strictly.
function assertSameMessages(actual, expected, what) {
  const key = (args) => JSON.stringify(args);
  const order = (list) => [...list].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  assert.deepEqual(order(actual), order(expected), what);
}

function received(clients, count, what) {
  return until(() => clients.every((c) => c.got().length >= count), what);
}

// Sends through the API and expects 202.
async function send(target, body, what = target) {
  const res = await api('POST', target, { body });
  assert.equal(res.status, 202, `${what}: ${res.text}`);
  assert.equal(res.text, '', `${what}: an empty body`);
}

test('health: HEAD and GET on both paths', async () => {
  for (const method of ['HEAD', 'GET']) {
    for (const target of [V1.health, V2022.health]) {
      const res = await api(method, target);
      assert.equal(res.status, 200, `${method} ${target}`);
    }
  }
});

for (const style of STYLES) {
  test(`${style.name}: send to all reaches every connection of the hub on every shard but the excluded`, async (t) => {
    const clients = await spread(t);
    const elsewhere = await open(t, { hub: 'other' });
    // Two excluded, on different shards when there are several, then one.
    const two = [onEveryShard(clients)[0], onEveryShard(clients).at(-1)];
    if (two[0] === two[1]) two[1] = clients.find((c) => c !== two[0]);
    const one = clients.find((c) => !two.includes(c));

    await send(style.send('chat') + style.query(two.map((c) => ['excluded', c.id])), {
      Target: 'msg',
      Arguments: ['all but two', 2],
    });
    await send(style.send('chat') + style.query([['excluded', one.id]]), {
      target: 'msg',
      arguments: ['all but one', 1],
    });
    await send(style.send('chat') + style.query(), { target: 'msg', arguments: ['everyone', 0] });
    const rest = clients.filter((c) => !two.includes(c) && c !== one);
    await received(rest, 3, 'the clients not excluded to get all three');
    await received([...two, one], 2, 'the excluded to get the other two');
    await settle([...clients]);
    await settle([elsewhere], 'other');

    for (const c of rest) {
      assertSameMessages(c.got(), [['all but two', 2], ['all but one', 1], ['everyone', 0]], c.name);
    }
    for (const c of two) assertSameMessages(c.got(), [['all but one', 1], ['everyone', 0]], `excluded ${c.name}`);
    assertSameMessages(one.got(), [['all but two', 2], ['everyone', 0]], `excluded ${one.name}`);
    assert.deepEqual(elsewhere.got(), [], "the other hub's client");
  });

  test(`${style.name}: send to a group reaches its members on every shard but the excluded`, async (t) => {
    const clients = await spread(t, () => ({}), { perShard: 3 });
    // Two members and one outsider on every shard (spread() gives each shard at least three;
    // picking by position alone could leave a shard without a member).
    const members = clients.filter((c) => clients.filter((o) => o.shard === c.shard).indexOf(c) < 2);
    const outsiders = clients.filter((c) => !members.includes(c));
    const elsewhere = await open(t, { hub: 'other' });
    for (const m of members) assert.equal(await m.invoke('JoinGroup', 'room ✓/1'), null);
    assert.equal(await elsewhere.invoke('JoinGroup', 'room ✓/1'), null);
    const excluded = onEveryShard(members)[0];

    await send(style.send('chat', `/groups/${seg('room ✓/1')}`) + style.query([['excluded', excluded.id]]), {
      target: 'msg',
      arguments: ['to the room', { but: 'one' }],
    });
    await send(style.send('chat', `/groups/${seg('room ✓/1')}`) + style.query(), { Target: 'msg', Arguments: ['again'] });
    await send(style.send('chat', `/groups/${seg('empty group')}`) + style.query(), { Target: 'msg', Arguments: ['nobody'] });
    const got = members.filter((m) => m !== excluded);
    await received(got, 2, 'the members to get both');
    await received([excluded], 1, 'the excluded member to get the second');
    await settle(clients);
    await settle([elsewhere], 'other');

    for (const m of got) assertSameMessages(m.got(), [['to the room', { but: 'one' }], ['again']], m.name);
    assert.deepEqual(excluded.got(), [['again']], `excluded ${excluded.name}`);
    for (const c of outsiders) assert.deepEqual(c.got(), [], `outsider ${c.name}`);
    assert.deepEqual(elsewhere.got(), [], "the other hub's member");
  });

  test(`${style.name}: send to a user reaches each of the user's connections, on every shard, and no other`, async (t) => {
    const alice = await spread(t, () => ({ user: 'alice' }), { perShard: 1 });
    const zoe = await open(t, { user: 'zoë ✓/x', transport: 'LongPolling', protocol: 'messagepack' });
    const bob = await open(t, { user: 'bob', transport: 'ServerSentEvents' });
    const anonymous = await open(t, { protocol: 'messagepack' });
    const elsewhere = await open(t, { hub: 'other', user: 'alice' });

    await send(style.send('chat', '/users/alice') + style.query(), { Target: 'msg', Arguments: ['for alice'] });
    await send(style.send('chat', `/users/${seg('zoë ✓/x')}`) + style.query(), { target: 'msg', arguments: ['for zoë'] });
    await send(style.send('chat', '/users/nobody') + style.query(), { target: 'msg', arguments: ['for nobody'] });
    await received(alice, 1, "alice's connections to get hers");
    await received([zoe], 1, 'zoë to get hers');
    await settle([...alice, zoe, bob, anonymous]);
    await settle([elsewhere], 'other');

    for (const a of alice) assert.deepEqual(a.got(), [['for alice']], a.name);
    assert.deepEqual(zoe.got(), [['for zoë']]);
    for (const c of [bob, anonymous, elsewhere]) assert.deepEqual(c.got(), [], c.name);
  });

  test(`${style.name}: send to a connection reaches that one, on whichever shard it lives`, async (t) => {
    const clients = await spread(t);
    const elsewhere = await open(t, { hub: 'other' });
    for (const [i, c] of clients.entries()) {
      await send(style.send('chat', `/connections/${c.id}`) + style.query(), { target: 'msg', arguments: [`for ${i}`, c.id] });
    }
    // Unknown ids, and a connection of another hub: sent to nobody, still 202 as the service.
    await send(style.send('chat', '/connections/AAAAAAAAAAAAAAAAAAAAAA') + style.query(), { target: 'msg' });
    await send(style.send('chat', '/connections/nope') + style.query(), { target: 'msg' });
    await send(style.send('chat', `/connections/${elsewhere.id}`) + style.query(), { target: 'msg', arguments: ['wrong hub'] });
    await received(clients, 1, 'every client to get its own');
    await settle(clients);
    await settle([elsewhere], 'other');
    for (const [i, c] of clients.entries()) assert.deepEqual(c.got(), [[`for ${i}`, c.id]], c.name);
    assert.deepEqual(elsewhere.got(), [], "the other hub's client");
  });

  test(`${style.name}: connection exists while connected (GET and HEAD), 404 otherwise`, async (t) => {
    const clients = await spread(t, () => ({}), { perShard: 1 });
    const elsewhere = await open(t, { hub: 'other' });
    const exists = async (id, status, what, hub = 'chat') => {
      for (const method of ['GET', 'HEAD']) {
        const res = await api(method, style.path(hub, `/connections/${seg(id)}`) + style.query());
        assert.equal(res.status, status, `${method} ${what}`);
      }
    };
    for (const c of clients) await exists(c.id, 200, c.name);
    await exists(elsewhere.id, 200, "the other hub's client in its hub", 'other');
    await exists(elsewhere.id, 404, "the other hub's client in chat");
    await exists(clients[0].id, 404, 'a chat client in the other hub', 'other');
    await exists('AAAAAAAAAAAAAAAAAAAAAA', 404, 'an id never given out');
    // The real route of a connection with another random tail.
    const id = clients[0].id;
    const forged = id.slice(0, -1) + (id.at(-1) === 'A' ? 'B' : 'A');
    await exists(forged, 404, 'a real route with a forged tail');
    await exists('nope', 404, 'an id of the wrong form');

    // After the client stopped (a WebSocket client's stop() does not wait for the server to
    // see the close, so give the server a moment).
    for (const c of clients) {
      await c.stop();
      await until(
        async () => (await api('GET', style.path('chat', `/connections/${c.id}`) + style.query())).status === 404,
        `the stopped ${c.name} to be gone`,
        3000,
      );
      await exists(c.id, 404, `the stopped ${c.name}`);
    }
  });

  test(`${style.name}: closing a connection ends the client with the reason; then it is gone`, async (t) => {
    const clients = await spread(t, () => ({}), { perShard: 1, atLeast: 2 * VARIANTS.length });
    const bystander = await open(t, {});
    const reasons = new Map();
    for (const [i, c] of clients.entries()) {
      // Every other one without a reason: the default text.
      const reason = i % 2 ? null : `closed by the API ${i} ✓ & "quoted" \\ more`;
      reasons.set(c, reason);
      const res = await api(
        'DELETE',
        style.path('chat', `/connections/${c.id}`) + style.query(reason === null ? [] : [['reason', reason]]),
      );
      assert.equal(res.status, style.closed, `DELETE ${c.name}`);
    }
    for (const c of clients) {
      await until(() => c.closed, `the ${c.name} to be closed`, 5000);
      assert.ok(c.closeError, `the ${c.name} was closed with an error`);
      const reason = reasons.get(c) ?? 'Connection closed by the server.';
      assert.ok(c.closeError.message.includes(reason), `${c.name}: "${c.closeError.message}" has "${reason}"`);
      const res = await api('GET', style.path('chat', `/connections/${c.id}`) + style.query());
      assert.equal(res.status, 404, `the closed ${c.name} no longer exists`);
    }
    // Closing one that is not there is no error, as the service answers.
    const again = await api('DELETE', style.path('chat', `/connections/${clients[0].id}`) + style.query());
    assert.equal(again.status, style.closed);
    // The others go on.
    assert.equal(bystander.closed, false);
    assert.equal(await bystander.invoke('Echo', 'still here'), 'still here');
  });

  test(`${style.name}: add a connection to a group, send to it from clients and the API, remove it`, async (t) => {
    const clients = await spread(t, () => ({}), { perShard: 2 });
    const members = clients.filter((c, i) => i % 2 === 0);
    const outsiders = clients.filter((c) => !members.includes(c));
    const group = `api group ${style.name}`;
    const groupPath = (id) => style.path('chat', `/groups/${seg(group)}/connections/${id}`) + style.query();
    const groupExists = async (status, what) => {
      for (const method of ['GET', 'HEAD']) {
        const res = await api(method, style.path('chat', `/groups/${seg(group)}`) + style.query());
        assert.equal(res.status, status, `${method} group: ${what}`);
      }
    };
    await groupExists(404, 'before anyone joined');
    // The first through the alias connections/{id}/groups/{group}, as the emulator takes it.
    for (const [i, m] of members.entries()) {
      const target =
        i === 0 ? style.path('chat', `/connections/${m.id}/groups/${seg(group)}`) + style.query() : groupPath(m.id);
      const res = await api('PUT', target);
      assert.equal(res.status, 200, `PUT ${m.name}: ${res.text}`);
    }
    assertError(await api('PUT', groupPath('AAAAAAAAAAAAAAAAAAAAAA')), 404, 'PUT an unknown connection');
    await groupExists(200, 'with members');

    // Right away, a client's SendToGroup and the API's send reach every member.
    assert.equal(await outsiders[0].invoke('SendToGroup', group, 'msg', 'from a client'), null);
    await send(style.send('chat', `/groups/${seg(group)}`) + style.query(), { target: 'msg', arguments: ['from the API'] });
    await received(members, 2, 'every member to get both');
    await settle(clients);
    for (const m of members) {
      assert.deepEqual(m.got().map(String).sort(), ['from a client', 'from the API'], m.name);
    }
    for (const c of outsiders) assert.deepEqual(c.got(), [], c.name);

    // Out one by one: the last leaves the group empty.
    const [first, ...others] = members;
    let res = await api('DELETE', groupPath(first.id));
    assert.equal(res.status, 200, `DELETE ${first.name}`);
    await send(style.send('chat', `/groups/${seg(group)}`) + style.query(), { target: 'msg', arguments: ['without the first'] });
    await received(others, 3, 'the members left to get it');
    await groupExists(200, 'with members left');
    for (const m of others) {
      res = await api('DELETE', groupPath(m.id));
      assert.equal(res.status, 200, `DELETE ${m.name}`);
    }
    await groupExists(404, 'once empty');
    res = await api('DELETE', groupPath('AAAAAAAAAAAAAAAAAAAAAA'));
    assert.equal(res.status, 404, 'DELETE an unknown connection');
    await send(style.send('chat', `/groups/${seg(group)}`) + style.query(), { target: 'msg', arguments: ['nobody left'] });
    assert.equal(await outsiders[0].invoke('SendToGroup', group, 'msg', 'nobody left either'), null);
    await settle(clients);
    assert.equal(first.got().length, 2, first.name);
    for (const m of others) assert.deepEqual(m.got().at(-1), ['without the first'], m.name);
    for (const m of others) assert.equal(m.got().length, 3, m.name);
    for (const c of outsiders) assert.deepEqual(c.got(), [], c.name);
  });

  test(`${style.name}: remove a connection from all its groups`, async (t) => {
    const clients = await spread(t, () => ({}), { perShard: 2 });
    const leaver = onEveryShard(clients)[0];
    const stayer = onEveryShard(clients).at(-1) === leaver ? clients.find((c) => c !== leaver) : onEveryShard(clients).at(-1);
    const groups = ['g1', 'g2', 'g 3 ✓'].map((g) => `${style.name} ${g}`);
    for (const c of [leaver, stayer]) {
      for (const g of groups) {
        const res = await api('PUT', style.path('chat', `/groups/${seg(g)}/connections/${c.id}`) + style.query());
        assert.equal(res.status, 200);
      }
    }
    const res = await api('DELETE', style.path('chat', `/connections/${leaver.id}/groups`) + style.query());
    assert.equal(res.status, 200, `leave all: ${res.text}`);
    const unknown = await api('DELETE', style.path('chat', '/connections/AAAAAAAAAAAAAAAAAAAAAA/groups') + style.query());
    assert.equal(unknown.status, 404, 'leave all for an unknown connection');
    for (const g of groups) await send(style.send('chat', `/groups/${seg(g)}`) + style.query(), { target: 'msg', arguments: [g] });
    await received([stayer], 3, 'the one that stayed to get all three');
    await settle(clients);
    assertSameMessages(stayer.got(), groups.map((g) => [g]), 'the one that stayed');
    assert.deepEqual(leaver.got(), [], 'the one that left all its groups');
    // Still connected, and it can join again.
    assert.equal(leaver.closed, false);
    assert.equal(await leaver.invoke('JoinGroup', groups[0]), null);
    await send(style.send('chat', `/groups/${seg(groups[0])}`) + style.query(), { target: 'msg', arguments: ['back'] });
    await received([leaver], 1, 'the one that joined again to get it');
    assert.deepEqual(leaver.got(), [['back']]);
  });

  test(`${style.name}: user exists while the user has a connection`, async (t) => {
    const user = `user exists ${style.name} ✓`;
    const exists = async (status, what) => {
      for (const method of ['GET', 'HEAD']) {
        const res = await api(method, style.path('chat', `/users/${seg(user)}`) + style.query());
        assert.equal(res.status, status, `${method} user: ${what}`);
      }
    };
    await exists(404, 'before it connected');
    const conns = await spread(t, () => ({ user }), { perShard: 1, atLeast: 2 });
    const elsewhere = await open(t, { hub: 'other', user: 'only elsewhere' });
    await exists(200, 'connected');
    const res = await api('HEAD', style.path('chat', `/users/${seg('only elsewhere')}`) + style.query());
    assert.equal(res.status, 404, 'a user of another hub');
    assert.equal((await api('HEAD', style.path('other', `/users/${seg('only elsewhere')}`) + style.query())).status, 200);
    await conns[0].stop();
    await exists(200, 'with one connection stopped');
    for (const c of conns) await c.stop();
    // The user's owner learns of the stops from the connections' shards.
    await until(
      async () => (await api('HEAD', style.path('chat', `/users/${seg(user)}`) + style.query())).status === 404,
      'the user to be gone',
      3000,
    );
    await exists(404, 'all stopped');
    assert.equal(elsewhere.closed, false);
  });

  test(`${style.name}: users in groups: a user's connections, now and later, get the group's messages`, async (t) => {
    const user = `grouped ${style.name}`;
    const group = `user group ${style.name}`;
    const conns = await spread(t, () => ({ user }), { perShard: 1, atLeast: 2 });
    const other = await open(t, { user: 'not grouped' });
    const v1 = style === V1;
    const userGroup = v1
      ? style.path('chat', `/groups/${seg(group)}/users/${seg(user)}`) + style.query()
      : style.path('chat', `/users/${seg(user)}/groups/${seg(group)}`) + style.query();
    assert.equal((await api('HEAD', userGroup)).status, 404, 'not in the group yet');
    let res = await api('PUT', userGroup);
    assert.equal(res.status, style.userAdded, `PUT user in group: ${res.text}`);
    assert.equal((await api('HEAD', userGroup)).status, 200, 'in the group');
    const later = await open(t, { user, transport: 'LongPolling' });
    await send(style.send('chat', `/groups/${seg(group)}`) + style.query(), { target: 'msg', arguments: ['to the group'] });
    await received([...conns, later], 1, "the user's connections to get it");
    await settle([...conns, later, other]);
    for (const c of [...conns, later]) assert.deepEqual(c.got(), [['to the group']], c.name);
    assert.deepEqual(other.got(), []);

    res = await api('DELETE', userGroup);
    assert.equal(res.status, style.userRemoved, `DELETE user from group: ${res.text}`);
    assert.equal((await api('HEAD', userGroup)).status, 404, 'out of the group');
    await send(style.send('chat', `/groups/${seg(group)}`) + style.query(), { target: 'msg', arguments: ['after leaving'] });
    await send(style.send('chat', `/users/${seg(user)}`) + style.query(), { target: 'msg', arguments: ['to the user'] });
    await received([...conns, later], 2, "the user's connections to get the user's message");
    await settle([...conns, later, other]);
    for (const c of [...conns, later]) assert.deepEqual(c.got(), [['to the group'], ['to the user']], c.name);
  });
}

const VALUES = [
  'plain',
  '',
  'ünïcødé ✓ 😀 中文',
  'quote " backslash \\ newline \n tab \t record separator \u001e nul \u0000',
  0,
  1,
  -1,
  127,
  128,
  -129,
  65536,
  2 ** 31,
  2 ** 40,
  -(2 ** 40),
  Number.MAX_SAFE_INTEGER,
  3.25,
  -0.5,
  0.1,
  1e-7,
  -123456.789,
  6.02214076e23,
  true,
  false,
  null,
  [],
  {},
  [1, 'two', [3, null], { four: 4.5 }],
  { name: 'Ada', 'ключ ✓': 'значение', tags: ['x', 'y'], nested: { deep: { deeper: [true, false, null] } } },
];

test('bodies: either key case, no or null arguments, 32 arguments, every JSON kind into both protocols', async (t) => {
  const clients = await spread(t, () => ({}), { perShard: 1 });
  const all = V2022.send('chat') + V2022.query();
  const bodies = [
    ['{"Target":"msg","Arguments":["pascal"]}', ['pascal']],
    ['{"target":"msg","arguments":["camel"]}', ['camel']],
    ['{"TARGET":"msg","aRgUmEnTs":["any case"]}', ['any case']],
    ['{"target":"msg"}', []],
    ['{"target":"msg","arguments":null}', []],
    ['{"arguments":["first"],"target":"msg"}', ['first']],
    [' \r\n{ "target" : "msg" , "arguments" : [ 1 , 2 ] , "other" : {"x":[1]} } \n', [1, 2]],
    // Escapes in the target and the values, read back as JSON.parse reads them.
    ['{"target":"\\u006dsg","arguments":["\\u00e9\\ud83d\\ude00\\n\\"\\/", 1E3, 1.5e-3, 2.5E+2]}', ['é😀\n"/', 1000, 0.0015, 250]],
    [JSON.stringify({ target: 'msg', arguments: Array.from({ length: 32 }, (_, i) => i) }), Array.from({ length: 32 }, (_, i) => i)],
    [JSON.stringify({ target: 'msg', arguments: VALUES }), VALUES],
    [JSON.stringify({ target: 'msg', arguments: [{ values: VALUES }] }), [{ values: VALUES }]],
  ];
  for (const [body] of bodies) await send(all, body, body.slice(0, 60));
  await send(all, JSON.stringify({ target: WEIRD, arguments: ['weird'] }), 'a target with escapes');
  await until(() => clients.every((c) => c.got(WEIRD).length), 'every client to get the weird target');
  await received(clients, bodies.length, 'every client to get every body');
  await settle(clients);
  for (const c of clients) {
    assertSameMessages(c.got(), bodies.map(([, args]) => args), c.name);
    assert.deepEqual(c.got(WEIRD), [['weird']], `${c.name}: the target with escapes`);
  }
});

// Every error test has witnesses on every shard: the refused requests must send nothing.
async function witnesses(t) {
  return spread(t, () => ({}), { perShard: 1 });
}

test('errors: 400 for bad send bodies, with JSON bodies; nothing is sent', async (t) => {
  const clients = await witnesses(t);
  const badBodies = [
    ['', 'an empty body'],
    ['hello', 'not JSON'],
    ['{"target":"msg"', 'cut JSON'],
    ['{"target":"msg"} x', 'JSON and more'],
    ['[]', 'an array'],
    ['"msg"', 'a string'],
    ['{}', 'no target'],
    ['{"arguments":["x"]}', 'arguments without a target'],
    ['{"target":5}', 'a number as target'],
    ['{"target":null}', 'null as target'],
    ['{"target":["msg"]}', 'an array as target'],
    ['{"target":""}', 'an empty target'],
    ['{"target":"msg","arguments":{}}', 'an object as arguments'],
    ['{"target":"msg","arguments":"x"}', 'a string as arguments'],
    ['{"target":"msg","arguments":1}', 'a number as arguments'],
    [JSON.stringify({ target: 'msg', arguments: Array.from({ length: 33 }, (_, i) => i) }), '33 arguments'],
  ];
  for (const style of STYLES) {
    for (const where of ['', '/groups/g', '/users/u', `/connections/${clients[0].id}`]) {
      for (const [body, what] of badBodies) {
        const res = await api('POST', style.send('chat', where) + style.query(), { body });
        assertError(res, 400, `${style.name} ${where}: ${what}`);
      }
    }
  }
  await settle(clients);
  for (const c of clients) assert.deepEqual(c.got(), [], c.name);
});

test('errors: 400 for bad hub, group and user names, connection ids, api-version and excluded=', async (t) => {
  const clients = await witnesses(t);
  const bad400 = [
    ['POST', '/api/v1/hubs/bad%20hub', 'a space in the hub name'],
    ['POST', '/api/v1/hubs/bad!hub', 'a ! in the hub name'],
    ['POST', `/api/v1/hubs/${'h'.repeat(129)}`, 'a hub name of 129 bytes'],
    ['POST', `/api/hubs/${'h'.repeat(129)}/:send?api-version=2022-06-01`, 'a hub name of 129 bytes (2022)'],
    ['GET', '/api/v1/hubs/ch%2Fat/users/u', "an encoded '/' in the hub name"],
    ['POST', '/api/hubs/chat/:send', 'no api-version'],
    ['POST', '/api/hubs/chat/:send?api-version=2021-01-01', 'another api-version'],
    ['DELETE', '/api/hubs/chat/connections/x', 'no api-version on DELETE'],
    ['GET', '/api/hubs/chat/groups/g', 'no api-version on a group'],
    ['POST', `/api/v1/hubs/chat/groups/${'g'.repeat(257)}`, 'a group name of 257 bytes'],
    ['POST', `/api/v1/hubs/chat/users/${'u'.repeat(257)}`, 'a user name of 257 bytes'],
    ['GET', `/api/v1/hubs/chat/connections/${'c'.repeat(64)}`, 'a connection id of 64 bytes'],
    ['POST', '/api/v1/hubs/chat/groups/%zz', 'a bad percent-encoding'],
    ['POST', `/api/v1/hubs/chat?${Array.from({ length: 65 }, () => 'excluded=AAAAAAAAAAAAAAAAAAAAAA').join('&')}`, '65 excluded ids'],
  ];
  for (const [method, target, what] of bad400) {
    const res = await api(method, target, method === 'POST' ? { body: { target: 'msg', arguments: [what] } } : {});
    assertError(res, 400, what);
  }
  // At the limits: group and user names of 256 bytes, hub names of 128, 64 excluded ids.
  await send(`/api/v1/hubs/chat/groups/${'g'.repeat(256)}`, { target: 'msg', arguments: ['256'] });
  await send(`/api/v1/hubs/chat/users/${'u'.repeat(256)}`, { target: 'msg', arguments: ['256'] });
  await send(`/api/v1/hubs/${'h'.repeat(128)}`, { target: 'msg', arguments: ['128'] });
  const excluded = [...Array.from({ length: 63 }, () => 'AAAAAAAAAAAAAAAAAAAAAA'), clients[0].id];
  await send(`/api/v1/hubs/chat?${excluded.map((id) => `excluded=${id}`).join('&')}`, {
    target: 'msg',
    arguments: ['64 excluded'],
  });
  const others = clients.filter((c) => c !== clients[0]);
  await received(others, 1, 'the others to get the send with 64 excluded ids');
  await settle(clients);
  for (const c of others) assert.deepEqual(c.got(), [['64 excluded']], c.name);
  assert.deepEqual(clients[0].got(), [], 'the excluded one');
});

test('errors: 404 for unknown API paths, with JSON bodies', async (t) => {
  const clients = await witnesses(t);
  const notFound = [
    ['POST', '/api/v1/nothing'],
    ['POST', '/api/v1/hubs'],
    ['POST', '/api/v1/hubs/chat/unknown/x'],
    ['POST', '/api/v1/hubs/chat/groups/g/x/y'],
    ['POST', '/api/v1/hubs/chat/:send'],
    ['POST', '/api/v1/hubs/chat/groups/g/:send'],
    ['GET', '/api/v1/healthz'],
    ['POST', '/api/hubs/chat?api-version=2022-06-01'],
    ['POST', '/api/hubs/chat/:nothing?api-version=2022-06-01'],
    ['POST', '/api/hubs/chat/connections/c/groups/g/:send?api-version=2022-06-01'],
    ['GET', '/api/v1/hubs/chat/a/b/c/d/e/f/g'],
  ];
  for (const [method, target] of notFound) {
    const res = await api(method, target, method === 'POST' ? { body: { target: 'msg', arguments: [target] } } : {});
    assertError(res, 404, `${method} ${target}`);
  }
  await settle(clients);
  for (const c of clients) assert.deepEqual(c.got(), [], c.name);
});

test('errors: 405 for a method the path does not take, with a JSON body that says so', async (t) => {
  const clients = await witnesses(t);
  const wrongMethod = [
    ['GET', '/api/v1/hubs/chat'],
    ['PUT', '/api/v1/hubs/chat'],
    ['DELETE', '/api/v1/hubs/chat'],
    ['POST', '/api/v1/health'],
    ['DELETE', '/api/health?api-version=2022-06-01'],
    ['GET', '/api/hubs/chat/:send?api-version=2022-06-01'],
    ['PUT', '/api/hubs/chat/groups/g/:send?api-version=2022-06-01'],
    ['POST', '/api/hubs/chat/groups/g?api-version=2022-06-01'],
    ['PUT', '/api/v1/hubs/chat/connections/AAAAAAAAAAAAAAAAAAAAAA'],
    ['POST', '/api/v1/hubs/chat/groups/g/connections/AAAAAAAAAAAAAAAAAAAAAA'],
    ['GET', '/api/hubs/chat/groups/g/connections/AAAAAAAAAAAAAAAAAAAAAA?api-version=2022-06-01'],
    ['POST', '/api/hubs/chat/connections/AAAAAAAAAAAAAAAAAAAAAA/groups?api-version=2022-06-01'],
    ['PUT', '/api/v1/hubs/chat/users/u'],
  ];
  const unclear = [];
  for (const [method, target] of wrongMethod) {
    const res = await api(method, target, method === 'POST' ? { body: { target: 'msg', arguments: [target] } } : {});
    const body = assertError(res, 405, `${method} ${target}`);
    // A clear message: about the method, not about names.
    if (!/method|GET|HEAD|POST|PUT|DELETE/.test(body.message)) unclear.push(`${method} ${target}: "${body.message}"`);
  }
  await settle(clients);
  for (const c of clients) assert.deepEqual(c.got(), [], c.name);
  assert.deepEqual(unclear, [], '405 messages that do not speak of the method');
});

test('errors: 413 for a body over 1 MiB (Content-Length or chunked), with a JSON body', async (t) => {
  const clients = await witnesses(t);
  // Exactly 1 MiB is taken (whitespace after the object), one byte more is not.
  const MiB = 1024 * 1024;
  const small = JSON.stringify({ target: 'msg', arguments: ['one MiB'] });
  await send(V1.send('chat'), small + ' '.repeat(MiB - small.length), 'a body of 1 MiB');
  const chunkedOk = await api('POST', V2022.send('chat') + V2022.query(), {
    body: JSON.stringify({ target: 'msg', arguments: ['one MiB, chunked'] }).padEnd(MiB, ' '),
    chunked: true,
  });
  assert.equal(chunkedOk.status, 202, 'a chunked body of 1 MiB');
  await received(clients, 2, 'every client to get both 1 MiB sends');
  const over = Buffer.alloc(MiB + 1, ' ');
  over.write(JSON.stringify({ target: 'msg', arguments: ['over'] }));
  const results = [];
  for (const [what, chunked] of [['Content-Length', false], ['chunked', true]]) {
    const res = await api('POST', V2022.send('chat') + V2022.query(), { body: over, chunked });
    assert.equal(res.status, 413, `1 MiB + 1 (${what})`);
    results.push([what, res]);
  }
  await settle(clients);
  for (const c of clients) assertSameMessages(c.got(), [['one MiB'], ['one MiB, chunked']], c.name);
  for (const [what, res] of results) assertError(res, 413, `1 MiB + 1 (${what})`);
});

test('a hub list: the API answers 404 for hubs it does not serve', async () => {
  const listed = await startServer(['--hubs', 'chat']);
  try {
    for (const style of STYLES) {
      let res = await request(listed, 'POST', style.send('chat') + style.query(), { body: { target: 'msg' } });
      assert.equal(res.status, 202, `${style.name}: the listed hub`);
      const targets = [
        ['POST', style.send('other') + style.query()],
        ['POST', style.send('other', '/groups/g') + style.query()],
        ['POST', style.send('other', '/users/u') + style.query()],
        ['HEAD', style.path('other', '/users/u') + style.query()],
        ['GET', style.path('other', '/groups/g') + style.query()],
        ['GET', style.path('other', '/connections/AAAAAAAAAAAAAAAAAAAAAA') + style.query()],
        ['PUT', style.path('other', '/groups/g/connections/AAAAAAAAAAAAAAAAAAAAAA') + style.query()],
        ['DELETE', style.path('other', '/connections/AAAAAAAAAAAAAAAAAAAAAA') + style.query()],
      ];
      for (const [method, target] of targets) {
        res = await request(listed, method, target, method === 'POST' ? { body: { target: 'msg' } } : {});
        if (method === 'HEAD') assert.equal(res.status, 404, `${method} ${target}`);
        else assertError(res, 404, `${method} ${target}`);
      }
      res = await request(listed, 'HEAD', style.health);
      assert.equal(res.status, 200, `${style.name}: health`);
    }
  } finally {
    assert.equal(await listed.stop(), 0, 'the listing ringhub stops cleanly');
  }
});

// The ringhub-token tool next to the binary's build.
const TOKEN_TOOL =
  process.env.RINGHUB_TOKEN_TOOL ?? path.join(path.dirname(process.env.RINGHUB ?? '.'), '..', 'tools', 'ringhub-token');

function mint(keyFile, args) {
  return execFileSync(TOKEN_TOOL, ['--key-file', keyFile, ...args], { encoding: 'utf8' }).trim();
}

// An HS256 token signed by hand (for a key the server does not have).
function sign(key, payload) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const data = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(payload)}`;
  return `${data}.${crypto.createHmac('sha256', key).update(data).digest('base64url')}`;
}

test('with an access key: the API takes only an unexpired token for the request URL', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringhub-rest-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const keyFile = path.join(dir, 'key');
  fs.writeFileSync(keyFile, `${crypto.randomBytes(32).toString('base64')}\n`);
  const keyed = await startServer([`--access-key-file=${keyFile}`]);
  const clients = [];
  try {
    const host = `127.0.0.1:${keyed.port}`;
    const bearer = (token) => ({ Authorization: `Bearer ${token}` });
    // A v1 token for @target (its path, without the query), with or without the port.
    const v1Token = (target, withPort = true) =>
      mint(keyFile, ['--aud', `http://${withPort ? host : '127.0.0.1'}${target.split('?')[0]}`]);

    // A client with its own token (user kim), to receive what the API sends.
    const clientToken = mint(keyFile, ['--aud', `http://${host}/hubs/chat`, '--user', 'kim']);
    const kim = await open(t, { token: clientToken }, keyed);
    const kimLp = await open(t, { token: clientToken, transport: 'LongPolling', protocol: 'messagepack' }, keyed);
    clients.push(kim, kimLp);

    const unauthorized = async (res, what) => {
      assert.equal(res.status, 401, `${what}: ${res.text}`);
      assert.match(res.headers['www-authenticate'] ?? '', /^Bearer/, `${what}: WWW-Authenticate`);
    };
    const toUser = V1.send('chat', '/users/kim');
    const body = (text) => ({ body: { target: 'msg', arguments: [text] } });
    await unauthorized(await request(keyed, 'POST', toUser, body('no token')), 'no token');
    await unauthorized(
      await request(keyed, 'POST', toUser, { ...body('not bearer'), headers: { Authorization: `Basic ${v1Token(toUser)}` } }),
      'a token not given as Bearer',
    );
    await unauthorized(
      await request(keyed, 'POST', toUser, { ...body('other URL'), headers: bearer(v1Token(V1.send('chat', '/users/bob'))) }),
      'a token for another URL',
    );
    await unauthorized(
      await request(keyed, 'POST', toUser, { ...body('hub URL'), headers: bearer(clientToken) }),
      "a client's token for the hub",
    );
    await unauthorized(
      await request(keyed, 'POST', toUser, {
        ...body('https other host'),
        headers: bearer(mint(keyFile, ['--aud', `http://example.com${toUser}`])),
      }),
      'a token for another host',
    );
    await unauthorized(
      await request(keyed, 'POST', toUser, {
        ...body('expired'),
        headers: bearer(mint(keyFile, ['--aud', `http://${host}${toUser}`, '--ttl', '-60'])),
      }),
      'an expired token',
    );
    const now = Math.floor(Date.now() / 1000);
    await unauthorized(
      await request(keyed, 'POST', toUser, {
        ...body('other key'),
        headers: bearer(sign('another key', { aud: `http://${host}${toUser}`, exp: now + 600 })),
      }),
      'a token signed with another key',
    );
    const key = fs.readFileSync(keyFile, 'utf8').replace(/\n$/, '');
    await unauthorized(
      await request(keyed, 'POST', toUser, {
        ...body('no exp'),
        headers: bearer(sign(key, { aud: `http://${host}${toUser}` })),
      }),
      'a token without exp',
    );
    const toUser2022 = V2022.send('chat', '/users/kim') + V2022.query();
    await unauthorized(
      await request(keyed, 'POST', toUser2022, {
        ...body('2022 without the query'),
        headers: bearer(mint(keyFile, ['--aud', `http://${host}${toUser2022.split('?')[0]}`])),
      }),
      'a 2022-06-01 token without ?api-version',
    );
    for (const target of [
      V1.path('chat', `/connections/${kim.id}`),
      V1.path('chat', '/users/kim'),
      V2022.path('chat', `/groups/g`) + V2022.query(),
    ]) {
      await unauthorized(await request(keyed, 'HEAD', target), `HEAD ${target} without a token`);
    }
    await unauthorized(
      await request(keyed, 'PUT', V2022.path('chat', `/groups/g/connections/${kim.id}`) + V2022.query()),
      'PUT a connection in a group without a token',
    );
    await unauthorized(
      await request(keyed, 'DELETE', V1.path('chat', `/connections/${kim.id}`)),
      'DELETE a connection without a token',
    );

    // The right tokens.
    let res = await request(keyed, 'POST', toUser, { ...body('v1'), headers: bearer(v1Token(toUser)) });
    assert.equal(res.status, 202, `v1: ${res.text}`);
    res = await request(keyed, 'POST', toUser, { ...body('v1 without the port'), headers: bearer(v1Token(toUser, false)) });
    assert.equal(res.status, 202, `v1 without the port: ${res.text}`);
    res = await request(keyed, 'POST', toUser2022, {
      ...body('2022'),
      headers: bearer(mint(keyFile, ['--aud', `http://${host}${toUser2022}`])),
    });
    assert.equal(res.status, 202, `2022-06-01: ${res.text}`);
    // The excluded= ids are not part of the audience (as the SDK signs it).
    const all = V1.send('chat');
    res = await request(keyed, 'POST', `${all}?excluded=${kimLp.id}`, { ...body('all but the LP one'), headers: bearer(v1Token(all)) });
    assert.equal(res.status, 202, `v1 with excluded: ${res.text}`);
    const all2022 = V2022.send('chat') + V2022.query();
    res = await request(keyed, 'POST', `${all2022}&excluded=${kimLp.id}`, {
      ...body('all but the LP one, 2022'),
      headers: bearer(mint(keyFile, ['--aud', `http://${host}${all2022}`])),
    });
    assert.equal(res.status, 202, `2022-06-01 with excluded: ${res.text}`);
    for (const target of [V1.path('chat', `/connections/${kim.id}`), V1.path('chat', '/users/kim')]) {
      res = await request(keyed, 'GET', target, { headers: bearer(v1Token(target)) });
      assert.equal(res.status, 200, `GET ${target}`);
    }
    const exists2022 = V2022.path('chat', `/connections/${kimLp.id}`) + V2022.query();
    res = await request(keyed, 'HEAD', exists2022, { headers: bearer(mint(keyFile, ['--aud', `https://${host}${exists2022}`])) });
    assert.equal(res.status, 200, 'HEAD a connection (2022, https audience)');
    // Health needs no token.
    assert.equal((await request(keyed, 'HEAD', V1.health)).status, 200);

    // kim got exactly what the accepted sends carried.
    const marker = (target) => ({ Authorization: `Bearer ${v1Token(target)}` });
    await settle([kim, kimLp], 'chat', keyed, marker);
    const expected = ['v1', 'v1 without the port', '2022'];
    const both = [...expected, 'all but the LP one', 'all but the LP one, 2022'];
    assertSameMessages(kim.got(), both.map((s) => [s]), 'the WebSocket client');
    assertSameMessages(kimLp.got(), expected.map((s) => [s]), 'the long-polling client');
    await kim.stop();
    await kimLp.stop();
  } finally {
    for (const c of clients) await c.connection.stop().catch(() => {});
    assert.equal(await keyed.stop(), 0, 'the keyed ringhub stops cleanly');
  }
});
