/**
 * A throwaway redis-server for the comparison tests. Its port is chosen below Linux's ephemeral
 * range (32768+), where another test's client socket may hold a port and make the server's bind
 * fail, and a server that exits before it listens (its port taken after all) is started again
 * on another port, with its own words in the error when every try fails.
 */
import { type ChildProcess, spawn } from "node:child_process";

export interface RedisServer {
  readonly port: number;
  stop(): void;
}

const TRIES = 5;

export async function startRedisServer(args: readonly string[]): Promise<RedisServer> {
  let lastOutput = "";
  for (let attempt = 0; attempt < TRIES; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const child = spawn("redis-server", ["--port", String(port), ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-2000);
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-2000);
    });
    if (await listening(child)) return { port, stop: () => child.kill() };
    child.kill();
    lastOutput = output;
  }
  throw new Error(`redis-server did not start in ${TRIES} tries; its last output:\n${lastOutput}`);
}

/** Whether `child` says it accepts connections before it exits (or 20 s pass). A server whose
 * port is taken says so and exits, while a connection to the port could reach the other owner. */
function listening(child: ChildProcess): Promise<boolean> {
  return new Promise((resolve) => {
    let said = "";
    const timer = setTimeout(() => resolve(false), 20_000);
    child.stdout?.on("data", (chunk: Buffer) => {
      said = (said + chunk.toString()).slice(-200);
      if (said.includes("Ready to accept connections")) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}
