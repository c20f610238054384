// Tokens (HS256 JWTs) against the real ringhub binary started with --access-key-file, as the
// token spec of issue 6 describes them:
// - refusals: no token and every kind of bad one (expired, not yet valid, no exp, wrong or no
//   audience, tampered payload or signature, alg none with and without a signature, HS512,
//   wrong key, malformed) get 401, text/plain, `unauthorized: ...` and
//   `WWW-Authenticate: Bearer error="invalid_token"` on every kind of client request: negotiate,
//   the WebSocket upgrade (never upgraded; with and without a negotiated id), the SSE GET, the
//   long-polling GET, POST and DELETE and GET /api/events/{user}; the token in the header and in
//   the access_token query alike; the negotiated connection the refused requests named is left
//   untouched. The official client's start() rejects.
// - a good token works on every kind of request (header and query both), on every transport and
//   hub protocol with the official client (accessTokenFactory); the user is the nameid, else
//   the sub, and ?user= is ignored; the audience is the hub URL on the request's Host, with or
//   without its port (IPv6 literals included), http or https.
// - /api/events/{user} streams for the user's own token, 403 for another user's.
// - roles: without one the built-in methods fail with `Failed to invoke '<M>' because user is
//   unauthorized` and send nothing; each global role allows exactly its methods; group-scoped
//   roles allow their group only. Echo needs none. A token with many roles is refused or
//   honoured in full.
// - without a key ringhub runs open and says so at start-up; RINGHUB_ACCESS_KEY sets a key too.
// Tokens come from ringhub-token; the malformed ones are signed here with node:crypto.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import crypto from 'node:crypto';
import fs from 'node:fs';
import nodeHttp from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import WebSocket from 'ws';
import EventSource from 'eventsource';
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';

const RS = '\u001e';
const HANDSHAKE = `{"protocol":"json","version":1}${RS}`;
const UNAUTHORIZED = (method) => `Failed to invoke '${method}' because user is unauthorized`;

const TOOL =
  process.env.RINGHUB_TOKEN_TOOL ??
  path.join(path.dirname(process.env.RINGHUB ?? '.'), '..', 'tools', 'ringhub-token');

// The key is text (the file adds a line end the server and the tool must drop); OTHER_KEY signs
// the wrong-key tokens and is the key of the server configured by environment.
const KEY = crypto.randomBytes(32).toString('base64url');
const OTHER_KEY = crypto.randomBytes(32).toString('base64url');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rh-tokens-'));
const keyFile = path.join(tmp, 'key');
fs.writeFileSync(keyFile, `${KEY}\n`, { mode: 0o600 });

let server; // the server with the key
let chatAud; // http://127.0.0.1:PORT/hubs/chat
let eventsAud; // http://127.0.0.1:PORT/hubs/events

// ringhub as server.mjs starts it, with its log kept (and passed through to our stderr).
async function launch(flags = [], env = {}) {
  const binary = process.env.RINGHUB;
  if (!binary) throw new Error('set RINGHUB to the ringhub binary');
  const extra = (process.env.RINGHUB_ARGS ?? '').split(' ').filter(Boolean);
  const childEnv = { ...process.env, ...env };
  if (!('RINGHUB_ACCESS_KEY' in env)) delete childEnv.RINGHUB_ACCESS_KEY;
  const child = spawn(binary, ['--listen', '127.0.0.1', '--port', '0', ...extra, ...flags], {
    stdio: ['ignore', 'inherit', 'pipe'],
    env: childEnv,
  });
  const log = [];
  const lines = readline.createInterface({ input: child.stderr });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('ringhub did not start listening')), 10000);
    child.once('exit', (code) => reject(new Error(`ringhub exited with ${code} at start`)));
    lines.on('line', (line) => {
      log.push(line);
      process.stderr.write(line + '\n');
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
  return {
    port,
    log,
    url: (hub) => `http://127.0.0.1:${port}/hubs/${hub}`,
    async stop() {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code, signal] = await exited;
      return signal ? signal : code;
    },
  };
}

before(async () => {
  server = await launch(['--access-key-file', keyFile]);
  chatAud = server.url('chat');
  eventsAud = server.url('events');
});

after(async () => {
  try {
    for (const c of clients) await c.stop().catch(() => {});
    assert.equal(await server.stop(), 0, 'ringhub stops cleanly with nothing left allocated');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

async function until(condition, what, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- tokens ------------------------------------------------------------------------------------

// A token from ringhub-token. aud: one URL, a list, or null for none.
function mint({ user, roles = [], aud = chatAud, ttl, nbfIn } = {}) {
  const args = ['--key-file', keyFile];
  if (user !== undefined) args.push('--user', user);
  for (const role of roles) args.push('--role', role);
  for (const a of aud === null ? [] : [aud].flat()) args.push('--aud', a);
  if (ttl !== undefined) args.push('--ttl', String(ttl));
  if (nbfIn !== undefined) args.push('--nbf-in', String(nbfIn));
  const token = execFileSync(TOOL, args, { encoding: 'utf8' }).trim();
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'ringhub-token prints a JWT');
  return token;
}

const b64 = (text) => Buffer.from(text).toString('base64url');
const mac = (text, key = KEY, hash = 'sha256') => crypto.createHmac(hash, key).update(text).digest('base64url');

// A token signed here: header and payload are objects (JSON-encoded) or raw base64url text.
function sign(header, payload, { key = KEY, hash = 'sha256' } = {}) {
  const part = (x) => (typeof x === 'string' ? x : b64(JSON.stringify(x)));
  const body = `${part(header)}.${part(payload)}`;
  return `${body}.${mac(body, key, hash)}`;
}

const HS256 = { alg: 'HS256', typ: 'JWT' };
const now = () => Math.floor(Date.now() / 1000);
// Claims of a good token for @aud (a string here; ringhub-token writes arrays).
const claims = (aud, extra = {}) => ({ nameid: 'u', exp: now() + 600, nbf: now(), iat: now(), aud, ...extra });

// Every kind of bad token, for audience @aud and user u: [name, token] pairs.
function badTokens(aud) {
  const good = mint({ user: 'u', aud });
  const [h, p, s] = good.split('.');
  const payload = JSON.parse(Buffer.from(p, 'base64url'));
  const none = b64(JSON.stringify({ alg: 'none', typ: 'JWT' }));
  const hub = (name) => aud.replace(/\/hubs\/[^/]+$/, `/hubs/${name}`);
  const flip = (c) => (c === 'A' ? 'B' : 'A');
  const badB64 = `${p.slice(0, 8)}*${p.slice(9)}`; // '*' is in no base64 alphabet
  return [
    ['expired', mint({ user: 'u', aud, ttl: -120 })],
    ['not yet valid (nbf in 120 s)', mint({ user: 'u', aud, nbfIn: 120 })],
    ['no exp', sign(HS256, { nameid: 'u', nbf: now(), aud })],
    ['wrong audience: another hub', mint({ user: 'u', aud: hub('other') })],
    ['wrong audience: another host', mint({ user: 'u', aud: aud.replace('127.0.0.1', 'localhost') })],
    ['wrong audience: another port', mint({ user: 'u', aud: aud.replace(`:${server.port}/`, `:${server.port + 1}/`) })],
    ['wrong audience: a longer hub name', mint({ user: 'u', aud: `${aud}x` })],
    ['wrong audience: a trailing slash', mint({ user: 'u', aud: `${aud}/` })],
    ['no audience', mint({ user: 'u', aud: null })],
    ['tampered payload', `${h}.${b64(JSON.stringify({ ...payload, role: ['ringhub.sendToAll'] }))}.${s}`],
    ['tampered signature', `${h}.${p}.${flip(s[0])}${s.slice(1)}`],
    ['alg none, no signature', `${none}.${p}.`],
    ['alg none, an HS256 signature', `${none}.${p}.${mac(`${none}.${p}`)}`],
    ['alg none, no signature part', `${none}.${p}`],
    ['alg hs256 (lower case)', sign({ alg: 'hs256', typ: 'JWT' }, payload)],
    ['no alg', sign({ typ: 'JWT' }, payload)],
    ['alg HS256, then alg none', sign(b64('{"alg":"HS256","alg":"none"}'), payload)],
    ['exp not a number', sign(HS256, { ...payload, exp: String(payload.exp) })],
    ['HS512 header, HS512 signature', sign({ alg: 'HS512', typ: 'JWT' }, payload, { hash: 'sha512' })],
    ['HS512 header, HS256 signature', sign({ alg: 'HS512', typ: 'JWT' }, payload)],
    ['wrong key', sign(HS256, payload, { key: OTHER_KEY })],
    ['malformed: garbage', 'not-a-token'],
    ['malformed: two parts', `${h}.${p}`],
    ['malformed: four parts', `${good}.${s}`],
    ['malformed: bad base64 in the payload (signed)', sign(h, badB64)],
    ['malformed: bad base64 in the header (signed)', sign(`*${h.slice(1)}`, p)],
    ['malformed: bad base64 in the signature', `${h}.${p}.${s.slice(0, 10)}*${s.slice(11)}`],
    ['malformed: a payload that is not JSON (signed)', sign(h, b64('nameid=u'))],
  ];
}

// ---- raw requests ------------------------------------------------------------------------------

// How a request carries its credentials: header, query, or the no-token variants.
function credentials(token, how) {
  switch (how) {
    case 'header':
      return { headers: { Authorization: `Bearer ${token}` }, query: '' };
    case 'query':
      return { headers: {}, query: `access_token=${encodeURIComponent(token)}` };
    case 'none':
      return { headers: {}, query: '' };
    case 'basic auth':
      return { headers: { Authorization: `Basic ${b64('u:p')}` }, query: '' };
    case 'empty':
      return { headers: { Authorization: 'Bearer ' }, query: 'access_token=' };
    default:
      throw new Error(how);
  }
}

const withQuery = (p, q) => (q ? `${p}${p.includes('?') ? '&' : '?'}${q}` : p);

// One HTTP request: {status, type, challenge, body}; a stream's body is not read, and a request
// that gets no answer in 3 s gives a status saying so.
async function http(method, p, { token, how = 'header', headers = {}, body, port = server.port } = {}) {
  const c = credentials(token, how);
  try {
    const res = await fetch(`http://127.0.0.1:${port}${withQuery(p, c.query)}`, {
      method,
      body,
      headers: { ...c.headers, ...headers },
      signal: AbortSignal.timeout(3000),
    });
    const type = res.headers.get('content-type') ?? '';
    const r = { status: res.status, type, challenge: res.headers.get('www-authenticate'), body: '' };
    if (res.status === 200 && type.startsWith('text/event-stream')) await res.body.cancel();
    else r.body = await res.text();
    return r;
  } catch (error) {
    return { status: `no answer (${error.name})`, type: '', challenge: null, body: '' };
  }
}

// A raw WebSocket upgrade: {status: 101, upgraded: true} or the refusal as http() gives it.
function ws(p, { token, how = 'header', port = server.port } = {}) {
  const c = credentials(token, how);
  return new Promise((resolve) => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}${withQuery(p, c.query)}`, { headers: c.headers });
    const timer = setTimeout(() => {
      socket.terminate();
      resolve({ status: 'no answer', type: '', challenge: null, body: '' });
    }, 3000);
    socket.on('open', () => {
      clearTimeout(timer);
      socket.terminate();
      resolve({ status: 101, upgraded: true, type: '', challenge: null, body: '' });
    });
    socket.on('unexpected-response', (req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({
          status: res.statusCode,
          type: res.headers['content-type'] ?? '',
          challenge: res.headers['www-authenticate'] ?? null,
          body,
        });
        req.destroy();
      });
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      resolve({ status: `error: ${error.message}`, type: '', challenge: null, body: '' });
    });
  });
}

function assertUnauthorized(r, what, reason = '') {
  assert.equal(r.status, 401, `${what}: status (body ${JSON.stringify(r.body)})`);
  assert.match(r.type, /^text\/plain/, `${what}: Content-Type`);
  assert.ok(r.body.startsWith(`unauthorized: ${reason}`), `${what}: body ${JSON.stringify(r.body)}`);
  assert.ok(r.body.length > 'unauthorized: '.length, `${what}: a reason after "unauthorized: "`);
  assert.equal(r.challenge, 'Bearer error="invalid_token"', `${what}: WWW-Authenticate`);
}

// A connection negotiated with a good token (in the header): its connection token.
async function negotiated(hub = 'chat') {
  const r = await http('POST', `/hubs/${hub}/negotiate?negotiateVersion=1`, { token: mint({ user: 'u', aud: server.url(hub) }) });
  assert.equal(r.status, 200, 'a good token negotiates');
  const n = JSON.parse(r.body);
  assert.ok(n.connectionToken, 'negotiate gives a connection token');
  return n.connectionToken;
}

// Runs a fresh negotiated connection as a raw long-polling session with a good token (via @how):
// first poll, handshake, Echo, DELETE. Fails if an earlier request had started, handshaken or
// ended it.
async function longPollingWorks(id, what, how = 'header') {
  const token = mint({ user: 'u' });
  const first = await http('GET', `/hubs/chat?id=${id}&_=1`, { token, how });
  assert.equal(first.status, 200, `${what}: the first poll`);
  assert.equal(first.body, '', `${what}: the first poll is empty`);
  assert.equal((await http('POST', `/hubs/chat?id=${id}`, { token, how, body: HANDSHAKE })).status, 200, `${what}: handshake POST`);
  assert.equal((await http('GET', `/hubs/chat?id=${id}&_=2`, { token, how })).body, `{}${RS}`, `${what}: handshake response`);
  const echo = `{"type":1,"invocationId":"1","target":"Echo","arguments":["hi"]}${RS}`;
  assert.equal((await http('POST', `/hubs/chat?id=${id}`, { token, how, body: echo })).status, 200, `${what}: Echo POST`);
  const r = await http('GET', `/hubs/chat?id=${id}&_=3`, { token, how });
  assert.deepEqual(JSON.parse(r.body.split(RS)[0]), { type: 3, invocationId: '1', result: 'hi' }, `${what}: Echo`);
  assert.equal((await http('DELETE', `/hubs/chat?id=${id}`, { token, how })).status, 202, `${what}: DELETE`);
}

// Every kind of client request with @chatToken (@eventsToken for /api/events/u) sent @how:
// each must be refused with 401 (reason: the start of the reason text, if known).
async function refusedEverywhere(name, chatToken, eventsToken, how, reason) {
  const id = await negotiated();
  const what = (kind) => `${name} (${how}): ${kind}`;
  const opts = { token: chatToken, how };
  assertUnauthorized(await http('POST', '/hubs/chat/negotiate?negotiateVersion=1', opts), what('negotiate'), reason);
  assertUnauthorized(await ws(`/hubs/chat?id=${id}`, opts), what('WebSocket upgrade with an id'), reason);
  assertUnauthorized(await ws('/hubs/chat', opts), what('WebSocket upgrade without negotiate'), reason);
  const sse = await http('GET', `/hubs/chat?id=${id}`, { ...opts, headers: { Accept: 'text/event-stream' } });
  assertUnauthorized(sse, what('SSE GET'), reason);
  assertUnauthorized(await http('GET', `/hubs/chat?id=${id}&_=1`, opts), what('long-polling GET'), reason);
  assertUnauthorized(await http('POST', `/hubs/chat?id=${id}`, { ...opts, body: HANDSHAKE }), what('POST'), reason);
  assertUnauthorized(await http('DELETE', `/hubs/chat?id=${id}`, opts), what('DELETE'), reason);
  const events = await http('GET', '/api/events/u', { token: eventsToken, how, headers: { Accept: 'text/event-stream' } });
  assertUnauthorized(events, what('GET /api/events/u'), reason);
  // None of them touched the connection they named.
  await longPollingWorks(id, what('the connection afterwards'));
}

// ---- official clients --------------------------------------------------------------------------

const VARIANTS = [
  { transport: 'WebSockets', protocol: 'json' },
  { transport: 'WebSockets', protocol: 'messagepack' },
  { transport: 'ServerSentEvents', protocol: 'json' },
  { transport: 'LongPolling', protocol: 'json' },
  { transport: 'LongPolling', protocol: 'messagepack' },
];
const label = (v) => `${v.transport}${v.skipNegotiation ? ' (skipNegotiation)' : ''} ${v.protocol}`;

const clients = new Set(); // stopped at the end, should a test fail half-way

// An official client with accessTokenFactory returning @token (none for null); inbox: the
// arguments of every 'm' it received. url defaults to the chat hub with a ?user= that must be ignored.
function client(token, { transport = 'WebSockets', protocol = 'json', skipNegotiation = false, url } = {}) {
  let calls = 0;
  const wsErrors = [];
  // ws itself, noting its errors (such as `Unexpected server response: 401`), which the client
  // only logs.
  class RecordingWebSocket extends WebSocket {
    constructor(...args) {
      super(...args);
      this.on('error', (error) => wsErrors.push(error.message));
    }
  }
  const builder = new signalR.HubConnectionBuilder()
    .withUrl(url ?? `${chatAud}?user=spoofed`, {
      transport: signalR.HttpTransportType[transport],
      skipNegotiation,
      WebSocket: RecordingWebSocket,
      ...(token === null
        ? {}
        : {
            accessTokenFactory: () => {
              calls++;
              return token;
            },
          }),
    })
    .configureLogging(signalR.LogLevel.None);
  if (protocol === 'messagepack') builder.withHubProtocol(new MessagePackHubProtocol());
  const c = builder.build();
  c.inbox = [];
  c.on('m', (x) => {
    c.inbox.push(x);
  });
  c.factoryCalls = () => calls;
  c.wsErrors = wsErrors;
  clients.add(c);
  return c;
}

async function started(token, variant) {
  const c = client(token, variant);
  await c.start();
  return c;
}

// ---- the tests ---------------------------------------------------------------------------------

test('no token is 401 "a token is required" on every kind of request; nothing is upgraded', async () => {
  for (const how of ['none', 'basic auth', 'empty']) {
    await refusedEverywhere('no token', undefined, undefined, how, 'a token is required');
  }
});

test('every kind of bad token is 401 on every kind of request, in the header and the query', async () => {
  const chat = badTokens(chatAud);
  const events = new Map(badTokens(eventsAud));
  assert.equal(chat.length, events.size);
  for (const [name, token] of chat) {
    for (const how of ['header', 'query']) {
      await refusedEverywhere(name, token, events.get(name), how, name === 'expired' ? 'the token has expired' : '');
    }
  }
});

test('a chat token is the wrong audience for /api/events, an events token for the chat hub', async () => {
  assertUnauthorized(await http('GET', '/api/events/u', { token: mint({ user: 'u', aud: chatAud }) }), 'events with a chat token');
  const token = mint({ user: 'u', aud: eventsAud });
  assertUnauthorized(await http('POST', '/hubs/chat/negotiate?negotiateVersion=1', { token }), 'chat negotiate with an events token');
  // ?hub=chat streams the chat hub's messages: its audience is the chat hub's URL.
  const chatStream = await http('GET', '/api/events/u?hub=chat', { token: mint({ user: 'u', aud: chatAud }) });
  assert.equal(chatStream.status, 200, '/api/events/u?hub=chat with a chat token');
  assertUnauthorized(await http('GET', '/api/events/u?hub=chat', { token }), '/api/events/u?hub=chat with an events token');
});

test('a good token works on every kind of request, in the Authorization header and the access_token query', async () => {
  for (const how of ['header', 'query']) {
    const token = mint({ user: 'u' });
    const what = (kind) => `${how}: ${kind}`;
    const n = await http('POST', '/hubs/chat/negotiate?negotiateVersion=1', { token, how });
    assert.equal(n.status, 200, what('negotiate'));
    assert.ok(JSON.parse(n.body).connectionToken, what('negotiate gives a connection token'));
    assert.equal((await ws(`/hubs/chat?id=${await negotiated()}`, { token, how })).status, 101, what('WebSocket with an id'));
    assert.equal((await ws('/hubs/chat', { token, how })).status, 101, what('WebSocket without negotiate'));
    const sse = await http('GET', `/hubs/chat?id=${await negotiated()}`, { token, how, headers: { Accept: 'text/event-stream' } });
    assert.equal(sse.status, 200, what('SSE GET'));
    assert.match(sse.type, /^text\/event-stream/, what('SSE GET'));
    await longPollingWorks(await negotiated(), what('long polling, POST and DELETE'), how);
    const events = await http('GET', '/api/events/u', { token: mint({ user: 'u', aud: eventsAud }), how });
    assert.equal(events.status, 200, what('/api/events/u'));
    assert.match(events.type, /^text\/event-stream/, what('/api/events/u'));
  }
});

test('audiences: the hub URL with or without the port, http or https, a string or in a list; nbf within 30 s', async () => {
  const hostPort = `127.0.0.1:${server.port}`;
  const accepted = [
    ['http, with the port', mint({ user: 'u', aud: `http://${hostPort}/hubs/chat` })],
    ['http, without the port', mint({ user: 'u', aud: 'http://127.0.0.1/hubs/chat' })],
    ['https, with the port', mint({ user: 'u', aud: `https://${hostPort}/hubs/chat` })],
    ['https, without the port', mint({ user: 'u', aud: 'https://127.0.0.1/hubs/chat' })],
    ['one of several', mint({ user: 'u', aud: [`http://${hostPort}/hubs/other`, chatAud] })],
    ['a string', sign(HS256, claims(chatAud))],
    ['nbf 10 s ahead (within the skew)', mint({ user: 'u', nbfIn: 10 })],
  ];
  for (const [name, token] of accepted) {
    const r = await http('POST', '/hubs/chat/negotiate?negotiateVersion=1', { token });
    assert.equal(r.status, 200, `${name}: negotiate (${r.body})`);
    assert.equal((await ws('/hubs/chat', { token, how: 'query' })).status, 101, `${name}: WebSocket`);
  }
});

// A negotiate with the Host header @host (fetch always sends the real one): {status, body}.
function negotiateWithHost(host, token) {
  return new Promise((resolve, reject) => {
    const req = nodeHttp.request(
      {
        host: '127.0.0.1',
        port: server.port,
        path: '/hubs/chat/negotiate?negotiateVersion=1',
        method: 'POST',
        setHost: false,
        agent: false,
        headers: { Host: host, Authorization: `Bearer ${token}`, Connection: 'close' },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test('the audience follows the Host header, with or without its port (names and IPv6 literals too)', async () => {
  const port = server.port;
  for (const [host, aud, status] of [
    [`localhost:${port}`, `http://localhost:${port}/hubs/chat`, 200],
    [`localhost:${port}`, 'http://localhost/hubs/chat', 200],
    [`localhost:${port}`, `https://localhost/hubs/chat`, 200],
    [`localhost:${port}`, `http://127.0.0.1:${port}/hubs/chat`, 401],
    ['localhost', 'http://localhost/hubs/chat', 200],
    ['localhost', `http://localhost:${port}/hubs/chat`, 401],
    [`[::1]:${port}`, `http://[::1]:${port}/hubs/chat`, 200],
    [`[::1]:${port}`, 'http://[::1]/hubs/chat', 200],
    [`[::1]:${port}`, 'https://[::1]/hubs/chat', 200],
    [`[::1]:${port}`, `http://127.0.0.1:${port}/hubs/chat`, 401],
  ]) {
    const r = await negotiateWithHost(host, mint({ user: 'u', aud }));
    assert.equal(r.status, status, `Host ${host}, aud ${aud}: ${r.body}`);
  }
});

test('a token with many roles: the server refuses it or honours every one of them', async () => {
  // 58 group-scoped roles of 35 bytes: 2030 bytes of role names, a 3.2 kB token.
  const groups = Array.from({ length: 58 }, (_, i) => `g${String(i).padStart(3, '0')}`.padEnd(15, 'x'));
  const token = mint({ user: 'many', roles: groups.map((g) => `ringhub.sendToGroup.${g}`) });
  const c = client(token);
  let refused;
  await c.start().catch((error) => (refused = error));
  if (refused) {
    assert.match(refused.message, /Status code '401'/, 'refused, then with 401');
    return;
  }
  const denied = [];
  for (const g of groups) {
    await c.invoke('SendToGroup', g, 'm', 'x').catch(() => denied.push(g));
  }
  assert.deepEqual(denied, [], 'every role of an accepted token counts');
});

test('the official client with a good token: every transport and protocol; the user is the nameid, not ?user=', async () => {
  const sender = await started(mint({ user: 'sender', roles: ['ringhub.sendToUser'] }));
  for (const [i, variant] of [...VARIANTS, { transport: 'WebSockets', protocol: 'json', skipNegotiation: true }].entries()) {
    const user = `alice-${i}`;
    const c = client(mint({ user }), { ...variant, url: `${chatAud}?user=spoofed-${i}` });
    await c.start();
    assert.ok(c.factoryCalls() >= 1, `${label(variant)}: accessTokenFactory was called`);
    assert.deepEqual(await c.invoke('Echo', { n: i, s: 'x' }), { n: i, s: 'x' }, `${label(variant)}: Echo`);
    await sender.invoke('SendToUser', `spoofed-${i}`, 'm', 'to the ?user= name');
    await sender.invoke('SendToUser', user, 'm', `to ${user}`);
    await until(() => c.inbox.length >= 1, `${label(variant)}: the message to ${user}`);
    await sleep(100);
    assert.deepEqual(c.inbox, [`to ${user}`], `${label(variant)}: only the message to the token's user`);
    await c.stop();
    clients.delete(c);
  }
});

test('the user is the sub when there is no nameid, and the nameid when there are both', async () => {
  const sender = await started(mint({ user: 'sender2', roles: ['ringhub.sendToUser'] }));
  const bySub = await started(sign(HS256, { sub: 'subject', exp: now() + 600, aud: chatAud }), VARIANTS[3]);
  // Both claims, in either order: the nameid wins.
  const both = await started(sign(HS256, { nameid: 'named', sub: 'subbed', exp: now() + 600, aud: chatAud }), VARIANTS[1]);
  const subFirst = await started(sign(HS256, { sub: 'subbed2', nameid: 'named2', exp: now() + 600, aud: chatAud }), VARIANTS[2]);
  for (const user of ['subbed', 'subbed2', 'subject', 'named', 'named2']) {
    await sender.invoke('SendToUser', user, 'm', `to ${user}`);
  }
  await until(() => [bySub, both, subFirst].every((c) => c.inbox.length >= 1), 'the messages to subject, named and named2');
  await sleep(100);
  assert.deepEqual(bySub.inbox, ['to subject'], 'sub alone');
  assert.deepEqual(both.inbox, ['to named'], 'nameid, then sub');
  assert.deepEqual(subFirst.inbox, ['to named2'], 'sub, then nameid');
});

test('the official client with no token or any bad one: start() rejects on every transport', async () => {
  const tokens = [['no token', ''], ...badTokens(chatAud)];
  for (const variant of [...VARIANTS, { transport: 'WebSockets', protocol: 'json', skipNegotiation: true }]) {
    for (const [name, token] of tokens) {
      const c = client(token, variant);
      if (variant.skipNegotiation) {
        // The client only says the WebSocket failed; ws saw the status.
        await assert.rejects(c.start(), /WebSocket failed to connect/, `${name}, ${label(variant)}`);
        assert.deepEqual(c.wsErrors, ['Unexpected server response: 401'], `${name}, ${label(variant)}`);
      } else {
        await assert.rejects(c.start(), /Status code '401'/, `${name}, ${label(variant)}`);
      }
      assert.equal(c.state, signalR.HubConnectionState.Disconnected, `${name}, ${label(variant)}`);
      clients.delete(c);
    }
  }
});

test('/api/events/{user}: the own token streams (header or query); another user\'s is 403; none is 401', async () => {
  const base = `http://127.0.0.1:${server.port}/api/events`;
  const sender = await started(mint({ user: 'boss', roles: ['ringhub.sendToUser'], aud: eventsAud }), {
    url: eventsAud,
  });
  const own = mint({ user: 'alice', aud: eventsAud });
  const streams = [
    new EventSource(`${base}/alice`, { headers: { Authorization: `Bearer ${own}` } }),
    new EventSource(`${base}/alice?access_token=${encodeURIComponent(own)}`),
  ];
  try {
    const got = streams.map(() => []);
    const opened = streams.map(() => false);
    streams.forEach((es, i) => {
      es.onopen = () => (opened[i] = true);
      es.addEventListener('notification', (e) => got[i].push(JSON.parse(e.data)));
    });
    await until(() => opened.every(Boolean), 'both streams to open');
    await sender.invoke('SendToUser', 'alice', 'notification', { n: 1 });
    await until(() => got.every((g) => g.length >= 1), 'the notification on both streams');
    assert.deepEqual(got, [[{ n: 1 }], [{ n: 1 }]]);
  } finally {
    for (const es of streams) es.close();
  }
  // Another user's token, valid in every other way.
  const mallory = mint({ user: 'mallory', aud: eventsAud });
  for (const how of ['header', 'query']) {
    const r = await http('GET', '/api/events/alice', { token: mallory, how, headers: { Accept: 'text/event-stream' } });
    assert.equal(r.status, 403, `${how}: another user's token`);
    assert.ok(r.body.startsWith('forbidden: the token is for another user'), `${how}: body ${JSON.stringify(r.body)}`);
  }
  // The EventSource package sees the refusals as errors with their status and stops.
  for (const [url, status] of [
    [`${base}/alice`, 401],
    [`${base}/alice?access_token=${encodeURIComponent(mint({ user: 'alice', ttl: -120, aud: eventsAud }))}`, 401],
    [`${base}/alice?access_token=${encodeURIComponent(mallory)}`, 403],
  ]) {
    const es = new EventSource(url);
    const [error] = await once(es, 'error');
    assert.equal(error.status, status, url);
    es.close();
  }
});

// The seven built-in methods, each with the role that allows it.
const METHOD_ROLES = {
  JoinGroup: 'ringhub.joinLeaveGroup',
  LeaveGroup: 'ringhub.joinLeaveGroup',
  SendToGroup: 'ringhub.sendToGroup',
  SendToOthersInGroup: 'ringhub.sendToGroup',
  SendToAll: 'ringhub.sendToAll',
  SendToUser: 'ringhub.sendToUser',
  SendToConnection: 'ringhub.sendToConnection',
};
const ALL_ROLES = [...new Set(Object.values(METHOD_ROLES))];

test('roles: without one only Echo works and nothing is sent; each global role allows exactly its methods', async () => {
  const admin = await started(mint({ user: 'admin', roles: ALL_ROLES }));
  // The receiver: user recv, member of group g.
  const recv = await started(mint({ user: 'recv', roles: ['ringhub.joinLeaveGroup'] }), VARIANTS[3]);
  await recv.invoke('JoinGroup', 'g');
  const expected = []; // what recv must get
  const joinProbes = []; // [client, text it must not have] for refused joins
  const cases = [
    ['no role', []],
    ['roles that are not ringhub\'s', ['sendToAll', 'admin', 'ringhub', 'ringhub.', 'ringhub.sendtoall', 'ringhub.sendToAllX']],
    ...ALL_ROLES.map((role) => [role, [role]]),
    ['ringhub.sendToAll as a plain string claim', 'ringhub.sendToAll'],
  ];
  for (const [i, [name, roles]] of cases.entries()) {
    const variant = VARIANTS[i % VARIANTS.length];
    const token = Array.isArray(roles) ? mint({ user: `caller-${i}`, roles }) : sign(HS256, claims(chatAud, { nameid: `caller-${i}`, role: roles }));
    const c = await started(token, variant);
    const allowed = new Set(Object.keys(METHOD_ROLES).filter((m) => [roles].flat().includes(METHOD_ROLES[m])));
    const what = (m) => `${name} (${label(variant)}): ${m}`;
    const tag = (m) => `${i}:${m}`;
    const calls = [
      ['JoinGroup', [`j-${i}`]],
      ['SendToGroup', ['g', 'm', tag('SendToGroup')]],
      ['SendToOthersInGroup', ['g', 'm', tag('SendToOthersInGroup')]],
      ['SendToAll', ['m', tag('SendToAll')]],
      ['SendToUser', ['recv', 'm', tag('SendToUser')]],
      ['SendToConnection', [recv.connectionId, 'm', tag('SendToConnection')]],
    ];
    for (const [method, args] of calls) {
      if (allowed.has(method)) {
        await c.invoke(method, ...args);
        if (method !== 'JoinGroup') expected.push(tag(method));
      } else {
        await assert.rejects(c.invoke(method, ...args), { message: UNAUTHORIZED(method) }, what(method));
      }
    }
    // JoinGroup took effect exactly when it was allowed.
    await admin.invoke('SendToGroup', `j-${i}`, 'm', `probe ${i}`);
    if (allowed.has('JoinGroup')) await until(() => c.inbox.includes(`probe ${i}`), what('the group probe'));
    else joinProbes.push([c, `probe ${i}`, what('JoinGroup refused, yet in the group')]);
    if (allowed.has('LeaveGroup')) await c.invoke('LeaveGroup', `j-${i}`);
    else await assert.rejects(c.invoke('LeaveGroup', `j-${i}`), { message: UNAUTHORIZED('LeaveGroup') }, what('LeaveGroup'));
    assert.equal(await c.invoke('Echo', `echo ${i}`), `echo ${i}`, what('Echo'));
  }
  // A marker after everything: once it is in, what was refused would be too.
  await admin.invoke('SendToAll', 'm', 'marker');
  await until(() => [recv, ...joinProbes.map(([c]) => c)].every((c) => c.inbox.includes('marker')), 'the marker');
  await sleep(150);
  assert.deepEqual(recv.inbox.filter((x) => x !== 'marker').sort(), expected.sort(), 'recv got exactly the allowed sends');
  assert.equal(expected.length, 6, 'the allowed sends: SendToGroup and SendToOthersInGroup, SendToAll twice, SendToUser, SendToConnection');
  for (const [c, probe, what] of joinProbes) assert.ok(!c.inbox.includes(probe), what);
});

test('roles: ringhub.joinLeaveGroup.<g> and ringhub.sendToGroup.<g> allow that group only', async () => {
  const admin = await started(mint({ user: 'admin2', roles: ALL_ROLES }));
  const recv = await started(mint({ user: 'recv2', roles: ['ringhub.joinLeaveGroup'] }), VARIANTS[4]);
  for (const g of ['s', 'ss', 't']) await recv.invoke('JoinGroup', g);
  // Joins and leaves k only.
  const joiner = await started(mint({ user: 'joiner', roles: ['ringhub.joinLeaveGroup.k'] }), VARIANTS[2]);
  await joiner.invoke('JoinGroup', 'k');
  await admin.invoke('SendToGroup', 'k', 'm', 'to k');
  await until(() => joiner.inbox.includes('to k'), 'the message to k');
  for (const [method, group] of [
    ['JoinGroup', 'kk'],
    ['JoinGroup', 'l'],
    ['JoinGroup', 'K'],
    ['LeaveGroup', 'l'],
  ]) {
    await assert.rejects(joiner.invoke(method, group), { message: UNAUTHORIZED(method) }, `joinLeaveGroup.k: ${method}(${group})`);
  }
  await assert.rejects(joiner.invoke('SendToGroup', 'k', 'm', 'x'), { message: UNAUTHORIZED('SendToGroup') }, 'joinLeaveGroup.k sends nothing');
  await joiner.invoke('LeaveGroup', 'k');
  // Sends to s only (recv2 is in s, ss and t).
  const sender = await started(mint({ user: 'sender3', roles: ['ringhub.sendToGroup.s'] }), VARIANTS[3]);
  await sender.invoke('SendToGroup', 's', 'm', 'group s');
  await sender.invoke('SendToOthersInGroup', 's', 'm', 'others in s');
  for (const [method, group] of [
    ['SendToGroup', 'ss'],
    ['SendToGroup', 't'],
    ['SendToOthersInGroup', 'ss'],
    ['SendToOthersInGroup', 't'],
  ]) {
    await assert.rejects(sender.invoke(method, group, 'm', `${method} ${group}`), { message: UNAUTHORIZED(method) }, `sendToGroup.s: ${method}(${group})`);
  }
  await assert.rejects(sender.invoke('JoinGroup', 's'), { message: UNAUTHORIZED('JoinGroup') }, 'sendToGroup.s joins nothing');
  await assert.rejects(sender.invoke('SendToAll', 'm', 'all'), { message: UNAUTHORIZED('SendToAll') });
  // Nothing refused arrived; the refused joins did not join.
  for (const g of ['kk', 'l', 'K']) await admin.invoke('SendToGroup', g, 'm', `to ${g}`);
  await admin.invoke('SendToAll', 'm', 'marker');
  await until(() => recv.inbox.includes('marker') && joiner.inbox.includes('marker'), 'the marker');
  await sleep(150);
  assert.deepEqual(recv.inbox.sort(), ['group s', 'marker', 'others in s'].sort());
  assert.deepEqual(joiner.inbox, ['to k', 'marker']);
});

test('without a key ringhub runs open (and warns); RINGHUB_ACCESS_KEY sets a key like the file', async () => {
  assert.ok(!server.log.some((l) => /runs open/.test(l)), 'no "runs open" warning with a key');
  const open = await launch();
  try {
    await until(() => open.log.some((l) => /runs open/.test(l)), 'the "runs open" warning', 3000);
    const url = (user) => `${open.url('chat')}?user=${user}`;
    const bob = client(null, { url: url('bob'), transport: 'LongPolling' });
    const anyone = client(null, { url: url('anyone') });
    await bob.start();
    await anyone.start();
    await anyone.invoke('SendToUser', 'bob', 'm', 'hello bob');
    await until(() => bob.inbox.includes('hello bob'), 'the message to ?user=bob');
    await anyone.invoke('JoinGroup', 'g');
    for (const c of [bob, anyone]) {
      await c.stop();
      clients.delete(c);
    }
    const raw = await http('GET', '/api/events/bob', { port: open.port, how: 'none' });
    assert.equal(raw.status, 200, 'the event stream without a token');
  } finally {
    assert.equal(await open.stop(), 0, 'the open server stops cleanly');
  }
  const byEnv = await launch([], { RINGHUB_ACCESS_KEY: OTHER_KEY });
  try {
    const negotiate = '/hubs/chat/negotiate?negotiateVersion=1';
    assertUnauthorized(await http('POST', negotiate, { port: byEnv.port, how: 'none' }), 'env key: no token');
    const aud = byEnv.url('chat');
    assertUnauthorized(await http('POST', negotiate, { port: byEnv.port, token: sign(HS256, claims(aud)) }), 'env key: a token signed with the file key');
    const ok = await http('POST', negotiate, { port: byEnv.port, token: sign(HS256, claims(aud), { key: OTHER_KEY }) });
    assert.equal(ok.status, 200, 'env key: a token signed with it');
    assert.ok(!byEnv.log.some((l) => /runs open/.test(l)), 'no "runs open" warning with RINGHUB_ACCESS_KEY');
  } finally {
    assert.equal(await byEnv.stop(), 0, 'the env-key server stops cleanly');
  }
});
