/**
 * The apply loop against a tiny fake RESP program (a real TCP server that answers +OK and counts
 * connections and commands): what the log says about connections is what the program sees.
 */
import { createServer, type Server, type Socket } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { encodeCommands } from "../../../src/app/command-codec.ts";
import { decodeCheckpoint } from "../../../src/app/program/copy-checkpoint.ts";
import { ProgramApp, type ProgramAppHooks } from "../../../src/app/program/program-app.ts";
import { respCodec } from "../../../src/app/program/resp-codec.ts";
import type { AppRequest, ConnectionRef } from "../../../src/app/replicated-app.ts";

interface FakeProgram {
  readonly server: Server;
  readonly port: number;
  opened: number;
  open: number;
  readonly commands: string[];
}

async function fakeProgram(): Promise<FakeProgram> {
  const fake = { opened: 0, open: 0, commands: [] as string[] } as unknown as FakeProgram & {
    server: Server;
    port: number;
  };
  const server = createServer((socket: Socket) => {
    fake.opened++;
    fake.open++;
    socket.on("close", () => fake.open--);
    socket.on("data", (chunk: Buffer) => {
      // One multibulk per command in these tests: count them by their "*N\r\n" headers.
      for (const match of chunk.toString("latin1").matchAll(/\*\d+\r\n\$\d+\r\n([^\r]+)/g)) {
        fake.commands.push(match[1]!);
        socket.write("+OK\r\n");
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  Object.assign(fake, { server, port: (server.address() as { port: number }).port });
  return fake;
}

function request(connection: ConnectionRef, event: AppRequest["event"], ...words: string[]) {
  const body = encodeCommands(event === "data" ? [words.map((w) => Buffer.from(w))] : [], 0);
  return { connection, event, body, bodyOffset: 0, nowMs: 1 } satisfies AppRequest;
}

/** Hooks of a replica that needs nothing from the loop (no pushes, timeouts or digests). */
function quietHooks(): ProgramAppHooks {
  return {
    push: () => {},
    proposeUnblock: () => {},
    isLocal: () => true,
    renewLease: () => {},
    fatal: (error) => {
      throw error;
    },
    digest: () => {},
    stalled: () => {},
  };
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(condition()).toBe(true);
}

describe("the program apply loop", () => {
  let fake: FakeProgram;
  let app: ProgramApp;
  const replies: string[] = [];

  beforeEach(async () => {
    fake = await fakeProgram();
    replies.length = 0;
    app = new ProgramApp({
      codec: respCodec(),
      host: "127.0.0.1",
      port: fake.port,
      redisTable: null,
      hooks: quietHooks(),
    });
  });

  afterEach(async () => {
    app.close();
    await new Promise((resolve) => fake.server.close(resolve));
  });

  const sink = (reply: Uint8Array) => replies.push(Buffer.from(reply).toString("latin1"));
  const a: ConnectionRef = { origin: 1, incarnation: 7, worker: 0, connId: 1 };
  const b: ConnectionRef = { origin: 1, incarnation: 7, worker: 0, connId: 2 };

  it("opens one loopback connection per client connection and closes it on the close event", async () => {
    app.apply(request(a, "data", "SET", "x", "1"), sink);
    app.apply(request(b, "data", "SET", "y", "1"), sink);
    app.apply(request(a, "data", "GET", "x"), sink);
    await until(() => replies.length === 3);
    expect(fake.opened).toBe(2);
    app.apply(request(a, "close"), null);
    await until(() => fake.open === 1);
    expect(fake.commands).toEqual(["SET", "SET", "GET"]);
  });

  it("drops a request chosen after its connection's close, instead of reopening a connection", async () => {
    app.apply(request(a, "data", "SET", "x", "1"), sink);
    app.apply(request(a, "close"), null);
    expect(app.apply(request(a, "data", "SET", "x", "2"), sink)).toEqual({
      commands: 0,
      malformed: false,
    });
    app.apply(request(b, "data", "PING"), sink);
    await until(() => fake.commands.length === 2);
    expect(fake.commands).toEqual(["SET", "PING"]);
    expect(fake.opened).toBe(2);
  });

  it("a checkpoint holds the loop's state at its barrier, not what was applied while the hook ran", async () => {
    let finishHook: (files: ReadonlyMap<string, Uint8Array>) => void = () => {};
    let hookStarted = false;
    const checkpointing = new ProgramApp({
      codec: respCodec(),
      host: "127.0.0.1",
      port: fake.port,
      redisTable: null,
      hooks: {
        ...quietHooks(),
        checkpointFiles: () => {
          hookStarted = true;
          return new Promise((resolve) => {
            finishHook = resolve;
          });
        },
        restoreFiles: async () => {},
      },
    });
    try {
      checkpointing.apply(request(a, "data", "SET", "x", "1"), sink);
      const taken = checkpointing.checkpoint!();
      await until(() => replies.length === 1);
      // Applied after the barrier: the apply side learns of b's close while the hook runs.
      checkpointing.apply(request(b, "data", "SET", "y", "1"), sink);
      checkpointing.apply(request(b, "close"), null);
      await until(() => hookStarted);
      finishHook(new Map([["dump.rdb", Buffer.from("state")]]));
      const checkpoint = decodeCheckpoint((await taken)!);
      expect(checkpoint.loop.closed).toEqual([]);
      expect(checkpoint.steps).toBe(1);
      expect(Buffer.from(checkpoint.files.get("dump.rdb")!).toString()).toBe("state");
    } finally {
      checkpointing.close();
    }
  });

  it("closes an origin's connections when it restarts, and drops its old incarnation's late requests", async () => {
    app.apply(request(a, "data", "SET", "x", "1"), sink);
    await until(() => fake.open === 1);
    const restarted: ConnectionRef = { ...a, incarnation: 8 };
    app.apply(request(restarted, "data", "SET", "x", "2"), sink);
    await until(() => fake.opened === 2 && fake.open === 1); // the old one is closed
    // An old leader's vote for the crashed incarnation's request, chosen late: dropped.
    app.apply(request({ ...b, incarnation: 7 }, "data", "SET", "late", "1"), sink);
    app.apply(request(restarted, "data", "GET", "x"), sink);
    await until(() => fake.commands.length === 3);
    expect(fake.commands).toEqual(["SET", "SET", "GET"]);
    expect(fake.opened).toBe(2);
  });
});
