import type { SeededPrng } from "../core/index.ts";
import { BODY_KEY_BYTES } from "./log-command.ts";

/** Padding bytes a client adds to an operation at most, so batches vary in size. */
const BODY_PADDING_MAX = 24;

/** The request a client waits on: its origin (replica and incarnation) and its request key. */
export interface ClientWait {
  readonly node: number;
  readonly incarnation: number;
  readonly key: string;
}

/**
 * One client connection, like a redis client: it talks to one replica at a time and waits for
 * the answer to each operation. On -CLUSTERDOWN ("not executed"), -TIMEOUT ("may or may not") or
 * a lost connection it sends the same operation again as a new request, to any replica; an
 * operation may then run twice after a timeout, as the contract allows (a request may not).
 */
export class SimClient {
  readonly id: number;
  /** Operations started so far; the body names the current one. */
  operation = 0;
  /** The current operation's body (u32 client | u32 operation | padding); null when idle. */
  body: Uint8Array | null = null;
  /** Requests sent so far: the seq an origin answers with. */
  attempt = 0;
  wait: ClientWait | null = null;
  /** Replica it sends to next. */
  target: number;
  /** Not before this tick (after BUSY, or a replica that is down). */
  sendAtTick = 0;

  constructor(id: number, target: number) {
    this.id = id;
    this.target = target;
  }

  /** Start the next operation. */
  begin(prng: SeededPrng): void {
    this.operation++;
    const body = new Uint8Array(BODY_KEY_BYTES + prng.nextInt(BODY_PADDING_MAX));
    const view = new DataView(body.buffer);
    view.setUint32(0, this.id, true);
    view.setUint32(4, this.operation, true);
    this.body = body;
  }

  /** The operation is done (acknowledged). */
  finish(): void {
    this.body = null;
    this.wait = null;
  }

  /** The request failed or its connection was lost: send the operation again, elsewhere. */
  retry(target: number, atTick: number): void {
    this.wait = null;
    this.target = target;
    this.sendAtTick = atTick;
  }
}
