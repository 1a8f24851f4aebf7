import { describe, expect, it } from "vitest";
import type { CutRequest } from "../../../src/app/program/codec.ts";
import {
  memcacheCodec,
  memcacheDivergentOutput,
  memcacheKeys,
} from "../../../src/app/program/memcache-codec.ts";

function cut(line: string): CutRequest {
  const cutter = memcacheCodec().requests();
  cutter.push(Buffer.from(line));
  const request = cutter.next();
  if (request === null || request instanceof Error) throw new Error(`cannot cut ${line}`);
  return request;
}

const names = (keys: readonly Buffer[] | "all") =>
  keys === "all" ? "all" : keys.map((k) => k.toString("latin1").replace("\0", "\\0"));

describe("memcached requests for the apply loop", () => {
  it("reads name their keys; writes also take the one CAS counter, so two writes never commute", () => {
    expect(names(memcacheKeys(cut("get a b\r\n")))).toEqual(["a", "b"]);
    expect(names(memcacheKeys(cut("set a 0 0 1\r\nx\r\n")))).toEqual(["a", "\\0cas-counter"]);
    expect(names(memcacheKeys(cut("incr n 1\r\n")))).toEqual(["n", "\\0cas-counter"]);
    expect(names(memcacheKeys(cut("gat 10 a b\r\n")))).toEqual(["a", "b", "\\0cas-counter"]);
    expect(memcacheKeys(cut("flush_all\r\n"))).toBe("all");
    expect(memcacheKeys(cut("stats\r\n"))).toBe("all");
  });

  it("marks replies that are the copy's own (stats, me, mg t/l/h) as left out of output checking", () => {
    expect(memcacheDivergentOutput(cut("stats\r\n"))).toBe(true);
    expect(memcacheDivergentOutput(cut("me k\r\n"))).toBe(true);
    expect(memcacheDivergentOutput(cut("mg k v t\r\n"))).toBe(true);
    expect(memcacheDivergentOutput(cut("mg k v f\r\n"))).toBe(false);
    expect(memcacheDivergentOutput(cut("get k\r\n"))).toBe(false);
  });
});
