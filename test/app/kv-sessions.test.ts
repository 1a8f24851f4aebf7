/**
 * The embedded store's sessions (src/app/kv-sessions.ts) as the log drives them: what a
 * byte-for-byte comparison with one redis-server cannot show — several replicas applying the same
 * log, snapshots taken mid-transaction and mid-block, timeouts on the log's clock, connections
 * closed or forgotten with their origin's restart.
 */
import { describe, expect, it } from "vitest";
import { encodeCommands } from "../../src/app/command-codec.ts";
import { KvAppHarness } from "./kv-app-harness.ts";

/** Two replicas of the store fed the same log: one with the clients (origin 1), one without. */
function pair(): [KvAppHarness, KvAppHarness] {
  return [new KvAppHarness({ origin: 1 }), new KvAppHarness({ origin: 2 })];
}

describe("sessions of the embedded store", () => {
  it("a blocked command holds back the rest of its pipelined request, which runs once it is served", () => {
    const store = new KvAppHarness();
    store.send(1, ["BLPOP", "q", "0"], ["SET", "after", "1"], ["GET", "after"]);
    expect(store.take(1)).toBeNull();
    expect(store.run(2, "GET", "after")).toBe("$-1\r\n");
    expect(store.run(2, "RPUSH", "q", "x")).toBe(":1\r\n");
    expect(store.take(1)).toBe("*2\r\n$1\r\nq\r\n$1\r\nx\r\n+OK\r\n$1\r\n1\r\n");
  });

  it("serves blocked clients in the order they blocked, one element each", () => {
    const store = new KvAppHarness();
    for (const c of [1, 2, 3]) store.send(c, ["BRPOP", "q", "0"]);
    store.send(4, ["LPUSH", "q", "a", "b"]);
    expect(store.take(1)).toBe("*2\r\n$1\r\nq\r\n$1\r\na\r\n");
    expect(store.take(2)).toBe("*2\r\n$1\r\nq\r\n$1\r\nb\r\n");
    expect(store.take(3)).toBeNull();
    store.send(4, ["RPUSH", "q", "c"]);
    expect(store.take(3)).toBe("*2\r\n$1\r\nq\r\n$1\r\nc\r\n");
  });

  it("times a blocked command out by the log's clock, or by its origin's unblock event", () => {
    const store = new KvAppHarness();
    store.send(1, ["BLPOP", "q", "2"]);
    expect(store.unblocks).toEqual([]); // the origin's timer has not fired yet
    store.advance(1999);
    expect(store.take(1)).toBeNull();
    store.advance(1);
    expect(store.take(1)).toBe("*-1\r\n");
    // An idle cluster stamps no batch: the origin's unblock event ends the wait.
    store.send(1, ["BLMOVE", "q", "d", "LEFT", "LEFT", "100"]);
    store.event(1, "unblock", "2");
    expect(store.take(1)).toBe("$-1\r\n");
    // An unblock event for an earlier block does nothing to a later one.
    store.send(1, ["BLPOP", "q", "0"]);
    store.event(1, "unblock", "2");
    expect(store.take(1)).toBeNull();
    store.send(2, ["RPUSH", "q", "v"]);
    expect(store.take(1)).toBe("*2\r\n$1\r\nq\r\n$1\r\nv\r\n");
  });

  it("a client that leaves while blocked takes nothing", () => {
    const store = new KvAppHarness();
    store.send(1, ["BLPOP", "q", "0"]);
    store.event(1, "close");
    store.run(2, "RPUSH", "q", "kept");
    expect(store.run(2, "LRANGE", "q", "0", "-1")).toBe("*1\r\n$4\r\nkept\r\n");
  });

  it("a restarted origin's old connections are gone: their blocks, watches and subscriptions", () => {
    const store = new KvAppHarness({ origin: 2 });
    const old = { origin: 1, incarnation: 7, worker: 0, connId: 5 };
    const fresh = { origin: 1, incarnation: 8, worker: 0, connId: 1 };
    const apply = (connection: typeof old, args: string[]) =>
      store.app.apply(
        {
          connection,
          event: "data",
          body: encode([args]),
          bodyOffset: 0,
          nowMs: store.nowMs,
        },
        null,
      );
    apply(old, ["BLPOP", "q", "0"]);
    apply(old, ["SUBSCRIBE", "c"]);
    apply(fresh, ["PING"]);
    store.run(3, "RPUSH", "q", "v");
    expect(store.run(3, "LLEN", "q")).toBe(":1\r\n");
    expect(store.run(3, "PUBLISH", "c", "m")).toBe(":0\r\n");
    // A late request of the retired incarnation runs, detached: a blocking pop does not block.
    apply(old, ["BLPOP", "never", "0"]);
    expect(store.run(3, "CLIENT", "LIST")).not.toContain("incarnation");
  });

  it("replicas that apply the same log hold the same sessions and the same snapshot", () => {
    const [a, b] = pair();
    const script: [number, string[]][] = [
      [1, ["SELECT", "4"]],
      [1, ["SET", "k", "v"]],
      [2, ["MULTI"]],
      [2, ["INCR", "n"]],
      [3, ["WATCH", "k"]],
      [4, ["SUBSCRIBE", "news"]],
      [5, ["BLPOP", "q", "0"]],
      [6, ["CLIENT", "SETNAME", "six"]],
      [7, ["HELLO", "3"]],
    ];
    for (const [c, args] of script) {
      // Both apply the same log commands, named as replica 1's connections.
      a.send(c, args);
      b.app.apply(
        {
          connection: a.connection(c),
          event: "data",
          body: encode([args]),
          bodyOffset: 0,
          nowMs: b.nowMs,
        },
        null,
      );
      b.app.endBatch(b.nowMs);
    }
    expect(Buffer.from(a.app.snapshot()).equals(Buffer.from(b.app.snapshot()))).toBe(true);
  });

  it("a snapshot taken mid-transaction and mid-block restores to the same behaviour", () => {
    const store = new KvAppHarness();
    store.run(1, "SELECT", "2");
    store.run(1, "MULTI");
    store.run(1, "SET", "in2", "x");
    store.run(2, "WATCH", "w");
    store.send(3, ["BRPOPLPUSH", "src", "dst", "0"]);
    store.send(4, ["BLPOP", "src", "0"]);
    store.run(5, "SUBSCRIBE", "ch");
    const image = store.app.snapshot();
    const copy = new KvAppHarness({ origin: 9 }); // another replica: none of the clients is its own
    copy.app.restore(image);
    expect(Buffer.from(copy.app.snapshot()).equals(Buffer.from(image))).toBe(true);
    for (const replica of [store, copy]) {
      replica.run(6, "SET", "w", "changed");
      replica.run(6, "LPUSH", "src", "a", "b");
    }
    // Both replicas served the same blocked clients the same elements.
    for (const replica of [store, copy]) {
      expect(replica.run(6, "LRANGE", "dst", "0", "-1")).toBe("*1\r\n$1\r\na\r\n");
      expect(replica.run(6, "LLEN", "src")).toBe(":0\r\n");
      expect(replica.run(6, "PUBLISH", "ch", "m")).toBe(":1\r\n");
    }
    expect(store.run(1, "EXEC")).toBe("*1\r\n+OK\r\n");
    expect(store.run(2, "MULTI")).toBe("+OK\r\n");
    expect(store.run(2, "EXEC")).toBe("*-1\r\n"); // w was written after WATCH
    expect(store.run(1, "GET", "in2")).toBe("$1\r\nx\r\n");
    expect(Buffer.from(copy.app.snapshot()).length).toBeGreaterThan(0);
  });

  it("restores a snapshot taken before sessions existed (the store's bytes alone)", async () => {
    const { KvStore } = await import("../../src/app/kv-store.ts");
    const old = new KvStore();
    old.execute([Buffer.from("SET"), Buffer.from("k"), Buffer.from("v")], {
      nowMs: 1,
      info: () => "",
    });
    const store = new KvAppHarness();
    store.app.restore(old.snapshot());
    expect(store.run(1, "GET", "k")).toBe("$1\r\nv\r\n");
  });

  it("answers reads outside the log with the connection's database and protocol, and not mid-transaction", () => {
    const store = new KvAppHarness();
    store.run(1, "SELECT", "5");
    store.run(1, "SET", "k", "five");
    store.run(2, "HELLO", "3");
    const get = [[Buffer.from("GET"), Buffer.from("k")]];
    expect(Buffer.from(store.app.read(get, store.connection(1))!).toString()).toBe(
      "$4\r\nfive\r\n",
    );
    expect(Buffer.from(store.app.read(get, store.connection(2))!).toString()).toBe("_\r\n");
    store.run(1, "MULTI");
    expect(store.app.readOnly(get, store.connection(1))).toBe(false);
    expect(store.app.readOnly(get, store.connection(2))).toBe(true);
  });

  it("CLIENT UNBLOCK ends another client's wait, with a timeout or an error", () => {
    const store = new KvAppHarness();
    store.send(1, ["BLPOP", "q", "0"]);
    const id = store.run(1 + 1, "CLIENT", "ID");
    expect(id).toBe(":2\r\n");
    expect(store.run(2, "CLIENT", "UNBLOCK", "1")).toBe(":1\r\n");
    expect(store.take(1)).toBe("*-1\r\n");
    store.send(1, ["BLPOP", "q", "0"]);
    expect(store.run(2, "CLIENT", "UNBLOCK", "1", "ERROR")).toBe(":1\r\n");
    expect(store.take(1)).toBe("-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n");
    expect(store.run(2, "CLIENT", "UNBLOCK", "1")).toBe(":0\r\n");
  });

  it("bounds a transaction's queue", async () => {
    const { MULTI_QUEUE_BYTES_MAX } = await import("../../src/app/kv-sessions.ts");
    const store = new KvAppHarness();
    store.run(1, "MULTI");
    const value = "x".repeat(4 * 1024 * 1024);
    let reply = "";
    for (let i = 0; i * value.length <= MULTI_QUEUE_BYTES_MAX; i++)
      reply = store.run(1, "SET", `k${i}`, value)!;
    expect(reply).toMatch(/^-ERR transaction too large/);
    expect(store.run(1, "EXEC")).toMatch(/^-EXECABORT/);
    expect(store.run(1, "DBSIZE")).toBe(":0\r\n");
  });
});

function encode(commands: string[][]): Uint8Array {
  return encodeCommands(
    commands.map((args) => args.map((arg) => Buffer.from(arg, "latin1"))),
    0,
  );
}
