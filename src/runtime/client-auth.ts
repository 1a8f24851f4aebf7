/**
 * Who may use the client port: the users of --requirepass-file (the default user) and
 * --users-file (named users with a role), read once at start, and the password check.
 *
 * Passwords are kept only as SHA-256 digests and compared with timingSafeEqual, so the time a
 * wrong password takes says nothing about the right one; an unknown user name is checked against
 * a dummy digest, so it takes as long as a known one.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { ApusError } from "../core/errors.ts";
import type { ReplicaConfig } from "./config.ts";

/** What a user may run: read-only commands; those and writes; everything (FLUSHALL, CONFIG SET…). */
export const CLIENT_ROLES = ["read-only", "read-write", "admin"] as const;
export type ClientRole = (typeof CLIENT_ROLES)[number];

/** The user `AUTH password` (one argument) logs in as: --requirepass-file's. */
export const DEFAULT_USER = "default";

/** Longest users file or password file read, bytes: a few thousand users at most. */
export const AUTH_FILE_BYTES_MAX = 1024 * 1024;
/** Longest user name and password, bytes (Redis has no limit; ours keeps AUTH small). */
export const USER_NAME_BYTES_MAX = 256;
export const PASSWORD_BYTES_MAX = 1024;

export interface ClientUser {
  readonly name: string;
  readonly role: ClientRole;
  /** SHA-256 of the password's bytes. */
  readonly digest: Buffer;
}

function digestOf(password: Uint8Array): Buffer {
  return createHash("sha256").update(password).digest();
}

/** Compared against when the user is unknown, so the answer takes as long either way. */
const DUMMY_DIGEST = digestOf(Buffer.from("no such user"));

function invalid(flag: string, message: string): ApusError {
  return new ApusError("ERR_INVALID_CONFIG", `--${flag} ${message}`);
}

/** A password or user name as the file gives it: printable, within its limit, no spaces. */
function checkToken(
  token: string,
  what: string,
  bytesMax: number,
  where: () => string,
): string | null {
  if (Buffer.byteLength(token, "utf8") > bytesMax)
    return `${where()}: the ${what} is longer than ${bytesMax} bytes`;
  if ([...token].some((c) => c <= " " || c === "\x7f"))
    return `${where()}: the ${what} contains a space or a control character`;
  return null;
}

function isRole(field: string): field is ClientRole {
  return (CLIENT_ROLES as readonly string[]).includes(field);
}

/**
 * The users of a --users-file's text: `NAME ROLE PASSWORD` per line, `#` starts a comment line,
 * blank lines are skipped. Throws ERR_INVALID_CONFIG naming `file` and the line, never a field:
 * with the fields out of order any of them may be a password, and errors reach logs.
 */
export function parseUsersFile(text: string, file: string): ClientUser[] {
  const users: ClientUser[] = [];
  const lineOf = new Map<string, number>();
  const lines = text.split(/\r?\n/);
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const where = () => `${file} line ${index + 1}`;
    const fields = line.split(/[ \t]+/);
    if (fields.length !== 3)
      throw invalid(
        "users-file",
        `${where()}: expected NAME ROLE PASSWORD (three fields, no spaces inside a password), found ${fields.length} field${fields.length === 1 ? "" : "s"}`,
      );
    const [name, role, password] = fields as [string, string, string];
    const bad =
      checkToken(name, "user name", USER_NAME_BYTES_MAX, where) ??
      checkToken(password, "password", PASSWORD_BYTES_MAX, where);
    if (bad !== null) throw invalid("users-file", bad);
    if (!isRole(role))
      throw invalid(
        "users-file",
        `${where()}: the second field is not a role (${CLIENT_ROLES.join(", ")})${isRole(password) ? "; the third field is a role: write NAME ROLE PASSWORD" : ""}`,
      );
    const earlier = lineOf.get(name);
    if (earlier !== undefined)
      throw invalid(
        "users-file",
        `${where()}: the user name is already defined on line ${earlier}`,
      );
    lineOf.set(name, index + 1);
    users.push({ name, role, digest: digestOf(Buffer.from(password, "utf8")) });
  }
  if (users.length === 0)
    throw invalid("users-file", `${file} defines no user (lines: NAME ROLE PASSWORD)`);
  return users;
}

/**
 * The default user of a --requirepass-file's text: the password is the first line without its
 * line ending (like redis.conf's requirepass, it may not be empty); an admin.
 */
export function parseRequirepassFile(text: string, file: string): ClientUser {
  const lines = text.split(/\r?\n/);
  const password = lines[0] ?? "";
  if (lines.slice(1).some((line) => line.trim() !== ""))
    throw invalid("requirepass-file", `${file}: holds more than one line; put the password alone`);
  if (password === "") throw invalid("requirepass-file", `${file}: the password is empty`);
  const bad = checkToken(password, "password", PASSWORD_BYTES_MAX, () => `${file} line 1`);
  if (bad !== null) throw invalid("requirepass-file", bad);
  return { name: DEFAULT_USER, role: "admin", digest: digestOf(Buffer.from(password, "utf8")) };
}

function readAuthFile(flag: string, file: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    throw new ApusError(
      "ERR_INVALID_CONFIG",
      `--${flag} ${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
      { cause: error },
    );
  }
  if (bytes.byteLength > AUTH_FILE_BYTES_MAX)
    throw invalid(flag, `${file}: is ${bytes.byteLength} bytes, more than ${AUTH_FILE_BYTES_MAX}`);
  return bytes.toString("utf8");
}

/**
 * A warning for each password file (--requirepass-file, --users-file) whose mode lets its group
 * or others at it (mode & 0o077), naming the file and the fix; logged at start, not refused (the
 * operator may have reasons, and the replica runs as they set it up). A file that cannot be read
 * is ClientUsers.load's error, not a warning.
 */
export function authFileWarnings(
  config: Pick<ReplicaConfig, "requirepassFile" | "usersFile">,
): string[] {
  const warnings: string[] = [];
  const files = [
    ["requirepass-file", config.requirepassFile],
    ["users-file", config.usersFile],
  ] as const;
  for (const [flag, file] of files) {
    if (file === null) continue;
    let mode: number;
    try {
      mode = statSync(file).mode & 0o777;
    } catch {
      continue;
    }
    if ((mode & 0o077) === 0) continue;
    const octal = mode.toString(8).padStart(4, "0");
    warnings.push(
      `--${flag} ${file} is open to group or others (mode ${octal}) and holds passwords; run chmod 600 ${file}`,
    );
  }
  return warnings;
}

/** The users a replica accepts; built once at start from the files the settings name. */
export class ClientUsers {
  /** By the name's bytes read as latin1, so a lookup takes the client's bytes as they came. */
  private readonly byName: ReadonlyMap<string, ClientUser>;

  constructor(users: readonly ClientUser[]) {
    const byName = new Map<string, ClientUser>();
    for (const user of users) byName.set(Buffer.from(user.name, "utf8").toString("latin1"), user);
    this.byName = byName;
  }

  /**
   * The users of --requirepass-file and --users-file, or null when neither is set (clients need
   * no password). Throws ERR_INVALID_CONFIG naming the file and line, or the protocol that has no
   * AUTH to give.
   */
  static load(config: ReplicaConfig): ClientUsers | null {
    const { requirepassFile, usersFile } = config;
    if (requirepassFile === null && usersFile === null) return null;
    if (config.app !== null && config.protocol !== "resp")
      throw invalid(
        requirepassFile === null ? "users-file" : "requirepass-file",
        `needs clients that can send AUTH, but --protocol ${config.protocol} has no AUTH command; protect the client port with client certificates (--tls-cert, --tls-key, --tls-ca) or a firewall instead`,
      );
    const users: ClientUser[] = [];
    if (requirepassFile !== null)
      users.push(
        parseRequirepassFile(readAuthFile("requirepass-file", requirepassFile), requirepassFile),
      );
    if (usersFile !== null) {
      for (const user of parseUsersFile(readAuthFile("users-file", usersFile), usersFile)) {
        if (user.name === DEFAULT_USER && requirepassFile !== null)
          throw invalid(
            "users-file",
            `${usersFile}: defines user ${DEFAULT_USER}, whose password --requirepass-file ${requirepassFile} already gives; keep one of the two`,
          );
        users.push(user);
      }
    }
    return new ClientUsers(users);
  }

  /** Whether some user may not run every command (so command rights must be known). */
  get hasRestrictedUsers(): boolean {
    for (const user of this.byName.values()) if (user.role !== "admin") return true;
    return false;
  }

  /** The user `name` (bytes, as sent) if `password` is theirs, else null; in constant time per password. */
  authenticate(name: Uint8Array | string, password: Uint8Array): ClientUser | null {
    const key =
      typeof name === "string"
        ? name
        : Buffer.from(name.buffer, name.byteOffset, name.byteLength).toString("latin1");
    const user = this.byName.get(key);
    const matches = timingSafeEqual(digestOf(password), user?.digest ?? DUMMY_DIGEST);
    return matches && user !== undefined ? user : null;
  }
}
