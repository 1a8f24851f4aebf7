/**
 * Bitmap and HyperLogLog commands where a byte-for-byte comparison with redis-server cannot say
 * enough (test/app/compat/bits-hll.ts has those cases): the store's --max-value-bytes, the key
 * and value positions and kinds the specs declare, reads served outside the log, MurmurHash64A
 * against a bigint reference, the HLL encoding against an independent register model across the
 * sparse → dense promotion, the cached cardinality, snapshots under in-place writes and memory
 * accounting.
 */
import { describe, expect, it } from "vitest";
import {
  HLL_DENSE_BYTES,
  HLL_HEADER_BYTES,
  HLL_REGISTERS,
  HLL_SPARSE_BYTES_MAX,
  hllRegisterOf,
  murmurHash64ABig,
} from "../../src/app/kv-hll.ts";
import { entryBytes } from "../../src/app/kv-keyspace.ts";
import type { ExecContext } from "../../src/app/kv-shared.ts";
import {
  commandKeys,
  commandKind,
  hasValueOver,
  isReadOnlyRequest,
  KV_STORE_DEFAULTS,
  KvStore,
  type KvStoreOptions,
} from "../../src/app/kv-store.ts";

const CONTEXT: ExecContext = { nowMs: 1_000, info: () => "" };
const bytes = (words: readonly string[]) => words.map((w) => Buffer.from(w, "latin1"));
const words = (line: string | readonly string[]) =>
  typeof line === "string" ? line.split(" ") : line;

function exec(store: KvStore, line: string | readonly string[]): Buffer {
  return store.execute(bytes(words(line)), CONTEXT);
}
function run(store: KvStore, line: string | readonly string[]): string {
  return exec(store, line).toString("latin1");
}
function read(store: KvStore, line: string): string {
  return store.executeRead(bytes(line.split(" ")), CONTEXT).toString("latin1");
}
function storeWith(options: Partial<KvStoreOptions>): KvStore {
  return new KvStore({ ...KV_STORE_DEFAULTS, ...options });
}
/** The stored value of `key` (database 0). */
function storedValue(store: KvStore, key: string): Buffer {
  return store.database(0).entries.get(key)!.value as Buffer;
}
const keysOf = (line: string) => commandKeys(bytes(line.split(" "))).map((k) => k.toString());

describe("specs: keys, values, kinds", () => {
  it("every command names its keys, BITOP's and PFMERGE's destinations included", () => {
    expect(keysOf("SETBIT k 7 1")).toEqual(["k"]);
    expect(keysOf("GETBIT k 7")).toEqual(["k"]);
    expect(keysOf("BITCOUNT k 0 -1 BIT")).toEqual(["k"]);
    expect(keysOf("BITPOS k 1 0 -1")).toEqual(["k"]);
    expect(keysOf("BITOP AND dest a b c")).toEqual(["dest", "a", "b", "c"]);
    expect(keysOf("BITOP NOT dest a")).toEqual(["dest", "a"]);
    expect(keysOf("BITFIELD k SET u8 0 1 GET u8 0")).toEqual(["k"]);
    expect(keysOf("BITFIELD_RO k GET u8 0")).toEqual(["k"]);
    expect(keysOf("PFADD h a b")).toEqual(["h"]);
    expect(keysOf("PFADD h")).toEqual(["h"]);
    expect(keysOf("PFCOUNT a b c")).toEqual(["a", "b", "c"]);
    expect(keysOf("PFMERGE dest a b")).toEqual(["dest", "a", "b"]);
    expect(keysOf("PFMERGE dest")).toEqual(["dest"]);
  });

  it("no argument is a value: PFADD's elements are hashed, BITFIELD's operands are numbers", () => {
    const big = "x".repeat(1000);
    const over = (line: string) => hasValueOver(bytes(line.split(" ")), 10);
    expect(over(`PFADD h ${big}`)).toBe(false);
    expect(over(`SETBIT k 0 ${big}`)).toBe(false);
    expect(over(`BITFIELD k SET u8 0 ${big}`)).toBe(false);
    expect(over(`BITOP AND ${big} ${big}`)).toBe(false);
  });

  it("PFCOUNT is a write (it caches the cardinality in the value); the bit reads are reads", () => {
    const kind = (name: string) => commandKind(Buffer.from(name));
    expect(kind("pfcount")).toBe("write");
    expect(kind("pfadd")).toBe("write");
    expect(kind("pfmerge")).toBe("write");
    expect(kind("setbit")).toBe("write");
    expect(kind("bitop")).toBe("write");
    expect(kind("bitfield")).toBe("write");
    for (const name of ["getbit", "bitcount", "bitpos", "bitfield_ro"]) {
      expect(kind(name)).toBe("read");
    }
    expect(isReadOnlyRequest([bytes(["PFCOUNT", "h"])])).toBe(false);
    expect(isReadOnlyRequest([bytes(["BITCOUNT", "k"]), bytes(["BITFIELD_RO", "k"])])).toBe(true);
    expect(kind("pfdebug")).toBeUndefined();
    expect(kind("pfselftest")).toBeUndefined();
  });
});

describe("reads served outside the log", () => {
  it("GETBIT, BITCOUNT, BITPOS and BITFIELD_RO change nothing, BITFIELD_RO refuses writes", () => {
    const store = new KvStore();
    run(store, "SET k foobar");
    run(store, "RPUSH list a");
    expect(read(store, "GETBIT k 1")).toBe(":1\r\n");
    expect(read(store, "GETBIT missing 1")).toBe(":0\r\n");
    expect(read(store, "BITCOUNT k")).toBe(":26\r\n");
    expect(read(store, "BITCOUNT k 5 30 BIT")).toBe(":17\r\n");
    expect(read(store, "BITPOS k 0 1")).toBe(":8\r\n");
    expect(read(store, "BITPOS missing 0")).toBe(":0\r\n");
    expect(read(store, "BITFIELD_RO k GET u8 0 GET i4 #100")).toBe("*2\r\n:102\r\n:0\r\n");
    expect(read(store, "BITFIELD_RO missing GET u8 0")).toBe("*1\r\n:0\r\n");
    expect(read(store, "BITFIELD_RO missing SET u8 0 1")).toBe(
      "-ERR BITFIELD_RO only supports the GET subcommand\r\n",
    );
    expect(read(store, "BITFIELD_RO list GET u8 0")).toMatch(/^-WRONGTYPE/);
    expect(run(store, "EXISTS missing")).toBe(":0\r\n");
    expect(() => read(store, "PFCOUNT k")).toThrow(/executeRead of a write/);
  });
});

describe("the store's limits", () => {
  const tooLarge = "-ERR value too large (limit 100 bytes, set by --max-value-bytes)\r\n";

  it("SETBIT growing past --max-value-bytes: value too large, nothing changes", () => {
    const store = storeWith({ valueBytesMax: 100 });
    expect(run(store, "SETBIT k 800 1")).toBe(tooLarge); // byte 100: 101 bytes
    expect(run(store, "EXISTS k")).toBe(":0\r\n");
    expect(run(store, "SETBIT k 799 1")).toBe(":0\r\n");
    expect(run(store, "STRLEN k")).toBe(":100\r\n");
    expect(run(store, "SETBIT k 800 0")).toBe(tooLarge);
    expect(run(store, "SETBIT k 799 0")).toBe(":1\r\n"); // within the string: no growth
    expect(run(store, "GETBIT k 4294967295")).toBe(":0\r\n"); // a read needs no room
    expect(run(store, "STRLEN k")).toBe(":100\r\n");
    // Redis's own limit (a byte at 512 MB) comes first, where Redis gives it.
    expect(run(store, "SETBIT k 4294967296 1")).toBe(
      "-ERR bit offset is not an integer or out of range\r\n",
    );
  });

  it("SETBIT between --max-value-bytes and 512 MB (the default limit)", () => {
    const store = new KvStore();
    expect(run(store, "SETBIT k 100000000 1")).toBe(
      `-ERR value too large (limit ${KV_STORE_DEFAULTS.valueBytesMax} bytes, set by --max-value-bytes)\r\n`,
    );
    expect(run(store, "EXISTS k")).toBe(":0\r\n");
  });

  it("BITFIELD growing past --max-value-bytes: value too large before any subcommand runs", () => {
    const store = storeWith({ valueBytesMax: 100 });
    expect(run(store, "BITFIELD k SET u8 800 1")).toBe(tooLarge);
    expect(run(store, "EXISTS k")).toBe(":0\r\n");
    expect(run(store, "BITFIELD k SET u8 0 7 SET u8 793 1")).toBe(tooLarge); // bits 793-800
    expect(run(store, "EXISTS k")).toBe(":0\r\n");
    expect(run(store, "BITFIELD k SET u8 0 7 SET u8 792 1")).toBe("*2\r\n:0\r\n:0\r\n");
    expect(run(store, "STRLEN k")).toBe(":100\r\n");
    expect(run(store, "BITFIELD k INCRBY u8 0 1 SET i64 #12 1")).toBe(tooLarge);
    expect(run(store, "BITFIELD k GET u8 0 GET u8 4294967288")).toBe("*2\r\n:7\r\n:0\r\n");
  });

  it("PFADD and PFMERGE refuse an HLL past --max-value-bytes and change nothing", () => {
    const limit = 5000; // a sparse HLL fits, a dense one (12304 bytes) does not
    const store = storeWith({ valueBytesMax: limit });
    const refusal = `-ERR value too large (limit ${limit} bytes, set by --max-value-bytes)\r\n`;
    run(store, "PFADD h a b c");
    const before = Buffer.from(storedValue(store, "h"));
    expect(run(store, "PFADD h e2119568080")).toBe(refusal); // a register of 35: dense
    expect(storedValue(store, "h")).toEqual(before);
    const many = ["PFADD", "h", ...Array.from({ length: 3000 }, (_, i) => `e${i}`)];
    expect(run(store, many)).toBe(refusal);
    expect(storedValue(store, "h")).toEqual(before);
    const big = new KvStore();
    run(big, "PFADD d e2119568080");
    store.database(0).insert("d", Buffer.from(storedValue(big, "d")));
    expect(run(store, "PFMERGE h d")).toBe(refusal);
    expect(storedValue(store, "h")).toEqual(before);
    expect(run(store, "PFMERGE fresh d")).toBe(refusal);
    expect(run(store, "EXISTS fresh")).toBe(":0\r\n");
    expect(run(store, "PFCOUNT h d")).toBe(":4\r\n"); // a union without storing: no limit
  });
});

/** A 64-bit MurmurHash64A written the obvious way in bigints (the reference). */
function murmurReference(data: Uint8Array, seed: bigint): bigint {
  const m = 0xc6a4a7935bd1e995n;
  const mask = (1n << 64n) - 1n;
  const len = BigInt(data.length);
  let h = (seed ^ (len * m)) & mask;
  const end = data.length - (data.length & 7);
  for (let i = 0; i < end; i += 8) {
    let k = 0n;
    for (let j = 7; j >= 0; j--) k = (k << 8n) | BigInt(data[i + j]!);
    k = (k * m) & mask;
    k ^= k >> 47n;
    k = (k * m) & mask;
    h ^= k;
    h = (h * m) & mask;
  }
  const rest = data.length & 7;
  if (rest > 0) {
    for (let j = rest - 1; j >= 0; j--) h ^= BigInt(data[end + j]!) << BigInt(8 * j);
    h = (h * m) & mask;
  }
  h ^= h >> 47n;
  h = (h * m) & mask;
  h ^= h >> 47n;
  return h;
}

describe("MurmurHash64A", () => {
  it("matches Redis's on known inputs (from the C function, seed 0xadc83b19)", () => {
    const hash = (text: string) =>
      murmurHash64ABig(Buffer.from(text, "latin1"), 0xadc83b19).toString(16).padStart(16, "0");
    expect(hash("hello")).toBe("0f656f01eecfe400");
    expect(hash("")).toBe("d8dfea6585bc9732");
    expect(hash("12345678")).toBe("95ebb86389132953");
    expect(hash("abcdefghijklmno")).toBe("10350863b35a3059");
    expect(hash("e2119568080")).toBe("1151000000002f11");
  });

  it("matches a bigint reference for every length 0-80 and arbitrary bytes", () => {
    let state = 12345;
    const next = () => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state >>> 24;
    };
    for (let length = 0; length <= 80; length++) {
      for (let round = 0; round < 5; round++) {
        const data = Uint8Array.from({ length }, next);
        for (const seed of [0, 0xadc83b19, 0xffffffff]) {
          expect(murmurHash64ABig(data, seed)).toBe(murmurReference(data, BigInt(seed)));
        }
      }
    }
  });

  it("an element's register and run: index from the low 14 bits, zeros above them + 1", () => {
    expect(hllRegisterOf(Buffer.from("e2119568080"))).toEqual({ index: 0x2f11, count: 35 });
    for (let i = 0; i < 2000; i++) {
      const element = Buffer.from(`x${i}`);
      const hash = murmurReference(element, 0xadc83b19n);
      let count = 1;
      for (let bit = 14n; bit < 64n && ((hash >> bit) & 1n) === 0n; bit++) count++;
      expect(hllRegisterOf(element)).toEqual({ index: Number(hash & 0x3fffn), count });
    }
  });
});

/** The 16384 registers of an HLL value, decoded independently of kv-hll.ts. */
function registersOf(value: Buffer): Uint8Array {
  const registers = new Uint8Array(HLL_REGISTERS);
  if (value[4] === 0) {
    expect(value.length).toBe(HLL_DENSE_BYTES);
    for (let i = 0; i < HLL_REGISTERS; i++) {
      let register = 0;
      for (let b = 0; b < 6; b++) {
        const bit = i * 6 + b;
        register |= ((value[HLL_HEADER_BYTES + (bit >> 3)]! >> (bit & 7)) & 1) << b;
      }
      registers[i] = register;
    }
    return registers;
  }
  let index = 0;
  for (let p = HLL_HEADER_BYTES; p < value.length; ) {
    const op = value[p]!;
    if (op & 0x80) {
      const run = (op & 3) + 1;
      registers.fill(((op >> 2) & 0x1f) + 1, index, index + run);
      index += run;
      p++;
    } else if (op & 0x40) {
      index += (((op & 0x3f) << 8) | value[p + 1]!) + 1;
      p += 2;
    } else {
      index += op + 1;
      p++;
    }
  }
  expect(index).toBe(HLL_REGISTERS);
  return registers;
}

describe("the HyperLogLog encoding", () => {
  it("holds every element's register, sparse up to 3000 bytes, then dense for good", () => {
    const store = new KvStore();
    const model = new Uint8Array(HLL_REGISTERS);
    let sparseSeen = 0;
    let dense = false;
    for (let i = 0; i < 4000; i++) {
      const element = `m${i}`;
      const { index, count } = hllRegisterOf(Buffer.from(element));
      const rose = count > model[index]!;
      if (rose) model[index] = count;
      expect(run(store, ["PFADD", "h", element])).toBe(rose ? ":1\r\n" : ":0\r\n");
      const value = storedValue(store, "h");
      expect(value.subarray(0, 4).toString()).toBe("HYLL");
      if (value[4] === 1) {
        expect(dense).toBe(false); // never back to sparse
        expect(value.length).toBeLessThanOrEqual(HLL_SPARSE_BYTES_MAX);
        sparseSeen = i;
      } else dense = true;
      if (i % 97 === 0 || i === sparseSeen + 1) expect(registersOf(value)).toEqual(model);
    }
    expect(dense).toBe(true);
    expect(sparseSeen).toBeGreaterThan(1000);
    expect(registersOf(storedValue(store, "h"))).toEqual(model);
  });

  it("a register past 32 turns a sparse HLL dense at once", () => {
    const store = new KvStore();
    run(store, "PFADD h a");
    expect(storedValue(store, "h")[4]).toBe(1);
    run(store, "PFADD h e2119568080");
    const value = storedValue(store, "h");
    expect(value[4]).toBe(0);
    expect(registersOf(value)[0x2f11]).toBe(35);
    expect(run(store, "PFCOUNT h")).toBe(":2\r\n");
  });

  it("PFMERGE holds each register's maximum, sparse while it fits", () => {
    const store = new KvStore();
    run(store, ["PFADD", "a", ...Array.from({ length: 300 }, (_, i) => `a${i}`)]);
    run(store, ["PFADD", "b", ...Array.from({ length: 300 }, (_, i) => `a${i + 150}`)]);
    run(store, "PFMERGE m a b");
    const expected = registersOf(storedValue(store, "a"));
    const other = registersOf(storedValue(store, "b"));
    for (let i = 0; i < HLL_REGISTERS; i++) expected[i] = Math.max(expected[i]!, other[i]!);
    expect(storedValue(store, "m")[4]).toBe(1);
    expect(registersOf(storedValue(store, "m"))).toEqual(expected);
  });

  it("caches the cardinality in the header; a change marks it stale, no change keeps it", () => {
    const store = new KvStore();
    run(store, "PFADD h a b c");
    const stale = (key: string) => (storedValue(store, key)[15]! & 0x80) !== 0;
    expect(stale("h")).toBe(true);
    expect(run(store, "PFCOUNT h")).toBe(":3\r\n");
    expect(stale("h")).toBe(false);
    expect(storedValue(store, "h").readBigUInt64LE(8)).toBe(3n);
    expect(run(store, "PFADD h a")).toBe(":0\r\n");
    expect(stale("h")).toBe(false);
    expect(run(store, "PFADD h d")).toBe(":1\r\n");
    expect(stale("h")).toBe(true);
    // PFCOUNT of several keys stores nothing.
    run(store, "PFADD g z");
    expect(run(store, "PFCOUNT h g")).toBe(":5\r\n");
    expect(stale("h")).toBe(true);
    expect(stale("g")).toBe(true);
  });

  it("is a string to every other command: TYPE, GETRANGE, APPEND, COPY", () => {
    const store = new KvStore();
    run(store, "PFADD h a");
    expect(run(store, "TYPE h")).toBe("+string\r\n");
    expect(run(store, "GETRANGE h 0 3")).toBe("$4\r\nHYLL\r\n");
    run(store, "COPY h h2");
    run(store, "PFCOUNT h2");
    expect(storedValue(store, "h")[15]! & 0x80).toBe(0x80); // the copy's cache is its own
    run(store, "APPEND h x");
    expect(run(store, "PFCOUNT h")).toBe("-INVALIDOBJ Corrupted HLL object detected\r\n");
    run(store, "SET s hello");
    expect(run(store, "PFADD s a")).toBe(
      "-WRONGTYPE Key is not a valid HyperLogLog string value.\r\n",
    );
  });
});

describe("replicas and snapshots", () => {
  it("a snapshot under way holds values as they were before SETBIT, BITFIELD, PFCOUNT wrote in place", () => {
    const store = new KvStore();
    for (let i = 0; i < 40; i++) run(store, `SET k${i} value${i}`);
    run(store, "PFADD h a b c");
    run(store, "PFADD h2 x y");
    const before = store.snapshot();
    const job = store.beginSnapshot();
    run(store, "SETBIT k39 0 1"); // in place
    run(store, "BITFIELD k38 SET u8 0 65"); // in place
    run(store, "SETBIT k37 400 1"); // grows: a new buffer
    run(store, "PFCOUNT h"); // the cache, in place
    run(store, "PFADD h2 z");
    run(store, "BITOP NOT k36 k35");
    expect(Buffer.from(job.finish())).toEqual(Buffer.from(before));
    expect(run(store, "GET k38")).toBe("$7\r\nAalue38\r\n");
  });

  it("a replica restored from a snapshot goes on with the same bytes", () => {
    const a = new KvStore();
    run(a, ["PFADD", "h", ...Array.from({ length: 500 }, (_, i) => `v${i}`)]);
    run(a, "PFCOUNT h");
    run(a, "SETBIT b 77 1");
    const b = KvStore.restore(a.snapshot());
    for (const store of [a, b]) {
      run(store, ["PFADD", "h", ...Array.from({ length: 3000 }, (_, i) => `w${i}`)]);
      run(store, "PFCOUNT h");
      run(store, "PFMERGE m h");
      run(store, "BITFIELD b INCRBY i12 #3 -100");
    }
    for (const key of ["h", "m", "b"]) expect(storedValue(b, key)).toEqual(storedValue(a, key));
  });

  it("usedBytes follows the values these commands grow, shrink and create", () => {
    const store = new KvStore();
    const check = () => {
      const keyspace = store.database(0);
      let sum = 0;
      for (const [name, entry] of keyspace.entries) {
        expect(entry.bytes).toBe(entryBytes(name, entry.value));
        sum += entry.bytes;
      }
      expect(keyspace.usedBytes).toBe(sum);
    };
    for (const line of [
      "SETBIT a 7 1",
      "SETBIT a 7000 1",
      "BITFIELD b SET u16 #100 7",
      "SET c xyz",
      "BITOP OR d a b c",
      "BITOP AND d missing",
      "BITOP NOT c a",
      "PFADD h a b",
      ["PFADD", "h", ...Array.from({ length: 3000 }, (_, i) => `e${i}`)],
      "PFCOUNT h",
      "PFMERGE m h a2",
      "PFADD a2 x",
      "PFMERGE m a2",
      "PFMERGE n a2",
    ]) {
      run(store, line);
      check();
    }
  });
});
