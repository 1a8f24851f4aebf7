/** The embedded store's hash value. */
/** A field → value map; field names are latin1 strings of their bytes. */
export class KvHash {
  readonly fields = new Map<string, Buffer>();
}
