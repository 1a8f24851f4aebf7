/**
 * Certificates for the TLS tests, made with the real openssl CLI in a temporary directory: a CA,
 * a server certificate for 127.0.0.1 it signed, a client certificate it signed, and a client
 * certificate of another CA (which a replica with --tls-ca must refuse). EC P-256 keys: quick.
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export interface TestCerts {
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** Signed by a CA the replica does not know. */
  readonly strangerCert: string;
  readonly strangerKey: string;
}

function openssl(args: readonly string[]): void {
  execFileSync("openssl", args, { stdio: "pipe" });
}

const KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

function makeCa(dir: string, name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  openssl([
    "req",
    "-x509",
    ...KEY,
    "-keyout",
    key,
    "-out",
    cert,
    "-days",
    "2",
    "-subj",
    `/CN=${name}`,
  ]);
  return { cert, key };
}

function makeSigned(
  dir: string,
  name: string,
  ca: { cert: string; key: string },
  extensions: string,
): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, `${extensions}\n`);
  openssl(["req", ...KEY, "-keyout", key, "-out", csr, "-subj", `/CN=${name}`]);
  openssl([
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    ca.cert,
    "-CAkey",
    ca.key,
    "-CAcreateserial",
    "-out",
    cert,
    "-days",
    "2",
    "-extfile",
    ext,
  ]);
  return { cert, key };
}

/** A CA, a server certificate for 127.0.0.1 and localhost, and two client certificates, in `dir`. */
export function makeTestCerts(dir: string): TestCerts {
  const ca = makeCa(dir, "apus-test-ca");
  const server = makeSigned(
    dir,
    "server",
    ca,
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth",
  );
  const client = makeSigned(dir, "client", ca, "extendedKeyUsage=clientAuth");
  const otherCa = makeCa(dir, "stranger-ca");
  const stranger = makeSigned(dir, "stranger", otherCa, "extendedKeyUsage=clientAuth");
  return {
    caCert: ca.cert,
    serverCert: server.cert,
    serverKey: server.key,
    clientCert: client.cert,
    clientKey: client.key,
    strangerCert: stranger.cert,
    strangerKey: stranger.key,
  };
}
