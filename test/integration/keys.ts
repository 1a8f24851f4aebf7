/** Writing and checking keys through one replica, as the integration tests' clients do. */
import { Redis } from "ioredis";
import { sleep } from "./cluster-harness.ts";

/** An ioredis client that never retries by itself: every error reaches the test. */
export function client(port: number): Redis {
  return new Redis({
    port,
    host: "127.0.0.1",
    enableReadyCheck: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
}

/**
 * SET `prefix-i` = `prefix-i` for i < count through one replica; returns the keys acknowledged.
 * An error means "unknown", not lost: each SET is tried up to `attempts` times (SET is idempotent).
 */
export async function writeKeys(
  port: number,
  prefix: string,
  count: number,
  attempts = 1,
  retryDelayMs = 0,
): Promise<string[]> {
  const c = client(port);
  const acked: string[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const key = `${prefix}-${i}`;
      for (let attempt = 0; attempt < attempts; attempt++) {
        try {
          if ((await c.set(key, key)) === "OK") acked.push(key);
          break;
        } catch {
          if (retryDelayMs > 0) await sleep(retryDelayMs);
        }
      }
    }
  } finally {
    c.disconnect();
  }
  return acked;
}

/** The keys among `keys` whose value read through `port` is not the key itself. */
export async function missingKeys(port: number, keys: readonly string[]): Promise<string[]> {
  const c = client(port);
  try {
    const values = keys.length === 0 ? [] : await c.mget(...keys);
    return keys.filter((key, i) => values[i] !== key);
  } finally {
    c.disconnect();
  }
}
