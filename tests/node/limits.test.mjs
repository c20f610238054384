// Limits, each with its flag: hub messages per second per connection (a burst, then the close
// with a clear reason, and only that connection), groups per connection, request header size,
// and the hub handshake deadline.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { startServer } from './server.mjs';

const servers = [];
after(async () => {
  for (const s of servers) assert.equal(await s.stop(), 0, 'ringhub stops cleanly');
});

async function server(flags) {
  const s = await startServer(flags);
  servers.push(s);
  return s;
}

function client(s, { protocol = 'json', transport = signalR.HttpTransportType.WebSockets } = {}) {
  const builder = new signalR.HubConnectionBuilder()
    .withUrl(s.url('chat'), { transport })
    .configureLogging(signalR.LogLevel.None);
  if (protocol === 'messagepack') builder.withHubProtocol(new MessagePackHubProtocol());
  const c = builder.build();
  c.closed = new Promise((resolve) => c.onclose((e) => resolve(e ? String(e) : 'clean')));
  return c;
}

for (const [protocol, transport] of [
  ['json', signalR.HttpTransportType.WebSockets],
  ['messagepack', signalR.HttpTransportType.WebSockets],
  ['json', signalR.HttpTransportType.LongPolling],
]) {
  test(`message rate (${protocol}, ${signalR.HttpTransportType[transport]}): a burst passes, a flood closes that connection only`, async () => {
    const s = await server(['--message-rate', '20', '--message-burst', '40']);
    const flooder = client(s, { protocol, transport });
    const bystander = client(s);
    await flooder.start();
    await bystander.start();
    // Within the burst: every invocation completes.
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => flooder.invoke('Echo', i)));
    assert.deepEqual(answers, Array.from({ length: 30 }, (_, i) => i));
    // Far beyond it, at once: the connection is closed with the reason.
    for (let i = 0; i < 200; i++) flooder.send('Echo', i).catch(() => {});
    const reason = await flooder.closed;
    assert.match(reason, /more than 20 messages per second/);
    // Another connection on the same server is untouched.
    assert.equal(await bystander.invoke('Echo', 'still here'), 'still here');
    await bystander.stop();
  });
}

test('message rate: a client that keeps under the rate is never closed', async () => {
  const s = await server(['--message-rate', '50', '--message-burst', '5']);
  const c = client(s);
  await c.start();
  for (let i = 0; i < 40; i++) {
    assert.equal(await c.invoke('Echo', i), i);
    await new Promise((r) => setTimeout(r, 40)); // 25 per second
  }
  await c.stop();
  assert.equal(await c.closed, 'clean');
});

test('--max-groups-per-connection: JoinGroup beyond it fails with the limit named', async () => {
  const s = await server(['--max-groups-per-connection', '3']);
  const c = client(s);
  await c.start();
  for (const g of ['a', 'b', 'c']) await c.invoke('JoinGroup', g);
  await assert.rejects(c.invoke('JoinGroup', 'd'), /at most 3 groups/);
  await c.invoke('LeaveGroup', 'a');
  await c.invoke('JoinGroup', 'd');
  await c.stop();
});

function rawRequest(port, text) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(text));
    let got = '';
    socket.on('data', (d) => {
      got += d;
    });
    socket.on('end', () => resolve(got));
    socket.on('error', reject);
  });
}

test('--max-header-size: a larger head is refused with 431, a smaller one served', async () => {
  const s = await server(['--max-header-size', '2048']);
  const big = `GET /healthz HTTP/1.1\r\nHost: h\r\nX-Pad: ${'a'.repeat(3000)}\r\nConnection: close\r\n\r\n`;
  assert.match(await rawRequest(s.port, big), /^HTTP\/1\.1 431 /);
  const small = `GET /healthz HTTP/1.1\r\nHost: h\r\nX-Pad: ${'a'.repeat(1500)}\r\nConnection: close\r\n\r\n`;
  assert.match(await rawRequest(s.port, small), /^HTTP\/1\.1 200 /);
  const roomy = await server(['--max-header-size', '16384']);
  assert.match(await rawRequest(roomy.port, big), /^HTTP\/1\.1 200 /);
});

test('--handshake-timeout-ms: a WebSocket that never sends the hub handshake is closed', async () => {
  const s = await server(['--handshake-timeout-ms', '300']);
  const { default: WebSocket } = await import('ws');
  const ws = new WebSocket(`ws://127.0.0.1:${s.port}/hubs/chat`);
  const started = Date.now();
  const messages = [];
  ws.on('message', (m) => messages.push(String(m)));
  const code = await new Promise((resolve) => ws.on('close', (c) => resolve(c)));
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 250 && elapsed < 5000, `closed after ${elapsed} ms`);
  assert.equal(code, 1000);
  assert.match(messages.join(''), /Handshake was canceled/);
});

test('--max-conns-per-ip: connections beyond it from one address get 503; a closed one frees its place', async () => {
  const s = await server(['--max-conns-per-ip', '3']);
  const { default: WebSocket } = await import('ws');
  const open = () =>
    new Promise((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${s.port}/hubs/chat`);
      ws.on('open', () => resolve({ ws, status: 101 }));
      ws.on('unexpected-response', (req, res) => resolve({ ws, status: res.statusCode }));
      ws.on('error', () => resolve({ ws, status: 'error' }));
    });
  const held = [await open(), await open(), await open()];
  assert.deepEqual(held.map((h) => h.status), [101, 101, 101]);
  const refused = await open();
  assert.equal(refused.status, 503);
  // Plain requests from the address count too.
  assert.match(await rawRequest(s.port, 'GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n'), /^HTTP\/1\.1 503 /);
  held[0].ws.close();
  await new Promise((r) => held[0].ws.on('close', r));
  await new Promise((r) => setTimeout(r, 100));
  const again = await open();
  assert.equal(again.status, 101);
  for (const h of [held[1], held[2], again]) h.ws.close();
});

test('--max-conns: connections beyond the limit are refused at accept; others are served', async () => {
  const s = await server(['--max-conns', '4']);
  const sockets = [];
  let served = 0;
  for (let i = 0; i < 12; i++) {
    const socket = net.connect(s.port, '127.0.0.1');
    sockets.push(socket);
    const answer = await new Promise((resolve) => {
      let got = '';
      socket.on('data', (d) => {
        got += d;
        if (got.includes('\r\n\r\n')) resolve(got);
      });
      socket.on('close', () => resolve(got));
      socket.on('error', () => {});
      socket.on('connect', () => socket.write('GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n'));
    });
    if (/^HTTP\/1\.1 200 /.test(answer)) served++;
  }
  // Two shards hold two each; the kernel spreads connections over them unevenly.
  assert.ok(served >= 2 && served <= 4, `${served} of 12 held connections were served`);
  for (const socket of sockets) socket.destroy();
  await new Promise((r) => setTimeout(r, 200));
  assert.match(await rawRequest(s.port, 'GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 200 /);
});

test('--send-queue-max for long polling: a connection that stops polling is closed once its waiting output passes the cap', async () => {
  const s = await server(['--send-queue-max', '65536']);
  const url = s.url('chat');
  const n = await (await fetch(`${url}/negotiate?negotiateVersion=1`, { method: 'POST' })).json();
  const lp = `${url}?id=${n.connectionToken}`;
  assert.equal((await fetch(lp)).status, 200); // the first poll
  const post = (body) => fetch(lp, { method: 'POST', body }).then((r) => r.status);
  assert.equal(await post(`{"protocol":"json","version":1}\x1e`), 200);
  assert.equal(await post(`{"type":1,"invocationId":"1","target":"JoinGroup","arguments":["g"]}\x1e`), 200);
  // The handshake reply and the completion wait for the next poll; it does not come.
  const sender = new signalR.HubConnectionBuilder().withUrl(url).configureLogging(signalR.LogLevel.None).build();
  await sender.start();
  for (let i = 0; i < 40; i++) await sender.invoke('SendToGroup', 'g', 'm', i, 'x'.repeat(4000));
  await sender.stop();
  // Now it polls: the waiting output was dropped for the Close, which says why; then 204.
  const answer = await fetch(lp);
  assert.equal(answer.status, 200);
  const text = await answer.text();
  assert.match(text, /did not keep up/);
  assert.ok(text.length < 65536, `${text.length} bytes came with the Close`);
  assert.equal((await fetch(lp)).status, 204);
});
