import { type WirePush, type WireSnapshot } from './protocol.js';
export declare class Receipts {
    private readonly me;
    private readonly now;
    /** Each unconfirmed receipt, and when it is forgotten anyway. */
    private readonly unconfirmed;
    constructor(me: string, now?: () => number);
    /** A receipt was (or is about to be) sent; `ringingAtMostMs`: the hub's `max_timeout_secs`. */
    sent(invitationId: string, ringingAtMostMs: number): void;
    /** Forgets a receipt whose effect `push` shows. */
    confirmedBy(push: WirePush): void;
    /** Forgets the receipts a snapshot shows the server has, or no longer needs. */
    confirmedBySnapshot(snapshot: WireSnapshot): void;
    /** Forgets one receipt (its effect is known otherwise). */
    forget(invitationId: string): void;
    /** The frames of every receipt still unconfirmed, to send again after a reconnect (those past their time are forgotten first). */
    frames(): string[];
    clear(): void;
}
