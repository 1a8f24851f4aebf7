import { request } from "node:http";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { AdminServer, type Remote } from "../../src/runtime/admin-server.ts";
import type {
  ConsensusControl,
  LeaderTransferOutcome,
} from "../../src/runtime/thread-contracts.ts";

/**
 * The admin server refuses state-changing requests a web page could send: one without the
 * X-Apus-Admin header (a cross-site "simple" request), and one whose Host is a domain name (DNS
 * rebinding). Read-only requests stay plain GETs.
 */

let transfers = 0;
let resets = 0;
const consensus = {
  transferLeadership: async (): Promise<LeaderTransferOutcome> => {
    transfers++;
    return { outcome: "transferred", from: 1, target: 2, leader: 2, elapsedMs: 1, waitMs: 1000 };
  },
  latency: async (reset: boolean) => {
    if (reset) resets++;
    return {};
  },
  status: async () => ({ id: 1 }),
} as unknown as Remote<ConsensusControl>;

let server: AdminServer | null = null;

async function start(): Promise<number> {
  server = new AdminServer({
    host: "127.0.0.1",
    port: 0,
    consensus,
    connections: [],
    logger: pino({ level: "silent" }),
  });
  const address = await server.listen();
  return Number(address.split(":").pop());
}

afterEach(async () => {
  await server?.close();
  server = null;
  transfers = 0;
  resets = 0;
});

/** A raw request, so the test sets Host itself (fetch does not let it). */
function send(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path, headers, agent: false }, (res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => {
        body += chunk.toString("utf8");
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("admin server: state-changing requests", () => {
  it("refuses POST /leader/transfer without X-Apus-Admin: 1 (a cross-site simple request)", async () => {
    const port = await start();
    for (const headers of [{}, { "x-apus-admin": "0" }]) {
      const answer = await send(port, "POST", "/leader/transfer?to=2", headers);
      expect(answer.status).toBe(403);
      expect(answer.body).toMatch(/X-Apus-Admin: 1/);
    }
    expect(transfers).toBe(0);
  });

  it("refuses a Host that is a domain name (DNS rebinding), even with the header", async () => {
    const port = await start();
    for (const host of [
      `attacker.example:${port}`,
      "attacker.example",
      "127.0.0.1.nip.io",
      "localhost.attacker.example",
    ]) {
      const answer = await send(port, "POST", "/leader/transfer", {
        "x-apus-admin": "1",
        host,
      });
      expect(answer.status, host).toBe(403);
      expect(answer.body).toMatch(/not an IP address or localhost/);
    }
    const reset = await send(port, "GET", "/latency?reset=1", { host: "attacker.example" });
    expect(reset.status).toBe(403);
    expect(transfers).toBe(0);
    expect(resets).toBe(0);
  });

  it("serves the header with an IP literal or localhost as Host, with or without a port", async () => {
    const port = await start();
    for (const host of [
      `127.0.0.1:${port}`,
      "127.0.0.1",
      `localhost:${port}`,
      "LOCALHOST",
      "[::1]:9",
    ]) {
      const answer = await send(port, "POST", "/leader/transfer", { "x-apus-admin": "1", host });
      expect(answer.status, host).toBe(200);
    }
    expect(transfers).toBe(5);
    expect((await send(port, "GET", "/latency?reset=1", { "x-apus-admin": "1" })).status).toBe(200);
    expect(resets).toBe(1);
  });

  it("read-only requests need neither; a preflight is never granted", async () => {
    const port = await start();
    expect((await send(port, "GET", "/status", { host: "attacker.example" })).status).toBe(200);
    expect((await send(port, "GET", "/latency", {})).status).toBe(200);
    const preflight = await send(port, "OPTIONS", "/leader/transfer", {
      origin: "http://attacker.example",
      "access-control-request-method": "POST",
      "access-control-request-headers": "x-apus-admin",
    });
    expect(preflight.status).not.toBe(200);
    expect(preflight.status).not.toBe(204);
  });
});
