import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { nextPeerIncarnation, PEER_INCARNATION_FILE } from "../../src/runtime/peer-incarnation.ts";

const root = mkdtempSync(join(tmpdir(), "apus-incarnation-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("nextPeerIncarnation: grows across restarts whatever the clock does", () => {
  it("fsync: max(clock, last + 1), persisted before it is used", () => {
    const dataDir = join(root, "fsync", "replica-1"); // made if missing
    const config = { durability: "fsync" as const, dataDir };
    const file = join(dataDir, PEER_INCARNATION_FILE);
    expect(nextPeerIncarnation(config, 1_000)).toBe(1_000);
    expect(readFileSync(file, "latin1")).toBe("1000\n");
    expect(nextPeerIncarnation(config, 5_000)).toBe(5_000);
    // The clock stepped back (NTP, a restored VM): the incarnation still grows.
    expect(nextPeerIncarnation(config, 2_000)).toBe(5_001);
    expect(nextPeerIncarnation(config, 5_001)).toBe(5_002); // same millisecond
    expect(readFileSync(file, "latin1")).toBe("5002\n");
  });

  it("memory: the clock alone, nothing written", () => {
    const dataDir = join(root, "memory");
    expect(nextPeerIncarnation({ durability: "memory", dataDir }, 1234.7)).toBe(1234);
    expect(() => readFileSync(join(dataDir, PEER_INCARNATION_FILE))).toThrow(/ENOENT/);
  });

  it("refuses a damaged file, saying what to do", () => {
    const dataDir = join(root, "damaged");
    nextPeerIncarnation({ durability: "fsync", dataDir }, 10);
    writeFileSync(join(dataDir, PEER_INCARNATION_FILE), "not a number\n");
    expect(() => nextPeerIncarnation({ durability: "fsync", dataDir }, 20)).toThrow(
      /not an incarnation; delete it and restart/,
    );
  });
});
