'use strict';
// Turns the structs that callbacks receive into plain, frozen JavaScript
// objects. Everything is copied here, while the callback runs: the library's
// strings and arrays are valid only until the callback returns.

const { koffi, T } = require('./native');
const {
  EventKind,
  inviteeStateName,
  eventKindName,
  connectionStateName,
  connectionReasonName,
  pushProviderName,
  pushOutcomeName,
} = require('./constants');

const freeze = Object.freeze;

/** `count` entries of `beckon_invitee` at `address`. */
function invitees(address, count) {
  const n = Number(count);
  if (address === null || address === 0n || n === 0) return freeze([]);
  return freeze(
    koffi.decode(address, T.inviteeState, n).map((entry) =>
      freeze({
        userId: entry.user_id,
        state: entry.state,
        stateName: inviteeStateName(entry.state),
      }),
    ),
  );
}

function notification(address) {
  if (address === null || address === 0n) return null;
  const n = koffi.decode(address, T.eventNotification);
  return freeze({
    title: n.title ?? '',
    message: n.message ?? '',
    resourceId: n.resource_id ?? '',
    payload: n.payload ?? '',
  });
}

/** A `beckon_result`: `{ error, message }`. */
function result(address) {
  const r = koffi.decode(address, T.result);
  return { error: r.error, message: r.error_message ?? '' };
}

/** A `beckon_send_result`: `{ error, message, value: { invitationId, errorInvitees } }`. */
function sendResult(address) {
  const r = koffi.decode(address, T.sendResult);
  return {
    error: r.error,
    message: r.error_message ?? '',
    value: freeze({
      invitationId: r.invitation_id ?? '',
      errorInvitees: invitees(r.error_invitees, r.error_invitee_count),
    }),
  };
}

/** A `beckon_cancel_result`: `{ error, message, value: { errorInvitees } }`. */
function cancelResult(address) {
  const r = koffi.decode(address, T.cancelResult);
  return {
    error: r.error,
    message: r.error_message ?? '',
    value: freeze({ errorInvitees: invitees(r.error_invitees, r.error_invitee_count) }),
  };
}

/**
 * A Unix-milliseconds `uint64_t` as koffi read it (a Number, or a BigInt past
 * 2^53 - 1) as a Number: exact for every real time (up to the year 287396).
 */
function milliseconds(value) {
  return typeof value === 'bigint' ? Number(value) : value;
}

/** `count` entries of `beckon_invitation_summary` at `address`. */
function invitationSummaries(address, count) {
  const n = Number(count);
  if (address === null || address === 0n || n === 0) return freeze([]);
  return freeze(
    koffi.decode(address, T.invitationSummary, n).map((s) =>
      freeze({
        invitationId: s.invitation_id ?? '',
        inviter: s.inviter ?? '',
        invitees: invitees(s.invitees, s.invitee_count),
        createdMs: milliseconds(s.created_ms),
        endedMs: milliseconds(s.ended_ms),
        sentByServer: s.sent_by_server !== 0,
      }),
    ),
  );
}

/**
 * A `beckon_invitation_page_result` (ABI 2.3):
 * `{ error, message, value: { invitations, nextCursor } }`, `nextCursor` null
 * on the last page (the library's "").
 */
function pageResult(address) {
  const r = koffi.decode(address, T.invitationPageResult);
  return {
    error: r.error,
    message: r.error_message ?? '',
    value: freeze({
      invitations: invitationSummaries(r.invitations, r.invitation_count),
      nextCursor: r.next_cursor ? r.next_cursor : null,
    }),
  };
}

/** The EventEmitter name of each event kind. */
const eventNames = freeze({
  [EventKind.CONNECTION_STATE_CHANGED]: 'connectionStateChanged',
  [EventKind.TOKEN_WILL_EXPIRE]: 'tokenWillExpire',
  [EventKind.INVITATION_RECEIVED]: 'invitationReceived',
  [EventKind.INVITATION_CANCELLED]: 'invitationCancelled',
  [EventKind.INVITATION_ACCEPTED]: 'invitationAccepted',
  [EventKind.INVITATION_REFUSED]: 'invitationRefused',
  [EventKind.INVITATION_TIMEOUT]: 'invitationTimeout',
  [EventKind.INVITATION_RESPONSE_TIMEOUT]: 'invitationResponseTimeout',
  [EventKind.INVITATION_USER_STATE_CHANGED]: 'invitationUserStateChanged',
  [EventKind.INVITATION_PUSH_RESULT]: 'invitationPushResult',
});

/** A `beckon_event`, with the fields its kind uses (see index.d.ts). */
function event(address) {
  const e = koffi.decode(address, T.event);
  const head = { kind: e.kind, kindName: eventKindName(e.kind) };
  const s = (value) => value ?? '';
  switch (e.kind) {
    case EventKind.CONNECTION_STATE_CHANGED:
      return freeze({
        ...head,
        state: e.connection_state,
        stateName: connectionStateName(e.connection_state),
        reason: e.connection_reason,
        reasonName: connectionReasonName(e.connection_reason),
      });
    case EventKind.TOKEN_WILL_EXPIRE:
      return freeze({ ...head, secondsLeft: e.seconds_left });
    case EventKind.INVITATION_RECEIVED:
      return freeze({
        ...head,
        invitationId: s(e.invitation_id),
        inviter: s(e.inviter),
        invitees: invitees(e.invitees, e.invitee_count),
        extendedData: s(e.extended_data),
        notification: notification(e.notification),
        secondsLeft: e.seconds_left,
      });
    case EventKind.INVITATION_CANCELLED:
      return freeze({
        ...head,
        invitationId: s(e.invitation_id),
        inviter: s(e.inviter),
        extendedData: s(e.extended_data),
      });
    case EventKind.INVITATION_ACCEPTED:
    case EventKind.INVITATION_REFUSED:
      return freeze({
        ...head,
        invitationId: s(e.invitation_id),
        invitee: s(e.user_id),
        extendedData: s(e.extended_data),
      });
    case EventKind.INVITATION_TIMEOUT:
      return freeze({ ...head, invitationId: s(e.invitation_id), inviter: s(e.inviter) });
    case EventKind.INVITATION_RESPONSE_TIMEOUT:
      return freeze({
        ...head,
        invitationId: s(e.invitation_id),
        invitees: invitees(e.invitees, e.invitee_count),
      });
    case EventKind.INVITATION_USER_STATE_CHANGED:
      return freeze({
        ...head,
        invitationId: s(e.invitation_id),
        userId: s(e.user_id),
        state: e.state,
        stateName: inviteeStateName(e.state),
        extendedData: s(e.extended_data),
      });
    case EventKind.INVITATION_PUSH_RESULT:
      return freeze({
        ...head,
        invitationId: s(e.invitation_id),
        invitee: s(e.user_id),
        deviceId: e.device_id ? e.device_id : null,
        provider: e.push_provider === 0 ? null : e.push_provider,
        providerName: e.push_provider === 0 ? null : pushProviderName(e.push_provider),
        outcome: e.push_outcome,
        outcomeName: pushOutcomeName(e.push_outcome),
        reason: s(e.push_reason),
      });
    default:
      // A kind newer than this binding: pass every field on, untyped.
      return freeze({
        ...head,
        invitationId: s(e.invitation_id),
        inviter: s(e.inviter),
        userId: s(e.user_id),
        state: e.state,
        extendedData: s(e.extended_data),
        invitees: invitees(e.invitees, e.invitee_count),
        secondsLeft: e.seconds_left,
      });
  }
}

module.exports = { result, sendResult, cancelResult, pageResult, event, eventNames };
