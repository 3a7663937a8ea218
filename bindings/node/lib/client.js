'use strict';
// The Client class: one device of one user, over one `beckon_client *`.

const { EventEmitter } = require('node:events');
const { koffi, T, library } = require('./native');
const callbacks = require('./callbacks');
const { eventNames } = require('./decode');
const v = require('./validate');
const { DispatchMode, INVITATION_ONLINE_ONLY, connectionStateName } = require('./constants');
const { BeckonError, ShutdownError, InvalidArgumentError } = require('./errors');

const CLIENT_OPTIONS = ['serverUrl', 'deviceId', 'dispatch', 'requestTimeoutMs', 'pollIntervalMs'];
const SEND_OPTIONS = ['timeoutSeconds', 'extendedData', 'notification', 'onlineOnly', 'requestTimeoutMs'];
const CANCEL_OPTIONS = ['invitees', 'extendedData', 'requestTimeoutMs'];
const ANSWER_OPTIONS = ['extendedData', 'requestTimeoutMs'];
const NOTIFICATION_FIELDS = ['title', 'message', 'resourceId', 'payload'];
const PUSH_TARGET_FIELDS = ['provider', 'token', 'topic', 'environment', 'alertToken'];
const QUERY_FIELDS = ['role', 'sinceMs', 'untilMs', 'limit', 'cursor'];
const DEFAULT_POLL_INTERVAL_MS = 10;
const TIMER_MAX_MS = 0x7fffffff;

/**
 * Each callback a library thread forwards to JavaScript holds one of koffi's
 * asynchronous call slots until JavaScript has run it, and koffi has a fixed
 * number of them (`koffi.config().max_async_calls`, 256 unless the application
 * raised it before loading any library). A forward that finds no free slot
 * cannot be handled safely, so clients are opened only while the slots their
 * threads may hold at once are free:
 * - a thread-mode client's dispatcher thread forwards one callback at a time:
 *   one slot per client;
 * - pool-mode clients share the library's pool (as many threads as the CPUs,
 *   2 to 8; it grows only while a callback frees a client on a pool thread,
 *   which JavaScript callbacks never do): `poolThreads` slots for all of
 *   them, counted while any is open;
 * - poll-mode clients use no slot;
 * - the frees of `close()` take a slot each, at most `frees.max` at once,
 *   and logging (lib/log.js) at most two: the library's log thread, and one
 *   `beckon_set_log_config` call at a time: all covered by `reserve`.
 */
const slots = {
  threadClients: 0,
  poolClients: 0,
  reserve: 8,
  poolThreads: 8,
  /** The slots there are (at least room for one thread-mode client, as ever). */
  get max() {
    return Math.max(this.reserve + 1, koffi.config().max_async_calls);
  },
  get used() {
    return this.reserve + this.threadClients + (this.poolClients > 0 ? this.poolThreads : 0);
  },
  /** How many more slots a client of `dispatch` would take. */
  needed(dispatch) {
    if (dispatch === 'thread') return 1;
    if (dispatch === 'pool') return this.poolClients > 0 ? 0 : this.poolThreads;
    return 0;
  },
  opened(dispatch, change) {
    if (dispatch === 'thread') this.threadClients += change;
    else if (dispatch === 'pool') this.poolClients += change;
  },
};

const DISPATCH_MODES = { thread: DispatchMode.THREAD, poll: DispatchMode.POLL, pool: DispatchMode.POOL };

/** Frees of thread- and pool-mode clients run on koffi's worker threads, a few at a time. */
const frees = {
  running: 0,
  max: 4,
  waiting: [],
  /**
   * Calls beckon_client_free(handle) off the JavaScript thread; resolves when
   * it returned BECKON_OK, rejects with the error it returned otherwise (the
   * client is then still live).
   */
  run(fn, handle) {
    return new Promise((resolve, reject) => {
      const start = () => {
        this.running += 1;
        const finish = (error, code) => {
          this.running -= 1;
          const next = this.waiting.shift();
          if (next !== undefined) next();
          if (error) reject(error);
          // The message was set on the worker thread, where it cannot be read:
          // the code's description stands in for it.
          else if (code !== 0) reject(BeckonError.fromCode(code, `client: ${callbacks.describe(code)}`));
          else resolve();
        };
        try {
          fn.beckon_client_free.async(handle, finish);
        } catch (error) {
          finish(error);
        }
      };
      if (this.running < this.max) start();
      else this.waiting.push(start);
    });
  },
};

class Client extends EventEmitter {
  #fn;
  #handle;
  #dispatch;
  #serverUrl;
  #deviceId;
  #eventToken;
  #pollTimer = null;
  #closing = null;
  #referenced = true;

  /**
   * Creates a client; nothing connects until `login`. See index.d.ts for the
   * options. Throws InvalidArgumentError for bad options.
   */
  constructor(options) {
    super();
    const o = v.options(options, 'options', CLIENT_OPTIONS);
    const serverUrl = v.text(o.serverUrl, 'options.serverUrl');
    const deviceId = v.optionalText(o.deviceId, 'options.deviceId');
    const dispatch = o.dispatch ?? 'thread';
    if (!Object.hasOwn(DISPATCH_MODES, dispatch)) {
      throw new InvalidArgumentError(
        `options.dispatch: expected "thread", "pool" or "poll", got ${JSON.stringify(dispatch)}`,
      );
    }
    const requestTimeoutMs = v.optionalUint32(o.requestTimeoutMs, 'options.requestTimeoutMs', { min: 1 });
    let pollIntervalMs = null;
    if (dispatch === 'poll') {
      pollIntervalMs =
        v.optionalUint32(o.pollIntervalMs, 'options.pollIntervalMs', { max: TIMER_MAX_MS }) ??
        DEFAULT_POLL_INTERVAL_MS;
    } else if (o.pollIntervalMs !== undefined) {
      throw new InvalidArgumentError('options.pollIntervalMs: only for dispatch "poll"');
    }

    const lib = library();
    const needed = slots.needed(dispatch);
    if (needed > 0 && slots.used + needed > slots.max) {
      const open =
        `${slots.threadClients} thread-mode clients` +
        (slots.poolClients > 0 ? ` and ${slots.poolClients} pool-mode clients (${slots.poolThreads} slots in all)` : '');
      throw new RangeError(
        `beckon: ${open} are open, the most koffi can serve` +
          ` (koffi.config().max_async_calls = ${koffi.config().max_async_calls}, ${slots.reserve} kept for frees` +
          (dispatch === 'pool' ? `; pool-mode clients need ${slots.poolThreads} of them` : '') +
          '); raise it before loading any library, or use dispatch "pool" (many clients on a few' +
          ' shared threads) or dispatch "poll"',
      );
    }
    this.#fn = lib.fn;
    const out = [null];
    const code = this.#fn.beckon_client_new(
      {
        struct_size: koffi.sizeof(T.clientConfig),
        server_url: serverUrl,
        device_id: deviceId,
        dispatch_mode: DISPATCH_MODES[dispatch],
        request_timeout_ms: requestTimeoutMs ?? 0,
      },
      out,
    );
    if (code !== 0) throw callbacks.lastError(code);
    this.#handle = out[0];
    this.#dispatch = dispatch;
    this.#serverUrl = serverUrl;

    const sink = callbacks.addEventSink((event) => this.#emitEvent(event));
    this.#eventToken = sink.token;
    const set = this.#fn.beckon_client_set_event_handler(this.#handle, sink.callback, sink.token);
    const info = set === 0 ? this.#readInfo(this.#handle) : null;
    const failed = set !== 0 ? set : info.code;
    if (failed !== 0) {
      const error = callbacks.lastError(failed);
      callbacks.removeEventSink(sink.token);
      // Nothing was started, so no callback can be pending: freeing here
      // cannot wait for JavaScript.
      this.#fn.beckon_client_free(this.#handle);
      this.#handle = null;
      throw error;
    }
    // Fixed for the client's life: kept, so that it is known after close().
    this.#deviceId = info.raw.device_id;
    slots.opened(dispatch, 1);
    callbacks.keepAlive.hold();
    if (dispatch === 'poll' && pollIntervalMs > 0) {
      this.#pollTimer = setInterval(() => this.#autoPoll(), pollIntervalMs);
    }
  }

  /** `"thread"`, `"pool"` or `"poll"`: where this client's callbacks run. */
  get dispatch() {
    return this.#dispatch;
  }

  /** The server URL the client was created with. */
  get serverUrl() {
    return this.#serverUrl;
  }

  /**
   * This client's device id: `options.deviceId`, or the random one the library
   * made. Fixed for the client's life (readable after `close()` too).
   */
  get deviceId() {
    return this.#deviceId;
  }

  /**
   * The logged-in user, or null unless a login has succeeded and no logout (or
   * end of session) has happened since. Throws ShutdownError once closing began.
   */
  get userId() {
    return this.info().userId;
  }

  /**
   * The `ConnectionState` of the last connectionStateChanged event this client
   * dispatched (DISCONNECTED before any). Throws ShutdownError once closing began.
   */
  get connectionState() {
    return this.info().connectionState;
  }

  /**
   * `{ connectionState, connectionStateName, userId, deviceId }`, read together
   * from the library now (`beckon_client_get_info`). Throws ShutdownError once
   * closing began.
   */
  info() {
    const { code, raw } = this.#readInfo(this.#open());
    if (code !== 0) throw callbacks.lastError(code);
    return Object.freeze({
      connectionState: raw.connection_state,
      connectionStateName: connectionStateName(raw.connection_state),
      userId: raw.user_id === '' ? null : raw.user_id,
      deviceId: raw.device_id,
    });
  }

  /** True once `close()` (or a dispose) has begun: every operation is refused. */
  get closed() {
    return this.#closing !== null;
  }

  /** Logs in as `userId` (`token` may be omitted on memory hubs without a secret). */
  async login(userId, token) {
    const user = v.text(userId, 'userId');
    const tok = v.optionalText(token, 'token');
    const handle = this.#open();
    return callbacks.operation('result', (cb, ud) => this.#fn.beckon_client_login(handle, user, tok, cb, ud));
  }

  /** Logs out; if this was the user's last device, its pending invitations are cancelled. */
  async logout() {
    const handle = this.#open();
    return callbacks.operation('result', (cb, ud) => this.#fn.beckon_client_logout(handle, cb, ud));
  }

  /** Replaces the session's token before it expires. */
  async renewToken(token) {
    const tok = v.text(token, 'token');
    const handle = this.#open();
    return callbacks.operation('result', (cb, ud) => this.#fn.beckon_client_renew_token(handle, tok, cb, ud));
  }

  /**
   * Sends an invitation to `invitees`; resolves to `{ invitationId, errorInvitees }`
   * (the invitees with no device online, state OFFLINE).
   */
  async sendInvitation(invitees, options) {
    const list = v.textArray(invitees, 'invitees');
    const o = v.options(options, 'options', SEND_OPTIONS);
    const timeoutSeconds = v.uint32(o.timeoutSeconds, 'options.timeoutSeconds', { min: 1 });
    const extendedData = v.optionalText(o.extendedData, 'options.extendedData');
    const onlineOnly = v.boolean(o.onlineOnly, 'options.onlineOnly');
    const requestTimeoutMs = requestTimeout(o);
    let notification = null;
    if (o.notification !== undefined && o.notification !== null) {
      const n = v.options(o.notification, 'options.notification', NOTIFICATION_FIELDS);
      notification = {
        struct_size: koffi.sizeof(T.notificationConfig),
        title: v.optionalText(n.title, 'options.notification.title'),
        message: v.optionalText(n.message, 'options.notification.message'),
        resource_id: v.optionalText(n.resourceId, 'options.notification.resourceId'),
        payload: v.optionalText(n.payload, 'options.notification.payload'),
      };
    }
    const config = {
      struct_size: koffi.sizeof(T.invitationConfig),
      timeout_seconds: timeoutSeconds,
      extended_data: extendedData,
      notification,
      flags: onlineOnly ? INVITATION_ONLINE_ONLY : 0,
      request_timeout_ms: requestTimeoutMs,
    };
    const handle = this.#open();
    return callbacks.operation('send', (cb, ud) =>
      this.#fn.beckon_send_invitation(handle, list, list.length, config, cb, ud),
    );
  }

  /**
   * Cancels an invitation for every invitee, or for `options.invitees`; resolves
   * to `{ errorInvitees }` (those already in a terminal state, with it).
   */
  async cancelInvitation(invitationId, options) {
    const id = v.text(invitationId, 'invitationId');
    const o = v.options(options, 'options', CANCEL_OPTIONS);
    const list = o.invitees === undefined ? null : v.textArray(o.invitees, 'options.invitees');
    const config = {
      struct_size: koffi.sizeof(T.cancelConfig),
      request_timeout_ms: requestTimeout(o),
      invitees: list,
      invitee_count: list === null ? 0 : list.length,
      extended_data: v.optionalText(o.extendedData, 'options.extendedData'),
    };
    const handle = this.#open();
    return callbacks.operation('cancel', (cb, ud) =>
      this.#fn.beckon_cancel_invitation_ex(handle, id, config, cb, ud),
    );
  }

  /** Accepts an invitation this user was invited to. */
  async acceptInvitation(invitationId, options) {
    const [id, config] = answerArguments(invitationId, options);
    const handle = this.#open();
    return callbacks.operation('result', (cb, ud) =>
      this.#fn.beckon_accept_invitation_ex(handle, id, config, cb, ud),
    );
  }

  /** Refuses an invitation this user was invited to. */
  async refuseInvitation(invitationId, options) {
    const [id, config] = answerArguments(invitationId, options);
    const handle = this.#open();
    return callbacks.operation('result', (cb, ud) =>
      this.#fn.beckon_refuse_invitation_ex(handle, id, config, cb, ud),
    );
  }

  /**
   * Rings this device by push while it is not connected (ABI 2.2), replacing
   * its target: `{ provider, token, topic?, environment?, alertToken? }` with
   * `provider` a `PushProvider` value. The server keeps it past this
   * connection (a reconnect or a new login of the same device keeps it); an
   * explicit `logout()`, and `close()` (which logs out), forget it, as does
   * the provider saying the token is no longer valid: set it again after
   * logging in anew. Bad targets throw at once (naming `target.<field>`); a
   * server that does not push through the provider rejects with
   * InvalidArgumentError (a memory:// hub pushes through none).
   */
  async setPushTarget(target) {
    if (target === undefined || target === null) throw new InvalidArgumentError('target: is required');
    const t = v.options(target, 'target', PUSH_TARGET_FIELDS);
    const config = {
      struct_size: koffi.sizeof(T.pushTarget),
      // Checked as integers here; the library names unknown values.
      provider: v.uint32(t.provider, 'target.provider', { max: 0x7fffffff }),
      token: v.text(t.token, 'target.token'),
      topic: v.optionalText(t.topic, 'target.topic'),
      environment: t.environment === undefined ? 0 : v.uint32(t.environment, 'target.environment', { max: 0x7fffffff }),
      alert_token: v.optionalText(t.alertToken, 'target.alertToken'),
    };
    const handle = this.#open();
    return callbacks.operation('result', (cb, ud) =>
      this.#fn.beckon_client_set_push_target(handle, config, cb, ud),
    );
  }

  /** Forgets this device's push target, if it has one (ABI 2.2). */
  async clearPushTarget() {
    const handle = this.#open();
    return callbacks.operation('result', (cb, ud) => this.#fn.beckon_client_clear_push_target(handle, cb, ud));
  }

  /**
   * A page of this user's ended invitations, newest sent first (ABI 2.3):
   * `{ role?, sinceMs?, untilMs?, limit?, cursor? }`, every field optional
   * (the whole query too). Resolves to `{ invitations, nextCursor }`; pass
   * `nextCursor` as `cursor` (with the same other fields) for the next page;
   * it is null on the last page. Wrong types throw at once (naming
   * `query.<field>`); the library refuses an unknown `role`, a `limit` over
   * 100, an `untilMs` not after `sinceMs` and a cursor it did not make, also
   * at once, naming `query.<its field>`.
   */
  async queryInvitations(query) {
    const q = v.options(query, 'query', QUERY_FIELDS);
    const config = {
      struct_size: koffi.sizeof(T.invitationQuery),
      // Checked as integers here; the library names unknown values.
      role: v.optionalUint32(q.role, 'query.role', { max: 0x7fffffff }) ?? 0,
      since_ms: v.optionalUint64(q.sinceMs, 'query.sinceMs') ?? 0,
      until_ms: v.optionalUint64(q.untilMs, 'query.untilMs') ?? 0,
      limit: v.optionalUint32(q.limit, 'query.limit') ?? 0,
      cursor: v.optionalText(q.cursor, 'query.cursor'),
    };
    const handle = this.#open();
    return callbacks.operation('page', (cb, ud) => this.#fn.beckon_query_invitations(handle, config, cb, ud));
  }

  /**
   * Poll mode: runs this client's due callbacks on this thread, waiting up to
   * `timeoutMs` (which blocks JavaScript meanwhile) for one to be due. Returns
   * how many ran. Clients created with a `pollIntervalMs` (10 by default) are
   * polled automatically; call this with `pollIntervalMs: 0`.
   */
  poll(timeoutMs = 0) {
    const timeout = v.uint32(timeoutMs, 'timeoutMs', { max: 0x7fffffff });
    const handle = this.#open();
    const ran = [0];
    const code = this.#fn.beckon_client_poll(handle, timeout, ran);
    if (code !== 0) throw callbacks.lastError(code);
    return ran[0];
  }

  /**
   * Frees the client: logs out, settles every pending operation (with
   * ShutdownError when its outcome was not delivered yet), and resolves once
   * no callback of this client can run any more. Idempotent.
   *
   * Rejects with WouldDeadlockError when the library refuses the free (a
   * poll-mode client closed from another client's callback while a callback
   * of this one is closing that other client): nothing was done, the client
   * is open again, and a later `close()` tries anew.
   */
  close() {
    if (this.#closing !== null) return this.#closing;
    const handle = this.#handle;
    if (this.#dispatch === 'poll') {
      // Poll-mode callbacks run on the calling thread, this one: the pending
      // ones run inside this call, with SHUTDOWN. Operations are refused
      // meanwhile (`#closing` is set).
      this.#closing = Promise.resolve();
      const code = this.#fn.beckon_client_free(handle);
      if (code !== 0) {
        const error = callbacks.lastError(code);
        this.#closing = null;
        return Promise.reject(error);
      }
      this.#freed();
      return this.#closing;
    }
    // beckon_client_free waits for the dispatcher thread (or the pool thread
    // running this client's callbacks), whose callbacks koffi runs on this
    // thread: it must run elsewhere while this thread serves them.
    const dispatch = this.#dispatch;
    const closing = frees.run(this.#fn, handle).then(
      () => {
        slots.opened(dispatch, -1);
        this.#freed();
      },
      (error) => {
        // Not freed: the client is still live and usable.
        if (this.#closing === closing) this.#closing = null;
        throw error;
      },
    );
    this.#closing = closing;
    return closing;
  }

  /** `await using client = new Client(...)`: closes it. */
  [Symbol.asyncDispose]() {
    return this.close();
  }

  /**
   * `using client = new Client(...)`: closes it. A poll-mode client is freed
   * before this returns; a thread- or pool-mode client refuses operations at
   * once and finishes closing asynchronously (await `close()` to wait for it).
   */
  [Symbol.dispose]() {
    this.close().catch(callbacks.raiseLater);
  }

  /** Lets the process exit while this client is open (as `net.Socket#unref`). */
  unref() {
    if (this.#referenced && this.#closing === null) {
      this.#referenced = false;
      callbacks.keepAlive.release();
      this.#pollTimer?.unref();
    }
    return this;
  }

  /** Undoes `unref()`: the open client keeps the process alive again. */
  ref() {
    if (!this.#referenced && this.#closing === null) {
      this.#referenced = true;
      callbacks.keepAlive.hold();
      this.#pollTimer?.ref();
    }
    return this;
  }

  /** The C handle, or ShutdownError once closing began (a freed handle is never used). */
  #open() {
    if (this.#closing !== null) throw new ShutdownError('client: closed');
    return this.#handle;
  }

  /** Calls beckon_client_get_info: `{ code, raw }`, `raw` the struct as koffi filled it in. */
  #readInfo(handle) {
    const raw = { struct_size: koffi.sizeof(T.clientInfo), connection_state: 0, user_id: '', device_id: '' };
    const code = this.#fn.beckon_client_get_info(handle, raw);
    return { code, raw };
  }

  /** After a successful beckon_client_free: the handle is gone for good. */
  #freed() {
    this.#handle = null;
    if (this.#pollTimer !== null) {
      clearInterval(this.#pollTimer);
      this.#pollTimer = null;
    }
    callbacks.removeEventSink(this.#eventToken);
    if (this.#referenced) callbacks.keepAlive.release();
    this.#referenced = false;
    this.emit('close');
  }

  #autoPoll() {
    if (this.#closing !== null) return;
    const code = this.#fn.beckon_client_poll(this.#handle, 0, null);
    if (code !== 0) callbacks.raiseLater(callbacks.lastError(code));
  }

  #emitEvent(event) {
    const name = eventNames[event.kind];
    if (name !== undefined) this.#emitSafely(name, event);
    this.#emitSafely('event', event);
  }

  /** A listener's exception surfaces as an uncaught exception, never inside C. */
  #emitSafely(name, event) {
    try {
      this.emit(name, event);
    } catch (error) {
      callbacks.raiseLater(error);
    }
  }
}

/** `options.requestTimeoutMs` as the C field wants it: 0 (the client's timeout) when omitted. */
function requestTimeout(o) {
  return v.optionalUint32(o.requestTimeoutMs, 'options.requestTimeoutMs', { min: 1 }) ?? 0;
}

/** The invitation id and the beckon_answer_config of an accept or a refuse. */
function answerArguments(invitationId, options) {
  const id = v.text(invitationId, 'invitationId');
  const o = v.options(options, 'options', ANSWER_OPTIONS);
  return [
    id,
    {
      struct_size: koffi.sizeof(T.answerConfig),
      request_timeout_ms: requestTimeout(o),
      extended_data: v.optionalText(o.extendedData, 'options.extendedData'),
    },
  ];
}

module.exports = { Client };
