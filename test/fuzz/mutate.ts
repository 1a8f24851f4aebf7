/**
 * Byte-level mutation of valid encodings, as fast-check arbitraries.
 *
 * Random bytes almost never get past a decoder's first check (a magic number, a length, a
 * checksum), so most of what a fuzzer learns comes from inputs that are valid but for a few edits:
 * the classic mutations of AFL and libFuzzer, here as data (`Mutation`) that fast-check generates,
 * prints in a counterexample, replays from its seed and shrinks (fewer edits, smaller positions).
 *
 * Positions are generated as plain naturals and taken modulo the current length when applied, so
 * one list of edits applies to any input, and shrinking towards 0 moves an edit to the start.
 */
import fc from "fast-check";

/** One edit. Each is applied to the result of the edits before it. */
export type Mutation =
  | { readonly kind: "flip"; readonly at: number; readonly bit: number }
  | { readonly kind: "set"; readonly at: number; readonly byte: number }
  /** Adds a small delta to one byte (a length's low byte, a type, a count): off-by-one edits. */
  | { readonly kind: "add"; readonly at: number; readonly delta: number }
  | { readonly kind: "truncate"; readonly at: number }
  | { readonly kind: "insert"; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: "delete"; readonly at: number; readonly count: number }
  /** Copies a slice of the input to another place (repeats a record, a header, a length). */
  | {
      readonly kind: "duplicate";
      readonly from: number;
      readonly count: number;
      readonly at: number;
    }
  /** Overwrites a u16 or u32 (LE or BE) with an interesting value, or adds a delta to it. */
  | {
      readonly kind: "word";
      readonly at: number;
      readonly bytes: 2 | 4;
      readonly littleEndian: boolean;
      readonly value: WordValue;
    }
  /** This input up to `at`, then the donor (another valid encoding) from `from` on. */
  | { readonly kind: "splice"; readonly at: number; readonly from: number };

/** What a `word` edit writes: a fixed value, the length of the input (±1), or old value + delta. */
export type WordValue =
  | { readonly fixed: number }
  | { readonly inputLength: number }
  | { readonly delta: number };

/** Values that sit on the edges decoders check: 0, 1, powers of two and their neighbours, maxima. */
export const INTERESTING_WORDS: readonly number[] = [
  0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 15, 16, 17, 31, 32, 33, 63, 64, 127, 128, 255, 256, 1023, 1024,
  4095, 4096, 32767, 32768, 65535, 65536, 0x7fffff, 0xffffff, 0x1000000, 0x7fffffff, 0x80000000,
  0xfffffffe, 0xffffffff,
];

const position = fc.nat({ max: 1 << 24 });

const wordValue: fc.Arbitrary<WordValue> = fc.oneof(
  fc.record({ fixed: fc.constantFrom(...INTERESTING_WORDS) }),
  fc.record({ inputLength: fc.integer({ min: -1, max: 1 }) }),
  fc.record({ delta: fc.integer({ min: -16, max: 16 }) }),
);

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("flip"), at: position, bit: fc.nat(7) }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("set"), at: position, byte: fc.nat(255) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("add"),
      at: position,
      delta: fc.integer({ min: -4, max: 4 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("truncate"), at: position }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("insert"),
      at: position,
      bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("delete"),
      at: position,
      count: fc.integer({ min: 1, max: 32 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("duplicate"),
      from: position,
      count: fc.integer({ min: 1, max: 64 }),
      at: position,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("word"),
      at: position,
      bytes: fc.constantFrom(2 as const, 4 as const),
      littleEndian: fc.boolean(),
      value: wordValue,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("splice"), at: position, from: position }),
  },
);

/** Applies `mutations` in order to a copy of `input`; `donor` feeds `splice`. */
export function applyMutations(
  input: Uint8Array,
  mutations: readonly Mutation[],
  donor: Uint8Array = input,
): Buffer {
  let bytes: Buffer = Buffer.from(input);
  for (const mutation of mutations) bytes = applyOne(bytes, mutation, donor);
  return bytes;
}

function applyOne(bytes: Buffer, m: Mutation, donor: Uint8Array): Buffer {
  const n = bytes.length;
  switch (m.kind) {
    case "flip":
      if (n > 0) bytes[m.at % n]! ^= 1 << m.bit;
      return bytes;
    case "set":
      if (n > 0) bytes[m.at % n] = m.byte;
      return bytes;
    case "add":
      if (n > 0) bytes[m.at % n] = (bytes[m.at % n]! + m.delta) & 0xff;
      return bytes;
    case "truncate":
      return bytes.subarray(0, m.at % (n + 1));
    case "insert": {
      const at = m.at % (n + 1);
      return Buffer.concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]);
    }
    case "delete": {
      if (n === 0) return bytes;
      const at = m.at % n;
      return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + m.count)]);
    }
    case "duplicate": {
      if (n === 0) return bytes;
      const from = m.from % n;
      const slice = bytes.subarray(from, from + m.count);
      const at = m.at % (n + 1);
      return Buffer.concat([bytes.subarray(0, at), slice, bytes.subarray(at)]);
    }
    case "word":
      return writeWord(bytes, m);
    case "splice": {
      const at = m.at % (n + 1);
      const from = m.from % (donor.byteLength + 1);
      return Buffer.concat([bytes.subarray(0, at), donor.subarray(from)]);
    }
  }
}

function writeWord(bytes: Buffer, m: Extract<Mutation, { kind: "word" }>): Buffer {
  if (bytes.length < m.bytes) return bytes;
  const at = m.at % (bytes.length - m.bytes + 1);
  const modulus = m.bytes === 2 ? 0x1_0000 : 0x1_0000_0000;
  const read = (): number =>
    m.bytes === 2
      ? m.littleEndian
        ? bytes.readUInt16LE(at)
        : bytes.readUInt16BE(at)
      : m.littleEndian
        ? bytes.readUInt32LE(at)
        : bytes.readUInt32BE(at);
  const raw =
    "fixed" in m.value
      ? m.value.fixed
      : "inputLength" in m.value
        ? bytes.length + m.value.inputLength
        : read() + m.value.delta;
  const value = ((raw % modulus) + modulus) % modulus;
  if (m.bytes === 2) {
    if (m.littleEndian) bytes.writeUInt16LE(value, at);
    else bytes.writeUInt16BE(value, at);
  } else if (m.littleEndian) bytes.writeUInt32LE(value, at);
  else bytes.writeUInt32BE(value, at);
  return bytes;
}

/** An input for a decoder: how it was made, its bytes, and for a valid one what it encodes. */
export interface FuzzBytes<V> {
  /** "valid" (an encoding as made), "mutated" (edits of one), or "random" bytes. */
  readonly origin: "valid" | "mutated" | "random";
  readonly bytes: Buffer;
  /** What `bytes` encode, for the round-trip check; only when origin is "valid". */
  readonly value?: V;
}

/**
 * Inputs for a decoder whose valid values `valid` generates and `encode` encodes: mostly mutated
 * encodings (one to eight edits, a second encoding as the splice donor), some valid ones as they
 * are (the round-trip path), a few random byte strings.
 */
export function fuzzBytes<V>(
  valid: fc.Arbitrary<V>,
  encode: (value: V) => Uint8Array,
  randomBytesMax = 256,
): fc.Arbitrary<FuzzBytes<V>> {
  const mutated = fc
    .tuple(valid, valid, fc.array(mutationArb, { minLength: 1, maxLength: 8 }))
    .map(([input, donor, mutations]): FuzzBytes<V> => {
      return { origin: "mutated", bytes: applyMutations(encode(input), mutations, encode(donor)) };
    });
  return fc.oneof(
    { weight: 16, arbitrary: mutated },
    {
      weight: 3,
      arbitrary: valid.map(
        (value): FuzzBytes<V> => ({ origin: "valid", bytes: Buffer.from(encode(value)), value }),
      ),
    },
    {
      weight: 1,
      arbitrary: fc
        .uint8Array({ maxLength: randomBytesMax })
        .map((bytes): FuzzBytes<V> => ({ origin: "random", bytes: Buffer.from(bytes) })),
    },
  );
}

/** Where to cut a stream into the chunks a socket would deliver: cut points, or byte by byte. */
export type Chunking = { readonly cuts: readonly number[] } | { readonly bytesPerChunk: number };

export const chunkingArb: fc.Arbitrary<Chunking> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ cuts: fc.array(position, { maxLength: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ bytesPerChunk: fc.integer({ min: 1, max: 7 }) }) },
);

/** `bytes` as the chunks `chunking` says, in order; their concatenation is `bytes`. */
export function chunk(bytes: Buffer, chunking: Chunking): Buffer[] {
  if ("bytesPerChunk" in chunking) {
    const chunks: Buffer[] = [];
    for (let at = 0; at < bytes.length; at += chunking.bytesPerChunk) {
      chunks.push(bytes.subarray(at, at + chunking.bytesPerChunk));
    }
    return chunks;
  }
  const cuts = [...new Set(chunking.cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const cut of cuts) {
    if (cut > from) chunks.push(bytes.subarray(from, cut));
    from = Math.max(from, cut);
  }
  if (from < bytes.length) chunks.push(bytes.subarray(from));
  return chunks;
}

/** Bytes in the largest chunk (a loop: a spread of 10^5 chunks overflows the stack). */
export function largestChunk(chunks: readonly Uint8Array[]): number {
  let largest = 0;
  for (const piece of chunks) largest = Math.max(largest, piece.byteLength);
  return largest;
}
