/**
 * The core wire decoder (src/core/wire.ts decodeMessage). Bytes that reach it passed the frame's
 * MAC, but a buggy peer's malformed message must still come back as a typed error, never crash
 * the replica.
 */
import { CORE_ERROR_CODES } from "../../../src/core/errors.ts";
import { decodeMessage, encodeMessage, type Message } from "../../../src/core/index.ts";
import { measureAllocations } from "../alloc-probe.ts";
import { messageArb } from "../gen/wire-messages.ts";
import { fuzzBytes } from "../mutate.ts";
import { check, hex, onlyDocumentedErrors, syncTarget, tally } from "../target.ts";

export const wireTarget = syncTarget({
  name: "wire",
  summary: [
    "decodeMessage over mutated encodings of every message type",
    "never throws; a malformed message is { ok: false } with an ERR_WIRE_* code",
    "canonical: whatever decodes re-encodes to the very input bytes; valid messages round-trip",
    "no Buffer allocated (commands and snapshot data are views)",
  ],
  arbitrary: fuzzBytes<Message>(messageArb, encodeMessage),
  check: (input) => {
    const { result, largestBytes } = measureAllocations(() =>
      onlyDocumentedErrors(
        () => decodeMessage(input.bytes),
        () => false,
        "decodeMessage",
      ),
    );
    check(largestBytes === 0, `allocated ${largestBytes} bytes`);
    check(result.ok, "never throws");
    const decoded = result.value;
    if (!decoded.ok) {
      check(
        decoded.code.startsWith("ERR_WIRE_") && CORE_ERROR_CODES.includes(decoded.code),
        "code",
      );
      tally(`${input.origin}: ${decoded.code}`);
      check(input.origin !== "valid", `a valid message refused: ${decoded.reason}`);
      return;
    }
    tally(`${input.origin}: ok`);
    const again = encodeMessage(decoded.message);
    check(
      Buffer.compare(Buffer.from(again), input.bytes) === 0,
      `decoded message re-encodes differently: ${hex(input.bytes)} vs ${hex(again)}`,
    );
  },
});
