/**
 * Client authentication, unit by unit: the users file and the password file (errors name the file
 * and line), the password check, what each role may run (the embedded store's command table and
 * a redis-server COMMAND table), and the gate each command passes (client-admission.ts) with
 * Redis 7's replies.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { KvStore } from "../../src/app/kv-store.ts";
import type {
  RedisCommandSpec,
  RedisCommandTable,
} from "../../src/app/program/redis-command-table.ts";
import {
  authFileWarnings,
  ClientUsers,
  parseRequirepassFile,
  parseUsersFile,
} from "../../src/runtime/client-auth.ts";
import { ClientAdmission, type ClientSession } from "../../src/workers/client-admission.ts";
import { embeddedRights, redisTableRights, roleAllows } from "../../src/workers/client-rights.ts";

const args = (...words: string[]): Buffer[] => words.map((w) => Buffer.from(w));

describe("--users-file", () => {
  it("reads NAME ROLE PASSWORD lines, skipping comments and blank lines", () => {
    const users = parseUsersFile(
      "# who\n\nreader read-only r-pass\r\n  writer\tread-write w-pass  \nboss admin b-pass\n",
      "users.txt",
    );
    expect(users.map((u) => [u.name, u.role])).toEqual([
      ["reader", "read-only"],
      ["writer", "read-write"],
      ["boss", "admin"],
    ]);
  });

  it.each([
    [
      "reader read-only",
      "users.txt line 2: expected NAME ROLE PASSWORD",
      "ok admin p\nreader read-only",
    ],
    [
      "a password with a space",
      "users.txt line 1: expected NAME ROLE PASSWORD",
      "u admin two words",
    ],
    [
      "an unknown role",
      "users.txt line 1: the second field is not a role (read-only, read-write, admin)",
      "u root p",
    ],
    [
      "a user twice",
      "users.txt line 3: the user name is already defined on line 1",
      "u admin p\n#\nu read-only q",
    ],
    ["no user at all", "users.txt defines no user", "# nobody\n"],
  ])("refuses %s, naming the file and line", (_what, message, text) => {
    expect(() => parseUsersFile(text, "users.txt")).toThrow(message);
  });

  it("never prints a field that could be a password, whatever the order of the fields", () => {
    for (const line of [
      "alice Sesame-0123 read-only",
      "Sesame-0123 alice admin",
      "read-only alice Sesame-0123",
      "alice Sesame-0123 admin extra",
      "alice admin Sesame-0123\nalice read-only Sesame-0123",
    ]) {
      let message = "";
      try {
        parseUsersFile(line, "users.txt");
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toMatch(/^--users-file users\.txt line \d/);
      expect(message).not.toContain("Sesame");
      expect(message).not.toContain("alice");
    }
  });

  it("says when the fields look swapped (a role in the third field)", () => {
    expect(() => parseUsersFile("alice Sesame-0123 read-only", "users.txt")).toThrow(
      "the third field is a role: write NAME ROLE PASSWORD",
    );
  });

  it("refuses a password longer than PASSWORD_BYTES_MAX", () => {
    expect(() => parseUsersFile(`u admin ${"p".repeat(1025)}`, "f")).toThrow(
      "f line 1: the password is longer than 1024 bytes",
    );
  });
});

describe("--requirepass-file", () => {
  it("takes the first line, without its line ending, as the default user's password", () => {
    const user = parseRequirepassFile("s3cret\r\n", "pass");
    expect([user.name, user.role]).toEqual(["default", "admin"]);
    expect(new ClientUsers([user]).authenticate("default", Buffer.from("s3cret"))).toBe(user);
  });

  it.each([
    ["", "pass: the password is empty"],
    ["\n", "pass: the password is empty"],
    ["one\ntwo\n", "pass: holds more than one line"],
    ["with space\n", "pass line 1: the password contains a space"],
  ])("refuses %j", (text, message) => {
    expect(() => parseRequirepassFile(text, "pass")).toThrow(message);
  });
});

describe("password files open to others", () => {
  it("are named with their mode and `chmod 600` (a warning: the replica still starts)", () => {
    const dir = mkdtempSync(join(tmpdir(), "apus-auth-mode-"));
    try {
      const open = join(dir, "users");
      const closed = join(dir, "requirepass");
      writeFileSync(open, "u admin p\n");
      writeFileSync(closed, "p\n");
      chmodSync(open, 0o640);
      chmodSync(closed, 0o600);
      expect(authFileWarnings({ requirepassFile: closed, usersFile: open })).toEqual([
        `--users-file ${open} is open to group or others (mode 0640) and holds passwords; run chmod 600 ${open}`,
      ]);
      chmodSync(open, 0o604);
      expect(authFileWarnings({ requirepassFile: open, usersFile: null })[0]).toContain(
        `--requirepass-file ${open} is open to group or others (mode 0604)`,
      );
      chmodSync(open, 0o600);
      expect(authFileWarnings({ requirepassFile: closed, usersFile: open })).toEqual([]);
      // A file that cannot be read is ClientUsers.load's error to give, not a warning.
      expect(authFileWarnings({ requirepassFile: join(dir, "missing"), usersFile: null })).toEqual(
        [],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("ClientUsers.authenticate", () => {
  const users = new ClientUsers(parseUsersFile("alice read-only a-pass\nbob admin b-pass\n", "f"));

  it("returns the user for their own password only", () => {
    expect(users.authenticate(Buffer.from("alice"), Buffer.from("a-pass"))?.role).toBe("read-only");
    expect(users.authenticate(Buffer.from("alice"), Buffer.from("b-pass"))).toBeNull();
    expect(users.authenticate(Buffer.from("alice"), Buffer.from("a-pas"))).toBeNull();
    expect(users.authenticate(Buffer.from("carol"), Buffer.from("a-pass"))).toBeNull();
    expect(users.authenticate("default", Buffer.from("a-pass"))).toBeNull();
  });

  it("knows whether some user's role is limited", () => {
    expect(users.hasRestrictedUsers).toBe(true);
    expect(new ClientUsers(parseUsersFile("bob admin p", "f")).hasRestrictedUsers).toBe(false);
  });
});

describe("roles", () => {
  it("read-only runs reads; read-write also writes; admin everything", () => {
    const table = (role: "read-only" | "read-write" | "admin") =>
      (["read", "write", "admin"] as const).map((right) => roleAllows(role, right));
    expect(table("read-only")).toEqual([true, false, false]);
    expect(table("read-write")).toEqual([true, true, false]);
    expect(table("admin")).toEqual([true, true, true]);
  });

  it("the embedded store's table: kind and admin decide", () => {
    const need = (...words: string[]) => embeddedRights(args(...words));
    expect(need("GET", "k")).toEqual({ right: "read", name: "get" });
    expect(need("set", "k", "v")).toEqual({ right: "write", name: "set" });
    expect(need("PING")).toEqual({ right: "read", name: "ping" });
    expect(need("FLUSHALL")).toEqual({ right: "admin", name: "flushall" });
    expect(need("flushdb", "ASYNC")).toEqual({ right: "admin", name: "flushdb" });
    expect(need("CONFIG", "SET", "save", "")).toEqual({ right: "admin", name: "config|set" });
    expect(need("CONFIG", "RESETSTAT")).toEqual({ right: "admin", name: "config|resetstat" });
    expect(need("CONFIG", "GET", "save")).toEqual({ right: "read", name: "config|get" });
    // Unknown: the store answers it with an error and changes nothing.
    expect(need("NOSUCH", "x")).toEqual({ right: "read", name: "nosuch" });
  });

  it("a redis-server COMMAND table: flags and ACL categories decide", () => {
    const spec = (name: string, flags: string[], categories: string[]): RedisCommandSpec => ({
      name,
      arity: -1,
      flags: new Set(flags),
      firstKey: 0,
      lastKey: 0,
      keyStep: 0,
      aclCategories: new Set(categories),
      tips: new Set(),
      keySpecs: [],
      subcommands: name === "config" ? ["get", "set"] : [],
    });
    const table: RedisCommandTable = {
      commands: new Map(
        [
          spec("get", ["readonly"], ["@read", "@string"]),
          spec("set", ["write", "denyoom"], ["@write", "@string"]),
          spec("keys", ["readonly"], ["@keyspace", "@read", "@dangerous"]),
          spec("flushall", ["write"], ["@keyspace", "@write", "@dangerous"]),
          spec("swapdb", ["write"], ["@keyspace", "@write", "@dangerous"]),
          spec("debug", ["admin", "noscript"], ["@admin", "@dangerous"]),
          spec("eval", ["noscript"], ["@scripting"]),
          spec("eval_ro", ["readonly", "noscript"], ["@scripting"]),
          spec("publish", ["pubsub"], ["@pubsub"]),
          spec("config", [], []),
          spec("config|get", ["admin"], ["@admin"]),
          spec("config|set", ["admin"], ["@admin"]),
        ].map((s) => [s.name, s]),
      ),
    };
    const rights = redisTableRights(table);
    const right = (...words: string[]) => rights(args(...words)).right;
    expect(right("GET", "k")).toBe("read");
    expect(right("SET", "k", "v")).toBe("write");
    expect(right("KEYS", "*")).toBe("read");
    expect(right("FLUSHALL")).toBe("admin");
    expect(right("SWAPDB", "0", "1")).toBe("admin");
    expect(right("DEBUG", "SLEEP", "0")).toBe("admin");
    expect(right("EVAL", "return 1", "0")).toBe("write");
    expect(right("EVAL_RO", "return 1", "0")).toBe("read");
    expect(right("PUBLISH", "c", "m")).toBe("read");
    expect(rights(args("CONFIG", "SET", "save", ""))).toEqual({
      right: "admin",
      name: "config|set",
    });
    expect(right("CONFIG", "GET", "save")).toBe("read");
  });

  it("a name the COMMAND table does not know needs admin: fail closed (rename-command, a module loaded later)", () => {
    const table: RedisCommandTable = { commands: new Map() };
    const rights = redisTableRights(table);
    // redis-server --rename-command FLUSHALL WIPEALL: WIPEALL is in no table, and wipes everything.
    expect(rights(args("WIPEALL"))).toEqual({ right: "admin", name: "wipeall" });
    expect(rights(args("NOSUCH", "x"))).toEqual({ right: "admin", name: "nosuch" });
    expect(roleAllows("read-write", rights(args("WIPEALL")).right)).toBe(false);
  });
});

describe("the gate (ClientAdmission)", () => {
  const counts = { authFailures: 0, noAuth: 0, noPerm: 0, valueTooLarge: 0 };
  const counter = (name: keyof typeof counts) => ({ inc: () => counts[name]++ });
  const users = new ClientUsers([
    parseRequirepassFile("top\n", "pass"),
    ...parseUsersFile("reader read-only r-pass\nwriter read-write w-pass\n", "users"),
  ]);
  const gate = (valueBytesMax: number | null, resp3 = false, withUsers = true) =>
    new ClientAdmission({
      users: withUsers ? users : null,
      rights: embeddedRights,
      valueBytesMax,
      resp3,
      resetLogsOut: resp3,
      transactions: resp3,
      answerAuthWithoutUsers: !resp3,
      counters: {
        authFailures: counter("authFailures"),
        noAuth: counter("noAuth"),
        noPerm: counter("noPerm"),
        valueTooLarge: counter("valueTooLarge"),
      },
    });
  const reply = (admission: ReturnType<ClientAdmission["admit"]>) =>
    admission.kind === "reply" ? admission.reply.toString("latin1") : admission.args.join(" ");

  it("answers AUTH without users as redis-server with no password does (embedded store only)", () => {
    const embedded = gate(null, false, false);
    const session = embedded.session();
    expect(reply(embedded.admit(session, args("AUTH", "x")))).toMatch(
      /^-ERR AUTH <password> called without any password configured for the default user/,
    );
    expect(reply(embedded.admit(session, args("AUTH", "u", "x")))).toBe(
      "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    );
    // The default user has nopass: any password is its (user names are case-sensitive).
    expect(reply(embedded.admit(session, args("AUTH", "default", "anything")))).toBe("+OK\r\n");
    expect(reply(embedded.admit(session, args("AUTH", "DEFAULT", "anything")))).toMatch(
      /^-WRONGPASS/,
    );
    expect(reply(embedded.admit(session, args("AUTH", "default", "a", "b")))).toBe(
      "-ERR syntax error\r\n",
    );
    // HELLO goes on to the store, which answers HELLO AUTH the same way.
    expect(reply(embedded.admit(session, args("HELLO", "2", "AUTH", "default", "x")))).toBe(
      "HELLO 2 AUTH default x",
    );
    const store = new KvStore();
    const hello = (user: string) =>
      store
        .execute(args("HELLO", "2", "AUTH", user, "anything"), { nowMs: 1, info: () => "" })
        .toString("latin1");
    expect(hello("default")).toMatch(/^\*14\r\n\$6\r\nserver\r\n/);
    expect(hello("DEFAULT")).toMatch(/^-WRONGPASS/);
    expect(reply(embedded.admit(session, args("GET", "k")))).toBe("GET k");
    // A program's copy answers its own AUTH.
    expect(reply(gate(null, true, false).admit(session, args("AUTH", "x")))).toBe("AUTH x");
  });

  it("refuses everything but AUTH and HELLO before a login, and counts it", () => {
    const admission = gate(null);
    const session: ClientSession = admission.session();
    expect(reply(admission.admit(session, args("GET", "k")))).toBe(
      "-NOAUTH Authentication required.\r\n",
    );
    expect(reply(admission.admit(session, args("HELLO")))).toMatch(
      /^-NOAUTH HELLO must be called with the client already authenticated/,
    );
    expect(reply(admission.admit(session, args("AUTH")))).toBe(
      "-ERR wrong number of arguments for 'auth' command\r\n",
    );
    expect(reply(admission.admit(session, args("AUTH", "a", "b", "c")))).toBe(
      "-ERR syntax error\r\n",
    );
    expect(reply(admission.admit(session, args("auth", "wrong")))).toBe(
      "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    );
    expect(session.user).toBeNull();
    expect(reply(admission.admit(session, args("Auth", "top")))).toBe("+OK\r\n");
    expect(session.user?.name).toBe("default");
    expect(reply(admission.admit(session, args("GET", "k")))).toBe("GET k");
    expect(counts.noAuth).toBeGreaterThanOrEqual(2);
    expect(counts.authFailures).toBeGreaterThanOrEqual(1);
  });

  it("checks HELLO's AUTH here and passes HELLO on without it", () => {
    const admission = gate(null);
    const session = admission.session();
    expect(reply(admission.admit(session, args("HELLO", "2", "AUTH", "reader", "no")))).toMatch(
      /^-WRONGPASS/,
    );
    expect(reply(admission.admit(session, args("HELLO", "x")))).toBe(
      "-ERR Protocol version is not an integer or out of range\r\n",
    );
    expect(reply(admission.admit(session, args("HELLO", "4", "AUTH", "reader", "r-pass")))).toBe(
      "-NOPROTO unsupported protocol version\r\n",
    );
    // The embedded store speaks RESP2: HELLO 3 is refused before any login.
    expect(reply(admission.admit(session, args("HELLO", "3", "AUTH", "reader", "r-pass")))).toBe(
      "-NOPROTO this server does not support RESP3\r\n",
    );
    expect(session.user).toBeNull();
    expect(
      reply(
        admission.admit(session, args("hello", "2", "auth", "reader", "r-pass", "SETNAME", "n")),
      ),
    ).toBe("hello 2 SETNAME n");
    expect(session.user?.name).toBe("reader");
    expect(reply(admission.admit(session, args("HELLO", "2", "SETNAME", "a b")))).toBe(
      "-ERR Client names cannot contain spaces, newlines or special characters.\r\n",
    );
  });

  it("refuses by role with Redis's NOPERM; a failed AUTH keeps the login", () => {
    const admission = gate(null);
    const session = admission.session();
    admission.admit(session, args("AUTH", "reader", "r-pass"));
    expect(reply(admission.admit(session, args("SET", "k", "v")))).toBe(
      "-NOPERM this user has no permissions to run the 'set' command\r\n",
    );
    expect(reply(admission.admit(session, args("AUTH", "writer", "bad")))).toMatch(/^-WRONGPASS/);
    expect(session.user?.name).toBe("reader");
    admission.admit(session, args("AUTH", "writer", "w-pass"));
    expect(reply(admission.admit(session, args("SET", "k", "v")))).toBe("SET k v");
    expect(reply(admission.admit(session, args("FLUSHALL")))).toBe(
      "-NOPERM this user has no permissions to run the 'flushall' command\r\n",
    );
  });

  it("refuses an argument over --max-value-bytes with the store's own error, once logged in", () => {
    const admission = gate(8);
    const session = admission.session();
    expect(reply(admission.admit(session, args("SET", "k", "123456789")))).toMatch(/^-NOAUTH/);
    admission.admit(session, args("AUTH", "top"));
    expect(reply(admission.admit(session, args("SET", "k", "12345678")))).toBe("SET k 12345678");
    expect(reply(admission.admit(session, args("SET", "k", "123456789")))).toBe(
      "-ERR value too large (limit 8 bytes, set by --max-value-bytes)\r\n",
    );
    expect(counts.valueTooLarge).toBe(1);
  });

  it("checks only the store's value positions: long keys, fields, patterns and unknown commands go on", () => {
    const admission = gate(8, false, false);
    const session = admission.session();
    const long = "k".repeat(100);
    const before = counts.valueTooLarge;
    const admitted = (...words: string[]) => reply(admission.admit(session, args(...words)));
    const TOO_LARGE = "-ERR value too large (limit 8 bytes, set by --max-value-bytes)\r\n";
    const store = new KvStore({ valueBytesMax: 8 });
    const context = { nowMs: 1, info: () => "" };
    // Not values: the store answers these itself (a 100-byte key is a fine key).
    for (const words of [
      ["SET", long, "v"],
      ["GET", long],
      ["HSET", "h", long, "v"],
      ["KEYS", long],
      ["ECHO", long],
      ["NOSUCH", long],
      ["MSET", long, "v"],
      ["ZADD", "z", "1.000000000000", "m"],
      ["ZADD", "z", "NX", "1", "m"],
      ["LRANGE", long, "0", "-1"],
      // Wrong arity or unpaired: the store's own error, not "value too large".
      ["GETSET", "k", long, "x"],
      ["HSET", "h", "f", long, "g"],
      ["MSET", "a", long, "b"],
    ]) {
      expect(admitted(...words)).toBe(words.join(" "));
      expect(store.execute(args(...words), context).toString("latin1")).not.toBe(TOO_LARGE);
    }
    expect(counts.valueTooLarge).toBe(before);
    // Values: refused here, before the command is proposed.
    for (const words of [
      ["SET", "k", long],
      ["SET", "k", long, "EX", "10"],
      ["GETSET", "k", long],
      ["APPEND", "k", long],
      ["MSET", "a", "1", "b", long],
      ["HSET", "h", "f", "v", "g", long],
      ["HMSET", "h", "f", long],
      ["LPUSH", "l", "a", long],
      ["RPUSH", "l", long],
      ["SADD", "s", "a", long],
      ["ZADD", "z", "1", "m", "2", long],
      ["zadd", "z", "nx", "ch", "1", long],
      ["ZINCRBY", "z", "1", long],
    ]) {
      expect(admitted(...words)).toBe(TOO_LARGE);
      // The same answer the store gives: the gate refuses only what the store would.
      expect(store.execute(args(...words), context).toString("latin1")).toBe(TOO_LARGE);
    }
    expect(counts.valueTooLarge).toBe(before + 13);
  });

  describe("inside MULTI (transparent mode: the program's redis-server runs the transaction)", () => {
    const NOPERM_SET = "-NOPERM this user has no permissions to run the 'set' command\r\n";
    const loggedIn = (name: string, password: string) => {
      const admission = gate(null, true);
      const session = admission.session();
      admission.admit(session, args("AUTH", name, password));
      expect(session.user?.name).toBe(name);
      return { admission, session };
    };
    const rewritten = (admission: ReturnType<ClientAdmission["admit"]>, reply: string) => {
      expect(admission.kind).toBe("alone");
      if (admission.kind !== "alone") return "";
      return admission.rewrite(Buffer.from(reply, "latin1")).toString("latin1");
    };

    it("a refusal goes to the copy as the marker, alone, so EXEC aborts; the client gets the refusal", () => {
      const { admission, session } = loggedIn("reader", "r-pass");
      expect(reply(admission.admit(session, args("MULTI")))).toBe("MULTI");
      const refused = admission.admit(session, args("SET", "k", "v"));
      expect(refused.kind === "alone" && refused.args.join(" ")).toBe("apus-refused-in-multi");
      expect(rewritten(refused, "-ERR unknown command 'apus-refused-in-multi'\r\n")).toBe(
        NOPERM_SET,
      );
      expect(reply(admission.admit(session, args("GET", "k")))).toBe("GET k");
      // No login queued: EXEC goes as it is, and the copy answers -EXECABORT.
      expect(reply(admission.admit(session, args("EXEC")))).toBe("EXEC");
      expect(reply(admission.admit(session, args("SET", "k", "v")))).toBe(NOPERM_SET);
      // AUTH's arity is checked when queued: a refusal too.
      admission.admit(session, args("MULTI"));
      expect(rewritten(admission.admit(session, args("AUTH")), "-ERR unknown\r\n")).toBe(
        "-ERR wrong number of arguments for 'auth' command\r\n",
      );
      expect(reply(admission.admit(session, args("DISCARD")))).toBe("DISCARD");
      expect(reply(admission.admit(session, args("SET", "k", "v")))).toBe(NOPERM_SET);
    });

    it("AUTH is queued (PING in its place) and logs in when EXEC commits, with its answer in EXEC's", () => {
      const { admission, session } = loggedIn("reader", "r-pass");
      admission.admit(session, args("MULTI"));
      expect(reply(admission.admit(session, args("AUTH", "writer", "w-pass")))).toBe("PING");
      expect(session.user?.name).toBe("reader");
      expect(reply(admission.admit(session, args("GET", "k")))).toBe("GET k");
      expect(reply(admission.admit(session, args("AUTH", "writer", "wrong")))).toBe("PING");
      expect(reply(admission.admit(session, args("AUTH", "a", "b", "c")))).toBe("PING");
      expect(reply(admission.admit(session, args("WATCH", "k")))).toBe("WATCH k"); // not queued
      const exec = admission.admit(session, args("EXEC"));
      expect(exec.kind === "alone" && exec.args.join(" ")).toBe("EXEC");
      expect(rewritten(exec, "*4\r\n+PONG\r\n$1\r\nv\r\n+PONG\r\n+PONG\r\n")).toBe(
        "*4\r\n+OK\r\n$1\r\nv\r\n" +
          "-WRONGPASS invalid username-password pair or user is disabled.\r\n" +
          "-ERR syntax error\r\n",
      );
      expect(session.user?.name).toBe("writer");
      expect(reply(admission.admit(session, args("SET", "k", "v")))).toBe("SET k v");
    });

    it("nobody logs in when EXEC does not commit", () => {
      const { admission, session } = loggedIn("reader", "r-pass");
      admission.admit(session, args("MULTI"));
      admission.admit(session, args("AUTH", "writer", "w-pass"));
      const abort = "-EXECABORT Transaction discarded because of previous errors.\r\n";
      expect(rewritten(admission.admit(session, args("EXEC")), abort)).toBe(abort);
      expect(session.user?.name).toBe("reader");
      admission.admit(session, args("MULTI"));
      admission.admit(session, args("AUTH", "writer", "w-pass"));
      expect(rewritten(admission.admit(session, args("EXEC")), "*-1\r\n")).toBe("*-1\r\n");
      expect(session.user?.name).toBe("reader");
      // DISCARD forgets a queued login.
      admission.admit(session, args("MULTI"));
      admission.admit(session, args("AUTH", "writer", "w-pass"));
      expect(reply(admission.admit(session, args("DISCARD")))).toBe("DISCARD");
      expect(session.user?.name).toBe("reader");
    });

    it("HELLO AUTH is queued without its password; its reply is the copy's", () => {
      const { admission, session } = loggedIn("reader", "r-pass");
      admission.admit(session, args("MULTI"));
      expect(reply(admission.admit(session, args("HELLO", "3", "AUTH", "writer", "w-pass")))).toBe(
        "HELLO 3",
      );
      expect(reply(admission.admit(session, args("HELLO", "2", "AUTH", "writer", "no")))).toBe(
        "PING",
      );
      expect(reply(admission.admit(session, args("HELLO", "4")))).toBe("PING");
      const exec = admission.admit(session, args("EXEC"));
      expect(rewritten(exec, "*3\r\n%1\r\n+server\r\n+redis\r\n+PONG\r\n+PONG\r\n")).toBe(
        "*3\r\n%1\r\n+server\r\n+redis\r\n" +
          "-WRONGPASS invalid username-password pair or user is disabled.\r\n" +
          "-NOPROTO unsupported protocol version\r\n",
      );
      expect(session.user?.name).toBe("writer");
    });

    it("is not followed where the store has no MULTI (the embedded store)", () => {
      const admission = gate(null);
      const session = admission.session();
      admission.admit(session, args("AUTH", "reader", "r-pass"));
      admission.admit(session, args("MULTI"));
      expect(reply(admission.admit(session, args("SET", "k", "v")))).toBe(NOPERM_SET);
    });
  });

  it("RESET logs out where the program runs it (transparent mode)", () => {
    const admission = gate(null, true);
    const session = admission.session();
    admission.admit(session, args("AUTH", "top"));
    expect(reply(admission.admit(session, args("RESET")))).toBe("RESET");
    expect(session.user).toBeNull();
    expect(reply(admission.admit(session, args("GET", "k")))).toMatch(/^-NOAUTH/);
  });
});
