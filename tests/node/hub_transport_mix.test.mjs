// WebSockets, Server-Sent Events and long polling together, with the official SignalR
// JavaScript client (JSON and MessagePack) against the real ringhub binary with several shards:
// one group whose members use every transport and protocol gets every message of several
// senders exactly once and in each sender's order; long-polling and SSE connections whose every
// HTTP request goes on a TCP connection of its own (so the kernel spreads them over the shards
// and most of them are forwarded to the shard that owns the connection) lose, duplicate and
// reorder nothing in either direction; and a long-polling session driven request by request
// with fetch, each request on a new TCP connection, gets every answer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { startServer } from './server.mjs';
import { until as waitUntil } from './helpers.mjs';

const RS = '\u001e';
const shardsArg = /--shards[= ](\d+)/.exec(process.env.RINGHUB_ARGS ?? '');
const SHARDS = shardsArg && Number(shardsArg[1]) > 0 ? Number(shardsArg[1]) : os.availableParallelism();
const ATTEMPTS = 20 + 20 * SHARDS;
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

const until = (condition, what, ms = 15000) => waitUntil(condition, what, ms);

// Every request with `Connection: close`, so on a TCP connection of its own; counts them.
class OwnSocketHttpClient extends signalR.DefaultHttpClient {
  constructor() {
    super(signalR.NullLogger.instance);
    this.requests = { GET: 0, POST: 0, DELETE: 0 };
    this.failed = [];
  }

  async send(request) {
    this.requests[request.method]++;
    try {
      const response = await super.send({ ...request, headers: { ...request.headers, Connection: 'close' } });
      if (request.method === 'POST' && response.statusCode !== 200) this.failed.push(response.statusCode);
      return response;
    } catch (error) {
      if (request.method === 'POST') this.failed.push(String(error));
      throw error;
    }
  }
}

class Client {
  constructor({ transport, protocol = 'json', hub = 'chat' }) {
    this.http = new OwnSocketHttpClient();
    const builder = new signalR.HubConnectionBuilder()
      .withUrl(server.url(hub), { transport: signalR.HttpTransportType[transport], httpClient: this.http })
      .configureLogging(signalR.LogLevel.None);
    if (protocol === 'messagepack') builder.withHubProtocol(new MessagePackHubProtocol());
    this.transport = transport;
    this.protocol = protocol;
    this.name = `${transport}/${protocol}`;
    this.connection = builder.build();
    this.inbox = [];
    this.closed = false;
    this.closeError = undefined;
    for (const target of ['msg', 'marker']) {
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

  async stop() {
    if (this.connection.state === signalR.HubConnectionState.Disconnected) return;
    assert.equal(this.closed, false, `the ${this.name} client was still connected`);
    assert.deepEqual(this.http.failed, [], `every POST of the ${this.name} client got 200`);
    await this.connection.stop();
    assert.equal(this.closeError, undefined, `the ${this.name} client stopped without an error`);
  }
}

async function open(t, options) {
  const c = new Client(options);
  t.after(() => c.stop());
  await c.start();
  return c;
}

let markers = 0;
async function settle(sender, clients) {
  const token = `marker ${++markers}`;
  assert.equal(await sender.invoke('SendToAll', 'marker', token), null);
  await until(
    () => clients.every((c) => c.got('marker').some(([m]) => m === token)),
    `every client to get "${token}"`,
  );
}

const KINDS = [
  { transport: 'WebSockets', protocol: 'json' },
  { transport: 'WebSockets', protocol: 'messagepack' },
  { transport: 'ServerSentEvents', protocol: 'json' },
  { transport: 'LongPolling', protocol: 'json' },
  { transport: 'LongPolling', protocol: 'messagepack' },
];

test('one group of WebSocket, SSE and long-polling members gets every message once, in order', async (t) => {
  const members = [];
  for (let round = 0; round < 2; round++) for (const kind of KINDS) members.push(await open(t, kind));
  // Members on every shard, so that the group spans them all.
  for (let i = 0; new Set(members.map((m) => m.shard)).size < SHARDS; i++) {
    assert.ok(members.length < ATTEMPTS, 'members on every shard');
    members.push(await open(t, KINDS[i % KINDS.length]));
  }
  const outsiders = [];
  for (const kind of KINDS) outsiders.push(await open(t, kind));
  for (const m of members) assert.equal(await m.invoke('JoinGroup', 'mix'), null);

  // One sender of each kind, all at once; most messages are sent without waiting (the
  // HTTP transports batch them into few POSTs), every tenth is an awaited invocation.
  const COUNT = 100;
  const senders = KINDS.map((kind) => members.find((m) => m.transport === kind.transport && m.protocol === kind.protocol));
  await Promise.all(
    senders.map(async (s, which) => {
      const pending = [];
      for (let n = 1; n <= COUNT; n++) {
        const payload = { n, from: s.name, text: 'ünï ✓ "q" \n', list: [n, null, true] };
        if (n % 10 === 0) {
          pending.push(s.invoke('SendToGroup', 'mix', 'msg', which, n, payload));
          await Promise.all(pending);
        } else {
          pending.push(s.send('SendToGroup', 'mix', 'msg', which, n, payload));
        }
      }
      await Promise.all(pending);
    }),
  );
  await until(
    () => members.every((m) => m.got().length >= COUNT * senders.length),
    'every member to get every message',
  );
  await settle(senders[0], [...members, ...outsiders]);

  for (const m of members) {
    const got = m.got();
    assert.equal(got.length, COUNT * senders.length, `${m.name} got each message once`);
    senders.forEach((s, which) => {
      const fromIt = got.filter(([w]) => w === which);
      assert.deepEqual(
        fromIt.map(([, n]) => n),
        Array.from({ length: COUNT }, (_, i) => i + 1),
        `${m.name} (shard ${m.shard}) got ${s.name}'s messages once each, in order`,
      );
      for (const [, n, payload] of fromIt) {
        assert.deepEqual(payload, { n, from: s.name, text: 'ünï ✓ "q" \n', list: [n, null, true] });
      }
    });
  }
  for (const o of outsiders) assert.deepEqual(o.got(), [], `${o.name} outside the group got nothing`);
});

for (const kind of KINDS.filter((k) => k.transport !== 'WebSockets')) {
  const name = `${kind.transport}/${kind.protocol}`;
  const title = `${name} with every request on a new TCP connection: 300 messages each way, in order`;
  test(title, async (t) => {
    const target = await open(t, kind);
    const peer = await open(t, { transport: 'WebSockets', protocol: kind.protocol === 'json' ? 'messagepack' : 'json' });
    const COUNT = 300;
    const numbers = Array.from({ length: COUNT }, (_, i) => i + 1);

    // To it (from a WebSocket peer), from it (to the peer), and Echo round trips, all at once.
    const toIt = (async () => {
      const pending = [];
      for (const n of numbers) {
        pending.push(
          n % 50 === 0
            ? peer.invoke('SendToConnection', target.id, 'msg', 'to', n)
            : peer.send('SendToConnection', target.id, 'msg', 'to', n),
        );
      }
      await Promise.all(pending);
    })();
    const fromIt = (async () => {
      const pending = [];
      for (const n of numbers) {
        if (n % 3 === 0) {
          // An awaited invocation: its own POST, and its completion comes back by poll or event.
          assert.equal(await target.invoke('SendToConnection', peer.id, 'msg', 'from', n), null);
        } else {
          pending.push(target.send('SendToConnection', peer.id, 'msg', 'from', n));
        }
      }
      await Promise.all(pending);
    })();
    const echoes = Promise.all(numbers.slice(0, 100).map((n) => target.invoke('Echo', { echo: n })));
    await Promise.all([toIt, fromIt]);
    (await echoes).forEach((answer, i) => assert.deepEqual(answer, { echo: i + 1 }));

    await until(() => target.got().length >= COUNT && peer.got().length >= COUNT, 'all 300 each way');
    await settle(peer, [target, peer]);
    await settle(target, [target, peer]);
    assert.deepEqual(target.got(), numbers.map((n) => ['to', n]), `${name} got 1..300 once each, in order`);
    assert.deepEqual(peer.got(), numbers.map((n) => ['from', n]), `the peer got 1..300 from ${name}, in order`);

    // They were many requests, each on its own TCP connection.
    const { GET, POST } = target.http.requests;
    assert.ok(POST >= 100, `${POST} POSTs`);
    if (kind.transport === 'LongPolling') assert.ok(GET >= 10, `${GET} polls`);
  });
}

// One request on a TCP connection of its own.
async function request(method, path, body) {
  const r = await fetch(`http://127.0.0.1:${server.port}${path}`, {
    method,
    body,
    headers: { Connection: 'close', ...(body === undefined ? {} : { 'Content-Type': 'text/plain;charset=UTF-8' }) },
  });
  return { status: r.status, type: r.headers.get('content-type'), text: await r.text() };
}

test('long polling driven with fetch, every request on a new TCP connection', async () => {
  let r = await request('POST', '/hubs/chat/negotiate?negotiateVersion=1');
  assert.equal(r.status, 200);
  const { connectionId, connectionToken } = JSON.parse(r.text);
  const path = `/hubs/chat?id=${connectionToken}`;
  r = await request('GET', `${path}&_=${Date.now()}`);
  assert.equal(r.status, 200, 'the first poll');
  assert.equal(r.text, '');
  r = await request('POST', path, `{"protocol":"json","version":1}${RS}`);
  assert.equal(r.status, 200, 'the handshake POST');
  assert.equal(r.text, '');

  // Polls, one after another, while the POSTs go.
  let received = '';
  let pollingEnded = false;
  const polls = [];
  const polling = (async () => {
    for (;;) {
      const p = await request('GET', `${path}&_=${Date.now()}`);
      polls.push(p);
      if (p.status !== 200) {
        pollingEnded = true;
        return;
      }
      if (p.text) assert.equal(p.type, 'application/octet-stream');
      received += p.text;
    }
  })();

  const ROUNDS = 150;
  for (let i = 1; i <= ROUNDS; i++) {
    // An Echo, and a message to itself, in one POST; every fifth POST has five more.
    let body =
      `{"type":1,"invocationId":"e${i}","target":"Echo","arguments":[{"i":${i},"s":"ünï"}]}${RS}` +
      `{"type":1,"target":"SendToConnection","arguments":["${connectionId}","self",${i}]}${RS}`;
    if (i % 5 === 0) {
      for (let k = 0; k < 5; k++) {
        body += `{"type":1,"target":"SendToConnection","arguments":["${connectionId}","extra",${i * 10 + k}]}${RS}`;
      }
    }
    const post = await request('POST', path, body);
    assert.equal(post.status, 200, `POST ${i}: ${post.text}`);
    assert.equal(post.text, '');
    // The first 50 in lock step (the Echo's answer polled before the next POST), so that there
    // are at least as many polls; the rest as fast as they go.
    if (i <= 50) await until(() => received.includes(`"invocationId":"e${i}"`) || pollingEnded, `e${i}`);
  }
  const messages = () => received.split(RS).filter(Boolean).map((m) => JSON.parse(m));
  const expected = 1 + ROUNDS * 2 + (ROUNDS / 5) * 5;
  await until(() => messages().length >= expected || pollingEnded, `${expected} messages by poll`);
  assert.ok(received.endsWith(RS), 'polls return whole messages');

  const all = messages();
  assert.deepEqual(all[0], {}, 'the handshake response first');
  const completions = all.filter((m) => m.type === 3);
  assert.deepEqual(
    completions,
    Array.from({ length: ROUNDS }, (_, i) => ({ type: 3, invocationId: `e${i + 1}`, result: { i: i + 1, s: 'ünï' } })),
  );
  const invocations = all.filter((m) => m.type === 1);
  assert.deepEqual(
    invocations.filter((m) => m.target === 'self').map((m) => m.arguments),
    Array.from({ length: ROUNDS }, (_, i) => [i + 1]),
  );
  const extra = [];
  for (let i = 5; i <= ROUNDS; i += 5) for (let k = 0; k < 5; k++) extra.push([i * 10 + k]);
  assert.deepEqual(invocations.filter((m) => m.target === 'extra').map((m) => m.arguments), extra);
  assert.equal(all.length, expected, 'nothing else (no pings on long polling), nothing twice');

  // DELETE ends it; the poll held meanwhile (given time to arrive) returns 204, the next 404.
  await new Promise((resolve) => setTimeout(resolve, 200));
  r = await request('DELETE', path);
  assert.equal(r.status, 202);
  await polling;
  assert.equal(polls.at(-1).status, 204, 'the held poll ends with 204');
  assert.ok(polls.length > 50, `${polls.length} polls`);
  assert.deepEqual(
    polls.slice(0, -1).filter((p) => p.status !== 200),
    [],
    'every poll before the DELETE got 200',
  );
  r = await request('GET', `${path}&_=${Date.now()}`);
  assert.equal(r.status, 404);
});
