/**
 * TLS on the client port (--tls-cert, --tls-key, --tls-ca): the files read once at start, checked
 * by building a secure context from them, so a wrong path, a bad PEM or a key that is not the
 * certificate's stops the replica with the file named instead of failing every handshake later.
 */
import { readFileSync } from "node:fs";
import { createSecureContext, type TlsOptions } from "node:tls";
import { ApusError } from "../core/errors.ts";
import type { ReplicaConfig } from "../runtime/config.ts";

/**
 * A connection that has not finished its TLS handshake in this time is closed: bounds what a
 * client that never completes one holds (Node's default is 120 s).
 */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

function readPem(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new ApusError(
      "ERR_INVALID_CONFIG",
      `--${flag} ${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
      { cause: error },
    );
  }
}

/** The client port's TLS server options, or null for plain TCP (no --tls-cert). */
export function loadClientTls(config: ReplicaConfig): TlsOptions | null {
  const { tlsCert, tlsKey, tlsCa } = config;
  if (tlsCert === null || tlsKey === null) return null;
  const cert = readPem("tls-cert", tlsCert);
  const key = readPem("tls-key", tlsKey);
  const ca = tlsCa === null ? null : readPem("tls-ca", tlsCa);
  const options: TlsOptions = {
    cert,
    key,
    handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
    // With --tls-ca a client must show a certificate that CA signed; the handshake fails otherwise.
    ...(ca === null ? {} : { ca, requestCert: true, rejectUnauthorized: true }),
  };
  try {
    createSecureContext(options);
  } catch (error) {
    const files = `--tls-cert ${tlsCert}, --tls-key ${tlsKey}${tlsCa === null ? "" : `, --tls-ca ${tlsCa}`}`;
    throw new ApusError(
      "ERR_INVALID_CONFIG",
      `${files}: not a usable certificate and key (${(error as Error).message}); give PEM files, the key the certificate's own`,
      { cause: error },
    );
  }
  return options;
}
