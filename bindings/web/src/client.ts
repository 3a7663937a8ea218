// The public Client: one device of one user. Operations return promises that
// settle exactly once; events are dispatched on the Client (an EventTarget) in
// the order the client observed them. It adds to the link what the native
// client's dispatcher does: automatic receipts (rule 4) and at most one
// INVITATION_RECEIVED per invitation per user (rule 9).

import type { ConnectionReason, ConnectionState } from './constants.js';
import { InvalidArgumentError, NotLoggedInError, ShutdownError } from './errors.js';
import { Link } from './link.js';
import {
  cancelResultOf,
  checkId,
  checkInvitationId,
  checkInvitees,
  checkText,
  checkTimeoutMs,
  checkTimeoutSeconds,
  eventOf,
  pageOf,
  sendResultOf,
  type WirePush,
} from './protocol.js';
import type {
  AnswerOptions,
  BeckonEvent,
  CancelInvitationOptions,
  CancelResult,
  ClientEventMap,
  ClientEventName,
  ClientOptions,
  InvitationPage,
  InvitationQuery,
  PushTarget,
  SendInvitationOptions,
  SendResult,
  WebSocketConstructor,
} from './types.js';

const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** An invitation is remembered this long past its deadline (the hub cannot hand it out later). */
const SEEN_SLACK_MS = 60_000;

/** The name each event kind is dispatched under (besides 'event'). */
const EVENT_NAMES: { [K in BeckonEvent['kind']]: ClientEventName } = {
  CONNECTION_STATE_CHANGED: 'connectionStateChanged',
  TOKEN_WILL_EXPIRE: 'tokenWillExpire',
  INVITATION_RECEIVED: 'invitationReceived',
  INVITATION_CANCELLED: 'invitationCancelled',
  INVITATION_ACCEPTED: 'invitationAccepted',
  INVITATION_REFUSED: 'invitationRefused',
  INVITATION_TIMEOUT: 'invitationTimeout',
  INVITATION_RESPONSE_TIMEOUT: 'invitationResponseTimeout',
  INVITATION_USER_STATE_CHANGED: 'invitationUserStateChanged',
  INVITATION_PUSH_RESULT: 'invitationPushResult',
};

const ROLES: { [name: string]: string } = {
  ANY: 'any',
  SENT: 'sent',
  RECEIVED: 'received',
  any: 'any',
  sent: 'sent',
  received: 'received',
};

/**
 * One device of one user, speaking docs/PROTOCOL.md to a beckon-server.
 * Every event is dispatched twice as a CustomEvent whose `detail` is the
 * event: under its own name (e.g. 'invitationReceived') and under 'event'.
 */
export class Client extends EventTarget {
  readonly serverUrl: string;
  readonly deviceId: string;
  readonly requestTimeoutMs: number;
  private readonly WebSocketImpl: WebSocketConstructor;
  private link: Link | null = null;
  /** The user of the link: set once its login succeeded. */
  private user: string | null = null;
  private loggingIn = false;
  private loggingOut = false;
  private state: ConnectionState = 'DISCONNECTED';
  private isClosed = false;
  /** Rule 9: "user\ninvitation" of each invitation shown, with when it may be forgotten. */
  private readonly seen = new Map<string, number>();
  private sweepAt = 1024;

  /** Throws InvalidArgumentError for bad options, or when there is no WebSocket to use. */
  constructor(options: ClientOptions) {
    super();
    if (!options || typeof options !== 'object') throw new InvalidArgumentError('options: required');
    const url = options.serverUrl;
    if (typeof url !== 'string' || !/^wss?:\/\/[^/\s]+/i.test(url)) {
      throw new InvalidArgumentError(`serverUrl: '${String(url)}' is not a ws:// or wss:// URL`);
    }
    this.serverUrl = url;
    this.deviceId =
      options.deviceId === undefined || options.deviceId === null
        ? randomDeviceId()
        : checkId(options.deviceId, 'deviceId');
    this.requestTimeoutMs = checkTimeoutMs(options.requestTimeoutMs, 'requestTimeoutMs', DEFAULT_REQUEST_TIMEOUT_MS);
    const impl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (typeof impl !== 'function') {
      throw new InvalidArgumentError(
        'WebSocket: this runtime has no global WebSocket; pass one in the options (in Node: the `ws` package)',
      );
    }
    this.WebSocketImpl = impl;
  }

  /** The state of the last connectionStateChanged event dispatched ('DISCONNECTED' before any). */
  get connectionState(): ConnectionState {
    return this.state;
  }

  /** The logged-in user, or null. */
  get userId(): string | null {
    return this.user;
  }

  /** True once close() has begun; operations then reject with ShutdownError. */
  get closed(): boolean {
    return this.isClosed;
  }

  /** Listens to one event kind (or 'event' for all); returns a function that stops listening. */
  on<K extends ClientEventName>(name: K, listener: (event: ClientEventMap[K]) => void): () => void {
    const wrapped = (event: Event) => listener((event as CustomEvent<ClientEventMap[K]>).detail);
    this.addEventListener(name, wrapped);
    return () => this.removeEventListener(name, wrapped);
  }

  /**
   * Logs in: CONNECTING and CONNECTED events come before it resolves, then
   * what still rings for the user arrives as invitationReceived. Rejects with
   * AuthFailedError, TokenExpiredError, NotPermittedError (an 11th device),
   * NetworkError or RequestTimeoutError; InvalidArgumentError while logged in
   * or while a login or logout is under way.
   */
  async login(userId: string, token?: string | null): Promise<void> {
    this.alive();
    const user = checkId(userId, 'user_id');
    if (token !== undefined && token !== null && typeof token !== 'string') {
      throw new InvalidArgumentError('token: must be a string');
    }
    if (this.link !== null) {
      throw new InvalidArgumentError('login: already logged in, or a login or logout is under way');
    }
    const link: Link = new Link({
      url: this.serverUrl,
      user,
      device: this.deviceId,
      token: token ?? '',
      WebSocket: this.WebSocketImpl,
      timeoutMs: this.requestTimeoutMs,
      hooks: {
        changed: (state, reason) => {
          if (this.link === link) this.emitState(state, reason);
        },
        push: (push) => {
          if (this.link === link) this.delivered(link, user, push);
        },
        ended: (reason) => {
          if (this.link !== link) return;
          this.link = null;
          this.user = null;
          this.emitState('DISCONNECTED', reason);
        },
      },
    });
    this.link = link;
    this.loggingIn = true;
    this.emitState('CONNECTING', 'LOGIN');
    try {
      await link.open();
    } catch (error) {
      if (this.link === link && !this.loggingOut) {
        // Failed on its own (a logout that cancelled it says DISCONNECTED itself).
        this.link = null;
        this.loggingIn = false;
        this.emitState('DISCONNECTED', 'LOGIN');
      }
      throw error;
    }
    this.loggingIn = false;
    this.user = user;
    this.emitState('CONNECTED', 'LOGIN');
    link.ready();
    // Ready for pushes: the server hands over what rings for the user.
    link.sync();
  }

  /**
   * Logs out: the session ends at once (rule 7 cancels the user's pending
   * invitations if this was its last device); DISCONNECTED (LOGOUT) follows.
   * During a login, cancels it (the login rejects with ShutdownError).
   * Requests still waiting reject with ShutdownError.
   */
  async logout(): Promise<void> {
    this.alive();
    const link = this.link;
    if (link === null || this.loggingOut) throw new NotLoggedInError('logout: not logged in');
    this.loggingOut = true;
    try {
      await link.logout();
    } finally {
      this.loggingOut = false;
      if (this.link === link) {
        this.link = null;
        this.user = null;
        this.loggingIn = false;
        this.emitState('DISCONNECTED', 'LOGOUT');
      }
    }
  }

  /** Replaces the session's token (and its expiry) before it expires. */
  async renewToken(token: string, options?: { requestTimeoutMs?: number | null }): Promise<void> {
    const link = this.session();
    if (typeof token !== 'string') throw new InvalidArgumentError('token: must be a string');
    const timeout = checkTimeoutMs(options?.requestTimeoutMs, 'requestTimeoutMs', this.requestTimeoutMs);
    await link.request('renew_token', 'token', token, timeout, { kind: 'renew', token });
  }

  /** Sends an invitation: every online device of every invitee rings. */
  async sendInvitation(invitees: readonly string[], options: SendInvitationOptions): Promise<SendResult> {
    const link = this.session();
    const limits = link.limits;
    if (!options || typeof options !== 'object') {
      throw new InvalidArgumentError('options: required, with timeoutSeconds');
    }
    const folded = checkInvitees(invitees, this.user, limits);
    const timeoutSecs = checkTimeoutSeconds(options.timeoutSeconds, limits);
    const extendedData = checkText(options.extendedData, 'extended_data', limits.max_extended_data);
    let notification: Record<string, string> | null = null;
    if (options.notification) {
      const n = options.notification;
      notification = {
        title: checkText(n.title, 'notification.title', limits.max_title),
        message: checkText(n.message, 'notification.message', limits.max_message),
        resource_id: checkText(n.resourceId, 'notification.resource_id', limits.max_resource_id),
        payload: checkText(n.payload, 'notification.payload', limits.max_payload),
      };
    }
    const timeout = checkTimeoutMs(options.requestTimeoutMs, 'requestTimeoutMs', this.requestTimeoutMs);
    const request = {
      invitees: folded,
      timeout_secs: timeoutSecs,
      extended_data: extendedData,
      notification,
      online_only: options.onlineOnly === true,
      // A send re-sent after a reconnect returns the first invitation.
      idempotency_key: randomHex(16),
    };
    const ok = await link.request('send', 'request', request, timeout, {
      kind: 'send',
      invitees: folded,
      timeoutSecs,
    });
    return sendResultOf(ok);
  }

  /** Cancels an invitation (inviter only) for every invitee, or for those named. */
  async cancelInvitation(invitationId: string, options?: CancelInvitationOptions): Promise<CancelResult> {
    const link = this.session();
    const id = checkInvitationId(invitationId);
    let invitees: string[] | null = null;
    if (options?.invitees !== undefined && options.invitees !== null) {
      if (!Array.isArray(options.invitees)) throw new InvalidArgumentError('invitees: must be an array');
      if (options.invitees.length === 0) {
        throw new InvalidArgumentError('invitees: the list is empty (omit it to cancel every invitee)');
      }
      invitees = [];
      for (const [i, user] of options.invitees.entries()) {
        const checked = checkId(user, `invitees[${i}]`);
        if (!invitees.includes(checked)) invitees.push(checked);
      }
    }
    const extendedData = checkText(options?.extendedData, 'extended_data', link.limits.max_extended_data);
    const timeout = checkTimeoutMs(options?.requestTimeoutMs, 'requestTimeoutMs', this.requestTimeoutMs);
    const ok = await link.request(
      'cancel',
      'request',
      { invitation_id: id, invitees, extended_data: extendedData },
      timeout,
      { kind: 'plain' },
    );
    return cancelResultOf(ok);
  }

  /** Accepts an invitation this user was invited to. */
  acceptInvitation(invitationId: string, options?: AnswerOptions): Promise<void> {
    return this.answer('accept', invitationId, options);
  }

  /** Refuses an invitation this user was invited to. */
  refuseInvitation(invitationId: string, options?: AnswerOptions): Promise<void> {
    return this.answer('refuse', invitationId, options);
  }

  private async answer(type: 'accept' | 'refuse', invitationId: string, options?: AnswerOptions): Promise<void> {
    const link = this.session();
    const id = checkInvitationId(invitationId);
    const extendedData = checkText(options?.extendedData, 'extended_data', link.limits.max_extended_data);
    const timeout = checkTimeoutMs(options?.requestTimeoutMs, 'requestTimeoutMs', this.requestTimeoutMs);
    await link.request(type, 'answer', { invitation_id: id, extended_data: extendedData }, timeout, { kind: 'plain' });
  }

  /** A page of this user's ended invitations, newest sent first. */
  async queryInvitations(query?: InvitationQuery): Promise<InvitationPage> {
    const link = this.session();
    const q = query ?? {};
    const role = ROLES[q.role ?? 'ANY'];
    if (!role) throw new InvalidArgumentError(`query.role: '${String(q.role)}' is not ANY, SENT or RECEIVED`);
    const whole = (value: unknown, field: string, max: number): number => {
      if (value === undefined || value === null) return 0;
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max) {
        throw new InvalidArgumentError(`${field}: ${String(value)} is outside 0..=${max}`);
      }
      return value;
    };
    const sinceMs = whole(q.sinceMs, 'query.since_ms', Number.MAX_SAFE_INTEGER);
    const untilMs = whole(q.untilMs, 'query.until_ms', Number.MAX_SAFE_INTEGER);
    const limit = whole(q.limit, 'query.limit', 100);
    if (untilMs !== 0 && untilMs <= sinceMs) {
      throw new InvalidArgumentError(`query.until_ms: ${untilMs} is not after query.since_ms (${sinceMs})`);
    }
    const body: Record<string, unknown> = { role, since_ms: sinceMs, until_ms: untilMs, limit };
    if (q.cursor !== undefined && q.cursor !== null && q.cursor !== '') {
      if (typeof q.cursor !== 'string') throw new InvalidArgumentError('query.cursor: must be a string');
      body.cursor = q.cursor;
    }
    const timeout = checkTimeoutMs(q.requestTimeoutMs, 'requestTimeoutMs', this.requestTimeoutMs);
    return pageOf(await link.request('query_invitations', 'query', body, timeout, { kind: 'plain' }));
  }

  /** Rings this device by push while it is not connected; kept by the server until cleared or an explicit logout. */
  async setPushTarget(target: PushTarget, options?: { requestTimeoutMs?: number | null }): Promise<void> {
    const link = this.session();
    const provider = { APNS: 'apns', APNS_VOIP: 'apns_voip', FCM: 'fcm', WEBHOOK: 'webhook' }[target?.provider];
    if (!provider) throw new InvalidArgumentError(`push_target.provider: '${String(target?.provider)}' is unknown`);
    if (typeof target.token !== 'string' || target.token === '') {
      throw new InvalidArgumentError('push_target.token: must not be empty');
    }
    const wire: Record<string, unknown> = { provider, token: target.token };
    if (target.topic) wire.topic = target.topic;
    if (target.environment) {
      const environment = { PRODUCTION: 'production', SANDBOX: 'sandbox' }[target.environment];
      if (!environment) throw new InvalidArgumentError(`push_target.environment: '${target.environment}' is unknown`);
      wire.environment = environment;
    }
    if (target.alertToken) wire.alert_token = target.alertToken;
    const timeout = checkTimeoutMs(options?.requestTimeoutMs, 'requestTimeoutMs', this.requestTimeoutMs);
    await link.request('set_push_target', 'target', wire, timeout, { kind: 'plain' });
  }

  /** Forgets this device's push target, if it has one. */
  async clearPushTarget(options?: { requestTimeoutMs?: number | null }): Promise<void> {
    const link = this.session();
    const timeout = checkTimeoutMs(options?.requestTimeoutMs, 'requestTimeoutMs', this.requestTimeoutMs);
    await link.request('clear_push_target', null, null, timeout, { kind: 'plain' });
  }

  /**
   * Closes the client: logs out if logged in (or cancels a login), pending
   * promises reject with ShutdownError, and no event follows. Idempotent.
   */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    const link = this.link;
    this.link = null;
    this.user = null;
    if (link) await link.logout();
  }

  // ---- internals ------------------------------------------------------------

  private alive(): void {
    if (this.isClosed) throw new ShutdownError('the client is closed');
  }

  /** The link of a logged-in session (connected, or reconnecting: requests wait for it). */
  private session(): Link {
    this.alive();
    if (this.link === null || this.user === null || this.loggingIn || this.loggingOut) {
      throw new NotLoggedInError('not logged in');
    }
    return this.link;
  }

  /** A push from the link: receipts (rule 4), rule 9, then the event. */
  private delivered(link: Link, user: string, push: WirePush): void {
    if (push.type === 'invitation_received') {
      // Receipts are idempotent at the hub: one for every delivery.
      link.receipt(push.invitation_id);
      if (!this.firstSight(user, push.invitation_id, push.seconds_left)) return;
    }
    const event = eventOf(push);
    if (event) this.emit(event);
  }

  /** Rule 9: true the first time this user is shown this invitation. */
  private firstSight(user: string, invitationId: string, secondsLeft: number): boolean {
    const key = `${user}\n${invitationId}`;
    const now = Date.now();
    if (this.seen.has(key)) return false;
    if (this.seen.size >= this.sweepAt) {
      for (const [k, forgetAt] of this.seen) if (forgetAt <= now) this.seen.delete(k);
      this.sweepAt = Math.max(1024, this.seen.size * 2);
    }
    this.seen.set(key, now + secondsLeft * 1000 + SEEN_SLACK_MS);
    return true;
  }

  private emitState(state: ConnectionState, reason: ConnectionReason): void {
    this.emit(Object.freeze({ kind: 'CONNECTION_STATE_CHANGED', state, reason }));
  }

  private emit(event: BeckonEvent): void {
    if (this.isClosed) return;
    if (event.kind === 'CONNECTION_STATE_CHANGED') this.state = event.state;
    this.dispatchEvent(makeEvent(EVENT_NAMES[event.kind], event));
    this.dispatchEvent(makeEvent('event', event));
  }
}

function makeEvent(name: string, detail: unknown): Event {
  if (typeof CustomEvent === 'function') return new CustomEvent(name, { detail });
  const event = new Event(name) as Event & { detail?: unknown };
  Object.defineProperty(event, 'detail', { value: detail });
  return event;
}

function randomHex(bytes: number): string {
  const data = new Uint8Array(bytes);
  globalThis.crypto.getRandomValues(data);
  return Array.from(data, (b) => b.toString(16).padStart(2, '0')).join('');
}

function randomDeviceId(): string {
  return `web-${randomHex(8)}`;
}
