import { describe, expect, it } from "vitest";
import { type ExecContext, isReadOnlyRequest, KvStore } from "../../src/app/kv-store.ts";

const ctx = (nowMs: number): ExecContext => ({ nowMs, info: () => "" });
const words = (line: string) => line.split(" ").map((w) => Buffer.from(w, "latin1"));
const run = (store: KvStore, line: string, nowMs: number) =>
  store.execute(words(line), ctx(nowMs)).toString("latin1");
const read = (store: KvStore, line: string, nowMs: number) =>
  store.executeRead(words(line), nowMs, ctx(nowMs)).toString("latin1");

describe("reads served outside the log (KvStore.executeRead)", () => {
  it("takes only requests whose every command reads, with a valid arity", () => {
    expect(isReadOnlyRequest([words("GET k"), words("mget a b"), words("PING")])).toBe(true);
    expect(isReadOnlyRequest([words("GET k"), words("SET k v")])).toBe(false);
    expect(isReadOnlyRequest([words("GET")])).toBe(false); // wrong arity: the log answers it
    expect(isReadOnlyRequest([words("NOSUCH k")])).toBe(false);
    expect(isReadOnlyRequest([])).toBe(false);
  });

  it("answers as execute() would and changes nothing: an expired key stays until the log collects it", () => {
    const store = new KvStore();
    run(store, "SET k v PX 100", 1_000);
    run(store, "SET keep v", 1_000);
    const before = store.snapshot();
    // Past the TTL on this machine's clock, not yet on the log's.
    expect(read(store, "GET k", 1_200)).toBe("$-1\r\n");
    expect(read(store, "EXISTS k keep", 1_200)).toBe(":1\r\n");
    expect(read(store, "DBSIZE", 1_200)).toBe(":1\r\n");
    expect(read(store, "TTL keep", 1_200)).toBe(":-1\r\n");
    expect(Buffer.from(store.snapshot()).equals(Buffer.from(before))).toBe(true);
    expect(store.keyCount).toBe(2);
    // The log's clock is untouched: a write stamped before the TTL still sees the key.
    expect(run(store, "GET k", 1_050)).toBe("$1\r\nv\r\n");
    // A read never sees the store earlier than the log's clock.
    run(store, "SET t v PX 10", 2_000);
    run(store, "PING", 3_000);
    expect(read(store, "GET t", 0)).toBe("$-1\r\n");
  });

  it("refuses a write (never expected: the runtime checks isReadOnlyRequest first)", () => {
    const store = new KvStore();
    expect(() => read(store, "SET k v", 1)).toThrow(/executeRead of a write/);
  });
});
