import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { isIPv4, isIPv6 } from "node:net";
import type { Logger } from "pino";
import { AggregatorRegistry, Counter, collectDefaultMetrics, Registry } from "prom-client";
import type { ClientUser, ClientUsers } from "./client-auth.ts";
import type { ReplicaConfig } from "./config.ts";
import type {
  ConnectionControl,
  ConsensusControl,
  MemberChangeOutcome,
  MemberChangeRequest,
} from "./thread-contracts.ts";

type Remote<T> = {
  [K in keyof T]: T[K] extends (...args: infer A) => infer R
    ? (...args: A) => Promise<Awaited<R>>
    : never;
};

export interface AdminServerOptions {
  readonly host: string;
  readonly port: number;
  readonly consensus: Remote<ConsensusControl>;
  readonly connections: readonly Remote<ConnectionControl>[];
  readonly logger: Logger;
  /** The client users (--requirepass-file, --users-file), or null: no authentication. */
  readonly users: ClientUsers | null;
  /** --admin-auth: which requests need a user when `users` is not null. */
  readonly auth: ReplicaConfig["adminAuth"];
}

/** The realm of the 401's WWW-Authenticate challenge. */
export const ADMIN_AUTH_REALM = "apus-smr";

/** Who must have authenticated for a request: nobody, any user, or a user with role admin. */
type AdminAccess = "anyone" | "user" | "admin";

/** Why a request was refused, the label of apus_admin_requests_refused_total. */
type RefusalReason = "cross-site" | "unauthenticated" | "forbidden";

/**
 * The admin HTTP server of the main thread: /metrics (Prometheus text, aggregated from every
 * worker's registry), /status (JSON), /latency (exact consensus-latency quantiles; ?reset=1
 * starts a new window, for benchmarks), POST /leader/transfer[?to=ID] (hand leadership over;
 * answers once the transfer ended, saying how), GET /members (the configuration) and POST
 * /members (a membership change, answered once it governs). Binds 127.0.0.1 unless told otherwise.
 *
 * A request that changes state (any method but GET and HEAD, GET /latency?reset=1) must also
 * carry ADMIN_REQUEST_HEADER and a Host header naming an IP address or localhost, or it is refused
 * with 403 (see refuseCrossSite): a web page open in a browser on the host must not move
 * leadership, whether by a plain cross-site request or by DNS rebinding (a browser may also
 * replay Basic credentials it remembers, so this holds with authentication too).
 *
 * With client users, it then needs HTTP Basic authentication of a user with role admin (401
 * without valid credentials, 403 for another role); under --admin-auth all every other request
 * needs some user; under none, nothing. Passwords are checked by ClientUsers.authenticate, in
 * constant time. Without users the port has no authentication: whoever reaches it can move
 * leadership.
 */
export class AdminServer {
  private readonly server: Server;
  private readonly processRegistry = new Registry();
  private readonly options: AdminServerOptions;
  private readonly refused: Counter<"reason">;

  constructor(options: AdminServerOptions) {
    this.options = options;
    collectDefaultMetrics({ register: this.processRegistry, prefix: "apus_process_" });
    this.refused = new Counter({
      name: "apus_admin_requests_refused_total",
      help: "Admin HTTP requests refused: reason cross-site (403, no X-Apus-Admin header or a Host that is a name), unauthenticated (401, missing or wrong Basic credentials), forbidden (403, a user whose role is not admin asked for a change)",
      labelNames: ["reason"],
      registers: [this.processRegistry],
    });
    this.server = createServer((req, res) => {
      this.route(req, res).catch((error: unknown) => {
        options.logger.warn({ err: error, url: req.url }, "admin request failed");
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
        res.end(`error: ${(error as Error).message}\n`);
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    const address = this.server.address();
    return typeof address === "object" && address !== null
      ? `${address.address}:${address.port}`
      : "";
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://admin");
    const changesState =
      (req.method !== "GET" && req.method !== "HEAD") ||
      url.pathname === "/leader/transfer" ||
      (url.pathname === "/latency" && url.searchParams.get("reset") === "1");
    if (changesState) {
      const refusal = refuseCrossSite(req);
      if (refusal !== null) return this.refuse(res, "cross-site", `refused: ${refusal}`);
    }
    const access = this.accessFor(changesState);
    if (access !== "anyone" && !this.admits(req, res, access)) return;
    if (url.pathname === "/leader/transfer") return this.transfer(req, res, url);
    if (url.pathname === "/members" && req.method === "POST")
      return this.changeMembers(req, res, url);
    if (req.method !== "GET") {
      res.writeHead(405, {
        "content-type": "text/plain",
        allow: url.pathname === "/members" ? "GET, POST" : "GET",
      });
      res.end(url.pathname === "/members" ? "only GET or POST\n" : "only GET\n");
      return;
    }
    switch (url.pathname) {
      case "/metrics": {
        const parts = (await Promise.all([
          this.options.consensus.metricsJson(),
          ...this.options.connections.map((c) => c.metricsJson()),
          this.processRegistry.getMetricsAsJSON(),
        ])) as object[];
        const registry = AggregatorRegistry.aggregate(parts);
        res.writeHead(200, { "content-type": registry.contentType });
        res.end(await registry.metrics());
        return;
      }
      case "/status":
        return json(res, await this.options.consensus.status());
      case "/members":
        return json(res, await this.options.consensus.members());
      case "/latency":
        return json(
          res,
          await this.options.consensus.latency(url.searchParams.get("reset") === "1"),
        );
      case "/":
        res.writeHead(200, { "content-type": "text/plain" });
        res.end(
          "apus-smr admin: /metrics /status /latency[?reset=1] /members, POST /leader/transfer[?to=ID], POST /members\n",
        );
        return;
      default:
        res.writeHead(404, { "content-type": "text/plain" });
        res.end("not found: try /metrics, /status, /latency or /members\n");
    }
  }

  /** Who may make a request that changes state (or not), under --admin-auth and the users. */
  private accessFor(changesState: boolean): AdminAccess {
    if (this.options.users === null || this.options.auth === "none") return "anyone";
    if (changesState) return "admin";
    return this.options.auth === "all" ? "user" : "anyone";
  }

  /** Whether the request's Basic credentials grant `access`; if not, answers 401 or 403. */
  private admits(req: IncomingMessage, res: ServerResponse, access: "user" | "admin"): boolean {
    const credentials = parseBasicAuthorization(req.headers.authorization);
    const user: ClientUser | null =
      credentials === null
        ? null
        : this.options.users!.authenticate(credentials.name, credentials.password);
    if (user === null) {
      const needed = access === "admin" ? "a user with role admin" : "a user";
      this.refuse(
        res,
        "unauthenticated",
        `unauthorized: ${credentials === null ? "no" : "wrong"} credentials; this request needs HTTP Basic authentication of ${needed} (--users-file, or user default of --requirepass-file)`,
      );
      return false;
    }
    if (access === "admin" && user.role !== "admin") {
      this.refuse(
        res,
        "forbidden",
        `forbidden: user ${user.name} has role ${user.role}; this request needs a user with role admin`,
      );
      return false;
    }
    return true;
  }

  private refuse(res: ServerResponse, reason: RefusalReason, text: string): void {
    this.refused.inc({ reason });
    this.options.logger.debug({ reason }, "admin request refused");
    const headers: Record<string, string> = { "content-type": "text/plain" };
    if (reason === "unauthenticated")
      headers["www-authenticate"] = `Basic realm="${ADMIN_AUTH_REALM}"`;
    res.writeHead(reason === "unauthenticated" ? 401 : 403, headers);
    res.end(`${text}\n`);
  }

  /**
   * POST /leader/transfer[?to=ID][&wait_ms=MS]: 200 with the outcome once the target took over
   * (LeaderTransferOutcome says what happened), 409 when this replica does not lead (the body
   * names the leader it knows) or a transfer to another target is under way ("busy"), 400 for a
   * bad target, 503 when no follower could take over, none did in time (this replica still
   * leads), or this replica was deposed otherwise. wait_ms is clamped to [heartbeat, 2 x election
   * timeout] (the body's waitMs says what was used).
   */
  private async transfer(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (req.method !== "POST") {
      res.writeHead(405, { "content-type": "text/plain", allow: "POST" });
      res.end("only POST\n");
      return;
    }
    const to = optionalInteger(url.searchParams.get("to"));
    const waitMs = optionalInteger(url.searchParams.get("wait_ms"));
    if (to === undefined || waitMs === undefined) {
      res.writeHead(400, { "content-type": "text/plain" });
      res.end("to and wait_ms must be non-negative integers\n");
      return;
    }
    const outcome = await this.options.consensus.transferLeadership(to, waitMs);
    const code = { transferred: 200, "not-leader": 409, busy: 409, "bad-target": 400 }[
      outcome.outcome as string
    ];
    res.writeHead(code ?? 503, { "content-type": "application/json" });
    res.end(`${JSON.stringify(outcome)}\n`);
  }

  /**
   * POST /members (op=add|promote|remove|replace, id, address, new_id, wait_ms; JSON body or
   * query): a membership change, at the leader, answered once each step is chosen and governs:
   * 200 done, 409 not-leader (the body names the leader and its peer address; requests are not
   * forwarded), busy (another change) or lagging (a learner too far behind to promote), 400
   * invalid, 503 timed-out or stopping. The body is MemberChangeOutcome.
   */
  private async changeMembers(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const body = await readBody(req, MEMBERS_BODY_BYTES_MAX);
    const request =
      body === null
        ? `the body is larger than ${MEMBERS_BODY_BYTES_MAX} bytes`
        : parseMemberRequest(body, url.searchParams);
    if (typeof request === "string") {
      res.writeHead(400, { "content-type": "application/json" });
      res.end(`${JSON.stringify({ outcome: "invalid", detail: request, steps: [] })}\n`);
      return;
    }
    const outcome = await this.options.consensus.changeMembers(request);
    res.writeHead(MEMBER_CHANGE_STATUS[outcome.outcome], { "content-type": "application/json" });
    res.end(`${JSON.stringify(outcome)}\n`);
  }
}

/** Largest POST /members body: one small JSON object. */
export const MEMBERS_BODY_BYTES_MAX = 4096;

/** The HTTP status of each membership change outcome. */
const MEMBER_CHANGE_STATUS: Readonly<Record<MemberChangeOutcome["outcome"], number>> = {
  done: 200,
  "not-leader": 409,
  busy: 409,
  lagging: 409,
  invalid: 400,
  "timed-out": 503,
  stopping: 503,
};

/**
 * A POST /members request from its JSON body and query (the query wins): op (add, promote,
 * remove, replace), id, address, new_id, wait_ms. Or why it is not one.
 */
export function parseMemberRequest(
  body: string,
  query: URLSearchParams,
): MemberChangeRequest | string {
  let fields: Record<string, unknown> = {};
  if (body.trim() !== "") {
    try {
      const parsed: unknown = JSON.parse(body);
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
        return "the body must be a JSON object";
      fields = { ...(parsed as Record<string, unknown>) };
    } catch {
      return "the body is not JSON";
    }
  }
  for (const [key, value] of query) fields[key] = value;
  const op = fields.op;
  if (op !== "add" && op !== "promote" && op !== "remove" && op !== "replace")
    return "op must be add, promote, remove or replace";
  const id = idField(fields.id);
  if (id === null) return "id must be a replica id, 1..31";
  const newIdRaw = fields.new_id ?? fields.newId;
  const newId = newIdRaw === undefined ? undefined : idField(newIdRaw);
  if (newId === null) return "new_id must be a replica id, 1..31";
  if (op === "replace" && newId === undefined) return "replace needs new_id (the replacement's id)";
  const address = fields.address;
  if (address !== undefined && typeof address !== "string") return "address must be host:port";
  const waitRaw = fields.wait_ms ?? fields.waitMs;
  const waitMs = waitRaw === undefined ? null : Number(waitRaw);
  if (waitMs !== null && (!Number.isSafeInteger(waitMs) || waitMs < 0))
    return "wait_ms must be a non-negative integer";
  return {
    op,
    id,
    waitMs,
    ...(address === undefined ? {} : { address }),
    ...(newId === undefined ? {} : { newId }),
  };
}

function idField(value: unknown): number | null {
  const id = typeof value === "string" && /^[0-9]+$/.test(value) ? Number(value) : value;
  return typeof id === "number" && Number.isInteger(id) && id >= 1 && id <= 31 ? id : null;
}

function readBody(req: IncomingMessage, bytesMax: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > bytesMax) {
        resolve(null);
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/**
 * The header a state-changing admin request must carry, with the value "1". A browser sends a
 * custom header cross-site only after a CORS preflight (OPTIONS), which this server never grants
 * (OPTIONS is a state-changing method here: refused with 403 and no Access-Control-* header), so a
 * page cannot add it; a body-less POST without it would be a CORS "simple" request the browser
 * sends without asking.
 */
export const ADMIN_REQUEST_HEADER = "x-apus-admin";

/**
 * Why a state-changing request is refused, or null to serve it. Two checks, both needed:
 * - the custom header (above) stops cross-site requests from a page on another origin;
 * - the Host header must be an IP literal or localhost (optional port): DNS rebinding points a
 *   domain the attacker owns at 127.0.0.1, making the page same-origin (so it may set any header),
 *   but the browser then sends that domain name as Host. Our own clients connect by address.
 */
export function refuseCrossSite(req: IncomingMessage): string | null {
  if (req.headers[ADMIN_REQUEST_HEADER] !== "1")
    return `a state-changing admin request needs the header "X-Apus-Admin: 1" (apus sends it)`;
  const host = req.headers.host;
  if (host === undefined || !hostIsAddressOrLocalhost(host))
    return `Host ${JSON.stringify(host ?? "")} is not an IP address or localhost: connect by address (DNS rebinding guard)`;
  return null;
}

/** "127.0.0.1", "localhost:9100", "[::1]:9100": an IP literal or localhost, with optional port. */
export function hostIsAddressOrLocalhost(host: string): boolean {
  const match = /^(\[[^\]]*\]|[^:[\]]+)(?::[0-9]{1,5})?$/.exec(host);
  if (match === null) return false;
  const name = match[1]!;
  if (name.startsWith("[")) return isIPv6(name.slice(1, -1));
  return name.toLowerCase() === "localhost" || isIPv4(name);
}

/**
 * The user name and password bytes of an `Authorization: Basic base64(name:password)` header
 * (RFC 7617; the name ends at the first colon), or null when absent or not Basic.
 */
export function parseBasicAuthorization(
  header: string | undefined,
): { readonly name: Buffer; readonly password: Buffer } | null {
  if (header === undefined) return null;
  const match = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header);
  if (match === null) return null;
  const decoded = Buffer.from(match[1]!, "base64");
  const colon = decoded.indexOf(0x3a);
  if (colon < 0) return null;
  return { name: decoded.subarray(0, colon), password: decoded.subarray(colon + 1) };
}

/** null when absent, undefined when not a non-negative safe integer. */
function optionalInteger(text: string | null): number | null | undefined {
  if (text === null || text === "") return null;
  const value = Number(text);
  return /^[0-9]+$/.test(text) && Number.isSafeInteger(value) ? value : undefined;
}

function json(res: ServerResponse, value: unknown): void {
  res.writeHead(200, { "content-type": "application/json" });
  res.end(`${JSON.stringify(value, null, 2)}\n`);
}

export type { Remote };
