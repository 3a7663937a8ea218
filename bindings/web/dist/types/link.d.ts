import type { ConnectionReason } from './constants.js';
import { type WirePush, type WireLimits } from './protocol.js';
import { type RequestKind } from './requests.js';
import type { WebSocketConstructor } from './types.js';
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
export declare class Link {
    private readonly options;
    private phase;
    private readonly requests;
    private readonly tracker;
    private token;
    /**
     * The receipts sent whose effect was not seen yet (and those queued while
     * away): sent again, first, after every reconnect.
     */
    private readonly receipts;
    /** The login's sync came while no connection was up: sent once after the reconnect. */
    private syncWaiting;
    private session;
    /** The last `seq` received in the current session, and the last one acknowledged. */
    private seen;
    private acked;
    private welcome;
    private ws;
    private dial;
    private reason;
    private backoffMs;
    /** The wait (with jitter) before the last dial. */
    private waitedMs;
    /** When the current (or last) connection was welcomed. */
    private connectedAt;
    private retryTimer;
    private heartbeatTimer;
    private lastHeard;
    private lastBeat;
    private lastTick;
    /** When the first ping or probe since the server was last heard went out. */
    private askedAt;
    private probing;
    /** A logout under way: its request id, and what its answer (or the close) settles. */
    private loggingOutId;
    private loggingOut;
    /** Rejects the first connection's wait when a logout cancels the login. */
    private cancelOpen;
    /**
     * The first sync written in the current session (the login's plain one, or
     * the link's with `known` after a fresh session): sent again after a resume
     * whose welcome says the server never had it (`synced: false`). A sync lost
     * with a dropped connection would leave a resumed session without pushes;
     * a repeated sync hands over only what was not handed yet.
     */
    private syncSent;
    /**
     * A push, a snapshot or a welcome saying `synced: true` showed the server
     * has the session's sync. Only consulted for an older server, whose welcome
     * does not say `synced`: then the sync is sent again after a resume until
     * this is true.
     */
    private syncConfirmed;
    /** Frames of the current connection not handled yet; `held` until the client is ready. */
    private inbox;
    private held;
    private pumping;
    /** The socket closed; handled once the frames before the close are. */
    private closing;
    constructor(options: LinkOptions);
    /** The server's limits (the defaults before the first welcome). */
    get limits(): WireLimits;
    /** The first connection: resolves at the welcome, or fails with why the login failed. */
    open(): Promise<void>;
    /**
     * Starts taking the server's frames: called once the client has told the
     * application CONNECTED (so the replay of a resumed session, which came
     * with the welcome, follows it).
     */
    ready(): void;
    /** Sends a request (or keeps it for the next connection); settles exactly once. */
    request(type: string, key: string | null, body: unknown, timeoutMs: number, what: RequestKind): Promise<unknown>;
    /** The login's sync (a notice: no result): written now, or once after the reconnect. */
    sync(): void;
    /**
     * The receipt of rule 4 for an invitation (a notice: no result): written
     * now if connected, and kept until its effect shows (see receipts.ts), so
     * that every reconnect sends it again; unless the application was already
     * told it would change nothing (this user past INVITING/OFFLINE in it, or
     * it ended): then it is sent but not kept.
     */
    receipt(invitationId: string): void;
    /**
     * Ends the session at the server (rule 7 applies there) and here: waiting
     * requests fail with SHUTDOWN. Resolves once the server answered the logout,
     * or closed, or after a second.
     */
    logout(): Promise<void>;
    /** Opens a WebSocket and says hello; the welcome (or why not) within the request timeout. */
    private startDial;
    private serve;
    /**
     * Handles the next frame, and the one after in a later task. The `ws`
     * package hands over every frame of one read in the same tick; taking one
     * per task lets the promise a result settles run its continuations before
     * the next frame's events, as in a browser (an inviter learns an
     * invitation's id before any event about it).
     */
    private pump;
    private text;
    private heartbeatMs;
    private heard;
    /**
     * Pings at the server's heartbeat interval and reconnects when the server
     * has been silent for three intervals and did not answer a question asked
     * at least one interval ago. A browser cannot ping and does not see the
     * server's pings, so its question, after two silent intervals, is a request
     * for one history entry. Timers of a background tab (or a suspended
     * machine) may fire a minute late: after such a gap the client asks first
     * and judges later.
     */
    private heartbeat;
    private tickMs;
    private ack;
    private welcomed;
    private write;
    /** One frame from the server. */
    private received;
    private answer;
    /** The connection dropped (or went silent): reconnect, unless the session is over. */
    private lost;
    /** Dials again after the current delay (with jitter), and doubles the delay for the next attempt. */
    private scheduleReconnect;
    private reconnect;
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
    private catchUp;
    /** Writes a sync, remembering the session's first. */
    private writeSync;
    /** The session is over for a reason of the server's: requests fail with `error`. */
    private end;
    private finish;
    private stopHeartbeat;
    private drop;
}
