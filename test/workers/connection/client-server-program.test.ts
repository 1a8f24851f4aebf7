import { afterEach, describe, expect, it } from "vitest";
import { decodeCommands, encodeCommands } from "../../../src/app/command-codec.ts";
import { PUSH_SEQ, REQUEST_SEQ_EVENT } from "../../../src/runtime/thread-contracts.ts";
import {
  CONNECTION_PREFIX_BYTES,
  LOG_HEADER_BYTES,
  LOG_KIND,
  LOG_KIND_CONNECTION,
  readConnectionPrefix,
  writeConnectionPrefix,
} from "../../../src/workers/log-command.ts";
import { Harness, type Request, resp, TestClient } from "../client-server-harness.ts";

const WORKER = 3;
const BODY_AT = LOG_HEADER_BYTES + CONNECTION_PREFIX_BYTES;

function args(...values: string[]): Buffer[] {
  return values.map((value) => Buffer.from(value, "latin1"));
}

/** The body of a program-mode log command, decoded, after checking its kind and prefix. */
function connectionBody(request: Request, event: "data" | "close"): Buffer[][] | null {
  expect(request.command[LOG_KIND]).toBe(LOG_KIND_CONNECTION);
  expect(readConnectionPrefix(request.command)).toEqual({
    worker: WORKER,
    connId: request.connId,
    event,
  });
  return decodeCommands(request.command, BODY_AT);
}

async function expectCloseEvent(harness: Harness, connId: number): Promise<void> {
  const event = await harness.next();
  expect(event.seq).toBe(REQUEST_SEQ_EVENT);
  expect(event.connId).toBe(connId);
  expect(connectionBody(event, "close")).toEqual([]);
  const expected = encodeCommands([], BODY_AT);
  writeConnectionPrefix(expected, { worker: WORKER, connId, event: "close" });
  expect(Buffer.from(event.command)).toEqual(Buffer.from(expected));
}

const harnesses: Harness[] = [];
const clients: TestClient[] = [];

async function start(flags: string[], requestRingBytes?: number): Promise<Harness> {
  const harness = await Harness.start(flags, {
    workerIndex: WORKER,
    ...(requestRingBytes === undefined ? {} : { requestRingBytes }),
  });
  harnesses.push(harness);
  return harness;
}

async function client(harness: Harness): Promise<TestClient> {
  const c = await TestClient.connect(harness.port);
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.socket.destroy();
  for (const harness of harnesses.splice(0)) await harness.server.shutdown();
});

describe("ClientServer, embedded store (no --app)", () => {
  it("names the connection in every log command (kind 2, its prefix, body after it); logs the close of one with a session", async () => {
    const harness = await start([]);
    const c = await client(harness);
    c.send(resp("SET", "k", "v") + resp("GET", "k"));
    const request = await harness.next();
    expect(request.seq).toBe(1);
    const expected = encodeCommands([args("SET", "k", "v"), args("GET", "k")], BODY_AT);
    expect(Buffer.from(request.command.subarray(BODY_AT))).toEqual(
      Buffer.from(expected.subarray(BODY_AT)),
    );
    expect(request.command[LOG_KIND]).toBe(LOG_KIND_CONNECTION);
    expect(readConnectionPrefix(request.command)).toEqual({
      worker: WORKER,
      connId: request.connId,
      event: "data",
    });
    harness.reply(request.connId, request.seq, "+OK\r\n$1\r\nv\r\n");
    await c.receives("+OK\r\n$1\r\nv\r\n");
    c.socket.end();
    await c.closes();
    await harness.expectNothing(); // plain commands leave no session: no close event
    // A connection that SELECTs holds a session on every replica: its close is logged.
    const d = await client(harness);
    d.send(resp("SELECT", "2"));
    const select = await harness.next();
    harness.reply(select.connId, select.seq, "+OK\r\n");
    await d.receives("+OK\r\n");
    d.socket.end();
    await d.closes();
    const close = await harness.next();
    expect(readConnectionPrefix(close.command)).toEqual({
      worker: WORKER,
      connId: select.connId,
      event: "close",
    });
  });
});

describe("ClientServer, program mode, resp", () => {
  const flags = ["--app", "x", "--protocol", "resp"];

  it("prefixes the log command with the connection; pushes go out while a request is in flight; close is an event", async () => {
    const harness = await start(flags);
    const c = await client(harness);
    c.send(resp("SET", "k", "v"));
    const first = await harness.next();
    expect(first.seq).toBe(1);
    expect(connectionBody(first, "data")).toEqual([args("SET", "k", "v")]);
    const expected = encodeCommands([args("SET", "k", "v")], BODY_AT);
    writeConnectionPrefix(expected, { worker: WORKER, connId: first.connId, event: "data" });
    expect(Buffer.from(first.command)).toEqual(Buffer.from(expected));
    harness.reply(first.connId, first.seq, "+OK\r\n");
    await c.receives("+OK\r\n");

    c.send(resp("GET", "k"));
    const second = await harness.next();
    expect(second.seq).toBe(2);
    const push = ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n";
    harness.reply(second.connId, PUSH_SEQ, push);
    await c.receives(`+OK\r\n${push}`);
    harness.reply(second.connId, REQUEST_SEQ_EVENT, "+ignored\r\n"); // dropped
    harness.reply(second.connId, second.seq, "$1\r\nv\r\n");
    await c.receives(`+OK\r\n${push}$1\r\nv\r\n`);

    c.socket.end();
    await expectCloseEvent(harness, first.connId);
    await harness.expectNothing();
  });

  it("answers QUIT locally after the request in flight, closes, and sends the close event", async () => {
    const harness = await start(flags);
    const c = await client(harness);
    c.send(resp("SET", "k", "v") + resp("QUIT"));
    const request = await harness.next();
    expect(connectionBody(request, "data")).toEqual([args("SET", "k", "v")]);
    harness.reply(request.connId, request.seq, "+OK\r\n");
    await c.closes();
    expect(c.received).toBe("+OK\r\n+OK\r\n");
    await expectCloseEvent(harness, request.connId);
  });

  it("sends the close event of a client that leaves with its request in flight, after the request", async () => {
    const harness = await start(flags);
    const c = await client(harness);
    c.send(resp("GET", "k"));
    const request = await harness.next();
    c.socket.destroy();
    await expectCloseEvent(harness, request.connId);
    harness.reply(request.connId, request.seq, "$-1\r\n"); // the client left: dropped
    await harness.expectNothing();
  });

  it("sends no close event for a client that never sent a request", async () => {
    const harness = await start(flags);
    const c = await client(harness);
    c.socket.end();
    await c.closes();
    await harness.expectNothing();
  });

  it("keeps a close event that found the ring full, and sends it once there is room", async () => {
    // Room for two PING records (68 bytes each with their frame), not a third record.
    const harness = await start(flags, 150);
    const a = await client(harness);
    const b = await client(harness);
    a.send(resp("PING"));
    await new Promise((resolve) => setTimeout(resolve, 50));
    b.send(resp("PING"));
    await new Promise((resolve) => setTimeout(resolve, 50));
    a.socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const metrics = (await harness.server.metricsJson()) as {
      name: string;
      values: { value: number }[];
    }[];
    const ringFull = metrics.find((m) => m.name === "apus_request_ring_full_total");
    expect(ringFull?.values[0]?.value).toBe(1); // the close event waited
    const first = await harness.next();
    const second = await harness.next();
    expect([first.seq, second.seq]).toEqual([1, 1]);
    await expectCloseEvent(harness, first.connId);
    expect(first.connId).not.toBe(second.connId);
  });
});

describe("ClientServer, program mode, resp, ring full", () => {
  it("still sends the request of a client that left while it waited for ring space, then its close event", async () => {
    const harness = await start(["--app", "x", "--protocol", "resp"], 150);
    const [a, b, c] = [await client(harness), await client(harness), await client(harness)];
    for (const each of [a, b, c]) {
      each.send(resp("PING"));
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    c.socket.destroy(); // its PING waits for ring space
    await new Promise((resolve) => setTimeout(resolve, 50));
    const records = [];
    for (let i = 0; i < 4; i++) records.push(await harness.next());
    expect(records.map((r) => r.seq)).toEqual([1, 1, 1, REQUEST_SEQ_EVENT]);
    expect(connectionBody(records[2]!, "data")).toEqual([args("PING")]);
    expect(records[3]!.connId).toBe(records[2]!.connId);
    expect(connectionBody(records[3]!, "close")).toEqual([]);
  });
});

describe("ClientServer, program mode, memcache", () => {
  const flags = ["--app", "x", "--protocol", "memcache"];

  it("cuts requests with the codec: one chunk of one-argument commands", async () => {
    const harness = await start(flags);
    const c = await client(harness);
    c.send("set k 0 0 1\r\nx\r\nget k\r\n");
    const request = await harness.next();
    expect(connectionBody(request, "data")).toEqual([
      args("set k 0 0 1\r\nx\r\n"),
      args("get k\r\n"),
    ]);
    harness.reply(request.connId, request.seq, "STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n");
    await c.receives("STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n");
  });

  it("answers a refused request in order with the replies of the requests around it", async () => {
    const harness = await start(flags);
    const c = await client(harness);
    c.send("get a\r\nbogus\r\nget b\r\n");
    const first = await harness.next();
    expect(connectionBody(first, "data")).toEqual([args("get a\r\n")]);
    await harness.expectNothing(50);
    expect(c.received).toBe(""); // ERROR waits for get a's answer
    harness.reply(first.connId, first.seq, "END\r\n");
    const second = await harness.next();
    expect(connectionBody(second, "data")).toEqual([args("get b\r\n")]);
    await c.receives("END\r\nERROR\r\n");
    harness.reply(second.connId, second.seq, "VALUE b 0 1\r\ny\r\nEND\r\n");
    await c.receives("END\r\nERROR\r\nVALUE b 0 1\r\ny\r\nEND\r\n");
  });

  it("closes after quit once the request in flight is answered, then sends the close event", async () => {
    const harness = await start(flags);
    const c = await client(harness);
    c.send("get a\r\nquit\r\nget b\r\n");
    const request = await harness.next();
    expect(connectionBody(request, "data")).toEqual([args("get a\r\n")]);
    harness.reply(request.connId, request.seq, "END\r\n");
    await c.closes();
    expect(c.received).toBe("END\r\n");
    await expectCloseEvent(harness, request.connId);
    await harness.expectNothing();
  });

  it("answers a final error after the request in flight and closes", async () => {
    const harness = await start(flags);
    const c = await client(harness);
    c.send("get a\r\nset k 0 0 1\r\nxy\r\n");
    const request = await harness.next();
    expect(connectionBody(request, "data")).toEqual([args("get a\r\n")]);
    harness.reply(request.connId, request.seq, "END\r\n");
    await c.closes();
    expect(c.received).toBe("END\r\nCLIENT_ERROR bad data chunk\r\n");
    await expectCloseEvent(harness, request.connId);
  });
});

describe("ClientServer, program mode, raw", () => {
  it("sends each chunk read as one request, in order", async () => {
    const harness = await start(["--app", "x", "--protocol", "raw"]);
    const c = await client(harness);
    c.send("hello\n");
    const first = await harness.next();
    expect(connectionBody(first, "data")).toEqual([args("hello\n")]);
    harness.reply(first.connId, first.seq, "world\n");
    await c.receives("world\n");
    c.send("again\n");
    const second = await harness.next();
    expect(second.seq).toBe(2);
    expect(connectionBody(second, "data")).toEqual([args("again\n")]);
    c.socket.end();
    await expectCloseEvent(harness, first.connId);
  });
});
