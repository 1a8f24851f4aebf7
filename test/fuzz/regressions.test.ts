/**
 * Inputs the fuzz targets (test/fuzz/targets) found that broke a decoder, shrunk, one test each,
 * kept after the fix: the decoder's documented error, nothing else.
 */
import { describe, expect, it } from "vitest";
import { decodeCheckpoint, encodeCheckpoint } from "../../src/app/program/copy-checkpoint.ts";

describe("decodeCheckpoint (copy-checkpoint fuzz target)", () => {
  const empty = encodeCheckpoint({
    steps: 1,
    chain: new Uint8Array(32),
    loop: { incarnations: [], retired: [], closed: [], keysByOrigin: [] },
    files: new Map(),
  });
  /** The checkpoint with its loop state's JSON replaced by `json`. */
  const withLoop = (json: string): Buffer => {
    const loop = Buffer.from(json, "utf8");
    const length = Buffer.alloc(4);
    length.writeUInt32LE(loop.length);
    return Buffer.concat([empty.subarray(0, 44), length, loop, Buffer.alloc(4)]);
  };
  const damaged = { name: "ApusError", code: "ERR_WIRE_FIELD" };

  it("refuses loop state that is not JSON with its own error, not a SyntaxError", () => {
    expect(() => decodeCheckpoint(withLoop('|"incarnations":[]}'))).toThrow(
      expect.objectContaining({
        ...damaged,
        message: "program checkpoint: loop state is not JSON",
      }),
    );
  });

  it("refuses loop state of another shape, which restore() would have met as a TypeError", () => {
    for (const json of [
      "null",
      "5",
      "{}",
      '{"incarnations":[[1]],"retired":[],"closed":[],"keysByOrigin":[]}',
    ]) {
      expect(() => decodeCheckpoint(withLoop(json)), json).toThrow(
        expect.objectContaining(damaged),
      );
    }
  });

  it("throws the same error for the damage it already caught", () => {
    expect(() => decodeCheckpoint(empty.subarray(0, 20))).toThrow(
      expect.objectContaining({ ...damaged, message: "program checkpoint: truncated" }),
    );
  });
});
