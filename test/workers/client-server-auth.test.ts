/**
 * The client port's gate inside the client server (client-server.ts), with the test acting as the
 * consensus node on its rings: what a connection may hold before it logs in (a login deadline;
 * TLS handshakes in progress count against --max-clients), and MULTI in transparent mode (a
 * refusal inside it aborts EXEC, AUTH inside it is queued).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as connectTls } from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { LOGIN_TIMEOUT_MS } from "../../src/workers/client-server.ts";
import { makeTestCerts, type TestCerts } from "../integration/test-certs.ts";
import { Harness, type HarnessOptions, resp, TestClient } from "./client-server-harness.ts";

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

const harnesses: Harness[] = [];
const clients: TestClient[] = [];

async function start(flags: string[], options?: HarnessOptions): Promise<Harness> {
  const harness = await Harness.start(["--data-dir", join(dir, "data"), ...flags], options);
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
    harness.answer(request, "$-1\r\n");
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
    harness.answer(first, "+OK\r\n+QUEUED\r\n");
    const marker = await harness.next();
    expect(marker.commands).toEqual([["apus-refused-in-multi"]]);
    harness.answer(
      marker,
      "-ERR unknown command 'apus-refused-in-multi', with args beginning with: \r\n",
    );
    const exec = await harness.next();
    expect(exec.commands).toEqual([["EXEC"]]);
    harness.answer(exec, "-EXECABORT Transaction discarded because of previous errors.\r\n");
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
    harness.answer(queued, "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n");
    const exec = await harness.next();
    expect(exec.commands).toEqual([["EXEC"]]);
    harness.answer(exec, "*3\r\n+PONG\r\n+PO", false);
    harness.answer(exec, "NG\r\n$1\r\nv\r\n");
    const after = await harness.next();
    expect(after.commands).toEqual([["PING"]]);
    harness.answer(after, "+PONG\r\n");
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
    harness.answer(request, "+PONG\r\n");
    await next.receives("+PONG\r\n");
  });
});
