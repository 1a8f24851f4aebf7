/**
 * The TCP peer handshake (src/transport/tcp-handshake.ts), the first bytes a replica reads from
 * anyone who connects: a genuine handshake's two streams (HELLO ‖ PROOF ‖ first frames, and
 * REPLY), one of them mutated and chunked, fed to the other side.
 */
import fc from "fast-check";
import { derivePeerKeys } from "../../../src/transport/peer-keys.ts";
import {
  HandshakeInitiator,
  type HandshakeParams,
  HandshakeResponder,
  type HandshakeResult,
  HELLO_BYTES,
  NO_CHANNEL_BINDING,
  PROOF_BYTES,
  TRANSCRIPT_BYTES,
} from "../../../src/transport/tcp-handshake.ts";
import { measureAllocations } from "../alloc-probe.ts";
import {
  applyMutations,
  type Chunking,
  chunk,
  chunkingArb,
  type Mutation,
  mutationArb,
} from "../mutate.ts";
import { check, syncTarget, tally } from "../target.ts";

const CLUSTER_ID = 0xc0ffee;
const KEYS = derivePeerKeys(
  [new TextEncoder().encode("fuzz-handshake-secret-0123456789")],
  CLUSTER_ID,
).handshake;
const FAILURES = ["malformed", "cluster", "peer", "tag", "trailing"];

function params(id: number, nonce: Uint8Array): HandshakeParams {
  return {
    keys: KEYS,
    clusterId: CLUSTER_ID,
    id,
    peerCount: 3,
    nonce,
    binding: NO_CHANNEL_BINDING,
    incarnation: 1000 + id,
  };
}

interface Fed {
  readonly result: HandshakeResult;
  /** Bytes of the chunks fed, the last one whole: `rest` ends where that chunk ended. */
  readonly fedBytes: number;
}

/** Feeds `chunks` until the handshake ends; checks what every result must be. */
function feed(receive: (chunk: Buffer) => HandshakeResult, chunks: readonly Buffer[]): Fed {
  let result: HandshakeResult = { state: "pending", send: null };
  let fedBytes = 0;
  for (const piece of chunks) {
    result = receive(piece);
    fedBytes += piece.length;
    if (result.state === "failed")
      check(FAILURES.includes(result.failure), `undeclared failure ${result.failure}`);
    if (result.state !== "pending") break;
  }
  return { result, fedBytes };
}

const nonce = fc.uint8Array({ minLength: 32, maxLength: 32 });

export const tcpHandshakeTarget = syncTarget({
  name: "tcp-handshake",
  summary: [
    "HandshakeResponder / HandshakeInitiator .receive over a genuine handshake's streams, one mutated, chunked",
    "never throws; fails with a declared reason; reads into its 180-byte transcript, allocates no more",
    "done only when the handshake bytes are the genuine ones (no edit gets past the tags), rest = what followed",
    "unmutated streams complete in any chunking",
  ],
  arbitrary: fc.record({
    nonceI: nonce,
    nonceR: nonce,
    frames: fc.uint8Array({ maxLength: 24 }),
    side: fc.constantFrom("responder" as const, "initiator" as const),
    mutations: fc.oneof(
      { weight: 1, arbitrary: fc.constant<Mutation[]>([]) },
      { weight: 6, arbitrary: fc.array(mutationArb, { minLength: 1, maxLength: 4 }) },
    ),
    chunking: chunkingArb,
  }),
  check: ({ nonceI, nonceR, frames, side, mutations, chunking }) => {
    const initiator = new HandshakeInitiator({ ...params(1, nonceI), to: 2 });
    const responder = new HandshakeResponder(params(2, nonceR));
    const hello = initiator.hello();
    const replied = responder.receive(hello);
    check(replied.state === "pending" && replied.send !== null, "a genuine HELLO is answered");
    const reply = replied.send;
    const proved = initiator.receive(reply);
    check(
      proved.state === "done" && proved.send !== null,
      "a genuine REPLY completes the initiator",
    );
    const proof = proved.send;
    const toResponder = Buffer.concat([hello, proof, frames]);
    const genuine = side === "responder" ? toResponder : reply;
    const stream = applyMutations(genuine, mutations);
    const { result: fed, largestBytes } = measureAllocations(() =>
      run(side, stream, chunking, nonceI, nonceR),
    );
    const result = fed.result;
    check(largestBytes <= TRANSCRIPT_BYTES, `allocated ${largestBytes} bytes`);
    tally(
      `${side} ${mutations.length > 0 ? "mutated" : "valid"}: ${result.state === "failed" ? result.failure : result.state}`,
    );
    if (mutations.length === 0) check(result.state === "done", "a genuine handshake completes");
    if (result.state !== "done") return;
    const handshakeBytes = side === "responder" ? HELLO_BYTES + PROOF_BYTES : reply.length;
    check(
      Buffer.compare(stream.subarray(0, handshakeBytes), genuine.subarray(0, handshakeBytes)) === 0,
      "a handshake with edited bytes completed",
    );
    check(
      Buffer.compare(result.rest, stream.subarray(handshakeBytes, fed.fedBytes)) === 0,
      "rest is what followed the handshake in its chunk",
    );
    check(
      result.peerId === (side === "responder" ? 1 : 2) && result.keyIndex === 0,
      "peer and key",
    );
    check(result.peerIncarnation === 1000 + result.peerId, "the peer's incarnation, unedited");
  },
});

/** A fresh handshake of `side` with the same nonces, fed `stream` in chunks. */
function run(
  side: "responder" | "initiator",
  stream: Buffer,
  chunking: Chunking,
  nonceI: Uint8Array,
  nonceR: Uint8Array,
): Fed {
  const chunks = chunk(stream, chunking);
  if (side === "responder") {
    const responder = new HandshakeResponder(params(2, nonceR));
    return feed((c) => responder.receive(c), chunks);
  }
  const initiator = new HandshakeInitiator({ ...params(1, nonceI), to: 2 });
  initiator.hello();
  return feed((c) => initiator.receive(c), chunks);
}
