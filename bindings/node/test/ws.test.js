'use strict';
// Against ws:// servers this test runs on 127.0.0.1 (nothing leaves the
// machine): a TCP listener that accepts and never answers, and a minimal
// WebSocket server that welcomes the client's hello and then answers nothing.
// Every server and socket is closed at the end of its test.

const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const http = require('node:http');
const { createHash } = require('node:crypto');
const { beckon, within, until, record, clients } = require('./helpers');

/** Listens on 127.0.0.1 with `server`; closes it and every socket after the test. */
async function listen(t, server) {
  const sockets = new Set();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  t.after(async () => {
    for (const socket of sockets) socket.destroy();
    await within(new Promise((resolve) => server.close(resolve)), 5000, 'the server to close');
  });
  const { port } = server.address();
  return { url: `ws://127.0.0.1:${port}`, sockets };
}

/** A TCP listener that accepts connections and never sends a byte. */
async function silentServer(t) {
  const server = net.createServer(() => {});
  const accepted = { count: 0 };
  server.on('connection', () => (accepted.count += 1));
  return { ...(await listen(t, server)), accepted };
}

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

const WELCOME = JSON.stringify({
  type: 'welcome',
  v: 1,
  session: 's'.repeat(32),
  resumed: false,
  last_request: 0,
  limits: {
    max_invitees: 32,
    max_timeout_secs: 600,
    max_extended_data: 8192,
    max_title: 256,
    max_message: 1024,
    max_resource_id: 64,
    max_payload: 4096,
    max_devices: 8,
  },
  heartbeat_secs: 15,
  grace_secs: 30,
  max_frame_bytes: 262144,
});

/** One unfragmented server-to-client text frame (unmasked). */
function textFrame(text) {
  const payload = Buffer.from(text);
  let header;
  if (payload.length < 126) header = Buffer.from([0x81, payload.length]);
  else if (payload.length < 0x10000) header = Buffer.from([0x81, 126, payload.length >> 8, payload.length & 0xff]);
  else throw new Error('frame too long for this test server');
  return Buffer.concat([header, payload]);
}

/** The first complete client frame in `buffer`: `{ opcode, payload, size }`, or null. */
function readFrame(buffer) {
  if (buffer.length < 2) return null;
  const opcode = buffer[0] & 0x0f;
  const masked = (buffer[1] & 0x80) !== 0;
  let length = buffer[1] & 0x7f;
  let at = 2;
  if (length === 126) {
    if (buffer.length < 4) return null;
    length = buffer.readUInt16BE(2);
    at = 4;
  } else if (length === 127) {
    if (buffer.length < 10) return null;
    length = Number(buffer.readBigUInt64BE(2));
    at = 10;
  }
  const mask = masked ? buffer.subarray(at, at + 4) : null;
  if (masked) at += 4;
  if (buffer.length < at + length) return null;
  const payload = Buffer.from(buffer.subarray(at, at + length));
  if (mask) for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i % 4];
  return { opcode, payload, size: at + length };
}

/** A WebSocket server that answers the hello with a welcome, then nothing more. */
async function silentAfterWelcome(t) {
  const received = [];
  const server = http.createServer((_, response) => response.writeHead(400).end());
  server.on('upgrade', (request, socket, head) => {
    const accept = createHash('sha1')
      .update(request.headers['sec-websocket-key'] + WS_GUID)
      .digest('base64');
    let response =
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${accept}\r\n`;
    if ((request.headers['sec-websocket-protocol'] ?? '').includes('beckon.v1')) {
      response += 'Sec-WebSocket-Protocol: beckon.v1\r\n';
    }
    socket.write(response + '\r\n');
    let buffer = Buffer.from(head);
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (let frame = readFrame(buffer); frame !== null; frame = readFrame(buffer)) {
        buffer = buffer.subarray(frame.size);
        if (frame.opcode !== 1) continue; // close, pings: unanswered too
        const message = JSON.parse(frame.payload.toString('utf8'));
        received.push(message.type);
        if (message.type === 'hello') socket.write(textFrame(WELCOME));
      }
    });
  });
  return { ...(await listen(t, server)), received };
}

for (const dispatch of ['thread', 'pool', 'poll']) {
  test(`[${dispatch}] logout while a login waits for the server cancels the login: SHUTDOWN, then DISCONNECTED (LOGOUT)`, async (t) => {
    const server = await silentServer(t);
    const { client } = clients(t, server.url, { dispatch });
    // The client's request timeout is long: only the logout can end the login.
    const eve = client({ requestTimeoutMs: 600_000 });
    const events = record(eve);
    let settled = false;
    // Observed at once: in thread and pool mode the rejection may come before
    // the logout resolves.
    const login = eve.login('eve').then(
      () => (settled = 'fulfilled'),
      (error) => {
        settled = true;
        return error;
      },
    );
    await until(() => server.accepted.count > 0, 5000, 'the client to connect');
    await until(() => events.some((e) => e.stateName === 'CONNECTING'), 5000, 'CONNECTING');
    assert.equal(settled, false, 'the silent server answered the login?');

    await within(eve.logout(), 5000, 'the logout');
    const error = await within(login, 5000, 'the login');
    assert.ok(error instanceof beckon.ShutdownError, `the login ended with ${error}`);
    assert.equal(error.code, beckon.ErrorCode.SHUTDOWN);
    await until(() => events.some((e) => e.stateName === 'DISCONNECTED'), 5000, 'DISCONNECTED');
    assert.deepEqual(
      events.map((e) => `${e.stateName}:${e.reasonName}`),
      ['CONNECTING:LOGIN', 'DISCONNECTED:LOGOUT'],
    );
    assert.equal(eve.info().userId, null);
    assert.equal(eve.connectionState, beckon.ConnectionState.DISCONNECTED);
    await within(eve.close(), 5000, 'close');
  });
}

test("a silent server fails the login after the client's request timeout", async (t) => {
  const server = await silentServer(t);
  const { client } = clients(t, server.url);
  const hal = client({ requestTimeoutMs: 300 });
  await assert.rejects(within(hal.login('hal'), 5000, 'the login'), (error) => {
    assert.ok(error instanceof beckon.RequestTimeoutError, `${error.name}: ${error.message}`);
    assert.match(error.message, /300 ms/);
    return true;
  });
});

test('per-operation request timeouts fire, each with its own duration, under a long client timeout', async (t) => {
  const server = await silentAfterWelcome(t);
  const { client } = clients(t, server.url);
  const fay = client({ requestTimeoutMs: 600_000 });
  await within(fay.login('fay'), 5000, 'the login (hello, welcome)');
  const id = '0123456789abcdef0123456789abcdef';
  const started = Date.now();
  const operations = {
    send: [fay.sendInvitation(['gus'], { timeoutSeconds: 30, requestTimeoutMs: 200 }), 200],
    accept: [fay.acceptInvitation(id, { requestTimeoutMs: 300 }), 300],
    refuse: [fay.refuseInvitation(id, { requestTimeoutMs: 300, extendedData: 'no' }), 300],
    cancel: [fay.cancelInvitation(id, { invitees: ['gus'], requestTimeoutMs: 400 }), 400],
  };
  for (const [name, [promise, ms]] of Object.entries(operations)) {
    const error = await within(
      promise.then(
        () => assert.fail(`${name} succeeded against a silent server`),
        (e) => e,
      ),
      5000,
      name,
    );
    assert.ok(error instanceof beckon.RequestTimeoutError, `${name}: ${error.name}: ${error.message}`);
    assert.equal(error.message, `no answer from the server within ${ms} ms`);
  }
  assert.ok(Date.now() - started < 5000);
  for (const type of ['hello', 'send', 'accept', 'refuse', 'cancel']) {
    assert.ok(server.received.includes(type), `the server never received a ${type}: ${server.received}`);
  }
});
