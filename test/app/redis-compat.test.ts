/**
 * Replies compared byte for byte with a real redis-server (when installed): a fixed list of
 * commands, each sent to both, in order. Skipped, with a message, when redis-server is absent.
 */
import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvStore } from "../../src/app/kv-store.ts";
import { COMMANDS as LISTS_HASHES } from "./compat/lists-hashes.ts";
import { COMMANDS as SERVER } from "./compat/server.ts";
import { COMMANDS as SETS_ZSETS } from "./compat/sets-zsets.ts";
import { COMMANDS as STREAMS } from "./compat/streams.ts";
import { COMMANDS as STRINGS_KEYS } from "./compat/strings-keys.ts";
import { encode, hasRedis, REDIS_COMMANDS, replyLength } from "./redis-command-list.ts";

const REDIS = hasRedis();
if (!REDIS) console.warn("redis-server not installed: skipping the byte-for-byte comparison");

/** Each list runs on an empty store and an emptied redis-server. */
const GROUPS: readonly { name: string; commands: readonly (readonly string[])[] }[] = [
  { name: "the shared command list", commands: REDIS_COMMANDS },
  { name: "strings and keys", commands: STRINGS_KEYS },
  { name: "lists and hashes", commands: LISTS_HASHES },
  { name: "sets and sorted sets", commands: SETS_ZSETS },
  { name: "streams", commands: STREAMS },
  { name: "server commands", commands: SERVER },
];

describe.skipIf(!REDIS)("replies match redis-server byte for byte", () => {
  let server: ChildProcess | undefined;
  let socket: net.Socket;
  let pending = Buffer.alloc(0);
  const waiters: (() => void)[] = [];

  beforeAll(async () => {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    server = spawn(
      "redis-server",
      [
        "--port",
        String(port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--databases",
        "1",
        "--enable-debug-command",
        "yes",
      ],
      {
        stdio: "ignore",
      },
    );
    for (let attempt = 0; ; attempt++) {
      try {
        socket = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(port, "127.0.0.1", () => resolve(s));
          s.once("error", reject);
        });
        break;
      } catch (error) {
        if (attempt > 50) throw error;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    socket.on("data", (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      for (const waiter of waiters.splice(0)) waiter();
    });
  });

  afterAll(() => {
    socket?.destroy();
    server?.kill();
  });

  async function redisReply(args: readonly string[]): Promise<Buffer> {
    socket.write(encode(args));
    for (;;) {
      const length = replyLength(pending);
      if (length !== -1) {
        const reply = pending.subarray(0, length);
        pending = pending.subarray(length);
        return reply;
      }
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  }

  it.each(GROUPS.filter((group) => group.commands.length > 0))("$name", async ({ commands }) => {
    const store = new KvStore();
    const context = { nowMs: 1_000_000, info: () => "" };
    await redisReply(["FLUSHALL"]);
    const mismatches: string[] = [];
    for (const command of commands) {
      const expected = (await redisReply(command)).toString("latin1");
      const actual = store
        .execute(
          command.map((a) => Buffer.from(a, "latin1")),
          context,
        )
        .toString("latin1");
      if (actual !== expected) {
        mismatches.push(
          `${command.join(" ")}: redis ${JSON.stringify(expected)}, ours ${JSON.stringify(actual)}`,
        );
      }
    }
    expect(mismatches).toEqual([]);
  });
});
