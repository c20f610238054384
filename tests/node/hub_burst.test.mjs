// A burst to a big group with the official SignalR JavaScript client against the real ringhub
// binary: 1,000 connections (half JSON, half MessagePack; half negotiated, half WebSockets
// with skipNegotiation) join one group, one publisher sends 200 numbered messages to it as
// fast as it can, and every member receives every message exactly once and in order, within
// 60 s. Then everything stops cleanly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { startServer } from './server.mjs';

const MEMBERS = 1000;
const MESSAGES = 200;
const BATCH = 50; // connections started at once
const DELIVERY_MS = 60000;
const GROUP = 'burst';

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  assert.equal(await server.stop(), 0, 'ringhub stops cleanly with nothing left allocated');
});

// A member: checks each message's sequence number as it arrives; `next` is the one it expects.
class Member {
  constructor(i) {
    this.protocol = i % 2 ? 'json' : 'messagepack';
    this.negotiated = i % 4 < 2;
    const options = this.negotiated
      ? {}
      : { skipNegotiation: true, transport: signalR.HttpTransportType.WebSockets };
    const builder = new signalR.HubConnectionBuilder()
      .withUrl(server.url('chat'), options)
      .configureLogging(signalR.LogLevel.Warning);
    if (this.protocol === 'messagepack') builder.withHubProtocol(new MessagePackHubProtocol());
    this.connection = builder.build();
    this.next = 1;
    this.error = null; // the first thing that was wrong
    this.ended = false;
    this.closeError = 'not closed';
    this.connection.on('burst', (seq, text) => {
      if (this.error) return;
      if (this.ended || seq !== this.next || text !== `message ${seq}`) {
        this.error = `expected ${this.ended ? 'nothing after "end"' : this.next}, got ${seq} (${text})`;
      } else {
        this.next++;
      }
    });
    this.connection.on('end', () => {
      if (!this.error && this.next !== MESSAGES + 1) this.error = `"end" after ${this.next - 1} messages`;
      this.ended = true;
    });
    this.connection.onclose((error) => {
      this.closeError = error;
    });
  }

  get shard() {
    return Number((Buffer.from(this.connection.connectionId, 'base64url').readBigUInt64BE(0) >> 44n) & 0xffn);
  }
}

// Resolves once condition() holds, checking every 20 ms; rejects with describe() after @ms.
async function until(condition, describe, ms) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const title = `${MEMBERS} members of one group each get a burst of ${MESSAGES} messages once and in order`;
test(title, { timeout: 90000 }, async (t) => {
  const started = Date.now();
  const members = Array.from({ length: MEMBERS }, (_, i) => new Member(i));
  const publisher = new signalR.HubConnectionBuilder()
    .withUrl(server.url('chat'))
    .configureLogging(signalR.LogLevel.Warning)
    .build();
  try {
    for (let i = 0; i < MEMBERS; i += BATCH) {
      await Promise.all(members.slice(i, i + BATCH).map((m) => m.connection.start()));
    }
    await publisher.start();
    const connected = Date.now();
    for (let i = 0; i < MEMBERS; i += 250) {
      const batch = members.slice(i, i + 250);
      const joins = await Promise.all(batch.map((m) => m.connection.invoke('JoinGroup', GROUP)));
      assert.ok(joins.every((r) => r === null));
    }
    const joined = Date.now();

    // Fire and forget, in order on the publisher's socket; the final invoke completes only
    // after the server has taken in everything before it.
    for (let seq = 1; seq < MESSAGES; seq++) {
      publisher.send('SendToGroup', GROUP, 'burst', seq, `message ${seq}`);
    }
    const last = await publisher.invoke('SendToGroup', GROUP, 'burst', MESSAGES, `message ${MESSAGES}`);
    assert.equal(last, null);
    const describe = () => {
      const behind = members.filter((m) => m.next <= MESSAGES);
      const wrong = members.filter((m) => m.error);
      return (
        `${behind.length} members still waiting (least received: ` +
        `${Math.min(...members.map((m) => m.next - 1))}), ${wrong.length} wrong` +
        (wrong.length ? ` (first: ${wrong[0].error})` : '')
      );
    };
    await until(() => members.every((m) => m.error || m.next > MESSAGES), describe, DELIVERY_MS);
    const delivered = Date.now();

    // A last message to the group: it comes after any duplicate of the burst.
    assert.equal(await publisher.invoke('SendToGroup', GROUP, 'end'), null);
    await until(() => members.every((m) => m.error || m.ended), describe, 10000);

    const wrong = members.filter((m) => m.error);
    assert.equal(wrong.length, 0, `${wrong.length} members went wrong; the first: ${wrong[0]?.error}`);
    for (const m of members) assert.equal(m.next, MESSAGES + 1);

    const perShard = {};
    for (const m of members.filter((m) => m.negotiated)) perShard[m.shard] = (perShard[m.shard] ?? 0) + 1;
    t.diagnostic(
      `connect ${connected - started} ms, join ${joined - connected} ms, ` +
        `${MEMBERS * MESSAGES} deliveries in ${delivered - joined} ms; ` +
        `negotiated members per shard: ${JSON.stringify(perShard)}`,
    );
  } finally {
    for (let i = 0; i < MEMBERS; i += 250) {
      await Promise.all(members.slice(i, i + 250).map((m) => m.connection.stop()));
    }
    await publisher.stop();
  }
  // Nobody was dropped on the way: each client closed only when told to, without an error.
  for (const m of members) assert.equal(m.closeError, undefined);
});
