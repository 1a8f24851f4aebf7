/**
 * Transparent mode with an unmodified memcached (`--app "memcached …" --protocol memcache`):
 * three replicas, each running its own copy, driven over raw sockets in memcached's text
 * protocol. Replies are compared byte for byte with a bare memcached given the same commands on one
 * connection; afterwards every copy (read on its own port) holds the same values and the replicas'
 * output digests agree, also for a leader that was killed with kill -9 and rebuilt its copy from its
 * log.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, sleep, TestCluster } from "./cluster-harness.ts";
import { runs, SocketReader } from "./socket-reader.ts";

const asRoot = process.getuid?.() === 0;
const MEMCACHED = `memcached -p {port} -l {host} -U 0${asRoot ? " -u root" : ""}`;

type ReplyKind = "line" | "values" | "meta" | "fenced";

/** One connection speaking memcached's text protocol; reads whole replies of a known kind. */
class TextConnection {
  private readonly reader: SocketReader;

  private constructor(reader: SocketReader) {
    this.reader = reader;
  }

  static async open(port: number): Promise<TextConnection> {
    return new TextConnection(await SocketReader.open(port));
  }

  write(bytes: string | Buffer): void {
    this.reader.write(bytes);
  }

  close(): void {
    this.reader.close();
  }

  /** The next line, CRLF included. */
  line(): Promise<Buffer> {
    return this.reader.line("\r\n");
  }

  bytes(n: number): Promise<Buffer> {
    return this.reader.bytes(n);
  }

  /** One whole reply: a line; VALUE blocks to END; a meta line and its VA block; all up to MN. */
  async reply(kind: ReplyKind): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (;;) {
      const line = await this.line();
      parts.push(line);
      const text = line.toString("latin1");
      if (kind === "values" && text.startsWith("VALUE ")) {
        parts.push(await this.bytes(Number(text.trim().split(" ")[3]) + 2));
        continue;
      }
      if ((kind === "meta" || kind === "fenced") && text.startsWith("VA ")) {
        parts.push(await this.bytes(Number(text.trim().split(" ")[1]) + 2));
        if (kind === "meta") break;
        continue;
      }
      // END, an error, or anything unexpected ends a retrieval reply (the caller compares it).
      if (kind !== "fenced" || text === "MN\r\n") break;
    }
    return Buffer.concat(parts);
  }

  /** Send a request and read its reply; "fenced" requests are followed by `mn` here. */
  async ask(request: string | Buffer, kind: ReplyKind): Promise<string> {
    this.write(request);
    if (kind === "fenced") this.write("mn\r\n");
    return (await this.reply(kind)).toString("latin1");
  }
}

async function connectWhenUp(port: number, timeoutMs = 20_000): Promise<TextConnection> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await TextConnection.open(port);
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(50);
    }
  }
}

interface ProgramView {
  appliedSteps: number;
  digests: { steps: number; digest: string }[];
  program: { pid: number | null; port: number | null; state: string };
}

describe("memcached replicated unmodified (--protocol memcache)", () => {
  let cluster: TestCluster;
  let bare: ChildProcess;
  let reference: TextConnection;
  const connections: TextConnection[] = [];
  /** Every copy's pid seen: a replica killed with kill -9 leaves its copy running. */
  const copyPids = new Set<number>();
  /** Keys given the same commands on the cluster and on the bare memcached. */
  const mirroredKeys = new Set<string>();
  /** Keys the quiet-request test wrote: compared between copies only. */
  const quietKeys = new Set<string>();
  let referencePort = 0;
  /** Keys written only on the cluster, with the value each must hold. */
  const expected = new Map<string, string>();

  async function app(id: number): Promise<ProgramView | null> {
    const status = await cluster.status(id);
    if (status === null) return null;
    const view = status.app as unknown as ProgramView;
    if (view.program?.pid != null) copyPids.add(view.program.pid);
    return view;
  }

  /** `request` on cluster connection `c` and on the bare memcached: the same reply, returned. */
  async function both(c: number, request: string, kind: ReplyKind): Promise<string> {
    const [got, want] = await Promise.all([
      connections[c]!.ask(request, kind),
      reference.ask(request, kind),
    ]);
    expect(got, `${JSON.stringify(request)} on connection ${c}`).toBe(want);
    return got;
  }

  /** Wait until the replicas `ids` have applied the same number of steps, stable for a while. */
  async function settled(ids: readonly number[]): Promise<Map<number, ProgramView>> {
    const deadline = Date.now() + 60_000;
    let last = "";
    while (Date.now() < deadline) {
      const views = await Promise.all(ids.map((id) => app(id)));
      const steps = views.map((v) => v?.appliedSteps ?? -1);
      const now = steps.join(",");
      if (steps.every((s) => s === steps[0] && s >= 0) && now === last) {
        return new Map(ids.map((id, i) => [id, views[i]!]));
      }
      last = now;
      await sleep(300);
    }
    throw new Error(
      `replicas ${ids.join(",")} did not settle: steps ${last}\n${cluster.outputs()}`,
    );
  }

  /** `get` of every key on each copy's own port: byte-equal on all copies; returns one's replies. */
  async function copiesAgree(ids: readonly number[]): Promise<Map<string, string>> {
    const views = await settled(ids);
    const keys = [...mirroredKeys, ...quietKeys, ...expected.keys()].sort();
    const perCopy: string[][] = [];
    for (const id of ids) {
      const port = views.get(id)!.program.port!;
      const copy = await TextConnection.open(port);
      const replies: string[] = [];
      for (let i = 0; i < keys.length; i += 40) {
        // gets: the cas uniques must agree too (every copy ran the same stores in the same order).
        replies.push(await copy.ask(`gets ${keys.slice(i, i + 40).join(" ")}\r\n`, "values"));
      }
      copy.close();
      perCopy.push(replies);
    }
    for (let i = 1; i < perCopy.length; i++) expect(perCopy[i]).toEqual(perCopy[0]);
    // The values themselves: parsed from the first copy.
    const values = new Map<string, string>();
    for (const reply of perCopy[0]!) {
      let rest = reply;
      for (;;) {
        const m = /^VALUE (\S+) \d+ (\d+) \d+\r\n/.exec(rest);
        if (m === null) break;
        const from = m[0].length;
        values.set(m[1]!, rest.slice(from, from + Number(m[2])));
        rest = rest.slice(from + Number(m[2]) + 2);
      }
      expect(rest).toBe("END\r\n");
    }
    for (const [key, value] of expected) expect(values.get(key), key).toBe(value);
    const mirrored = [...mirroredKeys].sort();
    for (let i = 0; i < mirrored.length; i += 40) {
      const line = `get ${mirrored.slice(i, i + 40).join(" ")}\r\n`;
      const want = await reference.ask(line, "values");
      const got = [...want.matchAll(/^VALUE (\S+) \d+ (\d+)\r\n/gm)].map((m) => m[1]);
      for (const key of mirrored.slice(i, i + 40)) {
        expect(values.has(key), `${key} on the copies vs bare memcached`).toBe(got.includes(key));
      }
      const copy = await TextConnection.open(views.get(ids[0]!)!.program.port!);
      expect(await copy.ask(line, "values")).toBe(want);
      copy.close();
    }
    return values;
  }

  /** The latest output digest of each replica: present and equal (they applied the same steps). */
  async function digestsAgree(ids: readonly number[]): Promise<void> {
    const views = await settled(ids);
    const latest = ids.map((id) => views.get(id)!.digests.at(-1));
    expect(latest[0], "a digest after >= 1000 applied steps").toBeDefined();
    for (const digest of latest) expect(digest).toEqual(latest[0]);
    // Digests taken at the same step count on several replicas are equal too.
    const byStep = new Map<number, string>();
    for (const id of ids) {
      for (const { steps, digest } of views.get(id)!.digests) {
        const seen = byStep.get(steps);
        if (seen === undefined) byStep.set(steps, digest);
        else expect(digest, `digest at step ${steps}`).toBe(seen);
      }
    }
  }

  beforeAll(async () => {
    const barePort = await freePort();
    referencePort = barePort;
    bare = spawn(
      "memcached",
      ["-p", String(barePort), "-l", "127.0.0.1", "-U", "0", ...(asRoot ? ["-u", "root"] : [])],
      { stdio: "ignore" },
    );
    reference = await connectWhenUp(barePort);
    cluster = await TestCluster.start({
      replicas: 3,
      extraArgs: ["--app", MEMCACHED, "--protocol", "memcache"],
    });
    await cluster.waitForLeader(60_000);
    await cluster.waitForAllUp(60_000);
    // Six connections, two on each replica (followers forward to the leader).
    for (let i = 0; i < 6; i++) {
      connections.push(await TextConnection.open(cluster.replica((i % 3) + 1).clientPort));
    }
    for (const r of cluster.replicas) await app(r.id);
  }, 120_000);

  afterAll(async () => {
    for (const c of connections) c.close();
    reference?.close();
    bare?.kill("SIGKILL");
    if (cluster !== undefined) {
      for (const r of cluster.replicas) await app(r.id).catch(() => null);
      await cluster.stop();
    }
    // Each copy dies with its replica (kill -9 included): none may be left running.
    const deadline = Date.now() + 10_000;
    while ([...copyPids].some((pid) => runs(pid, "memcached")) && Date.now() < deadline) {
      await sleep(100);
    }
    const left = [...copyPids].filter((pid) => runs(pid, "memcached"));
    for (const pid of left) process.kill(pid, "SIGKILL");
    expect(left, "copies of memcached left running after the replicas ended").toEqual([]);
  }, 60_000);

  it("answers every command as a bare memcached does, from connections on every replica", async () => {
    const mirror = (...keys: string[]) => {
      for (const k of keys) mirroredKeys.add(k);
    };
    mirror("k1", "k2", "k3", "k4", "num", "weird", "m1", "m2", "mc", "gone");
    expect(await both(0, "set k1 5 0 3\r\none\r\n", "line")).toBe("STORED\r\n");
    expect(await both(1, "add k1 0 0 1\r\nx\r\n", "line")).toBe("NOT_STORED\r\n");
    expect(await both(2, "add k2 7 0 3\r\ntwo\r\n", "line")).toBe("STORED\r\n");
    expect(await both(3, "replace k3 0 0 1\r\nx\r\n", "line")).toBe("NOT_STORED\r\n");
    expect(await both(4, "replace k2 9 0 4\r\nTWO!\r\n", "line")).toBe("STORED\r\n");
    expect(await both(5, "append k1 0 0 4\r\n-end\r\n", "line")).toBe("STORED\r\n");
    expect(await both(0, "prepend k1 0 0 6\r\nstart-\r\n", "line")).toBe("STORED\r\n");
    expect(await both(1, "append k3 0 0 1\r\nx\r\n", "line")).toBe("NOT_STORED\r\n");
    expect(await both(2, "get k1 k3 k2\r\n", "values")).toBe(
      "VALUE k1 5 13\r\nstart-one-end\r\nVALUE k2 9 4\r\nTWO!\r\nEND\r\n",
    );

    // cas with the unique gets returned, on another connection (another replica).
    const gets = await both(3, "gets k1\r\n", "values");
    const unique = /^VALUE k1 5 13 (\d+)\r\n/.exec(gets)![1]!;
    expect(await both(4, `cas k1 1 0 3 ${unique}\r\nnew\r\n`, "line")).toBe("STORED\r\n");
    expect(await both(5, `cas k1 1 0 3 ${unique}\r\nold\r\n`, "line")).toBe("EXISTS\r\n");
    expect(await both(0, "cas k4 0 0 1 1\r\nx\r\n", "line")).toBe("NOT_FOUND\r\n");

    expect(await both(1, "set num 0 0 2\r\n10\r\n", "line")).toBe("STORED\r\n");
    expect(await both(2, "incr num 5\r\n", "line")).toBe("15\r\n");
    expect(await both(3, "decr num 20\r\n", "line")).toBe("0\r\n");
    expect(await both(4, "incr num 18446744073709551615\r\n", "line")).toBe(
      "18446744073709551615\r\n",
    );
    expect(await both(5, "incr num 2\r\n", "line")).toBe("1\r\n"); // wraps
    expect(await both(0, "incr k1 1\r\n", "line")).toMatch(/^CLIENT_ERROR /);
    expect(await both(1, "incr missing 1\r\n", "line")).toBe("NOT_FOUND\r\n");
    expect(await both(2, "touch k2 86400\r\n", "line")).toBe("TOUCHED\r\n");
    expect(await both(3, "touch missing 10\r\n", "line")).toBe("NOT_FOUND\r\n");
    expect(await both(4, "set gone 0 0 1\r\ng\r\n", "line")).toBe("STORED\r\n");
    expect(await both(5, "delete gone\r\n", "line")).toBe("DELETED\r\n");
    expect(await both(0, "delete gone\r\n", "line")).toBe("NOT_FOUND\r\n");

    // A value holding a retrieval reply's terminator, read back in a multi-get with a miss.
    const weird = "a\r\nEND\r\nVALUE x 0 1\r\nz\r\nEND\r\n";
    expect(await both(1, `set weird 3 0 ${weird.length}\r\n${weird}\r\n`, "line")).toBe(
      "STORED\r\n",
    );
    expect(await both(2, "get nothing weird k2 nothing2\r\n", "values")).toBe(
      `VALUE weird 3 ${weird.length}\r\n${weird}\r\nVALUE k2 9 4\r\nTWO!\r\nEND\r\n`,
    );

    // Meta commands.
    expect(await both(3, "ms m1 5 F7 T0\r\nhello\r\n", "meta")).toBe("HD\r\n");
    expect(await both(4, "mg m1 v f s k\r\n", "meta")).toBe("VA 5 f7 s5 km1\r\nhello\r\n");
    expect(await both(5, "mg missing v\r\n", "meta")).toBe("EN\r\n");
    expect(await both(2, `ms m2 ${weird.length} MS\r\n${weird}\r\n`, "meta")).toBe("HD\r\n");
    expect(await both(3, "ms m2 1 MA\r\n!\r\n", "meta")).toBe("HD\r\n");
    expect(await both(4, "ms m2 1 ME\r\n!\r\n", "meta")).toBe("NS\r\n");
    expect(await both(5, "mg m2 v\r\n", "meta")).toBe(`VA ${weird.length + 1}\r\n${weird}!\r\n`);
    expect(await both(0, "ma mc\r\n", "meta")).toBe("NF\r\n");
    expect(await both(1, "ma mc N0 J13 v\r\n", "meta")).toBe("VA 2\r\n13\r\n");
    expect(await both(2, "ma mc D7 v\r\n", "meta")).toBe("VA 2\r\n20\r\n");
    expect(await both(3, "ma mc MD D25\r\n", "meta")).toBe("HD\r\n");
    expect(await both(4, "mg mc v c\r\n", "meta")).toMatch(/^VA 2 c\d+\r\n0 \r\n$/);
    expect(await both(5, "md m1\r\n", "meta")).toBe("HD\r\n");
    expect(await both(0, "md m1\r\n", "meta")).toBe("NF\r\n");
    expect(await both(1, "mn\r\n", "line")).toBe("MN\r\n");
    // memcached decrements in place, padding with spaces ("0 "), as the copies do.
    expect(await both(2, "get k1 m1 m2 mc\r\n", "values")).toBe(
      `VALUE k1 1 3\r\nnew\r\nVALUE m2 0 ${weird.length + 1}\r\n${weird}!\r\nVALUE mc 0 2\r\n0 \r\nEND\r\n`,
    );
    // Refused by the codec with memcached's own answer.
    expect(await both(3, "bogus k1\r\n", "line")).toBe("ERROR\r\n");
  });

  // A quiet request travels in the log with the `mn` fence the connection side added; the apply
  // loop cuts it again and must send one fence, not two (once a bug: replies fell out of step).
  it("answers quiet requests (noreply, meta q) as a bare memcached does", async () => {
    const quiet = [
      await TextConnection.open(cluster.replica(1).clientPort),
      await TextConnection.open(cluster.replica(2).clientPort),
    ];
    const bareQuiet = await TextConnection.open(referencePort);
    const ask = async (c: number, request: string, kind: ReplyKind) => {
      const [got, want] = await Promise.all([
        quiet[c]!.ask(request, kind),
        bareQuiet.ask(request, kind),
      ]);
      expect(got, `${JSON.stringify(request)} on quiet connection ${c}`).toBe(want);
      return got;
    };
    for (const k of ["q:1", "q:2", "q:m"]) quietKeys.add(k);
    try {
      // noreply: nothing comes back (the `mn` the test sends answers MN); errors still do.
      expect(await ask(0, "set q:1 0 0 2 noreply\r\nn1\r\n", "fenced")).toBe("MN\r\n");
      expect(await ask(0, "get q:1\r\n", "values")).toBe("VALUE q:1 0 2\r\nn1\r\nEND\r\n");
      expect(await ask(1, "add q:1 0 0 1 noreply\r\nx\r\n", "fenced")).toBe("MN\r\n");
      expect(await ask(0, "set q:2 0 0 3 noreply\r\nn\r\n\r\n", "fenced")).toBe("MN\r\n");
      expect(await ask(1, "incr q:1 1 noreply\r\n", "fenced")).toMatch(/MN\r\n$/);
      expect(await ask(0, "delete q:2 noreply\r\n", "fenced")).toBe("MN\r\n");
      expect(await ask(1, "get q:1 q:2\r\n", "values")).toBe("VALUE q:1 0 2\r\nn1\r\nEND\r\n");
      // Meta q: a miss, a success without a value and HD are hidden; a value is not.
      expect(await ask(0, "ms q:m 2 q\r\nhi\r\n", "fenced")).toBe("MN\r\n");
      expect(await ask(1, "mg q:none v q\r\n", "fenced")).toBe("MN\r\n");
      expect(await ask(0, "mg q:m v q O42\r\n", "fenced")).toBe("VA 2 O42\r\nhi\r\nMN\r\n");
      expect(await ask(1, "ma q:none q\r\n", "fenced")).toMatch(/MN\r\n$/);
      expect(await ask(0, "md q:m q\r\n", "fenced")).toBe("MN\r\n");
      expect(await ask(1, "md q:m q\r\n", "fenced")).toMatch(/MN\r\n$/);
      expect(await ask(0, "mn\r\n", "line")).toBe("MN\r\n");
      expect(await ask(1, "get q:1 q:m\r\n", "values")).toBe("VALUE q:1 0 2\r\nn1\r\nEND\r\n");
    } finally {
      for (const c of quiet) c.close();
      bareQuiet.close();
    }
  });

  it("keeps every copy identical under concurrent pipelined writes (>= 1000 steps)", async () => {
    expect(await connections[0]!.ask("set shared 0 0 1\r\n0\r\n", "line")).toBe("STORED\r\n");
    const perConnection = 220;
    const batch = 20;
    const incrs: number[][] = await Promise.all(
      connections.map(async (c, ci) => {
        const seen: number[] = [];
        for (let j = 0; j < perConnection; j += batch) {
          const kinds: ReplyKind[] = [];
          let request = "";
          for (let b = j; b < j + batch; b++) {
            if (b % 4 === 3) {
              request += "incr shared 1\r\n";
              kinds.push("line");
            } else {
              const key = `bulk:${ci}:${b}`;
              const value = `value-${ci}-${b}-${"x".repeat(b % 17)}`;
              request += `set ${key} ${b} 0 ${value.length}\r\n${value}\r\n`;
              expected.set(key, value);
              kinds.push("line");
            }
          }
          c.write(request);
          for (let b = j; b < j + batch; b++) {
            const reply = (await c.reply(kinds[b - j]!)).toString("latin1");
            if (b % 4 === 3) seen.push(Number(reply.trim()));
            else expect(reply).toBe("STORED\r\n");
          }
        }
        return seen;
      }),
    );
    // Every incr ran once, in one order: its answers are 1..n.
    const all = incrs.flat().sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
    expected.set("shared", String(all.length));
    await copiesAgree([1, 2, 3]);
    await digestsAgree([1, 2, 3]);
  });

  it("rebuilds a leader killed with kill -9 from its log: its copy matches the others", async () => {
    const leader = await cluster.waitForLeader(60_000);
    const copyBefore = (await app(leader))!.program.pid!;
    await cluster.kill(leader);
    const survivors = cluster.replicas.map((r) => r.id).filter((id) => id !== leader);
    await cluster.waitForLeader(60_000, [leader]);
    for (let i = 0; i < connections.length; i++) {
      if ((i % 3) + 1 === leader) {
        connections[i]!.close();
        connections[i] = await TextConnection.open(cluster.replica(survivors[i % 2]!).clientPort);
      }
    }
    // Writes through the survivors while it is down, compared with the bare memcached.
    for (let i = 0; i < 60; i++) {
      const c = i % connections.length;
      const key = `after:${i % 20}`;
      mirroredKeys.add(key);
      if (i < 20) await both(c, `set ${key} 0 0 2\r\n${i % 10}${i % 10}\r\n`, "line");
      else if (i < 40)
        expect(await both(c, `append ${key} 0 0 1\r\n+\r\n`, "line")).toBe("STORED\r\n");
      else if (i % 3 === 0) await both(c, `delete ${key}\r\n`, "line");
      else await both(c, `ms ${key} 3 MP\r\n<<<\r\n`, "meta");
    }
    const shared = Number(expected.get("shared")) + 1;
    expect(await connections[0]!.ask("incr shared 1\r\n", "line")).toBe(`${shared}\r\n`);
    expected.set("shared", String(shared));

    cluster.launch(leader);
    await cluster.waitForAllUp(60_000);
    const deadline = Date.now() + 120_000;
    for (;;) {
      const views = await Promise.all([leader, ...survivors].map((id) => app(id)));
      const steps = views.map((v) => v?.appliedSteps ?? -1);
      if (views[0]?.program.state === "running" && steps[0]! >= Math.max(...steps.slice(1))) break;
      if (Date.now() > deadline) {
        throw new Error(`replica ${leader} did not catch up: ${steps}\n${cluster.outputs()}`);
      }
      await sleep(300);
    }
    const relaunched = (await app(leader))!;
    expect(relaunched.program.pid).not.toBe(copyBefore);
    // The copy the killed replica left behind was stopped when it came back.
    expect(runs(copyBefore, "memcached")).toBe(false);
    await copiesAgree([1, 2, 3]);
    await digestsAgree([1, 2, 3]);
  });
});
