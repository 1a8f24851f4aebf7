import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeCommands, encodeCommands } from "../../src/app/command-codec.ts";

const commandsArb = fc.array(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 6 }), {
  maxLength: 8,
});

describe("command codec", () => {
  it("has the documented little-endian layout, after zeroed header bytes", () => {
    const bytes = encodeCommands([[Buffer.from("GET"), Buffer.from("k")]], 3);
    expect([...bytes]).toEqual([
      0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 71, 69, 84, 1, 0, 0, 0, 107,
    ]);
  });

  it("round-trips any list of commands, as views into the input", () => {
    fc.assert(
      fc.property(commandsArb, fc.nat(16), (commands, headerBytes) => {
        const bytes = encodeCommands(commands, headerBytes);
        const decoded = decodeCommands(bytes, headerBytes);
        expect(decoded?.map((c) => c.map((a) => [...a]))).toEqual(
          commands.map((c) => c.map((a) => [...a])),
        );
        for (const command of decoded ?? []) {
          for (const arg of command) expect(arg.buffer).toBe(bytes.buffer);
        }
      }),
      { seed: 1, numRuns: 300 },
    );
  });

  it("returns null, never throws, on truncated, extended or corrupted input", () => {
    fc.assert(
      fc.property(commandsArb, fc.nat(), fc.nat(255), (commands, position, byte) => {
        const bytes = encodeCommands(commands, 0);
        expect(decodeCommands(bytes.subarray(0, bytes.length - 1), 0)).toBeNull();
        expect(decodeCommands(Buffer.concat([bytes, Buffer.from([0])]), 0)).toBeNull();
        const corrupted = Uint8Array.from(bytes);
        corrupted[position % corrupted.length] = byte;
        decodeCommands(corrupted, 0); // any result but a throw
      }),
      { seed: 2, numRuns: 500 },
    );
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 64 }),
        fc.integer({ min: -2, max: 70 }),
        (bytes, offset) => {
          decodeCommands(bytes, offset);
        },
      ),
      { seed: 3, numRuns: 500 },
    );
  });

  it("rejects huge declared counts before allocating", () => {
    expect(decodeCommands(Uint8Array.from([255, 255, 255, 255]), 0)).toBeNull();
    expect(decodeCommands(Uint8Array.from([1, 0, 0, 0, 255, 255, 255, 255]), 0)).toBeNull();
    expect(
      decodeCommands(Uint8Array.from([1, 0, 0, 0, 1, 0, 0, 0, 255, 255, 255, 255]), 0),
    ).toBeNull();
    expect(decodeCommands(Uint8Array.from([0, 0, 0, 0]), 0)).toEqual([]);
  });
});
