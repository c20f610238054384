// Transport fallback with the official client: behind a proxy that refuses WebSocket upgrades
// (as some corporate proxies do), the client's WebSocket attempt fails and it falls back, as the
// negotiate response orders it, to Server-Sent Events (JSON) or long polling (MessagePack,
// which SSE cannot carry), and then works normally.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { startServer } from './server.mjs';

let server;
let proxy;
let proxyPort;
let upgradesRefused = 0;

before(async () => {
  server = await startServer();
  // Forwards plain requests (streaming both ways) and refuses every upgrade with 403.
  proxy = http.createServer((req, res) => {
    const upstream = http.request(
      { host: '127.0.0.1', port: server.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  proxy.on('upgrade', (req, socket) => {
    upgradesRefused++;
    socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  proxyPort = proxy.address().port;
});

after(async () => {
  proxy.close();
  proxy.closeAllConnections();
  assert.equal(await server.stop(), 0, 'ringhub stops cleanly with nothing left allocated');
});

function client(protocol) {
  const builder = new signalR.HubConnectionBuilder()
    .withUrl(`http://127.0.0.1:${proxyPort}/hubs/chat`)
    .configureLogging(signalR.LogLevel.None);
  if (protocol === 'messagepack') builder.withHubProtocol(new MessagePackHubProtocol());
  return builder.build();
}

for (const [protocol, expected] of [
  ['json', 'ServerSentEventsTransport'],
  ['messagepack', 'LongPollingTransport'],
]) {
  test(`${protocol}: a refused WebSocket upgrade falls back to ${expected}`, async () => {
    const refusedBefore = upgradesRefused;
    const c = client(protocol);
    const got = [];
    c.on('news', (value) => {
      got.push(value);
    });
    await c.start();
    assert.equal(upgradesRefused, refusedBefore + 1, 'the client tried WebSockets first');
    assert.equal(c.connection.transport.constructor.name, expected);
    assert.deepEqual(await c.invoke('Echo', { protocol, n: [1, 2, 3] }), { protocol, n: [1, 2, 3] });
    await c.invoke('SendToAll', 'news', `hello ${protocol}`);
    const deadline = Date.now() + 5000;
    while (!got.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(got, [`hello ${protocol}`]);
    await c.stop();
  });
}
