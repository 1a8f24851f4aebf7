/**
 * The client port's gate, one command at a time, before the command joins a request to the
 * consensus node. In order, as redis-server 7 checks them:
 *
 * 1. AUTH and HELLO … AUTH are answered here (OK, WRONGPASS); their passwords never reach the log.
 * 2. Before a connection has logged in, everything else but QUIT (the caller's) gets -NOAUTH.
 * 3. A command the user's role does not allow (client-rights.ts) gets -NOPERM.
 * 4. With the embedded store, a command with a value over --max-value-bytes gets the store's own
 *    "value too large" error here, at the replica that received it, instead of being replicated
 *    and fsynced by every replica only to be refused by each. Only the arguments the store itself
 *    checks are values (kv-store.ts hasValueOver): a long key, field or pattern, an unknown
 *    command or a wrong arity go on, and the store answers them as it would.
 *
 * A refused command never leaves this replica. The caller writes each reply in the command's
 * place in the pipeline (after the replies to the commands before it). In transparent mode over
 * RESP, inside MULTI, AUTH and HELLO are queued and a refusal aborts EXEC, as in Redis: the copy
 * gets a placeholder in their place (client-multi.ts).
 */
import {
  ERR_WRONGPASS,
  HELLO_NOPROTO_RESP3,
  type HelloRequest,
  parseHello,
} from "../app/kv-server.ts";
import { ERR_SYNTAX, isReply, valueTooLarge, wrongArity } from "../app/kv-shared.ts";
import { hasValueOver } from "../app/kv-store.ts";
import { errorReply, OK } from "../app/resp.ts";
import { type ClientUser, type ClientUsers, DEFAULT_USER } from "../runtime/client-auth.ts";
import { ClientTransaction, isNamed } from "./client-multi.ts";
import { type CommandRights, noPermission, roleAllows } from "./client-rights.ts";

/** Redis 7's reply to a command before AUTH. */
export const ERR_NOAUTH = errorReply("NOAUTH Authentication required.");
/** Redis 7.0's reply to HELLO without AUTH before the connection has logged in. */
export const ERR_NOAUTH_HELLO = errorReply(
  "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
);

/** One connection's login. */
export interface ClientSession {
  /** The user this connection logged in as; null before AUTH (only when authentication is on). */
  user: ClientUser | null;
  /** Its MULTI … EXEC, where the program's redis-server runs transactions; else null. */
  readonly multi: ClientTransaction | null;
}

/**
 * What to do with one command: send it on (perhaps rewritten), answer it here, or send it in a
 * request of its own whose reply the client gets through `rewrite` (client-multi.ts).
 */
export type Admission =
  | { readonly kind: "forward"; readonly args: Buffer[] }
  | { readonly kind: "reply"; readonly reply: Buffer }
  | {
      readonly kind: "alone";
      readonly args: Buffer[];
      readonly rewrite: (reply: Buffer) => Buffer;
    };

interface Count {
  inc(): void;
}

export interface ClientAdmissionOptions {
  /** Who may log in; null: authentication is off (AUTH and HELLO go on as they are). */
  readonly users: ClientUsers | null;
  /** The right each command needs; null when every user is an admin (nothing to look up). */
  readonly rights: CommandRights | null;
  /** The embedded store's --max-value-bytes, checked here; null in transparent mode. */
  readonly valueBytesMax: number | null;
  /** Whether HELLO 3 is served (a program's redis-server); the embedded store speaks RESP2. */
  readonly resp3: boolean;
  /** Whether RESET logs the connection out (a program's redis-server runs RESET). */
  readonly resetLogsOut: boolean;
  /** Whether MULTI … EXEC is followed (a program's redis-server runs it; client-multi.ts). */
  readonly transactions: boolean;
  /**
   * Whether AUTH without users is answered here as redis-server answers it with no password set
   * (the embedded store has no AUTH; a program's copy answers its own).
   */
  readonly answerAuthWithoutUsers: boolean;
  readonly counters: {
    readonly authFailures: Count;
    readonly noAuth: Count;
    readonly noPerm: Count;
    readonly valueTooLarge: Count;
  };
}

const forward = (args: Buffer[]): Admission => ({ kind: "forward", args });

/** redis-server 7's answers to AUTH when no password is set: clients (ioredis) recognise them. */
const ERR_AUTH_NO_PASSWORD = errorReply(
  "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
);

/**
 * AUTH as a redis-server with no password answers it: its only user, `default`, has nopass, so
 * `AUTH default <anything>` is +OK; another name is -WRONGPASS (names are case-sensitive).
 */
function authWithoutUsers(args: Buffer[]): Buffer {
  if (args.length < 2) return wrongArity("auth");
  if (args.length > 3) return ERR_SYNTAX;
  if (args.length === 2) return ERR_AUTH_NO_PASSWORD;
  return isDefaultUser(args[1]!) ? OK : ERR_WRONGPASS;
}

function isDefaultUser(name: Buffer): boolean {
  return name.byteLength === DEFAULT_USER.length && name.toString("latin1") === DEFAULT_USER;
}
const reply = (bytes: Buffer): Admission => ({ kind: "reply", reply: bytes });

export class ClientAdmission {
  private readonly options: ClientAdmissionOptions;
  private readonly setname = Buffer.from("SETNAME");

  constructor(options: ClientAdmissionOptions) {
    this.options = options;
  }

  /** Whether connections start logged out. */
  get authRequired(): boolean {
    return this.options.users !== null;
  }

  /** A new connection's session. */
  session(): ClientSession {
    return { user: null, multi: this.options.transactions ? new ClientTransaction() : null };
  }

  /** The gate for one command (`args[0]` its name); may log `session` in or out. */
  admit(session: ClientSession, args: Buffer[]): Admission {
    const decision = this.gate(session, args);
    return session.multi === null ? decision : session.multi.follow(session, decision);
  }

  private gate(session: ClientSession, args: Buffer[]): Admission {
    const { users, rights, counters } = this.options;
    const name = args[0]!;
    if (users === null && this.options.answerAuthWithoutUsers && isNamed(name, "auth"))
      return reply(authWithoutUsers(args));
    if (users !== null) {
      if (isNamed(name, "auth")) return this.auth(users, session, args);
      if (isNamed(name, "hello")) return this.hello(users, session, args);
      const user = session.user;
      if (user === null) {
        counters.noAuth.inc();
        return reply(ERR_NOAUTH);
      }
      if (rights !== null && user.role !== "admin") {
        const need = rights(args);
        if (!roleAllows(user.role, need.right)) {
          counters.noPerm.inc();
          return reply(noPermission(need.name));
        }
      }
    }
    const valueBytesMax = this.options.valueBytesMax;
    if (valueBytesMax !== null && hasValueOver(args, valueBytesMax)) {
      counters.valueTooLarge.inc();
      return reply(valueTooLarge(valueBytesMax));
    }
    if (users !== null && this.options.resetLogsOut && isNamed(name, "reset")) session.user = null;
    return forward(args);
  }

  /**
   * `AUTH password` (the default user) or `AUTH user password`, as Redis 7 answers it; inside
   * MULTI queued, answered and logged in at EXEC (client-multi.ts).
   */
  private auth(users: ClientUsers, session: ClientSession, args: Buffer[]): Admission {
    // Redis checks the arity when the command is queued: a refusal, inside MULTI too.
    if (args.length < 2) return reply(wrongArity("auth"));
    const multi = session.multi?.inMulti ? session.multi : null;
    if (args.length > 3)
      return multi === null ? reply(ERR_SYNTAX) : multi.queueLogin(ERR_SYNTAX, null);
    const user = users.authenticate(args.length === 2 ? DEFAULT_USER : args[1]!, args.at(-1)!);
    // A failed AUTH leaves a logged-in connection as it was, as in Redis.
    if (user === null) this.options.counters.authFailures.inc();
    if (multi !== null) return multi.queueLogin(user === null ? ERR_WRONGPASS : OK, user);
    if (user === null) return reply(ERR_WRONGPASS);
    session.user = user;
    return reply(OK);
  }

  /**
   * HELLO: its errors and its AUTH answered here; once logged in, HELLO goes on without AUTH (the
   * store or the program answers it, SETNAME included).
   */
  private hello(users: ClientUsers, session: ClientSession, args: Buffer[]): Admission {
    // Inside MULTI, Redis queues HELLO whatever its arguments: its answer comes with EXEC's.
    const multi = session.multi?.inMulti ? session.multi : null;
    const answer = (error: Buffer) =>
      multi === null ? reply(error) : multi.queueLogin(error, null);
    const request = parseHello(args);
    if (isReply(request)) return answer(request);
    // An unsupported version is refused before any login, as Redis refuses HELLO 4.
    if (request.protover === 3 && !this.options.resp3) return answer(HELLO_NOPROTO_RESP3);
    if (request.auth !== null) {
      const user = users.authenticate(request.auth.username, request.auth.password);
      if (user === null) {
        this.options.counters.authFailures.inc();
        return answer(ERR_WRONGPASS);
      }
      if (multi !== null) return multi.queueLogin(null, user, this.withoutAuth(args, request));
      session.user = user;
    }
    if (session.user === null) {
      this.options.counters.noAuth.inc();
      return reply(ERR_NOAUTH_HELLO);
    }
    if (request.auth === null) return forward(args);
    return forward(this.withoutAuth(args, request));
  }

  /** HELLO as the program gets it: the version and SETNAME, never the password. */
  private withoutAuth(args: Buffer[], request: HelloRequest): Buffer[] {
    const rest: Buffer[] = [args[0]!, args[1]!];
    if (request.setname !== null) rest.push(this.setname, request.setname);
    return rest;
  }
}
