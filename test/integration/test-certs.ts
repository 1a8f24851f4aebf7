/**
 * Certificates for the client-port TLS tests, made by the same openssl helpers as the peer
 * certificates (test/transport/peer-certs.ts): a CA, a server certificate for 127.0.0.1 and
 * localhost it signed, a client certificate it signed, and a client certificate of another CA
 * (which a replica with --tls-ca must refuse).
 */
import { join } from "node:path";
import { makeCa, makeLeaf } from "../transport/peer-certs.ts";

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

/** The certificates above, in `dir`. */
export function makeTestCerts(dir: string): TestCerts {
  makeCa(dir, "apus-test-ca");
  makeLeaf(dir, "server", { san: "IP:127.0.0.1,DNS:localhost", eku: "serverAuth" });
  makeLeaf(dir, "client", { eku: "clientAuth" });
  makeCa(dir, "stranger-ca");
  makeLeaf(dir, "stranger", { ca: "stranger-ca", eku: "clientAuth" });
  const file = (name: string) => join(dir, name);
  return {
    caCert: file("apus-test-ca.crt"),
    serverCert: file("server.crt"),
    serverKey: file("server.key"),
    clientCert: file("client.crt"),
    clientKey: file("client.key"),
    strangerCert: file("stranger.crt"),
    strangerKey: file("stranger.key"),
  };
}
