/**
 * The embedded store: SET and GET of 64 B values over 10,000 keys, through `execute()` (dispatch,
 * argument checks, reply encoding). `node bench/kv.bench.ts`. No timing is asserted; read medians.
 */
import { Bench } from "tinybench";
import { KvStore } from "../src/app/kv-store.ts";

const KEYS = 10_000;
const value = Buffer.alloc(64, "v");
const setName = Buffer.from("SET");
const getName = Buffer.from("get");
const keys = Array.from({ length: KEYS }, (_, i) =>
  Buffer.from(`key:${String(i).padStart(6, "0")}`),
);
const context = { nowMs: 1_700_000_000_000, info: () => "" };

const store = new KvStore();
for (const key of keys) store.execute([setName, key, value], context);
let i = 0;

const bench = new Bench({ time: process.argv.includes("--quick") ? 50 : 500 });
bench
  .add("SET 64 B (overwrite)", () => {
    store.execute([setName, keys[i++ % KEYS]!, value], context);
  })
  .add("GET 64 B", () => {
    store.execute([getName, keys[i++ % KEYS]!], context);
  })
  .add("SET 64 B EX 100", () => {
    store.execute(
      [setName, keys[i++ % KEYS]!, value, Buffer.from("EX"), Buffer.from("100")],
      context,
    );
  })
  .add("INCR", () => {
    store.execute([Buffer.from("INCR"), Buffer.from("counter")], context);
  });

await bench.run();
console.table(bench.table());
