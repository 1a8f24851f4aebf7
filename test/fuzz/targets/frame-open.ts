/**
 * Opening peer frames (src/transport/frame.ts openFrame, with the session fields checked by
 * peer-sessions.ts), then reading their bodies as a transport does. Frames are made by the
 * module's own sealing functions on a sender (replica 1) for a receiver (replica 2), then
 * delivered in any order, repeated, and mutated: left as they are (a forger without the key) or
 * signed again with the sender's key (a buggy peer). The checks are about what the receiver
 * admits, so they hold whatever the header layout is.
 */
import fc from "fast-check";
import {
  checkRecords,
  FRAME_OVERHEAD_BYTES,
  FrameAuthenticator,
  FrameBuilder,
  type FrameContext,
  type FrameHeaderFields,
  forEachRecord,
  openFrame,
  readFragment,
  sealFragments,
  sealSession,
  sealSingle,
} from "../../../src/transport/frame.ts";
import { derivePeerKeys } from "../../../src/transport/peer-keys.ts";
import { PeerSessions } from "../../../src/transport/peer-sessions.ts";
import { DROP_REASONS } from "../../../src/transport/transport.ts";
import { applyMutations, type Mutation, mutationArb } from "../mutate.ts";
import { check, syncTarget, tally } from "../target.ts";

const CLUSTER_ID = 0x5eed;
const secret = (text: string) => new TextEncoder().encode(text);
/** During a key roll the receiver verifies with both keys: the new one first, then the old. */
const ROLL_KEYS = derivePeerKeys(
  [secret("fuzz-frames-secret-new-0123456789ab"), secret("fuzz-frames-secret-old-0123456789ab")],
  CLUSTER_ID,
).frames;
const PEER_COUNT = 3;
const MESSAGE_BYTES_MAX = 1024;
const FRAME_BYTES_MAX = 160;

function context(
  id: number,
  incarnation: number,
  echoRequired: boolean,
  keys: readonly Uint8Array[],
  onSecondKey: () => void = () => {},
): FrameContext {
  return {
    authenticator: new FrameAuthenticator(keys),
    sessions: new PeerSessions({ id, peerCount: PEER_COUNT, incarnation, echoRequired }),
    clusterId: CLUSTER_ID,
    id,
    peerCount: PEER_COUNT,
    isPeer: () => true,
    messageBytesMax: MESSAGE_BYTES_MAX,
    onSecondKey,
  };
}

const header = (from: number, to: number): FrameHeaderFields => ({
  flags: 0,
  clusterId: CLUSTER_ID,
  from,
  to,
});

type Send =
  | { readonly kind: "records"; readonly payloads: readonly Uint8Array[] }
  | { readonly kind: "single"; readonly payload: Uint8Array }
  | { readonly kind: "fragments"; readonly payload: Uint8Array }
  | { readonly kind: "session" };

const payload = fc.uint8Array({ maxLength: 40 });
const sendArb: fc.Arbitrary<Send> = fc.oneof(
  fc.record({
    kind: fc.constant("records" as const),
    payloads: fc.array(payload, { minLength: 1, maxLength: 3 }),
  }),
  fc.record({ kind: fc.constant("single" as const), payload }),
  fc.record({
    kind: fc.constant("fragments" as const),
    payload: fc.uint8Array({ minLength: 1, maxLength: 400 }),
  }),
  fc.constant<Send>({ kind: "session" }),
);

/** The frames the sender seals for `sends`, in order. */
function seal(sender: FrameContext, sends: readonly Send[]): Buffer[] {
  const frames: Buffer[] = [];
  sends.forEach((send, messageId) => {
    if (send.kind === "records") {
      const builder = new FrameBuilder(FRAME_BYTES_MAX, 0, header(1, 2));
      for (const p of send.payloads) {
        if (!builder.fits(p.byteLength)) frames.push(builder.seal(sender));
        builder.append(7, p);
      }
      frames.push(builder.seal(sender));
    } else if (send.kind === "single") {
      frames.push(sealSingle(sender, header(1, 2), 0, 7, send.payload));
    } else if (send.kind === "fragments") {
      frames.push(
        ...sealFragments(sender, header(1, 2), FRAME_BYTES_MAX, 7, messageId, send.payload),
      );
    } else {
      frames.push(sealSession(sender, header(1, 2)));
    }
  });
  return frames;
}

/** One delivery: which genuine frame, and the edits made to it (none: delivered as sealed). */
interface Delivery {
  readonly frame: number;
  readonly mutations: readonly Mutation[];
  readonly resign: boolean;
}

const deliveryArb: fc.Arbitrary<Delivery> = fc.record({
  frame: fc.nat(),
  mutations: fc.oneof(
    { weight: 2, arbitrary: fc.constant<Mutation[]>([]) },
    { weight: 3, arbitrary: fc.array(mutationArb, { minLength: 1, maxLength: 3 }) },
  ),
  resign: fc.boolean(),
});

/** A body of an admitted frame, read as the transport reads it: never a throw. */
function readBody(fragment: boolean, body: Buffer): string {
  if (fragment) {
    const header = readFragment(body, MESSAGE_BYTES_MAX);
    if (typeof header === "string") return header;
    check(header.chunk.byteLength >= 1 && header.messageLength <= MESSAGE_BYTES_MAX, "fragment");
    return "fragment";
  }
  const reason = checkRecords(body, MESSAGE_BYTES_MAX);
  if (reason !== null) return reason;
  forEachRecord(body, (_channel, record) =>
    check(record.byteLength <= MESSAGE_BYTES_MAX, "record"),
  );
  return "records";
}

export const frameOpenTarget = syncTarget({
  name: "frame-open",
  summary: [
    "openFrame + body reading over frames sealed by the module itself, reordered, repeated, mutated (signed again or not)",
    "never throws; drops with a declared reason",
    "without the key no edit gets in: an admitted frame that was not signed again is byte for byte a sealed one",
    "replays: each sealed frame but a session frame is admitted at most once; unmutated frames are each admitted",
    "during a key roll, frames under the old key are admitted and counted as such",
  ],
  arbitrary: fc.record({
    sends: fc.array(sendArb, { minLength: 1, maxLength: 4 }),
    deliveries: fc.array(deliveryArb, { maxLength: 12 }),
    echoRequired: fc.boolean(),
    incarnations: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })),
    senderKey: fc.constantFrom(0, 1),
  }),
  check: ({ sends, deliveries, echoRequired, incarnations, senderKey }) => {
    const sender = context(
      1,
      incarnations[0],
      echoRequired,
      senderKey === 0 ? ROLL_KEYS : [...ROLL_KEYS].reverse(),
    );
    let secondKeyFrames = 0;
    const receiver = context(2, incarnations[1], echoRequired, ROLL_KEYS, () => secondKeyFrames++);
    // The sender learns the receiver's incarnation (what it must echo) from a session frame,
    // even when it drops that frame because its echo is stale (the receiver knew no sender yet).
    const hello = openFrame(sealSession(receiver, header(2, 1)), sender);
    check(hello.ok || hello.reason === "stale-session", "a genuine session frame is admitted");
    const genuine = seal(sender, sends);
    // Every sealed frame once, in order, then the generated deliveries: repeats and edits.
    const plan: Delivery[] = [
      ...genuine.map((_, frame) => ({ frame, mutations: [], resign: false })),
      ...deliveries,
    ];
    const admitted = new Map<number, number>();
    let admittedCount = 0;
    for (const delivery of plan) {
      const index = delivery.frame % genuine.length;
      const original = genuine[index]!;
      const edited = delivery.mutations.length > 0;
      const bytes = edited ? applyMutations(original, delivery.mutations) : Buffer.from(original);
      if (edited && delivery.resign && bytes.length >= FRAME_OVERHEAD_BYTES)
        sender.authenticator.sign(bytes);
      const result = openFrame(bytes, receiver);
      if (!result.ok) {
        check(DROP_REASONS.includes(result.reason), `undeclared drop reason ${result.reason}`);
        tally(
          `${edited ? (delivery.resign ? "re-signed" : "edited") : "as sealed"}: ${result.reason}`,
        );
        continue;
      }
      admittedCount++;
      const body = result.frame.session
        ? "session"
        : readBody(result.frame.fragment, result.frame.body);
      tally(
        `${edited ? (delivery.resign ? "re-signed" : "edited") : "as sealed"}: admitted ${body}`,
      );
      if (edited && delivery.resign) continue;
      const same = genuine.findIndex((frame) => Buffer.compare(frame, bytes) === 0);
      check(same !== -1, "a frame edited without the key was admitted");
      admitted.set(same, (admitted.get(same) ?? 0) + 1);
      // A session frame delivers nothing and takes no place in the replay window (frame.ts): a
      // copy of one may be admitted again; any other frame at most once.
      check(
        result.frame.session || admitted.get(same)! <= 1,
        "a sealed frame was admitted twice: a replay got in",
      );
    }
    check(
      secondKeyFrames === (senderKey === 1 ? admittedCount : 0),
      "frames under the old key counted",
    );
    const reSigned = deliveries.some((d) => d.mutations.length > 0 && d.resign);
    // Two session frames sealed back to back are the same bytes (they take no seq): count them once.
    const distinct = new Set(genuine.map((frame) => frame.toString("hex"))).size;
    if (!reSigned) check(admitted.size === distinct, "every sealed frame is admitted once");
  },
});
