import { request } from "node:http";

/**
 * A small client of a replica's admin HTTP server (GET /status, /latency), shared by the cluster
 * launcher and the `apus` CLI. It never throws for an operating error: a replica that is down
 * is an answer, not an exception.
 */

export interface AdminAddress {
  readonly host: string;
  readonly port: number;
}

/** HTTP Basic credentials for a replica whose admin port authenticates (--admin-auth). */
export interface AdminCredentials {
  readonly user: string;
  readonly password: string;
}

export type AdminResult =
  | { readonly ok: true; readonly value: unknown }
  | {
      readonly ok: false;
      readonly reason: string;
      /** The credentials were missing, wrong (401) or not enough (403 for the user's role). */
      readonly authRefused?: true;
    };

/** Where the `apus` CLI takes credentials from, for messages that say what to pass. */
export const CREDENTIALS_HINT =
  "pass --user NAME and its password in --password-file FILE or the environment variable APUS_ADMIN_PASSWORD";

/**
 * Why the admin server refused a request for its credentials, in one line that says what to
 * pass; null when `status` is not such a refusal (a 403 without "forbidden:" is the cross-site
 * guard's).
 */
export function describeAuthRefusal(
  status: number | undefined,
  body: string,
  credentials: AdminCredentials | undefined,
): string | null {
  if (status === 401)
    return credentials === undefined
      ? `the admin port needs credentials (HTTP 401): ${CREDENTIALS_HINT}`
      : `the admin port refused user ${credentials.user}: wrong user name or password (HTTP 401)`;
  if (status === 403 && body.startsWith("forbidden:"))
    return `${body.trim().split("\n")[0]} (HTTP 403): pass --user NAME of an admin-role user`;
  return null;
}

/** The Authorization header value for `credentials` (RFC 7617, UTF-8). */
export function basicAuthorization(credentials: AdminCredentials): string {
  const pair = Buffer.from(`${credentials.user}:${credentials.password}`, "utf8");
  return `Basic ${pair.toString("base64")}`;
}

/** A response body larger than this is refused: /status of 31 replicas is a few KiB. */
export const ADMIN_RESPONSE_BYTES_MAX = 1024 * 1024;

export function formatAdminAddress(address: AdminAddress): string {
  return address.host.includes(":")
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}

/** The codes the command line's admin client makes up (beside Node's own socket codes). */
export const ADMIN_CLIENT_ERROR_CODES = [
  /** The replica did not answer within the timeout. */
  "ERR_ADMIN_TIMEOUT",
] as const;

/** Why a request failed, in a few words a person reads in a table cell ("connection refused"). */
export function describeAdminError(error: unknown, timeoutMs: number): string {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  switch (code) {
    case "ECONNREFUSED":
      return "connection refused";
    case "ETIMEDOUT":
    case "ERR_ADMIN_TIMEOUT":
      return `no answer within ${timeoutMs} ms`;
    case "ECONNRESET":
      return "connection reset";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "host not found";
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return "host unreachable";
    case "EADDRNOTAVAIL":
      return "address not available";
    default:
      return code === undefined ? (error as Error).message : `${code}`;
  }
}

/**
 * GET (or POST) `path` from the admin server and parse the JSON body; resolves, never rejects.
 * A status other than 200 is a failure, unless `anyStatus`: then any JSON body is the answer
 * (POST /leader/transfer explains a refusal in JSON).
 */
export function getAdminJson(
  address: AdminAddress,
  path: string,
  timeoutMs: number,
  options: {
    readonly method?: "GET" | "POST";
    readonly anyStatus?: boolean;
    readonly credentials?: AdminCredentials | undefined;
    /** A JSON body (POST /members). */
    readonly body?: string;
  } = {},
): Promise<AdminResult> {
  const headers: Record<string, string> = { "x-apus-admin": "1" };
  if (options.body !== undefined) headers["content-type"] = "application/json";
  if (options.credentials !== undefined)
    headers.authorization = basicAuthorization(options.credentials);
  return new Promise((resolve) => {
    let settled = false;
    const settle = (result: AdminResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const req = request(
      {
        host: address.host,
        port: address.port,
        path,
        method: options.method ?? "GET",
        // Every request says it comes from an admin tool, not a web page: the admin server
        // refuses state-changing requests without it (see refuseCrossSite there).
        headers,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.byteLength;
          if (size > ADMIN_RESPONSE_BYTES_MAX) {
            settle({ ok: false, reason: `answer larger than ${ADMIN_RESPONSE_BYTES_MAX} bytes` });
            req.destroy();
            return;
          }
          chunks.push(chunk);
        });
        res.on("error", (error) =>
          settle({ ok: false, reason: describeAdminError(error, timeoutMs) }),
        );
        res.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8");
          const refusal = describeAuthRefusal(res.statusCode, body, options.credentials);
          if (refusal !== null) {
            settle({ ok: false, reason: refusal, authRefused: true });
            return;
          }
          if (res.statusCode !== 200 && options.anyStatus !== true) {
            settle({ ok: false, reason: `HTTP ${res.statusCode}: ${body.trim().slice(0, 80)}` });
            return;
          }
          try {
            settle({ ok: true, value: JSON.parse(body) as unknown });
          } catch {
            settle({ ok: false, reason: "answer is not JSON (is this an apus-smr admin port?)" });
          }
        });
      },
    );
    const timer = setTimeout(() => {
      settle({ ok: false, reason: describeAdminError({ code: "ERR_ADMIN_TIMEOUT" }, timeoutMs) });
      req.destroy();
    }, timeoutMs);
    req.on("error", (error) => settle({ ok: false, reason: describeAdminError(error, timeoutMs) }));
    req.end(options.body);
  });
}
