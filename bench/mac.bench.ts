/**
 * What a peer frame's MAC costs, per candidate and size: createHmac per call (what frames used
 * until the one-shot HMAC), HmacSha256 (src/transport/mac.ts: the same HMAC-SHA256 from two
 * crypto.hash calls), one bare crypto.hash (the floor a SHA-256 construction cannot beat), and
 * libsodium's keyed BLAKE2b (crypto_generichash with a key, 16-byte output) when `sodium-native`
 * can be loaded: it is no dependency of the project, so set SODIUM_NATIVE to its folder (e.g.
 * `npm install --prefix /tmp/sodium sodium-native`, then
 * SODIUM_NATIVE=/tmp/sodium/node_modules/sodium-native). Poly1305 (crypto_onetimeauth) is left
 * out on purpose: its key must never sign two messages, and frames share one long-lived secret.
 *
 * `node bench/mac.bench.ts [--quick]`. No timing is asserted anywhere; read medians, and compare
 * rows within one run (the machine is shared).
 */
import { createHmac, createSecretKey, hash, randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import os from "node:os";
import { Bench } from "tinybench";
import { HmacSha256 } from "../src/transport/mac.ts";

const SECRET = randomBytes(32);
const SIZES = [64, 200, 1400, 64 * 1024];
const TAG_BYTES = 16;

/** The two calls of sodium-native this benchmark uses. */
interface Sodium {
  crypto_generichash(output: Buffer, input: Uint8Array, key?: Uint8Array): void;
  readonly crypto_generichash_KEYBYTES: number;
}

function loadSodium(): Sodium | null {
  const where = process.env.SODIUM_NATIVE ?? "sodium-native";
  try {
    return createRequire(import.meta.url)(where) as Sodium;
  } catch {
    return null;
  }
}

function label(size: number): string {
  return size >= 1024 ? `${size / 1024} KiB` : `${size} B`;
}

async function main(): Promise<void> {
  const quick = process.argv.includes("--quick");
  const bench = new Bench({ time: quick ? 100 : 500, warmupTime: quick ? 20 : 100 });
  const sizes = new Map<string, number>();
  const keyObject = createSecretKey(SECRET);
  const oneShot = new HmacSha256(SECRET);
  const sodium = loadSodium();
  const blakeKey = randomBytes(sodium?.crypto_generichash_KEYBYTES ?? 32);
  const blakeOut = Buffer.alloc(TAG_BYTES);

  for (const size of SIZES) {
    const data = randomBytes(size);
    if (!oneShot.digest(data).equals(createHmac("sha256", SECRET).update(data).digest()))
      throw new Error(`HmacSha256 differs from createHmac at ${size} B`);
    const add = (name: string, fn: () => void) => {
      const full = `${name}, ${label(size)}`;
      bench.add(full, fn);
      sizes.set(full, size);
    };
    add("createHmac(raw key) per call", () => {
      createHmac("sha256", SECRET).update(data).digest();
    });
    add("createHmac(KeyObject) per call (frames before)", () => {
      createHmac("sha256", keyObject).update(data).digest();
    });
    add("HmacSha256: two crypto.hash (frames now)", () => {
      oneShot.digest(data);
    });
    add("crypto.hash sha256 once (floor, not a MAC)", () => {
      hash("sha256", data, "buffer");
    });
    if (sodium !== null)
      add("sodium keyed BLAKE2b-128 (crypto_generichash)", () => {
        sodium.crypto_generichash(blakeOut, data, blakeKey);
      });
  }

  process.stdout.write(
    `apus-smr MAC microbenchmarks — ${new Date().toISOString().slice(0, 10)}, node ${process.version}, ` +
      `${os.cpus().length} x ${os.cpus()[0]?.model ?? "unknown CPU"}\n` +
      `sodium-native: ${sodium === null ? "not found (set SODIUM_NATIVE to include keyed BLAKE2b)" : "loaded"}\n` +
      "Shared and noisy machine: read the medians, compare rows within one run.\n\n",
  );
  await bench.run();
  const lines = bench.tasks.map((task) => {
    const result = task.result;
    if (result.state !== "completed") throw new Error(`${task.name}: ${result.state}`);
    const perOpUs = result.latency.p50 * 1000;
    // The mean counts the garbage collections a median steps over (a Hmac object per call).
    const meanUs = result.latency.mean * 1000;
    const mibPerS = sizes.get(task.name)! / (perOpUs / 1e6) / 1024 / 1024;
    return `| ${task.name} | ${perOpUs.toFixed(2)} µs | ${meanUs.toFixed(2)} µs | ${mibPerS.toFixed(0)} MiB/s |`;
  });
  process.stdout.write(
    `| candidate, message size | median per op | mean per op | throughput at the median |\n|---|---:|---:|---:|\n${lines.join("\n")}\n`,
  );
}

await main();
