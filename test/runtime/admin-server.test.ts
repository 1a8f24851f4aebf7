import { request } from "node:http";
import pino from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  AdminServer,
  parseBasicAuthorization,
  type Remote,
} from "../../src/runtime/admin-server.ts";
import {
  ClientUsers,
  parseRequirepassFile,
  parseUsersFile,
} from "../../src/runtime/client-auth.ts";
import type { ReplicaConfig } from "../../src/runtime/config.ts";
import type {
  ConsensusControl,
  LeaderTransferOutcome,
} from "../../src/runtime/thread-contracts.ts";

/**
 * The admin server refuses state-changing requests a web page could send: one without the
 * X-Apus-Admin header (a cross-site "simple" request), and one whose Host is a domain name (DNS
 * rebinding). Read-only requests stay plain GETs. With client users, state changes also need
 * HTTP Basic credentials of an admin-role user (and, under --admin-auth all, reads any user's).
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
  metricsJson: async () => [],
} as unknown as Remote<ConsensusControl>;

let server: AdminServer | null = null;

async function start(
  users: ClientUsers | null = null,
  auth: ReplicaConfig["adminAuth"] = "writes",
): Promise<number> {
  server = new AdminServer({
    host: "127.0.0.1",
    port: 0,
    consensus,
    connections: [],
    logger: pino({ level: "silent" }),
    users,
    auth,
  });
  const address = await server.listen();
  return Number(address.split(":").pop());
}

afterEach(async () => {
  await server?.close();
  server = null;
  transfers = 0;
  resets = 0;
  vi.restoreAllMocks();
});

/** A raw request, so the test sets Host itself (fetch does not let it). */
function send(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string; challenge: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path, headers, agent: false }, (res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => {
        body += chunk.toString("utf8");
      });
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body, challenge: res.headers["www-authenticate"] }),
      );
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

const USERS_FILE = `# name role password
ops admin ops-secret
app read-write app-secret
viewer read-only viewer-secret
`;

function users(): ClientUsers {
  return new ClientUsers(parseUsersFile(USERS_FILE, "users.txt"));
}

/** The headers of a state-changing request from `apus`, with Basic credentials when given. */
function adminHeaders(user?: string, password?: string): Record<string, string> {
  const headers: Record<string, string> = { "x-apus-admin": "1" };
  if (user !== undefined)
    headers.authorization = `Basic ${Buffer.from(`${user}:${password ?? ""}`).toString("base64")}`;
  return headers;
}

describe("admin server: authentication with client users (--admin-auth)", () => {
  it("writes (the default): a change without or with wrong credentials is 401 with a Basic challenge", async () => {
    const port = await start(users());
    for (const headers of [
      adminHeaders(),
      adminHeaders("ops", "wrong"),
      adminHeaders("nobody", "ops-secret"),
      { ...adminHeaders(), authorization: "Bearer ops-secret" },
    ]) {
      const answer = await send(port, "POST", "/leader/transfer?to=2", headers);
      expect(answer.status, headers.authorization ?? "none").toBe(401);
      expect(answer.challenge).toBe('Basic realm="apus-smr"');
    }
    expect((await send(port, "GET", "/latency?reset=1", adminHeaders())).status).toBe(401);
    expect(transfers).toBe(0);
    expect(resets).toBe(0);
    const metrics = await send(port, "GET", "/metrics", {});
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/apus_admin_requests_refused_total\{reason="unauthenticated"\} 5/);
  });

  it("writes: a user whose role is not admin is 403; an admin is served", async () => {
    const port = await start(users());
    for (const [user, password] of [
      ["app", "app-secret"],
      ["viewer", "viewer-secret"],
    ] as const) {
      const answer = await send(
        port,
        "POST",
        "/leader/transfer?to=2",
        adminHeaders(user, password),
      );
      expect(answer.status, user).toBe(403);
      expect(answer.body).toMatch(
        new RegExp(`user ${user} has role .*needs a user with role admin`),
      );
    }
    expect(transfers).toBe(0);
    const answer = await send(
      port,
      "POST",
      "/leader/transfer?to=2",
      adminHeaders("ops", "ops-secret"),
    );
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ outcome: "transferred", target: 2 });
    expect(transfers).toBe(1);
    const reset = await send(port, "GET", "/latency?reset=1", adminHeaders("ops", "ops-secret"));
    expect(reset.status).toBe(200);
    expect(resets).toBe(1);
    const metrics = await send(port, "GET", "/metrics", {});
    expect(metrics.body).toMatch(/apus_admin_requests_refused_total\{reason="forbidden"\} 2/);
  });

  it("writes: reads stay open; any other method is a change and needs an admin too", async () => {
    const port = await start(users());
    expect((await send(port, "GET", "/status", {})).status).toBe(200);
    expect((await send(port, "GET", "/latency", {})).status).toBe(200);
    expect((await send(port, "PUT", "/status", adminHeaders())).status).toBe(401);
    expect((await send(port, "PUT", "/status", adminHeaders("ops", "ops-secret"))).status).toBe(
      405,
    );
  });

  it("still refuses a cross-site request first, even with an admin's credentials", async () => {
    const port = await start(users());
    const { authorization } = adminHeaders("ops", "ops-secret");
    const answer = await send(port, "POST", "/leader/transfer", { authorization: authorization! });
    expect(answer.status).toBe(403);
    expect(answer.body).toMatch(/X-Apus-Admin: 1/);
    expect(transfers).toBe(0);
  });

  it("the default user of --requirepass-file is an admin named default", async () => {
    const port = await start(new ClientUsers([parseRequirepassFile("pass-1\n", "pass.txt")]));
    expect((await send(port, "POST", "/leader/transfer", adminHeaders())).status).toBe(401);
    const answer = await send(port, "POST", "/leader/transfer", adminHeaders("default", "pass-1"));
    expect(answer.status).toBe(200);
  });

  it("all: reads need any valid user too; changes still an admin", async () => {
    const port = await start(users(), "all");
    for (const path of ["/metrics", "/status", "/latency", "/"]) {
      const answer = await send(port, "GET", path, {});
      expect(answer.status, path).toBe(401);
      expect(answer.challenge).toBe('Basic realm="apus-smr"');
      expect((await send(port, "GET", path, adminHeaders("app", "wrong"))).status).toBe(401);
      expect((await send(port, "GET", path, adminHeaders("viewer", "viewer-secret"))).status).toBe(
        200,
      );
    }
    const write = await send(port, "POST", "/leader/transfer", adminHeaders("app", "app-secret"));
    expect(write.status).toBe(403);
    expect(
      (await send(port, "POST", "/leader/transfer", adminHeaders("ops", "ops-secret"))).status,
    ).toBe(200);
  });

  it("none: no credentials asked, as without users (the cross-site guard stays)", async () => {
    const port = await start(users(), "none");
    expect((await send(port, "POST", "/leader/transfer", adminHeaders())).status).toBe(200);
    expect((await send(port, "GET", "/status", {})).status).toBe(200);
    expect((await send(port, "POST", "/leader/transfer", {})).status).toBe(403);
  });

  it("without users, all asks for no credentials either", async () => {
    const port = await start(null, "all");
    expect((await send(port, "GET", "/status", {})).status).toBe(200);
    expect((await send(port, "POST", "/leader/transfer", adminHeaders())).status).toBe(200);
  });

  it("checks passwords through ClientUsers.authenticate (constant time), not a compare of its own", async () => {
    const authenticate = vi.spyOn(ClientUsers.prototype, "authenticate");
    const port = await start(users());
    await send(port, "POST", "/leader/transfer", adminHeaders("ops", "wrong"));
    await send(port, "POST", "/leader/transfer", adminHeaders("ops", "ops-secret"));
    expect(authenticate).toHaveBeenCalledTimes(2);
    expect(Buffer.from(authenticate.mock.calls[0]![0]).toString()).toBe("ops");
    expect(Buffer.from(authenticate.mock.calls[0]![1]).toString()).toBe("wrong");
  });
});

describe("parseBasicAuthorization", () => {
  it("splits name and password at the first colon (the password may hold colons)", () => {
    const parsed = parseBasicAuthorization(`Basic ${Buffer.from("ops:a:b").toString("base64")}`);
    expect(parsed?.name.toString()).toBe("ops");
    expect(parsed?.password.toString()).toBe("a:b");
  });

  it("is null when absent, not Basic, not base64 or without a colon", () => {
    expect(parseBasicAuthorization(undefined)).toBeNull();
    expect(parseBasicAuthorization("Bearer abc")).toBeNull();
    expect(parseBasicAuthorization("Basic !!!")).toBeNull();
    expect(parseBasicAuthorization(`Basic ${Buffer.from("ops").toString("base64")}`)).toBeNull();
  });
});
