/**
 * The client port's gate inside the client server (client-server.ts), with the test acting as the
 * consensus node on its rings: what a connection may hold before it logs in (a login deadline;
 * TLS handshakes in progress count against --max-clients), and MULTI in transparent mode (a
 * refusal inside it aborts EXEC, AUTH inside it is queued).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as connectTls, type TLSSocket } from "node:tls";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { decodeCommands } from "../../src/app/command-codec.ts";
import { createDoorbell, DoorbellRinger, DoorbellWaiter } from "../../src/ring/doorbell.ts";
import { createFrameRing, FrameRingReader, FrameRingWriter } from "../../src/ring/frame-ring.ts";
import { parseReplicaArgs } from "../../src/runtime/config.ts";
import {
  REPLY_CONN_ID,
  REPLY_FINAL,
  REPLY_FLAGS,
  REPLY_HEADER_BYTES,
  REPLY_SEQ,
  REQUEST_CONN_ID,
  REQUEST_PREFIX_BYTES,
  REQUEST_SEQ,
  type WorkerRings,
} from "../../src/runtime/thread-contracts.ts";
import { ClientServer, LOGIN_TIMEOUT_MS } from "../../src/workers/client-server.ts";
import { CONNECTION_PREFIX_BYTES, LOG_HEADER_BYTES } from "../../src/workers/log-command.ts";
import { makeTestCerts, type TestCerts } from "../integration/test-certs.ts";

const PASSWORD = "top-secret-0123";

let dir: string;
let certs: TestCerts;
let passwordFile: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "apus-client-server-"));
  certs = makeTestCerts(dir);
  passwordFile = join(dir, "requirepass");
  writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

async function until<T>(what: string, poll: () => T | undefined, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = poll();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

interface Request {
  readonly connId: number;
  readonly seq: number;
  /** The commands, decoded from the log command. */
  readonly commands: string[][];
}

interface HarnessOptions {
  readonly clientsMax?: number;
  readonly loginTimeoutMs?: number;
}

/** A ClientServer, with the test acting as the consensus node on its rings. */
class Harness {
  readonly server: ClientServer;
  readonly port: number;
  private readonly programMode: boolean;
  private readonly reader: FrameRingReader;
  private readonly writer: FrameRingWriter;
  private readonly ringer: DoorbellRinger;
  private readonly queue: Request[] = [];

  static async start(flags: string[], options: HarnessOptions = {}): Promise<Harness> {
    const port = await freePort();
    const parsed = parseReplicaArgs([
      "--id",
      "1",
      "--peers",
      "127.0.0.1:1",
      "--client-port",
      String(port),
      "--client-host",
      "127.0.0.1",
      "--data-dir",
      join(dir, "data"),
      ...flags,
    ]);
    if (parsed.action !== "run") throw new Error("expected a run config");
    const consensusBell = createDoorbell();
    const workerBell = createDoorbell();
    const rings: WorkerRings = {
      requests: createFrameRing(1 << 20, consensusBell),
      replies: createFrameRing(1 << 20, workerBell),
      workerBell,
    };
    const server = new ClientServer({
      config: parsed.config,
      workerIndex: 0,
      rings,
      requestBell: new DoorbellRinger(consensusBell),
      replyWaiter: new DoorbellWaiter(workerBell, { spinUs: 0 }),
      clientsMax: options.clientsMax ?? 100,
      reusePort: false,
      logger: pino({ level: "silent" }),
      ...(options.loginTimeoutMs === undefined ? {} : { loginTimeoutMs: options.loginTimeoutMs }),
    });
    await server.listen();
    return new Harness(server, port, rings, parsed.config.app !== null);
  }

  private constructor(
    server: ClientServer,
    port: number,
    rings: WorkerRings,
    programMode: boolean,
  ) {
    this.server = server;
    this.port = port;
    this.programMode = programMode;
    this.reader = new FrameRingReader(rings.requests);
    this.writer = new FrameRingWriter(rings.replies);
    this.ringer = new DoorbellRinger(rings.workerBell);
  }

  private drain(): void {
    const bodyAt = LOG_HEADER_BYTES + (this.programMode ? CONNECTION_PREFIX_BYTES : 0);
    this.reader.drain((record) => {
      const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
      const command = record.slice(REQUEST_PREFIX_BYTES);
      this.queue.push({
        connId: view.getUint32(REQUEST_CONN_ID, true),
        seq: view.getUint32(REQUEST_SEQ, true),
        commands: (decodeCommands(command, bodyAt) ?? []).map((args) =>
          args.map((arg) => Buffer.from(arg).toString("latin1")),
        ),
      });
    });
  }

  /** The next request record the client server wrote. */
  next(): Promise<Request> {
    return until("a request record", () => {
      this.drain();
      return this.queue.shift();
    });
  }

  reply(request: Request, bytes: string, final = true): void {
    const header = new Uint8Array(REPLY_HEADER_BYTES);
    const view = new DataView(header.buffer);
    view.setUint32(REPLY_CONN_ID, request.connId, true);
    view.setUint32(REPLY_SEQ, request.seq, true);
    view.setUint8(REPLY_FLAGS, final ? REPLY_FINAL : 0);
    expect(this.writer.tryWrite(header, Buffer.from(bytes, "latin1"))).toBe(true);
    this.ringer.ring();
  }

  /** A counter's value from the server's registry. */
  async counter(name: string): Promise<number> {
    const metric = this.server.registry.getSingleMetric(name);
    const values = (await metric?.get())?.values ?? [];
    return values.reduce((sum, v) => sum + v.value, 0);
  }
}

/** A client socket that keeps everything it received. */
class TestClient {
  readonly socket: Socket | TLSSocket;
  received = "";
  closed = false;

  constructor(socket: Socket | TLSSocket) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.received += chunk.toString("latin1");
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closed = true;
    });
  }

  static connect(port: number): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: "127.0.0.1", port }, () => resolve(new TestClient(socket)));
      socket.once("error", reject);
    });
  }

  send(text: string): void {
    this.socket.write(Buffer.from(text, "latin1"));
  }

  receives(text: string): Promise<void> {
    return until(JSON.stringify(text), () => (this.received === text ? true : undefined)).then(
      () => {},
      (error: unknown) => {
        throw new Error(`${(error as Error).message}; got ${JSON.stringify(this.received)}`);
      },
    );
  }

  closes(ms?: number): Promise<void> {
    return until("the client to be closed", () => (this.closed ? true : undefined), ms).then(
      () => {},
    );
  }
}

function resp(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`;
}

const harnesses: Harness[] = [];
const clients: TestClient[] = [];

async function start(flags: string[], options?: HarnessOptions): Promise<Harness> {
  const harness = await Harness.start(flags, options);
  harnesses.push(harness);
  return harness;
}

function track(client: TestClient): TestClient {
  clients.push(client);
  return client;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.socket.destroy();
  for (const harness of harnesses.splice(0)) await harness.server.shutdown();
});

describe("the login deadline (authentication on)", () => {
  it("is LOGIN_TIMEOUT_MS, 10 s", () => {
    expect(LOGIN_TIMEOUT_MS).toBe(10_000);
  });

  it("closes a connection that has not logged in in time, and counts it; a logged-in one stays", async () => {
    const harness = await start(["--requirepass-file", passwordFile], { loginTimeoutMs: 300 });
    const idle = track(await TestClient.connect(harness.port));
    const refused = track(await TestClient.connect(harness.port));
    const loggedIn = track(await TestClient.connect(harness.port));
    refused.send(resp("AUTH", "wrong"));
    loggedIn.send(resp("AUTH", PASSWORD));
    await loggedIn.receives("+OK\r\n");
    await idle.closes();
    await refused.closes();
    expect(idle.received).toBe("-ERR not logged in within 300 ms (AUTH): connection closed\r\n");
    expect(refused.received).toMatch(/^-WRONGPASS .*\r\n-ERR not logged in within 300 ms/);
    expect(await harness.counter("apus_client_login_timeouts_total")).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(loggedIn.closed).toBe(false);
    loggedIn.send(resp("GET", "k"));
    const request = await harness.next();
    expect(request.commands).toEqual([["GET", "k"]]);
    harness.reply(request, "$-1\r\n");
    await loggedIn.receives("+OK\r\n$-1\r\n");
  });

  it("is not armed without authentication", async () => {
    const harness = await start([], { loginTimeoutMs: 100 });
    const c = track(await TestClient.connect(harness.port));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(c.closed).toBe(false);
    expect(await harness.counter("apus_client_login_timeouts_total")).toBe(0);
  });
});

describe("MULTI in transparent mode, authentication on", () => {
  const APP = ["--app", "redis-server --port {port}", "--requirepass-file"];

  it("a command refused inside MULTI goes alone as the marker, and the client gets the refusal in its place", async () => {
    const harness = await start([...APP, passwordFile]);
    const c = track(await TestClient.connect(harness.port));
    c.send(
      resp("AUTH", PASSWORD) + resp("MULTI") + resp("SET", "k", "v") + resp("AUTH") + resp("EXEC"),
    );
    const first = await harness.next();
    expect(first.commands).toEqual([["MULTI"], ["SET", "k", "v"]]);
    harness.reply(first, "+OK\r\n+QUEUED\r\n");
    const marker = await harness.next();
    expect(marker.commands).toEqual([["apus-refused-in-multi"]]);
    harness.reply(
      marker,
      "-ERR unknown command 'apus-refused-in-multi', with args beginning with: \r\n",
    );
    const exec = await harness.next();
    expect(exec.commands).toEqual([["EXEC"]]);
    harness.reply(exec, "-EXECABORT Transaction discarded because of previous errors.\r\n");
    await c.receives(
      "+OK\r\n+OK\r\n+QUEUED\r\n-ERR wrong number of arguments for 'auth' command\r\n" +
        "-EXECABORT Transaction discarded because of previous errors.\r\n",
    );
  });

  it("AUTH inside MULTI is queued as PING; EXEC goes alone, its reply split over records gets AUTH's answer", async () => {
    const harness = await start([...APP, passwordFile]);
    const c = track(await TestClient.connect(harness.port));
    c.send(
      resp("AUTH", PASSWORD) +
        resp("MULTI") +
        resp("AUTH", "wrong") +
        resp("AUTH", PASSWORD) +
        resp("GET", "k") +
        resp("EXEC") +
        resp("PING"),
    );
    const queued = await harness.next();
    expect(queued.commands).toEqual([["MULTI"], ["PING"], ["PING"], ["GET", "k"]]);
    harness.reply(queued, "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n");
    const exec = await harness.next();
    expect(exec.commands).toEqual([["EXEC"]]);
    harness.reply(exec, "*3\r\n+PONG\r\n+PO", false);
    harness.reply(exec, "NG\r\n$1\r\nv\r\n");
    const after = await harness.next();
    expect(after.commands).toEqual([["PING"]]);
    harness.reply(after, "+PONG\r\n");
    await c.receives(
      "+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n" +
        "*3\r\n-WRONGPASS invalid username-password pair or user is disabled.\r\n+OK\r\n$1\r\nv\r\n" +
        "+PONG\r\n",
    );
  });
});

describe("--max-clients with TLS", () => {
  it("counts connections still in their TLS handshake: one past the limit is refused and counted", async () => {
    const harness = await start(["--tls-cert", certs.serverCert, "--tls-key", certs.serverKey], {
      clientsMax: 2,
    });
    // Two connections that never start a handshake hold both places.
    const silent = [
      track(await TestClient.connect(harness.port)),
      track(await TestClient.connect(harness.port)),
    ];
    const ca = readFileSync(certs.caCert);
    const late = track(new TestClient(connectTls({ host: "127.0.0.1", port: harness.port, ca })));
    await late.closes();
    expect(late.received).toBe("");
    expect(await harness.counter("apus_client_refused_total")).toBe(1);
    // Once one leaves, a TLS client gets its place.
    silent[0]!.socket.destroy();
    await silent[0]!.closes();
    await new Promise((resolve) => setTimeout(resolve, 100)); // the server sees the close
    const next = track(new TestClient(connectTls({ host: "127.0.0.1", port: harness.port, ca })));
    next.send(resp("PING"));
    const request = await harness.next();
    expect(request.commands).toEqual([["PING"]]);
    harness.reply(request, "+PONG\r\n");
    await next.receives("+PONG\r\n");
  });
});
