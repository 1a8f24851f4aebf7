/**
 * dist/thread-cluster.js: three replicas as threads of one process over the shared-memory
 * transport, driven from outside as a user would (Redis client, admin HTTP, SIGTERM).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import type { ReplicaStatus } from "../../src/runtime/thread-contracts.ts";

const THREAD_CLUSTER_JS = fileURLToPath(new URL("../../dist/thread-cluster.js", import.meta.url));
const REPLICAS = 3;

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** A base port with `count` free ports from it. */
async function freeRange(count: number): Promise<number> {
  for (;;) {
    // Below the ephemeral range (32768+), where a client socket may already hold a port.
    const base = 20_000 + Math.floor(Math.random() * (12_000 - count));
    const free = await Promise.all(Array.from({ length: count }, (_, i) => portFree(base + i)));
    if (free.every(Boolean)) return base;
  }
}

async function status(adminPort: number): Promise<ReplicaStatus | null> {
  try {
    const response = await fetch(`http://127.0.0.1:${adminPort}/status`);
    return (await response.json()) as ReplicaStatus;
  } catch {
    return null;
  }
}

describe("dist/thread-cluster.js --transport shm", () => {
  let child: ChildProcess | null = null;
  let output = "";
  afterAll(() => child?.kill("SIGKILL"));

  it("elects a leader, replicates a SET made through a follower, and exits 0 on SIGTERM", async () => {
    const clientBase = await freeRange(REPLICAS);
    const adminBase = await freeRange(REPLICAS);
    child = spawn(
      process.execPath,
      [
        THREAD_CLUSTER_JS,
        ...["--replicas", String(REPLICAS), "--transport", "shm"],
        ...["--base-client-port", String(clientBase), "--base-admin-port", String(adminBase)],
        ...["--", "--heartbeat-ms", "20", "--election-timeout-ms", "300"],
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr!.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child!.once("exit", resolve));

    let leader = 0;
    const deadline = Date.now() + 20_000;
    while (leader === 0 && Date.now() < deadline) {
      const statuses = await Promise.all([0, 1, 2].map((i) => status(adminBase + i)));
      // Every replica up (the last starts after the first two may have elected), one leading.
      if (statuses.every((s) => s !== null))
        leader = statuses.find((s) => s?.role === "leader")?.id ?? 0;
      if (leader === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(leader, output).toBeGreaterThan(0);
    expect((await status(adminBase + leader - 1))!.transport).toBe("shm");
    // It announces each replica, then the leader.
    while (!output.includes("leader: replica") && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(output).toMatch(/replica 3: clients 127\.0\.0\.1:\d+ admin[\s\S]*leader: replica \d/);

    const follower = leader === 1 ? 2 : 1;
    const writer = new Redis({ port: clientBase + follower - 1, lazyConnect: true });
    await writer.connect();
    expect(await writer.set("thread-cluster", "shm")).toBe("OK");
    writer.disconnect();
    for (let id = 1; id <= REPLICAS; id++) {
      const reader = new Redis({ port: clientBase + id - 1, lazyConnect: true });
      await reader.connect();
      // Every replica orders the GET after the SET, so each answers "shm".
      expect(await reader.get("thread-cluster")).toBe("shm");
      reader.disconnect();
    }

    child.kill("SIGTERM");
    expect(await exited, output).toBe(0);
    child = null;
  });
});
