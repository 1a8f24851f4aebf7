/**
 * Valid core messages of every type (src/core/wire.ts), with small numbers more often than large
 * ones so that edits land on the edges the decoder checks (slot 0, the 2^53 limit, empty lists).
 */
import fc from "fast-check";
import {
  type Batch,
  type Member,
  type MembershipChange,
  type MembershipEntry,
  type Message,
  MessageType,
} from "../../../src/core/index.ts";

const safe = fc.oneof(fc.nat(64), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));
const slot = fc.oneof(
  fc.integer({ min: 1, max: 64 }),
  fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
);
const id = fc.integer({ min: 1, max: 255 });
const nonce = fc.integer({ min: 0, max: 0xffffffff });
const bytes = fc.uint8Array({ maxLength: 48 });
const members: fc.Arbitrary<Member[]> = fc
  .uniqueArray(fc.integer({ min: 1, max: 31 }), { minLength: 1, maxLength: 9 })
  .chain((ids) =>
    fc.tuple(
      ...ids
        .sort((a, b) => a - b)
        .map((memberId, i) =>
          fc.record({
            id: fc.constant(memberId),
            voter: i === 0 ? fc.constant(true) : fc.boolean(),
            address: fc.string({ maxLength: 24 }),
          }),
        ),
    ),
  );
const change: fc.Arbitrary<MembershipChange> = fc.record({
  base: safe,
  baseMembers: members,
  members,
});
const batch: fc.Arbitrary<Batch> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ stampMs: safe, commands: fc.array(bytes, { maxLength: 4 }) }),
  },
  { weight: 1, arbitrary: fc.record({ stampMs: safe, commands: fc.constant([]), change }) },
);
const history: fc.Arbitrary<MembershipEntry[]> = fc
  .array(fc.tuple(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: 64 }), members), {
    maxLength: 3,
  })
  .map((entries) => {
    let slotAt = -1;
    return entries.map(([gap, lag, list]) => {
      slotAt += gap;
      return { slot: slotAt, effectiveFrom: slotAt + lag, members: list };
    });
  });
const snapshot = fc.oneof(
  fc.record({ slot, data: bytes }),
  fc.record({ slot, data: bytes, membership: history.filter((h) => h.length > 0) }),
);
const env = { from: id, to: id, ballot: safe };
const votes = fc.array(fc.record({ slot, ballot: safe, batch }), { maxLength: 3 });

export const messageArb: fc.Arbitrary<Message> = fc.oneof(
  fc.record({ type: fc.constant(MessageType.Prepare), ...env, fromSlot: slot }),
  fc.record({
    type: fc.constant(MessageType.Promise),
    ...env,
    fromSlot: slot,
    chosenSlot: safe,
    entries: votes,
    more: fc.boolean(),
    snapshot: fc.option(snapshot, { nil: null }),
  }),
  fc.record({ type: fc.constant(MessageType.Nack), ...env }),
  fc.record({ type: fc.constant(MessageType.Probe), ...env, chosenSlot: safe }),
  fc.record({ type: fc.constant(MessageType.ProbeReply), ...env, granted: fc.boolean() }),
  fc.record({ type: fc.constant(MessageType.Accept), ...env, slot, commitSlot: safe, batch }),
  fc.record({ type: fc.constant(MessageType.Accepted), ...env, slot, chosenSlot: safe }),
  fc.record({
    type: fc.constant(MessageType.Heartbeat),
    ...env,
    commitSlot: safe,
    readRound: safe,
  }),
  fc.record({
    type: fc.constant(MessageType.HeartbeatReply),
    ...env,
    chosenSlot: safe,
    readRound: safe,
  }),
  fc.record({ type: fc.constant(MessageType.ReadIndex), ...env, nonce, seq: safe }),
  fc.record({
    type: fc.constant(MessageType.ReadIndexReply),
    ...env,
    nonce,
    seq: safe,
    index: safe,
  }),
  fc.record({
    type: fc.constant(MessageType.Chosen),
    ...env,
    commitSlot: safe,
    entries: fc.array(fc.record({ slot, batch }), { maxLength: 3 }),
  }),
  fc.record({ type: fc.constant(MessageType.InstallSnapshot), ...env, snapshot }),
  fc.record({ type: fc.constant(MessageType.Recover), ...env, nonce, fromSlot: slot }),
  fc.record({
    type: fc.constant(MessageType.RecoverReply),
    ...env,
    nonce,
    fromSlot: slot,
    chosenSlot: safe,
    entries: votes,
    more: fc.boolean(),
    snapshot: fc.option(snapshot, { nil: null }),
    recovering: fc.boolean(),
  }),
  fc.record({ type: fc.constant(MessageType.TimeoutNow), ...env, target: id }),
);
