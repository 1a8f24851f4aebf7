/**
 * A peer's output digest report (src/workers/consensus/output-check.ts decodeDigestReport), the
 * payload of CHANNEL_OUTPUT_DIGEST: f64 steps | the digest as ASCII hex. It passed the frame's
 * MAC, but a buggy peer's report must be refused (null), never crash the consensus worker, and
 * never reach output checking with steps or a digest it could not have meant.
 */
import fc from "fast-check";
import {
  decodeDigestReport,
  encodeDigestReport,
} from "../../../src/workers/consensus/output-check.ts";
import { fuzzBytes } from "../mutate.ts";
import { check, hex, onlyDocumentedErrors, syncTarget, tally } from "../target.ts";

interface DigestReport {
  readonly steps: number;
  readonly digest: string;
}

const HEX = [..."0123456789abcdef"];

const reportArb: fc.Arbitrary<DigestReport> = fc.record({
  steps: fc.oneof(
    fc.integer({ min: 1, max: 1000 }),
    fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  ),
  digest: fc.oneof(
    // SHA-256 and SHA-1 (redis DEBUG DIGEST) as hex, and any other length the decoder takes.
    fc
      .constantFrom(64, 40)
      .chain((length) =>
        fc.string({ unit: fc.constantFrom(...HEX), minLength: length, maxLength: length }),
      ),
    fc.string({ unit: fc.constantFrom(...HEX), minLength: 1, maxLength: 64 }),
  ),
});

export const digestReportTarget = syncTarget({
  name: "digest-report",
  summary: [
    "decodeDigestReport over mutated digest reports",
    "never throws; a report is read or refused (null)",
    "what it reads has positive safe-integer steps and 1-64 lowercase hex digits",
    "canonical: whatever it reads re-encodes to the very input bytes; valid reports round-trip",
  ],
  arbitrary: fuzzBytes<DigestReport>(reportArb, (r) => encodeDigestReport(r.steps, r.digest)),
  check: (input) => {
    const read = onlyDocumentedErrors(
      () => decodeDigestReport(input.bytes),
      () => false,
      "decodeDigestReport",
    );
    check(read.ok, "never throws");
    const report = read.value;
    tally(`${input.origin}: ${report === null ? "refused" : "report"}`);
    const sent = input.value;
    if (sent !== undefined) {
      check(report !== null, `a valid report refused: ${hex(input.bytes)}`);
      check(report.steps === sent.steps && report.digest === sent.digest, "round-trip");
    }
    if (report === null) return;
    check(Number.isSafeInteger(report.steps) && report.steps > 0, `steps ${report.steps}`);
    check(/^[0-9a-f]{1,64}$/.test(report.digest), `digest ${JSON.stringify(report.digest)}`);
    const again = encodeDigestReport(report.steps, report.digest);
    check(
      Buffer.compare(Buffer.from(again), input.bytes) === 0,
      `re-encodes differently: ${hex(input.bytes)} vs ${hex(again)}`,
    );
  },
});
