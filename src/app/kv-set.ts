/** The embedded store's set value. */
/** A set of members; members are latin1 strings of their bytes. */
export class KvSet {
  readonly members = new Set<string>();
}
