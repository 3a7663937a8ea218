// The link: one per login, the only owner of the WebSocket and of the
// session's state (requests waiting for results, the newest token, what the
// application was told, the session to resume). It connects, says hello,
// serves the connection (acks, heartbeats), and when the connection drops it
// reconnects with backoff and jitter, resumes the session (or logs in afresh
// and catches up from a snapshot), and re-sends what was not answered, until
// the session ends. The behaviour of the native client's link
// (src/transport/ws/link.rs), on the browser's WebSocket.

import type { ConnectionReason } from './constants.js';
import { SUBPROTOCOL } from './constants.js';
import {
  BeckonError,
  InternalError,
  NetworkError,
  PayloadTooLargeError,
  RequestTimeoutError,
  ServerError,
  ShutdownError,
  fromWire,
} from './errors.js';
import {
  ackFrame,
  byteLength,
  decodeServerFrame,
  helloFrame,
  isFatal,
  receiptFrame,
  requestFrame,
  syncFrame,
  DEFAULT_LIMITS,
  type ServerFrame,
  type Welcome,
  type WirePush,
  type WireLimits,
} from './protocol.js';
import { Receipts } from './receipts.js';
import { Requests, type Pending, type RequestKind } from './requests.js';
import { Tracker } from './tracker.js';
import type { WebSocketConstructor, WebSocketLike } from './types.js';

/** Reconnect delays double from the first to the last, each with jitter (50% to 100%). */
const BACKOFF_FIRST_MS = 250;
const BACKOFF_LAST_MS = 30_000;
/**
 * A connection that stayed up as long as the wait before it, or this long,
 * was healthy: the next reconnect starts from the first delay again. Delays
 * start over only then, so a server that welcomes and then closes at once is
 * redialled ever more slowly, not four times a second.
 */
const BACKOFF_STABLE_MS = 10_000;
/** Acknowledge received frames after this many, or at the next heartbeat. */
const ACK_EVERY = 64;
/** How long a logout waits for the server's answer before closing anyway. */
const LOGOUT_WAIT_MS = 1000;
/** The most invitation ids one sync may name (Snapshot::MAX_KNOWN). */
const MAX_KNOWN = 1000;
const OPEN = 1;

/** What the link tells its client. Never called after the link is closed. */
export interface LinkHooks {
  /** RECONNECTING after a drop, CONNECTED after a reconnect. */
  changed(state: 'RECONNECTING' | 'CONNECTED', reason: ConnectionReason): void;
  /** A push that passed the tracker (invitation events, token_will_expire). */
  push(push: WirePush): void;
  /** The session is over (kicked out, token expired, a refused re-login): DISCONNECTED with this reason. */
  ended(reason: ConnectionReason): void;
}

export interface LinkOptions {
  url: string;
  user: string;
  device: string;
  token: string;
  WebSocket: WebSocketConstructor;
  timeoutMs: number;
  hooks: LinkHooks;
}

/** One connection attempt: the socket, and its welcome once it comes. */
interface Dial {
  ws: WebSocketLike;
  welcomed: Promise<Welcome>;
  /** Frames that came after the welcome before the link took the socket over (a resume's replay). */
  early: string[];
  /** Gives up on the attempt; a welcome that still comes is logged out. */
  abandon(): void;
}

type Phase = 'opening' | 'open' | 'away' | 'closed';

export class Link {
  private phase: Phase = 'opening';
  private readonly requests = new Requests();
  private readonly tracker: Tracker;
  private token: string;
  /**
   * The receipts sent whose effect was not seen yet (and those queued while
   * away): sent again, first, after every reconnect.
   */
  private readonly receipts: Receipts;
  /** The login's sync came while no connection was up: sent once after the reconnect. */
  private syncWaiting = false;
  private session: string | null = null;
  /** The last `seq` received in the current session, and the last one acknowledged. */
  private seen = 0;
  private acked = 0;
  private welcome: Welcome | null = null;
  private ws: WebSocketLike | null = null;
  private dial: Dial | null = null;
  private reason: ConnectionReason = 'NETWORK';
  private backoffMs = BACKOFF_FIRST_MS;
  /** The wait (with jitter) before the last dial. */
  private waitedMs = 0;
  /** When the current (or last) connection was welcomed. */
  private connectedAt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  private lastHeard = 0;
  private lastBeat = 0;
  private lastTick = 0;
  /** When the first ping or probe since the server was last heard went out. */
  private askedAt: number | null = null;
  private probing = false;
  /** A logout under way: its request id, and what its answer (or the close) settles. */
  private loggingOutId = 0;
  private loggingOut: ((done: boolean) => void) | null = null;
  /** Rejects the first connection's wait when a logout cancels the login. */
  private cancelOpen: ((error: unknown) => void) | null = null;
  /**
   * The first sync written in the current session (the login's plain one, or
   * the link's with `known` after a fresh session): sent again after a resume
   * whose welcome says the server never had it (`synced: false`). A sync lost
   * with a dropped connection would leave a resumed session without pushes;
   * a repeated sync hands over only what was not handed yet.
   */
  private syncSent: string | null = null;
  /**
   * A push, a snapshot or a welcome saying `synced: true` showed the server
   * has the session's sync. Only consulted for an older server, whose welcome
   * does not say `synced`: then the sync is sent again after a resume until
   * this is true.
   */
  private syncConfirmed = false;
  /** Frames of the current connection not handled yet; `held` until the client is ready. */
  private inbox: string[] = [];
  private held = false;
  private pumping = false;
  /** The socket closed; handled once the frames before the close are. */
  private closing = false;

  constructor(private readonly options: LinkOptions) {
    this.token = options.token;
    this.tracker = new Tracker(options.user);
    this.receipts = new Receipts(options.user);
  }

  /** The server's limits (the defaults before the first welcome). */
  get limits(): WireLimits {
    return this.welcome?.limits ?? DEFAULT_LIMITS;
  }

  /** The first connection: resolves at the welcome, or fails with why the login failed. */
  async open(): Promise<void> {
    const dial = this.startDial(null);
    this.dial = dial;
    const cancelled = new Promise<never>((_, reject) => (this.cancelOpen = reject));
    let welcome: Welcome;
    try {
      welcome = await Promise.race([dial.welcomed, cancelled]);
    } catch (error) {
      if (this.phase !== 'opening') {
        // A logout came first; a welcome that still comes is logged out by the dial.
        throw new ShutdownError('the login was cancelled (logout or close) before the server welcomed it');
      }
      this.phase = 'closed';
      this.dial = null;
      throw error;
    } finally {
      this.cancelOpen = null;
    }
    this.serve(dial.ws, welcome, dial.early);
  }

  /**
   * Starts taking the server's frames: called once the client has told the
   * application CONNECTED (so the replay of a resumed session, which came
   * with the welcome, follows it).
   */
  ready(): void {
    this.held = false;
    if (!this.pumping) this.pump();
  }

  /** Sends a request (or keeps it for the next connection); settles exactly once. */
  request(type: string, key: string | null, body: unknown, timeoutMs: number, what: RequestKind): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.phase === 'closed' || this.phase === 'opening') {
        reject(new NetworkError('the session is over'));
        return;
      }
      const id = this.requests.takeId();
      const frame = requestFrame(type, id, key, body);
      // A frame over the server's limit would make it close the connection
      // (and the client send it again after the reconnect, in a loop).
      const limit = this.welcome?.max_frame_bytes ?? 0;
      const size = byteLength(frame);
      if (limit > 0 && size > limit) {
        reject(
          new PayloadTooLargeError(
            `request: its frame is ${size} bytes, over the server's max_frame_bytes (${limit}); ` +
              'send less extended data or a smaller notification',
          ),
        );
        return;
      }
      const pending: Pending = { id, frame, what, resolve, reject };
      this.requests.add(pending, what.kind === 'probe' ? null : timeoutMs);
      if (this.phase === 'open') this.write(frame);
    });
  }

  /** The login's sync (a notice: no result): written now, or once after the reconnect. */
  sync(): void {
    if (this.phase === 'open') this.writeSync(syncFrame(null));
    else if (this.phase === 'away') this.syncWaiting = true;
  }

  /**
   * The receipt of rule 4 for an invitation (a notice: no result): written
   * now if connected, and kept until its effect shows (see receipts.ts), so
   * that every reconnect sends it again; unless the application was already
   * told it would change nothing (this user past INVITING/OFFLINE in it, or
   * it ended): then it is sent but not kept.
   */
  receipt(invitationId: string): void {
    if (this.phase !== 'open' && this.phase !== 'away') return;
    if (this.tracker.pastReceipt(invitationId)) {
      this.receipts.forget(invitationId);
    } else {
      const ringingAtMost = this.limits.max_timeout_secs > 0 ? this.limits.max_timeout_secs : DEFAULT_LIMITS.max_timeout_secs;
      this.receipts.sent(invitationId, ringingAtMost * 1000);
    }
    // While away, a kept receipt goes with the others after the reconnect.
    if (this.phase === 'open') this.write(receiptFrame(invitationId));
  }

  /**
   * Ends the session at the server (rule 7 applies there) and here: waiting
   * requests fail with SHUTDOWN. Resolves once the server answered the logout,
   * or closed, or after a second.
   */
  async logout(): Promise<void> {
    const phase = this.phase;
    if (phase === 'closed') return;
    this.phase = 'closed';
    this.finish(new ShutdownError('the client logged out or was closed before the operation completed'));
    if (phase === 'open' && this.ws) {
      const ws = this.ws;
      const done = new Promise<boolean>((resolve) => (this.loggingOut = resolve));
      const id = this.requests.takeId();
      this.loggingOutId = id;
      this.write(requestFrame('logout', id, null, null));
      const timer = setTimeout(() => this.loggingOut?.(false), LOGOUT_WAIT_MS);
      await done;
      clearTimeout(timer);
      this.loggingOut = null;
      this.drop(ws);
    } else if (this.dial) {
      // Opening or reconnecting: a welcome that still comes is logged out, so
      // no session is left at the server for its grace period.
      const dial = this.dial;
      this.dial = null;
      dial.abandon();
      this.cancelOpen?.(new ShutdownError('cancelled'));
      await Promise.race([dial.welcomed.catch(() => undefined), sleep(LOGOUT_WAIT_MS)]);
    }
  }

  // ---- connecting ----------------------------------------------------------

  /** Opens a WebSocket and says hello; the welcome (or why not) within the request timeout. */
  private startDial(resume: { session: string; seq: number } | null): Dial {
    const { url, user, device, WebSocket } = this.options;
    let ws: WebSocketLike;
    let settle!: { resolve: (w: Welcome) => void; reject: (e: BeckonError) => void };
    const welcomed = new Promise<Welcome>((resolve, reject) => (settle = { resolve, reject }));
    let done = false;
    let abandoned = false;
    let accepted = false;
    const early: string[] = [];
    const finish = (error: BeckonError | null, welcome?: Welcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (error) {
        detach(ws);
        closeQuietly(ws);
        settle.reject(error);
      } else {
        settle.resolve(welcome!);
      }
    };
    const timer = setTimeout(
      () => finish(new RequestTimeoutError(`${url}: no welcome from the server within ${this.options.timeoutMs} ms`)),
      this.options.timeoutMs,
    );
    try {
      ws = new WebSocket(url, SUBPROTOCOL);
    } catch (error) {
      ws = inertSocket();
      finish(new NetworkError(`${url}: ${describe(error)}`, { cause: error }));
      return { ws, welcomed, early, abandon() {} };
    }
    ws.onopen = () => {
      try {
        ws.send(helloFrame(user, device, this.token, resume));
      } catch (error) {
        finish(new NetworkError(`${url}: ${describe(error)}`));
      }
    };
    ws.onmessage = (event) => {
      if (typeof event.data !== 'string') return; // binary frames are not part of the protocol
      if (accepted) {
        // The `ws` package hands over a whole read at once: what follows the
        // welcome may come before the link has taken the socket over.
        early.push(event.data);
        return;
      }
      let frame: ServerFrame;
      try {
        frame = decodeServerFrame(event.data);
      } catch (error) {
        finish(new ServerError(`malformed frame from the server: ${describe(error)}`));
        return;
      }
      if (frame.type === 'welcome') {
        if (abandoned) {
          // The login or reconnect was given up: end the session it made.
          detach(ws);
          try {
            ws.send(requestFrame('logout', Math.max(frame.last_request + 1, 1), null, null));
          } catch {
            /* closing anyway */
          }
          setTimeout(() => closeQuietly(ws), 200);
          finish(new ShutdownError('abandoned'));
          return;
        }
        accepted = true;
        finish(null, frame);
      } else if (frame.type === 'error') {
        finish(fromWire(frame.code, frame.message));
      } else {
        finish(new ServerError('the server did not welcome the login'));
      }
    };
    let failure = '';
    ws.onerror = (event: { message?: string }) => {
      // The close event follows; `ws` says why here (a browser says nothing).
      if (typeof event?.message === 'string') failure = event.message;
    };
    ws.onclose = (event: { code?: number; reason?: string }) => {
      const why = failure || (event?.reason ? `${event.code}: ${event.reason}` : `close code ${event?.code ?? '?'}`);
      finish(new NetworkError(`${url}: the connection closed before the server welcomed it (${why})`));
    };
    return {
      ws,
      welcomed,
      early,
      abandon() {
        // The attempt goes on (within its deadline): a reconnect's hello
        // resumes the session it left, whose welcome is then logged out at
        // once rather than left to the server's grace period.
        abandoned = true;
      },
    };
  }

  // ---- serving a connection ------------------------------------------------

  private serve(ws: WebSocketLike, welcome: Welcome, early: string[]): void {
    this.phase = 'open';
    this.connectedAt = Date.now();
    this.ws = ws;
    this.dial = null;
    this.welcomed(welcome);
    // Frames are taken in order, one per task (see pump), starting with those
    // that came with the welcome, once ready() says the client is.
    this.inbox = [...early];
    this.held = true;
    this.closing = false;
    this.reason = 'NETWORK';
    this.lastHeard = this.lastBeat = this.lastTick = Date.now();
    this.askedAt = null;
    this.probing = false;
    ws.onmessage = (event) => {
      if (this.ws !== ws) return;
      this.heard();
      if (typeof event.data !== 'string') return;
      this.inbox.push(event.data);
      if (!this.pumping && !this.held) this.pump();
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      if (this.loggingOut) {
        this.loggingOut(false);
        return;
      }
      // The frames that came before the close go first: a kicked_out, a
      // shutdown or a token_expired changes what the close means.
      this.closing = true;
      if (!this.pumping && !this.held) this.pump();
    };
    ws.onerror = () => {};
    // The `ws` package can ping and shows the server's pings; a browser
    // answers pings by itself and shows nothing (see heartbeat()).
    const node = ws as unknown as { on?: (event: string, f: () => void) => void };
    if (typeof node.on === 'function') {
      const heard = () => {
        if (this.ws === ws) this.heard();
      };
      node.on('ping', heard);
      node.on('pong', heard);
    }
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.tickMs());
    // Closed between the welcome and now (the `ws` package can say both in
    // one tick): its close event went to the dial's handler.
    if (ws.readyState > OPEN) this.closing = true;
  }

  /**
   * Handles the next frame, and the one after in a later task. The `ws`
   * package hands over every frame of one read in the same tick; taking one
   * per task lets the promise a result settles run its continuations before
   * the next frame's events, as in a browser (an inviter learns an
   * invitation's id before any event about it).
   */
  private pump(): void {
    const ws = this.ws;
    const data = this.inbox.shift();
    if (data === undefined || ws === null) {
      this.pumping = false;
      if (ws !== null && this.closing) this.lost(this.reason);
      return;
    }
    this.pumping = true;
    this.text(data);
    nextTask(() => {
      if (this.ws === ws) this.pump();
      else this.pumping = false;
    });
  }

  private text(data: string): void {
    let frame: ServerFrame;
    try {
      frame = decodeServerFrame(data);
    } catch {
      return; // a frame this client does not know (a newer server's): ignored
    }
    this.received(frame);
    if (this.phase === 'open' && this.seen >= this.acked + ACK_EVERY) this.ack();
  }

  private heartbeatMs(): number {
    const secs = Math.min(300, Math.max(1, this.welcome?.heartbeat_secs ?? 15));
    return secs * 1000;
  }

  private heard(): void {
    this.lastHeard = Date.now();
    this.askedAt = null;
  }

  /**
   * Pings at the server's heartbeat interval and reconnects when the server
   * has been silent for three intervals and did not answer a question asked
   * at least one interval ago. A browser cannot ping and does not see the
   * server's pings, so its question, after two silent intervals, is a request
   * for one history entry. Timers of a background tab (or a suspended
   * machine) may fire a minute late: after such a gap the client asks first
   * and judges later.
   */
  private heartbeat(): void {
    const ws = this.ws;
    if (this.phase !== 'open' || !ws) return;
    const now = Date.now();
    const beat = this.heartbeatMs();
    const late = now - this.lastTick > Math.max(2 * this.tickMs(), beat / 2);
    this.lastTick = now;
    const silence = now - this.lastHeard;
    if (!late && silence >= beat * 3 && this.askedAt !== null && now - this.askedAt >= beat) {
      this.lost('NETWORK');
      return;
    }
    if (!late && now - this.lastBeat < beat) return;
    this.lastBeat = now;
    const pinger = ws as unknown as { ping?: () => void };
    if (typeof pinger.ping === 'function') {
      try {
        pinger.ping();
      } catch {
        /* the close event follows */
      }
      this.askedAt ??= now;
    } else if ((late || silence >= beat * 2) && !this.probing) {
      this.probing = true;
      this.askedAt ??= now;
      this.request('query_invitations', 'query', { limit: 1 }, 0, { kind: 'probe' })
        .catch(() => undefined)
        .finally(() => (this.probing = false));
    }
    if (this.seen > this.acked) this.ack();
  }

  private tickMs(): number {
    return Math.max(100, Math.min(1000, this.heartbeatMs() / 4));
  }

  private ack(): void {
    this.acked = this.seen;
    this.write(ackFrame(this.seen));
  }

  private welcomed(welcome: Welcome): void {
    if (!welcome.resumed) this.seen = 0;
    this.acked = this.seen;
    this.welcome = welcome;
    this.session = welcome.session;
    this.requests.idsAbove(welcome.last_request);
  }

  private write(frame: string): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== OPEN) return; // the close event follows; requests wait in the table
    try {
      ws.send(frame);
    } catch {
      /* the close event follows */
    }
  }

  /** One frame from the server. */
  private received(frame: ServerFrame): void {
    if (this.phase === 'closed') {
      // Logging out: only the logout's own result matters now.
      if (frame.type === 'result' && frame.id === this.loggingOutId) this.loggingOut?.(true);
      return;
    }
    switch (frame.type) {
      case 'result': {
        this.seen = Math.max(this.seen, frame.seq);
        if (frame.id === this.loggingOutId && this.loggingOut) {
          this.loggingOut(true);
          return;
        }
        this.answer(frame.id, frame.ok, frame.error);
        return;
      }
      case 'push': {
        this.seen = Math.max(this.seen, frame.seq);
        this.syncConfirmed = true;
        const push = frame.push;
        if (push.type === 'kicked_out' || push.type === 'token_expired') {
          const kicked = push.type === 'kicked_out';
          this.end(
            new NetworkError(kicked ? 'kicked out: the device logged in elsewhere' : 'the token expired'),
            kicked ? 'KICKED_OUT' : 'TOKEN_EXPIRED',
          );
          return;
        }
        this.receipts.confirmedBy(push);
        const passed = this.tracker.pass(push);
        if (passed) this.options.hooks.push(passed);
        return;
      }
      case 'snapshot': {
        this.seen = Math.max(this.seen, frame.seq);
        this.syncConfirmed = true;
        this.receipts.confirmedBySnapshot(frame.snapshot);
        for (const push of this.tracker.missed(frame.snapshot)) {
          if (this.phase !== 'open') return;
          this.options.hooks.push(push);
        }
        return;
      }
      case 'shutdown':
        this.reason = 'SERVER_SHUTDOWN';
        return;
      case 'error':
        // The server closes next; the close event reconnects.
        return;
      case 'welcome':
        return; // unexpected; ignored as the native client does
    }
  }

  private answer(id: number, ok: unknown, error: { code: number; message: string } | undefined): void {
    const request = this.requests.take(id);
    if (!request) return; // timed out already, or a probe
    if (error) {
      request.reject(fromWire(error.code, error.message ?? ''));
      return;
    }
    const what = request.what;
    try {
      if (what.kind === 'send') {
        const value = ok as { invitation_id: string; error_invitees: [] };
        this.tracker.sent(value.invitation_id, what.invitees, value.error_invitees ?? [], what.timeoutSecs);
      } else if (what.kind === 'renew') {
        this.token = what.token;
      }
      request.resolve(ok ?? null);
    } catch (e) {
      request.reject(new InternalError(`cannot read the server's result: ${describe(e)}`));
    }
  }

  // ---- away: reconnecting ----------------------------------------------------

  /** The connection dropped (or went silent): reconnect, unless the session is over. */
  private lost(reason: ConnectionReason): void {
    if (this.phase !== 'open') return;
    this.phase = 'away';
    this.stopHeartbeat();
    if (this.ws) this.drop(this.ws);
    this.ws = null;
    if (Date.now() - this.connectedAt >= Math.min(this.waitedMs, BACKOFF_STABLE_MS)) this.backoffMs = BACKOFF_FIRST_MS;
    this.options.hooks.changed('RECONNECTING', reason);
    this.scheduleReconnect();
  }

  /** Dials again after the current delay (with jitter), and doubles the delay for the next attempt. */
  private scheduleReconnect(): void {
    const delay = this.backoffMs * (0.5 + Math.random() * 0.5);
    this.waitedMs = delay;
    this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_LAST_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.reconnect();
    }, delay);
  }

  private async reconnect(): Promise<void> {
    if (this.phase !== 'away') return;
    const resume = this.session ? { session: this.session, seq: this.seen } : null;
    const dial = this.startDial(resume);
    this.dial = dial;
    let welcome: Welcome;
    try {
      welcome = await dial.welcomed;
    } catch (error) {
      if (this.dial !== dial || this.phase !== 'away') return; // logged out meanwhile
      this.dial = null;
      const failure = error instanceof BeckonError ? error : new NetworkError(describe(error));
      if (isFatal(failure)) {
        this.end(
          new NetworkError(`the session could not be restored: ${failure.message}`),
          failure.codeName === 'TOKEN_EXPIRED' ? 'TOKEN_EXPIRED' : 'LOGIN',
        );
        return;
      }
      this.scheduleReconnect();
      return;
    }
    if (this.dial !== dial || this.phase !== 'away') return;
    const fresh = !welcome.resumed;
    this.serve(dial.ws, welcome, dial.early);
    // What was not answered goes first, before anything the application
    // does on CONNECTED or on a replayed frame: a request written before a
    // re-sent one would take a higher id, and the server ignores a lower id
    // after a higher one (as the Rust link, which takes no command before
    // its catch-up).
    this.catchUp(welcome, fresh);
    // CONNECTED with NETWORK: resumed, nothing was lost; with LOGIN: a fresh
    // session, and what was missed follows from the snapshot.
    this.options.hooks.changed('CONNECTED', fresh ? 'LOGIN' : 'NETWORK');
    // The replay of a resumed session.
    this.ready();
  }

  /**
   * After a reconnect: the receipts not confirmed yet (those queued while
   * away, and those sent whose effect was not seen), the requests not
   * answered (in id order, each frame as first sent), and the sync: after a
   * fresh session, one naming what the application knows as open; after a
   * resume, the login's sync if it came while away, or the session's first
   * sync again if the welcome says the server never had it (`synced: false`;
   * it was lost with the connection). A welcome that does not say (an older
   * server) gets it again until a push or snapshot showed the server has it.
   * A sync not sent yet is sent once. On a resumed session the server
   * replays the results up to `last_request`, so only those above are sent
   * again.
   */
  private catchUp(welcome: Welcome, fresh: boolean): void {
    // A receipt is sent again until its effect shows (the server ignores a
    // repeat): one written just before the drop may never have arrived.
    const backlog = this.receipts.frames();
    const syncWaiting = this.syncWaiting;
    this.syncWaiting = false;
    let sync: string | null = null;
    if (fresh) {
      // A fresh session gets the link's own sync, below.
      this.syncSent = null;
    } else if (syncWaiting) {
      sync = syncFrame(null);
    } else if (welcome.synced === true) {
      this.syncConfirmed = true;
    } else if (welcome.synced === false || !this.syncConfirmed) {
      sync = this.syncSent;
    }
    for (const request of this.requests.unanswered(fresh ? 0 : welcome.last_request)) {
      const limit = welcome.max_frame_bytes ?? 0;
      if (limit > 0 && byteLength(request.frame) > limit) {
        this.requests.fail(request.id, new PayloadTooLargeError(`request: its frame is over the server's max_frame_bytes (${limit})`));
        continue;
      }
      backlog.push(request.frame);
    }
    if (fresh) sync = syncFrame(this.tracker.known().slice(0, MAX_KNOWN));
    for (const frame of backlog) this.write(frame);
    if (sync !== null) this.writeSync(sync);
  }

  /** Writes a sync, remembering the session's first. */
  private writeSync(frame: string): void {
    this.syncSent ??= frame;
    this.syncConfirmed = false;
    this.write(frame);
  }

  // ---- the end -------------------------------------------------------------

  /** The session is over for a reason of the server's: requests fail with `error`. */
  private end(error: BeckonError, reason: ConnectionReason): void {
    this.phase = 'closed';
    this.finish(error);
    if (this.ws) this.drop(this.ws);
    this.options.hooks.ended(reason);
  }

  private finish(error: BeckonError): void {
    this.stopHeartbeat();
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.requests.failAll(error);
    this.syncWaiting = false;
    this.receipts.clear();
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  private drop(ws: WebSocketLike): void {
    detach(ws);
    closeQuietly(ws);
    if (this.ws === ws) {
      this.ws = null;
      this.inbox = [];
      this.pumping = false;
    }
  }
}

function detach(ws: WebSocketLike): void {
  ws.onopen = null;
  ws.onmessage = null;
  ws.onclose = null;
  ws.onerror = () => {}; // `ws` throws an unhandled 'error' without a listener
}

function closeQuietly(ws: WebSocketLike): void {
  try {
    ws.close(1000);
  } catch {
    /* already closed */
  }
}

function inertSocket(): WebSocketLike {
  return {
    readyState: 3,
    send() {},
    close() {},
    onopen: null,
    onmessage: null,
    onclose: null,
    onerror: null,
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Runs `f` in a later task (after the promise continuations now due). */
const immediate = (globalThis as { setImmediate?: (f: () => void) => unknown }).setImmediate;
const nextTask: (f: () => void) => void =
  typeof immediate === 'function'
    ? (f) => void immediate(f)
    : typeof MessageChannel === 'function'
      ? (() => {
          // A browser's fastest task: setTimeout(0) is clamped to 4 ms when nested.
          const queue: (() => void)[] = [];
          const channel = new MessageChannel();
          channel.port1.onmessage = () => queue.shift()?.();
          return (f: () => void) => {
            queue.push(f);
            channel.port2.postMessage(null);
          };
        })()
      : (f) => setTimeout(f, 0);

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
