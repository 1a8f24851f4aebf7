import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  parseSecretFile,
  readPeerSecrets,
  secretFileWarning,
} from "../../src/runtime/peer-secrets.ts";

const dir = mkdtempSync(join(tmpdir(), "apus-secrets-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const peers = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ host: "127.0.0.1", port: 7000 + i }));
const text = (bytes: Uint8Array) => Buffer.from(bytes).toString("latin1");
const KEY_A = "a".repeat(64);
const KEY_B = "b".repeat(64);

describe("readPeerSecrets: no built-in key", () => {
  it("refuses a multi-replica cluster without --secret-file, saying what to do", () => {
    expect(() => readPeerSecrets({ secretFile: null, peers: peers(3) })).toThrow(
      /a cluster of 3 replicas needs a shared key.*openssl rand -hex 32 > cluster\.secret.*--secret-file cluster\.secret.*npm start makes one/,
    );
  });

  it("gives a single replica a random key of its own per run", () => {
    const one = readPeerSecrets({ secretFile: null, peers: peers(1) });
    const two = readPeerSecrets({ secretFile: null, peers: peers(1) });
    expect(one.length).toBe(1);
    expect(one[0]!.byteLength).toBe(32);
    expect(text(one[0]!)).not.toBe(text(two[0]!));
  });

  it("reads one key, or two during a roll, first line first; blank lines and spaces ignored", () => {
    const file = join(dir, "two.secret");
    writeFileSync(file, `  ${KEY_A}  \n\n${KEY_B}\r\n\n`);
    expect(readPeerSecrets({ secretFile: file, peers: peers(3) }).map(text)).toEqual([
      KEY_A,
      KEY_B,
    ]);
    writeFileSync(file, `${KEY_A}\n`);
    expect(readPeerSecrets({ secretFile: file, peers: peers(3) }).map(text)).toEqual([KEY_A]);
  });

  it("refuses a missing file, an empty one, three keys and a short key, naming the file", () => {
    const missing = join(dir, "missing.secret");
    expect(() => readPeerSecrets({ secretFile: missing, peers: peers(3) })).toThrow(
      new RegExp(`--secret-file: cannot read ${missing}`),
    );
    const bytes = (s: string) => Buffer.from(s, "latin1");
    expect(() => parseSecretFile("f.secret", bytes("\n \n"))).toThrow(
      /--secret-file: f\.secret holds no key; e\.g\. openssl rand -hex 32 > f\.secret/,
    );
    expect(() => parseSecretFile("f.secret", bytes(`${KEY_A}\n${KEY_B}\n${KEY_A}\n`))).toThrow(
      /f\.secret holds 3 keys; it holds one, or 2 during a key roll/,
    );
    expect(() => parseSecretFile("f.secret", bytes(`${KEY_A}\nshort\n`))).toThrow(
      /line 2 of f\.secret holds 5 bytes; a key needs at least 16/,
    );
  });
});

describe("secretFileWarning: a secret file open to others", () => {
  it("is named with its mode and `chmod 600` (a warning: the replica still starts)", () => {
    const file = join(dir, "open.secret");
    writeFileSync(file, `${KEY_A}\n`);
    chmodSync(file, 0o640);
    expect(secretFileWarning({ secretFile: file })).toBe(
      `--secret-file ${file} is open to group or others (mode 0640) and holds the cluster key; run chmod 600 ${file}`,
    );
    chmodSync(file, 0o604);
    expect(secretFileWarning({ secretFile: file })).toContain("(mode 0604)");
    expect(readPeerSecrets({ secretFile: file, peers: peers(3) }).length).toBe(1);
    chmodSync(file, 0o600);
    expect(secretFileWarning({ secretFile: file })).toBeNull();
    chmodSync(file, 0o400);
    expect(secretFileWarning({ secretFile: file })).toBeNull();
    // No file, or one that cannot be read: readPeerSecrets' business, not a warning.
    expect(secretFileWarning({ secretFile: null })).toBeNull();
    expect(secretFileWarning({ secretFile: join(dir, "missing") })).toBeNull();
  });
});
