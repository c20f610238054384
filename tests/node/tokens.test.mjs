// Tokens with an access key: every kind of bad token is refused with 401 on every client
// request (negotiate, WebSocket upgrade, SSE, long polling, EventSource), a good one works on
// every transport, its nameid is the user, and roles allow exactly their methods.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { startServer } from './server.mjs';

const KEY = crypto.randomBytes(24).toString('base64');
const tool =
  process.env.RINGHUB_TOKEN_TOOL ?? path.join(path.dirname(process.env.RINGHUB), '..', 'tools', 'ringhub-token');
let server;
let keyFile;
let hubUrl; // the audience of client tokens for hub chat

before(async () => {
  keyFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rh-key-')), 'key');
  fs.writeFileSync(keyFile, KEY + '\n');
  server = await startServer(['--access-key-file', keyFile]);
  hubUrl = `http://127.0.0.1:${server.port}/hubs/chat`;
});

after(async () => {
  assert.equal(await server.stop(), 0, 'ringhub stops cleanly');
});

function mint({ user, roles = [], aud = hubUrl, ttl = 600, nbfIn = 0 } = {}) {
  const args = ['--key-file', keyFile, '--aud', aud, '--ttl', String(ttl), '--nbf-in', String(nbfIn)];
  if (user) args.push('--user', user);
  for (const r of roles) args.push('--role', r);
  return execFileSync(tool, args, { encoding: 'utf8' }).trim();
}

// A token signed here, for the shapes ringhub-token will not make.
function forge(header, payload, key = KEY) {
  const b64 = (x) => Buffer.from(JSON.stringify(x)).toString('base64url');
  const body = `${b64(header)}.${b64(payload)}`;
  return `${body}.${crypto.createHmac('sha256', key).update(body).digest('base64url')}`;
}

function badTokens() {
  const now = Math.floor(Date.now() / 1000);
  const good = mint({ user: 'u' });
  const [h, p, s] = good.split('.');
  const payload = JSON.parse(Buffer.from(p, 'base64url'));
  const tamperedPayload = Buffer.from(JSON.stringify({ ...payload, nameid: 'admin' })).toString('base64url');
  return {
    expired: mint({ user: 'u', ttl: -120 }),
    'not yet valid': mint({ user: 'u', nbfIn: 600 }),
    'wrong audience': mint({ user: 'u', aud: `http://127.0.0.1:${server.port}/hubs/other` }),
    'no audience': forge({ alg: 'HS256', typ: 'JWT' }, { nameid: 'u', exp: now + 600 }),
    'tampered payload': `${h}.${tamperedPayload}.${s}`,
    'tampered signature': `${h}.${p}.${s.slice(0, -2)}${s.at(-2) === 'A' ? 'B' : 'A'}${s.at(-1)}`,
    'alg none': `${Buffer.from('{"alg":"none"}').toString('base64url')}.${p}.`,
    'HS512 header': forge({ alg: 'HS512' }, payload),
    'wrong key': forge({ alg: 'HS256' }, payload, 'not the key'),
    malformed: 'not-a-token',
  };
}

async function status(method, url, token, { headers = {}, query = false } = {}) {
  const target = query ? `${url}${url.includes('?') ? '&' : '?'}access_token=${encodeURIComponent(token)}` : url;
  const res = await fetch(target, {
    method,
    headers: { ...(query || !token ? {} : { Authorization: `Bearer ${token}` }), ...headers },
  });
  const body = await res.text();
  return { status: res.status, body, challenge: res.headers.get('www-authenticate') };
}

async function wsStatus(url) {
  const { default: WebSocket } = await import('ws');
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.on('open', () => {
      ws.close();
      resolve(101);
    });
    ws.on('unexpected-response', (req, res) => resolve(res.statusCode));
    ws.on('error', () => {});
  });
}

test('no token, or any bad one, is 401 on every kind of client request; none is upgraded', async () => {
  const base = `http://127.0.0.1:${server.port}`;
  // A connection negotiated with a good token, for the requests that need an id.
  const negotiated = await (
    await fetch(`${hubUrl}/negotiate?negotiateVersion=1`, { method: 'POST', headers: { Authorization: `Bearer ${mint({ user: 'u' })}` } })
  ).json();
  const id = negotiated.connectionToken;
  assert.ok(id, 'a good token negotiates');
  for (const [name, token] of Object.entries({ 'no token': '', ...badTokens() })) {
    const checks = [
      ['negotiate', await status('POST', `${hubUrl}/negotiate?negotiateVersion=1`, token)],
      ['SSE', await status('GET', `${hubUrl}?id=${id}`, token, { query: true, headers: { Accept: 'text/event-stream' } })],
      ['poll', await status('GET', `${hubUrl}?id=${id}`, token)],
      ['POST', await status('POST', `${hubUrl}?id=${id}`, token)],
      ['DELETE', await status('DELETE', `${hubUrl}?id=${id}`, token)],
      ['EventSource', await status('GET', `${base}/api/events/u`, token, { query: true })],
    ];
    for (const [what, r] of checks) {
      assert.equal(r.status, 401, `${name}: ${what}`);
      assert.match(r.body, /^unauthorized: /, `${name}: ${what}`);
      assert.equal(r.challenge, 'Bearer error="invalid_token"');
    }
    const ws = await wsStatus(`ws://127.0.0.1:${server.port}/hubs/chat${token ? `?access_token=${encodeURIComponent(token)}` : ''}`);
    assert.equal(ws, 401, `${name}: WebSocket`);
  }
});

const VARIANTS = [
  ['WebSockets', 'json'],
  ['WebSockets', 'messagepack'],
  ['ServerSentEvents', 'json'],
  ['LongPolling', 'json'],
  ['LongPolling', 'messagepack'],
];

function client(token, transport, protocol, url = `${hubUrl}?user=spoofed`) {
  const builder = new signalR.HubConnectionBuilder()
    .withUrl(url, { transport: signalR.HttpTransportType[transport], accessTokenFactory: () => token })
    .configureLogging(signalR.LogLevel.None);
  if (protocol === 'messagepack') builder.withHubProtocol(new MessagePackHubProtocol());
  const c = builder.build();
  c.got = [];
  c.on('m', (x) => {
    c.got.push(x);
  });
  return c;
}

async function until(cond, what) {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('a good token works on every transport; its nameid is the user, ?user= is ignored', async () => {
  const sender = client(mint({ user: 'boss', roles: ['ringhub.sendToUser'] }), 'WebSockets', 'json');
  await sender.start();
  for (const [transport, protocol] of VARIANTS) {
    const user = `alice-${transport}-${protocol}`;
    const c = client(mint({ user }), transport, protocol);
    await c.start();
    assert.deepEqual(await c.invoke('Echo', { transport }), { transport });
    await sender.invoke('SendToUser', user, 'm', `to ${user}`);
    await sender.invoke('SendToUser', 'spoofed', 'm', 'to the ?user= name');
    await until(() => c.got.length >= 1, `${user}'s message`);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(c.got, [`to ${user}`], `${transport} ${protocol}`);
    await c.stop();
  }
  // sub names the user when there is no nameid.
  const now = Math.floor(Date.now() / 1000);
  const bySub = client(forge({ alg: 'HS256' }, { sub: 'subject', exp: now + 600, aud: hubUrl }), 'WebSockets', 'json');
  await bySub.start();
  await sender.invoke('SendToUser', 'subject', 'm', 'to sub');
  await until(() => bySub.got.length >= 1, 'the message to sub');
  await bySub.stop();
  await sender.stop();
});

test('roles: each built-in method needs its role; group-scoped roles allow that group only', async () => {
  const none = client(mint({ user: 'nobody' }), 'WebSockets', 'json');
  const watcher = client(mint({ user: 'watcher', roles: ['ringhub.joinLeaveGroup'] }), 'LongPolling', 'json');
  await none.start();
  await watcher.start();
  await watcher.invoke('JoinGroup', 'g');
  const denied = [
    ['JoinGroup', ['g']],
    ['LeaveGroup', ['g']],
    ['SendToGroup', ['g', 'm', 'x']],
    ['SendToOthersInGroup', ['g', 'm', 'x']],
    ['SendToAll', ['m', 'x']],
    ['SendToUser', ['watcher', 'm', 'x']],
    ['SendToConnection', [watcher.connectionId, 'm', 'x']],
  ];
  for (const [method, args] of denied)
    await assert.rejects(none.invoke(method, ...args), new RegExp(`Failed to invoke '${method}' because user is unauthorized`));
  assert.equal(await none.invoke('Echo', 'free'), 'free');
  // Nothing of the refused sends arrived: a marker from an allowed sender comes alone.
  const all = client(mint({ user: 'all', roles: ['ringhub.sendToAll'] }), 'WebSockets', 'messagepack');
  await all.start();
  await all.invoke('SendToAll', 'm', 'marker');
  await until(() => watcher.got.length >= 1, 'the marker');
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(watcher.got, ['marker']);
  // Scoped roles: group g only.
  const scoped = client(
    mint({ user: 'scoped', roles: ['ringhub.joinLeaveGroup.g', 'ringhub.sendToGroup.g'] }),
    'ServerSentEvents',
    'json',
  );
  await scoped.start();
  await scoped.invoke('JoinGroup', 'g');
  await assert.rejects(scoped.invoke('JoinGroup', 'h'), /because user is unauthorized/);
  await scoped.invoke('SendToGroup', 'g', 'm', 'to g');
  await assert.rejects(scoped.invoke('SendToGroup', 'h', 'm', 'to h'), /because user is unauthorized/);
  await until(() => watcher.got.length >= 2, 'the scoped send');
  assert.deepEqual(watcher.got, ['marker', 'to g']);
  for (const c of [none, watcher, all, scoped]) await c.stop();
});

test('EventSource: the token must name the stream user (403 otherwise); the owner streams', async () => {
  const base = `http://127.0.0.1:${server.port}`;
  const aud = `http://127.0.0.1:${server.port}/hubs/events`;
  const other = await status('GET', `${base}/api/events/alice`, mint({ user: 'mallory', aud }), { query: true });
  assert.equal(other.status, 403);
  assert.match(other.body, /another user/);
  const ctrl = new AbortController();
  const res = await fetch(`${base}/api/events/alice?access_token=${encodeURIComponent(mint({ user: 'alice', aud }))}`, {
    signal: ctrl.signal,
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /text\/event-stream/);
  ctrl.abort();
});
