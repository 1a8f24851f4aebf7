/**
 * Certificates for the mutual-TLS tests, made with the `openssl` CLI in a temporary directory:
 * a CA, and per replica a P-256 key and a certificate the CA signed, with the SANs the replica is
 * dialed at (IP:127.0.0.1 by default) and both TLS purposes (a replica is server and client).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface CertFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

export interface CertMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer;
}

function openssl(args: readonly string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

const KEY_ARGS = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

/** A CA in `dir`: ca.crt and ca.key, named `name`. */
export function makeCa(dir: string, name = "apus-test-ca"): void {
  openssl(
    [
      "req",
      "-x509",
      ...KEY_ARGS,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.crt`,
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
}

export interface LeafOptions {
  readonly ca?: string;
  /** subjectAltName, e.g. "IP:127.0.0.1" (the default). */
  readonly san?: string;
  /** Days valid from now. */
  readonly days?: number;
  /** extendedKeyUsage, "serverAuth,clientAuth" by default; null: no such extension. */
  readonly eku?: string | null;
}

/** A replica's key and certificate signed by CA `ca`: `${name}.crt`, `${name}.key`. */
export function makeLeaf(dir: string, name: string, options: LeafOptions = {}): void {
  const ca = options.ca ?? "apus-test-ca";
  const ext = join(dir, `${name}.ext`);
  writeFileSync(
    ext,
    [
      `subjectAltName=${options.san ?? "IP:127.0.0.1"}`,
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature",
      ...(options.eku === null
        ? []
        : [`extendedKeyUsage=${options.eku ?? "serverAuth,clientAuth"}`]),
      "",
    ].join("\n"),
  );
  openssl(
    ["req", ...KEY_ARGS, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`],
    dir,
  );
  openssl(
    [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      `${ca}.crt`,
      "-CAkey",
      `${ca}.key`,
      "-CAcreateserial",
      "-out",
      `${name}.crt`,
      "-days",
      String(options.days ?? 2),
      "-extfile",
      ext,
    ],
    dir,
  );
}

/** A temporary directory of certificates; remove() deletes it. */
export class CertDir {
  readonly dir = mkdtempSync(join(tmpdir(), "apus-certs-"));

  /** The files of leaf `name` signed by `ca`. */
  files(name: string, ca = "apus-test-ca"): CertFiles {
    return {
      cert: join(this.dir, `${name}.crt`),
      key: join(this.dir, `${name}.key`),
      ca: join(this.dir, `${ca}.crt`),
    };
  }

  material(name: string, ca = "apus-test-ca"): CertMaterial {
    const files = this.files(name, ca);
    return {
      cert: readFileSync(files.cert),
      key: readFileSync(files.key),
      ca: readFileSync(files.ca),
    };
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A CA and `count` replica certificates named replica-1..count, all for 127.0.0.1. */
export function makeClusterCerts(count: number): CertDir {
  const certs = new CertDir();
  makeCa(certs.dir);
  for (let id = 1; id <= count; id++) makeLeaf(certs.dir, `replica-${id}`);
  return certs;
}
