// The requests waiting for a result, by id. Each keeps its frame exactly as
// first written, so one re-sent after a reconnect has the same id and the same
// body (a send keeps its idempotency key), and settles exactly once: with the
// server's answer, REQUEST_TIMEOUT, or the error that ended the session.

import { BeckonError, NetworkError, RequestTimeoutError } from './errors.js';

/** What the link learns from a result besides the value (for its tracker and token). */
export type RequestKind =
  | { kind: 'send'; invitees: string[]; timeoutSecs: number }
  | { kind: 'renew'; token: string }
  | { kind: 'probe' } // a liveness probe of the link's own: never re-sent, nobody waits
  | { kind: 'plain' };

export interface Pending {
  readonly id: number;
  readonly frame: string;
  readonly what: RequestKind;
  resolve(value: unknown): void;
  reject(error: BeckonError): void;
}

export class Requests {
  private nextId = 1;
  // Ids only grow, so a Map's insertion order is id order.
  private readonly pending = new Map<number, { request: Pending; timer: ReturnType<typeof setTimeout> | null }>();

  takeId(): number {
    return this.nextId++;
  }

  /** A fresh or resumed session handled requests up to `lastRequest`: new ids go above it. */
  idsAbove(lastRequest: number): void {
    this.nextId = Math.max(this.nextId, lastRequest + 1);
  }

  /** Registers a request; it fails with REQUEST_TIMEOUT after `timeoutMs` without a result. */
  add(request: Pending, timeoutMs: number | null): void {
    let timer: ReturnType<typeof setTimeout> | null = null;
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
  take(id: number): Pending | undefined {
    const slot = this.pending.get(id);
    if (!slot) return undefined;
    this.pending.delete(id);
    if (slot.timer !== null) clearTimeout(slot.timer);
    return slot.request;
  }

  /** The requests still waiting with an id above `above`, in id order (probes are dropped). */
  unanswered(above: number): Pending[] {
    const list: Pending[] = [];
    for (const { request } of [...this.pending.values()]) {
      if (request.what.kind === 'probe') {
        this.fail(request.id, new NetworkError('the connection it probed is gone'));
      } else if (request.id > above) {
        list.push(request);
      }
    }
    return list;
  }

  fail(id: number, error: BeckonError): void {
    this.take(id)?.reject(error);
  }

  /** Every waiting request fails with `error`. */
  failAll(error: BeckonError): void {
    for (const id of [...this.pending.keys()]) this.fail(id, error);
  }

  get size(): number {
    return this.pending.size;
  }
}
