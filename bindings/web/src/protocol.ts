// The frames of docs/PROTOCOL.md ("On the wire"): what the client writes, how
// it reads what the server writes, and the conversions between the wire's
// snake case and the public camelCase shapes. No I/O here.

import { ErrorCode, PROTOCOL_VERSION, type InviteeState, type PushOutcome, type PushProvider } from './constants.js';
import { BeckonError, InvalidArgumentError, PayloadTooLargeError, TooManyInviteesError } from './errors.js';
import type { BeckonEvent, InvitationPage, InviteeStatus, Notification, SendResult } from './types.js';

// ---- what the server sends -------------------------------------------------

export interface WireLimits {
  max_invitees: number;
  max_timeout_secs: number;
  max_extended_data: number;
  max_title: number;
  max_message: number;
  max_resource_id: number;
  max_payload: number;
  max_devices: number;
}

/** `Limits::default()`: used until a welcome says otherwise. */
export const DEFAULT_LIMITS: WireLimits = {
  max_invitees: 32,
  max_timeout_secs: 600,
  max_extended_data: 8192,
  max_title: 256,
  max_message: 1024,
  max_resource_id: 64,
  max_payload: 4096,
  max_devices: 10,
};

export interface Welcome {
  type: 'welcome';
  v: number;
  session: string;
  resumed: boolean;
  last_request: number;
  limits: WireLimits;
  heartbeat_secs: number;
  grace_secs: number;
  max_frame_bytes?: number;
  /** Whether this session has had its first `sync` (absent from older servers: not said). */
  synced?: boolean;
}

export interface WireError {
  code: number;
  message: string;
}

export interface WireStatus {
  user_id: string;
  state: string;
}

export interface WireNotification {
  title: string;
  message: string;
  resource_id: string;
  payload: string;
}

/** A push (`push.push`): one of the types of docs/PROTOCOL.md, "Pushes". */
export type WirePush =
  | {
      type: 'invitation_received';
      invitation_id: string;
      inviter: string;
      invitees: WireStatus[];
      extended_data: string;
      notification: WireNotification | null;
      seconds_left: number;
    }
  | { type: 'invitation_cancelled'; invitation_id: string; inviter: string; extended_data: string }
  | { type: 'invitation_accepted'; invitation_id: string; invitee: string; extended_data: string }
  | { type: 'invitation_refused'; invitation_id: string; invitee: string; extended_data: string }
  | { type: 'invitation_timeout'; invitation_id: string; inviter: string }
  | { type: 'invitation_response_timeout'; invitation_id: string; invitees: string[] }
  | { type: 'user_state_changed'; invitation_id: string; user_id: string; state: string; extended_data: string }
  | {
      type: 'invitation_push_result';
      invitation_id: string;
      invitee: string;
      device?: string;
      provider?: string;
      outcome: string;
      reason?: string;
    }
  | { type: 'kicked_out' }
  | { type: 'token_expired' }
  | { type: 'token_will_expire'; seconds_left: number };

export interface WireSnapshotInvitation {
  invitation_id: string;
  inviter: string;
  invitees: WireStatus[];
  ended: boolean;
  seconds_left: number;
}

export interface WireSnapshot {
  invitations: WireSnapshotInvitation[];
  unknown: string[];
}

export type ServerFrame =
  | Welcome
  | { type: 'result'; id: number; seq: number; ok?: unknown; error?: WireError }
  | { type: 'push'; seq: number; push: WirePush }
  | { type: 'snapshot'; seq: number; snapshot: WireSnapshot }
  | { type: 'error'; code: number; message: string }
  | { type: 'shutdown' };

/** Reads one text frame of the server; throws on anything that is not a frame it knows. */
export function decodeServerFrame(text: string): ServerFrame {
  const frame = JSON.parse(text) as { type?: unknown; [key: string]: unknown };
  if (frame === null || typeof frame !== 'object' || typeof frame.type !== 'string') {
    throw new Error('a frame without a type');
  }
  const needs = (field: string, kind: string) => {
    if (typeof frame[field] !== kind) throw new Error(`${frame.type} frame without ${field}`);
  };
  switch (frame.type) {
    case 'welcome':
      needs('session', 'string');
      needs('last_request', 'number');
      break;
    case 'result':
      needs('id', 'number');
      needs('seq', 'number');
      break;
    case 'push':
      needs('seq', 'number');
      needs('push', 'object');
      break;
    case 'snapshot':
      needs('seq', 'number');
      needs('snapshot', 'object');
      break;
    case 'error':
      needs('code', 'number');
      break;
    case 'shutdown':
      break;
    default:
      throw new Error(`unknown frame type '${frame.type}'`);
  }
  return frame as unknown as ServerFrame;
}

// ---- what the client sends -------------------------------------------------

export function helloFrame(
  user: string,
  device: string,
  token: string,
  resume: { session: string; seq: number } | null,
): string {
  const hello: Record<string, unknown> = { type: 'hello', v: PROTOCOL_VERSION, user, device, token };
  if (resume) hello.resume = resume;
  return JSON.stringify(hello);
}

/** A request frame: `{type, id, <key>: body}`. The same body gives the same frame, id aside. */
export function requestFrame(type: string, id: number, key: string | null, body: unknown): string {
  const frame: Record<string, unknown> = { type, id };
  if (key !== null) frame[key] = body;
  return JSON.stringify(frame);
}

export const syncFrame = (known: string[] | null): string =>
  JSON.stringify(known === null ? { type: 'sync' } : { type: 'sync', known });
export const receiptFrame = (invitationId: string): string =>
  JSON.stringify({ type: 'receipt', invitation_id: invitationId });
export const ackFrame = (seq: number): string => JSON.stringify({ type: 'ack', seq });

// ---- names -----------------------------------------------------------------

const STATES: { [wire: string]: InviteeState } = {
  inviting: 'INVITING',
  accepted: 'ACCEPTED',
  rejected: 'REJECTED',
  cancelled: 'CANCELLED',
  offline: 'OFFLINE',
  received: 'RECEIVED',
  timeout: 'TIMEOUT',
};

export function stateOf(wire: string): InviteeState {
  const state = STATES[wire];
  if (!state) throw new Error(`unknown invitee state '${wire}'`);
  return state;
}

export function statusOf(wire: WireStatus): InviteeStatus {
  return Object.freeze({ userId: wire.user_id, state: stateOf(wire.state) });
}

const statuses = (list: WireStatus[] | undefined): readonly InviteeStatus[] =>
  Object.freeze((list ?? []).map(statusOf));

const PROVIDERS: { [wire: string]: PushProvider } = {
  apns: 'APNS',
  apns_voip: 'APNS_VOIP',
  fcm: 'FCM',
  webhook: 'WEBHOOK',
};
const OUTCOMES: { [wire: string]: PushOutcome } = { sent: 'SENT', failed: 'FAILED', no_push_target: 'NO_TARGET' };

export function sendResultOf(ok: unknown): SendResult {
  const value = ok as { invitation_id: string; error_invitees: WireStatus[] };
  if (!value || typeof value.invitation_id !== 'string') throw new Error('a send result without invitation_id');
  return Object.freeze({ invitationId: value.invitation_id, errorInvitees: statuses(value.error_invitees) });
}

export function cancelResultOf(ok: unknown): { errorInvitees: readonly InviteeStatus[] } {
  const value = ok as { error_invitees?: WireStatus[] } | null;
  return Object.freeze({ errorInvitees: statuses(value?.error_invitees) });
}

export function pageOf(ok: unknown): InvitationPage {
  const value = ok as {
    invitations?: {
      invitation_id: string;
      inviter: string;
      invitees: WireStatus[];
      created_ms: number;
      ended_ms: number;
      sent_by_server?: boolean;
    }[];
    next_cursor?: string | null;
  };
  return Object.freeze({
    invitations: Object.freeze(
      (value?.invitations ?? []).map((i) =>
        Object.freeze({
          invitationId: i.invitation_id,
          inviter: i.inviter,
          invitees: statuses(i.invitees),
          createdMs: i.created_ms,
          endedMs: i.ended_ms,
          sentByServer: i.sent_by_server === true,
        }),
      ),
    ),
    nextCursor: value?.next_cursor ?? null,
  });
}

function notificationOf(wire: WireNotification | null | undefined): Notification | null {
  if (!wire) return null;
  return Object.freeze({
    title: wire.title ?? '',
    message: wire.message ?? '',
    resourceId: wire.resource_id ?? '',
    payload: wire.payload ?? '',
  });
}

/** The event an invitation push stands for; null for the session's own notices and unknown types. */
export function eventOf(push: WirePush): BeckonEvent | null {
  switch (push.type) {
    case 'invitation_received': {
      const inviteeStates = statuses(push.invitees);
      return Object.freeze({
        kind: 'INVITATION_RECEIVED',
        invitationId: push.invitation_id,
        inviter: push.inviter,
        invitees: Object.freeze(inviteeStates.map((s) => s.userId)),
        inviteeStates,
        extendedData: push.extended_data ?? '',
        notification: notificationOf(push.notification),
        secondsLeft: push.seconds_left,
        timeoutSeconds: push.seconds_left,
      });
    }
    case 'invitation_cancelled':
      return Object.freeze({
        kind: 'INVITATION_CANCELLED',
        invitationId: push.invitation_id,
        inviter: push.inviter,
        extendedData: push.extended_data ?? '',
      });
    case 'invitation_accepted':
      return Object.freeze({
        kind: 'INVITATION_ACCEPTED',
        invitationId: push.invitation_id,
        invitee: push.invitee,
        extendedData: push.extended_data ?? '',
      });
    case 'invitation_refused':
      return Object.freeze({
        kind: 'INVITATION_REFUSED',
        invitationId: push.invitation_id,
        invitee: push.invitee,
        extendedData: push.extended_data ?? '',
      });
    case 'invitation_timeout':
      return Object.freeze({ kind: 'INVITATION_TIMEOUT', invitationId: push.invitation_id, inviter: push.inviter });
    case 'invitation_response_timeout':
      return Object.freeze({
        kind: 'INVITATION_RESPONSE_TIMEOUT',
        invitationId: push.invitation_id,
        invitees: Object.freeze([...push.invitees]),
      });
    case 'user_state_changed':
      return Object.freeze({
        kind: 'INVITATION_USER_STATE_CHANGED',
        invitationId: push.invitation_id,
        userId: push.user_id,
        state: stateOf(push.state),
        extendedData: push.extended_data ?? '',
      });
    case 'invitation_push_result':
      return Object.freeze({
        kind: 'INVITATION_PUSH_RESULT',
        invitationId: push.invitation_id,
        invitee: push.invitee,
        deviceId: push.device ?? null,
        provider: push.provider ? (PROVIDERS[push.provider] ?? null) : null,
        outcome: OUTCOMES[push.outcome] ?? 'FAILED',
        reason: push.reason ?? '',
      });
    case 'token_will_expire':
      return Object.freeze({ kind: 'TOKEN_WILL_EXPIRE', secondsLeft: push.seconds_left });
    default:
      return null; // kicked_out and token_expired end the session; unknown types are ignored
  }
}

// ---- checks the client makes before sending anything ----------------------

const ID = /^[A-Za-z0-9_.@:+-]{1,64}$/;
const INVITATION_ID = /^[0-9a-f]{32}$/;
const encoder = new TextEncoder();

/** The UTF-8 size of a string, as the server counts it. */
export const byteLength = (text: string): number => encoder.encode(text).length;

/** A user or device id: 1 to 64 bytes of `[A-Za-z0-9_.@:+-]`. */
export function checkId(value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '') throw new InvalidArgumentError(`${field}: must not be empty`);
  if (!ID.test(value)) {
    throw new InvalidArgumentError(`${field}: '${value}' must be 1 to 64 characters of [A-Za-z0-9_.@:+-]`);
  }
  return value;
}

export function checkInvitationId(value: unknown, field = 'invitation_id'): string {
  if (typeof value !== 'string' || value === '') throw new InvalidArgumentError(`${field}: must not be empty`);
  if (!INVITATION_ID.test(value)) {
    throw new InvalidArgumentError(`${field}: '${value}' is not 32 lowercase hex digits`);
  }
  return value;
}

/** Text fields: at most `limit` bytes of UTF-8, no NUL; absent means "". */
export function checkText(value: unknown, field: string, limit: number): string {
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') throw new InvalidArgumentError(`${field}: must be a string`);
  const size = byteLength(value);
  if (size > limit) throw new PayloadTooLargeError(`${field}: ${size} bytes, the limit is ${limit}`);
  if (value.includes('\0')) throw new InvalidArgumentError(`${field}: contains a NUL character`);
  return value;
}

/** Invitees: folded (first occurrence kept), 1 to the limit, never the inviter. */
export function checkInvitees(value: unknown, inviter: string | null, limits: WireLimits): string[] {
  if (!Array.isArray(value)) throw new InvalidArgumentError('invitees: must be an array of user ids');
  const folded: string[] = [];
  for (const [i, user] of value.entries()) {
    const id = checkId(user, `invitees[${i}]`);
    if (!folded.includes(id)) folded.push(id);
  }
  if (folded.length === 0) throw new InvalidArgumentError('invitees: the list is empty');
  if (folded.length > limits.max_invitees) {
    throw new TooManyInviteesError(
      `invitees: ${folded.length} distinct users, the limit is ${limits.max_invitees}`,
    );
  }
  if (inviter !== null && folded.includes(inviter)) {
    throw new InvalidArgumentError(`invitees: the inviter '${inviter}' may not invite itself`);
  }
  return folded;
}

export function checkTimeoutSeconds(value: unknown, limits: WireLimits): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > limits.max_timeout_secs) {
    throw new InvalidArgumentError(
      `config.timeout_seconds: ${String(value)} s is outside 1..=${limits.max_timeout_secs} s`,
    );
  }
  return value;
}

/** The longest delay a timer can wait. */
const MAX_TIMER_MS = 2_147_483_647;

/** A request timeout option: a positive number of ms, or the client's default. */
export function checkTimeoutMs(value: unknown, field: string, fallback: number): number {
  if (value === undefined || value === null) return fallback;
  // setTimeout takes at most 2^31 - 1 ms: above, it fires at once.
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 1 || value > MAX_TIMER_MS) {
    throw new InvalidArgumentError(`${field}: must be a number of milliseconds, 1 to ${MAX_TIMER_MS}`);
  }
  return value;
}

/** Errors that make a reconnect pointless: the server will refuse the session again. */
export function isFatal(error: BeckonError): boolean {
  return (
    error.code === ErrorCode.AUTH_FAILED ||
    error.code === ErrorCode.TOKEN_EXPIRED ||
    error.code === ErrorCode.INVALID_ARGUMENT ||
    error.code === ErrorCode.NOT_PERMITTED
  );
}
