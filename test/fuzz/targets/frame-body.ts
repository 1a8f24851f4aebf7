/**
 * What a transport reads from an authenticated frame's body (src/transport/frame.ts checkRecords,
 * forEachRecord, readFragment) and the fragment reassembler (src/transport/reassembly.ts). The
 * bodies are built from the layout in frame.ts's header comment, so the target does not depend on
 * how frames are sealed; the body comes after the MAC, but a buggy peer's body must still be
 * dropped with a declared reason, never crash the replica or make it allocate beyond
 * messageBytesMax per partial message.
 */
import fc from "fast-check";
import {
  checkRecords,
  chunkBytes,
  FRAGMENT_HEADER_BYTES,
  forEachRecord,
  RECORD_HEADER_BYTES,
  readFragment,
} from "../../../src/transport/frame.ts";
import { Reassembler } from "../../../src/transport/reassembly.ts";
import { DROP_REASONS } from "../../../src/transport/transport.ts";
import { measureAllocations } from "../alloc-probe.ts";
import { applyMutations, type Mutation, mutationArb } from "../mutate.ts";
import { check, syncTarget, tally } from "../target.ts";

const MESSAGE_BYTES_MAX = 512;
const PEER_COUNT = 3;
const PARTIALS_PER_PEER_MAX = 2;

interface Message {
  readonly channel: number;
  readonly payload: Uint8Array;
}

const messageArb: fc.Arbitrary<Message> = fc.record({
  channel: fc.nat(255),
  payload: fc.uint8Array({ maxLength: 96 }),
});

/** A coalesced body: u8 channel | u32 length | bytes, per record. */
export function encodeRecords(messages: readonly Message[]): Buffer {
  const parts: Buffer[] = [];
  for (const { channel, payload } of messages) {
    const header = Buffer.alloc(RECORD_HEADER_BYTES);
    header.writeUInt8(channel, 0);
    header.writeUInt32LE(payload.byteLength, 1);
    parts.push(header, Buffer.from(payload));
  }
  return Buffer.concat(parts);
}

/** The fragment bodies of one message, split as sealFragments splits it. */
export function encodeFragments(
  message: Message,
  messageId: number,
  fragmentCount: number,
): Buffer[] {
  const length = message.payload.byteLength;
  const size = chunkBytes(length, fragmentCount);
  const bodies: Buffer[] = [];
  for (let index = 0; index * size < length; index++) {
    const header = Buffer.alloc(FRAGMENT_HEADER_BYTES);
    header.writeUInt8(message.channel, 0);
    header.writeUInt32LE(messageId, 1);
    header.writeUInt16LE(index, 5);
    header.writeUInt16LE(Math.ceil(length / size), 7);
    header.writeUInt32LE(length, 9);
    bodies.push(
      Buffer.concat([header, message.payload.subarray(index * size, (index + 1) * size)]),
    );
  }
  return bodies;
}

export const frameRecordsTarget = syncTarget({
  name: "frame-records",
  summary: [
    "checkRecords + forEachRecord over mutated coalesced frame bodies",
    "never throws; a bad body is dropped whole with a declared reason, before any record is delivered",
    "an accepted body delivers records that tile it exactly, each <= messageBytesMax; valid bodies round-trip",
  ],
  arbitrary: fc.record({
    messages: fc.array(messageArb, { minLength: 1, maxLength: 5 }),
    donor: fc.array(messageArb, { minLength: 1, maxLength: 2 }),
    mutations: fc.array(mutationArb, { maxLength: 6 }),
  }),
  check: ({ messages, donor, mutations }) => {
    const body = applyMutations(encodeRecords(messages), mutations, encodeRecords(donor));
    const { result: reason, largestBytes } = measureAllocations(() =>
      checkRecords(body, MESSAGE_BYTES_MAX),
    );
    check(largestBytes === 0, "checkRecords allocates nothing");
    tally(`${mutations.length > 0 ? "mutated" : "valid"}: ${reason ?? "ok"}`);
    if (reason !== null) {
      check(DROP_REASONS.includes(reason), `undeclared drop reason ${reason}`);
      check(
        mutations.length > 0 || messages.some((m) => m.payload.byteLength > MESSAGE_BYTES_MAX),
        "valid body dropped",
      );
      return;
    }
    const delivered: Message[] = [];
    let covered = 0;
    const count = forEachRecord(body, (channel, payload) => {
      check(payload.buffer === body.buffer, "payloads are views of the body");
      check(payload.byteLength <= MESSAGE_BYTES_MAX, "payload above messageBytesMax");
      covered += RECORD_HEADER_BYTES + payload.byteLength;
      delivered.push({ channel, payload: Buffer.from(payload) });
    });
    check(count === delivered.length && count >= 1, "record count");
    check(covered === body.byteLength, "records tile the body");
    if (mutations.length === 0) {
      check(Buffer.compare(encodeRecords(delivered), encodeRecords(messages)) === 0, "round-trip");
    }
  },
});

/** One fragment as it arrives: from which peer, at which time, and its (maybe mutated) body. */
interface Arrival {
  readonly from: number;
  readonly body: Buffer;
}

const sendArb = fc.record({
  message: fc.record({
    channel: fc.nat(255),
    payload: fc.uint8Array({ minLength: 1, maxLength: 200 }),
  }),
  messageId: fc.nat(3),
  fragmentCount: fc.integer({ min: 1, max: 8 }),
  from: fc.integer({ min: 1, max: PEER_COUNT }),
});

export const reassemblyTarget = syncTarget({
  name: "frame-fragments",
  summary: [
    "readFragment + Reassembler.add over fragment bodies of several messages and peers: mutated, reordered, duplicated",
    "never throws; drops with declared reasons; at most peers x partialsPerPeerMax partial messages",
    "no allocation above messageBytesMax; a completed message has its declared length",
    "unmutated fragments, in any order and with duplicates, complete each message intact",
  ],
  arbitrary: fc.record({
    sends: fc.array(sendArb, { minLength: 1, maxLength: 4 }),
    order: fc.array(fc.nat(), { maxLength: 40 }),
    mutations: fc.array(fc.tuple(fc.nat(), fc.array(mutationArb, { minLength: 1, maxLength: 3 })), {
      maxLength: 3,
    }),
  }),
  check: ({ sends, order, mutations }) => {
    const arrivals: Arrival[] = sends.flatMap((send) =>
      encodeFragments(send.message, send.messageId, send.fragmentCount).map((body) => ({
        from: send.from,
        body,
      })),
    );
    // Arrival order: a permutation by `order`, then duplicates of some (UDP may repeat a datagram).
    const shuffled = arrivals
      .map((a, i) => ({ a, key: order[i] ?? i }))
      .sort((x, y) => x.key - y.key)
      .map((x) => x.a);
    const duplicated = [
      ...shuffled,
      ...order.slice(arrivals.length).map((i) => shuffled[i % shuffled.length]!),
    ];
    const mutated = [...duplicated];
    for (const [which, edits] of mutations as [number, Mutation[]][]) {
      const i = which % mutated.length;
      mutated[i] = { from: mutated[i]!.from, body: applyMutations(mutated[i]!.body, edits) };
    }
    const evictions: number[] = [];
    const reassembler = new Reassembler(
      PEER_COUNT,
      (from) => evictions.push(from),
      1000,
      PARTIALS_PER_PEER_MAX,
    );
    const completed: { from: number; channel: number; payload: Buffer }[] = [];
    let evictedBeforeSweep: number[] = [];
    const { largestBytes } = measureAllocations(() => {
      mutated.forEach(({ from, body }, time) => {
        const fragment = readFragment(body, MESSAGE_BYTES_MAX);
        if (typeof fragment === "string") {
          check(DROP_REASONS.includes(fragment), `undeclared drop reason ${fragment}`);
          tally(`readFragment: ${fragment}`);
          return;
        }
        const result = reassembler.add(from, fragment, time);
        tally(`add: ${result.kind === "drop" ? result.reason : result.kind}`);
        if (result.kind === "drop") check(DROP_REASONS.includes(result.reason), "drop reason");
        if (result.kind === "complete") {
          check(
            result.payload.byteLength === fragment.messageLength,
            "completed at its declared length",
          );
          completed.push({ from, channel: result.channel, payload: Buffer.from(result.payload) });
        }
        check(
          reassembler.partialCount <= PEER_COUNT * PARTIALS_PER_PEER_MAX,
          "partial messages bounded",
        );
      });
      evictedBeforeSweep = [...evictions];
      reassembler.sweep(mutated.length + 1000);
    });
    check(
      largestBytes <= MESSAGE_BYTES_MAX,
      `allocated ${largestBytes} bytes, above messageBytesMax`,
    );
    check(reassembler.partialCount === 0, "a sweep past every deadline leaves no partial message");
    if (mutations.length > 0) return;
    checkValidDelivery(sends, completed, evictedBeforeSweep);
  },
});

/**
 * Unmutated: a message completes once and intact, unless another message with the same id from
 * the same peer interfered (a real sender never reuses an id in flight) or it was evicted.
 */
function checkValidDelivery(
  sends: readonly { message: Message; messageId: number; from: number }[],
  completed: readonly { from: number; channel: number; payload: Buffer }[],
  evictions: readonly number[],
): void {
  for (const send of sends) {
    const clash = sends.some(
      (s) => s !== send && s.from === send.from && s.messageId === send.messageId,
    );
    if (clash || evictions.includes(send.from)) continue;
    const matches = completed.filter(
      (c) =>
        c.from === send.from &&
        c.channel === send.message.channel &&
        Buffer.compare(c.payload, send.message.payload) === 0,
    );
    check(matches.length >= 1, "an unmutated message completes intact");
  }
}
