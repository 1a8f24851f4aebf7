import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { isIPv4, isIPv6 } from "node:net";
import type { Logger } from "pino";
import { AggregatorRegistry, collectDefaultMetrics, Registry } from "prom-client";
import type { ConnectionControl, ConsensusControl } from "./thread-contracts.ts";

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
}

/**
 * The admin HTTP server of the main thread: /metrics (Prometheus text, aggregated from every
 * worker's registry), /status (JSON), /latency (exact consensus-latency quantiles; ?reset=1
 * starts a new window, for benchmarks), and POST /leader/transfer[?to=ID] (hand leadership over;
 * answers once the transfer ended, saying how). Binds 127.0.0.1 unless told otherwise: it
 * has no authentication, so whoever reaches the port can move leadership.
 *
 * A request that changes state (POST /leader/transfer, GET /latency?reset=1) must also carry
 * ADMIN_REQUEST_HEADER and a Host header naming an IP address or localhost, or it is refused
 * with 403 (see refuseCrossSite): a web page open in a browser on the host must not move
 * leadership, whether by a plain cross-site request or by DNS rebinding.
 */
export class AdminServer {
  private readonly server: Server;
  private readonly processRegistry = new Registry();
  private readonly options: AdminServerOptions;

  constructor(options: AdminServerOptions) {
    this.options = options;
    collectDefaultMetrics({ register: this.processRegistry, prefix: "apus_process_" });
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
      url.pathname === "/leader/transfer" ||
      (url.pathname === "/latency" && url.searchParams.get("reset") === "1");
    if (changesState) {
      const refusal = refuseCrossSite(req);
      if (refusal !== null) {
        res.writeHead(403, { "content-type": "text/plain" });
        res.end(`refused: ${refusal}\n`);
        return;
      }
    }
    if (url.pathname === "/leader/transfer") return this.transfer(req, res, url);
    if (req.method !== "GET") {
      res.writeHead(405, { "content-type": "text/plain", allow: "GET" });
      res.end("only GET\n");
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
      case "/latency":
        return json(
          res,
          await this.options.consensus.latency(url.searchParams.get("reset") === "1"),
        );
      case "/":
        res.writeHead(200, { "content-type": "text/plain" });
        res.end(
          "apus-smr admin: /metrics /status /latency[?reset=1], POST /leader/transfer[?to=ID]\n",
        );
        return;
      default:
        res.writeHead(404, { "content-type": "text/plain" });
        res.end("not found: try /metrics, /status or /latency\n");
    }
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
}

/**
 * The header a state-changing admin request must carry, with the value "1". A browser sends a
 * custom header cross-site only after a CORS preflight (OPTIONS), which this server never grants
 * (it answers OPTIONS with 405 and no Access-Control-* header), so a page cannot add it; a body-less
 * POST without it would be a CORS "simple" request the browser sends without asking.
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
