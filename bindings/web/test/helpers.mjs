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
 * bytes from the client (lost if cut, else handed over together by `release()`).
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
    this.server = net.createServer((down) => {
      const up = net.connect(this.targetPort, '127.0.0.1');
      const pair = { down, up };
      this.pairs.add(pair);
      const end = () => {
        down.destroy();
        up.destroy();
        this.pairs.delete(pair);
      };
      down.on('data', (data) => up.write(data));
      pair.held = [];
      up.on('data', (data) => {
        if (this.hold) pair.held.push(data);
        else down.write(data);
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

  async stop() {
    this.cut();
    await new Promise((r) => this.server.close(r));
  }
}
