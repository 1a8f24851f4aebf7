import { describe, expect, it } from "vitest";
import { type ExecContext, isReadOnlyRequest, KvStore } from "../../src/app/kv-store.ts";

const ctx = (nowMs: number): ExecContext => ({ nowMs, info: () => "" });
const words = (line: string) => line.split(" ").map((w) => Buffer.from(w, "latin1"));
const run = (store: KvStore, line: string, nowMs: number) =>
  store.execute(words(line), ctx(nowMs)).toString("latin1");
const read = (store: KvStore, line: string) =>
  store.executeRead(words(line), ctx(0)).toString("latin1");

describe("reads served outside the log (KvStore.executeRead)", () => {
  it("takes only requests whose every command reads, with a valid arity", () => {
    expect(isReadOnlyRequest([words("GET k"), words("mget a b"), words("PING")])).toBe(true);
    expect(isReadOnlyRequest([words("GET k"), words("SET k v")])).toBe(false);
    expect(isReadOnlyRequest([words("GET")])).toBe(false); // wrong arity: the log answers it
    expect(isReadOnlyRequest([words("NOSUCH k")])).toBe(false);
    expect(isReadOnlyRequest([])).toBe(false);
  });

  it("answers at the log's clock and changes nothing: an expired key stays until the log collects it", () => {
    const store = new KvStore();
    run(store, "SET k v PX 100", 1_000);
    run(store, "SET keep v", 1_000);
    // The log's clock is 1,000: the key is alive for reads, whatever a machine's clock says.
    expect(read(store, "GET k")).toBe("$1\r\nv\r\n");
    run(store, "PING", 1_200); // a later batch moves the log's clock past the TTL
    const before = store.snapshot();
    expect(read(store, "GET k")).toBe("$-1\r\n");
    expect(read(store, "EXISTS k keep")).toBe(":1\r\n");
    expect(read(store, "DBSIZE")).toBe(":1\r\n");
    expect(read(store, "TTL keep")).toBe(":-1\r\n");
    // Nothing changed: the expired key is still held until the log's own expiry collects it.
    expect(Buffer.from(store.snapshot()).equals(Buffer.from(before))).toBe(true);
    expect(store.keyCount).toBe(2);
    expect(store.clockMs).toBe(1_200);
    expect(store.hasExpiringKeys).toBe(true);
  });

  it("refuses a write (never expected: the runtime checks isReadOnlyRequest first)", () => {
    const store = new KvStore();
    expect(() => read(store, "SET k v")).toThrow(/executeRead of a write/);
  });
});
