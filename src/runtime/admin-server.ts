import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
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
 * starts a new window, for benchmarks). Binds 127.0.0.1 unless told otherwise.
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
        res.end("apus-smr admin: /metrics /status /latency[?reset=1]\n");
        return;
      default:
        res.writeHead(404, { "content-type": "text/plain" });
        res.end("not found: try /metrics, /status or /latency\n");
    }
  }
}

function json(res: ServerResponse, value: unknown): void {
  res.writeHead(200, { "content-type": "application/json" });
  res.end(`${JSON.stringify(value, null, 2)}\n`);
}

export type { Remote };
