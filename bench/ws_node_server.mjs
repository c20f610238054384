// bench/ws_node_server.mjs - the baseline for "ws (Node)" in bench/README.md: the smallest
// SignalR-speaking server on the `ws` package (tests/node/node_modules) that ringhub-bench can
// drive: negotiate, the WebSocket upgrade with ?id=, the JSON hub handshake, JoinGroup and
// SendToGroup (what the fanout and groups scenarios use), Ping. Each group message is
// serialised once and sent to every member, as a careful Node server would do.
//
//   node bench/ws_node_server.mjs PORT
import http from 'node:http';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';

const require = createRequire(new URL('../tests/node/package.json', import.meta.url));
const { Server: WebSocketServer } = require('ws'); // ws 7: WebSocket.Server
const RS = '\u001e';
const port = Number(process.argv[2] ?? 7400);
const groups = new Map(); // name -> Set of sockets

const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url.includes('/negotiate')) {
    const id = randomBytes(16).toString('base64url');
    const body = JSON.stringify({
      negotiateVersion: 1, connectionId: id, connectionToken: id,
      availableTransports: [{ transport: 'WebSockets', transferFormats: ['Text'] }],
    });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  res.writeHead(404).end();
});
const wss = new WebSocketServer({ server, perMessageDeflate: false });

wss.on('connection', (ws) => {
  let handshaken = false;
  const joined = new Set();
  ws.on('message', (data) => {
    for (const record of data.toString().split(RS)) {
      if (!record) continue;
      const msg = JSON.parse(record);
      if (!handshaken) {
        handshaken = true;
        ws.send(`{}${RS}`);
        continue;
      }
      if (msg.type !== 1) continue;
      const [name, target, ...args] = msg.arguments;
      if (msg.target === 'JoinGroup') {
        if (!groups.has(name)) groups.set(name, new Set());
        groups.get(name).add(ws);
        joined.add(name);
      } else if (msg.target === 'SendToGroup') {
        const text = JSON.stringify({ type: 1, target, arguments: args }) + RS;
        for (const member of groups.get(name) ?? []) member.send(text);
      }
      if (msg.invocationId) ws.send(JSON.stringify({ type: 3, invocationId: msg.invocationId, result: null }) + RS);
    }
  });
  ws.on('close', () => {
    for (const name of joined) groups.get(name)?.delete(ws);
  });
});

server.listen(port, '127.0.0.1', () => console.error(`ws (Node) baseline listening on 127.0.0.1:${port}`));
