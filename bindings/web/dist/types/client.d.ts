import type { ConnectionState } from './constants.js';
import type { AnswerOptions, CancelInvitationOptions, CancelResult, ClientEventMap, ClientEventName, ClientOptions, InvitationPage, InvitationQuery, PushTarget, SendInvitationOptions, SendResult } from './types.js';
/**
 * One device of one user, speaking docs/PROTOCOL.md to a beckon-server.
 * Every event is dispatched twice as a CustomEvent whose `detail` is the
 * event: under its own name (e.g. 'invitationReceived') and under 'event'.
 */
export declare class Client extends EventTarget {
    readonly serverUrl: string;
    readonly deviceId: string;
    readonly requestTimeoutMs: number;
    private readonly WebSocketImpl;
    private link;
    /** The user of the link: set once its login succeeded. */
    private user;
    private loggingIn;
    private loggingOut;
    private state;
    private isClosed;
    /** Rule 9: "user\ninvitation" of each invitation shown, with when it may be forgotten. */
    private readonly seen;
    private sweepAt;
    /** Throws InvalidArgumentError for bad options, or when there is no WebSocket to use. */
    constructor(options: ClientOptions);
    /** The state of the last connectionStateChanged event dispatched ('DISCONNECTED' before any). */
    get connectionState(): ConnectionState;
    /** The logged-in user, or null. */
    get userId(): string | null;
    /** True once close() has begun; operations then reject with ShutdownError. */
    get closed(): boolean;
    /** Listens to one event kind (or 'event' for all); returns a function that stops listening. */
    on<K extends ClientEventName>(name: K, listener: (event: ClientEventMap[K]) => void): () => void;
    /**
     * Logs in: CONNECTING and CONNECTED events come before it resolves, then
     * what still rings for the user arrives as invitationReceived. Rejects with
     * AuthFailedError, TokenExpiredError, NotPermittedError (an 11th device),
     * NetworkError or RequestTimeoutError; InvalidArgumentError while logged in
     * or while a login or logout is under way.
     */
    login(userId: string, token?: string | null): Promise<void>;
    /**
     * Logs out: the session ends at once (rule 7 cancels the user's pending
     * invitations if this was its last device); DISCONNECTED (LOGOUT) follows.
     * During a login, cancels it (the login rejects with ShutdownError).
     * Requests still waiting reject with ShutdownError.
     */
    logout(): Promise<void>;
    /** Replaces the session's token (and its expiry) before it expires. */
    renewToken(token: string, options?: {
        requestTimeoutMs?: number | null;
    }): Promise<void>;
    /** Sends an invitation: every online device of every invitee rings. */
    sendInvitation(invitees: readonly string[], options: SendInvitationOptions): Promise<SendResult>;
    /** Cancels an invitation (inviter only) for every invitee, or for those named. */
    cancelInvitation(invitationId: string, options?: CancelInvitationOptions): Promise<CancelResult>;
    /** Accepts an invitation this user was invited to. */
    acceptInvitation(invitationId: string, options?: AnswerOptions): Promise<void>;
    /** Refuses an invitation this user was invited to. */
    refuseInvitation(invitationId: string, options?: AnswerOptions): Promise<void>;
    private answer;
    /** A page of this user's ended invitations, newest sent first. */
    queryInvitations(query?: InvitationQuery): Promise<InvitationPage>;
    /** Rings this device by push while it is not connected; kept by the server until cleared or an explicit logout. */
    setPushTarget(target: PushTarget, options?: {
        requestTimeoutMs?: number | null;
    }): Promise<void>;
    /** Forgets this device's push target, if it has one. */
    clearPushTarget(options?: {
        requestTimeoutMs?: number | null;
    }): Promise<void>;
    /**
     * Closes the client: logs out if logged in (or cancels a login), pending
     * promises reject with ShutdownError, and no event follows. Idempotent.
     */
    close(): Promise<void>;
    private alive;
    /** The link of a logged-in session (connected, or reconnecting: requests wait for it). */
    private session;
    /** A push from the link: receipts (rule 4), rule 9, then the event. */
    private delivered;
    /** Rule 9: true the first time this user is shown this invitation. */
    private firstSight;
    private emitState;
    private emit;
}
