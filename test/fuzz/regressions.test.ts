/**
 * Inputs the fuzz targets (test/fuzz/targets) found that broke a decoder, shrunk, one test each,
 * kept after the fix: the decoder's documented error, nothing else.
 */
import { describe, expect, it } from "vitest";
import { decodeCheckpoint, encodeCheckpoint } from "../../src/app/program/copy-checkpoint.ts";
import {
  LOG_FLOOR,
  LOG_HEADER_BYTES,
  LOG_REQUEST_ID,
  readLogHeader,
  writeLogHeader,
} from "../../src/workers/log-command.ts";

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

describe("readLogHeader (log-command fuzz target)", () => {
  it("refuses a request id or floor that is not a safe integer instead of rounding it", () => {
    const header = { origin: 2, incarnation: 7, requestId: 5, floor: 4, takenMs: 1000 };
    const command = new Uint8Array(LOG_HEADER_BYTES);
    writeLogHeader(command, header);
    expect(readLogHeader(command)).toEqual(header);
    const view = new DataView(command.buffer);
    view.setBigUint64(LOG_REQUEST_ID, 2n ** 53n, true);
    expect(readLogHeader(command)).toBeNull();
    writeLogHeader(command, header);
    view.setBigUint64(LOG_FLOOR, 2n ** 64n - 1n, true);
    expect(readLogHeader(command)).toBeNull();
  });
});
