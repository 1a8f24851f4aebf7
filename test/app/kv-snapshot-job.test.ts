import { describe, expect, it } from "vitest";
import { KvApp } from "../../src/app/kv-app.ts";
import { type ExecContext, KvStore } from "../../src/app/kv-store.ts";
import { SeededPrng } from "../../src/core/index.ts";

const context = (nowMs: number): ExecContext => ({ nowMs, info: () => "" });
const run = (store: KvStore, words: string[], nowMs: number): string =>
  store
    .execute(
      words.map((w) => Buffer.from(w, "latin1")),
      context(nowMs),
    )
    .toString("latin1");

/** Every write the background snapshot must see coming: each kind of value, TTLs, removal. */
function randomWrite(prng: SeededPrng, keys: number, allowFlush: boolean): string[] {
  const k = `k${prng.nextInt(keys)}`;
  const v = `v${prng.nextInt(1000)}`;
  const x = `x${prng.nextInt(keys)}`;
  const pick = prng.nextInt(allowFlush ? 28 : 27);
  switch (pick) {
    case 0:
      return ["SET", k, v];
    case 1:
      return ["DEL", k, `k${prng.nextInt(keys)}`];
    case 2:
      return ["APPEND", k, v];
    case 3:
      return ["INCR", `n${prng.nextInt(keys)}`];
    case 4:
      return ["LPUSH", `l${prng.nextInt(keys)}`, v, v];
    case 5:
      return ["RPOP", `l${prng.nextInt(keys)}`];
    case 6:
      return ["HSET", `h${prng.nextInt(keys)}`, `f${prng.nextInt(5)}`, v];
    case 7:
      return ["HDEL", `h${prng.nextInt(keys)}`, `f${prng.nextInt(5)}`];
    case 8:
      return ["SADD", `s${prng.nextInt(keys)}`, v];
    case 9:
      return ["SREM", `s${prng.nextInt(keys)}`, v];
    case 10:
      return ["SPOP", `s${prng.nextInt(keys)}`];
    case 11:
      return ["ZADD", `z${prng.nextInt(keys)}`, String(prng.nextInt(50)), v];
    case 12:
      return ["ZINCRBY", `z${prng.nextInt(keys)}`, "2", v];
    case 13:
      return ["ZPOPMIN", `z${prng.nextInt(keys)}`];
    case 14:
      return ["PEXPIRE", k, String(1 + prng.nextInt(50))];
    case 15:
      return ["PERSIST", k];
    case 16:
      return ["GETSET", k, v];
    case 17:
      return ["MSET", k, v, `k${prng.nextInt(keys)}`, v];
    case 18:
      return ["SET", `new${prng.nextInt(100_000)}`, v, "PX", String(1 + prng.nextInt(50))];
    case 19:
      return ["LPOP", `l${prng.nextInt(keys)}`];
    case 20:
      return ["EXPIREAT", k, String(prng.nextInt(5))];
    case 21:
      return ["XADD", x, "*", "f", v, "g", v];
    case 22:
      return ["XTRIM", x, "MAXLEN", String(prng.nextInt(4))];
    case 23:
      return ["XDEL", x, `1000-${prng.nextInt(20)}`];
    case 24:
      return ["XGROUP", "CREATE", x, "g", "0", "MKSTREAM"];
    case 25:
      return ["XREADGROUP", "GROUP", "g", `c${prng.nextInt(3)}`, "COUNT", "2", "STREAMS", x, ">"];
    case 26:
      return ["XACK", x, "g", `1000-${prng.nextInt(20)}`];
    default:
      return ["FLUSHALL"];
  }
}

/** A store with strings, lists, hashes, sets, sorted sets, streams and TTLs. */
function filledStore(prng: SeededPrng, keys: number): KvStore {
  const store = new KvStore();
  for (let i = 0; i < keys * 8; i++) run(store, randomWrite(prng, keys, false), 1000);
  return store;
}

describe("the embedded store's background snapshot (copy-on-write per key)", () => {
  it("gives the bytes a snapshot at its start would, whatever the store applies meanwhile", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const prng = new SeededPrng(seed);
      const store = filledStore(prng, 300);
      const expected = Buffer.from(store.snapshot());
      const job = store.beginSnapshot();
      let now = 1000;
      let steps = 0;
      // Tiny steps (256 entries each), with writes, expiry sweeps and now and then a FLUSHALL
      // between them: every way an entry can change before its turn.
      while (!job.step(0)) {
        steps++;
        for (let i = 0; i < 20; i++) run(store, randomWrite(prng, 400, seed % 5 === 0), now);
        now += prng.nextInt(20);
        store.expireSweep(now, 20);
      }
      expect(Buffer.from(job.bytes).equals(expected), `seed ${seed}`).toBe(true);
      expect(steps).toBeGreaterThan(0);
      // And the snapshot restores to the store as it was.
      expect(Buffer.from(KvStore.restore(job.bytes).snapshot()).equals(expected)).toBe(true);
    }
  });

  it("leaves the store's own state as it would be without the snapshot", () => {
    const a = filledStore(new SeededPrng(7), 200);
    const b = filledStore(new SeededPrng(7), 200);
    const job = a.beginSnapshot();
    const prngA = new SeededPrng(99);
    const prngB = new SeededPrng(99);
    while (!job.step(0)) {
      for (let i = 0; i < 30; i++) {
        run(a, randomWrite(prngA, 250, false), 2000);
        run(b, randomWrite(prngB, 250, false), 2000);
      }
    }
    expect(Buffer.from(a.snapshot()).equals(Buffer.from(b.snapshot()))).toBe(true);
    expect(job.earlyCount).toBeGreaterThan(0); // writes did touch pending entries
  });

  it("a second job may start once the first is done; the app's checkpoint resolves to it", async () => {
    const app = new KvApp({ valueBytesMax: 1 << 20, replyBytesMax: 1 << 24, info: () => "" });
    const store = filledStore(new SeededPrng(3), 50);
    const first = store.beginSnapshot();
    expect(() => store.beginSnapshot()).toThrow();
    first.finish();
    expect(store.beginSnapshot().finish().byteLength).toBe(first.bytes.byteLength);
    const image = await app.checkpoint();
    expect(image).not.toBeNull();
    expect(Buffer.from(image!).equals(Buffer.from(app.snapshot()))).toBe(true);
  });
});
