/** The embedded store's set value. */

/** Bytes counted per member beside its own (kv-memory.ts's accounting). */
export const SET_MEMBER_OVERHEAD = 8;

/**
 * A Set that keeps the byte count of its members up to date as it changes, and counts its changes
 * (`version`), so that a cache derived from its contents (SSCAN's positions) knows when it is
 * stale.
 */
class MemberSet extends Set<string> {
  bytes = 0;
  /** Bumped by every add, delete and clear that changes the set. Not state: never snapshotted. */
  version = 0;

  override add(member: string): this {
    if (!super.has(member)) {
      this.bytes += member.length + SET_MEMBER_OVERHEAD;
      this.version++;
    }
    return super.add(member);
  }

  override delete(member: string): boolean {
    if (!super.delete(member)) return false;
    this.bytes -= member.length + SET_MEMBER_OVERHEAD;
    this.version++;
    return true;
  }

  override clear(): void {
    this.bytes = 0;
    this.version++;
    super.clear();
  }
}

/** A set of members; members are latin1 strings of their bytes. */
export class KvSet {
  readonly members = new MemberSet();

  /** Payload bytes (members and a fixed overhead per member). */
  get bytes(): number {
    return this.members.bytes;
  }
}
