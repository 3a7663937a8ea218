import { BeckonError } from './errors.js';
/** What the link learns from a result besides the value (for its tracker and token). */
export type RequestKind = {
    kind: 'send';
    invitees: string[];
    timeoutSecs: number;
} | {
    kind: 'renew';
    token: string;
} | {
    kind: 'probe';
} | {
    kind: 'plain';
};
export interface Pending {
    readonly id: number;
    readonly frame: string;
    readonly what: RequestKind;
    resolve(value: unknown): void;
    reject(error: BeckonError): void;
}
export declare class Requests {
    private nextId;
    private readonly pending;
    takeId(): number;
    /** A fresh or resumed session handled requests up to `lastRequest`: new ids go above it. */
    idsAbove(lastRequest: number): void;
    /** Registers a request; it fails with REQUEST_TIMEOUT after `timeoutMs` without a result. */
    add(request: Pending, timeoutMs: number | null): void;
    /** Removes and returns request `id`, if it still waits. */
    take(id: number): Pending | undefined;
    /** The requests still waiting with an id above `above`, in id order (probes are dropped). */
    unanswered(above: number): Pending[];
    fail(id: number, error: BeckonError): void;
    /** Every waiting request fails with `error`. */
    failAll(error: BeckonError): void;
    get size(): number;
}
