// What multi-node tests need: a standalone Redis, a Redis Cluster (with manual slot migration
// and master restarts), several ringhub nodes and nginx in front of them with the deployment
// kit's config (tools/deploy/nginx-ringhub.conf). Everything listens on 127.0.0.1 on free
// ports and lives in temp dirs; each start function returns a stop() that ends its processes
// and removes its temp dir (and a process exit kills whatever a failed test left running).
// redis-server, redis-cli and nginx come from tools/setup.sh.
import { spawn, execFile } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../..');
export const nginxKitPath = path.join(repoRoot, 'tools/deploy/nginx-ringhub.conf');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// Processes, temp dirs, tools, ports

// Every child still running when this process exits is killed, so that a test that throws
// between a start and its stop() leaves nothing behind.
const live = new Set();
process.on('exit', () => {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

// Spawns @cmd and tracks it; child.exited resolves to the exit code (or the signal's name)
// and child.tail holds its last output lines, for error messages.
function track(cmd, args, { echo, onLine, stdio = ['ignore', 'pipe', 'pipe'] } = {}) {
  const child = spawn(cmd, args, { stdio });
  live.add(child);
  child.tail = [];
  child.running = true;
  child.exited = new Promise((resolve) => {
    child.once('error', (err) => {
      child.running = false;
      live.delete(child);
      child.tail.push(String(err));
      resolve(`spawn error: ${err.message}`);
    });
    child.once('exit', (code, signal) => {
      child.running = false;
      live.delete(child);
      resolve(signal ?? code);
    });
  });
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    readline.createInterface({ input: stream }).on('line', (line) => {
      child.tail.push(line);
      if (child.tail.length > 40) child.tail.shift();
      if (echo) process.stderr.write(`${echo} ${line}\n`);
      onLine?.(line);
    });
  }
  return child;
}

// Stops @child with @signal and resolves to its exit code (or the signal's name).
async function end(child, signal = 'SIGTERM', ms = 15000) {
  if (!child.running) return child.exited;
  child.kill(signal);
  const timer = setTimeout(() => child.running && child.kill('SIGKILL'), ms);
  const result = await child.exited;
  clearTimeout(timer);
  return result;
}

function tempDir(what) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `ringhub-${what}-`));
}

function removeDir(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
}

// The path of the executable @name, or an error that says to run tools/setup.sh.
function tool(name, pkg) {
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/local/sbin', '/sbin']);
  for (const dir of dirs) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  throw new Error(`${name} not found (Debian package ${pkg}): run tools/setup.sh, which installs it`);
}

function listenOnce(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(null));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      const got = srv.address().port;
      srv.close(() => resolve(got));
    });
  });
}

const handedOut = new Set();

// A free loopback port (the kernel's pick), not handed out before by this process.
export async function freePort() {
  for (let i = 0; i < 100; i++) {
    const port = await listenOnce(0);
    if (port && !handedOut.has(port) && port <= 65535) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free port');
}

// A port that is free and whose Redis Cluster bus port (port + 10000) is free too.
async function freeClusterPort() {
  for (let i = 0; i < 500; i++) {
    const port = 20000 + Math.floor(Math.random() * 25000);
    if (handedOut.has(port) || handedOut.has(port + 10000)) continue;
    if ((await listenOnce(port)) && (await listenOnce(port + 10000))) {
      handedOut.add(port);
      handedOut.add(port + 10000);
      return port;
    }
  }
  throw new Error('no free port pair for a Redis Cluster node');
}

async function waitFor(condition, what, ms = 15000, child) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (child && !child.running) {
      throw new Error(`${what}: the process exited (${await child.exited}):\n${child.tail.join('\n')}`);
    }
    if (await condition()) return;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}` + (child ? `:\n${child.tail.join('\n')}` : ''));
    }
    await sleep(50);
  }
}

// ---------------------------------------------------------------------------------------------
// Redis

// redis-cli -p @port @args; resolves to its output without trailing newlines. Error replies
// are output too (redis-cli exits 0 on them): "ERR ...", "MOVED 1234 127.0.0.1:7001" and so on.
export function redisCli(port, ...args) {
  const cli = tool('redis-cli', 'redis-tools');
  return new Promise((resolve, reject) => {
    execFile(cli, ['-h', '127.0.0.1', '-p', String(port), ...args.map(String)], { timeout: 15000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`redis-cli -p ${port} ${args.join(' ')}: ${stderr || err.message}`));
        else resolve(stdout.replace(/\n+$/, ''));
      });
  });
}

// redis-cli --json (RESP3 replies as JSON): CLUSTER SLOTS as nested arrays, and so on.
export async function redisJson(port, ...args) {
  const out = await redisCli(port, '--json', ...args);
  try {
    return JSON.parse(out);
  } catch {
    throw new Error(`redis-cli -p ${port} ${args.join(' ')}: ${out}`);
  }
}

// Runs a command whose only good answer is @want ("OK"), else throws with the answer.
async function redisOk(port, want, ...args) {
  const out = await redisCli(port, ...args);
  if (out !== want) throw new Error(`redis-cli -p ${port} ${args.join(' ')}: ${out}`);
  return out;
}

// INFO [section] parsed into { field: value } (numbers stay strings).
function parseInfo(text) {
  const info = {};
  for (const line of text.split(/\r?\n/)) {
    if (!line || line.startsWith('#')) continue;
    const at = line.indexOf(':');
    if (at > 0) info[line.slice(0, at)] = line.slice(at + 1);
  }
  return info;
}

async function pings(port) {
  try {
    return (await redisCli(port, 'ping')) === 'PONG';
  } catch {
    return false;
  }
}

function redisArgs(port, dir, args) {
  return ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', dir, '--daemonize', 'no', '--logfile', '', ...args];
}

// A standalone redis-server on a free port, in a temp dir, without persistence.
export async function startRedis({ args = [], echo = false } = {}) {
  const server = tool('redis-server', 'redis-server');
  tool('redis-cli', 'redis-tools');
  const port = await freePort();
  const dir = tempDir('redis');
  let child;
  const launch = async () => {
    child = track(server, redisArgs(port, dir, args), { echo: echo && `[redis ${port}]` });
    await waitFor(() => pings(port), `redis-server on port ${port}`, 15000, child);
  };
  try {
    await launch();
  } catch (err) {
    if (child) await end(child, 'SIGKILL');
    removeDir(dir);
    throw err;
  }
  return {
    port,
    address: `127.0.0.1:${port}`,
    dir,
    get pid() {
      return child.pid;
    },
    cli: (...a) => redisCli(port, ...a),
    json: (...a) => redisJson(port, ...a),
    info: async (section) => parseInfo(await redisCli(port, 'info', ...(section ? [section] : []))),
    // SIGKILL: the server is gone at once, clients see their connections reset.
    kill: () => end(child, 'SIGKILL'),
    // A new redis-server on the same port (empty: nothing is persisted).
    async restart() {
      await end(child, 'SIGKILL');
      await launch();
    },
    async stop() {
      await end(child, 'SIGTERM');
      removeDir(dir);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Redis Cluster

// @masters cluster-enabled redis-servers (no replicas) made into one cluster with
// redis-cli --cluster create; resolves once every node says cluster_state:ok and sees all
// 16384 slots.
export async function startRedisCluster({ masters = 3, nodeTimeoutMs = 5000, args = [], echo = false } = {}) {
  if (masters < 3) throw new Error('redis-cli --cluster create needs at least 3 masters');
  const server = tool('redis-server', 'redis-server');
  tool('redis-cli', 'redis-tools');
  const root = tempDir('redis-cluster');
  const ports = [];
  const procs = new Map(); // port -> child
  const dirs = new Map(); // port -> dir (holds its nodes.conf)

  const launch = async (port) => {
    const child = track(server, redisArgs(port, dirs.get(port), [
      '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf',
      '--cluster-node-timeout', String(nodeTimeoutMs), ...args,
    ]), { echo: echo && `[redis ${port}]` });
    procs.set(port, child);
    await waitFor(() => pings(port), `cluster node on port ${port}`, 15000, child);
  };

  const stop = async () => {
    await Promise.all([...procs.values()].map((child) => end(child, 'SIGTERM')));
    removeDir(root);
  };

  const cli = (port, ...a) => redisCli(port, ...a);
  const clusterInfo = async (port) => parseInfo(await cli(port, 'cluster', 'info'));
  const slots = (port) => redisJson(port, 'cluster', 'slots');

  // Every node (or @only) says cluster_state:ok with all slots assigned, and every node's
  // CLUSTER SLOTS covers all 16384 slots.
  const allOk = async (only = ports) => {
    for (const port of only) {
      const info = await clusterInfo(port).catch(() => ({}));
      if (info.cluster_state !== 'ok' || info.cluster_slots_assigned !== '16384') return false;
      const ranges = await slots(port).catch(() => []);
      if (ranges.reduce((n, [from, to]) => n + to - from + 1, 0) !== 16384) return false;
    }
    return true;
  };

  try {
    for (let i = 0; i < masters; i++) {
      const port = await freeClusterPort();
      ports.push(port);
      dirs.set(port, path.join(root, String(port)));
      fs.mkdirSync(dirs.get(port));
    }
    await Promise.all(ports.map(launch));
    const out = await new Promise((resolve, reject) => {
      execFile(tool('redis-cli', 'redis-tools'),
        ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'],
        { timeout: 60000 }, (err, stdout, stderr) => (err ? reject(new Error(`${stdout}${stderr}`)) : resolve(stdout)));
    });
    if (!/All 16384 slots covered/.test(out)) throw new Error(`redis-cli --cluster create:\n${out}`);
    await waitFor(() => allOk(), 'cluster_state:ok on every node', 30000);
  } catch (err) {
    await stop();
    throw err;
  }

  const ids = new Map(); // port -> node id (stable across restarts: it is in nodes.conf)
  const nodeId = async (port) => {
    if (!ids.has(port)) ids.set(port, await cli(port, 'cluster', 'myid'));
    return ids.get(port);
  };

  // The port of the master that serves @slot, by CLUSTER SLOTS on @askPort (default: any
  // running node).
  const slotOwner = async (slot, askPort) => {
    const port = askPort ?? ports.find((p) => procs.get(p).running);
    for (const [from, to, [, owner]] of await slots(port)) {
      if (slot >= from && slot <= to) return owner;
    }
    throw new Error(`slot ${slot} is not served (CLUSTER SLOTS on ${port})`);
  };

  return {
    ports,
    seeds: ports.map((p) => `127.0.0.1:${p}`).join(','),
    cli,
    json: (port, ...a) => redisJson(port, ...a),
    info: clusterInfo,
    nodeId,
    pid: (port) => procs.get(port).pid,
    keySlot: async (key) => Number(await cli(ports[0], 'cluster', 'keyslot', key)),
    slotOwner,
    // Moves @slot to the master on @toPort as the manual resharding steps of CLUSTER SETSLOT
    // say: IMPORTING on the destination, MIGRATING on the source, MIGRATE its keys, then
    // SETSLOT NODE on the destination, the source and every other master.
    async migrateSlot(slot, toPort) {
      const fromPort = await slotOwner(slot);
      if (fromPort === toPort) return;
      const fromId = await nodeId(fromPort);
      const toId = await nodeId(toPort);
      await redisOk(toPort, 'OK', 'cluster', 'setslot', slot, 'importing', fromId);
      await redisOk(fromPort, 'OK', 'cluster', 'setslot', slot, 'migrating', toId);
      for (;;) {
        const keys = (await cli(fromPort, 'cluster', 'getkeysinslot', slot, 100)).split('\n').filter(Boolean);
        if (keys.length === 0) break;
        await redisOk(fromPort, 'OK', 'migrate', '127.0.0.1', toPort, '', 0, 5000, 'KEYS', ...keys);
      }
      const order = [toPort, fromPort, ...ports.filter((p) => p !== toPort && p !== fromPort)];
      for (const port of order) await redisOk(port, 'OK', 'cluster', 'setslot', slot, 'node', toId);
      await waitFor(async () => {
        for (const port of ports) if ((await slotOwner(slot, port)) !== toPort) return false;
        return true;
      }, `every node to see slot ${slot} on ${toPort}`);
    },
    // kill -9 of the master on @port, then a new redis-server on the same port with its
    // nodes.conf (its data is gone: nothing is persisted); resolves once the cluster is ok.
    async restartMaster(port) {
      if (!procs.has(port)) throw new Error(`no cluster node on port ${port}`);
      await end(procs.get(port), 'SIGKILL');
      await launch(port);
      await waitFor(() => allOk(), `cluster_state:ok after restarting ${port}`, 30000);
    },
    // Kills the master on @port and leaves it down (cluster_state turns fail once the others
    // notice, after the node timeout); restartMaster(port) brings it back.
    killMaster: (port) => end(procs.get(port), 'SIGKILL'),
    waitOk: (ms = 30000) => waitFor(() => allOk(), 'cluster_state:ok on every node', ms),
    stop,
  };
}

// ---------------------------------------------------------------------------------------------
// ringhub nodes

// The --redis value for a startRedis() or startRedisCluster() result, or a string as is.
function redisFlag(redis) {
  if (typeof redis === 'string') return redis;
  if (redis.seeds) return redis.seeds;
  if (redis.port) return `127.0.0.1:${redis.port}`;
  throw new Error('redis: a host:port string, startRedis() or startRedisCluster()');
}

async function startNode(binary, id, flags) {
  let listening;
  const heard = new Promise((resolve) => (listening = resolve));
  const child = track(binary, flags, {
    echo: `[node ${id}]`,
    stdio: ['ignore', 'inherit', 'pipe'],
    onLine: (line) => {
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
      if (m) listening(Number(m[1]));
    },
  });
  let timer;
  const port = await Promise.race([
    heard,
    child.exited.then((code) => {
      throw new Error(`ringhub node ${id} exited with ${code} at start:\n${child.tail.join('\n')}`);
    }),
    new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`ringhub node ${id} did not start listening`)), 15000);
    }),
  ])
    .catch(async (err) => {
      await end(child, 'SIGKILL');
      throw err;
    })
    .finally(() => clearTimeout(timer));
  return { child, port };
}

// @count ringhub processes from $RINGHUB: node i has --node-id i+1, a free port, its own admin
// socket, --redis (when @redis is given: a startRedis() or startRedisCluster() result or a
// "host:port,..." string), --redis-prefix @prefix (when given), then $RINGHUB_ARGS and @args
// (an array, or a function of the node's index that returns one). Their stderr is echoed,
// each line prefixed with "[node id]".
export async function startNodes(count, { redis, prefix, args = [] } = {}) {
  const binary = process.env.RINGHUB;
  if (!binary) throw new Error('set RINGHUB to the ringhub binary');
  const extra = (process.env.RINGHUB_ARGS ?? '').split(' ').filter(Boolean);
  const dir = tempDir('nodes');
  const started = await Promise.allSettled(Array.from({ length: count }, (_, i) => {
    const id = i + 1;
    const flags = ['--listen', '127.0.0.1', '--port', '0', '--node-id', String(id)];
    if (redis !== undefined) flags.push('--redis', redisFlag(redis));
    if (prefix !== undefined) flags.push('--redis-prefix', prefix);
    flags.push('--admin-socket', path.join(dir, `node-${id}.sock`), ...extra,
      ...(typeof args === 'function' ? args(i) : args));
    return startNode(binary, id, flags);
  }));
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await Promise.all(started.filter((s) => s.status === 'fulfilled').map((s) => end(s.value.child, 'SIGKILL')));
    removeDir(dir);
    throw failed.reason;
  }
  const nodes = started.map(({ value: { child, port } }, i) => ({
    id: i + 1,
    port,
    pid: child.pid,
    socket: path.join(dir, `node-${i + 1}.sock`),
    url: (hub) => `http://127.0.0.1:${port}/hubs/${hub}`,
    get running() {
      return child.running;
    },
    // SIGTERM; resolves to the exit code (0: a clean stop with nothing left allocated).
    stop: () => end(child, 'SIGTERM', 30000),
    // SIGKILL, as a crash; resolves to 'SIGKILL'.
    kill: () => end(child, 'SIGKILL'),
  }));
  // Stops every node still running; resolves to their exit codes (by node) and removes the
  // temp dir of their admin sockets.
  nodes.stopAll = async () => {
    const codes = await Promise.all(nodes.map((n) => n.stop()));
    removeDir(dir);
    return codes;
  };
  nodes.dir = dir;
  return nodes;
}

// ---------------------------------------------------------------------------------------------
// nginx

// The deployment kit's nginx config as shipped, with its upstream servers replaced by
// @ports (each line keeps the kit's parameters), its listen lines replaced by one on
// 127.0.0.1:@listenPort, and without ip_hash when @ipHash is false. Throws when the kit does
// not have the expected shape (an upstream with a server line, a listen line).
export function rewriteNginxKit(text, { ports, listenPort, ipHash = true }) {
  const upstream = /(upstream\s+ringhub\s*\{)([\s\S]*?)(\n\})/.exec(text);
  if (!upstream) throw new Error(`${nginxKitPath}: no "upstream ringhub { ... }" block`);
  let body = upstream[2];
  const serverLine = /^([ \t]*)server[ \t]+([^\s;]+)([^;\n]*;)[^\n]*\n/m;
  const first = serverLine.exec(body);
  if (!first) throw new Error(`${nginxKitPath}: no server line in the upstream`);
  const lines = ports.map((p) => `${first[1]}server 127.0.0.1:${p}${first[3]}\n`).join('');
  body = body.replace(new RegExp(serverLine.source, 'gm'), '');
  body = body.slice(0, first.index) + lines + body.slice(first.index);
  if (!ipHash) {
    if (!/^\s*ip_hash;/m.test(body)) throw new Error(`${nginxKitPath}: no ip_hash in the upstream`);
    body = body.replace(/^[ \t]*ip_hash;[^\n]*\n/m, '');
  }
  let out = text.slice(0, upstream.index) + upstream[1] + body + upstream[3] +
    text.slice(upstream.index + upstream[0].length);
  const listen = /^([ \t]*)listen[ \t][^;]*;[^\n]*\n/m;
  const firstListen = listen.exec(out);
  if (!firstListen) throw new Error(`${nginxKitPath}: no listen line`);
  out = out.replace(new RegExp(listen.source, 'gm'), '');
  out = out.slice(0, firstListen.index) + `${firstListen[1]}listen 127.0.0.1:${listenPort};\n` +
    out.slice(firstListen.index);
  return out;
}

// The whole nginx.conf for a test: one worker, pid, temp paths and access log in @dir,
// errors to stderr, the (rewritten) kit inside http { }.
export function nginxConf(site, dir) {
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((t) => `    ${t}_temp_path ${path.join(dir, t)};`).join('\n');
  return `# Generated by tests/node/cluster_helpers.mjs around ${nginxKitPath}
${user}worker_processes 1;
pid ${path.join(dir, 'nginx.pid')};
error_log stderr warn;
events {
    worker_connections 4096;
}
http {
    access_log ${path.join(dir, 'access.log')};
${temp}
    default_type application/octet-stream;

${site}
}
`;
}

// nginx in front of @nodes (startNodes() results, or ports) with the kit's config (see
// rewriteNginxKit), as the current user, in the foreground; resolves once /healthz answers
// through it.
export async function startNginx(nodes, { ipHash = true, echo = true } = {}) {
  const nginx = tool('nginx', 'nginx');
  const ports = nodes.map((n) => (typeof n === 'number' ? n : n.port));
  const port = await freePort();
  const dir = tempDir('nginx');
  const conf = path.join(dir, 'nginx.conf');
  const site = rewriteNginxKit(fs.readFileSync(nginxKitPath, 'utf8'), { ports, listenPort: port, ipHash });
  fs.writeFileSync(conf, nginxConf(site, dir));
  const child = track(nginx, ['-p', dir, '-e', 'stderr', '-c', conf, '-g', 'daemon off;'],
    { echo: echo && '[nginx]' });
  const healthy = async () => {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      await res.arrayBuffer();
      return res.status === 200;
    } catch {
      return false;
    }
  };
  try {
    await waitFor(healthy, `nginx on port ${port} to answer /healthz`, 15000, child);
  } catch (err) {
    await end(child, 'SIGKILL');
    removeDir(dir);
    throw err;
  }
  return {
    port,
    pid: child.pid,
    conf,
    dir,
    url: (hub) => `http://127.0.0.1:${port}/hubs/${hub}`,
    base: `http://127.0.0.1:${port}`,
    // SIGTERM is nginx's fast shutdown: open connections are closed, not waited for.
    async stop() {
      const code = await end(child, 'SIGTERM');
      removeDir(dir);
      return code;
    },
  };
}

// ringhub-ctl ($RINGHUB_CTL) --json @args on @node's admin socket: the parsed answer; throws
// with the output when it exits non-zero.
export function ctlJson(node, ...args) {
  const ctl = process.env.RINGHUB_CTL;
  if (!ctl) throw new Error('set RINGHUB_CTL to the ringhub-ctl binary');
  return new Promise((resolve, reject) => {
    const child = spawn(ctl, ['-s', node.socket, '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`ringhub-ctl ${args.join(' ')}: exit ${code}: ${out}${err}`)),
    );
  });
}
