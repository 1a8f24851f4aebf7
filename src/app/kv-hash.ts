/** The embedded store's hash value. */

/** Bytes counted per field beside its name and value (kv-memory.ts's accounting). */
export const HASH_FIELD_OVERHEAD = 16;

/**
 * A Map that keeps the byte count of its fields and values up to date as it changes, so the
 * store's memory accounting reads a hash's size in O(1).
 */
class FieldMap extends Map<string, Buffer> {
  bytes = 0;

  override set(field: string, value: Buffer): this {
    const old = super.get(field);
    if (old === undefined) this.bytes += field.length + value.length + HASH_FIELD_OVERHEAD;
    else this.bytes += value.length - old.length;
    return super.set(field, value);
  }

  override delete(field: string): boolean {
    const old = super.get(field);
    if (old === undefined) return false;
    this.bytes -= field.length + old.length + HASH_FIELD_OVERHEAD;
    return super.delete(field);
  }

  override clear(): void {
    this.bytes = 0;
    super.clear();
  }
}

/** A field → value map; field names are latin1 strings of their bytes. */
export class KvHash {
  readonly fields = new FieldMap();

  /** Payload bytes (names, values and a fixed overhead per field). */
  get bytes(): number {
    return this.fields.bytes;
  }
}
