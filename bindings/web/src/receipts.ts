// The receipts (rule 4) this link sent whose effect it has not seen yet. A
// receipt is a notice: it gets no result and no sequence number, so one
// written just before the connection dropped may never have reached the
// server, and a resumed session does not say. The link keeps each until the
// session shows the server has it, and sends them all again after every
// reconnect (the server ignores a receipt of an invitee that is past INVITING
// or OFFLINE, so a repeat is harmless). docs/PROTOCOL.md, "Notices: sync and
// receipt on a resumed session"; the same as the native client's
// (src/transport/ws/receipts.rs).
//
// What shows it: this user's own user_state_changed for the invitation with
// RECEIVED or any later state (the hub announces every state change to every
// device of every participant, the invitee's own included), the invitation
// ending for this user (invitation_cancelled, invitation_timeout), or a
// snapshot listing it ended, with this user past INVITING/OFFLINE, or as
// unknown. Bounded: an entry is forgotten once the longest invitation the hub
// allows would have ended (plus a minute), and there are at most MAX_ENTRIES.

import { receiptFrame, type WirePush, type WireSnapshot } from './protocol.js';

/** Most receipts kept at once (Snapshot::MAX_KNOWN). */
const MAX_ENTRIES = 1000;
/** Past the longest invitation, a receipt is kept this much longer. */
const SLACK_MS = 60_000;

/** A (wire) state a receipt still changes. */
const pending = (state: string): boolean => state === 'inviting' || state === 'offline';

export class Receipts {
  /** Each unconfirmed receipt, and when it is forgotten anyway. */
  private readonly unconfirmed = new Map<string, number>();

  constructor(
    private readonly me: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** A receipt was (or is about to be) sent; `ringingAtMostMs`: the hub's `max_timeout_secs`. */
  sent(invitationId: string, ringingAtMostMs: number): void {
    const now = this.now();
    if (!this.unconfirmed.has(invitationId) && this.unconfirmed.size >= MAX_ENTRIES) {
      for (const [id, forgetAt] of this.unconfirmed) if (forgetAt <= now) this.unconfirmed.delete(id);
      if (this.unconfirmed.size >= MAX_ENTRIES) {
        // The one kept longest goes.
        let oldest: string | null = null;
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
  confirmedBy(push: WirePush): void {
    if (this.unconfirmed.size === 0) return;
    switch (push.type) {
      case 'user_state_changed':
        if (push.user_id === this.me && !pending(push.state)) this.unconfirmed.delete(push.invitation_id);
        return;
      case 'invitation_cancelled':
      case 'invitation_timeout':
        this.unconfirmed.delete(push.invitation_id);
        return;
      default:
        return;
    }
  }

  /** Forgets the receipts a snapshot shows the server has, or no longer needs. */
  confirmedBySnapshot(snapshot: WireSnapshot): void {
    if (this.unconfirmed.size === 0) return;
    for (const id of snapshot.unknown ?? []) this.unconfirmed.delete(id);
    for (const invitation of snapshot.invitations ?? []) {
      const mine = (invitation.invitees ?? []).find((s) => s.user_id === this.me);
      if (invitation.ended || mine === undefined || !pending(mine.state)) {
        this.unconfirmed.delete(invitation.invitation_id);
      }
    }
  }

  /** Forgets one receipt (its effect is known otherwise). */
  forget(invitationId: string): void {
    this.unconfirmed.delete(invitationId);
  }

  /** The frames of every receipt still unconfirmed, to send again after a reconnect (those past their time are forgotten first). */
  frames(): string[] {
    const now = this.now();
    const frames: string[] = [];
    for (const [id, forgetAt] of this.unconfirmed) {
      if (forgetAt <= now) this.unconfirmed.delete(id);
      else frames.push(receiptFrame(id));
    }
    return frames;
  }

  clear(): void {
    this.unconfirmed.clear();
  }
}
