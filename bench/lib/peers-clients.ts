/**
 * One write, three client libraries: what `npm run bench:peers` drives each system with. A
 * `KeyWriter` is one connection (one session, one channel) to one server; the closed-loop harness
 * (bench/lib/peers-load.ts) keeps one write outstanding on each and does not know which system it
 * talks to.
 *
 *   apus-smr   ioredis, `SET key value` (+OK once chosen, applied and durable on a majority)
 *   etcd       etcd3 (gRPC), `put(key).value(value)`
 *   ZooKeeper  node-zookeeper-client, `setData(/apus-peers/<key>, value, -1)` on a znode made
 *              beforehand (ensureZnodes)
 */
import { Etcd3 } from "etcd3";
import { Redis } from "ioredis";
import * as zookeeper from "node-zookeeper-client";
import type { SystemName } from "./peers-servers.ts";

export interface KeyWriter {
  /** Resolves once the system acknowledged the write; rejects on an error reply. */
  write(key: string, value: Buffer): Promise<void>;
  close(): Promise<void>;
}

const CONNECT_MS_MAX = 10_000;
/** The parent znode of every key ZooKeeper is written under. */
const ZK_ROOT = "/apus-peers";
const ZK_SESSION_TIMEOUT_MS = 30_000;

async function openApus(port: number): Promise<KeyWriter> {
  const redis = new Redis({
    host: "127.0.0.1",
    port,
    lazyConnect: true,
    connectTimeout: CONNECT_MS_MAX,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  await redis.connect();
  return {
    write: async (key, value) => {
      const reply = await redis.set(key, value);
      if (reply !== "OK") throw new Error(`SET answered ${String(reply)}`);
    },
    close: async () => {
      redis.disconnect();
    },
  };
}

async function openEtcd(port: number): Promise<KeyWriter> {
  const client = new Etcd3({
    hosts: `http://127.0.0.1:${port}`,
    dialTimeout: CONNECT_MS_MAX,
    // grpc-js shares one TCP connection among channels to the same target unless told not to:
    // a writer is a connection of its own here, as it is for the other two systems.
    grpcOptions: { "grpc.use_local_subchannel_pool": 1 },
  });
  return {
    write: async (key, value) => {
      await client.put(key).value(value).exec();
    },
    close: async () => {
      client.close();
    },
  };
}

function connectZk(port: number): Promise<zookeeper.Client> {
  const client = zookeeper.createClient(`127.0.0.1:${port}`, {
    sessionTimeout: ZK_SESSION_TIMEOUT_MS,
    retries: 0,
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.close();
      reject(new Error(`ZooKeeper on port ${port}: no session within ${CONNECT_MS_MAX} ms`));
    }, CONNECT_MS_MAX);
    client.once("connected", () => {
      clearTimeout(timer);
      resolve(client);
    });
    client.connect();
  });
}

function zkPath(key: string): string {
  return `${ZK_ROOT}/${key}`;
}

async function openZooKeeper(port: number): Promise<KeyWriter> {
  const client = await connectZk(port);
  return {
    write: (key, value) =>
      new Promise<void>((resolve, reject) => {
        client.setData(zkPath(key), value, -1, (error) => (error ? reject(error) : resolve()));
      }),
    close: async () => {
      client.close();
    },
  };
}

/** Creates /apus-peers and one empty znode per key, so the writes are all setData. */
export async function ensureZnodes(port: number, keys: readonly string[]): Promise<void> {
  const client = await connectZk(port);
  try {
    for (const path of [ZK_ROOT, ...keys.map(zkPath)]) {
      await new Promise<void>((resolve, reject) => {
        client.mkdirp(path, (error) => (error ? reject(error) : resolve()));
      });
    }
  } finally {
    client.close();
  }
}

export async function openWriter(system: SystemName, port: number): Promise<KeyWriter> {
  switch (system) {
    case "apus-smr":
      return await openApus(port);
    case "etcd":
      return await openEtcd(port);
    case "zookeeper":
      return await openZooKeeper(port);
  }
}
