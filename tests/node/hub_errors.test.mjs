// Bad input on the hub endpoint, sent with a raw WebSocket (the `ws` package) against the real
// ringhub binary: a refused handshake gets ASP.NET's error text, an oversized hub message ends
// the session with a hub Close as ASP.NET does (while many small ones batched into one large
// WebSocket message are fine), garbage frames close only that connection with a WebSocket
// status that says why, and an official client connected all along keeps working.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import * as signalR from '@microsoft/signalr';
import { startServer } from './server.mjs';

const RS = '\u001e';
let server;
let bystander;

before(async () => {
  server = await startServer();
  bystander = new signalR.HubConnectionBuilder()
    .withUrl(server.url('chat'), { skipNegotiation: true, transport: signalR.HttpTransportType.WebSockets })
    .configureLogging(signalR.LogLevel.Warning)
    .build();
  await bystander.start();
});

after(async () => {
  assert.equal(await bystander.invoke('Echo', 'still here'), 'still here');
  await bystander.stop();
  assert.equal(await server.stop(), 0, 'ringhub stops cleanly with nothing left allocated');
});

// Opens a raw WebSocket to the hub; resolves to {messages, code, reason} when it closes.
function rawSession(onOpen, port = server.port) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/hubs/chat`);
    const messages = [];
    const timer = setTimeout(() => reject(new Error('the server did not close')), 10000);
    ws.on('open', () => onOpen(ws));
    ws.on('message', (data) => messages.push(data.toString()));
    ws.on('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ messages, code, reason: reason.toString() });
    });
    ws.on('error', () => {});
  });
}

test('an unknown hub protocol is refused with its error text', async () => {
  const r = await rawSession((ws) => ws.send(`{"protocol":"nonsense","version":1}${RS}`));
  assert.deepEqual(r.messages, [`{"error":"The protocol 'nonsense' is not supported."}${RS}`]);
  assert.equal(r.code, 1000);
});

test('an unsupported protocol version is refused', async () => {
  const r = await rawSession((ws) => ws.send(`{"protocol":"json","version":9}${RS}`));
  assert.equal(r.messages.length, 1);
  assert.match(r.messages[0], /does not support version 9 of the 'json' protocol/);
});

test('a malformed handshake is refused', async () => {
  const r = await rawSession((ws) => ws.send(`{"protocol":${RS}`));
  assert.equal(r.messages.length, 1);
  assert.match(r.messages[0], /An unexpected error occurred during connection handshake/);
});

test('a malformed hub message ends the session with a Close message', async () => {
  const r = await rawSession((ws) => ws.send(`{"protocol":"json","version":1}${RS}{"type":1,"target":${RS}`));
  assert.equal(r.messages[0], `{}${RS}`);
  assert.match(r.messages[1], /^\{"type":7,"error":"Connection closed with an error\./);
  assert.equal(r.code, 1000);
});

test('a hub message over 32 KiB ends the session with a Close saying so', async () => {
  const big = `{"type":1,"target":"Echo","arguments":["${'x'.repeat(40000)}"]}${RS}`;
  const r = await rawSession((ws) => {
    ws.send(`{"protocol":"json","version":1}${RS}`);
    ws.send(big);
  });
  assert.equal(r.messages[0], `{}${RS}`);
  assert.match(r.messages[1], /The maximum message size of 32768B was exceeded/);
  assert.equal(r.code, 1000);
});

test('a JoinGroup with an invocation id over 200 bytes completes with an error', async () => {
  const id = 'i'.repeat(201);
  const r = await rawSession((ws) => {
    ws.send(`{"protocol":"json","version":1}${RS}`);
    ws.send(`{"type":1,"invocationId":"${id}","target":"JoinGroup","arguments":["g"]}${RS}`);
    ws.send(`{"type":1,"invocationId":"short","target":"JoinGroup","arguments":["g"]}${RS}`);
    setTimeout(() => ws.send(`{"type":7}${RS}`), 200);
  });
  const completions = r.messages.slice(1).join('').split(RS).filter(Boolean).map((m) => JSON.parse(m));
  assert.deepEqual(completions.map((m) => m.invocationId), [id, 'short']);
  assert.match(completions[0].error, /invocation ids are at most 200 bytes/);
  assert.equal(completions[1].result, null);
});

test('--max-message-size sets the limit', async () => {
  const small = await startServer(['--max-message-size', '1024']);
  try {
    const echo = (n) => `{"type":1,"invocationId":"1","target":"Echo","arguments":["${'x'.repeat(n)}"]}${RS}`;
    const ok = await rawSession((ws) => {
      ws.send(`{"protocol":"json","version":1}${RS}`);
      ws.send(echo(900));
      ws.send(`{"type":7}${RS}`);
    }, small.port);
    assert.match(ok.messages[1], /"result":"x{900}"/);
    const r = await rawSession((ws) => {
      ws.send(`{"protocol":"json","version":1}${RS}`);
      ws.send(echo(1100));
    }, small.port);
    assert.match(r.messages[1], /The maximum message size of 1024B was exceeded/);
  } finally {
    assert.equal(await small.stop(), 0);
  }
});

test('many small hub messages in one WebSocket message of 100 KB are all answered', async () => {
  const count = 2000;
  let batch = `{"protocol":"json","version":1}${RS}`;
  for (let i = 0; i < count; i++) {
    batch += `{"type":1,"invocationId":"${i}","target":"Echo","arguments":["${'v'.repeat(32)}${i}"]}${RS}`;
  }
  assert.ok(batch.length > 100000);
  const results = await new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/hubs/chat`);
    const seen = [];
    let buffered = '';
    const timer = setTimeout(() => reject(new Error(`only ${seen.length} completions`)), 10000);
    ws.on('open', () => ws.send(batch));
    ws.on('message', (data) => {
      buffered += data.toString();
      const records = buffered.split(RS);
      buffered = records.pop();
      for (const record of records) {
        const m = JSON.parse(record);
        if (m.type === 3) seen.push(m);
      }
      if (seen.length === count) {
        clearTimeout(timer);
        ws.close();
        resolve(seen);
      }
    });
    ws.on('error', reject);
  });
  results.forEach((m, i) => {
    assert.equal(m.invocationId, String(i));
    assert.equal(m.result, `${'v'.repeat(32)}${i}`);
  });
});

test('garbage that is not WebSocket framing closes with status 1002', async () => {
  const r = await rawSession((ws) => ws._socket.write(Buffer.from([0x8f, 0x80, 1, 2, 3, 4])));
  assert.equal(r.code, 1002);
});
