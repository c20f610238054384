// Groups, users and direct sends with the official SignalR JavaScript client (JSON and
// MessagePack hub protocols, and both mixed) against the real ringhub binary with several
// shards: JoinGroup/LeaveGroup, SendToGroup, SendToOthersInGroup, SendToUser (the user comes
// from the `user` query parameter) and SendToConnection reach exactly the connections they
// name, on every shard; values pass unchanged between the protocols; stopped clients drop out;
// groups and users are per hub; bad arguments are refused.
//
// How "nothing else arrived" is proved without sleeping: a shard hands a group message to all
// its local members at once, and a socket keeps its order. So once a message has reached a
// member on every shard, anything it should not have sent to another client already sits in
// that client's socket, ahead of a marker sent afterwards with SendToAll (settle() below).
// That needs members on every shard: spread() connects clients until the shards, read from
// their connection ids, are covered.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { startServer } from './server.mjs';
import { OwnSocketHttpClient, until } from './helpers.mjs';

const shardsArg = /--shards[= ](\d+)/.exec(process.env.RINGHUB_ARGS ?? '');
const SHARDS = shardsArg && Number(shardsArg[1]) > 0 ? Number(shardsArg[1]) : os.availableParallelism();
const ATTEMPTS = 20 + 20 * SHARDS; // connections spread() may open to cover every shard

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  assert.equal(await server.stop(), 0, 'ringhub stops cleanly with nothing left allocated');
});

// The client's fetch keeps one keep-alive socket per origin, so every negotiate would reach the
// same shard: 'spread' clients use OwnSocketHttpClient (helpers.mjs) instead.
const TARGETS = ['msg', 'marker'];

// One official client and what it received: inbox holds {target, args} in arrival order.
// via: 'spread' (negotiate, own socket per request), 'negotiate' (the client as it comes) or
// 'websocket' (skipNegotiation over WebSockets; its connectionId is then unknown).
class Client {
  constructor({ protocol = 'json', hub = 'chat', user, via = 'spread' }) {
    const url = server.url(hub) + (user === undefined ? '' : `?user=${encodeURIComponent(user)}`);
    const options =
      via === 'websocket'
        ? { skipNegotiation: true, transport: signalR.HttpTransportType.WebSockets }
        : via === 'spread'
          ? { httpClient: new OwnSocketHttpClient(signalR.NullLogger.instance) }
          : {};
    const builder = new signalR.HubConnectionBuilder()
      .withUrl(url, options)
      .configureLogging(signalR.LogLevel.Warning);
    if (protocol === 'messagepack') builder.withHubProtocol(new MessagePackHubProtocol());
    this.protocol = protocol;
    this.user = user;
    this.connection = builder.build();
    this.inbox = [];
    this.closed = false;
    this.closeError = undefined;
    for (const target of TARGETS) {
      this.connection.on(target, (...args) => {
        this.inbox.push({ target, args });
      });
    }
    this.connection.onclose((error) => {
      this.closed = true;
      this.closeError = error;
    });
  }

  get id() {
    return this.connection.connectionId;
  }

  // The shard the connection lives on: its id starts with the big-endian u64 route
  // node:12 | shard:8 | slot:20 | gen:24.
  get shard() {
    assert.ok(this.id, 'only negotiated connections have an id');
    return Number((Buffer.from(this.id, 'base64url').readBigUInt64BE(0) >> 44n) & 0xffn);
  }

  got(target = 'msg') {
    return this.inbox.filter((m) => m.target === target).map((m) => m.args);
  }

  invoke(...args) {
    return this.connection.invoke(...args);
  }

  send(...args) {
    return this.connection.send(...args);
  }

  // Stops the client and checks that it was not closed before, nor with an error.
  async stop() {
    if (this.connection.state === signalR.HubConnectionState.Disconnected) return;
    assert.equal(this.closed, false, 'the client was still connected');
    await this.connection.stop();
    assert.equal(this.closeError, undefined, 'the client stopped without an error');
  }
}

// Starts a client whose test stops it at its end (whatever happens).
async function open(t, options = {}) {
  const c = new Client(options);
  t.after(() => c.stop());
  await c.connection.start();
  assert.equal(c.connection.state, signalR.HubConnectionState.Connected);
  return c;
}

// Negotiated clients, options(i) for the i-th, until every shard has at least perShard of them
// and there are at least atLeast in all.
async function spread(t, options, { perShard = 2, atLeast = 0 } = {}) {
  const clients = [];
  for (;;) {
    const counts = Array.from({ length: SHARDS }, (_, s) => clients.filter((c) => c.shard === s).length);
    if (counts.every((n) => n >= perShard) && clients.length >= atLeast) return clients;
    if (clients.length >= ATTEMPTS) {
      assert.fail(`${ATTEMPTS} connections did not cover ${SHARDS} shards (per shard: ${counts})`);
    }
    clients.push(await open(t, { via: 'spread', ...options(clients.length) }));
  }
}

// The i-th client's protocol in a test of @mode ('json', 'messagepack' or 'mixed').
function protocolOf(mode, i) {
  if (mode !== 'mixed') return mode;
  return i % 2 ? 'json' : 'messagepack';
}

// Sends a SendToAll marker from @sender and waits until each of @clients (all of @sender's hub)
// has it: whatever was on its way to them before is then in their inbox (see the top).
let markers = 0;
async function settle(sender, clients) {
  const token = `marker ${++markers}`;
  assert.equal(await sender.invoke('SendToAll', 'marker', token), null);
  await until(
    () => clients.every((c) => c.got('marker').some(([m]) => m === token)),
    `every client to get "${token}"`,
  );
}

// Waits until each of @clients has @count messages of target 'msg'.
function received(clients, count, what) {
  return until(() => clients.every((c) => c.got().length >= count), what);
}

for (const mode of ['json', 'messagepack', 'mixed']) {
  test(`${mode}: SendToGroup reaches all members on every shard, from anyone, and no one else`, async (t) => {
    const members = await spread(t, (i) => ({ protocol: protocolOf(mode, i) }));
    const outsider = await open(t, { protocol: protocolOf(mode, 1) });
    const elsewhere = await open(t, { protocol: protocolOf(mode, 0), hub: 'other' });
    for (const m of members) assert.equal(await m.invoke('JoinGroup', 'room'), null);
    assert.equal(await elsewhere.invoke('JoinGroup', 'room'), null); // another hub's 'room'

    // From a non-member, then from a member (who gets its own message too).
    assert.equal(await outsider.invoke('SendToGroup', 'room', 'msg', 'from outside', 1), null);
    assert.equal(await members[0].invoke('sendtogroup', 'room', 'msg', 'from inside', 2), null);
    await received(members, 2, 'every member to get both messages');
    await settle(outsider, [...members, outsider]);

    for (const m of members) {
      const got = m.got().map((args) => JSON.stringify(args)).sort();
      assert.deepEqual(got, [JSON.stringify(['from inside', 2]), JSON.stringify(['from outside', 1])]);
    }
    assert.deepEqual(outsider.got(), []);
    // The other hub's 'room' got nothing either (its own hub answers, so it would have).
    assert.equal(await elsewhere.invoke('Echo', 'ping'), 'ping');
    assert.deepEqual(elsewhere.got(), []);
  });

  test(`${mode}: JoinGroup is in effect when it completes, for senders on every shard`, async (t) => {
    const clients = await spread(t, (i) => ({ protocol: protocolOf(mode, i) }), { perShard: 1 });
    const byShard = Array.from({ length: SHARDS }, (_, s) => clients.find((c) => c.shard === s));
    let round = 0;
    for (let repeat = 0; repeat < 3; repeat++) {
      for (const joiner of byShard) {
        for (const sender of byShard) {
          // A fresh group each round, so its owner shard varies too; the send goes out the
          // moment the join has completed.
          const group = `race ${++round}`;
          assert.equal(await joiner.invoke('JoinGroup', group), null);
          assert.equal(await sender.invoke('SendToGroup', group, 'msg', group), null);
          await until(
            () => joiner.got().some(([g]) => g === group),
            `"${group}" from shard ${sender.shard} to a member that just joined on shard ${joiner.shard}`,
            5000,
          );
        }
      }
    }
  });

  test(`${mode}: LeaveGroup stops delivery to the one who left`, async (t) => {
    const members = await spread(t, (i) => ({ protocol: protocolOf(mode, i) }));
    for (const m of members) await m.invoke('JoinGroup', 'leavers');
    const sender = members[0];
    await sender.invoke('SendToGroup', 'leavers', 'msg', 'before');
    await received(members, 1, 'every member to get "before"');

    // One member on each shard leaves (the sender stays); each shard keeps another member.
    const leavers = Array.from({ length: SHARDS }, (_, s) =>
      members.find((m) => m.shard === s && m !== sender),
    );
    for (const l of leavers) assert.equal(await l.invoke('LeaveGroup', 'leavers'), null);
    const stayers = members.filter((m) => !leavers.includes(m));
    await sender.invoke('SendToGroup', 'leavers', 'msg', 'after');
    await received(stayers, 2, 'the members who stayed to get "after"');
    await settle(sender, members);

    for (const m of stayers) assert.deepEqual(m.got(), [['before'], ['after']]);
    for (const l of leavers) assert.deepEqual(l.got(), [['before']]);
  });

  test(`${mode}: SendToOthersInGroup reaches every member but the caller`, async (t) => {
    const members = await spread(t, (i) => ({ protocol: protocolOf(mode, i) }));
    const outsider = await open(t, { protocol: protocolOf(mode, 0) });
    for (const m of members) await m.invoke('JoinGroup', 'others');
    const caller = members.at(-1);
    const others = members.filter((m) => m !== caller);

    assert.equal(await caller.invoke('SendToOthersInGroup', 'others', 'msg', 'not me', { n: 1 }), null);
    await received(others, 1, 'every other member to get "not me"');
    // The caller's next message to the group follows the same path, so it arrives after
    // anything the first one might have wrongly brought to the caller.
    assert.equal(await caller.invoke('SendToGroup', 'others', 'msg', 'everyone'), null);
    await received([caller], 1, 'the caller to get "everyone"');
    await received(others, 2, 'every other member to get "everyone"');
    await settle(caller, [...members, outsider]);

    assert.deepEqual(caller.got(), [['everyone']]);
    for (const m of others) assert.deepEqual(m.got(), [['not me', { n: 1 }], ['everyone']]);
    assert.deepEqual(outsider.got(), []);

    // A non-member may use it too: then every member gets it.
    assert.equal(await outsider.invoke('SendToOthersInGroup', 'others', 'msg', 'from outside'), null);
    await received([caller], 2, 'the caller to get "from outside"');
    await received(others, 3, 'every other member to get "from outside"');
    assert.deepEqual(caller.got().at(-1), ['from outside']);
    for (const m of others) assert.deepEqual(m.got().at(-1), ['from outside']);
  });

  test(`${mode}: SendToUser reaches all connections of that user on every shard, and no other`, async (t) => {
    const alice = await spread(t, (i) => ({ protocol: protocolOf(mode, i), user: 'alice' }), {
      perShard: 1,
      atLeast: 3,
    });
    const bob = [
      await open(t, { protocol: protocolOf(mode, 0), user: 'bob' }),
      await open(t, { protocol: protocolOf(mode, 1), user: 'bob' }),
    ];
    const zoe = await open(t, { protocol: protocolOf(mode, 1), user: 'zoë ✓' });
    const anonymous = await open(t, { protocol: protocolOf(mode, 0) });

    // A user's connections need not join anything: the user is known once start() resolves.
    assert.equal(await bob[0].invoke('SendToUser', 'alice', 'msg', 'for alice', [1, 2]), null);
    await received(alice, 1, "every one of alice's connections to get it");
    assert.equal(await anonymous.invoke('SendToUser', 'zoë ✓', 'msg', 'for zoë'), null);
    await received([zoe], 1, 'zoë (a percent-encoded user name) to get hers');
    await settle(bob[0], [...alice, ...bob, zoe, anonymous]);

    for (const a of alice) assert.deepEqual(a.got(), [['for alice', [1, 2]]]);
    assert.deepEqual(zoe.got(), [['for zoë']]);
    for (const c of [...bob, anonymous]) assert.deepEqual(c.got(), []);

    // Sending to oneself's user includes the caller; a user nobody is completes quietly.
    assert.equal(await alice[0].invoke('SendToUser', 'alice', 'msg', 'self'), null);
    await received(alice, 2, "alice's connections to get alice's own message");
    assert.equal(await alice[0].invoke('SendToUser', 'nobody', 'msg', 'lost'), null);
    assert.equal(await alice[0].invoke('SendToUser', 'Alice', 'msg', 'other case'), null);
    await settle(alice[0], [...alice, ...bob, zoe, anonymous]);
    for (const a of alice) assert.deepEqual(a.got(), [['for alice', [1, 2]], ['self']]);
    for (const c of [...bob, anonymous]) assert.deepEqual(c.got(), []);
  });

  test(`${mode}: SendToConnection reaches exactly the connection named`, async (t) => {
    const clients = await spread(t, (i) => ({ protocol: protocolOf(mode, i), user: 'same' }));
    const ids = clients.map((c) => c.id);
    assert.equal(new Set(ids).size, ids.length);
    // Every client sends one message to every client (itself included).
    await Promise.all(
      clients.map((from, i) =>
        Promise.all(ids.map((id, j) => from.invoke('SendToConnection', id, 'msg', { from: i, to: j }))),
      ),
    );
    await received(clients, clients.length, 'every client to get one message from each');
    await settle(clients[0], clients);
    clients.forEach((c, j) => {
      const got = c.got().map(([payload]) => payload);
      got.sort((a, b) => a.from - b.from);
      assert.deepEqual(
        got,
        clients.map((_, i) => ({ from: i, to: j })),
      );
    });
  });

  test(`${mode}: joining twice gives one delivery; leaving a group one is not in completes`, async (t) => {
    const members = await spread(t, (i) => ({ protocol: protocolOf(mode, i) }), { perShard: 1 });
    // Members on every shard that join once and stay, to show where the messages went.
    const anchors = await spread(t, (i) => ({ protocol: protocolOf(mode, i + 1) }), { perShard: 1 });
    for (const a of anchors) assert.equal(await a.invoke('JoinGroup', 'twice'), null);
    const sender = members[0];
    for (const m of members) {
      assert.equal(await m.invoke('JoinGroup', 'twice'), null);
      assert.equal(await m.invoke('JoinGroup', 'twice'), null);
      assert.deepEqual(await Promise.all([m.invoke('JoinGroup', 'twice'), m.invoke('JOINGROUP', 'twice')]), [
        null,
        null,
      ]);
    }
    // One sender's messages to one group arrive in order, so a duplicate of any of them
    // would show up before the last one.
    for (let n = 1; n < 4; n++) sender.send('SendToGroup', 'twice', 'msg', n);
    await sender.invoke('SendToGroup', 'twice', 'msg', 4);
    await received([...members, ...anchors], 4, 'every member to get 1, 2, 3, 4');
    await settle(sender, [...members, ...anchors]);
    for (const m of [...members, ...anchors]) assert.deepEqual(m.got(), [[1], [2], [3], [4]]);

    // Membership is a set: one LeaveGroup undoes any number of joins.
    for (const m of members) {
      assert.equal(await m.invoke('LeaveGroup', 'twice'), null);
      assert.equal(await m.invoke('LeaveGroup', 'twice'), null);
      assert.equal(await m.invoke('leavegroup', 'never joined'), null);
    }
    assert.equal(await sender.invoke('SendToGroup', 'twice', 'msg', 'after leaving'), null);
    assert.equal(await sender.invoke('SendToGroup', 'never joined', 'msg', 'nobody there'), null);
    await received(anchors, 5, 'the anchors to get "after leaving"');
    await settle(sender, [...members, ...anchors]);
    for (const m of members) assert.deepEqual(m.got(), [[1], [2], [3], [4]]);
    for (const a of anchors) assert.deepEqual(a.got(), [[1], [2], [3], [4], ['after leaving']]);
  });

  test(`${mode}: a stopped client is gone from its groups and its user; the others go on`, async (t) => {
    const members = await spread(t, (i) => ({ protocol: protocolOf(mode, i), user: 'carol' }));
    const sender = await open(t, { protocol: protocolOf(mode, 1), user: 'dan' });
    for (const m of members) await m.invoke('JoinGroup', 'stoppers');

    // One member on each shard stops.
    const stopped = Array.from({ length: SHARDS }, (_, s) => members.find((m) => m.shard === s));
    await Promise.all(stopped.map((c) => c.stop()));
    const rest = members.filter((m) => !stopped.includes(m));
    assert.equal(await sender.invoke('SendToGroup', 'stoppers', 'msg', 'group'), null);
    assert.equal(await sender.invoke('SendToUser', 'carol', 'msg', 'user'), null);
    await received(rest, 2, 'the members still there to get both');

    // New connections, perhaps in the stopped ones' slots, inherit neither group nor user.
    const newcomers = await spread(t, (i) => ({ protocol: protocolOf(mode, i) }), { perShard: 1 });
    assert.equal(await sender.invoke('SendToGroup', 'stoppers', 'msg', 'group again'), null);
    assert.equal(await sender.invoke('SendToUser', 'carol', 'msg', 'user again'), null);
    await received(rest, 4, 'the members still there to get both again');
    await settle(sender, [...rest, ...newcomers, sender]);
    for (const m of rest) {
      const got = m.got();
      assert.deepEqual(got.slice(0, 2).map(String).sort(), ['group', 'user']);
      assert.deepEqual(got.slice(2).map(String).sort(), ['group again', 'user again']);
      assert.equal(m.closed, false);
    }
    for (const c of [...stopped, ...newcomers, sender]) assert.deepEqual(c.got(), []);

    // When every member has stopped, the group is empty and can be joined afresh.
    await Promise.all(rest.map((c) => c.stop()));
    assert.equal(await sender.invoke('SendToGroup', 'stoppers', 'msg', 'nobody'), null);
    assert.equal(await sender.invoke('SendToUser', 'carol', 'msg', 'nobody'), null);
    assert.equal(await sender.invoke('JoinGroup', 'stoppers'), null);
    assert.equal(await newcomers[0].invoke('SendToGroup', 'stoppers', 'msg', 'fresh'), null);
    await received([sender], 1, 'the new member to get "fresh"');
    await settle(sender, [...newcomers, sender]);
    assert.deepEqual(sender.got(), [['fresh']]);
    for (const c of newcomers) assert.deepEqual(c.got(), []);
  });
}

for (const protocol of ['json', 'messagepack']) {
  test(`${protocol}: bad arguments to the group methods reject with the server's message`, async (t) => {
    // c makes the bad calls; witnesses (on every shard, c's included) join the groups that
    // the bad calls name, to show that those calls joined nothing.
    const [c, ...witnesses] = await spread(t, () => ({ protocol, user: 'erin' }));
    const bad = [
      ['JoinGroup'],
      ['JoinGroup', 42],
      ['JoinGroup', null],
      ['JoinGroup', ['room']],
      ['JoinGroup', { group: 'room' }],
      ['JoinGroup', 'room', 'extra'],
      ['JoinGroup', 'r'.repeat(257)],
      ['LeaveGroup'],
      ['LeaveGroup', 7],
      ['LeaveGroup', 'room', 'extra'],
      ['SendToGroup'],
      ['SendToGroup', 'room'],
      ['SendToGroup', 1, 'msg', 'x'],
      ['SendToOthersInGroup', 'room'],
      ['SendToOthersInGroup', true, 'msg'],
      ['SendToUser'],
      ['SendToUser', 'erin'],
      ['SendToUser', 3, 'msg'],
      ['SendToConnection'],
      ['SendToConnection', c.id],
    ];
    for (const [method, ...args] of bad) {
      await assert.rejects(
        c.invoke(method, ...args),
        (error) => {
          assert.match(error.message, new RegExp(`'${method}'`), `${method}(${JSON.stringify(args)})`);
          return true;
        },
        `${method}(${JSON.stringify(args).slice(1, -1)}) rejects`,
      );
    }
    // The connection survives all of it, and none of the failed calls joined anything.
    assert.equal(await c.invoke('Echo', 'still here'), 'still here');
    for (const w of witnesses) {
      assert.equal(await w.invoke('JoinGroup', 'room'), null);
      assert.equal(await w.invoke('JoinGroup', '42'), null);
    }
    assert.equal(await c.invoke('SendToGroup', 'room', 'msg', 'room'), null);
    assert.equal(await c.invoke('SendToGroup', '42', 'msg', '42'), null);
    await received(witnesses, 2, 'the witnesses to get both');
    await settle(c, [c, ...witnesses]);
    assert.deepEqual(c.got(), []);
  });
}

const values = [
  'plain',
  '',
  'ünïcødé ✓ 😀 中文',
  'quote " backslash \\ newline \n tab \t record separator \u001e nul \u0000',
  0,
  1,
  -1,
  127,
  128,
  -129,
  65536,
  -42,
  2 ** 31,
  2 ** 40,
  -(2 ** 40),
  Number.MAX_SAFE_INTEGER,
  3.25,
  -0.5,
  0.1,
  1e-7,
  -123456.789,
  6.02214076e23,
  true,
  false,
  null,
  [],
  {},
  [1, 'two', [3, null], { four: 4.5 }],
  {
    name: 'Ada',
    'ключ ✓': 'значение',
    tags: ['x', 'y'],
    nested: { deep: { deeper: [true, false, null] } },
  },
];

test('a mixed JSON and MessagePack group sees identical values from senders of both protocols', async (t) => {
  const members = await spread(t, (i) => ({ protocol: protocolOf('mixed', i) }));
  for (const m of members) await m.invoke('JoinGroup', 'values');
  const fromJson = members.find((m) => m.protocol === 'json');
  const fromMsgpack = members.find((m) => m.protocol === 'messagepack');

  assert.equal(await fromJson.invoke('SendToGroup', 'values', 'msg', 'json', ...values), null);
  assert.equal(await fromMsgpack.invoke('SendToGroup', 'values', 'msg', 'messagepack', ...values), null);
  assert.equal(await fromJson.invoke('SendToGroup', 'values', 'msg', 'json, one argument', { values }), null);
  await received(members, 3, 'every member to get the values three times');
  await settle(fromJson, members);

  for (const m of members) {
    const byOrigin = Object.fromEntries(m.got().map(([origin, ...rest]) => [origin, rest]));
    assert.deepEqual(Object.keys(byOrigin).sort(), ['json', 'json, one argument', 'messagepack']);
    assert.deepEqual(byOrigin.json, values, `${m.protocol} member, from json`);
    assert.deepEqual(byOrigin.messagepack, values, `${m.protocol} member, from messagepack`);
    assert.deepEqual(byOrigin['json, one argument'], [{ values }], `${m.protocol} member, nested`);
  }
});

test('groups and users are per hub', async (t) => {
  const options = (hub) => (i) => ({ hub, protocol: protocolOf('mixed', i), user: 'alice' });
  const chat = await spread(t, options('chat'), { perShard: 1 });
  const other = await spread(t, options('other'), { perShard: 1 });
  for (const c of [...chat, ...other]) assert.equal(await c.invoke('JoinGroup', 'shared'), null);

  await chat[0].invoke('SendToGroup', 'shared', 'msg', 'chat group');
  await chat[0].invoke('SendToUser', 'alice', 'msg', 'chat user');
  await received(chat, 2, "the chat hub's members to get both");
  await other[0].invoke('SendToGroup', 'shared', 'msg', 'other group');
  await other[0].invoke('SendToUser', 'alice', 'msg', 'other user');
  await received(other, 2, "the other hub's members to get both");
  await settle(chat[0], chat);
  await settle(other[0], other);

  for (const c of chat) assert.deepEqual(c.got().map(String).sort(), ['chat group', 'chat user']);
  for (const c of other) assert.deepEqual(c.got().map(String).sort(), ['other group', 'other user']);
});

test('clients that skip negotiation (WebSockets only) take part in groups and users', async (t) => {
  const direct = [];
  for (let i = 0; i < 6; i++) {
    direct.push(await open(t, { via: 'websocket', protocol: protocolOf('mixed', i), user: 'erin' }));
  }
  // Negotiated members too, so that the group has members on every shard.
  const negotiated = await spread(t, (i) => ({ protocol: protocolOf('mixed', i + 1), user: 'erin' }), {
    perShard: 1,
  });
  // The client as it comes: its negotiates share one keep-alive socket.
  const plain = await open(t, { via: 'negotiate', protocol: 'messagepack', user: 'erin' });
  const outsider = await open(t, { via: 'websocket', protocol: 'json' });
  const members = [...direct, ...negotiated, plain];
  for (const m of members) assert.equal(await m.invoke('JoinGroup', 'ws'), null);

  assert.equal(await outsider.invoke('SendToGroup', 'ws', 'msg', 'group'), null);
  await received(members, 1, 'every member to get "group"');
  assert.equal(await direct[0].invoke('SendToUser', 'erin', 'msg', 'user'), null);
  await received(members, 2, 'every connection of erin to get "user"');
  for (const m of direct.slice(0, 3)) assert.equal(await m.invoke('LeaveGroup', 'ws'), null);
  assert.equal(await direct[3].invoke('SendToOthersInGroup', 'ws', 'msg', 'after leaving'), null);
  const stayers = members.filter((m) => !direct.slice(0, 3).includes(m) && m !== direct[3]);
  await received(stayers, 3, 'the members who stayed to get "after leaving"');
  assert.equal(await direct[4].invoke('SendToConnection', plain.id, 'msg', 'direct'), null);
  await received([plain], 4, 'the plain client to get "direct"');
  await settle(outsider, [...members, outsider]);

  for (const m of direct.slice(0, 4)) assert.deepEqual(m.got(), [['group'], ['user']]);
  for (const m of stayers.filter((m) => m !== plain)) {
    assert.deepEqual(m.got(), [['group'], ['user'], ['after leaving']]);
  }
  assert.deepEqual(plain.got(), [['group'], ['user'], ['after leaving'], ['direct']]);
  assert.deepEqual(outsider.got(), []);
});

test('limits: 1,024 groups per connection and 256-byte names; SendToConnection stays in its hub', async (t) => {
  const c = await open(t, { user: 'u'.repeat(256) });
  const peer = await open(t, { hub: 'other' });
  assert.equal(await c.invoke('JoinGroup', 'g'.repeat(256)), null);
  // The user counts as one membership: 1,022 more groups fit, the next does not.
  await Promise.all(Array.from({ length: 1022 }, (_, i) => c.invoke('JoinGroup', `group ${i}`)));
  await assert.rejects(c.invoke('JoinGroup', 'one too many'), /at most 1024 groups/);
  assert.equal(await c.invoke('LeaveGroup', 'group 0'), null);
  assert.equal(await c.invoke('JoinGroup', 'one too many'), null);
  assert.equal(await c.invoke('SendToUser', 'u'.repeat(256), 'msg', 'to the user'), null);
  assert.equal(await c.invoke('SendToGroup', 'one too many', 'msg', 'to the last group'), null);
  await received([c], 2, 'the user and group messages');

  // A connection id of the other hub is unknown to this one, as in ASP.NET.
  assert.equal(await c.invoke('SendToConnection', peer.id, 'msg', 'across hubs'), null);
  assert.equal(await peer.invoke('SendToConnection', peer.id, 'msg', 'own hub'), null);
  await received([peer], 1, 'the message from its own hub');
  await settle(peer, [peer]);
  assert.deepEqual(peer.got(), [['own hub']]);

  // A longer user name is refused at the WebSocket request (400); the client only says that
  // it could not connect.
  await assert.rejects(open(t, { user: 'u'.repeat(257) }));
});
