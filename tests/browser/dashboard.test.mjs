// The operator dashboard in a real browser: headless Chromium (Debian's, driven by
// playwright-core) opens /dashboard while official SignalR clients publish, and its charts
// must move with the traffic: the stream's samples arrive once a second, the numbers show the
// test's connections and messages, and the canvases are drawn and change. A screenshot goes to
// $RH_ARTIFACT_DIR (default: the OS temp dir). With an access key the page and its stream need
// a ringhub.admin token; without --dashboard there is no page.
//
// Run: RINGHUB=build/shards/ringhub RINGHUB_ARGS="--shards 2" node --test tests/browser/dashboard.test.mjs
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { startServer } from '../node/server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'node', 'package.json'));
const signalR = require('@microsoft/signalr');

const CHROMIUM = process.env.RH_CHROMIUM ?? '/usr/bin/chromium';
const skip = fs.existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is missing: install Debian's chromium (tools/setup.sh does) to run the browser test`;
const TOKEN_TOOL =
  process.env.RINGHUB_TOKEN ?? path.join(path.dirname(process.env.RINGHUB ?? '.'), '..', 'tools', 'ringhub-token');

const cleanups = [];
after(async () => {
  for (const f of cleanups.reverse()) await f();
});

async function until(condition, what, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function launchChromium() {
  const { chromium } = require('playwright-core');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ringhub-dashboard-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox'],
    viewport: { width: 1200, height: 900 },
  });
  cleanups.push(async () => {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  // Self-contained: every request the page makes goes to ringhub itself.
  const foreign = [];
  page.on('request', (r) => {
    if (!r.url().startsWith('http://127.0.0.1:')) foreign.push(r.url());
  });
  return { page, problems, foreign };
}

// What the page's canvas @id shows, as a digest of its pixels, and how many are not white.
async function canvasState(page, id) {
  return page.evaluate((canvasId) => {
    const c = document.getElementById(canvasId);
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let inked = 0;
    let hash = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i] < 250 || data[i + 1] < 250 || data[i + 2] < 250) inked++;
      hash = (hash * 31 + data[i] + data[i + 1] * 7 + data[i + 2] * 13) >>> 0;
    }
    return { inked, hash, width: c.width, height: c.height };
  }, id);
}

test('Chromium: the dashboard charts move with the traffic of official clients', { skip, timeout: 90000 }, async () => {
  const server = await startServer(['--dashboard']);
  cleanups.push(() => server.stop());
  const base = `http://127.0.0.1:${server.port}`;
  const { page, problems, foreign } = await launchChromium();

  await page.goto(`${base}/dashboard`);
  await until(() => page.evaluate(() => window.ringhubDashboard?.samples >= 1), 'the first stats event');
  const quiet = await page.evaluate(() => window.ringhubDashboard.last);
  assert.equal(quiet.shards.length, 2, 'both shards are reported');
  const quietChart = await canvasState(page, 'chart-out');

  // Six official clients in one group; one of them publishes to it for a few seconds.
  const clients = [];
  for (let i = 0; i < 6; i++) {
    const c = new signalR.HubConnectionBuilder()
      .withUrl(`${base}/hubs/dash?user=u${i}`, { transport: signalR.HttpTransportType.WebSockets })
      .configureLogging(signalR.LogLevel.None)
      .build();
    let received = 0;
    c.on('tick', () => received++);
    await c.start();
    await c.invoke('JoinGroup', 'watchers');
    clients.push({ c, received: () => received });
    cleanups.push(() => c.stop().catch(() => {}));
  }
  await until(
    () => page.evaluate(() => window.ringhubDashboard.last.shards.reduce((a, s) => a + s.sessions, 0) >= 6),
    'the dashboard to show the six sessions',
  );

  let publishing = true;
  let sent = 0;
  const publisher = (async () => {
    while (publishing) {
      await clients[0].c.invoke('SendToGroup', 'watchers', 'tick', sent++);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  // The charts show it: messages in and out per second above zero, at most a few seconds late.
  const busy = await until(async () => {
    const last = await page.evaluate(() => window.ringhubDashboard.last);
    const out = last.shards.reduce((a, s) => a + s.messages_out_per_s, 0);
    const inbound = last.shards.reduce((a, s) => a + s.messages_in_per_s, 0);
    return out > 0 && inbound > 0 ? { out, inbound, last } : null;
  }, 'messages per second on the dashboard');
  const samplesBefore = await page.evaluate(() => window.ringhubDashboard.samples);
  await until(() => page.evaluate((n) => window.ringhubDashboard.samples >= n + 2, samplesBefore), 'two more samples');
  publishing = false;
  await publisher;

  // Out is about six times in: every message reaches six members (loosely: samples are
  // seconds of a running stream).
  assert.ok(busy.out >= busy.inbound, `out ${busy.out} >= in ${busy.inbound}`);
  const table = await page.evaluate(() => document.querySelectorAll('#shards tbody tr').length);
  assert.equal(table, 2, 'a table row per shard');
  const busyChart = await canvasState(page, 'chart-out');
  assert.ok(busyChart.width > 0 && busyChart.inked > 500, `the chart is drawn (${busyChart.inked} inked pixels)`);
  assert.notEqual(busyChart.hash, quietChart.hash, 'the messages-out chart changed with the traffic');
  for (const id of ['chart-connections', 'chart-in', 'chart-drops']) {
    const s = await canvasState(page, id);
    assert.ok(s.inked > 100, `${id} is drawn`);
  }
  for (const { received } of clients) assert.ok(received() > 0, 'the members got the messages');

  const artifacts = process.env.RH_ARTIFACT_DIR || os.tmpdir();
  const shot = path.join(artifacts, 'ringhub-dashboard.png');
  await page.screenshot({ path: shot, fullPage: true });
  assert.ok(fs.statSync(shot).size > 10000, `a screenshot at ${shot}`);
  console.log(`dashboard screenshot: ${shot}; ${sent} messages sent`);

  assert.deepEqual(problems, [], 'no page errors');
  assert.deepEqual(foreign, [], 'no request leaves ringhub');
  const html = await (await fetch(`${base}/dashboard`)).text();
  assert.doesNotMatch(html, /(src|href)\s*=\s*["']?(https?:)?\/\//i, 'no external resource in the page');
});

test('With an access key the dashboard and its stream need a ringhub.admin token', { skip, timeout: 60000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringhub-dashkey-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const keyFile = path.join(dir, 'key');
  fs.writeFileSync(keyFile, 'dashboard-test-key-0123456789abcdef\n', { mode: 0o600 });
  const server = await startServer(['--dashboard', '--access-key-file', keyFile]);
  cleanups.push(() => server.stop());
  const base = `http://127.0.0.1:${server.port}`;
  const mint = (roles) =>
    execFileSync(TOKEN_TOOL, ['--key-file', keyFile, '--user', 'ops', ...roles.flatMap((r) => ['--role', r]),
      '--aud', `${base}/dashboard`], { encoding: 'utf8' }).trim();

  assert.equal((await fetch(`${base}/dashboard`)).status, 401, 'no token');
  assert.equal((await fetch(`${base}/dashboard/stream`)).status, 401, 'no token on the stream');
  const plain = mint([]);
  assert.equal((await fetch(`${base}/dashboard?access_token=${plain}`)).status, 403, 'no ringhub.admin role');
  const wrongAud = execFileSync(TOKEN_TOOL, ['--key-file', keyFile, '--role', 'ringhub.admin', '--aud',
    `${base}/hubs/chat`], { encoding: 'utf8' }).trim();
  assert.equal((await fetch(`${base}/dashboard?access_token=${wrongAud}`)).status, 401, 'another audience');
  const admin = mint(['ringhub.admin']);
  const ok = await fetch(`${base}/dashboard?access_token=${admin}`);
  assert.equal(ok.status, 200);
  assert.match(ok.headers.get('content-type'), /^text\/html/);

  // The page passes its token on to the stream, so the browser gets samples.
  const { page, problems } = await launchChromium();
  await page.goto(`${base}/dashboard?access_token=${admin}`);
  await until(() => page.evaluate(() => window.ringhubDashboard?.samples >= 2), 'samples through the token');
  assert.deepEqual(problems, []);
});

test('Without --dashboard there is no dashboard', async () => {
  const server = await startServer();
  cleanups.push(() => server.stop());
  const base = `http://127.0.0.1:${server.port}`;
  assert.equal((await fetch(`${base}/dashboard`)).status, 404);
  assert.equal((await fetch(`${base}/dashboard/stream`)).status, 404);
});
