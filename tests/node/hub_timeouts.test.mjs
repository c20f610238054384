// Keep-alive and client timeout against the real ringhub binary (takes about 35 s): an idle
// official client stays connected past the 30 s timeouts on both sides, because each side pings
// after 15 s of silence; a raw WebSocket client that completes the handshake and then says
// nothing is dropped after 30 s with a Close message saying why.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import * as signalR from '@microsoft/signalr';
import { startServer } from './server.mjs';

const RS = '\u001e';
let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  assert.equal(await server.stop(), 0, 'ringhub stops cleanly with nothing left allocated');
});

function silentClient() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/hubs/chat`);
    const messages = [];
    const opened = Date.now();
    const timer = setTimeout(() => reject(new Error('not dropped within 45 s')), 45000);
    ws.on('open', () => ws.send(`{"protocol":"json","version":1}${RS}`));
    ws.on('message', (data) => messages.push(data.toString()));
    ws.on('close', (code) => {
      clearTimeout(timer);
      resolve({ messages, code, seconds: (Date.now() - opened) / 1000 });
    });
    ws.on('error', () => {});
  });
}

test('idle official clients stay, silent clients are dropped after 30 s', async () => {
  const idle = new signalR.HubConnectionBuilder()
    .withUrl(server.url('chat'), { skipNegotiation: true, transport: signalR.HttpTransportType.WebSockets })
    .configureLogging(signalR.LogLevel.Warning)
    .build();
  let idleClosed = false;
  idle.onclose(() => {
    idleClosed = true;
  });
  await idle.start();

  const silent = await silentClient();
  assert.ok(silent.seconds >= 29.5 && silent.seconds < 40, `dropped after ${silent.seconds} s`);
  assert.equal(silent.messages[0], `{}${RS}`);
  // Server pings arrived during the silence (every 15 s), then the Close with the reason.
  assert.ok(silent.messages.includes(`{"type":6}${RS}`));
  assert.match(silent.messages.at(-1), /Server timeout elapsed without receiving a message/);
  assert.equal(silent.code, 1000);

  await new Promise((resolve) => setTimeout(resolve, 3000)); // past 30 s for the idle one too
  assert.equal(idleClosed, false);
  assert.equal(await idle.invoke('Echo', 'after 33 s'), 'after 33 s');
  await idle.stop();
});
