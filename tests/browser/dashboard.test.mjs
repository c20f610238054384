// The operator dashboard (GET /dashboard, with --dashboard) in a real browser: headless Chromium
// (Debian's /usr/bin/chromium, driven by playwright-core) opens the page with a ringhub.admin
// token while official SignalR clients (WebSockets and Server-Sent Events) connect and publish
// with SendToAll. The page's stream must deliver a sample a second, the samples must show the
// test's connections and messages, the four canvases must be drawn (coloured series lines) and
// move, the table must have a row per shard, and the page must load nothing from anywhere else.
// Also: without a token 401, without the role 403, another audience 401 (page and stream); the
// page is transports/dashboard.html byte for byte and names no other host; without a key the
// dashboard is open and its stream has the documented shape; without --dashboard both are 404.
// A screenshot, dashboard.png, goes to $RH_ARTIFACT_DIR (default: the OS temp dir).
//
// Run: RINGHUB=build/shards/ringhub RINGHUB_TOKEN=build/tools/ringhub-token RINGHUB_ARGS="--shards 2" \
//        node --test tests/browser/dashboard.test.mjs
// The Chromium test skips itself (saying so) only when Chromium is absent; tools/setup.sh installs it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { startServer } from '../node/server.mjs';
import { OwnSocketHttpClient, until } from '../node/helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
// playwright-core and @microsoft/signalr come with the Node tests' packages (tests/node/package.json).
const require = createRequire(path.join(here, '..', 'node', 'package.json'));
const signalR = require('@microsoft/signalr');

const PAGE_FILE = path.join(here, '..', '..', 'transports', 'dashboard.html');
const CHROMIUM = process.env.RH_CHROMIUM ?? '/usr/bin/chromium';
const skip = fs.existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is missing: install Debian's chromium (tools/setup.sh does) to run the browser test`;
const TOKEN_TOOL =
  process.env.RINGHUB_TOKEN ??
  process.env.RINGHUB_TOKEN_TOOL ??
  path.join(path.dirname(process.env.RINGHUB ?? '.'), '..', 'tools', 'ringhub-token');
const CHARTS = ['chart-connections', 'chart-in', 'chart-out', 'chart-drops'];
const CLIENTS = 6;

const cleanups = [];
after(async () => {
  for (const f of cleanups.reverse()) await f();
});

// ringhub with an access key (a file, as --access-key-file reads it) and tokens for it.
async function serverWithKey(flags) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringhub-dashkey-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const keyFile = path.join(dir, 'key');
  fs.writeFileSync(keyFile, `${crypto.randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
  const server = await startServer([...flags, '--access-key-file', keyFile]);
  let stopped = false;
  cleanups.push(async () => {
    if (!stopped) await server.stop();
  });
  const mint = ({ user, roles = [], aud }) => {
    const args = ['--key-file', keyFile];
    if (user) args.push('--user', user);
    for (const r of roles) args.push('--role', r);
    args.push('--aud', aud);
    const token = execFileSync(TOKEN_TOOL, args, { encoding: 'utf8' }).trim();
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'ringhub-token prints a JWT');
    return token;
  };
  return {
    server,
    mint,
    stop: async () => {
      stopped = true;
      return server.stop();
    },
  };
}

async function launchChromium() {
  const { chromium } = require('playwright-core');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ringhub-dashboard-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox'],
    viewport: { width: 1280, height: 900 },
  });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  };
  cleanups.push(close);
  const page = context.pages()[0] ?? (await context.newPage());
  const problems = [];
  const consoleLines = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    const line = `${m.type()}: ${m.text()} (${m.location().url})`;
    consoleLines.push(line);
    if (m.type() === 'error') problems.push(line);
  });
  const requests = [];
  page.on('request', (r) => requests.push({ url: r.url(), type: r.resourceType() }));
  return { page, problems, consoleLines, requests, close };
}

// What canvas @id shows: its size, how many pixels differ from the white background, how many
// are coloured (the series lines; grid, axes and labels are grey) and a digest of all of them.
function canvasState(page, id) {
  return page.evaluate((canvasId) => {
    const c = document.getElementById(canvasId);
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let inked = 0;
    let coloured = 0;
    let hash = 0;
    for (let i = 0; i < data.length; i += 4) {
      const r = data[i], g = data[i + 1], b = data[i + 2];
      if (r < 250 || g < 250 || b < 250) inked++;
      if (Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured++;
      hash = (Math.imul(hash, 31) + r + g * 7 + b * 13) >>> 0;
    }
    return { width: c.width, height: c.height, inked, coloured, hash };
  }, id);
}

const dash = (page) => page.evaluate(() => window.ringhubDashboard && { ...window.ringhubDashboard });
const sum = (sample, field) => sample.shards.reduce((a, s) => a + s[field], 0);

test('Chromium: the dashboard, with a ringhub.admin token, moves with the traffic of official clients', { skip, timeout: 120000 }, async () => {
  const { server, mint, stop } = await serverWithKey(['--dashboard']);
  const base = `http://127.0.0.1:${server.port}`;
  const dashAud = `${base}/dashboard`;
  const admin = mint({ user: 'ops', roles: ['ringhub.admin'], aud: dashAud });

  // Who may see it.
  for (const p of ['/dashboard', '/dashboard/stream']) {
    assert.equal((await fetch(`${base}${p}`)).status, 401, `${p} without a token`);
    const noRole = mint({ user: 'ops', roles: ['ringhub.sendToAll'], aud: dashAud });
    assert.equal((await fetch(`${base}${p}?access_token=${noRole}`)).status, 403, `${p} without the role ringhub.admin`);
    const otherAud = mint({ user: 'ops', roles: ['ringhub.admin'], aud: `${base}/hubs/dash` });
    assert.equal((await fetch(`${base}${p}?access_token=${otherAud}`)).status, 401, `${p} with another audience`);
  }
  const res = await fetch(`${base}/dashboard?access_token=${admin}`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/html/);
  const body = Buffer.from(await res.arrayBuffer());
  assert.ok(body.equals(fs.readFileSync(PAGE_FILE)), 'the page is transports/dashboard.html byte for byte (rebuild ringhub after editing it)');
  const text = body.toString('utf8');
  const urls = text.match(/https?:\/\/[^\s"'`<>)]*/gi) ?? [];
  assert.deepEqual(urls, [], 'no absolute URL (of another host) in the page');
  assert.doesNotMatch(text, /(src|href|action)\s*=\s*["']?\/\//i, 'no protocol-relative URL');
  assert.doesNotMatch(text, /@import|url\(\s*["']?(?!data:)/i, 'no CSS import or url()');

  // The page in Chromium, its token in the query (the stream gets it from location.search).
  const browser = await launchChromium();
  const { page, problems, consoleLines, requests } = browser;
  const artifacts = process.env.RH_ARTIFACT_DIR || os.tmpdir();
  const shot = path.join(artifacts, 'dashboard.png');
  const clients = [];
  let publishing = false;
  let publisher = Promise.resolve();
  try {
    await page.goto(`${dashAud}?access_token=${admin}`);
    await until(async () => (await dash(page))?.samples >= 1, 'the first stats event', 15000);
    const quiet = await dash(page);
    assert.equal(typeof quiet.last.t, 'number');
    assert.equal(typeof quiet.last.node, 'number');
    assert.ok(quiet.last.shards.length >= 1, 'shards are reported');
    const shards = quiet.last.shards.length;
    const quietCharts = {};
    for (const id of CHARTS) quietCharts[id] = await canvasState(page, id);

    // Official clients on the hub "dash": WebSockets and Server-Sent Events, each request on a
    // socket of its own so that the kernel spreads them over the shards. The first may SendToAll.
    const hubAud = `${base}/hubs/dash`;
    const got = new Array(CLIENTS).fill(0);
    for (let i = 0; i < CLIENTS; i++) {
      const token = mint({ user: `watcher-${i}`, roles: i === 0 ? ['ringhub.sendToAll'] : [], aud: hubAud });
      const c = new signalR.HubConnectionBuilder()
        .withUrl(hubAud, {
          transport: i % 3 === 2 ? signalR.HttpTransportType.ServerSentEvents : signalR.HttpTransportType.WebSockets,
          httpClient: new OwnSocketHttpClient(signalR.NullLogger.instance),
          accessTokenFactory: () => token,
        })
        .configureLogging(signalR.LogLevel.Warning)
        .build();
      c.on('tick', () => {
        got[i]++;
      });
      await c.start();
      clients.push(c);
    }
    cleanups.push(() => Promise.all(clients.map((c) => c.stop().catch(() => {}))));

    // Publish while watching: at least three more samples, and one with the clients'
    // connections and messages going out.
    publishing = true;
    let sent = 0;
    publisher = (async () => {
      while (publishing) {
        await clients[0].invoke('SendToAll', 'tick', sent++, 'x'.repeat(64));
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    const start = (await dash(page)).samples;
    let busy = null;
    let firstMoving = null;
    await until(
      async () => {
        const d = await dash(page);
        const out = sum(d.last, 'messages_out_per_s');
        if (out > 0 && sum(d.last, 'connections') >= CLIENTS && !busy) {
          busy = d.last;
          firstMoving = {};
          for (const id of CHARTS) firstMoving[id] = await canvasState(page, id);
        }
        return busy && d.samples >= start + 3;
      },
      `3 more samples, one with >= ${CLIENTS} connections and messages out per second`,
      30000,
    );
    // Two more seconds of publishing: the charts must change under our eyes.
    const mid = (await dash(page)).samples;
    await until(async () => (await dash(page)).samples >= mid + 2, 'two more samples', 10000);
    publishing = false;
    await publisher;

    assert.ok(sum(busy, 'messages_in_per_s') > 0, 'messages in per second while publishing');
    assert.ok(sum(busy, 'messages_out_per_s') >= sum(busy, 'messages_in_per_s'), 'every SendToAll goes out to every client');
    assert.ok(sum(busy, 'sessions') >= CLIENTS, `at least ${CLIENTS} sessions`);
    for (const s of busy.shards) {
      for (const f of ['connections', 'sessions', 'messages_in_per_s', 'messages_out_per_s', 'drops_per_s', 'send_queue_bytes', 'loop_utilization']) {
        assert.equal(typeof s[f], 'number', `shard ${s.shard} ${f}`);
      }
      assert.ok(s.loop_utilization >= 0 && s.loop_utilization <= 1, 'loop utilization is a fraction');
    }
    for (let i = 0; i < CLIENTS; i++) assert.ok(got[i] > 0, `client ${i} received the SendToAll messages`);

    const now = {};
    for (const id of CHARTS) {
      now[id] = await canvasState(page, id);
      const s = now[id];
      assert.ok(s.width > 100 && s.height > 50, `${id} has a size (${s.width}x${s.height})`);
      assert.ok(s.inked > 1000, `${id} is drawn (${s.inked} pixels not background)`);
      // Drops stay at zero here: their lines lie on the x axis, under the dark total line.
      if (id !== 'chart-drops') assert.ok(s.coloured > 100, `${id} shows series lines (${s.coloured} coloured pixels)`);
      assert.notEqual(s.hash, firstMoving[id].hash, `${id} changed between two samples`);
      assert.notEqual(s.hash, quietCharts[id].hash, `${id} changed since before the clients came`);
    }
    assert.ok(now['chart-out'].coloured > quietCharts['chart-out'].coloured, 'messages out rose above the zero line');

    const last = (await dash(page)).last;
    const rows = await page.evaluate(() => [...document.querySelectorAll('#shards tbody tr')].map((r) => r.textContent));
    assert.equal(rows.length, last.shards.length, 'a table row per shard');
    assert.equal(last.shards.length, shards, 'the shard count holds');
    const status = await page.evaluate(() => document.getElementById('status').textContent);
    assert.match(status, /connected/i, 'the status line says connected');

    // Self-contained: every request went to ringhub (only the page and its stream, in fact).
    const foreign = requests.filter((r) => !r.url.startsWith(`${base}/`));
    assert.deepEqual(foreign, [], 'no request leaves ringhub');
    const paths = new Set(requests.map((r) => new URL(r.url).pathname));
    assert.deepEqual([...paths].sort(), ['/dashboard', '/dashboard/stream']);
    assert.ok(
      requests.some((r) => r.type === 'eventsource' && r.url === `${base}/dashboard/stream?access_token=${admin}`),
      'the EventSource passes the token on',
    );
    assert.deepEqual(problems, [], 'no page or console errors');

    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(fs.statSync(shot).size > 10000, `a screenshot at ${shot}`);
    console.error(`dashboard screenshot: ${shot}; ${sent} SendToAll over ${shards} shards`);
  } catch (err) {
    publishing = false;
    await publisher.catch(() => {});
    await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
    console.error(`screenshot: ${shot}\nbrowser console:\n${consoleLines.join('\n')}\nproblems: ${problems.join('\n')}`);
    throw err;
  }

  for (const c of clients) await c.stop();
  await browser.close();
  assert.equal(await stop(), 0, 'ringhub stops cleanly with nothing left allocated');
});

test('--dashboard without an access key: open, and the stream has the documented shape', { timeout: 30000 }, async () => {
  const server = await startServer(['--dashboard']);
  let stopped = false;
  cleanups.push(async () => {
    if (!stopped) await server.stop();
  });
  const base = `http://127.0.0.1:${server.port}`;
  const page = await fetch(`${base}/dashboard`);
  assert.equal(page.status, 200);
  assert.ok(Buffer.from(await page.arrayBuffer()).equals(fs.readFileSync(PAGE_FILE)), 'the embedded page (rebuild ringhub after editing transports/dashboard.html)');

  const ac = new AbortController();
  const stream = await fetch(`${base}/dashboard/stream`, { signal: ac.signal });
  assert.equal(stream.status, 200);
  assert.match(stream.headers.get('content-type'), /^text\/event-stream/);
  const reader = stream.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  const events = [];
  const began = Date.now();
  while (events.length < 2) {
    const { value, done } = await reader.read();
    assert.ok(!done, 'the stream stays open');
    buf += decoder.decode(value, { stream: true });
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event !== undefined || data !== undefined) events.push({ event, data, at: Date.now() });
    }
  }
  ac.abort();
  const elapsed = events[1].at - began;
  assert.ok(elapsed >= 500 && elapsed < 5000, `about one sample a second (two in ${elapsed} ms)`);
  for (const e of events) {
    assert.equal(e.event, 'stats');
    const s = JSON.parse(e.data);
    assert.deepEqual(Object.keys(s), ['t', 'node', 'shards']);
    assert.ok(Math.abs(s.t - Date.now()) < 60000, 't is unix milliseconds');
    assert.ok(s.shards.length >= 1);
    s.shards.forEach((x, i) => {
      assert.deepEqual(Object.keys(x), ['shard', 'connections', 'sessions', 'messages_in_per_s', 'messages_out_per_s',
        'drops_per_s', 'send_queue_bytes', 'loop_utilization']);
      assert.equal(x.shard, i);
      for (const v of Object.values(x)) assert.ok(typeof v === 'number' && v >= 0);
    });
  }
  stopped = true;
  assert.equal(await server.stop(), 0, 'ringhub stops cleanly with nothing left allocated');
});

test('Without --dashboard there is no dashboard', { timeout: 30000 }, async () => {
  const server = await startServer();
  let stopped = false;
  cleanups.push(async () => {
    if (!stopped) await server.stop();
  });
  const base = `http://127.0.0.1:${server.port}`;
  assert.equal((await fetch(`${base}/dashboard`)).status, 404);
  assert.equal((await fetch(`${base}/dashboard/stream`)).status, 404);
  stopped = true;
  assert.equal(await server.stop(), 0, 'ringhub stops cleanly with nothing left allocated');
});
