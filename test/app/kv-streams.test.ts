/**
 * Streams (src/app/kv-streams.ts, kv-stream.ts) where a byte-for-byte comparison with
 * redis-server cannot work (test/app/compat/streams.ts has the rest): auto ids and every time a
 * reply shows come from the log's clock; BLOCK's sentinel; the byte count; snapshots; limits.
 */
import { describe, expect, it } from "vitest";
import { commandKeys, findCommand, hasValueOver } from "../../src/app/kv-command-table.ts";
import { Keyspace } from "../../src/app/kv-keyspace.ts";
import { type ExecContext, isReadOnlyRequest, KvStore } from "../../src/app/kv-store.ts";
import {
  IdList,
  type KvStream,
  STREAM_CONSUMER_OVERHEAD,
  STREAM_ENTRY_OVERHEAD,
  STREAM_GROUP_OVERHEAD,
  STREAM_NACK_OVERHEAD,
  streamId,
} from "../../src/app/kv-stream.ts";
import { BLOCKED, xreadBlockMs, xreadResolveIds } from "../../src/app/kv-streams.ts";

const context = (nowMs: number): ExecContext => ({ nowMs, info: () => "" });
const toArgs = (line: string | readonly string[]): Buffer[] =>
  (typeof line === "string" ? line.split(" ") : line).map((w) => Buffer.from(w, "latin1"));

type Reply = string | number | null | Error | Reply[];

/** A RESP2 reply as plain values: bulk and simple strings, integers, null, arrays, errors. */
function decode(buf: Buffer): Reply {
  let at = 0;
  const line = (): string => {
    const end = buf.indexOf("\r\n", at, "latin1");
    const text = buf.toString("latin1", at, end);
    at = end + 2;
    return text;
  };
  const value = (): Reply => {
    const type = String.fromCharCode(buf[at++]!);
    const text = line();
    if (type === "+") return text;
    if (type === "-") return new Error(text);
    if (type === ":") return Number(text);
    if (type === "$") {
      const length = Number(text);
      if (length < 0) return null;
      const bytes = buf.toString("latin1", at, at + length);
      at += length + 2;
      return bytes;
    }
    const count = Number(text);
    if (count < 0) return null;
    return Array.from({ length: count }, value);
  };
  const result = value();
  expect(at).toBe(buf.length);
  return result;
}

/** A RESP2 map (a flat array of names and values) as an object. */
function asMap(reply: Reply): Record<string, Reply> {
  expect(Array.isArray(reply)).toBe(true);
  const pairs = reply as Reply[];
  const map: Record<string, Reply> = {};
  for (let i = 0; i < pairs.length; i += 2) map[pairs[i] as string] = pairs[i + 1]!;
  return map;
}

function runner(store: KvStore) {
  return (line: string | readonly string[], nowMs: number): Reply =>
    decode(store.execute(toArgs(line), context(nowMs)));
}

/** A keyspace driven through the command table, so a test can look at its KvStream. */
function keyspaceRunner(limits = { valueBytesMax: 1 << 20, replyBytesMax: 1 << 24 }) {
  const keyspace = new Keyspace({ ...limits, patternBytesMax: 4096 });
  const run = (line: string | readonly string[], nowMs = 1_000): Buffer => {
    const args = toArgs(line);
    const spec = findCommand(args[0]!)!;
    return spec.handler(keyspace, args, keyspace.advanceClock(nowMs), context(nowMs));
  };
  const stream = (key: string): KvStream => keyspace.entries.get(key)!.value as KvStream;
  return { keyspace, run, stream };
}

/** A stream's payload bytes counted from scratch, as KvStream.bytes should have kept them. */
function countedBytes(stream: KvStream): number {
  let bytes = 0;
  for (const entry of stream) {
    bytes += STREAM_ENTRY_OVERHEAD;
    for (const field of entry.fields) bytes += field.length;
  }
  for (const [name, group] of stream.groups) {
    bytes += name.length + STREAM_GROUP_OVERHEAD + group.pel.size * STREAM_NACK_OVERHEAD;
    for (const consumer of group.consumers.values()) {
      bytes += consumer.name.length + STREAM_CONSUMER_OVERHEAD;
    }
  }
  return bytes;
}

describe("stream ids from the log's clock", () => {
  it("an auto id takes `now` as its ms part, and never goes back", () => {
    const run = runner(new KvStore());
    expect(run("XADD s * f v", 5_000)).toBe("5000-0");
    expect(run("XADD s * f v", 5_000)).toBe("5000-1");
    expect(run("XADD s * f v", 5_001)).toBe("5001-0");
    // The store's clock never goes back: an older batch stamp still gets a larger id.
    expect(run("XADD s * f v", 4_000)).toBe("5001-1");
    // Behind the last id (set explicitly into the future): its ms, sequence plus one.
    expect(run("XADD s 9000-5 f v", 6_000)).toBe("9000-5");
    expect(run("XADD s * f v", 6_000)).toBe("9000-6");
    expect(run("XADD s 9000-* f v", 6_000)).toBe("9000-7");
    expect(run("XADD s 9001-* f v", 6_000)).toBe("9001-0");
    expect(run("XADD s MAXLEN 2 * f v", 10_000)).toBe("10000-0");
    expect(run("XRANGE s - +", 10_000)).toEqual([
      ["9001-0", ["f", "v"]],
      ["10000-0", ["f", "v"]],
    ]);
    // XSETID to the largest id: nothing more can be added, whatever the clock.
    expect(run("XSETID s 18446744073709551615-18446744073709551615", 10_000)).toBe("OK");
    expect(run("XADD s * f v", 20_000)).toEqual(
      new Error("ERR The stream has exhausted the last possible ID, unable to add more items"),
    );
  });

  it("a store restored with a fractional clock still makes whole ids", () => {
    const store = new KvStore();
    const run = runner(store);
    run("XADD s * f v", 1_000.75);
    expect(run("XADD s * f v", 1_002.5)).toBe("1002-0");
  });
});

describe("XREAD and XREADGROUP with BLOCK", () => {
  it("answer at once when a stream has entries past the ids, else return BLOCKED", () => {
    const store = new KvStore();
    const run = runner(store);
    const raw = (line: string) => store.execute(toArgs(line), context(1_000));
    expect(raw("XREAD BLOCK 100 STREAMS s 0")).toBe(BLOCKED);
    expect(raw("XREAD BLOCK 0 STREAMS s $")).toBe(BLOCKED);
    expect(raw("XREAD STREAMS s 0").toString()).toBe("*-1\r\n"); // no BLOCK: nil at once
    run("XADD s 1-0 f v", 1_000);
    expect(run("XREAD BLOCK 100 STREAMS s 0", 1_000)).toEqual([["s", [["1-0", ["f", "v"]]]]]);
    expect(raw("XREAD BLOCK 100 STREAMS s $")).toBe(BLOCKED);
    expect(raw("XREAD BLOCK 100 STREAMS s 1-0")).toBe(BLOCKED);
    expect(run("XREAD BLOCK x STREAMS s 0", 1_000)).toEqual(
      new Error("ERR timeout is not an integer or out of range"),
    );
    expect(run("XREAD BLOCK -1 STREAMS s 0", 1_000)).toEqual(new Error("ERR timeout is negative"));
    expect(run("XREAD BLOCK 9223372036854775807 STREAMS s 0", 1_000)).toEqual(
      new Error("ERR timeout is out of range"),
    );

    run("XGROUP CREATE s g $", 1_000);
    expect(raw("XREADGROUP GROUP g alice BLOCK 0 STREAMS s >")).toBe(BLOCKED);
    // Nothing served, no consumer made (Redis 7.0 makes it when it serves the read).
    expect(run("XINFO CONSUMERS s g", 1_000)).toEqual([]);
    run("XADD s 2-0 f w", 1_000);
    expect(run("XREADGROUP GROUP g alice BLOCK 0 STREAMS s >", 1_000)).toEqual([
      ["s", [["2-0", ["f", "w"]]]],
    ]);
    // A history read is always served, even empty.
    expect(run("XREADGROUP GROUP g bob BLOCK 0 STREAMS s 0", 1_000)).toEqual([["s", []]]);
  });

  it("xreadResolveIds turns `$` into each stream's last id; xreadBlockMs reads the timeout", () => {
    const { keyspace, run } = keyspaceRunner();
    run("XADD s 7-3 f v");
    run("XADD other 1-0 f v");
    const resolved = xreadResolveIds(
      keyspace,
      toArgs("XREAD COUNT 2 BLOCK 5 STREAMS s nokey other $ $ 0"),
      1_000,
    );
    expect(resolved.map((b) => b.toString())).toEqual(
      "XREAD COUNT 2 BLOCK 5 STREAMS s nokey other 7-3 0-0 0".split(" "),
    );
    // XREADGROUP's ids are left alone (`$` is its error to give).
    const group = toArgs("XREADGROUP GROUP g c BLOCK 5 STREAMS s $");
    expect(xreadResolveIds(keyspace, group, 1_000).map(String)).toEqual(group.map(String));
    // Run again after a write, the resolved command serves only what came since.
    const waiting = xreadResolveIds(keyspace, toArgs("XREAD BLOCK 5 STREAMS s $"), 1_000);
    expect(run(waiting.map(String))).toBe(BLOCKED);
    run("XADD s 8-0 f w");
    expect(decode(run(waiting.map(String)))).toEqual([["s", [["8-0", ["f", "w"]]]]]);

    expect(xreadBlockMs(toArgs("XREAD STREAMS s 0"))).toBe(-1);
    expect(xreadBlockMs(toArgs("XREAD BLOCK 0 STREAMS s 0"))).toBe(0);
    expect(xreadBlockMs(toArgs("XREAD COUNT 3 BLOCK 250 STREAMS s 0"))).toBe(250);
    expect(xreadBlockMs(toArgs("XREADGROUP GROUP g c BLOCK 30 STREAMS s >"))).toBe(30);
    expect((xreadBlockMs(toArgs("XREAD BLOCK -1 STREAMS s 0")) as Buffer).toString()).toBe(
      "-ERR timeout is negative\r\n",
    );
  });
});

describe("consumer groups on the log's clock", () => {
  it("XPENDING's idle, IDLE filter, XCLAIM's min-idle, IDLE/TIME/RETRYCOUNT, XAUTOCLAIM", () => {
    const run = runner(new KvStore());
    for (let i = 1; i <= 4; i++) run(`XADD s ${i}-0 f ${i}`, 1_000);
    run("XGROUP CREATE s g 0", 1_000);
    run("XREADGROUP GROUP g alice COUNT 2 STREAMS s >", 1_000);
    run("XREADGROUP GROUP g bob STREAMS s >", 1_500);
    expect(run("XPENDING s g - + 10", 2_000)).toEqual([
      ["1-0", "alice", 1_000, 1],
      ["2-0", "alice", 1_000, 1],
      ["3-0", "bob", 500, 1],
      ["4-0", "bob", 500, 1],
    ]);
    expect(run("XPENDING s g IDLE 700 - + 10", 2_000)).toEqual([
      ["1-0", "alice", 1_000, 1],
      ["2-0", "alice", 1_000, 1],
    ]);
    expect(run("XPENDING s g (1-0 + 1 bob", 2_000)).toEqual([["3-0", "bob", 500, 1]]);
    // Min-idle 800 ms: alice's entries qualify, bob's do not.
    expect(run("XCLAIM s g carol 800 1-0 3-0 JUSTID", 2_000)).toEqual(["1-0"]);
    expect(run("XCLAIM s g carol 0 2-0 IDLE 300", 2_000)).toEqual([["2-0", ["f", "2"]]]);
    expect(run("XCLAIM s g carol 0 3-0 TIME 1900 RETRYCOUNT 9 JUSTID", 2_000)).toEqual(["3-0"]);
    // TIME in the future is taken as now.
    expect(run("XCLAIM s g carol 0 4-0 TIME 99999 JUSTID", 2_000)).toEqual(["4-0"]);
    expect(run("XPENDING s g - + 10", 2_100)).toEqual([
      ["1-0", "carol", 100, 1], // JUSTID: the count stays
      ["2-0", "carol", 400, 2],
      ["3-0", "carol", 200, 9],
      ["4-0", "carol", 100, 1],
    ]);
    // XAUTOCLAIM: idle at least 350 ms.
    expect(run("XAUTOCLAIM s g dave 350 0", 2_100)).toEqual(["0-0", [["2-0", ["f", "2"]]], []]);
    expect(run("XPENDING s g - + 1", 2_100)).toEqual([["1-0", "carol", 100, 1]]);
    expect(run("XPENDING s g 2-0 2-0 1", 2_200)).toEqual([["2-0", "dave", 100, 3]]);

    // History reads count as deliveries: time and count move.
    expect(run("XREADGROUP GROUP g dave STREAMS s 0", 3_000)).toEqual([
      ["s", [["2-0", ["f", "2"]]]],
    ]);
    expect(run("XPENDING s g 2-0 2-0 1", 3_000)).toEqual([["2-0", "dave", 0, 4]]);

    const consumers = (run("XINFO CONSUMERS s g", 3_500) as Reply[]).map(asMap);
    expect(consumers).toEqual([
      { name: "alice", pending: 0, idle: 2_500 },
      { name: "bob", pending: 0, idle: 2_000 },
      { name: "carol", pending: 3, idle: 1_500 },
      { name: "dave", pending: 1, idle: 500 },
    ]);
  });

  it("XINFO STREAM FULL shows delivery and seen times from the log's clock", () => {
    const run = runner(new KvStore());
    run("XADD s 1-0 a 1", 1_000);
    run("XADD s 2-0 b 2", 1_000);
    run("XGROUP CREATE s g 0", 1_000);
    run("XREADGROUP GROUP g alice COUNT 1 STREAMS s >", 1_234);
    run("XGROUP CREATECONSUMER s g bob", 1_300);
    const full = asMap(run("XINFO STREAM s FULL", 2_000));
    expect(full.length).toBe(2);
    expect(full.entries).toEqual([
      ["1-0", ["a", "1"]],
      ["2-0", ["b", "2"]],
    ]);
    const group = asMap((full.groups as Reply[])[0]!);
    expect(group).toMatchObject({
      name: "g",
      "last-delivered-id": "1-0",
      "entries-read": 1,
      lag: 1,
      "pel-count": 1,
      pending: [["1-0", "alice", 1_234, 1]],
    });
    expect((group.consumers as Reply[]).map(asMap)).toEqual([
      { name: "alice", "seen-time": 1_234, "pel-count": 1, pending: [["1-0", 1_234, 1]] },
      { name: "bob", "seen-time": 1_300, "pel-count": 0, pending: [] },
    ]);
    // COUNT limits the entries and both pending lists.
    const one = asMap(run("XINFO STREAM s FULL COUNT 1", 2_000));
    expect(one.entries).toEqual([["1-0", ["a", "1"]]]);
  });

  it("XCLAIM creates the consumer only when it claims something (as 7.0)", () => {
    const run = runner(new KvStore());
    run("XADD s 1-0 a 1", 1_000);
    run("XGROUP CREATE s g 0", 1_000);
    run("XREADGROUP GROUP g alice STREAMS s >", 1_000);
    expect(run("XCLAIM s g bob 5000 1-0", 2_000)).toEqual([]);
    expect(asMap((run("XINFO GROUPS s", 2_000) as Reply[])[0]!).consumers).toBe(1);
    expect(run("XCLAIM s g bob 500 1-0 JUSTID", 2_000)).toEqual(["1-0"]);
    expect(asMap((run("XINFO GROUPS s", 2_000) as Reply[])[0]!).consumers).toBe(2);
  });
});

describe("IdList (entries and pending lists)", () => {
  it("matches a sorted array through inserts, deletes, front removals and visits", () => {
    let state = 12345;
    const random = (n: number): number => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state % n;
    };
    const list = new IdList<{ id: bigint }>();
    let model: bigint[] = [];
    const visitForward = (from: bigint, limit: number): bigint[] => {
      const seen: bigint[] = [];
      list.forward(from, (item) => seen.push(item.id) < limit);
      return seen;
    };
    const visitBackward = (from: bigint, limit: number): bigint[] => {
      const seen: bigint[] = [];
      list.backward(from, (item) => seen.push(item.id) < limit);
      return seen;
    };
    for (let step = 0; step < 20_000; step++) {
      const op = random(100);
      const id = BigInt(random(5_000)) << BigInt(random(2) * 64);
      if (op < 45) {
        // Mostly appends, sometimes in the middle (chunks split past 256 items).
        const last = model[model.length - 1];
        const next = op < 25 && last !== undefined ? last + BigInt(1 + random(3)) : id;
        if (!model.includes(next)) {
          list.insert({ id: next });
          model.push(next);
          model.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        }
      } else if (op < 75) {
        const target = model.length > 0 && op < 70 ? model[random(model.length)]! : id;
        expect(list.delete(target)?.id).toBe(model.includes(target) ? target : undefined);
        model = model.filter((x) => x !== target);
      } else if (op < 78) {
        const count = random(Math.min(model.length, 300) + 1);
        expect(list.removeFirst(count).map((item) => item.id)).toEqual(model.slice(0, count));
        model = model.slice(count);
      } else if (op < 89) {
        const limit = 1 + random(20);
        expect(visitForward(id, limit)).toEqual(model.filter((x) => x >= id).slice(0, limit));
      } else {
        const limit = 1 + random(20);
        const below = model.filter((x) => x <= id).reverse();
        expect(visitBackward(id, limit)).toEqual(below.slice(0, limit));
      }
      if (step % 997 === 0) {
        expect([...list].map((item) => item.id)).toEqual(model);
        expect(list.size).toBe(model.length);
        expect(list.first()?.id).toBe(model[0]);
        expect(list.last()?.id).toBe(model[model.length - 1]);
        const probe = model[random(model.length)] ?? 1n;
        expect(list.get(probe)?.id).toBe(model.includes(probe) ? probe : undefined);
      }
    }
    expect(list.size).toBe(model.length);
  });

  it("splits a chunk that inserts in the middle grow past twice its size", () => {
    const list = new IdList<{ id: bigint }>();
    for (let i = 0; i < 1_000; i++) list.insert({ id: BigInt(i * 10) });
    for (let i = 1; i < 1_000; i++) if (i % 10 !== 0) list.insert({ id: BigInt(i) });
    const ids = [...list].map((item) => Number(item.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(list.size).toBe(1_000 + 900);
    const seen: bigint[] = [];
    list.backward(500n, (item) => seen.push(item.id) < 3);
    expect(seen).toEqual([500n, 499n, 498n]);
  });
});

describe("the stream's byte count and node layout", () => {
  it("bytes follows adds, deletes, trims, groups, consumers and pending entries", () => {
    const { run, stream } = keyspaceRunner();
    const check = () => expect(stream("s").bytes).toBe(countedBytes(stream("s")));
    for (let i = 1; i <= 300; i++) {
      run(["XADD", "s", `${i}-0`, "field", "x".repeat(i % 50), "n", String(i)]);
    }
    check();
    run("XDEL s 5-0 150-0 299-0 1000-0");
    check();
    run("XTRIM s MAXLEN ~ 150");
    check();
    run("XTRIM s MINID 200");
    check();
    run("XGROUP CREATE s g 0");
    run("XGROUP CREATE s other $");
    run("XREADGROUP GROUP g alice COUNT 20 STREAMS s >");
    run("XREADGROUP GROUP g bob COUNT 5 STREAMS s >");
    run("XGROUP CREATECONSUMER s g carol");
    check();
    run("XCLAIM s g carol 0 200-0 201-0 202-0 JUSTID");
    run("XACK s g 203-0 204-0");
    check();
    run("XGROUP DELCONSUMER s g alice");
    check();
    run("XGROUP DESTROY s other");
    check();
    run("XTRIM s MAXLEN 0");
    check();
    expect(stream("s").length).toBe(0);
    run("XGROUP DESTROY s g");
    expect(stream("s").bytes).toBe(0);
  });

  it("lookups by id stay fast on a long stream", () => {
    const { run, stream } = keyspaceRunner();
    const started = performance.now();
    for (let i = 1; i <= 50_000; i++) run(["XADD", "s", `${i}-0`, "f", "v"]);
    for (let i = 1; i <= 50_000; i += 7) run(["XDEL", "s", `${i}-0`]);
    for (let i = 0; i < 2_000; i++) run(["XRANGE", "s", `${i * 20}`, `${i * 20 + 5}`]);
    for (let i = 0; i < 1_000; i++)
      run(["XADD", "s", "MAXLEN", "40000", "*", "f", "v"], 100_000 + i);
    expect(stream("s").length).toBe(40_000);
    expect(performance.now() - started).toBeLessThan(20_000);
  });

  it("a copy is independent and serializes the same", () => {
    const { run, stream } = keyspaceRunner();
    for (let i = 1; i <= 120; i++) run(["XADD", "s", `${i}-0`, "f", String(i)]);
    run("XGROUP CREATE s g 0");
    run("XREADGROUP GROUP g alice COUNT 3 STREAMS s >");
    const original = stream("s");
    const copy = original.clone();
    expect(copy.bytes).toBe(original.bytes);
    expect(copy.nodeCount).toBe(original.nodeCount);
    copy.delete(streamId(1n, 0n));
    copy.groups.get("g")!.ack(streamId(2n, 0n));
    expect(original.length).toBe(120);
    expect(original.groups.get("g")!.pel.size).toBe(3);
    expect(copy.length).toBe(119);
  });
});

describe("stream snapshots", () => {
  it("restore entries, node layout, counters, groups, consumers and pending entries", () => {
    const store = new KvStore();
    const run = runner(store);
    for (let i = 1; i <= 250; i++)
      run(["XADD", "s", `${i}-${i % 3}`, "f", "v".repeat(i % 90)], 1_000);
    run("XDEL s 7-1 130-1", 1_000);
    run("XTRIM s MINID 20", 1_000);
    run("XGROUP CREATE s g 0", 1_000);
    run("XGROUP CREATE s h $ ENTRIESREAD 3", 1_000);
    run("XREADGROUP GROUP g alice COUNT 5 STREAMS s >", 1_100);
    run("XREADGROUP GROUP g bob COUNT 2 STREAMS s >", 1_200);
    run("XCLAIM s g bob 0 21-0 RETRYCOUNT 5", 1_300);
    run("XGROUP CREATECONSUMER s h idle", 1_400);
    run("XSETID s 999-0 ENTRIESADDED 400 MAXDELETEDID 500-0", 1_500);
    run("XGROUP CREATE empty g $ MKSTREAM", 1_500);

    const bytes = Buffer.from(store.snapshot());
    const restored = KvStore.restore(bytes);
    expect(Buffer.from(restored.snapshot()).equals(bytes)).toBe(true);
    const again = runner(restored);
    for (const line of [
      "XINFO STREAM s FULL COUNT 0",
      "XINFO STREAM s",
      "XINFO GROUPS s",
      "XINFO CONSUMERS s g",
      "XPENDING s g - + 100",
      "XINFO STREAM empty FULL",
      "TYPE empty",
    ]) {
      expect(again(line, 2_000), line).toEqual(run(line, 2_000));
    }
    // And they go on alike: the node layout came back too.
    for (const line of ["XADD s 1000-0 f v", "XTRIM s MAXLEN ~ 10", "XINFO STREAM s"]) {
      expect(again(line, 2_000), line).toEqual(run(line, 2_000));
    }
    expect(Buffer.from(restored.snapshot()).equals(Buffer.from(store.snapshot()))).toBe(true);
  });
});

describe("stream limits, keys and kinds", () => {
  it("refuses values over --max-value-bytes and replies over --max-reply-bytes, changing nothing", () => {
    const { keyspace, run, stream } = keyspaceRunner({ valueBytesMax: 10, replyBytesMax: 200 });
    expect(run(["XADD", "s", "1-0", "f", "x".repeat(11)]).toString()).toMatch(
      /^-ERR value too large/,
    );
    expect(keyspace.entries.size).toBe(0);
    for (let i = 1; i <= 10; i++) run(["XADD", "s", `${i}-0`, "f", "xxxxxxxxxx"]);
    expect(run("XRANGE s - +").toString()).toMatch(/^-ERR reply too large/);
    expect(run("XRANGE s - + COUNT 2").toString()).toMatch(/^\*2\r\n/);
    run("XGROUP CREATE s g 0");
    const before = stream("s").groups.get("g")!;
    expect(run("XREADGROUP GROUP g c STREAMS s >").toString()).toMatch(/^-ERR reply too large/);
    expect(before.pel.size).toBe(0);
    expect(before.consumers.size).toBe(0);
    expect(before.lastId).toBe(0n);
    expect(run("XINFO STREAM s FULL COUNT 0").toString()).toMatch(/^-ERR reply too large/);

    expect(hasValueOver(toArgs(["XADD", "s", "*", "f", "x".repeat(11)]), 10)).toBe(true);
    expect(hasValueOver(toArgs(["XADD", "s", "*", "x".repeat(11), "v"]), 10)).toBe(false);
    expect(
      hasValueOver(
        toArgs([
          "XADD",
          "s",
          "NOMKSTREAM",
          "MAXLEN",
          "~",
          "5",
          "LIMIT",
          "9",
          "1-0",
          "f",
          "v",
          "g",
          "x".repeat(11),
        ]),
        10,
      ),
    ).toBe(true);
  });

  it("names every key it touches, and reads only where it says so", () => {
    const keys = (line: string) => commandKeys(toArgs(line)).map(String);
    expect(keys("XREAD COUNT 2 BLOCK 0 STREAMS a b 0 0")).toEqual(["a", "b"]);
    expect(keys("XREADGROUP GROUP g c NOACK STREAMS a >")).toEqual(["a"]);
    expect(keys("XREAD STREAMS a b 0")).toEqual([]);
    expect(keys("XGROUP CREATE s g $")).toEqual(["s"]);
    expect(keys("XGROUP HELP")).toEqual([]);
    expect(keys("XINFO STREAM s")).toEqual(["s"]);
    expect(keys("XADD s * f v")).toEqual(["s"]);
    expect(isReadOnlyRequest([toArgs("XREAD STREAMS s 0"), toArgs("XRANGE s - +")])).toBe(true);
    expect(isReadOnlyRequest([toArgs("XREADGROUP GROUP g c STREAMS s >")])).toBe(false);
    expect(isReadOnlyRequest([toArgs("XINFO STREAM s"), toArgs("XPENDING s g")])).toBe(true);

    const store = new KvStore();
    const run = runner(store);
    run("XADD s 1-0 f v", 1_000);
    run("XGROUP CREATE s g 0", 1_000);
    run("XREADGROUP GROUP g c STREAMS s >", 1_000);
    const before = Buffer.from(store.snapshot());
    for (const line of [
      "XREAD STREAMS s 0",
      "XRANGE s - +",
      "XREVRANGE s + -",
      "XLEN s",
      "XINFO STREAM s FULL",
      "XINFO GROUPS s",
      "XINFO CONSUMERS s g",
      "XPENDING s g",
      "XPENDING s g - + 10",
    ]) {
      store.executeRead(toArgs(line), context(0));
    }
    expect(Buffer.from(store.snapshot()).equals(before)).toBe(true);
  });
});
