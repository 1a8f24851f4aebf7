/**
 * The command codec (src/app/command-codec.ts decodeCommands): the body of a log command, the
 * pipelined commands of one connection.
 */
import fc from "fast-check";
import { decodeCommands, encodeCommands } from "../../../src/app/command-codec.ts";
import { measureAllocations } from "../alloc-probe.ts";
import { fuzzBytes } from "../mutate.ts";
import { check, onlyDocumentedErrors, syncTarget, tally } from "../target.ts";

type Commands = readonly (readonly Uint8Array[])[];

const commandsArb: fc.Arbitrary<Commands> = fc.array(
  fc.array(fc.uint8Array({ maxLength: 24 }), { maxLength: 5 }),
  { maxLength: 6 },
);

export const commandCodecTarget = syncTarget({
  name: "command-codec",
  summary: [
    "decodeCommands over mutated encodings, at the offset after a header and at odd offsets",
    "never throws (malformed: null); arguments are views inside the input, after the offset",
    "canonical: whatever decodes re-encodes to the input bytes; valid commands round-trip",
    "no Buffer allocated",
  ],
  arbitrary: fc.record({
    headerBytes: fc.nat(40),
    input: fuzzBytes<Commands>(commandsArb, (commands) => encodeCommands(commands, 0)),
    offsetShift: fc.oneof(
      { weight: 6, arbitrary: fc.constant(0) },
      { weight: 1, arbitrary: fc.integer({ min: -3, max: 3 }) },
    ),
  }),
  check: ({ headerBytes, input, offsetShift }) => {
    const bytes = Buffer.concat([Buffer.alloc(headerBytes, 0xee), input.bytes]);
    const offset = headerBytes + offsetShift;
    const { result, largestBytes } = measureAllocations(() =>
      onlyDocumentedErrors(
        () => decodeCommands(bytes, offset),
        () => false,
        "decodeCommands",
      ),
    );
    check(largestBytes === 0, `allocated ${largestBytes} bytes`);
    check(result.ok, "never throws");
    const decoded = result.value;
    tally(`${input.origin}: ${decoded === null ? "null" : "ok"}`);
    if (input.origin === "valid" && offsetShift === 0)
      check(decoded !== null, "valid commands decode");
    if (decoded === null) return;
    for (const command of decoded) {
      for (const arg of command) {
        check(arg.buffer === bytes.buffer, "arguments are views of the input");
        const start = arg.byteOffset - bytes.byteOffset;
        check(
          start >= offset && start + arg.length <= bytes.length,
          "arguments lie inside the body",
        );
      }
    }
    const again = encodeCommands(decoded, 0);
    check(Buffer.compare(Buffer.from(again), bytes.subarray(offset)) === 0, "canonical");
  },
});
