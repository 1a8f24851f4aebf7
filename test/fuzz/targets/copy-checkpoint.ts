/**
 * A program copy's checkpoint (src/app/program/copy-checkpoint.ts decodeCheckpoint), as it
 * arrives in a snapshot from the leader: encodings of generated checkpoints, mutated.
 */
import fc from "fast-check";
import {
  type CopyCheckpoint,
  type CopyLoopState,
  decodeCheckpoint,
  encodeCheckpoint,
} from "../../../src/app/program/copy-checkpoint.ts";
import { ApusError } from "../../../src/core/errors.ts";
import { fuzzBytes } from "../mutate.ts";
import { check, describe, onlyDocumentedErrors, syncTarget, tally } from "../target.ts";

const text = fc.string({ maxLength: 8 });
const int = fc.nat(1000);

const loopArb: fc.Arbitrary<CopyLoopState> = fc.record({
  incarnations: fc.array(fc.tuple(int, int), { maxLength: 3 }),
  retired: fc.array(text, { maxLength: 3 }),
  closed: fc.array(fc.tuple(text, int), { maxLength: 3 }),
  keysByOrigin: fc.array(fc.tuple(int, fc.array(text, { maxLength: 3 })), { maxLength: 2 }),
});

const fileName = fc
  .string({ unit: fc.constantFrom(..."abc.rdb-_0"), minLength: 1, maxLength: 10 })
  .filter((name) => name !== "." && name !== "..");

const checkpointArb: fc.Arbitrary<CopyCheckpoint> = fc.record({
  steps: int,
  chain: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  loop: loopArb,
  files: fc
    .array(fc.tuple(fileName, fc.uint8Array({ maxLength: 24 })), { maxLength: 3 })
    .map((entries) => new Map(entries)),
});

function isDocumented(error: unknown): boolean {
  return (
    error instanceof ApusError &&
    error.code === "ERR_WIRE_FIELD" &&
    error.message.startsWith("program checkpoint: ")
  );
}

/** What restore() iterates must have the shapes it iterates as. */
function checkLoopShape(loop: CopyLoopState): void {
  const isPair = (v: unknown, a: string, b: string) =>
    Array.isArray(v) && v.length === 2 && typeof v[0] === a && typeof v[1] === b;
  check(
    Array.isArray(loop.incarnations) &&
      loop.incarnations.every((p) => isPair(p, "number", "number")),
    "incarnations",
  );
  check(Array.isArray(loop.retired) && loop.retired.every((r) => typeof r === "string"), "retired");
  check(
    Array.isArray(loop.closed) && loop.closed.every((p) => isPair(p, "string", "number")),
    "closed",
  );
  check(
    Array.isArray(loop.keysByOrigin) &&
      loop.keysByOrigin.every(
        (p) =>
          Array.isArray(p) &&
          p.length === 2 &&
          typeof p[0] === "number" &&
          Array.isArray(p[1]) &&
          p[1].every((k: unknown) => typeof k === "string"),
      ),
    "keysByOrigin",
  );
}

function comparable(checkpoint: CopyCheckpoint): string {
  return JSON.stringify([
    checkpoint.steps,
    [...checkpoint.chain],
    checkpoint.loop,
    [...checkpoint.files].map(([name, bytes]) => [name, [...bytes]]),
  ]);
}

export const copyCheckpointTarget = syncTarget({
  name: "copy-checkpoint",
  summary: [
    "decodeCheckpoint over mutated program checkpoints",
    "throws only ApusError ERR_WIRE_FIELD 'program checkpoint: …' (no SyntaxError, no TypeError)",
    "a decoded checkpoint has the shapes restore() iterates, and plain file names",
    "valid checkpoints round-trip",
  ],
  arbitrary: fuzzBytes<CopyCheckpoint>(checkpointArb, encodeCheckpoint),
  check: (input) => {
    const result = onlyDocumentedErrors(
      () => decodeCheckpoint(input.bytes),
      isDocumented,
      "decodeCheckpoint",
    );
    if (!result.ok) {
      tally(`${input.origin}: ${(result.error as Error).message.replace(/".*"/s, "…")}`);
      check(input.origin !== "valid", `a valid checkpoint refused: ${describe(result.error)}`);
      return;
    }
    tally(`${input.origin}: decoded`);
    const checkpoint = result.value;
    checkLoopShape(checkpoint.loop);
    check(checkpoint.chain.byteLength === 32, "chain");
    for (const name of checkpoint.files.keys()) {
      check(name !== "" && name !== "." && name !== ".." && !/[/\\\0]/.test(name), "plain names");
    }
    if (input.value !== undefined) {
      check(comparable(checkpoint) === comparable(input.value), "valid round-trip");
    }
  },
});
