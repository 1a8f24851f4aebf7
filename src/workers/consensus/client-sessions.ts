import { ApusError, assert } from "../../core/errors.ts";

/**
 * Exactly-once execution of client requests that an origin replica may send more than once (after
 * a leader change it cannot know whether the old leader's copy will ever be chosen, so it sends
 * the request again). Part of the replicated state: every replica applies the same log through
 * the same table and skips the same duplicates, and the table travels in snapshots.
 *
 * One session per origin incarnation (replica id + a random number per process start). A request
 * executes the first time its id is applied; its id is then remembered until the origin's floor
 * (carried in every request: every id at or below it is settled at the origin) passes it; a
 * request at or below the floor never executes again: its client has its answer, or an error.
 * Raft's client sessions (Ongaro's thesis, §6.3) with the client's acknowledgement as the floor.
 */
interface Session {
  floor: number;
  /** Ids above the floor already executed. Bounded by the origin's pending requests. */
  readonly applied: Set<number>;
  /** Log time of the session's last request: sessions idle for SESSION_IDLE_MS are dropped. */
  lastStampMs: number;
}

/**
 * A session whose origin sent nothing for this long (log time) is forgotten (its process has
 * restarted under a new incarnation, or gone quiet).
 *
 * The rule that makes forgetting safe: a copy of a request can reach the log long after the
 * request (an old leader's vote recovered by a later Phase 1; a forward queued on a TCP link that
 * was down), but every copy carries the time its origin took the request (the log header's
 * takenMs). A request that ran was taken at most CLOCK_SKEW_MAX_MS after its batch's stamp, which
 * is at most its session's last stamp; so once the session is forgotten (an hour of log time
 * later), every request it ran was taken more than SESSION_NEW_MAX_AGE_MS ago. A request of an
 * unknown session may therefore open one only if it was taken within SESSION_NEW_MAX_AGE_MS of
 * the log clock; an older one can only be a late copy, and never runs (counted as skipped).
 * REQUEST_LIFETIME_MAX_MS (the cap on --request-timeout-ms) is kept in the margin as well.
 */
export const SESSION_IDLE_MS = 60 * 60 * 1000;
/** Longest a replica keeps (and resends) a request: the cap on --request-timeout-ms. */
export const REQUEST_LIFETIME_MAX_MS = 10 * 60 * 1000;
/** Largest difference between two replicas' clocks that this rule tolerates. */
export const CLOCK_SKEW_MAX_MS = 10 * 60 * 1000;
export const SESSION_NEW_MAX_AGE_MS = SESSION_IDLE_MS - REQUEST_LIFETIME_MAX_MS - CLOCK_SKEW_MAX_MS;
/** Snapshots before the log clock was kept with the sessions: decoded with a clock of 0. */
const SNAPSHOT_MAGIC_V1 = 0x41505353; // "APSS"
const SNAPSHOT_MAGIC = 0x32505341; // "ASP2"

export class ClientSessions {
  private readonly sessions = new Map<string, Session>();
  /** Late copies refused because their session was forgotten (see SESSION_IDLE_MS). */
  staleCopies = 0;
  /**
   * The log clock: the highest batch stamp applied. Part of the replicated state (it decides
   * which sessions are forgotten and which late copies run), so it travels in snapshots: a
   * replica that installs one must judge the next batch exactly as the replica that took it.
   */
  private clock = 0;

  get clockMs(): number {
    return this.clock;
  }

  /** A batch stamped `stampMs` is applied: the log clock never runs backwards. */
  advanceClock(stampMs: number): number {
    if (stampMs > this.clock) this.clock = stampMs;
    return this.clock;
  }

  get size(): number {
    return this.sessions.size;
  }

  /**
   * True if this request must execute now (first time seen and above its session's floor).
   * `stampMs` is the log clock (the highest batch stamp applied); `takenMs` the time the origin
   * took the request (in its header).
   */
  admit(
    origin: number,
    incarnation: number,
    requestId: number,
    floor: number,
    stampMs: number,
    takenMs = stampMs,
  ): boolean {
    assert(
      Number.isSafeInteger(requestId) && Number.isSafeInteger(floor),
      "request id and floor are integers",
    );
    const key = `${origin}:${incarnation}`;
    let session = this.sessions.get(key);
    if (session === undefined) {
      if (takenMs < stampMs - SESSION_NEW_MAX_AGE_MS) {
        this.staleCopies++;
        return false; // a late copy of a request whose session was forgotten
      }
      session = { floor: 0, applied: new Set(), lastStampMs: stampMs };
      this.sessions.set(key, session);
    }
    if (stampMs > session.lastStampMs) session.lastStampMs = stampMs;
    if (floor > session.floor) {
      session.floor = floor;
      // Ids are applied in about the order they were taken, so those at or below the floor sit at
      // the front of the set (insertion order): drop from the front and stop at the first one
      // above it. A copy applied out of order stays until the front passes it; it is at or below
      // the floor, so the check below refuses it anyway. This was a scan of the whole set per
      // request (O(requests in flight) on the hot path). Deterministic: every replica applies
      // the same ids in the same order.
      for (const id of session.applied) {
        if (id > floor) break;
        session.applied.delete(id);
      }
    }
    if (requestId <= session.floor || session.applied.has(requestId)) return false;
    session.applied.add(requestId);
    return true;
  }

  /** Forget sessions idle for SESSION_IDLE_MS of log time. Deterministic: log time only. */
  expire(stampMs: number): void {
    for (const [key, session] of this.sessions)
      if (stampMs - session.lastStampMs > SESSION_IDLE_MS) this.sessions.delete(key);
  }

  /**
   * u32 magic | u32 count | f64 clockMs | count × (u32 keyLength | key | f64 floor
   * | f64 lastStampMs | u32 n | n × f64 id)
   */
  encode(): Uint8Array {
    const parts: Buffer[] = [];
    const head = Buffer.alloc(16);
    head.writeUInt32LE(SNAPSHOT_MAGIC, 0);
    head.writeUInt32LE(this.sessions.size, 4);
    head.writeDoubleLE(this.clock, 8);
    parts.push(head);
    for (const [key, session] of this.sessions) {
      const keyBytes = Buffer.from(key, "latin1");
      const fixed = Buffer.alloc(4 + keyBytes.byteLength + 20);
      fixed.writeUInt32LE(keyBytes.byteLength, 0);
      keyBytes.copy(fixed, 4);
      let offset = 4 + keyBytes.byteLength;
      fixed.writeDoubleLE(session.floor, offset);
      fixed.writeDoubleLE(session.lastStampMs, offset + 8);
      fixed.writeUInt32LE(session.applied.size, offset + 16);
      parts.push(fixed);
      const ids = Buffer.alloc(8 * session.applied.size);
      offset = 0;
      for (const id of session.applied) {
        ids.writeDoubleLE(id, offset);
        offset += 8;
      }
      parts.push(ids);
    }
    return Buffer.concat(parts);
  }

  static decode(bytes: Uint8Array): ClientSessions {
    const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const fail = (what: string) =>
      new ApusError("ERR_WIRE_FIELD", `client sessions in the snapshot: ${what}`);
    const need = (offset: number, size: number) => {
      if (offset + size > b.byteLength) throw fail("truncated");
    };
    need(0, 8);
    const magic = b.readUInt32LE(0);
    if (magic !== SNAPSHOT_MAGIC && magic !== SNAPSHOT_MAGIC_V1) throw fail("bad magic");
    const sessions = new ClientSessions();
    let offset = 8;
    if (magic === SNAPSHOT_MAGIC) {
      need(8, 8);
      sessions.clock = b.readDoubleLE(8);
      offset = 16;
    }
    for (let i = b.readUInt32LE(4); i > 0; i--) {
      need(offset, 4);
      const keyLength = b.readUInt32LE(offset);
      need(offset + 4, keyLength + 20);
      const key = b.toString("latin1", offset + 4, offset + 4 + keyLength);
      offset += 4 + keyLength;
      const floor = b.readDoubleLE(offset);
      const lastStampMs = b.readDoubleLE(offset + 8);
      const count = b.readUInt32LE(offset + 16);
      offset += 20;
      need(offset, 8 * count);
      const applied = new Set<number>();
      for (let k = 0; k < count; k++) applied.add(b.readDoubleLE(offset + 8 * k));
      offset += 8 * count;
      sessions.sessions.set(key, { floor, applied, lastStampMs });
    }
    if (offset !== b.byteLength) throw fail("trailing bytes");
    return sessions;
  }
}
