import { describe, expect, it } from "vitest";
import {
  formatPeerAddress,
  formatPeerList,
  listedPeers,
  membersOf,
  parsePeerAddress,
  parsePeerList,
  peersById,
} from "../../src/runtime/peer-list.ts";

describe("--peers with stable ids", () => {
  it("reads ID=host:port in any order, with gaps, sorted by id", () => {
    const peers = parsePeerList("4=10.0.0.4:7400, 1=10.0.0.1:7400,2=[::1]:7400");
    expect(peers).toEqual([
      { id: 1, host: "10.0.0.1", port: 7400 },
      { id: 2, host: "::1", port: 7400 },
      { id: 4, host: "10.0.0.4", port: 7400 },
    ]);
    expect(formatPeerList(peers as never)).toBe("1=10.0.0.1:7400,2=[::1]:7400,4=10.0.0.4:7400");
  });

  it("keeps the positional form: the n-th address is replica n", () => {
    expect(parsePeerList("a:1,b:2")).toEqual([
      { id: 1, host: "a", port: 1 },
      { id: 2, host: "b", port: 2 },
    ]);
  });

  it("says what is wrong", () => {
    expect(parsePeerList("1=a:1,b:2")).toMatch(/mixes ID=host:port and plain/);
    expect(parsePeerList("32=a:1")).toMatch(/id must be 1..31/);
    expect(parsePeerList("0=a:1")).toMatch(/id must be 1..31/);
    expect(parsePeerList("1=a:1,1=b:2")).toMatch(/lists replica 1 twice/);
    expect(parsePeerList("1=a:1,2=a:1")).toMatch(/lists a:1 twice/);
    expect(parsePeerList("1=a")).toMatch(/is not ID=host:port/);
    expect(parsePeerList("a:70000")).toMatch(/is not host:port/);
  });

  it("converts between the list, the transports' form (index id - 1) and a configuration", () => {
    const peers = parsePeerList("1=h:1,3=h:3") as Exclude<ReturnType<typeof parsePeerList>, string>;
    const byId = peersById(peers);
    expect(byId).toEqual([{ host: "h", port: 1 }, null, { host: "h", port: 3 }]);
    expect(listedPeers(byId)).toEqual(peers);
    expect(membersOf(peers)).toEqual([
      { id: 1, voter: true, address: "h:1" },
      { id: 3, voter: true, address: "h:3" },
    ]);
    expect(formatPeerAddress(parsePeerAddress("[fe80::1]:9")!)).toBe("[fe80::1]:9");
  });
});
