import { type InviteeState } from './constants.js';
import { BeckonError } from './errors.js';
import type { BeckonEvent, InvitationPage, InviteeStatus, SendResult } from './types.js';
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
export declare const DEFAULT_LIMITS: WireLimits;
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
export type WirePush = {
    type: 'invitation_received';
    invitation_id: string;
    inviter: string;
    invitees: WireStatus[];
    extended_data: string;
    notification: WireNotification | null;
    seconds_left: number;
} | {
    type: 'invitation_cancelled';
    invitation_id: string;
    inviter: string;
    extended_data: string;
} | {
    type: 'invitation_accepted';
    invitation_id: string;
    invitee: string;
    extended_data: string;
} | {
    type: 'invitation_refused';
    invitation_id: string;
    invitee: string;
    extended_data: string;
} | {
    type: 'invitation_timeout';
    invitation_id: string;
    inviter: string;
} | {
    type: 'invitation_response_timeout';
    invitation_id: string;
    invitees: string[];
} | {
    type: 'user_state_changed';
    invitation_id: string;
    user_id: string;
    state: string;
    extended_data: string;
} | {
    type: 'invitation_push_result';
    invitation_id: string;
    invitee: string;
    device?: string;
    provider?: string;
    outcome: string;
    reason?: string;
} | {
    type: 'kicked_out';
} | {
    type: 'token_expired';
} | {
    type: 'token_will_expire';
    seconds_left: number;
};
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
export type ServerFrame = Welcome | {
    type: 'result';
    id: number;
    seq: number;
    ok?: unknown;
    error?: WireError;
} | {
    type: 'push';
    seq: number;
    push: WirePush;
} | {
    type: 'snapshot';
    seq: number;
    snapshot: WireSnapshot;
} | {
    type: 'error';
    code: number;
    message: string;
} | {
    type: 'shutdown';
};
/** Reads one text frame of the server; throws on anything that is not a frame it knows. */
export declare function decodeServerFrame(text: string): ServerFrame;
export declare function helloFrame(user: string, device: string, token: string, resume: {
    session: string;
    seq: number;
} | null): string;
/** A request frame: `{type, id, <key>: body}`. The same body gives the same frame, id aside. */
export declare function requestFrame(type: string, id: number, key: string | null, body: unknown): string;
export declare const syncFrame: (known: string[] | null) => string;
export declare const receiptFrame: (invitationId: string) => string;
export declare const ackFrame: (seq: number) => string;
export declare function stateOf(wire: string): InviteeState;
export declare function statusOf(wire: WireStatus): InviteeStatus;
export declare function sendResultOf(ok: unknown): SendResult;
export declare function cancelResultOf(ok: unknown): {
    errorInvitees: readonly InviteeStatus[];
};
export declare function pageOf(ok: unknown): InvitationPage;
/** The event an invitation push stands for; null for the session's own notices and unknown types. */
export declare function eventOf(push: WirePush): BeckonEvent | null;
/** The UTF-8 size of a string, as the server counts it. */
export declare const byteLength: (text: string) => number;
/** A user or device id: 1 to 64 bytes of `[A-Za-z0-9_.@:+-]`. */
export declare function checkId(value: unknown, field: string): string;
export declare function checkInvitationId(value: unknown, field?: string): string;
/** Text fields: at most `limit` bytes of UTF-8, no NUL; absent means "". */
export declare function checkText(value: unknown, field: string, limit: number): string;
/** Invitees: folded (first occurrence kept), 1 to the limit, never the inviter. */
export declare function checkInvitees(value: unknown, inviter: string | null, limits: WireLimits): string[];
export declare function checkTimeoutSeconds(value: unknown, limits: WireLimits): number;
/** A request timeout option: a positive number of ms, or the client's default. */
export declare function checkTimeoutMs(value: unknown, field: string, fallback: number): number;
/** Errors that make a reconnect pointless: the server will refuse the session again. */
export declare function isFatal(error: BeckonError): boolean;
