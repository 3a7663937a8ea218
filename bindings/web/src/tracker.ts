// What the application has been told about each invitation of this login, so
// that after a session the server could not resume the client tells it what
// it missed (from the server's snapshot) exactly once, and drops a push that
// repeats something already told. The rules of docs/PROTOCOL.md, "Snapshot";
// the same as the native client's tracker (src/transport/ws/tracker.rs).

import { isTerminal, type InviteeState } from './constants.js';
import { stateOf, type WirePush, type WireSnapshot, type WireSnapshotInvitation, type WireStatus } from './protocol.js';

/** Most invitations tracked at once; so `known` always fits a sync (Snapshot::MAX_KNOWN). */
const MAX_ENTRIES = 1000;
/** A finished invitation is kept this long, to drop late repeats of its end. */
const FINISHED_KEEP_MS = 60_000;
/** Past its deadline the server remembers an invitation for its retention (10 minutes by default). */
const AFTER_DEADLINE_KEEP_MS = 11 * 60_000;

interface Told {
  user: string;
  state: InviteeState;
  /** Inviter side: ACCEPTED, REFUSED or RESPONSE_TIMEOUT was told for this invitee. */
  answerTold: boolean;
}

interface Entry {
  inviter: string;
  invitees: Told[];
  /** Invitee side: CANCELLED or TIMEOUT was told. */
  closedTold: boolean;
  finished: boolean;
  forgetAt: number;
}

/** A told state moves only forward: a final state never changes, RECEIVED never goes back. */
function advances(from: InviteeState, to: InviteeState): boolean {
  const rank = (s: InviteeState) => (s === 'INVITING' || s === 'OFFLINE' ? 0 : s === 'RECEIVED' ? 1 : 2);
  return from !== to && !isTerminal(from) && rank(to) >= rank(from);
}

const WIRE_STATE: { [K in InviteeState]: string } = {
  INVITING: 'inviting',
  ACCEPTED: 'accepted',
  REJECTED: 'rejected',
  CANCELLED: 'cancelled',
  OFFLINE: 'offline',
  RECEIVED: 'received',
  TIMEOUT: 'timeout',
};

export class Tracker {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly me: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** The invitations the application knows as open, for `sync.known`. */
  known(): string[] {
    const known: string[] = [];
    for (const [id, entry] of this.entries) if (!entry.finished) known.push(id);
    return known;
  }

  /**
   * Whether a receipt of this user for `invitationId` would change nothing, as
   * far as the application was told: this user is past INVITING/OFFLINE in
   * it, or it ended.
   */
  pastReceipt(invitationId: string): boolean {
    const entry = this.entries.get(invitationId);
    if (!entry) return false;
    return (
      entry.finished ||
      entry.closedTold ||
      entry.invitees.some((t) => t.user === this.me && t.state !== 'INVITING' && t.state !== 'OFFLINE')
    );
  }

  /** A send succeeded: the application knows its invitees' first states. */
  sent(invitationId: string, invitees: string[], offline: WireStatus[], timeoutSecs: number): void {
    if (this.entries.has(invitationId)) return; // a re-sent send: what was told stands
    const told = invitees.map((user) => {
      const off = offline.find((s) => s.user_id === user);
      return { user, state: off ? stateOf(off.state) : ('INVITING' as InviteeState), answerTold: false };
    });
    this.insert(invitationId, this.entry(this.me, told, timeoutSecs));
  }

  /** Records `push` as told and returns it, or null if it repeats what was told already. */
  pass(push: WirePush): WirePush | null {
    if (push.type === 'invitation_received') {
      // A repeat is the client's to hide (rule 9); it changes nothing here.
      if (!this.entries.has(push.invitation_id)) {
        const told = push.invitees.map((s) => ({ user: s.user_id, state: stateOf(s.state), answerTold: false }));
        this.insert(push.invitation_id, this.entry(push.inviter, told, push.seconds_left));
      }
      return push;
    }
    const id = 'invitation_id' in push ? push.invitation_id : undefined;
    const entry = id === undefined ? undefined : this.entries.get(id);
    if (!entry) return push;
    let passed: WirePush | null;
    switch (push.type) {
      case 'invitation_accepted':
      case 'invitation_refused':
        passed = this.tellAnswer(entry, push.invitee) ? push : null;
        break;
      case 'invitation_response_timeout': {
        const untold = push.invitees.filter((user) => this.tellAnswer(entry, user));
        passed = untold.length > 0 ? { ...push, invitees: untold } : null;
        break;
      }
      case 'invitation_cancelled':
      case 'invitation_timeout':
        passed = entry.closedTold ? null : push;
        entry.closedTold = true;
        break;
      case 'user_state_changed':
        passed = this.tellState(entry, push.user_id, stateOf(push.state)) ? push : null;
        break;
      default:
        passed = push;
    }
    this.finishIfFinal(entry);
    return passed;
  }

  /** The pushes the application missed, from a snapshot: answers and ends first, then state changes. */
  missed(snapshot: WireSnapshot): WirePush[] {
    const missed: WirePush[] = [];
    for (const invitation of snapshot.invitations ?? []) {
      const entry = this.entries.get(invitation.invitation_id);
      if (!entry) continue; // never told here: what still rings comes from the sync
      if (entry.inviter === this.me) this.missedAsInviter(entry, invitation, missed);
      else this.missedAsInvitee(entry, invitation, missed);
      if (invitation.ended) {
        entry.finished = true;
        entry.forgetAt = this.now() + FINISHED_KEEP_MS;
      }
      this.finishIfFinal(entry);
    }
    // Forgotten by the server, or never this user's: nothing more to learn.
    for (const id of snapshot.unknown ?? []) this.entries.delete(id);
    return missed;
  }

  private missedAsInviter(entry: Entry, now: WireSnapshotInvitation, missed: WirePush[]): void {
    const id = now.invitation_id;
    const timedOut: string[] = [];
    const changes: WirePush[] = [];
    for (const status of now.invitees) {
      const state = stateOf(status.state);
      const answered = state === 'ACCEPTED' || state === 'REJECTED' || state === 'TIMEOUT';
      if (answered && this.tellAnswer(entry, status.user_id)) {
        if (state === 'ACCEPTED') {
          missed.push({ type: 'invitation_accepted', invitation_id: id, invitee: status.user_id, extended_data: '' });
        } else if (state === 'REJECTED') {
          missed.push({ type: 'invitation_refused', invitation_id: id, invitee: status.user_id, extended_data: '' });
        } else {
          timedOut.push(status.user_id);
        }
      }
      if (this.tellState(entry, status.user_id, state)) changes.push(stateChanged(id, status.user_id, state));
    }
    if (timedOut.length > 0) {
      missed.push({ type: 'invitation_response_timeout', invitation_id: id, invitees: timedOut });
    }
    missed.push(...changes);
  }

  private missedAsInvitee(entry: Entry, now: WireSnapshotInvitation, missed: WirePush[]): void {
    const id = now.invitation_id;
    const mine = now.invitees.find((s) => s.user_id === this.me);
    if (mine) {
      const state = stateOf(mine.state);
      if ((state === 'CANCELLED' || state === 'TIMEOUT') && !entry.closedTold) {
        entry.closedTold = true;
        missed.push(
          state === 'CANCELLED'
            ? { type: 'invitation_cancelled', invitation_id: id, inviter: now.inviter, extended_data: '' }
            : { type: 'invitation_timeout', invitation_id: id, inviter: now.inviter },
        );
      }
    }
    for (const status of now.invitees) {
      const state = stateOf(status.state);
      if (this.tellState(entry, status.user_id, state)) missed.push(stateChanged(id, status.user_id, state));
    }
  }

  private entry(inviter: string, invitees: Told[], secondsLeft: number): Entry {
    const deadline = this.now() + secondsLeft * 1000;
    return { inviter, invitees, closedTold: false, finished: false, forgetAt: deadline + AFTER_DEADLINE_KEEP_MS };
  }

  private told(entry: Entry, user: string): Told {
    let told = entry.invitees.find((t) => t.user === user);
    if (!told) {
      told = { user, state: 'INVITING', answerTold: false };
      entry.invitees.push(told);
    }
    return told;
  }

  /** True the first time an answer of `user` is told. */
  private tellAnswer(entry: Entry, user: string): boolean {
    const told = this.told(entry, user);
    const first = !told.answerTold;
    told.answerTold = true;
    return first;
  }

  /** True if `state` is news for `user`. */
  private tellState(entry: Entry, user: string, state: InviteeState): boolean {
    const told = this.told(entry, user);
    if (!advances(told.state, state)) return false;
    told.state = state;
    return true;
  }

  private finishIfFinal(entry: Entry): void {
    if (!entry.finished && entry.invitees.every((t) => isTerminal(t.state))) {
      entry.finished = true;
      entry.forgetAt = this.now() + FINISHED_KEEP_MS;
    }
  }

  private insert(id: string, entry: Entry): void {
    if (this.entries.size >= MAX_ENTRIES) this.makeRoom();
    this.entries.set(id, entry);
  }

  /** Frees at least a quarter: those past their time, then finished ones, then the oldest. */
  private makeRoom(): void {
    const now = this.now();
    const enough = (MAX_ENTRIES * 3) / 4;
    for (const [id, e] of this.entries) if (e.forgetAt <= now) this.entries.delete(id);
    if (this.entries.size > enough) for (const [id, e] of this.entries) if (e.finished) this.entries.delete(id);
    if (this.entries.size > enough) {
      const byAge = [...this.entries].sort((a, b) => a[1].forgetAt - b[1].forgetAt);
      for (const [id] of byAge.slice(0, this.entries.size - MAX_ENTRIES / 2)) this.entries.delete(id);
    }
  }
}

function stateChanged(invitationId: string, userId: string, state: InviteeState): WirePush {
  // Answers' extended data is not in a snapshot.
  return { type: 'user_state_changed', invitation_id: invitationId, user_id: userId, state: WIRE_STATE[state], extended_data: '' };
}
