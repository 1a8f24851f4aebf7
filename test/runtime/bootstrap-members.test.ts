import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bootstrapMembers, MEMBERS_FILE } from "../../src/runtime/bootstrap-members.ts";
import { parsePeerList } from "../../src/runtime/peer-list.ts";

const PEERS = parsePeerList("1=127.0.0.1:1,2=127.0.0.1:2,3=127.0.0.1:3") as Exclude<
  ReturnType<typeof parsePeerList>,
  string
>;

describe("the bootstrap configuration kept in the data directory", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "apus-members-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const inputs = (over: Partial<Parameters<typeof bootstrapMembers>[0]> = {}) => ({
    dataDir: dir,
    durable: true,
    id: 1,
    clusterId: 1,
    join: false,
    peers: PEERS,
    hasState: false,
    ...over,
  });

  it("a new cluster: --peers, all voters, written at the first start and read back after", () => {
    const first = bootstrapMembers(inputs());
    expect(first.source).toBe("written");
    expect(first.members?.map((m) => `${m.id}${m.voter ? "v" : "l"}=${m.address}`)).toEqual([
      "1v=127.0.0.1:1",
      "2v=127.0.0.1:2",
      "3v=127.0.0.1:3",
    ]);
    expect(JSON.parse(readFileSync(join(dir, MEMBERS_FILE), "utf8")).joined).toBe(false);
    // A restart with an edited --peers does not rewrite history.
    const edited = parsePeerList("1=127.0.0.1:1,9=127.0.0.1:9") as typeof PEERS;
    const again = bootstrapMembers(inputs({ peers: edited, hasState: true }));
    expect(again).toEqual({ members: first.members, source: "read" });
  });

  it("--join: no configuration, and it stays so across restarts (with or without --join)", () => {
    expect(bootstrapMembers(inputs({ id: 4, join: true }))).toEqual({
      members: null,
      source: "written",
    });
    expect(bootstrapMembers(inputs({ id: 4, join: true, hasState: true })).members).toBeNull();
    expect(bootstrapMembers(inputs({ id: 4, hasState: true })).members).toBeNull();
  });

  it("--join refuses a directory with another cluster's state, saying what to do", () => {
    bootstrapMembers(inputs());
    expect(() => bootstrapMembers(inputs({ join: true, hasState: true }))).toThrow(
      /--join: .* a cluster it was created in, not one it joined; .*Move the directory aside/,
    );
    const other = mkdtempSync(join(tmpdir(), "apus-members-"));
    try {
      expect(() =>
        bootstrapMembers(inputs({ dataDir: other, join: true, hasState: true })),
      ).toThrow(/--join: .* already holds write-ahead log state/);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it("refuses another replica's directory", () => {
    bootstrapMembers(inputs());
    expect(() => bootstrapMembers(inputs({ id: 2 }))).toThrow(/holds replica 1 of cluster id 1/);
  });

  it("memory durability keeps nothing", () => {
    expect(bootstrapMembers(inputs({ durable: false })).source).toBe("memory");
  });
});
