// The official SignalR JavaScript client (JSON and MessagePack hub protocols) against the real
// ringhub binary, over WebSockets with skipNegotiation: handshake, Echo of every kind of value,
// SendToAll across shards and hub protocols, errors for unknown methods and bad arguments, many
// clients at once, clean stops.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { startServer } from './server.mjs';

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  assert.equal(await server.stop(), 0, 'ringhub stops cleanly with nothing left allocated');
});

function connection(protocol, hub = 'chat') {
  const builder = new signalR.HubConnectionBuilder()
    .withUrl(server.url(hub), {
      skipNegotiation: true,
      transport: signalR.HttpTransportType.WebSockets,
    })
    .configureLogging(signalR.LogLevel.Warning);
  if (protocol === 'messagepack') builder.withHubProtocol(new MessagePackHubProtocol());
  return builder.build();
}

const values = [
  'hello',
  '',
  'ünïcødé ✓ 😀',
  'quote " backslash \\ newline \n record separator \u001e',
  0,
  -42,
  2 ** 40,
  3.25,
  true,
  false,
  null,
  [1, 'two', [3, null], { four: 4 }],
  { name: 'Ada', tags: ['x', 'y'], nested: { deep: { deeper: [true, false] } } },
];

for (const protocol of ['json', 'messagepack']) {
  test(`${protocol}: Echo returns every kind of value unchanged`, async () => {
    const c = connection(protocol);
    await c.start();
    assert.equal(c.state, signalR.HubConnectionState.Connected);
    for (const value of values) assert.deepEqual(await c.invoke('Echo', value), value);
    assert.deepEqual(await c.invoke('echo', 'case-insensitive'), 'case-insensitive');
    await c.stop();
    assert.equal(c.state, signalR.HubConnectionState.Disconnected);
  });

  test(`${protocol}: unknown methods and bad arguments reject with the server's message`, async () => {
    const c = connection(protocol);
    await c.start();
    await assert.rejects(c.invoke('NoSuchMethod', 1), /Unknown hub method 'NoSuchMethod'/);
    await assert.rejects(c.invoke('Echo', 1, 2), /Failed to invoke 'Echo'/);
    // The connection survives both errors.
    assert.equal(await c.invoke('Echo', 'still here'), 'still here');
    await c.stop();
  });
}

test('messagepack: binary values pass through Echo', async () => {
  const c = connection('messagepack');
  await c.start();
  const bytes = new Uint8Array([0, 1, 2, 250, 255]);
  const back = await c.invoke('Echo', bytes);
  assert.deepEqual(Array.from(back), Array.from(bytes));
  await c.stop();
});

test('50 clients of both protocols echo at once, across shards', async () => {
  const clients = Array.from({ length: 50 }, (_, i) => connection(i % 2 ? 'json' : 'messagepack'));
  await Promise.all(clients.map((c) => c.start()));
  const answers = await Promise.all(clients.map((c, i) => c.invoke('Echo', { client: i })));
  answers.forEach((answer, i) => assert.deepEqual(answer, { client: i }));
  await Promise.all(clients.map((c) => c.stop()));
});

test('a client that stops is closed without an error on either side', async () => {
  const c = connection('json');
  let closeError = 'not closed';
  c.onclose((error) => {
    closeError = error;
  });
  await c.start();
  await c.stop();
  assert.equal(closeError, undefined);
});

async function until(condition, what, ms = 10000) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test('SendToAll reaches every client of the hub once, on every shard, in both protocols', async () => {
  const clients = Array.from({ length: 20 }, (_, i) => connection(i % 2 ? 'json' : 'messagepack'));
  const elsewhere = connection('json', 'other');
  const received = clients.map(() => []);
  clients.forEach((c, i) =>
    c.on('news', (...args) => {
      received[i].push(args);
    }),
  );
  let elsewhereGot = 0;
  elsewhere.on('news', () => {
    elsewhereGot++;
  });
  await Promise.all([...clients, elsewhere].map((c) => c.start()));

  const fromMsgpack = ['hi', 42, -7, 2.5, true, null, [1, 'two'], { nested: { x: [1, 2] } }];
  const fromJson = ['from json', { n: 1, s: 'ünï' }, [null, false]];
  assert.equal(await clients[0].invoke('SendToAll', 'news', ...fromMsgpack), null);
  assert.equal(await clients[1].invoke('SendToAll', 'news', ...fromJson), null);
  await until(() => received.every((r) => r.length >= 2), 'every client to get both messages');

  const key = (args) => JSON.stringify(args);
  for (const r of received) {
    assert.equal(r.length, 2);
    assert.deepEqual(r.map(key).sort(), [key(fromMsgpack), key(fromJson)].sort());
  }
  // Another hub's client got nothing (it answers an Echo, so anything sent would have come).
  assert.equal(await elsewhere.invoke('Echo', 'ping'), 'ping');
  assert.equal(elsewhereGot, 0);
  await Promise.all([...clients, elsewhere].map((c) => c.stop()));
});

function negotiated(protocol) {
  const builder = new signalR.HubConnectionBuilder()
    .withUrl(server.url('chat'))
    .configureLogging(signalR.LogLevel.Warning);
  if (protocol === 'messagepack') builder.withHubProtocol(new MessagePackHubProtocol());
  return builder.build();
}

test('negotiated clients learn their connectionId; SendToConnection reaches exactly that one', async () => {
  const clients = Array.from({ length: 12 }, (_, i) => negotiated(i % 2 ? 'json' : 'messagepack'));
  const received = clients.map(() => []);
  clients.forEach((c, i) =>
    c.on('direct', (payload) => {
      received[i].push(payload);
    }),
  );
  await Promise.all(clients.map((c) => c.start()));
  const ids = clients.map((c) => c.connectionId);
  ids.forEach((id) => assert.match(id, /^[A-Za-z0-9_-]{22}$/));
  assert.equal(new Set(ids).size, ids.length);

  // Each client sends to the next one; the sockets sit on whichever shard their transport
  // request reached, and were moved to the shard that answered their negotiate.
  await Promise.all(
    clients.map((c, i) => c.invoke('SendToConnection', ids[(i + 1) % ids.length], 'direct', { from: i })),
  );
  await until(() => received.every((r) => r.length >= 1), 'every client to get its message');
  received.forEach((r, i) => assert.deepEqual(r, [{ from: (i + clients.length - 1) % clients.length }]));

  // An id nobody has completes quietly, as in ASP.NET.
  assert.equal(await clients[0].invoke('SendToConnection', 'AAAAAAAAAAAAAAAAAAAAAA', 'direct', 1), null);
  await Promise.all(clients.map((c) => c.stop()));
});

test('a WebSocket with an id that was never negotiated is refused with 404', async () => {
  const { default: WebSocket } = await import('ws');
  const status = await new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/hubs/chat?id=${'A'.repeat(32)}`);
    ws.on('unexpected-response', (req, res) => resolve(res.statusCode));
    ws.on('open', () => resolve('opened'));
    ws.on('error', () => {});
  });
  assert.equal(status, 404);
});
