/**
 * A peer's settings hello (src/workers/consensus/peer-agreement.ts decodeHello), the payload of
 * CHANNEL_AGREEMENT. It rides the authenticated transport, but it is JSON from another process:
 * a buggy or older peer's hello must be refused (null), never crash the consensus worker.
 */
import fc from "fast-check";
import {
  type AgreedSettings,
  decodeHello,
  encodeHello,
  HELLO_BYTES_MAX,
  type Hello,
} from "../../../src/workers/consensus/peer-agreement.ts";
import { fuzzBytes } from "../mutate.ts";
import { check, hex, onlyDocumentedErrors, syncTarget, tally } from "../target.ts";

/** What agreedSettings() sends, with made-up values, and arbitrary names and values beside. */
const settingsArb: fc.Arbitrary<AgreedSettings> = fc.oneof(
  fc.record({
    "wire-version": fc.nat(9).map(String),
    "cluster-id": fc.nat().map(String),
    app: fc.constantFrom(
      "embedded store",
      "program (--app), --protocol resp",
      "program (--app), --protocol memcache",
      "program (--app), --protocol raw",
    ),
    "max-value-bytes": fc.nat().map(String),
    "max-reply-bytes": fc.nat().map(String),
  }),
  fc.dictionary(fc.string({ maxLength: 12, unit: "binary" }), fc.string({ maxLength: 24 }), {
    maxKeys: 6,
    noNullPrototype: true,
  }),
);

const helloArb: fc.Arbitrary<Hello> = fc.record({
  incarnation: fc.oneof(fc.nat(100), fc.maxSafeNat()),
  heard: fc.oneof(fc.nat(100), fc.maxSafeNat()),
  ask: fc.boolean(),
  settings: settingsArb,
});

/** A valid hello padded with JSON whitespace to about HELLO_BYTES_MAX: the length bound's edge. */
const paddedArb = fc.tuple(helloArb, fc.integer({ min: -8, max: 8 })).map(([hello, around]) => {
  const encoded = Buffer.from(encodeHello(hello));
  const pad = Math.max(0, HELLO_BYTES_MAX + around - encoded.length);
  return { hello, bytes: Buffer.concat([encoded, Buffer.alloc(pad, 0x20)]) };
});

/** Compared as JSON: key order is the encoder's, and -0 reads back as 0 on both sides. */
const asJson = (hello: Hello): string => JSON.stringify(hello);

export const peerHelloTarget = syncTarget({
  name: "peer-hello",
  summary: [
    "decodeHello over mutated hellos (real and arbitrary settings) and hellos padded to the length bound",
    "never throws; a hello is read or refused (null); nothing over HELLO_BYTES_MAX is read",
    "what it reads is well formed and reads back the same re-encoded; valid hellos round-trip",
  ],
  arbitrary: fc.oneof(
    { weight: 9, arbitrary: fuzzBytes<Hello>(helloArb, encodeHello) },
    { weight: 1, arbitrary: paddedArb.map((p) => ({ origin: "padded" as const, ...p })) },
  ),
  check: (input) => {
    const read = onlyDocumentedErrors(
      () => decodeHello(input.bytes),
      () => false,
      "decodeHello",
    );
    check(read.ok, "never throws");
    const hello = read.value;
    tally(`${input.origin}: ${hello === null ? "refused" : "hello"}`);
    if (input.bytes.byteLength > HELLO_BYTES_MAX) {
      check(hello === null, `a hello of ${input.bytes.byteLength} bytes was read`);
    }
    const sent = input.origin === "padded" ? input.hello : input.value;
    if (sent !== undefined && input.bytes.byteLength <= HELLO_BYTES_MAX) {
      check(hello !== null, `a valid hello refused: ${hex(input.bytes)}`);
      check(asJson(hello) === asJson(sent), "round-trip");
    }
    if (hello === null) return;
    check(
      Number.isSafeInteger(hello.incarnation) && Number.isSafeInteger(hello.heard),
      "incarnation and heard are safe integers",
    );
    check(typeof hello.ask === "boolean", "ask is a boolean");
    check(
      Object.values(hello.settings).every((value) => typeof value === "string"),
      "every setting is a string",
    );
    const again = decodeHello(encodeHello(hello));
    check(again !== null && asJson(again) === asJson(hello), "re-encodes to the same hello");
  },
});
