/**
 * The embedded store's sessions (src/app/kv-sessions.ts) as the log drives them: what a
 * byte-for-byte comparison with one redis-server cannot show — several replicas applying the same
 * log, snapshots taken mid-transaction and mid-block, timeouts on the log's clock, connections
 * closed or forgotten with their origin's restart.
 */
import { describe, expect, it, vi } from "vitest";
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
    expect(store.run(3, "CLIENT", "LIST")).toContain("addr=replica-1:0.5 ");
    apply(fresh, ["PING"]);
    store.run(3, "RPUSH", "q", "v");
    expect(store.run(3, "LLEN", "q")).toBe(":1\r\n");
    expect(store.run(3, "PUBLISH", "c", "m")).toBe(":0\r\n");
    // A late request of the retired incarnation runs, detached: a blocking pop does not block.
    apply(old, ["BLPOP", "never", "0"]);
    const list = store.run(3, "CLIENT", "LIST")!;
    expect(list).not.toContain("addr=replica-1:0.5 "); // the retired run's session: gone
    expect(store.run(3, "INFO", "clients")).toContain("blocked_clients:0");
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

describe("sessions, review findings (each failed before its fix)", () => {
  /** Applies a request of any connection, with the log header's takenMs. */
  function apply(
    store: KvAppHarness,
    connection: { origin: number; incarnation: number; worker: number; connId: number },
    args: string[],
    takenMs: number,
    sink: ((reply: Uint8Array) => void) | null = null,
  ): void {
    store.app.apply(
      {
        connection,
        event: "data",
        body: encode([args]),
        bodyOffset: 0,
        nowMs: store.nowMs,
        takenMs,
      },
      sink,
    );
    store.app.endBatch(store.nowMs);
  }

  it("a key that turns into another type keeps its blocked client waiting (no endless re-runs)", () => {
    const store = new KvAppHarness();
    store.send(1, ["BLPOP", "q", "0"]);
    expect(store.run(2, "SET", "q", "s")).toBe("+OK\r\n");
    expect(store.take(1)).toBeNull();
    store.run(2, "DEL", "q");
    store.run(2, "RPUSH", "q", "a");
    expect(store.take(1)).toBe("*2\r\n$1\r\nq\r\n$1\r\na\r\n");
  });

  it("times out due clients in the same order whether or not the replica restored a snapshot", () => {
    const live = new KvAppHarness();
    live.run(1, "CLIENT", "SETNAME", "w1");
    live.send(2, ["BLPOP", "k", "1"]);
    live.send(1, ["BLPOP", "a", "1"], ["RPUSH", "k", "x"]);
    const restored = new KvAppHarness({ origin: 9 });
    restored.app.restore(live.app.snapshot());
    restored.nowMs = live.nowMs;
    for (const replica of [live, restored]) replica.advance(1000);
    expect(restored.run(3, "LLEN", "k")).toBe(live.run(3, "LLEN", "k"));
  });

  it("a late request of a retired incarnation leaves no subscription behind", () => {
    const store = new KvAppHarness({ origin: 2 });
    const old = { origin: 1, incarnation: 111, worker: 0, connId: 1 };
    const fresh = { origin: 1, incarnation: 222, worker: 0, connId: 1 };
    apply(store, old, ["SET", "a", "1"], 1000);
    apply(store, fresh, ["SET", "b", "1"], 2000);
    apply(store, old, ["SUBSCRIBE", "news"], 1500);
    expect(store.run(3, "PUBSUB", "NUMSUB", "news")).toBe("*2\r\n$4\r\nnews\r\n:0\r\n");
  });

  it("an older incarnation seen late does not retire the live one (taken before its first request)", () => {
    const store = new KvAppHarness({ origin: 2 });
    const live = { origin: 1, incarnation: 222, worker: 0, connId: 4 };
    const older = { origin: 1, incarnation: 111, worker: 0, connId: 9 };
    apply(store, live, ["SELECT", "5"], 5000);
    apply(store, older, ["SET", "x", "late"], 4000);
    const replies: string[] = [];
    apply(store, live, ["SET", "in5", "v"], 6000, (r) => replies.push(Buffer.from(r).toString()));
    expect(store.run(3, "SELECT", "5")).toBe("+OK\r\n");
    expect(store.run(3, "GET", "in5")).toBe("$1\r\nv\r\n");
    // A newer incarnation (taken after the live one's first request) does retire it.
    apply(store, { ...live, incarnation: 333, connId: 1 }, ["PING"], 7000);
    apply(store, live, ["SET", "gone", "1"], 6500);
    store.run(3, "SELECT", "0");
    expect(store.run(3, "EXISTS", "gone")).toBe(":1\r\n"); // it still runs, detached
  });

  it("a blocked command its own replica gave up on (timed out before it was chosen) is ended at once", () => {
    const store = new KvAppHarness();
    // The origin's router no longer holds the request: no reply sink, though it is this replica's.
    apply(store, store.connection(1), ["BLPOP", "q", "0"], store.nowMs, null);
    expect(store.unblocks).toEqual([{ connId: 1, block: 1 }]);
    store.event(1, "unblock", "1");
    expect(store.run(2, "RPUSH", "q", "x")).toBe(":1\r\n");
    expect(store.run(2, "LLEN", "q")).toBe(":1\r\n");
    // Another replica's client without a sink here is only not this replica's: it stays blocked.
    const other = new KvAppHarness({ origin: 2 });
    apply(other, store.connection(1), ["BLPOP", "q", "0"], other.nowMs, null);
    expect(other.unblocks).toEqual([]);
  });

  it("a request while its connection is blocked drops the blocked command: it takes nothing later", () => {
    const store = new KvAppHarness();
    store.send(1, ["BLPOP", "q", "0"]);
    store.send(1, ["BLPOP", "r", "0"]);
    store.event(1, "close");
    const copy = new KvAppHarness({ origin: 9 });
    copy.app.restore(store.app.snapshot());
    for (const replica of [store, copy]) {
      replica.run(2, "RPUSH", "q", "x");
      expect(replica.run(2, "LLEN", "q")).toBe(":1\r\n");
    }
  });

  it("the origin that installs a snapshot keeps its blocked clients' requests", () => {
    const origin = new KvAppHarness();
    origin.send(1, ["BLPOP", "q", "0"]);
    const other = new KvAppHarness({ origin: 9 });
    other.app.restore(origin.app.snapshot());
    // The origin falls behind and installs a later snapshot of the other replica's.
    other.run(5, "SET", "unrelated", "1");
    origin.app.restore(other.app.snapshot());
    origin.run(2, "RPUSH", "q", "job");
    expect(origin.take(1)).toBe("*2\r\n$1\r\nq\r\n$3\r\njob\r\n");
  });

  it("a message to a client whose request is still being answered comes after the replies before it", () => {
    const store = new KvAppHarness();
    store.send(1, ["HELLO", "3"], ["SUBSCRIBE", "ch"], ["PUBLISH", "ch", "hi"]);
    const all = store.takeAll(1);
    const subscribed = all.indexOf(">3\r\n$9\r\nsubscribe");
    const message = all.indexOf(">3\r\n$7\r\nmessage");
    expect(subscribed).toBeGreaterThan(0);
    expect(message).toBeGreaterThan(subscribed);
    expect(all.endsWith(":1\r\n")).toBe(true);
  });

  it("CLIENT INFO in RESP3 is a verbatim string, as redis-server sends it", () => {
    const store = new KvAppHarness();
    store.run(1, "HELLO", "3");
    expect(store.run(1, "CLIENT", "INFO")).toMatch(/^=\d+\r\ntxt:id=/);
  });

  it("the snapshot of a large transaction queue of control bytes is taken (base64, not JSON escapes)", () => {
    const store = new KvAppHarness();
    store.run(1, "MULTI");
    const value = "\u0001".repeat(4 * 1024 * 1024);
    for (let i = 0; i < 3; i++) store.run(1, "SET", `k${i}`, value);
    const image = store.app.snapshot();
    expect(image.byteLength).toBeLessThan(20 * 1024 * 1024);
    const copy = new KvAppHarness({ origin: 9 });
    copy.app.restore(image);
    expect(store.run(1, "EXEC")).toMatch(/^\*3\r\n/);
    // The other replica runs the same EXEC of the same connection.
    apply(copy, store.connection(1), ["EXEC"], copy.nowMs);
    expect(copy.run(2, "STRLEN", "k2")).toBe(`:${value.length}\r\n`);
  });
});

describe("the lease of blocked clients (--block-lease-ms)", () => {
  const LEASE = 1000;
  const UNBLOCKED =
    /^-UNBLOCKED apus: this client's replica was not heard from in the log for over 1000 ms/;
  /** Origin 1's connection 1, as a replica of origin 2 applies it. */
  const remote = { origin: 1, incarnation: 7, worker: 0, connId: 1 };
  const announce = { ...remote, connId: 0 };

  function replicaOf2(): { store: KvAppHarness; replies: string[] } {
    return { store: new KvAppHarness({ origin: 2, blockLeaseMs: LEASE }), replies: [] };
  }

  /** A log command of origin 1 (data or its run's announcement), applied as one batch. */
  function fromOrigin1(
    store: KvAppHarness,
    connection: typeof remote,
    event: "data" | "close",
    commands: string[][],
    replies: string[] | null,
    takenMs = store.nowMs,
  ): void {
    store.app.apply(
      { connection, event, body: encode(commands), bodyOffset: 0, nowMs: store.nowMs, takenMs },
      replies === null ? null : (reply) => replies.push(Buffer.from(reply).toString("latin1")),
    );
    store.app.endBatch(store.nowMs);
  }

  function blpop(store: KvAppHarness, replies: string[], key = "q"): void {
    fromOrigin1(store, remote, "data", [["BLPOP", key, "0"]], replies);
  }

  /** Origin 1 puts its run in the log (its renewal). */
  function renew(store: KvAppHarness, takenMs = store.nowMs): void {
    fromOrigin1(store, announce, "close", [], null, takenMs);
  }

  it("serves a blocked client within the lease of its replica's last word", () => {
    const { store, replies } = replicaOf2();
    blpop(store, replies);
    store.nowMs += LEASE - 1;
    expect(store.run(3, "RPUSH", "q", "job")).toBe(":1\r\n");
    expect(replies).toEqual(["*2\r\n$1\r\nq\r\n$3\r\njob\r\n"]);
  });

  it("a write past the lease does not serve a silent replica's client: the element stays", () => {
    const { store, replies } = replicaOf2();
    blpop(store, replies);
    store.nowMs += LEASE; // no batch in between: the push itself is the first past the lease
    expect(store.run(3, "RPUSH", "q", "job")).toBe(":1\r\n");
    expect(replies).toHaveLength(1);
    expect(replies[0]).toMatch(UNBLOCKED);
    expect(store.run(3, "LLEN", "q")).toBe(":1\r\n");
    expect(store.run(3, "INFO", "clients")).toMatch(/blocked_clients:0/);
  });

  it("the first batch past the lease ends the blocked command (CLIENT LIST no longer shows it blocked)", () => {
    const { store, replies } = replicaOf2();
    blpop(store, replies);
    store.advance(LEASE - 1);
    expect(replies).toEqual([]);
    store.advance(1);
    expect(replies[0]).toMatch(UNBLOCKED);
    expect(store.run(3, "CLIENT", "LIST")).not.toMatch(/flags=b/);
  });

  it("renewals and other commands of the replica keep its blocked clients", () => {
    const { store, replies } = replicaOf2();
    blpop(store, replies);
    for (let i = 0; i < 5; i++) {
      store.nowMs += LEASE * 0.8;
      renew(store);
    }
    store.nowMs += LEASE * 0.8;
    // Another client of origin 1 is word from it too.
    fromOrigin1(store, { ...remote, connId: 2 }, "data", [["SET", "k", "v"]], null);
    store.nowMs += LEASE * 0.8;
    expect(store.run(3, "RPUSH", "q", "job")).toBe(":1\r\n");
    expect(replies).toEqual(["*2\r\n$1\r\nq\r\n$3\r\njob\r\n"]);
  });

  it("a replica restored from a snapshot ends the same blocked commands at the same point", () => {
    const { store: live, replies } = replicaOf2();
    blpop(live, replies);
    live.nowMs += LEASE / 2;
    renew(live);
    // A later batch of another replica's client: the snapshot's clock is past origin 1's word.
    live.nowMs += LEASE / 4;
    live.run(4, "SET", "unrelated", "1");
    const restored = new KvAppHarness({ origin: 3, blockLeaseMs: LEASE });
    restored.app.restore(live.app.snapshot());
    restored.nowMs = live.nowMs;
    for (const replica of [live, restored]) {
      replica.advance((LEASE * 3) / 4); // exactly the lease after the renewal: it ends here
      replica.run(4, "RPUSH", "q", "a");
    }
    expect(replies[0]).toMatch(UNBLOCKED);
    expect(restored.run(4, "LRANGE", "q", "0", "-1")).toBe("*1\r\n$1\r\na\r\n");
    expect(live.run(4, "LRANGE", "q", "0", "-1")).toBe("*1\r\n$1\r\na\r\n");
  });

  it("a late copy of a silent replica's command does not renew its lease (it counts from when it was taken)", () => {
    const { store, replies } = replicaOf2();
    blpop(store, replies);
    const takenMs = store.nowMs + 100;
    store.nowMs += LEASE * 0.9;
    // Origin 1's renewal, taken early and chosen late (a new leader recovered it).
    renew(store, takenMs);
    store.nowMs = takenMs + LEASE;
    expect(store.run(3, "RPUSH", "q", "job")).toBe(":1\r\n");
    expect(replies[0]).toMatch(UNBLOCKED);
    expect(store.run(3, "LLEN", "q")).toBe(":1\r\n");
  });

  it("the rest of an ended command's request does not run: each command after it gets an error", () => {
    const { store } = replicaOf2();
    store.run(3, "RPUSH", "b", "only");
    const replies: string[] = [];
    fromOrigin1(
      store,
      remote,
      "data",
      [
        ["BLPOP", "a", "0"],
        ["LPOP", "b"],
        ["SET", "c", "1"],
      ],
      replies,
    );
    store.advance(LEASE);
    expect(replies).toHaveLength(1);
    const [unblocked, ...rest] = replies[0]!.split(/(?<=\r\n)(?=-)/);
    expect(unblocked).toMatch(UNBLOCKED);
    expect(rest).toEqual([
      "-ERR apus: not run: a blocking command before it in the same request was ended by its lease (--block-lease-ms)\r\n",
      "-ERR apus: not run: a blocking command before it in the same request was ended by its lease (--block-lease-ms)\r\n",
    ]);
    expect(store.run(3, "LLEN", "b")).toBe(":1\r\n");
    expect(store.run(3, "EXISTS", "c")).toBe(":0\r\n");
  });

  it("the origin renews every fifth of the lease while it has clients blocked, and then stops", () => {
    vi.useFakeTimers();
    try {
      const store = new KvAppHarness({ blockLeaseMs: LEASE });
      store.run(1, "SET", "plain", "1");
      vi.advanceTimersByTime(3 * LEASE);
      expect(store.renewals).toBe(0);
      store.send(1, ["BLPOP", "q", "0"]);
      expect(store.renewals).toBe(1); // at once: others may have applied the block long ago
      vi.advanceTimersByTime(LEASE);
      expect(store.renewals).toBe(6);
      store.run(2, "RPUSH", "q", "x");
      vi.advanceTimersByTime(3 * LEASE);
      expect(store.renewals).toBe(6);
      // Blocked again later: renewals start again.
      store.send(1, ["BLPOP", "q", "0"]);
      vi.advanceTimersByTime(LEASE);
      expect(store.renewals).toBe(12);
    } finally {
      vi.useRealTimers();
    }
  });
});

function encode(commands: string[][]): Uint8Array {
  return encodeCommands(
    commands.map((args) => args.map((arg) => Buffer.from(arg, "latin1"))),
    0,
  );
}
