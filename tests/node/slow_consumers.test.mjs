// Slow consumers: one client stops reading while 100 others keep up. Its send queue is capped
// (--send-queue-max); by default it is closed with a Close that says why (allowReconnect), with
// drop-oldest (here for groups matching telemetry*) it keeps its connection and loses its
// oldest waiting messages; with latest-value (quotes*) only the group's newest message waits. Either way the others get every message in order and the server's
// memory stays bounded.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fs from 'node:fs';
import crypto from 'node:crypto';
import * as signalR from '@microsoft/signalr';
import { startServer } from './server.mjs';

const RS = '\x1e';
const READERS = 100;
const MESSAGES = 1500;
const PAYLOAD = 'x'.repeat(1000);

let server;
let dropOldestCount = 0; /* what the stalled client got with drop-oldest */
after(async () => {
  if (server) assert.equal(await server.stop(), 0, 'ringhub stops cleanly');
});

// RSS says little under AddressSanitizer (its allocator keeps freed memory in quarantine).
const RSS_CHECKED = !process.env.ASAN_OPTIONS;

function rssKb(pid) {
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

// A WebSocket hub client by hand, so that it can stop reading: it joins @group, then pauses
// its socket (the kernel's buffers fill, then ringhub's queue for it).
async function stalledClient(port, group) {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  const key = crypto.randomBytes(16).toString('base64');
  socket.write(`GET /hubs/chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  let received = Buffer.alloc(0);
  const chunks = [];
  socket.on('data', (d) => chunks.push(d));
  const text = () => Buffer.concat(chunks).toString('latin1');
  const until = async (what, cond) => {
    const deadline = Date.now() + 5000;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`stalled client: no ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  await until('101', () => text().includes('\r\n\r\n'));
  const frame = (payload) => {
    const body = Buffer.from(payload);
    const mask = crypto.randomBytes(4);
    const head = body.length < 126 ? Buffer.from([0x81, 0x80 | body.length]) : null;
    const masked = Buffer.from(body.map((b, i) => b ^ mask[i % 4]));
    return Buffer.concat([head, mask, masked]);
  };
  socket.write(frame(`{"protocol":"json","version":1}${RS}`));
  socket.write(frame(`{"type":1,"invocationId":"1","target":"JoinGroup","arguments":["${group}"]}${RS}`));
  await until('JoinGroup completion', () => text().includes('"invocationId":"1"'));
  socket.pause();
  let ended = false;
  socket.on('end', () => (ended = true));
  socket.on('close', () => (ended = true));
  socket.on('error', () => (ended = true));
  return {
    socket,
    text,
    get ended() {
      return ended;
    },
    resume: () => socket.resume(),
  };
}

async function reader(s, group) {
  const c = new signalR.HubConnectionBuilder()
    .withUrl(s.url('chat'), { skipNegotiation: true, transport: signalR.HttpTransportType.WebSockets })
    .configureLogging(signalR.LogLevel.None)
    .build();
  c.got = [];
  c.on('m', (seq) => {
    c.got.push(seq);
  });
  await c.start();
  await c.invoke('JoinGroup', group);
  return c;
}

async function scenario(group) {
  const stalled = await stalledClient(server.port, group);
  const readers = await Promise.all(Array.from({ length: READERS }, () => reader(server, group)));
  const sender = await reader(server, 'nobody');
  const rssBefore = rssKb(server.pid);
  // In batches, each read by every reader before the next: they keep up; the stalled one not.
  for (let i = 0; i < MESSAGES; i += 25) {
    await Promise.all(Array.from({ length: 25 }, (_, j) => sender.invoke('SendToGroup', group, 'm', i + j, PAYLOAD)));
    const deadline = Date.now() + 10000;
    while (readers.some((r) => r.got.length < i + 25) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 2));
  }
  const rssAfter = rssKb(server.pid);
  if (process.env.RH_DEBUG_RSS) console.error(`rss before ${rssBefore} after ${rssAfter}`);
  // Every reader that kept up got every message, once, in order (one sender, one group).
  for (const r of readers) assert.deepEqual(r.got, Array.from({ length: MESSAGES }, (_, i) => i));
  await Promise.all([...readers, sender].map((c) => c.stop()));
  return { stalled, rssGrowthKb: rssAfter - rssBefore };
}

test('disconnect (the default): the stalled client is closed with the reason, the others get everything', async () => {
  // A fixed kernel send buffer, so that ringhub's cap (the default, 256 KiB) is what fills.
  server = await startServer([
    '--socket-send-buffer', '16384',
    '--slow-consumer-groups', 'telemetry*=drop-oldest,quotes*=latest-value',
  ]);
  const { stalled, rssGrowthKb } = await scenario('chat-room');
  // 1.5 MB went to each of 101 clients; the stalled one holds at most the cap in ringhub.
  if (RSS_CHECKED) assert.ok(rssGrowthKb < 20000, `server RSS grew ${rssGrowthKb} KiB`);
  stalled.resume();
  const deadline = Date.now() + 5000;
  while (!stalled.ended && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.ok(stalled.ended, 'the stalled client was disconnected');
  const got = (stalled.text().match(/"target":"m"/g) ?? []).length;
  assert.ok(got < MESSAGES, `the stalled client got ${got} of ${MESSAGES} before the close`);
});

test('drop-oldest (groups matching telemetry*): the stalled client stays connected and gets the newest', async () => {
  const { stalled, rssGrowthKb } = await scenario('telemetry-7');
  if (RSS_CHECKED) assert.ok(rssGrowthKb < 20000, `server RSS grew ${rssGrowthKb} KiB`);
  stalled.resume();
  // It catches up: the last message arrives, some before it were dropped, and it stays open.
  const deadline = Date.now() + 5000;
  while (!stalled.text().includes(`"arguments":[${MESSAGES - 1},`) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 20));
  assert.ok(stalled.text().includes(`"arguments":[${MESSAGES - 1},`), 'the newest message arrived');
  const got = (stalled.text().match(/"target":"m"/g) ?? []).length;
  assert.ok(got < MESSAGES, `some were dropped (${got} of ${MESSAGES} arrived)`);
  dropOldestCount = got;
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(stalled.ended, false, 'still connected');
  stalled.socket.destroy();
});

test('latest-value (groups matching quotes*): only the newest message waits for the stalled client', async () => {
  const { stalled, rssGrowthKb } = await scenario('quotes-eur');
  if (RSS_CHECKED) assert.ok(rssGrowthKb < 20000, `server RSS grew ${rssGrowthKb} KiB`);
  stalled.resume();
  const deadline = Date.now() + 5000;
  while (!stalled.text().includes(`"arguments":[${MESSAGES - 1},`) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 20));
  const seqs = [...stalled.text().matchAll(/"arguments":\[(\d+),/g)].map((m) => Number(m[1]));
  assert.equal(seqs.at(-1), MESSAGES - 1, 'the newest message arrived, last');
  assert.deepEqual([...seqs].sort((a, b) => a - b), seqs, 'in order');
  // What the kernel took before the queue backed up, what a send in flight held, then the
  // newest alone for the whole backlog: far fewer than drop-oldest delivered, which keeps a
  // queue's worth (256 KiB) of consecutive messages.
  assert.ok(dropOldestCount > 0);
  assert.ok(seqs.length < dropOldestCount - 100,
    `${seqs.length} arrived, against ${dropOldestCount} with drop-oldest`);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(stalled.ended, false, 'still connected');
  stalled.socket.destroy();
});
