// @beckon/web: generated from bindings/web/src by `npm run build` (esbuild 0.28.2); do not edit.
var __defProp = Object.defineProperty;
var __defNormalProp = (obj, key, value) => key in obj ? __defProp(obj, key, { enumerable: true, configurable: true, writable: true, value }) : obj[key] = value;
var __name = (target, value) => __defProp(target, "name", { value, configurable: true });
var __publicField = (obj, key, value) => __defNormalProp(obj, typeof key !== "symbol" ? key + "" : key, value);

// src/constants.ts
var InviteeState = {
  INVITING: "INVITING",
  ACCEPTED: "ACCEPTED",
  REJECTED: "REJECTED",
  CANCELLED: "CANCELLED",
  OFFLINE: "OFFLINE",
  RECEIVED: "RECEIVED",
  TIMEOUT: "TIMEOUT"
};
var InviteeStateCode = {
  INVITING: 0,
  ACCEPTED: 1,
  REJECTED: 2,
  CANCELLED: 3,
  OFFLINE: 4,
  RECEIVED: 5,
  TIMEOUT: 6
};
var EventKind = {
  CONNECTION_STATE_CHANGED: "CONNECTION_STATE_CHANGED",
  TOKEN_WILL_EXPIRE: "TOKEN_WILL_EXPIRE",
  INVITATION_RECEIVED: "INVITATION_RECEIVED",
  INVITATION_CANCELLED: "INVITATION_CANCELLED",
  INVITATION_ACCEPTED: "INVITATION_ACCEPTED",
  INVITATION_REFUSED: "INVITATION_REFUSED",
  INVITATION_TIMEOUT: "INVITATION_TIMEOUT",
  INVITATION_RESPONSE_TIMEOUT: "INVITATION_RESPONSE_TIMEOUT",
  INVITATION_USER_STATE_CHANGED: "INVITATION_USER_STATE_CHANGED",
  INVITATION_PUSH_RESULT: "INVITATION_PUSH_RESULT"
};
var ConnectionState = {
  DISCONNECTED: "DISCONNECTED",
  CONNECTING: "CONNECTING",
  CONNECTED: "CONNECTED",
  RECONNECTING: "RECONNECTING"
};
var ConnectionReason = {
  LOGIN: "LOGIN",
  LOGOUT: "LOGOUT",
  NETWORK: "NETWORK",
  KICKED_OUT: "KICKED_OUT",
  TOKEN_EXPIRED: "TOKEN_EXPIRED",
  SERVER_SHUTDOWN: "SERVER_SHUTDOWN"
};
var ErrorCode = {
  OK: 0,
  INVALID_ARGUMENT: 1,
  TOO_MANY_INVITEES: 2,
  PAYLOAD_TOO_LARGE: 3,
  NOT_LOGGED_IN: 4,
  AUTH_FAILED: 5,
  TOKEN_EXPIRED: 6,
  INVITATION_NOT_FOUND: 7,
  NOT_PERMITTED: 8,
  ALREADY_ANSWERED: 9,
  INVITATION_CLOSED: 10,
  NETWORK: 11,
  REQUEST_TIMEOUT: 12,
  RATE_LIMITED: 13,
  SHUTDOWN: 14,
  SERVER: 15,
  INTERNAL: 16,
  WOULD_DEADLOCK: 17
};
var PushProvider = {
  APNS: "APNS",
  APNS_VOIP: "APNS_VOIP",
  FCM: "FCM",
  WEBHOOK: "WEBHOOK"
};
var PushOutcome = {
  SENT: "SENT",
  FAILED: "FAILED",
  NO_TARGET: "NO_TARGET"
};
var HistoryRole = {
  ANY: "ANY",
  SENT: "SENT",
  RECEIVED: "RECEIVED"
};
var PROTOCOL_VERSION = 1;
var SUBPROTOCOL = "beckon.v1";
function isTerminal(state) {
  return state === "ACCEPTED" || state === "REJECTED" || state === "CANCELLED" || state === "TIMEOUT";
}
__name(isTerminal, "isTerminal");

// src/errors.ts
var NAMES = {};
for (const [name, code] of Object.entries(ErrorCode)) NAMES[code] = name;
var _BeckonError = class _BeckonError extends Error {
  constructor(message, options) {
    super(message, options?.cause === void 0 ? void 0 : { cause: options.cause });
    /** The numeric code (`ErrorCode`); -1 for an error made without one. */
    __publicField(this, "code");
    /** The code's name, e.g. "NOT_PERMITTED" ("UNKNOWN" for a code this client does not know). */
    __publicField(this, "codeName");
    this.code = options?.code ?? -1;
    this.codeName = NAMES[this.code] ?? "UNKNOWN";
    this.name = new.target.name;
  }
  /** The error for a code: an instance of its subclass, or a plain BeckonError. */
  static fromCode(code, message) {
    const make = CLASSES[code];
    const text = message ?? NAMES[code] ?? `error ${code}`;
    return make ? new make(text) : new _BeckonError(text, { code });
  }
};
__name(_BeckonError, "BeckonError");
var BeckonError = _BeckonError;
var _InvalidArgumentError = class _InvalidArgumentError extends BeckonError {
  constructor(message, options) {
    super(message, { code: ErrorCode.INVALID_ARGUMENT, cause: options?.cause });
  }
};
__name(_InvalidArgumentError, "InvalidArgumentError");
var InvalidArgumentError = _InvalidArgumentError;
var _TooManyInviteesError = class _TooManyInviteesError extends BeckonError {
  constructor(message, options) {
    super(message, { code: ErrorCode.TOO_MANY_INVITEES, cause: options?.cause });
  }
};
__name(_TooManyInviteesError, "TooManyInviteesError");
var TooManyInviteesError = _TooManyInviteesError;
var _PayloadTooLargeError = class _PayloadTooLargeError extends BeckonError {
  constructor(message, options) {
    super(message, { code: ErrorCode.PAYLOAD_TOO_LARGE, cause: options?.cause });
  }
};
__name(_PayloadTooLargeError, "PayloadTooLargeError");
var PayloadTooLargeError = _PayloadTooLargeError;
var _NotLoggedInError = class _NotLoggedInError extends BeckonError {
  constructor(message, options) {
    super(message, { code: ErrorCode.NOT_LOGGED_IN, cause: options?.cause });
  }
};
__name(_NotLoggedInError, "NotLoggedInError");
var NotLoggedInError = _NotLoggedInError;
var _AuthFailedError = class _AuthFailedError extends BeckonError {
  constructor(message, options) {
    super(message, { code: ErrorCode.AUTH_FAILED, cause: options?.cause });
  }
};
__name(_AuthFailedError, "AuthFailedError");
var AuthFailedError = _AuthFailedError;
var _TokenExpiredError = class _TokenExpiredError extends BeckonError {
  constructor(message, options) {
    super(message, { code: ErrorCode.TOKEN_EXPIRED, cause: options?.cause });
  }
};
__name(_TokenExpiredError, "TokenExpiredError");
var TokenExpiredError = _TokenExpiredError;
var _InvitationNotFoundError = class _InvitationNotFoundError extends BeckonError {
  constructor(message, options) {
    super(message, { code: ErrorCode.INVITATION_NOT_FOUND, cause: options?.cause });
  }
};
__name(_InvitationNotFoundError, "InvitationNotFoundError");
var InvitationNotFoundError = _InvitationNotFoundError;
var _NotPermittedError = class _NotPermittedError extends BeckonError {
  constructor(message, options) {
    super(message, { code: ErrorCode.NOT_PERMITTED, cause: options?.cause });
  }
};
__name(_NotPermittedError, "NotPermittedError");
var NotPermittedError = _NotPermittedError;
var _AlreadyAnsweredError = class _AlreadyAnsweredError extends BeckonError {
  constructor(message, options) {
    super(message, { code: ErrorCode.ALREADY_ANSWERED, cause: options?.cause });
  }
};
__name(_AlreadyAnsweredError, "AlreadyAnsweredError");
var AlreadyAnsweredError = _AlreadyAnsweredError;
var _InvitationClosedError = class _InvitationClosedError extends BeckonError {
  constructor(message, options) {
    super(message, { code: ErrorCode.INVITATION_CLOSED, cause: options?.cause });
  }
};
__name(_InvitationClosedError, "InvitationClosedError");
var InvitationClosedError = _InvitationClosedError;
var _NetworkError = class _NetworkError extends BeckonError {
  constructor(message, options) {
    super(message, { code: ErrorCode.NETWORK, cause: options?.cause });
  }
};
__name(_NetworkError, "NetworkError");
var NetworkError = _NetworkError;
var _RequestTimeoutError = class _RequestTimeoutError extends BeckonError {
  constructor(message, options) {
    super(message, { code: ErrorCode.REQUEST_TIMEOUT, cause: options?.cause });
  }
};
__name(_RequestTimeoutError, "RequestTimeoutError");
var RequestTimeoutError = _RequestTimeoutError;
var _RateLimitedError = class _RateLimitedError extends BeckonError {
  constructor(message, options) {
    super(message, { code: ErrorCode.RATE_LIMITED, cause: options?.cause });
  }
};
__name(_RateLimitedError, "RateLimitedError");
var RateLimitedError = _RateLimitedError;
var _ShutdownError = class _ShutdownError extends BeckonError {
  constructor(message, options) {
    super(message, { code: ErrorCode.SHUTDOWN, cause: options?.cause });
  }
};
__name(_ShutdownError, "ShutdownError");
var ShutdownError = _ShutdownError;
var _ServerError = class _ServerError extends BeckonError {
  constructor(message, options) {
    super(message, { code: ErrorCode.SERVER, cause: options?.cause });
  }
};
__name(_ServerError, "ServerError");
var ServerError = _ServerError;
var _InternalError = class _InternalError extends BeckonError {
  constructor(message, options) {
    super(message, { code: ErrorCode.INTERNAL, cause: options?.cause });
  }
};
__name(_InternalError, "InternalError");
var InternalError = _InternalError;
var _WouldDeadlockError = class _WouldDeadlockError extends BeckonError {
  constructor(message, options) {
    super(message, { code: ErrorCode.WOULD_DEADLOCK, cause: options?.cause });
  }
};
__name(_WouldDeadlockError, "WouldDeadlockError");
var WouldDeadlockError = _WouldDeadlockError;
var CLASSES = {
  1: InvalidArgumentError,
  2: TooManyInviteesError,
  3: PayloadTooLargeError,
  4: NotLoggedInError,
  5: AuthFailedError,
  6: TokenExpiredError,
  7: InvitationNotFoundError,
  8: NotPermittedError,
  9: AlreadyAnsweredError,
  10: InvitationClosedError,
  11: NetworkError,
  12: RequestTimeoutError,
  13: RateLimitedError,
  14: ShutdownError,
  15: ServerError,
  16: InternalError,
  17: WouldDeadlockError
};
function fromWire(code, message) {
  if (code !== 0 && CLASSES[code]) return BeckonError.fromCode(code, message);
  return new ServerError(`server error ${code}: ${message}`);
}
__name(fromWire, "fromWire");

// src/protocol.ts
var DEFAULT_LIMITS = {
  max_invitees: 32,
  max_timeout_secs: 600,
  max_extended_data: 8192,
  max_title: 256,
  max_message: 1024,
  max_resource_id: 64,
  max_payload: 4096,
  max_devices: 10
};
function decodeServerFrame(text) {
  const frame = JSON.parse(text);
  if (frame === null || typeof frame !== "object" || typeof frame.type !== "string") {
    throw new Error("a frame without a type");
  }
  const needs = /* @__PURE__ */ __name((field, kind) => {
    if (typeof frame[field] !== kind) throw new Error(`${frame.type} frame without ${field}`);
  }, "needs");
  switch (frame.type) {
    case "welcome":
      needs("session", "string");
      needs("last_request", "number");
      break;
    case "result":
      needs("id", "number");
      needs("seq", "number");
      break;
    case "push":
      needs("seq", "number");
      needs("push", "object");
      break;
    case "snapshot":
      needs("seq", "number");
      needs("snapshot", "object");
      break;
    case "error":
      needs("code", "number");
      break;
    case "shutdown":
      break;
    default:
      throw new Error(`unknown frame type '${frame.type}'`);
  }
  return frame;
}
__name(decodeServerFrame, "decodeServerFrame");
function helloFrame(user, device, token, resume) {
  const hello = { type: "hello", v: PROTOCOL_VERSION, user, device, token };
  if (resume) hello.resume = resume;
  return JSON.stringify(hello);
}
__name(helloFrame, "helloFrame");
function requestFrame(type, id, key, body) {
  const frame = { type, id };
  if (key !== null) frame[key] = body;
  return JSON.stringify(frame);
}
__name(requestFrame, "requestFrame");
var syncFrame = /* @__PURE__ */ __name((known) => JSON.stringify(known === null ? { type: "sync" } : { type: "sync", known }), "syncFrame");
var receiptFrame = /* @__PURE__ */ __name((invitationId) => JSON.stringify({ type: "receipt", invitation_id: invitationId }), "receiptFrame");
var ackFrame = /* @__PURE__ */ __name((seq) => JSON.stringify({ type: "ack", seq }), "ackFrame");
var STATES = {
  inviting: "INVITING",
  accepted: "ACCEPTED",
  rejected: "REJECTED",
  cancelled: "CANCELLED",
  offline: "OFFLINE",
  received: "RECEIVED",
  timeout: "TIMEOUT"
};
function stateOf(wire) {
  const state = STATES[wire];
  if (!state) throw new Error(`unknown invitee state '${wire}'`);
  return state;
}
__name(stateOf, "stateOf");
function statusOf(wire) {
  return Object.freeze({ userId: wire.user_id, state: stateOf(wire.state) });
}
__name(statusOf, "statusOf");
var statuses = /* @__PURE__ */ __name((list) => Object.freeze((list ?? []).map(statusOf)), "statuses");
var PROVIDERS = {
  apns: "APNS",
  apns_voip: "APNS_VOIP",
  fcm: "FCM",
  webhook: "WEBHOOK"
};
var OUTCOMES = { sent: "SENT", failed: "FAILED", no_push_target: "NO_TARGET" };
function sendResultOf(ok) {
  const value = ok;
  if (!value || typeof value.invitation_id !== "string") throw new Error("a send result without invitation_id");
  return Object.freeze({ invitationId: value.invitation_id, errorInvitees: statuses(value.error_invitees) });
}
__name(sendResultOf, "sendResultOf");
function cancelResultOf(ok) {
  const value = ok;
  return Object.freeze({ errorInvitees: statuses(value?.error_invitees) });
}
__name(cancelResultOf, "cancelResultOf");
function pageOf(ok) {
  const value = ok;
  return Object.freeze({
    invitations: Object.freeze(
      (value?.invitations ?? []).map(
        (i) => Object.freeze({
          invitationId: i.invitation_id,
          inviter: i.inviter,
          invitees: statuses(i.invitees),
          createdMs: i.created_ms,
          endedMs: i.ended_ms,
          sentByServer: i.sent_by_server === true
        })
      )
    ),
    nextCursor: value?.next_cursor ?? null
  });
}
__name(pageOf, "pageOf");
function notificationOf(wire) {
  if (!wire) return null;
  return Object.freeze({
    title: wire.title ?? "",
    message: wire.message ?? "",
    resourceId: wire.resource_id ?? "",
    payload: wire.payload ?? ""
  });
}
__name(notificationOf, "notificationOf");
function eventOf(push) {
  switch (push.type) {
    case "invitation_received": {
      const inviteeStates = statuses(push.invitees);
      return Object.freeze({
        kind: "INVITATION_RECEIVED",
        invitationId: push.invitation_id,
        inviter: push.inviter,
        invitees: Object.freeze(inviteeStates.map((s) => s.userId)),
        inviteeStates,
        extendedData: push.extended_data ?? "",
        notification: notificationOf(push.notification),
        secondsLeft: push.seconds_left,
        timeoutSeconds: push.seconds_left
      });
    }
    case "invitation_cancelled":
      return Object.freeze({
        kind: "INVITATION_CANCELLED",
        invitationId: push.invitation_id,
        inviter: push.inviter,
        extendedData: push.extended_data ?? ""
      });
    case "invitation_accepted":
      return Object.freeze({
        kind: "INVITATION_ACCEPTED",
        invitationId: push.invitation_id,
        invitee: push.invitee,
        extendedData: push.extended_data ?? ""
      });
    case "invitation_refused":
      return Object.freeze({
        kind: "INVITATION_REFUSED",
        invitationId: push.invitation_id,
        invitee: push.invitee,
        extendedData: push.extended_data ?? ""
      });
    case "invitation_timeout":
      return Object.freeze({ kind: "INVITATION_TIMEOUT", invitationId: push.invitation_id, inviter: push.inviter });
    case "invitation_response_timeout":
      return Object.freeze({
        kind: "INVITATION_RESPONSE_TIMEOUT",
        invitationId: push.invitation_id,
        invitees: Object.freeze([...push.invitees])
      });
    case "user_state_changed":
      return Object.freeze({
        kind: "INVITATION_USER_STATE_CHANGED",
        invitationId: push.invitation_id,
        userId: push.user_id,
        state: stateOf(push.state),
        extendedData: push.extended_data ?? ""
      });
    case "invitation_push_result":
      return Object.freeze({
        kind: "INVITATION_PUSH_RESULT",
        invitationId: push.invitation_id,
        invitee: push.invitee,
        deviceId: push.device ?? null,
        provider: push.provider ? PROVIDERS[push.provider] ?? null : null,
        outcome: OUTCOMES[push.outcome] ?? "FAILED",
        reason: push.reason ?? ""
      });
    case "token_will_expire":
      return Object.freeze({ kind: "TOKEN_WILL_EXPIRE", secondsLeft: push.seconds_left });
    default:
      return null;
  }
}
__name(eventOf, "eventOf");
var ID = /^[A-Za-z0-9_.@:+-]{1,64}$/;
var INVITATION_ID = /^[0-9a-f]{32}$/;
var encoder = new TextEncoder();
var byteLength = /* @__PURE__ */ __name((text) => encoder.encode(text).length, "byteLength");
function checkId(value, field) {
  if (typeof value !== "string" || value === "") throw new InvalidArgumentError(`${field}: must not be empty`);
  if (!ID.test(value)) {
    throw new InvalidArgumentError(`${field}: '${value}' must be 1 to 64 characters of [A-Za-z0-9_.@:+-]`);
  }
  return value;
}
__name(checkId, "checkId");
function checkInvitationId(value, field = "invitation_id") {
  if (typeof value !== "string" || value === "") throw new InvalidArgumentError(`${field}: must not be empty`);
  if (!INVITATION_ID.test(value)) {
    throw new InvalidArgumentError(`${field}: '${value}' is not 32 lowercase hex digits`);
  }
  return value;
}
__name(checkInvitationId, "checkInvitationId");
function checkText(value, field, limit) {
  if (value === void 0 || value === null) return "";
  if (typeof value !== "string") throw new InvalidArgumentError(`${field}: must be a string`);
  const size = byteLength(value);
  if (size > limit) throw new PayloadTooLargeError(`${field}: ${size} bytes, the limit is ${limit}`);
  if (value.includes("\0")) throw new InvalidArgumentError(`${field}: contains a NUL character`);
  return value;
}
__name(checkText, "checkText");
function checkInvitees(value, inviter, limits) {
  if (!Array.isArray(value)) throw new InvalidArgumentError("invitees: must be an array of user ids");
  const folded = [];
  for (const [i, user] of value.entries()) {
    const id = checkId(user, `invitees[${i}]`);
    if (!folded.includes(id)) folded.push(id);
  }
  if (folded.length === 0) throw new InvalidArgumentError("invitees: the list is empty");
  if (folded.length > limits.max_invitees) {
    throw new TooManyInviteesError(
      `invitees: ${folded.length} distinct users, the limit is ${limits.max_invitees}`
    );
  }
  if (inviter !== null && folded.includes(inviter)) {
    throw new InvalidArgumentError(`invitees: the inviter '${inviter}' may not invite itself`);
  }
  return folded;
}
__name(checkInvitees, "checkInvitees");
function checkTimeoutSeconds(value, limits) {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > limits.max_timeout_secs) {
    throw new InvalidArgumentError(
      `config.timeout_seconds: ${String(value)} s is outside 1..=${limits.max_timeout_secs} s`
    );
  }
  return value;
}
__name(checkTimeoutSeconds, "checkTimeoutSeconds");
var MAX_TIMER_MS = 2147483647;
function checkTimeoutMs(value, field, fallback) {
  if (value === void 0 || value === null) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 1 || value > MAX_TIMER_MS) {
    throw new InvalidArgumentError(`${field}: must be a number of milliseconds, 1 to ${MAX_TIMER_MS}`);
  }
  return value;
}
__name(checkTimeoutMs, "checkTimeoutMs");
function isFatal(error) {
  return error.code === ErrorCode.AUTH_FAILED || error.code === ErrorCode.TOKEN_EXPIRED || error.code === ErrorCode.INVALID_ARGUMENT || error.code === ErrorCode.NOT_PERMITTED;
}
__name(isFatal, "isFatal");

// src/receipts.ts
var MAX_ENTRIES = 1e3;
var SLACK_MS = 6e4;
var pending = /* @__PURE__ */ __name((state) => state === "inviting" || state === "offline", "pending");
var _Receipts = class _Receipts {
  constructor(me, now = Date.now) {
    __publicField(this, "me", me);
    __publicField(this, "now", now);
    /** Each unconfirmed receipt, and when it is forgotten anyway. */
    __publicField(this, "unconfirmed", /* @__PURE__ */ new Map());
  }
  /** A receipt was (or is about to be) sent; `ringingAtMostMs`: the hub's `max_timeout_secs`. */
  sent(invitationId, ringingAtMostMs) {
    const now = this.now();
    if (!this.unconfirmed.has(invitationId) && this.unconfirmed.size >= MAX_ENTRIES) {
      for (const [id, forgetAt] of this.unconfirmed) if (forgetAt <= now) this.unconfirmed.delete(id);
      if (this.unconfirmed.size >= MAX_ENTRIES) {
        let oldest = null;
        let oldestAt = Infinity;
        for (const [id, forgetAt] of this.unconfirmed) {
          if (forgetAt < oldestAt) {
            oldest = id;
            oldestAt = forgetAt;
          }
        }
        if (oldest !== null) this.unconfirmed.delete(oldest);
      }
    }
    this.unconfirmed.set(invitationId, now + ringingAtMostMs + SLACK_MS);
  }
  /** Forgets a receipt whose effect `push` shows. */
  confirmedBy(push) {
    if (this.unconfirmed.size === 0) return;
    switch (push.type) {
      case "user_state_changed":
        if (push.user_id === this.me && !pending(push.state)) this.unconfirmed.delete(push.invitation_id);
        return;
      case "invitation_cancelled":
      case "invitation_timeout":
        this.unconfirmed.delete(push.invitation_id);
        return;
      default:
        return;
    }
  }
  /** Forgets the receipts a snapshot shows the server has, or no longer needs. */
  confirmedBySnapshot(snapshot) {
    if (this.unconfirmed.size === 0) return;
    for (const id of snapshot.unknown ?? []) this.unconfirmed.delete(id);
    for (const invitation of snapshot.invitations ?? []) {
      const mine = (invitation.invitees ?? []).find((s) => s.user_id === this.me);
      if (invitation.ended || mine === void 0 || !pending(mine.state)) {
        this.unconfirmed.delete(invitation.invitation_id);
      }
    }
  }
  /** Forgets one receipt (its effect is known otherwise). */
  forget(invitationId) {
    this.unconfirmed.delete(invitationId);
  }
  /** The frames of every receipt still unconfirmed, to send again after a reconnect (those past their time are forgotten first). */
  frames() {
    const now = this.now();
    const frames = [];
    for (const [id, forgetAt] of this.unconfirmed) {
      if (forgetAt <= now) this.unconfirmed.delete(id);
      else frames.push(receiptFrame(id));
    }
    return frames;
  }
  clear() {
    this.unconfirmed.clear();
  }
};
__name(_Receipts, "Receipts");
var Receipts = _Receipts;

// src/requests.ts
var _Requests = class _Requests {
  constructor() {
    __publicField(this, "nextId", 1);
    // Ids only grow, so a Map's insertion order is id order.
    __publicField(this, "pending", /* @__PURE__ */ new Map());
  }
  takeId() {
    return this.nextId++;
  }
  /** A fresh or resumed session handled requests up to `lastRequest`: new ids go above it. */
  idsAbove(lastRequest) {
    this.nextId = Math.max(this.nextId, lastRequest + 1);
  }
  /** Registers a request; it fails with REQUEST_TIMEOUT after `timeoutMs` without a result. */
  add(request, timeoutMs) {
    let timer = null;
    if (timeoutMs !== null) {
      timer = setTimeout(() => {
        if (this.pending.delete(request.id)) {
          request.reject(new RequestTimeoutError(`no answer from the server within ${timeoutMs} ms`));
        }
      }, timeoutMs);
    }
    this.pending.set(request.id, { request, timer });
  }
  /** Removes and returns request `id`, if it still waits. */
  take(id) {
    const slot = this.pending.get(id);
    if (!slot) return void 0;
    this.pending.delete(id);
    if (slot.timer !== null) clearTimeout(slot.timer);
    return slot.request;
  }
  /** The requests still waiting with an id above `above`, in id order (probes are dropped). */
  unanswered(above) {
    const list = [];
    for (const { request } of [...this.pending.values()]) {
      if (request.what.kind === "probe") {
        this.fail(request.id, new NetworkError("the connection it probed is gone"));
      } else if (request.id > above) {
        list.push(request);
      }
    }
    return list;
  }
  fail(id, error) {
    this.take(id)?.reject(error);
  }
  /** Every waiting request fails with `error`. */
  failAll(error) {
    for (const id of [...this.pending.keys()]) this.fail(id, error);
  }
  get size() {
    return this.pending.size;
  }
};
__name(_Requests, "Requests");
var Requests = _Requests;

// src/tracker.ts
var MAX_ENTRIES2 = 1e3;
var FINISHED_KEEP_MS = 6e4;
var AFTER_DEADLINE_KEEP_MS = 11 * 6e4;
function advances(from, to) {
  const rank = /* @__PURE__ */ __name((s) => s === "INVITING" || s === "OFFLINE" ? 0 : s === "RECEIVED" ? 1 : 2, "rank");
  return from !== to && !isTerminal(from) && rank(to) >= rank(from);
}
__name(advances, "advances");
var WIRE_STATE = {
  INVITING: "inviting",
  ACCEPTED: "accepted",
  REJECTED: "rejected",
  CANCELLED: "cancelled",
  OFFLINE: "offline",
  RECEIVED: "received",
  TIMEOUT: "timeout"
};
var _Tracker = class _Tracker {
  constructor(me, now = Date.now) {
    __publicField(this, "me", me);
    __publicField(this, "now", now);
    __publicField(this, "entries", /* @__PURE__ */ new Map());
  }
  /** The invitations the application knows as open, for `sync.known`. */
  known() {
    const known = [];
    for (const [id, entry] of this.entries) if (!entry.finished) known.push(id);
    return known;
  }
  /**
   * Whether a receipt of this user for `invitationId` would change nothing, as
   * far as the application was told: this user is past INVITING/OFFLINE in
   * it, or it ended.
   */
  pastReceipt(invitationId) {
    const entry = this.entries.get(invitationId);
    if (!entry) return false;
    return entry.finished || entry.closedTold || entry.invitees.some((t) => t.user === this.me && t.state !== "INVITING" && t.state !== "OFFLINE");
  }
  /** A send succeeded: the application knows its invitees' first states. */
  sent(invitationId, invitees, offline, timeoutSecs) {
    if (this.entries.has(invitationId)) return;
    const told = invitees.map((user) => {
      const off = offline.find((s) => s.user_id === user);
      return { user, state: off ? stateOf(off.state) : "INVITING", answerTold: false };
    });
    this.insert(invitationId, this.entry(this.me, told, timeoutSecs));
  }
  /** Records `push` as told and returns it, or null if it repeats what was told already. */
  pass(push) {
    if (push.type === "invitation_received") {
      if (!this.entries.has(push.invitation_id)) {
        const told = push.invitees.map((s) => ({ user: s.user_id, state: stateOf(s.state), answerTold: false }));
        this.insert(push.invitation_id, this.entry(push.inviter, told, push.seconds_left));
      }
      return push;
    }
    const id = "invitation_id" in push ? push.invitation_id : void 0;
    const entry = id === void 0 ? void 0 : this.entries.get(id);
    if (!entry) return push;
    let passed;
    switch (push.type) {
      case "invitation_accepted":
      case "invitation_refused":
        passed = this.tellAnswer(entry, push.invitee) ? push : null;
        break;
      case "invitation_response_timeout": {
        const untold = push.invitees.filter((user) => this.tellAnswer(entry, user));
        passed = untold.length > 0 ? { ...push, invitees: untold } : null;
        break;
      }
      case "invitation_cancelled":
      case "invitation_timeout":
        passed = entry.closedTold ? null : push;
        entry.closedTold = true;
        break;
      case "user_state_changed":
        passed = this.tellState(entry, push.user_id, stateOf(push.state)) ? push : null;
        break;
      default:
        passed = push;
    }
    this.finishIfFinal(entry);
    return passed;
  }
  /** The pushes the application missed, from a snapshot: answers and ends first, then state changes. */
  missed(snapshot) {
    const missed = [];
    for (const invitation of snapshot.invitations ?? []) {
      const entry = this.entries.get(invitation.invitation_id);
      if (!entry) continue;
      if (entry.inviter === this.me) this.missedAsInviter(entry, invitation, missed);
      else this.missedAsInvitee(entry, invitation, missed);
      if (invitation.ended) {
        entry.finished = true;
        entry.forgetAt = this.now() + FINISHED_KEEP_MS;
      }
      this.finishIfFinal(entry);
    }
    for (const id of snapshot.unknown ?? []) this.entries.delete(id);
    return missed;
  }
  missedAsInviter(entry, now, missed) {
    const id = now.invitation_id;
    const timedOut = [];
    const changes = [];
    for (const status of now.invitees) {
      const state = stateOf(status.state);
      const answered = state === "ACCEPTED" || state === "REJECTED" || state === "TIMEOUT";
      if (answered && this.tellAnswer(entry, status.user_id)) {
        if (state === "ACCEPTED") {
          missed.push({ type: "invitation_accepted", invitation_id: id, invitee: status.user_id, extended_data: "" });
        } else if (state === "REJECTED") {
          missed.push({ type: "invitation_refused", invitation_id: id, invitee: status.user_id, extended_data: "" });
        } else {
          timedOut.push(status.user_id);
        }
      }
      if (this.tellState(entry, status.user_id, state)) changes.push(stateChanged(id, status.user_id, state));
    }
    if (timedOut.length > 0) {
      missed.push({ type: "invitation_response_timeout", invitation_id: id, invitees: timedOut });
    }
    missed.push(...changes);
  }
  missedAsInvitee(entry, now, missed) {
    const id = now.invitation_id;
    const mine = now.invitees.find((s) => s.user_id === this.me);
    if (mine) {
      const state = stateOf(mine.state);
      if ((state === "CANCELLED" || state === "TIMEOUT") && !entry.closedTold) {
        entry.closedTold = true;
        missed.push(
          state === "CANCELLED" ? { type: "invitation_cancelled", invitation_id: id, inviter: now.inviter, extended_data: "" } : { type: "invitation_timeout", invitation_id: id, inviter: now.inviter }
        );
      }
    }
    for (const status of now.invitees) {
      const state = stateOf(status.state);
      if (this.tellState(entry, status.user_id, state)) missed.push(stateChanged(id, status.user_id, state));
    }
  }
  entry(inviter, invitees, secondsLeft) {
    const deadline = this.now() + secondsLeft * 1e3;
    return { inviter, invitees, closedTold: false, finished: false, forgetAt: deadline + AFTER_DEADLINE_KEEP_MS };
  }
  told(entry, user) {
    let told = entry.invitees.find((t) => t.user === user);
    if (!told) {
      told = { user, state: "INVITING", answerTold: false };
      entry.invitees.push(told);
    }
    return told;
  }
  /** True the first time an answer of `user` is told. */
  tellAnswer(entry, user) {
    const told = this.told(entry, user);
    const first = !told.answerTold;
    told.answerTold = true;
    return first;
  }
  /** True if `state` is news for `user`. */
  tellState(entry, user, state) {
    const told = this.told(entry, user);
    if (!advances(told.state, state)) return false;
    told.state = state;
    return true;
  }
  finishIfFinal(entry) {
    if (!entry.finished && entry.invitees.every((t) => isTerminal(t.state))) {
      entry.finished = true;
      entry.forgetAt = this.now() + FINISHED_KEEP_MS;
    }
  }
  insert(id, entry) {
    if (this.entries.size >= MAX_ENTRIES2) this.makeRoom();
    this.entries.set(id, entry);
  }
  /** Frees at least a quarter: those past their time, then finished ones, then the oldest. */
  makeRoom() {
    const now = this.now();
    const enough = MAX_ENTRIES2 * 3 / 4;
    for (const [id, e] of this.entries) if (e.forgetAt <= now) this.entries.delete(id);
    if (this.entries.size > enough) {
      for (const [id, e] of this.entries) if (e.finished) this.entries.delete(id);
    }
    if (this.entries.size > enough) {
      const byAge = [...this.entries].sort((a, b) => a[1].forgetAt - b[1].forgetAt);
      for (const [id] of byAge.slice(0, this.entries.size - MAX_ENTRIES2 / 2)) this.entries.delete(id);
    }
  }
};
__name(_Tracker, "Tracker");
var Tracker = _Tracker;
function stateChanged(invitationId, userId, state) {
  return { type: "user_state_changed", invitation_id: invitationId, user_id: userId, state: WIRE_STATE[state], extended_data: "" };
}
__name(stateChanged, "stateChanged");

// src/link.ts
var BACKOFF_FIRST_MS = 250;
var BACKOFF_LAST_MS = 3e4;
var BACKOFF_STABLE_MS = 1e4;
var ACK_EVERY = 64;
var LOGOUT_WAIT_MS = 1e3;
var MAX_KNOWN = 1e3;
var OPEN = 1;
var _Link = class _Link {
  constructor(options) {
    __publicField(this, "options", options);
    __publicField(this, "phase", "opening");
    __publicField(this, "requests", new Requests());
    __publicField(this, "tracker");
    __publicField(this, "token");
    /**
     * The receipts sent whose effect was not seen yet (and those queued while
     * away): sent again, first, after every reconnect.
     */
    __publicField(this, "receipts");
    /** The login's sync came while no connection was up: sent once after the reconnect. */
    __publicField(this, "syncWaiting", false);
    __publicField(this, "session", null);
    /** The last `seq` received in the current session, and the last one acknowledged. */
    __publicField(this, "seen", 0);
    __publicField(this, "acked", 0);
    __publicField(this, "welcome", null);
    __publicField(this, "ws", null);
    __publicField(this, "dial", null);
    __publicField(this, "reason", "NETWORK");
    __publicField(this, "backoffMs", BACKOFF_FIRST_MS);
    /** The wait (with jitter) before the last dial. */
    __publicField(this, "waitedMs", 0);
    /** When the current (or last) connection was welcomed. */
    __publicField(this, "connectedAt", 0);
    __publicField(this, "retryTimer", null);
    __publicField(this, "heartbeatTimer", null);
    __publicField(this, "lastHeard", 0);
    __publicField(this, "lastBeat", 0);
    __publicField(this, "lastTick", 0);
    /** When the first ping or probe since the server was last heard went out. */
    __publicField(this, "askedAt", null);
    __publicField(this, "probing", false);
    /** A logout under way: its request id, and what its answer (or the close) settles. */
    __publicField(this, "loggingOutId", 0);
    __publicField(this, "loggingOut", null);
    /** Rejects the first connection's wait when a logout cancels the login. */
    __publicField(this, "cancelOpen", null);
    /**
     * The first sync written in the current session (the login's plain one, or
     * the link's with `known` after a fresh session): sent again after a resume
     * whose welcome says the server never had it (`synced: false`). A sync lost
     * with a dropped connection would leave a resumed session without pushes;
     * a repeated sync hands over only what was not handed yet.
     */
    __publicField(this, "syncSent", null);
    /**
     * A push, a snapshot or a welcome saying `synced: true` showed the server
     * has the session's sync. Only consulted for an older server, whose welcome
     * does not say `synced`: then the sync is sent again after a resume until
     * this is true.
     */
    __publicField(this, "syncConfirmed", false);
    /** Frames of the current connection not handled yet; `held` until the client is ready. */
    __publicField(this, "inbox", []);
    __publicField(this, "held", false);
    __publicField(this, "pumping", false);
    /** The socket closed; handled once the frames before the close are. */
    __publicField(this, "closing", false);
    this.token = options.token;
    this.tracker = new Tracker(options.user);
    this.receipts = new Receipts(options.user);
  }
  /** The server's limits (the defaults before the first welcome). */
  get limits() {
    return this.welcome?.limits ?? DEFAULT_LIMITS;
  }
  /** The first connection: resolves at the welcome, or fails with why the login failed. */
  async open() {
    const dial = this.startDial(null);
    this.dial = dial;
    const cancelled = new Promise((_, reject) => this.cancelOpen = reject);
    let welcome;
    try {
      welcome = await Promise.race([dial.welcomed, cancelled]);
    } catch (error) {
      if (this.phase !== "opening") {
        throw new ShutdownError("the login was cancelled (logout or close) before the server welcomed it");
      }
      this.phase = "closed";
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
  ready() {
    this.held = false;
    if (!this.pumping) this.pump();
  }
  /** Sends a request (or keeps it for the next connection); settles exactly once. */
  request(type, key, body, timeoutMs, what) {
    return new Promise((resolve, reject) => {
      if (this.phase === "closed" || this.phase === "opening") {
        reject(new NetworkError("the session is over"));
        return;
      }
      const id = this.requests.takeId();
      const frame = requestFrame(type, id, key, body);
      const limit = this.welcome?.max_frame_bytes ?? 0;
      const size = byteLength(frame);
      if (limit > 0 && size > limit) {
        reject(
          new PayloadTooLargeError(
            `request: its frame is ${size} bytes, over the server's max_frame_bytes (${limit}); send less extended data or a smaller notification`
          )
        );
        return;
      }
      const pending2 = { id, frame, what, resolve, reject };
      this.requests.add(pending2, what.kind === "probe" ? null : timeoutMs);
      if (this.phase === "open") this.write(frame);
    });
  }
  /** The login's sync (a notice: no result): written now, or once after the reconnect. */
  sync() {
    if (this.phase === "open") this.writeSync(syncFrame(null));
    else if (this.phase === "away") this.syncWaiting = true;
  }
  /**
   * The receipt of rule 4 for an invitation (a notice: no result): written
   * now if connected, and kept until its effect shows (see receipts.ts), so
   * that every reconnect sends it again; unless the application was already
   * told it would change nothing (this user past INVITING/OFFLINE in it, or
   * it ended): then it is sent but not kept.
   */
  receipt(invitationId) {
    if (this.phase !== "open" && this.phase !== "away") return;
    if (this.tracker.pastReceipt(invitationId)) {
      this.receipts.forget(invitationId);
    } else {
      const ringingAtMost = this.limits.max_timeout_secs > 0 ? this.limits.max_timeout_secs : DEFAULT_LIMITS.max_timeout_secs;
      this.receipts.sent(invitationId, ringingAtMost * 1e3);
    }
    if (this.phase === "open") this.write(receiptFrame(invitationId));
  }
  /**
   * Ends the session at the server (rule 7 applies there) and here: waiting
   * requests fail with SHUTDOWN. Resolves once the server answered the logout,
   * or closed, or after a second.
   */
  async logout() {
    const phase = this.phase;
    if (phase === "closed") return;
    this.phase = "closed";
    this.finish(new ShutdownError("the client logged out or was closed before the operation completed"));
    if (phase === "open" && this.ws) {
      const ws = this.ws;
      const done = new Promise((resolve) => this.loggingOut = resolve);
      const id = this.requests.takeId();
      this.loggingOutId = id;
      this.write(requestFrame("logout", id, null, null));
      const timer = setTimeout(() => this.loggingOut?.(false), LOGOUT_WAIT_MS);
      await done;
      clearTimeout(timer);
      this.loggingOut = null;
      this.drop(ws);
    } else if (this.dial) {
      const dial = this.dial;
      this.dial = null;
      dial.abandon();
      this.cancelOpen?.(new ShutdownError("cancelled"));
      await Promise.race([dial.welcomed.catch(() => void 0), sleep(LOGOUT_WAIT_MS)]);
    }
  }
  // ---- connecting ----------------------------------------------------------
  /** Opens a WebSocket and says hello; the welcome (or why not) within the request timeout. */
  startDial(resume) {
    const { url, user, device, WebSocket } = this.options;
    let ws;
    let settle;
    const welcomed = new Promise((resolve, reject) => settle = { resolve, reject });
    let done = false;
    let abandoned = false;
    let accepted = false;
    const early = [];
    const finish = /* @__PURE__ */ __name((error, welcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (error) {
        detach(ws);
        closeQuietly(ws);
        settle.reject(error);
      } else {
        settle.resolve(welcome);
      }
    }, "finish");
    const timer = setTimeout(
      () => finish(new RequestTimeoutError(`${url}: no welcome from the server within ${this.options.timeoutMs} ms`)),
      this.options.timeoutMs
    );
    try {
      ws = new WebSocket(url, SUBPROTOCOL);
    } catch (error) {
      ws = inertSocket();
      finish(new NetworkError(`${url}: ${describe(error)}`, { cause: error }));
      return { ws, welcomed, early, abandon() {
      } };
    }
    ws.onopen = () => {
      try {
        ws.send(helloFrame(user, device, this.token, resume));
      } catch (error) {
        finish(new NetworkError(`${url}: ${describe(error)}`));
      }
    };
    ws.onmessage = (event) => {
      if (typeof event.data !== "string") return;
      if (accepted) {
        early.push(event.data);
        return;
      }
      let frame;
      try {
        frame = decodeServerFrame(event.data);
      } catch (error) {
        finish(new ServerError(`malformed frame from the server: ${describe(error)}`));
        return;
      }
      if (frame.type === "welcome") {
        if (abandoned) {
          detach(ws);
          try {
            ws.send(requestFrame("logout", Math.max(frame.last_request + 1, 1), null, null));
          } catch {
          }
          setTimeout(() => closeQuietly(ws), 200);
          finish(new ShutdownError("abandoned"));
          return;
        }
        accepted = true;
        finish(null, frame);
      } else if (frame.type === "error") {
        finish(fromWire(frame.code, frame.message));
      } else {
        finish(new ServerError("the server did not welcome the login"));
      }
    };
    let failure = "";
    ws.onerror = (event) => {
      if (typeof event?.message === "string") failure = event.message;
    };
    ws.onclose = (event) => {
      const why = failure || (event?.reason ? `${event.code}: ${event.reason}` : `close code ${event?.code ?? "?"}`);
      finish(new NetworkError(`${url}: the connection closed before the server welcomed it (${why})`));
    };
    return {
      ws,
      welcomed,
      early,
      abandon() {
        abandoned = true;
      }
    };
  }
  // ---- serving a connection ------------------------------------------------
  serve(ws, welcome, early) {
    this.phase = "open";
    this.connectedAt = Date.now();
    this.ws = ws;
    this.dial = null;
    this.welcomed(welcome);
    this.inbox = [...early];
    this.held = true;
    this.closing = false;
    this.reason = "NETWORK";
    this.lastHeard = this.lastBeat = this.lastTick = Date.now();
    this.askedAt = null;
    this.probing = false;
    ws.onmessage = (event) => {
      if (this.ws !== ws) return;
      this.heard();
      if (typeof event.data !== "string") return;
      this.inbox.push(event.data);
      if (!this.pumping && !this.held) this.pump();
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      if (this.loggingOut) {
        this.loggingOut(false);
        return;
      }
      this.closing = true;
      if (!this.pumping && !this.held) this.pump();
    };
    ws.onerror = () => {
    };
    const node = ws;
    if (typeof node.on === "function") {
      const heard = /* @__PURE__ */ __name(() => {
        if (this.ws === ws) this.heard();
      }, "heard");
      node.on("ping", heard);
      node.on("pong", heard);
    }
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.tickMs());
    if (ws.readyState > OPEN) this.closing = true;
  }
  /**
   * Handles the next frame, and the one after in a later task. The `ws`
   * package hands over every frame of one read in the same tick; taking one
   * per task lets the promise a result settles run its continuations before
   * the next frame's events, as in a browser (an inviter learns an
   * invitation's id before any event about it).
   */
  pump() {
    const ws = this.ws;
    const data = this.inbox.shift();
    if (data === void 0 || ws === null) {
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
  text(data) {
    let frame;
    try {
      frame = decodeServerFrame(data);
    } catch {
      return;
    }
    this.received(frame);
    if (this.phase === "open" && this.seen >= this.acked + ACK_EVERY) this.ack();
  }
  heartbeatMs() {
    const secs = Math.min(300, Math.max(1, this.welcome?.heartbeat_secs ?? 15));
    return secs * 1e3;
  }
  heard() {
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
  heartbeat() {
    const ws = this.ws;
    if (this.phase !== "open" || !ws) return;
    const now = Date.now();
    const beat = this.heartbeatMs();
    const late = now - this.lastTick > Math.max(2 * this.tickMs(), beat / 2);
    this.lastTick = now;
    const silence = now - this.lastHeard;
    if (!late && silence >= beat * 3 && this.askedAt !== null && now - this.askedAt >= beat) {
      this.lost("NETWORK");
      return;
    }
    if (!late && now - this.lastBeat < beat) return;
    this.lastBeat = now;
    const pinger = ws;
    if (typeof pinger.ping === "function") {
      try {
        pinger.ping();
      } catch {
      }
      this.askedAt ?? (this.askedAt = now);
    } else if ((late || silence >= beat * 2) && !this.probing) {
      this.probing = true;
      this.askedAt ?? (this.askedAt = now);
      this.request("query_invitations", "query", { limit: 1 }, 0, { kind: "probe" }).catch(() => void 0).finally(() => this.probing = false);
    }
    if (this.seen > this.acked) this.ack();
  }
  tickMs() {
    return Math.max(100, Math.min(1e3, this.heartbeatMs() / 4));
  }
  ack() {
    this.acked = this.seen;
    this.write(ackFrame(this.seen));
  }
  welcomed(welcome) {
    if (!welcome.resumed) this.seen = 0;
    this.acked = this.seen;
    this.welcome = welcome;
    this.session = welcome.session;
    this.requests.idsAbove(welcome.last_request);
  }
  write(frame) {
    const ws = this.ws;
    if (!ws || ws.readyState !== OPEN) return;
    try {
      ws.send(frame);
    } catch {
    }
  }
  /** One frame from the server. */
  received(frame) {
    if (this.phase === "closed") {
      if (frame.type === "result" && frame.id === this.loggingOutId) this.loggingOut?.(true);
      return;
    }
    switch (frame.type) {
      case "result": {
        this.seen = Math.max(this.seen, frame.seq);
        if (frame.id === this.loggingOutId && this.loggingOut) {
          this.loggingOut(true);
          return;
        }
        this.answer(frame.id, frame.ok, frame.error);
        return;
      }
      case "push": {
        this.seen = Math.max(this.seen, frame.seq);
        this.syncConfirmed = true;
        const push = frame.push;
        if (push.type === "kicked_out" || push.type === "token_expired") {
          const kicked = push.type === "kicked_out";
          this.end(
            new NetworkError(kicked ? "kicked out: the device logged in elsewhere" : "the token expired"),
            kicked ? "KICKED_OUT" : "TOKEN_EXPIRED"
          );
          return;
        }
        this.receipts.confirmedBy(push);
        const passed = this.tracker.pass(push);
        if (passed) this.options.hooks.push(passed);
        return;
      }
      case "snapshot": {
        this.seen = Math.max(this.seen, frame.seq);
        this.syncConfirmed = true;
        this.receipts.confirmedBySnapshot(frame.snapshot);
        for (const push of this.tracker.missed(frame.snapshot)) {
          if (this.phase !== "open") return;
          this.options.hooks.push(push);
        }
        return;
      }
      case "shutdown":
        this.reason = "SERVER_SHUTDOWN";
        return;
      case "error":
        return;
      case "welcome":
        return;
    }
  }
  answer(id, ok, error) {
    const request = this.requests.take(id);
    if (!request) return;
    if (error) {
      request.reject(fromWire(error.code, error.message ?? ""));
      return;
    }
    const what = request.what;
    try {
      if (what.kind === "send") {
        const value = ok;
        this.tracker.sent(value.invitation_id, what.invitees, value.error_invitees ?? [], what.timeoutSecs);
      } else if (what.kind === "renew") {
        this.token = what.token;
      }
      request.resolve(ok ?? null);
    } catch (e) {
      request.reject(new InternalError(`cannot read the server's result: ${describe(e)}`));
    }
  }
  // ---- away: reconnecting ----------------------------------------------------
  /** The connection dropped (or went silent): reconnect, unless the session is over. */
  lost(reason) {
    if (this.phase !== "open") return;
    this.phase = "away";
    this.stopHeartbeat();
    if (this.ws) this.drop(this.ws);
    this.ws = null;
    if (Date.now() - this.connectedAt >= Math.min(this.waitedMs, BACKOFF_STABLE_MS)) this.backoffMs = BACKOFF_FIRST_MS;
    this.options.hooks.changed("RECONNECTING", reason);
    this.scheduleReconnect();
  }
  /** Dials again after the current delay (with jitter), and doubles the delay for the next attempt. */
  scheduleReconnect() {
    const delay = this.backoffMs * (0.5 + Math.random() * 0.5);
    this.waitedMs = delay;
    this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_LAST_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.reconnect();
    }, delay);
  }
  async reconnect() {
    if (this.phase !== "away") return;
    const resume = this.session ? { session: this.session, seq: this.seen } : null;
    const dial = this.startDial(resume);
    this.dial = dial;
    let welcome;
    try {
      welcome = await dial.welcomed;
    } catch (error) {
      if (this.dial !== dial || this.phase !== "away") return;
      this.dial = null;
      const failure = error instanceof BeckonError ? error : new NetworkError(describe(error));
      if (isFatal(failure)) {
        this.end(
          new NetworkError(`the session could not be restored: ${failure.message}`),
          failure.codeName === "TOKEN_EXPIRED" ? "TOKEN_EXPIRED" : "LOGIN"
        );
        return;
      }
      this.scheduleReconnect();
      return;
    }
    if (this.dial !== dial || this.phase !== "away") return;
    const fresh = !welcome.resumed;
    this.serve(dial.ws, welcome, dial.early);
    this.catchUp(welcome, fresh);
    this.options.hooks.changed("CONNECTED", fresh ? "LOGIN" : "NETWORK");
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
  catchUp(welcome, fresh) {
    const backlog = this.receipts.frames();
    const syncWaiting = this.syncWaiting;
    this.syncWaiting = false;
    let sync = null;
    if (fresh) {
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
  writeSync(frame) {
    this.syncSent ?? (this.syncSent = frame);
    this.syncConfirmed = false;
    this.write(frame);
  }
  // ---- the end -------------------------------------------------------------
  /** The session is over for a reason of the server's: requests fail with `error`. */
  end(error, reason) {
    this.phase = "closed";
    this.finish(error);
    if (this.ws) this.drop(this.ws);
    this.options.hooks.ended(reason);
  }
  finish(error) {
    this.stopHeartbeat();
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.requests.failAll(error);
    this.syncWaiting = false;
    this.receipts.clear();
  }
  stopHeartbeat() {
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }
  drop(ws) {
    detach(ws);
    closeQuietly(ws);
    if (this.ws === ws) {
      this.ws = null;
      this.inbox = [];
      this.pumping = false;
    }
  }
};
__name(_Link, "Link");
var Link = _Link;
function detach(ws) {
  ws.onopen = null;
  ws.onmessage = null;
  ws.onclose = null;
  ws.onerror = () => {
  };
}
__name(detach, "detach");
function closeQuietly(ws) {
  try {
    ws.close(1e3);
  } catch {
  }
}
__name(closeQuietly, "closeQuietly");
function inertSocket() {
  return {
    readyState: 3,
    send() {
    },
    close() {
    },
    onopen: null,
    onmessage: null,
    onclose: null,
    onerror: null
  };
}
__name(inertSocket, "inertSocket");
function describe(error) {
  return error instanceof Error ? error.message : String(error);
}
__name(describe, "describe");
var immediate = globalThis.setImmediate;
var nextTask = typeof immediate === "function" ? (f) => void immediate(f) : typeof MessageChannel === "function" ? (() => {
  const queue = [];
  const channel = new MessageChannel();
  channel.port1.onmessage = () => queue.shift()?.();
  return (f) => {
    queue.push(f);
    channel.port2.postMessage(null);
  };
})() : (f) => setTimeout(f, 0);
var sleep = /* @__PURE__ */ __name((ms) => new Promise((resolve) => setTimeout(resolve, ms)), "sleep");

// src/client.ts
var DEFAULT_REQUEST_TIMEOUT_MS = 1e4;
var SEEN_SLACK_MS = 6e4;
var EVENT_NAMES = {
  CONNECTION_STATE_CHANGED: "connectionStateChanged",
  TOKEN_WILL_EXPIRE: "tokenWillExpire",
  INVITATION_RECEIVED: "invitationReceived",
  INVITATION_CANCELLED: "invitationCancelled",
  INVITATION_ACCEPTED: "invitationAccepted",
  INVITATION_REFUSED: "invitationRefused",
  INVITATION_TIMEOUT: "invitationTimeout",
  INVITATION_RESPONSE_TIMEOUT: "invitationResponseTimeout",
  INVITATION_USER_STATE_CHANGED: "invitationUserStateChanged",
  INVITATION_PUSH_RESULT: "invitationPushResult"
};
var ROLES = {
  ANY: "any",
  SENT: "sent",
  RECEIVED: "received",
  any: "any",
  sent: "sent",
  received: "received"
};
var _Client = class _Client extends EventTarget {
  /** Throws InvalidArgumentError for bad options, or when there is no WebSocket to use. */
  constructor(options) {
    super();
    __publicField(this, "serverUrl");
    __publicField(this, "deviceId");
    __publicField(this, "requestTimeoutMs");
    __publicField(this, "WebSocketImpl");
    __publicField(this, "link", null);
    /** The user of the link: set once its login succeeded. */
    __publicField(this, "user", null);
    __publicField(this, "loggingIn", false);
    __publicField(this, "loggingOut", false);
    __publicField(this, "state", "DISCONNECTED");
    __publicField(this, "isClosed", false);
    /** Rule 9: "user\ninvitation" of each invitation shown, with when it may be forgotten. */
    __publicField(this, "seen", /* @__PURE__ */ new Map());
    __publicField(this, "sweepAt", 1024);
    if (!options || typeof options !== "object") throw new InvalidArgumentError("options: required");
    const url = options.serverUrl;
    if (typeof url !== "string" || !/^wss?:\/\/[^/\s]+/i.test(url)) {
      throw new InvalidArgumentError(`serverUrl: '${String(url)}' is not a ws:// or wss:// URL`);
    }
    this.serverUrl = url;
    this.deviceId = options.deviceId === void 0 || options.deviceId === null ? randomDeviceId() : checkId(options.deviceId, "deviceId");
    this.requestTimeoutMs = checkTimeoutMs(options.requestTimeoutMs, "requestTimeoutMs", DEFAULT_REQUEST_TIMEOUT_MS);
    const impl = options.WebSocket ?? globalThis.WebSocket;
    if (typeof impl !== "function") {
      throw new InvalidArgumentError(
        "WebSocket: this runtime has no global WebSocket; pass one in the options (in Node: the `ws` package)"
      );
    }
    this.WebSocketImpl = impl;
  }
  /** The state of the last connectionStateChanged event dispatched ('DISCONNECTED' before any). */
  get connectionState() {
    return this.state;
  }
  /** The logged-in user, or null. */
  get userId() {
    return this.user;
  }
  /** True once close() has begun; operations then reject with ShutdownError. */
  get closed() {
    return this.isClosed;
  }
  /** Listens to one event kind (or 'event' for all); returns a function that stops listening. */
  on(name, listener) {
    const wrapped = /* @__PURE__ */ __name((event) => listener(event.detail), "wrapped");
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
  async login(userId, token) {
    this.alive();
    const user = checkId(userId, "user_id");
    if (token !== void 0 && token !== null && typeof token !== "string") {
      throw new InvalidArgumentError("token: must be a string");
    }
    if (this.link !== null) {
      throw new InvalidArgumentError("login: already logged in, or a login or logout is under way");
    }
    const link = new Link({
      url: this.serverUrl,
      user,
      device: this.deviceId,
      token: token ?? "",
      WebSocket: this.WebSocketImpl,
      timeoutMs: this.requestTimeoutMs,
      hooks: {
        changed: /* @__PURE__ */ __name((state, reason) => {
          if (this.link === link) this.emitState(state, reason);
        }, "changed"),
        push: /* @__PURE__ */ __name((push) => {
          if (this.link === link) this.delivered(link, user, push);
        }, "push"),
        ended: /* @__PURE__ */ __name((reason) => {
          if (this.link !== link) return;
          this.link = null;
          this.user = null;
          this.emitState("DISCONNECTED", reason);
        }, "ended")
      }
    });
    this.link = link;
    this.loggingIn = true;
    this.emitState("CONNECTING", "LOGIN");
    try {
      await link.open();
    } catch (error) {
      if (this.link === link && !this.loggingOut) {
        this.link = null;
        this.loggingIn = false;
        this.emitState("DISCONNECTED", "LOGIN");
      }
      throw error;
    }
    this.loggingIn = false;
    this.user = user;
    this.emitState("CONNECTED", "LOGIN");
    link.ready();
    link.sync();
  }
  /**
   * Logs out: the session ends at once (rule 7 cancels the user's pending
   * invitations if this was its last device); DISCONNECTED (LOGOUT) follows.
   * During a login, cancels it (the login rejects with ShutdownError).
   * Requests still waiting reject with ShutdownError.
   */
  async logout() {
    this.alive();
    const link = this.link;
    if (link === null || this.loggingOut) throw new NotLoggedInError("logout: not logged in");
    this.loggingOut = true;
    try {
      await link.logout();
    } finally {
      this.loggingOut = false;
      if (this.link === link) {
        this.link = null;
        this.user = null;
        this.loggingIn = false;
        this.emitState("DISCONNECTED", "LOGOUT");
      }
    }
  }
  /** Replaces the session's token (and its expiry) before it expires. */
  async renewToken(token, options) {
    const link = this.session();
    if (typeof token !== "string") throw new InvalidArgumentError("token: must be a string");
    const timeout = checkTimeoutMs(options?.requestTimeoutMs, "requestTimeoutMs", this.requestTimeoutMs);
    await link.request("renew_token", "token", token, timeout, { kind: "renew", token });
  }
  /** Sends an invitation: every online device of every invitee rings. */
  async sendInvitation(invitees, options) {
    const link = this.session();
    const limits = link.limits;
    if (!options || typeof options !== "object") {
      throw new InvalidArgumentError("options: required, with timeoutSeconds");
    }
    const folded = checkInvitees(invitees, this.user, limits);
    const timeoutSecs = checkTimeoutSeconds(options.timeoutSeconds, limits);
    const extendedData = checkText(options.extendedData, "extended_data", limits.max_extended_data);
    let notification = null;
    if (options.notification) {
      const n = options.notification;
      notification = {
        title: checkText(n.title, "notification.title", limits.max_title),
        message: checkText(n.message, "notification.message", limits.max_message),
        resource_id: checkText(n.resourceId, "notification.resource_id", limits.max_resource_id),
        payload: checkText(n.payload, "notification.payload", limits.max_payload)
      };
    }
    const timeout = checkTimeoutMs(options.requestTimeoutMs, "requestTimeoutMs", this.requestTimeoutMs);
    const request = {
      invitees: folded,
      timeout_secs: timeoutSecs,
      extended_data: extendedData,
      notification,
      online_only: options.onlineOnly === true,
      // A send re-sent after a reconnect returns the first invitation.
      idempotency_key: randomHex(16)
    };
    const ok = await link.request("send", "request", request, timeout, {
      kind: "send",
      invitees: folded,
      timeoutSecs
    });
    return sendResultOf(ok);
  }
  /** Cancels an invitation (inviter only) for every invitee, or for those named. */
  async cancelInvitation(invitationId, options) {
    const link = this.session();
    const id = checkInvitationId(invitationId);
    let invitees = null;
    if (options?.invitees !== void 0 && options.invitees !== null) {
      if (!Array.isArray(options.invitees)) throw new InvalidArgumentError("invitees: must be an array");
      if (options.invitees.length === 0) {
        throw new InvalidArgumentError("invitees: the list is empty (omit it to cancel every invitee)");
      }
      invitees = [];
      for (const [i, user] of options.invitees.entries()) {
        const checked = checkId(user, `invitees[${i}]`);
        if (!invitees.includes(checked)) invitees.push(checked);
      }
    }
    const extendedData = checkText(options?.extendedData, "extended_data", link.limits.max_extended_data);
    const timeout = checkTimeoutMs(options?.requestTimeoutMs, "requestTimeoutMs", this.requestTimeoutMs);
    const ok = await link.request(
      "cancel",
      "request",
      { invitation_id: id, invitees, extended_data: extendedData },
      timeout,
      { kind: "plain" }
    );
    return cancelResultOf(ok);
  }
  /** Accepts an invitation this user was invited to. */
  acceptInvitation(invitationId, options) {
    return this.answer("accept", invitationId, options);
  }
  /** Refuses an invitation this user was invited to. */
  refuseInvitation(invitationId, options) {
    return this.answer("refuse", invitationId, options);
  }
  async answer(type, invitationId, options) {
    const link = this.session();
    const id = checkInvitationId(invitationId);
    const extendedData = checkText(options?.extendedData, "extended_data", link.limits.max_extended_data);
    const timeout = checkTimeoutMs(options?.requestTimeoutMs, "requestTimeoutMs", this.requestTimeoutMs);
    await link.request(type, "answer", { invitation_id: id, extended_data: extendedData }, timeout, { kind: "plain" });
  }
  /** A page of this user's ended invitations, newest sent first. */
  async queryInvitations(query) {
    const link = this.session();
    const q = query ?? {};
    const role = ROLES[q.role ?? "ANY"];
    if (!role) throw new InvalidArgumentError(`query.role: '${String(q.role)}' is not ANY, SENT or RECEIVED`);
    const whole = /* @__PURE__ */ __name((value, field, max) => {
      if (value === void 0 || value === null) return 0;
      if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0 || value > max) {
        throw new InvalidArgumentError(`${field}: ${String(value)} is outside 0..=${max}`);
      }
      return value;
    }, "whole");
    const sinceMs = whole(q.sinceMs, "query.since_ms", Number.MAX_SAFE_INTEGER);
    const untilMs = whole(q.untilMs, "query.until_ms", Number.MAX_SAFE_INTEGER);
    const limit = whole(q.limit, "query.limit", 100);
    if (untilMs !== 0 && untilMs <= sinceMs) {
      throw new InvalidArgumentError(`query.until_ms: ${untilMs} is not after query.since_ms (${sinceMs})`);
    }
    const body = { role, since_ms: sinceMs, until_ms: untilMs, limit };
    if (q.cursor !== void 0 && q.cursor !== null && q.cursor !== "") {
      if (typeof q.cursor !== "string") throw new InvalidArgumentError("query.cursor: must be a string");
      body.cursor = q.cursor;
    }
    const timeout = checkTimeoutMs(q.requestTimeoutMs, "requestTimeoutMs", this.requestTimeoutMs);
    return pageOf(await link.request("query_invitations", "query", body, timeout, { kind: "plain" }));
  }
  /** Rings this device by push while it is not connected; kept by the server until cleared or an explicit logout. */
  async setPushTarget(target, options) {
    const link = this.session();
    const provider = { APNS: "apns", APNS_VOIP: "apns_voip", FCM: "fcm", WEBHOOK: "webhook" }[target?.provider];
    if (!provider) throw new InvalidArgumentError(`push_target.provider: '${String(target?.provider)}' is unknown`);
    if (typeof target.token !== "string" || target.token === "") {
      throw new InvalidArgumentError("push_target.token: must not be empty");
    }
    const wire = { provider, token: target.token };
    if (target.topic) wire.topic = target.topic;
    if (target.environment) {
      const environment = { PRODUCTION: "production", SANDBOX: "sandbox" }[target.environment];
      if (!environment) throw new InvalidArgumentError(`push_target.environment: '${target.environment}' is unknown`);
      wire.environment = environment;
    }
    if (target.alertToken) wire.alert_token = target.alertToken;
    const timeout = checkTimeoutMs(options?.requestTimeoutMs, "requestTimeoutMs", this.requestTimeoutMs);
    await link.request("set_push_target", "target", wire, timeout, { kind: "plain" });
  }
  /** Forgets this device's push target, if it has one. */
  async clearPushTarget(options) {
    const link = this.session();
    const timeout = checkTimeoutMs(options?.requestTimeoutMs, "requestTimeoutMs", this.requestTimeoutMs);
    await link.request("clear_push_target", null, null, timeout, { kind: "plain" });
  }
  /**
   * Closes the client: logs out if logged in (or cancels a login), pending
   * promises reject with ShutdownError, and no event follows. Idempotent.
   */
  async close() {
    if (this.isClosed) return;
    this.isClosed = true;
    const link = this.link;
    this.link = null;
    this.user = null;
    if (link) await link.logout();
  }
  // ---- internals ------------------------------------------------------------
  alive() {
    if (this.isClosed) throw new ShutdownError("the client is closed");
  }
  /** The link of a logged-in session (connected, or reconnecting: requests wait for it). */
  session() {
    this.alive();
    if (this.link === null || this.user === null || this.loggingIn || this.loggingOut) {
      throw new NotLoggedInError("not logged in");
    }
    return this.link;
  }
  /** A push from the link: receipts (rule 4), rule 9, then the event. */
  delivered(link, user, push) {
    if (push.type === "invitation_received") {
      link.receipt(push.invitation_id);
      if (!this.firstSight(user, push.invitation_id, push.seconds_left)) return;
    }
    const event = eventOf(push);
    if (event) this.emit(event);
  }
  /** Rule 9: true the first time this user is shown this invitation. */
  firstSight(user, invitationId, secondsLeft) {
    const key = `${user}
${invitationId}`;
    const now = Date.now();
    if (this.seen.has(key)) return false;
    if (this.seen.size >= this.sweepAt) {
      for (const [k, forgetAt] of this.seen) if (forgetAt <= now) this.seen.delete(k);
      this.sweepAt = Math.max(1024, this.seen.size * 2);
    }
    this.seen.set(key, now + secondsLeft * 1e3 + SEEN_SLACK_MS);
    return true;
  }
  emitState(state, reason) {
    this.emit(Object.freeze({ kind: "CONNECTION_STATE_CHANGED", state, reason }));
  }
  emit(event) {
    if (this.isClosed) return;
    if (event.kind === "CONNECTION_STATE_CHANGED") this.state = event.state;
    this.dispatchEvent(makeEvent(EVENT_NAMES[event.kind], event));
    this.dispatchEvent(makeEvent("event", event));
  }
};
__name(_Client, "Client");
var Client = _Client;
function makeEvent(name, detail) {
  if (typeof CustomEvent === "function") return new CustomEvent(name, { detail });
  const event = new Event(name);
  Object.defineProperty(event, "detail", { value: detail });
  return event;
}
__name(makeEvent, "makeEvent");
function randomHex(bytes) {
  const data = new Uint8Array(bytes);
  globalThis.crypto.getRandomValues(data);
  return Array.from(data, (b) => b.toString(16).padStart(2, "0")).join("");
}
__name(randomHex, "randomHex");
function randomDeviceId() {
  return `web-${randomHex(8)}`;
}
__name(randomDeviceId, "randomDeviceId");

// src/index.ts
var VERSION = "0.1.0";
export {
  AlreadyAnsweredError,
  AuthFailedError,
  BeckonError,
  Client,
  ConnectionReason,
  ConnectionState,
  ErrorCode,
  EventKind,
  HistoryRole,
  InternalError,
  InvalidArgumentError,
  InvitationClosedError,
  InvitationNotFoundError,
  InviteeState,
  InviteeStateCode,
  NetworkError,
  NotLoggedInError,
  NotPermittedError,
  PROTOCOL_VERSION,
  PayloadTooLargeError,
  PushOutcome,
  PushProvider,
  RateLimitedError,
  RequestTimeoutError,
  SUBPROTOCOL,
  ServerError,
  ShutdownError,
  TokenExpiredError,
  TooManyInviteesError,
  VERSION,
  WouldDeadlockError
};
