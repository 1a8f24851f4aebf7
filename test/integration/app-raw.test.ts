/**
 * Transparent mode with a protocol apus-smr does not know (`--protocol raw`): three replicas,
 * each running its own copy of a tiny line-based key-value server written by the test. Requests
 * go one line at a time (raw mode forwards chunks as they arrive, so a client waits for each
 * reply), from connections on every replica; afterwards every copy, read on its own port, answers
 * GET alike for every key.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sleep, TestCluster } from "./cluster-harness.ts";
import { runs, SocketReader } from "./socket-reader.ts";

/** SET k v -> OK; GET k -> the value or NIL; INCR k -> the number. One reply line per line. */
const LINE_SERVER = `import { createServer } from "node:net";
const values = new Map();
function answer(line) {
  const [command, key, ...rest] = line.split(" ");
  if (command === "SET" && key !== undefined) {
    values.set(key, rest.join(" "));
    return "OK";
  }
  if (command === "GET" && key !== undefined) return values.get(key) ?? "NIL";
  if (command === "INCR" && key !== undefined) {
    const n = Number(values.get(key) ?? "0") + 1;
    values.set(key, String(n));
    return String(n);
  }
  return "ERR unknown command";
}
createServer((socket) => {
  let pending = "";
  socket.on("error", () => {});
  socket.on("data", (chunk) => {
    pending += chunk.toString("utf8");
    for (let nl = pending.indexOf("\\n"); nl !== -1; nl = pending.indexOf("\\n")) {
      const line = pending.slice(0, nl).replace(/\\r$/, "");
      pending = pending.slice(nl + 1);
      socket.write(answer(line) + "\\n");
    }
  });
}).listen(Number(process.argv[2]), "127.0.0.1");
`;

/** A line client: one request line out, one reply line back. */
class LineConnection {
  private readonly reader: SocketReader;

  private constructor(reader: SocketReader) {
    this.reader = reader;
  }

  static async open(port: number): Promise<LineConnection> {
    return new LineConnection(await SocketReader.open(port));
  }

  /** Sends `line` and waits for one reply line. */
  async ask(line: string): Promise<string> {
    expect(this.reader.pending, `bytes nobody asked for before ${JSON.stringify(line)}`).toBe(0);
    this.reader.write(`${line}\n`);
    return (await this.reader.line("\n")).toString("utf8").slice(0, -1);
  }

  close(): void {
    this.reader.close();
  }
}

interface ProgramView {
  appliedSteps: number;
  program: { pid: number | null; port: number | null; state: string };
}

describe("a line-based TCP server replicated unmodified (--protocol raw)", () => {
  let cluster: TestCluster;
  let dir: string;
  let server: string;
  const connections: LineConnection[] = [];
  const copyPids = new Set<number>();
  /** What every key must hold, from the replies the clients got. */
  const model = new Map<string, string>();

  async function app(id: number): Promise<ProgramView | null> {
    const status = await cluster.status(id);
    if (status === null) return null;
    const view = status.app as unknown as ProgramView;
    if (view.program?.pid != null) copyPids.add(view.program.pid);
    return view;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "apus-raw-"));
    server = join(dir, "line-server.mjs");
    writeFileSync(server, LINE_SERVER);
    cluster = await TestCluster.start({
      replicas: 3,
      extraArgs: ["--app", `${process.execPath} ${server} {port}`, "--protocol", "raw"],
    });
    await cluster.waitForLeader(60_000);
    await cluster.waitForAllUp(60_000);
    for (let i = 0; i < 6; i++) {
      connections.push(await LineConnection.open(cluster.replica((i % 3) + 1).clientPort));
    }
    for (const r of cluster.replicas) await app(r.id);
  }, 120_000);

  afterAll(async () => {
    for (const c of connections) c.close();
    if (cluster !== undefined) {
      for (const r of cluster.replicas) await app(r.id).catch(() => null);
      await cluster.stop();
    }
    // Each copy dies with its replica: none may be left running.
    const deadline = Date.now() + 10_000;
    while ([...copyPids].some((pid) => runs(pid, server)) && Date.now() < deadline) {
      await sleep(100);
    }
    const left = [...copyPids].filter((pid) => runs(pid, server));
    for (const pid of left) process.kill(pid, "SIGKILL");
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    expect(left, "copies of the line server left running after the replicas ended").toEqual([]);
  }, 60_000);

  it("answers each line as the program does, from connections on every replica", async () => {
    for (let i = 0; i < 60; i++) {
      const c = connections[i % connections.length]!;
      const key = `key-${i % 7}`;
      if (i % 3 === 0) {
        const value = `v${i} with spaces`;
        expect(await c.ask(`SET ${key} ${value}`)).toBe("OK");
        model.set(key, value);
      } else if (i % 3 === 1) {
        expect(await c.ask(`GET ${key}`)).toBe(model.get(key) ?? "NIL");
      } else {
        const n = Number(model.get(`n-${key}`) ?? "0") + 1;
        expect(await c.ask(`INCR n-${key}`)).toBe(String(n));
        model.set(`n-${key}`, String(n));
      }
    }
    expect(await connections[1]!.ask("GET never-set")).toBe("NIL");
    expect(await connections[2]!.ask("HELLO")).toBe("ERR unknown command");
  });

  it("runs every INCR once under concurrent clients on all replicas", async () => {
    const perConnection = 25;
    const seen = await Promise.all(
      connections.map(async (c, ci) => {
        const replies: number[] = [];
        for (let j = 0; j < perConnection; j++) {
          replies.push(Number(await c.ask("INCR shared")));
          const key = `own-${ci}`;
          expect(await c.ask(`SET ${key} ${j}`)).toBe("OK");
          model.set(key, String(j));
        }
        return replies;
      }),
    );
    const all = seen.flat().sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
    model.set("shared", String(all.length));
  });

  it("leaves every copy answering GET alike for every key", async () => {
    // Wait until the replicas applied the same steps, stable across two looks.
    const ids = cluster.replicas.map((r) => r.id);
    const deadline = Date.now() + 60_000;
    let views: (ProgramView | null)[] = [];
    let last = "";
    for (;;) {
      views = await Promise.all(ids.map((id) => app(id)));
      const steps = views.map((v) => v?.appliedSteps ?? -1).join(",");
      if (views.every((v) => v?.appliedSteps === views[0]?.appliedSteps) && steps === last) break;
      if (Date.now() > deadline)
        throw new Error(`steps never settled: ${steps}\n${cluster.outputs()}`);
      last = steps;
      await sleep(300);
    }
    const keys = [...model.keys(), "never-set"].sort();
    const answers: string[][] = [];
    for (const view of views) {
      expect(view!.program.state).toBe("running");
      const copy = await LineConnection.open(view!.program.port!);
      const replies: string[] = [];
      for (const key of keys) replies.push(await copy.ask(`GET ${key}`));
      copy.close();
      answers.push(replies);
    }
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[2]).toEqual(answers[0]);
    expect(answers[0]).toEqual(keys.map((k) => model.get(k) ?? "NIL"));
  });
});
