import { type WirePush, type WireSnapshot, type WireStatus } from './protocol.js';
export declare class Tracker {
    private readonly me;
    private readonly now;
    private readonly entries;
    constructor(me: string, now?: () => number);
    /** The invitations the application knows as open, for `sync.known`. */
    known(): string[];
    /**
     * Whether a receipt of this user for `invitationId` would change nothing, as
     * far as the application was told: this user is past INVITING/OFFLINE in
     * it, or it ended.
     */
    pastReceipt(invitationId: string): boolean;
    /** A send succeeded: the application knows its invitees' first states. */
    sent(invitationId: string, invitees: string[], offline: WireStatus[], timeoutSecs: number): void;
    /** Records `push` as told and returns it, or null if it repeats what was told already. */
    pass(push: WirePush): WirePush | null;
    /** The pushes the application missed, from a snapshot: answers and ends first, then state changes. */
    missed(snapshot: WireSnapshot): WirePush[];
    private missedAsInviter;
    private missedAsInvitee;
    private entry;
    private told;
    /** True the first time an answer of `user` is told. */
    private tellAnswer;
    /** True if `state` is news for `user`. */
    private tellState;
    private finishIfFinal;
    private insert;
    /** Frees at least a quarter: those past their time, then finished ones, then the oldest. */
    private makeRoom;
}
