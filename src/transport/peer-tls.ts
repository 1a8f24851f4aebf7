/**
 * Mutual TLS between peers (`--transport tcp` with --peer-tls-cert, --peer-tls-key, --peer-tls-ca):
 * the material, read and checked once at start with errors that name the flag and the file, the
 * TLS settings both directions use, and the identity rule.
 *
 * Who is a peer, with TLS on:
 *   1. TLS 1.3 only, both directions present a certificate, and each must chain to --peer-tls-ca
 *      (the outbound side through tls.connect's rejectUnauthorized, the inbound side through a
 *      tls.Server with requestCert and rejectUnauthorized). A host with no certificate, or one
 *      from another CA, never gets past TLS.
 *   2. The certificate must name the address the replica is dialed at, its --peers host: an IP
 *      SAN for an address (IP:10.0.0.2), a DNS SAN for a name. Outbound, tls.connect checks the
 *      server's certificate against the host it dialed (RFC 6125 rules, tls.checkServerIdentity;
 *      no SNI is sent to an IP). Inbound, once the peer handshake has said which replica the
 *      connection is (`from`), its client certificate is checked against that replica's --peers
 *      host the same way: a certificate issued for replica 2's address cannot claim replica 1.
 *   3. The peer handshake (tcp-handshake.ts) still runs inside TLS, bound to the session by the
 *      RFC 9266 exporter: a valid certificate alone does not make a peer; its holder must also
 *      hold the cluster secret. Frames keep their MAC and sequence numbers.
 *
 * So the replica id is pinned twice: by the secret-keyed handshake (which every replica shares,
 * so on its own it does not tell replicas apart) and by the certificate naming that replica's
 * address (which does). With every replica on one host (all 127.0.0.1) the address tells them
 * apart no better than the secret does; across machines it does.
 */
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import tls from "node:tls";
import { ApusError } from "../core/errors.ts";

/** The three PEM files, as given on the command line. */
export interface PeerTlsFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

/** PEM contents, checked by readPeerTls. */
export interface PeerTlsMaterial {
  /** This replica's certificate (optionally followed by intermediates). */
  readonly cert: Buffer;
  readonly key: Buffer;
  /** The CA(s) every replica's certificate must chain to. */
  readonly ca: Buffer;
}

/** Both ends are apus-smr replicas: no older protocol to talk to, and TLS 1.3 has the exporter. */
export const PEER_TLS_VERSION_MIN = "TLSv1.3";

function invalid(flag: string, message: string, cause?: unknown): ApusError {
  return new ApusError("ERR_INVALID_CONFIG", `--${flag}: ${message}`, { cause });
}

function readPem(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw invalid(flag, `cannot read ${file}: ${(error as Error).message}`, error);
  }
}

/** Every certificate in a PEM bundle, in order. */
function parseCertificates(flag: string, file: string, pem: Buffer): X509Certificate[] {
  const blocks = pem
    .toString("latin1")
    .match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (blocks === null) throw invalid(flag, `${file} holds no PEM certificate (BEGIN CERTIFICATE)`);
  return blocks.map((block) => {
    try {
      return new X509Certificate(block);
    } catch (error) {
      throw invalid(
        flag,
        `${file} holds a certificate that does not parse: ${(error as Error).message}`,
        error,
      );
    }
  });
}

/**
 * Read and check the PEM files: each readable, the key matching the certificate, the certificate
 * issued by the CA, valid now, good for both TLS purposes (checkExtendedKeyUsage), and naming
 * `ownHost` (this replica's --peers host, where its peers
 * dial it). Every failure names the flag and the file and says what to do.
 */
export function readPeerTls(
  files: PeerTlsFiles,
  ownHost: string,
  nowMs = Date.now(),
): PeerTlsMaterial {
  const material = {
    cert: readPem("peer-tls-cert", files.cert),
    key: readPem("peer-tls-key", files.key),
    ca: readPem("peer-tls-ca", files.ca),
  };
  const chain = parseCertificates("peer-tls-cert", files.cert, material.cert);
  const leaf = chain[0]!;
  const authorities = parseCertificates("peer-tls-ca", files.ca, material.ca);
  try {
    tls.createSecureContext({ ...material, minVersion: PEER_TLS_VERSION_MIN });
  } catch (error) {
    throw invalid(
      "peer-tls-key",
      `${files.key} does not go with the certificate ${files.cert} (${(error as Error).message}); give the private key the certificate was made for`,
      error,
    );
  }
  const issuers = [...chain.slice(1), ...authorities];
  if (!issuers.some((issuer) => leaf.checkIssued(issuer) && leaf.verify(issuer.publicKey))) {
    throw invalid(
      "peer-tls-cert",
      `${files.cert} (${leaf.subject.replaceAll("\n", ", ")}) is not signed by the CA in --peer-tls-ca ${files.ca}; peers would refuse it`,
    );
  }
  const from = Date.parse(leaf.validFrom);
  const to = Date.parse(leaf.validTo);
  if (nowMs < from || nowMs > to) {
    throw invalid(
      "peer-tls-cert",
      `${files.cert} is valid from ${leaf.validFrom} to ${leaf.validTo}, not now; renew it`,
    );
  }
  checkExtendedKeyUsage(files.cert, leaf);
  const named = isIP(ownHost) !== 0 ? leaf.checkIP(ownHost) : leaf.checkHost(ownHost);
  if (named === undefined) {
    const san = leaf.subjectAltName ?? "(no subjectAltName)";
    throw invalid(
      "peer-tls-cert",
      `${files.cert} names ${san}, but peers dial this replica at ${ownHost} (its --peers entry), and refuse a certificate that does not name it: add subjectAltName ${isIP(ownHost) !== 0 ? "IP" : "DNS"}:${ownHost}`,
    );
  }
  return material;
}

/** RFC 5280 §4.2.1.12: the purposes a replica's certificate serves, by OID and openssl name. */
const EKU_PURPOSES = [
  { oid: "1.3.6.1.5.5.7.3.1", name: "serverAuth", role: "server (its peers dial it)" },
  { oid: "1.3.6.1.5.5.7.3.2", name: "clientAuth", role: "client (it dials its peers)" },
] as const;

/**
 * A replica's certificate is presented both ways: as a TLS server to the peers that dial it and
 * as a TLS client to the peers it dials. An extendedKeyUsage extension, when present, limits the
 * certificate to the purposes it lists, and OpenSSL's certificate checks enforce it: with
 * serverAuth alone the replica starts, and then every connection it dials fails TLS at the peer
 * that checks its client certificate (with clientAuth alone, every connection dialed to it fails
 * at the dialer). Absent: any purpose. (X509Certificate.keyUsage is, despite its name, the
 * extended key usage OIDs.)
 */
function checkExtendedKeyUsage(file: string, leaf: X509Certificate): void {
  const usages = leaf.keyUsage;
  if (usages === undefined) return;
  const missing = EKU_PURPOSES.filter((purpose) => !usages.includes(purpose.oid));
  if (missing.length === 0) return;
  const names = (oids: readonly string[]) =>
    oids.map((oid) => EKU_PURPOSES.find((p) => p.oid === oid)?.name ?? oid).join(",");
  throw invalid(
    "peer-tls-cert",
    `${file} has extendedKeyUsage ${names(usages) || "(empty)"}, without ${missing.map((p) => p.name).join(" and ")}; a replica is a TLS ${missing.map((p) => p.role).join(" and a TLS ")} too, and those connections would fail: reissue it with the openssl extension extendedKeyUsage=serverAuth,clientAuth (in the -extfile, or -addext)`,
  );
}

/** The secure context of every connection, both directions: created once per transport. */
export function peerSecureContext(material: PeerTlsMaterial): tls.SecureContext {
  return tls.createSecureContext({ ...material, minVersion: PEER_TLS_VERSION_MIN });
}

/**
 * The server side of inbound connections: never listens itself; the transport hands it each
 * accepted socket (`emit("connection", socket)`, as node:tls documents) after counting it, so
 * connections in their TLS handshake are bounded like the rest.
 */
export function createPeerTlsServer(
  material: PeerTlsMaterial,
  handshakeTimeoutMs: number,
): tls.Server {
  return tls.createServer({
    ...material,
    minVersion: PEER_TLS_VERSION_MIN,
    requestCert: true,
    rejectUnauthorized: true,
    handshakeTimeout: handshakeTimeoutMs,
  });
}

/**
 * Whether the certificate a TLS socket's peer presented names `host` (RFC 6125, as
 * tls.checkServerIdentity): null if it does, else why not.
 */
export function peerCertificateProblem(socket: tls.TLSSocket, host: string): string | null {
  const certificate = socket.getPeerCertificate();
  if (certificate === null || Object.keys(certificate).length === 0) return "no certificate";
  return tls.checkServerIdentity(host, certificate)?.message ?? null;
}
