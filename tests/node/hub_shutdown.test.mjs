// A server stopping (SIGTERM) says goodbye as ASP.NET does when it shuts down: every hub
// session gets a Close that allows reconnecting and a WebSocket close "going away", so that
// clients with automatic reconnect go looking for another server instead of giving up; then
// the process exits 0 with nothing left allocated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { startServer } from './server.mjs';

const RS = '\u001e';

// A raw JSON session, handshaken; resolves to {session, closed}, where closed resolves to
// {messages, code} once the server closes it.
function rawSession(port) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/hubs/chat`);
    const messages = [];
    const closed = new Promise((done) => {
      ws.on('close', (code) => done({ messages, code }));
    });
    ws.on('open', () => ws.send(`{"protocol":"json","version":1}${RS}`));
    ws.on('message', (data) => {
      messages.push(data.toString());
      if (messages.length === 1) resolve({ ws, closed });
    });
    ws.on('error', reject);
  });
}

test('SIGTERM sends every session a Close with allowReconnect, then exits 0', { timeout: 30000 }, async () => {
  const server = await startServer();
  const raw = await rawSession(server.port);

  const reconnecting = [];
  const clients = [];
  for (const protocol of ['json', 'messagepack']) {
    const builder = new signalR.HubConnectionBuilder()
      .withUrl(server.url('chat'))
      .withAutomaticReconnect([0, 60000])
      .configureLogging(signalR.LogLevel.None);
    if (protocol === 'messagepack') builder.withHubProtocol(new MessagePackHubProtocol());
    const c = builder.build();
    const went = new Promise((resolve) => c.onreconnecting((error) => resolve(error)));
    reconnecting.push(went);
    await c.start();
    clients.push(c);
  }

  assert.equal(await server.stop(), 0, 'ringhub stops cleanly with nothing left allocated');

  const { messages, code } = await raw.closed;
  assert.equal(messages[0], `{}${RS}`);
  const close = JSON.parse(messages[1].slice(0, -1));
  assert.deepEqual(close, { type: 7, error: 'Server is shutting down.', allowReconnect: true });
  assert.equal(code, 1001);

  // The official clients take the Close as "reconnect", not as the end.
  for (const went of reconnecting) {
    const error = await went;
    assert.match(String(error), /Server is shutting down/);
  }
  for (const c of clients) await c.stop();
});
