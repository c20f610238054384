// ringhub from a real browser: headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) opens a page served from another origin (a tiny node:http server on another
// loopback port), which loads the official client's browser bundles (signalr.js and
// signalr-protocol-msgpack.js) and talks to ringhub cross-origin, with credentials, over
// WebSockets (JSON and MessagePack), Server-Sent Events (JSON) and long polling (JSON and
// MessagePack): Echo, JoinGroup + SendToGroup, SendToUser and SendToAll. The page also runs the
// issue's React-style EventSource code (new EventSource(`${base}/api/events/${userId}`) with
// listeners for 'notification' and 'dataUpdate'), which must receive what the five connections
// send. A screenshot goes to $RH_ARTIFACT_DIR (default: the OS temp dir).
//
// Run: RINGHUB=build/shards/ringhub RINGHUB_ARGS="--shards 2" node --test tests/browser/browser.test.mjs
// Skipped (with a message) only when Chromium is absent; tools/setup.sh installs it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { startServer } from '../node/server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeDir = path.join(here, '..', 'node');
// playwright-core is installed with the Node tests' packages (tests/node/package.json).
const require = createRequire(path.join(nodeDir, 'package.json'));

const CHROMIUM = process.env.RH_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = fs.existsSync(CHROMIUM);
const skip = haveChromium
  ? false
  : `${CHROMIUM} is missing: install Debian's chromium (tools/setup.sh does) to run the browser test`;

const FILES = {
  '/page.html': [path.join(here, 'page.html'), 'text/html; charset=utf-8'],
  '/signalr.js': [
    path.join(nodeDir, 'node_modules/@microsoft/signalr/dist/browser/signalr.js'),
    'text/javascript; charset=utf-8',
  ],
  '/signalr-protocol-msgpack.js': [
    path.join(nodeDir, 'node_modules/@microsoft/signalr-protocol-msgpack/dist/browser/signalr-protocol-msgpack.js'),
    'text/javascript; charset=utf-8',
  ],
};

// The page's own origin: a static server on another loopback port.
async function startStatic() {
  const served = [];
  const srv = http.createServer((req, res) => {
    const pathname = new URL(req.url, 'http://x').pathname;
    served.push(pathname);
    const file = FILES[pathname];
    if (!file) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
      return;
    }
    res.writeHead(200, { 'Content-Type': file[1], 'Cache-Control': 'no-store' });
    res.end(fs.readFileSync(file[0]));
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  return { srv, served, origin: `http://127.0.0.1:${srv.address().port}` };
}

const cleanups = [];
after(async () => {
  for (const f of cleanups.reverse()) await f();
});

test('Chromium: every transport and protocol, groups, users and the EventSource stream, cross-origin', { skip, timeout: 60000 }, async () => {
  const { chromium } = require('playwright-core');
  const server = await startServer();
  let serverStopped = false;
  cleanups.push(async () => {
    if (!serverStopped) await server.stop();
  });
  const site = await startStatic();
  cleanups.push(() => new Promise((resolve) => site.srv.close(resolve)));
  const base = `http://127.0.0.1:${server.port}`;
  assert.notEqual(site.origin, base, 'the page is on another origin than ringhub');

  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ringhub-chromium-'));
  cleanups.push(() => fs.rmSync(profile, { recursive: true, force: true }));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox'],
    viewport: { width: 1100, height: 800 },
  });
  cleanups.push(() => context.close());
  const page = context.pages()[0] ?? (await context.newPage());

  // What the browser did, to show on failure and to check the transports really were used.
  const problems = [];
  const consoleLines = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    const line = `${m.type()}: ${m.text()} (${m.location().url})`;
    consoleLines.push(line);
    if (m.type() === 'error') problems.push(line);
  });
  const requests = [];
  page.on('request', (r) => {
    if (r.url().startsWith(base)) requests.push({ method: r.method(), url: r.url(), type: r.resourceType() });
  });
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));

  const artifacts = process.env.RH_ARTIFACT_DIR || os.tmpdir();
  const shot = path.join(artifacts, 'ringhub-browser.png');
  try {
    await page.goto(`${site.origin}/page.html?base=${encodeURIComponent(base)}`);
    await page.waitForFunction(() => typeof window.rh === 'object' && typeof window.signalR === 'object');

    const userId = `browser-user-${process.pid}`;
    await page.evaluate((u) => window.rh.startEvents(u), userId);

    const connected = await page.evaluate(() => window.rh.connectAll('events'));
    const expectedTransport = {
      WebSockets: 'WebSocketTransport',
      ServerSentEvents: 'ServerSentEventsTransport',
      LongPolling: 'LongPollingTransport',
    };
    const combos = await page.evaluate(() => window.rh.COMBOS);
    assert.equal(connected.length, combos.length);
    connected.forEach((c, i) => {
      assert.equal(c.name, combos[i].name);
      assert.equal(c.state, 'Connected', c.name);
      assert.match(c.connectionId, /^[A-Za-z0-9_-]{22}$/, `${c.name} has a connectionId`);
      assert.equal(c.transport, expectedTransport[combos[i].transport], `${c.name} uses ${combos[i].transport}`);
      assert.equal(c.protocol, combos[i].protocol);
    });

    const echo = await page.evaluate(() => window.rh.echoAll());
    for (const c of combos) assert.deepEqual(echo.got[c.name], echo.sent, `Echo over ${c.name}`);

    const group = await page.evaluate(() => window.rh.groupRound('browser-room'));
    const allFrom = combos.map((c) => ({ from: c.name, text: `hi from ${c.name} ✓` }));
    const byFrom = (a, b) => a.from.localeCompare(b.from);
    for (const c of combos) {
      assert.deepEqual([...group[c.name]].sort(byFrom), [...allFrom].sort(byFrom), `group messages to ${c.name}`);
    }

    const got = await page.evaluate((u) => window.rh.notifyAll(u), userId);
    // The EventSource got each connection's SendToUser and SendToAll exactly once (five senders,
    // perhaps on different shards: in any order).
    assert.deepEqual(
      [...got.notifications].sort(byFrom),
      combos.map((c) => ({ from: c.name, title: `note from ${c.name}` })).sort(byFrom),
      'the EventSource listener for "notification" got one per connection',
    );
    assert.deepEqual(
      [...got.dataUpdates].sort(byFrom),
      combos.map((c) => ({ from: c.name, version: 1 })).sort(byFrom),
      'the EventSource listener for "dataUpdate" got every SendToAll',
    );
    for (const c of combos) {
      assert.deepEqual(
        [...got.perConnection[c.name]].sort(byFrom),
        combos.map((x) => ({ from: x.name, version: 1 })).sort(byFrom),
        `SendToAll reached ${c.name}`,
      );
    }

    // The transports were really used, on ringhub's origin.
    assert.equal(sockets.filter((u) => u.startsWith(`ws://127.0.0.1:${server.port}/hubs/events?`)).length, 2, 'two WebSockets');
    const hubRequests = requests.filter((r) => new URL(r.url).pathname === '/hubs/events');
    assert.ok(
      hubRequests.some((r) => r.method === 'GET' && r.type === 'eventsource'),
      'an EventSource GET for the Server-Sent Events transport',
    );
    assert.ok(
      hubRequests.filter((r) => r.method === 'GET' && r.type !== 'eventsource' && r.type !== 'websocket').length >= 2,
      'long polls',
    );
    assert.ok(hubRequests.some((r) => r.method === 'POST'), 'POST sends');
    assert.ok(
      requests.some((r) => new URL(r.url).pathname === `/api/events/${userId}` && r.type === 'eventsource'),
      'the EventSource of the page',
    );
    assert.deepEqual(problems, [], 'no page or console errors');

    await page.evaluate(() => window.rh.render(true));
    await page.screenshot({ path: shot, fullPage: true });
    const stopped = await page.evaluate(() => window.rh.stopAll());
    for (const s of stopped) {
      assert.equal(s.state, 'Disconnected', s.name);
      assert.equal(s.closeError, null, `${s.name} closed without an error`);
    }
  } catch (err) {
    await page.evaluate(() => window.rh && window.rh.render(false)).catch(() => {});
    await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
    console.error(`screenshot: ${shot}\nbrowser console:\n${consoleLines.join('\n')}\nproblems: ${problems.join('\n')}`);
    throw err;
  }
  console.error(`screenshot: ${shot}`);

  await context.close();
  serverStopped = true;
  assert.equal(await server.stop(), 0, 'ringhub stops cleanly with nothing left allocated');
});
