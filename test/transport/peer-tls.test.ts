import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readPeerTls } from "../../src/transport/peer-tls.ts";
import { CertDir, makeCa, makeLeaf } from "./peer-certs.ts";

describe("peer TLS material (--peer-tls-cert, --peer-tls-key, --peer-tls-ca)", () => {
  let certs: CertDir;
  beforeAll(() => {
    certs = new CertDir();
    makeCa(certs.dir);
    makeCa(certs.dir, "other-ca");
    makeLeaf(certs.dir, "replica-1");
    makeLeaf(certs.dir, "replica-2");
    makeLeaf(certs.dir, "by-name", { san: "DNS:replica-3.example" });
    makeLeaf(certs.dir, "stranger", { ca: "other-ca" });
    makeLeaf(certs.dir, "server-only", { eku: "serverAuth" });
    makeLeaf(certs.dir, "client-only", { eku: "clientAuth" });
    makeLeaf(certs.dir, "any-purpose", { eku: null });
  });
  afterAll(() => certs.remove());

  it("reads a certificate that the CA signed and that names this replica's host", () => {
    const material = readPeerTls(certs.files("replica-1"), "127.0.0.1");
    expect(material.cert.toString()).toContain("BEGIN CERTIFICATE");
    expect(readPeerTls(certs.files("by-name"), "replica-3.example").key.byteLength).toBeGreaterThan(
      0,
    );
  });

  it("a file that cannot be read: the flag and the file", () => {
    const files = { ...certs.files("replica-1"), key: join(certs.dir, "missing.key") };
    expect(() => readPeerTls(files, "127.0.0.1")).toThrow(
      /--peer-tls-key: cannot read .*missing\.key/,
    );
  });

  it("a file that is not a certificate", () => {
    const bogus = join(certs.dir, "bogus.crt");
    writeFileSync(bogus, "hello\n");
    const files = { ...certs.files("replica-1"), ca: bogus };
    expect(() => readPeerTls(files, "127.0.0.1")).toThrow(
      /--peer-tls-ca: .*bogus\.crt holds no PEM/,
    );
  });

  it("a key that belongs to another certificate", () => {
    const files = { ...certs.files("replica-1"), key: certs.files("replica-2").key };
    expect(() => readPeerTls(files, "127.0.0.1")).toThrow(/--peer-tls-key: .*does not go with/);
  });

  it("a certificate from another CA", () => {
    const files = { ...certs.files("stranger", "other-ca"), ca: certs.files("replica-1").ca };
    expect(() => readPeerTls(files, "127.0.0.1")).toThrow(
      /--peer-tls-cert: .*not signed by the CA/,
    );
  });

  it("a certificate that does not name the host peers dial", () => {
    expect(() => readPeerTls(certs.files("replica-1"), "10.1.2.3")).toThrow(
      /--peer-tls-cert: .*IP Address:127\.0\.0\.1.*at 10\.1\.2\.3.*subjectAltName IP:10\.1\.2\.3/,
    );
    expect(() => readPeerTls(certs.files("by-name"), "replica-4.example")).toThrow(/DNS:replica-4/);
  });

  it("an extendedKeyUsage without clientAuth or serverAuth: the flag, the file, the extension to add", () => {
    // Such a replica would start, and every connection that needs the missing purpose then fails.
    expect(() => readPeerTls(certs.files("server-only"), "127.0.0.1")).toThrow(
      /--peer-tls-cert: .*server-only\.crt has extendedKeyUsage serverAuth, without clientAuth;.*extendedKeyUsage=serverAuth,clientAuth/,
    );
    expect(() => readPeerTls(certs.files("client-only"), "127.0.0.1")).toThrow(
      /--peer-tls-cert: .*client-only\.crt has extendedKeyUsage clientAuth, without serverAuth;.*extendedKeyUsage=serverAuth,clientAuth/,
    );
  });

  it("no extendedKeyUsage extension: any purpose, accepted", () => {
    expect(readPeerTls(certs.files("any-purpose"), "127.0.0.1").cert.byteLength).toBeGreaterThan(0);
  });

  it("a certificate that has expired or is not yet valid", () => {
    const later = Date.now() + 30 * 24 * 3600 * 1000;
    expect(() => readPeerTls(certs.files("replica-1"), "127.0.0.1", later)).toThrow(
      /--peer-tls-cert: .*valid from .* not now; renew it/,
    );
  });
});
