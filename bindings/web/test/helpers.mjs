// For the web client's tests: real `beckon-server` processes on 127.0.0.1
// with ephemeral ports (started here, killed by PID at the end), clients that
// record their events, and waits that are always bounded.
import { spawn, execFileSync } from 'node:child_process';
import net from 'node:net';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { Client } from '../dist/beckon.js';

export const here = dirname(fileURLToPath(import.meta.url));
export const webDir = resolve(here, '..');
export const root = resolve(webDir, '../..');
export const serverBin = process.env.BECKON_SERVER ?? join(root, 'target/debug/beckon-server');
/** Every wait is bounded by this. */
export const WAIT_MS = 15_000;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a truthy value, at most `ms`. */
export async function until(check, what, ms = WAIT_MS) {
  const end = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

const temps = [];
/** A directory of this test process's own, removed when it exits. */
export function tempDir(what) {
  const dir = mkdtempSync(join(tmpdir(), `beckon-web-${what}-`));
  temps.push(dir);
  return dir;
}

const running = new Set();
process.on('exit', () => {
  for (const server of running) server.killNow();
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

/**
 * A beckon-server process. Options: dev (default true), secretFile, store
 * ('memory' | 'sqlite'), dataDir, port (0: any), extra flags.
 */
export class Server {
  static async start(options = {}) {
    const server = new Server(options);
    await server.started;
    return server;
  }

  constructor({ dev = true, secretFile = null, store = 'memory', dataDir = null, port = 0, extra = [] } = {}) {
    this.options = { dev, secretFile, store, dataDir, port, extra };
    this.dir = tempDir('server');
    this.started = this.spawn();
  }

  async spawn() {
    const { dev, secretFile, store, dataDir, port, extra } = this.options;
    const portFile = join(this.dir, `ports-${Date.now()}.json`);
    const args = ['serve', '--listen', `127.0.0.1:${port}`, '--admin', '127.0.0.1:0', '--store', store];
    args.push('--port-file', portFile, '--exit-on-stdin-close');
    if (dataDir) args.push('--data-dir', dataDir);
    if (dev) args.push('--dev');
    if (secretFile) args.push('--secret-file', secretFile);
    args.push(...extra);
    this.logFile = join(this.dir, 'stderr.log');
    this.child = spawn(serverBin, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    this.child.stderr.on('data', (chunk) => {
      this.logText = (this.logText ?? '') + chunk.toString();
    });
    this.exited = new Promise((r) => this.child.once('exit', (code, signal) => r({ code, signal })));
    running.add(this);
    const ports = await until(() => {
      if (this.child.exitCode !== null) throw new Error(`beckon-server exited at start: ${this.logText}`);
      try {
        return JSON.parse(readFileSync(portFile, 'utf8'));
      } catch {
        return null;
      }
    }, 'beckon-server to start');
    this.port = Number(ports.listen.split(':').pop());
    this.adminPort = Number(ports.admin.split(':').pop());
    this.url = `ws://127.0.0.1:${this.port}`;
    this.options.port = this.port; // a restart binds the same port
  }

  get pid() {
    return this.child.pid;
  }

  /** The process's state letter in /proc (R, S, T for stopped, ...). */
  procState() {
    try {
      return readFileSync(`/proc/${this.child.pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0];
    } catch {
      return '?';
    }
  }

  /** Stops the process (SIGSTOP) and waits until every thread of it has stopped. */
  async pause() {
    process.kill(this.child.pid, 'SIGSTOP');
    await until(() => this.procState() === 'T', 'beckon-server to stop');
  }

  resume() {
    process.kill(this.child.pid, 'SIGCONT');
  }

  /** Sends `signal` to the process (by its PID) and waits for it to exit. */
  async kill(signal = 'SIGKILL') {
    if (this.child.exitCode === null && this.child.signalCode === null) process.kill(this.child.pid, signal);
    await withTimeout(this.exited, WAIT_MS, 'beckon-server to exit');
    running.delete(this);
  }

  killNow() {
    try {
      if (this.child.exitCode === null && this.child.signalCode === null) process.kill(this.child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }

  /** Starts the same server again on the same port (after kill()). */
  async restart() {
    // The port was just freed; another process could take it, so retry briefly.
    for (let attempt = 0; ; attempt++) {
      try {
        this.started = this.spawn();
        await this.started;
        return;
      } catch (error) {
        if (attempt >= 20) throw error;
        await sleep(100);
      }
    }
  }

  async stop() {
    await this.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }

  log() {
    return this.logText ?? '';
  }
}

export async function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A token of the recipe in docs/PROTOCOL.md ("Tokens"). */
export function mintToken(secret, user, expiry) {
  const mac = createHmac('sha256', secret).update(`beckon-token-v1\n${user}\n${expiry}`).digest('hex');
  return `v1.${expiry}.${mac}`;
}

/** A token minted by `beckon-server token`. */
export function serverToken(secretFile, user, ttl = 3600) {
  return execFileSync(serverBin, ['token', '--secret-file', secretFile, '--user', user, '--ttl', String(ttl)], {
    encoding: 'utf8',
  }).trim();
}

/** A web client in Node (with `ws`) that records every event it dispatches. */
const made = new Set();
export function makeClient(url, options = {}) {
  const client = new Client({ serverUrl: url, WebSocket, ...options });
  made.add(client);
  client.events = [];
  client.on('event', (event) => client.events.push(event));
  return client;
}

/** The connection state changes `c` dispatched, as `STATE/REASON`. */
export const stateChanges = (c) =>
  c.events.filter((e) => e.kind === 'CONNECTION_STATE_CHANGED').map((e) => `${e.state}/${e.reason}`);

/**
 * A server (grace period 30 s), a proxy in front of it, and two clients not
 * logged in: alice straight to the server, bob through the proxy (which a
 * test cuts or makes swallow). What stops them goes on `cleanup`.
 */
export async function bobBehindProxy(cleanup) {
  const server = await Server.start({ extra: ['--grace-secs', '30'] });
  cleanup.push(() => server.stop());
  const proxy = await Proxy.start(server.port);
  cleanup.push(() => proxy.stop());
  const alice = makeClient(server.url);
  const bob = makeClient(proxy.url);
  cleanup.push(() => alice.close(), () => bob.close());
  return { server, proxy, alice, bob };
}

/** Closes every client makeClient made (in `after`: an open client keeps Node running). */
export async function closeClients() {
  await Promise.all([...made].map((c) => withTimeout(c.close(), WAIT_MS, 'close').catch(() => {})));
  made.clear();
}

/** Waits for an event of `client` matching `match` (an object of fields, or a function). */
export function waitEvent(client, match, what = JSON.stringify(match), ms = WAIT_MS) {
  const test = typeof match === 'function' ? match : (e) => Object.entries(match).every(([k, v]) => e[k] === v);
  return until(() => client.events.find(test), `${client.userId ?? '?'}: ${what}`, ms);
}

export function eventsOf(client, kind, invitationId = null) {
  return client.events.filter((e) => e.kind === kind && (invitationId === null || e.invitationId === invitationId));
}

/** Expects `promise` to reject with an error of class `Class` and code name `codeName`. */
export async function rejectsWith(assert, promise, Class, codeName) {
  await assert.rejects(withTimeout(promise, WAIT_MS, `a ${codeName}`), (error) => {
    assert.ok(error instanceof Class, `${error?.name}: ${error?.message} is not a ${Class.name}`);
    assert.equal(error.codeName, codeName);
    return true;
  });
}

export function writeSecret(dir, secret = 'a-long-random-secret-for-the-web-tests') {
  const file = join(dir, 'secret');
  writeFileSync(file, secret);
  return { file, secret };
}

export { existsSync };

/**
 * A TCP proxy in front of a server, to break connections the way a network
 * does: `cut()` drops every connection, `hold = true` keeps the server's
 * bytes from the client (lost if cut, else handed over together by
 * `release()`), `swallowAfter(pattern)` drops what clients write from the
 * moment a server frame contains `pattern` (bytes the client wrote that never
 * reach the server) until `cutSwallowing()`. It reads the WebSocket frames
 * passing each way: `clientFrames(conn)` and `serverFrames(conn)`, per
 * connection in the order they were opened (0, 1, ...), each
 * `{ conn, text, json, swallowed }`. With `dropAfterWelcome` set, each
 * connection ends right after the server's welcome has reached the client.
 */
export class Proxy {
  static async start(targetPort) {
    const proxy = new Proxy(targetPort);
    await new Promise((r) => proxy.server.listen(0, '127.0.0.1', r));
    proxy.port = proxy.server.address().port;
    proxy.url = `ws://127.0.0.1:${proxy.port}`;
    return proxy;
  }

  constructor(targetPort) {
    this.targetPort = targetPort;
    this.hold = false;
    this.pairs = new Set();
    this.connections = 0;
    /** Every text frame seen, both ways. */
    this.frames = [];
    this.swallowPattern = null;
    this.swallowing = false;
    this.swallowed = 0;
    /** While set, a connection ends right after the server's welcome has passed. */
    this.dropAfterWelcome = false;
    this.server = net.createServer((down) => {
      const up = net.connect(this.targetPort, '127.0.0.1');
      const conn = this.connections++;
      const pair = { down, up, conn };
      this.pairs.add(pair);
      const end = () => {
        down.destroy();
        up.destroy();
        this.pairs.delete(pair);
      };
      const fromClient = new FrameReader((text) => this.frames.push(frameOf(conn, 'client', text, this.swallowing)));
      const fromServer = new FrameReader((text) => {
        const frame = frameOf(conn, 'server', text, false);
        this.frames.push(frame);
        if (this.dropAfterWelcome && frame.json?.type === 'welcome') pair.welcomed = true;
        if (this.swallowPattern !== null && text.includes(this.swallowPattern)) {
          // From here on (before the client can read this frame) what clients write is lost.
          this.swallowPattern = null;
          this.swallowing = true;
        }
      });
      down.on('data', (data) => {
        fromClient.push(data);
        if (this.swallowing) this.swallowed += data.length;
        else up.write(data);
      });
      pair.held = [];
      up.on('data', (data) => {
        fromServer.push(data);
        if (this.hold) pair.held.push(data);
        else down.write(data);
        if (pair.welcomed) {
          // The welcome reaches the client, then the connection ends.
          down.end();
          up.destroy();
        }
      });
      down.on('close', end);
      up.on('close', end);
      down.on('error', end);
      up.on('error', end);
    });
  }

  /** Stops holding: what was held goes to the client in one write (one read there). */
  release() {
    this.hold = false;
    for (const pair of this.pairs) {
      if (pair.held.length > 0) pair.down.write(Buffer.concat(pair.held));
      pair.held = [];
    }
  }

  cut() {
    for (const { down, up } of this.pairs) {
      down.destroy();
      up.destroy();
    }
    this.pairs.clear();
  }

  /** From the first server frame containing `pattern` on, what clients write is dropped, until cutSwallowing(). */
  swallowAfter(pattern) {
    this.swallowPattern = pattern;
  }

  /** From now on, what clients write is dropped, until cutSwallowing(). */
  swallowNow() {
    this.swallowPattern = null;
    this.swallowing = true;
  }

  /** Stops swallowing and closes every connection through the proxy. */
  cutSwallowing() {
    this.swallowPattern = null;
    this.cut();
    this.swallowing = false;
  }

  /** The text frames a client wrote on connection `conn` (all connections if null). */
  clientFrames(conn = null) {
    return this.frames.filter((f) => f.from === 'client' && (conn === null || f.conn === conn));
  }

  /** The text frames the server wrote on connection `conn` (all connections if null). */
  serverFrames(conn = null) {
    return this.frames.filter((f) => f.from === 'server' && (conn === null || f.conn === conn));
  }

  async stop() {
    this.cut();
    await new Promise((r) => this.server.close(r));
  }
}

function frameOf(conn, from, text, swallowed) {
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { conn, from, text, json, swallowed };
}

/**
 * Reads one direction of a WebSocket connection: skips the HTTP upgrade
 * (request or response), then hands over each text message (unmasked,
 * fragments joined). A compressed message (permessage-deflate) is handed over
 * as '<compressed>'.
 */
class FrameReader {
  constructor(onText) {
    this.onText = onText;
    this.buffer = Buffer.alloc(0);
    this.upgraded = false;
    this.parts = null;
  }

  push(data) {
    this.buffer = Buffer.concat([this.buffer, data]);
    if (!this.upgraded) {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      this.buffer = this.buffer.subarray(end + 4);
      this.upgraded = true;
    }
    for (;;) {
      const b = this.buffer;
      if (b.length < 2) return;
      let length = b[1] & 0x7f;
      let at = 2;
      if (length === 126) {
        if (b.length < 4) return;
        length = b.readUInt16BE(2);
        at = 4;
      } else if (length === 127) {
        if (b.length < 10) return;
        length = Number(b.readBigUInt64BE(2));
        at = 10;
      }
      const masked = (b[1] & 0x80) !== 0;
      const maskAt = at;
      if (masked) at += 4;
      if (b.length < at + length) return;
      const payload = Buffer.from(b.subarray(at, at + length));
      if (masked) for (let i = 0; i < length; i++) payload[i] ^= b[maskAt + (i & 3)];
      this.buffer = b.subarray(at + length);
      const fin = (b[0] & 0x80) !== 0;
      const compressed = (b[0] & 0x40) !== 0;
      const opcode = b[0] & 0x0f;
      if (opcode === 1) {
        this.parts = [payload];
      } else if (opcode === 0 && this.parts) {
        this.parts.push(payload);
      } else {
        continue; // control frames, binary
      }
      if (fin) {
        this.onText(compressed ? '<compressed>' : Buffer.concat(this.parts).toString('utf8'));
        this.parts = null;
      }
    }
  }
}
