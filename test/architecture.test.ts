/**
 * The layering rule of ARCHITECTURE.md, checked on the source: imports point down only.
 *
 *   entries (src/*.ts) → src/cli → src/runtime → src/transport, src/storage, src/app → src/ring, src/core
 *   src/limits.ts (shared limits and defaults) imports nothing; every layer may import it
 *   src/workers/<thread>/ → src/runtime and below; src/sim → the pure modules of src/workers
 *
 * The runtime starts the workers by file URL (replica-runner.ts), never by import.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** `import … from "x"`, `export … from "x"`, `import "x"`, `import("x")`. */
const IMPORT =
  /(?:^|\n)\s*(?:import|export)\s[^"';(=]*?\bfrom\s*["']([^"']+)["']|(?:^|\n)\s*import\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.ts$/.test(entry.name) && !/\.d\.ts$/.test(entry.name) ? [path] : [];
  });
}

/** Every import of `file`: a path relative to the repository root, or the bare module name. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  return [...text.matchAll(IMPORT)].map((match) => {
    const specifier = (match[1] ?? match[2] ?? match[3])!;
    return specifier.startsWith(".") ? normalize(join(dirname(file), specifier)) : specifier;
  });
}

const FILES = sourceFiles("src");
const GRAPH = new Map(FILES.map((file) => [file, importsOf(file)]));

/** "file -> import" for each import of a file under `from` that lands in one of `forbidden`. */
function violations(from: string, forbidden: readonly string[], allowed = ""): string[] {
  const found: string[] = [];
  for (const [file, imports] of GRAPH) {
    if (!file.startsWith(from)) continue;
    for (const target of imports) {
      const hit = forbidden.some((prefix) => target.startsWith(prefix));
      if (hit && (allowed === "" || !target.startsWith(allowed)))
        found.push(`${file} -> ${target}`);
    }
  }
  return found;
}

describe("imports point down only", () => {
  it("finds the source tree", () => {
    expect(FILES.length).toBeGreaterThan(50);
    expect(GRAPH.get("src/workers/consensus/consensus-worker.ts")).toContain(
      "src/workers/consensus/consensus-node.ts",
    );
  });

  it("src/core imports only src/core and src/limits.ts: no node:*, no package, no other folder", () => {
    const outside = [...GRAPH]
      .filter(([file]) => file.startsWith("src/core/"))
      .flatMap(([file, imports]) =>
        imports
          .filter((target) => !target.startsWith("src/core/") && target !== "src/limits.ts")
          .map((t) => `${file} -> ${t}`),
      );
    expect(outside).toEqual([]);
  });

  it("src/limits.ts imports nothing, so the pure core may use it", () => {
    expect(GRAPH.get("src/limits.ts")).toEqual([]);
  });

  it.each(["src/ring/", "src/storage/", "src/transport/", "src/app/"])(
    "%s imports nothing from the runtime, the workers, the command line or the tools",
    (layer) => {
      expect(
        violations(layer, ["src/runtime/", "src/workers/", "src/cli/", "src/sim/", "src/chaos/"]),
      ).toEqual([]);
      expect(violations(layer, ["src/cli.ts", "src/cluster.ts", "src/replica.ts"])).toEqual([]);
    },
  );

  it("src/runtime imports neither the workers (it starts them by URL) nor the command line", () => {
    expect(violations("src/runtime/", ["src/workers/", "src/cli/", "src/sim/"])).toEqual([]);
  });

  it("src/cli imports no worker", () => {
    expect(violations("src/cli/", ["src/workers/"])).toEqual([]);
  });

  it("the two threads' folders do not import each other (they share src/workers/*.ts)", () => {
    expect(violations("src/workers/connection/", ["src/workers/consensus/"])).toEqual([]);
    expect(violations("src/workers/consensus/", ["src/workers/connection/"])).toEqual([]);
  });

  it("only the workers and the simulator import src/workers", () => {
    const importers = [...GRAPH]
      .filter(([file]) => !file.startsWith("src/workers/") && !file.startsWith("src/sim/"))
      .flatMap(([file, imports]) =>
        imports.filter((t) => t.startsWith("src/workers/")).map((t) => `${file} -> ${t}`),
      );
    expect(importers).toEqual([]);
  });

  it("what the simulator runs of src/workers reaches no socket, thread or clock module", () => {
    const impure = ["node:net", "node:dgram", "node:worker_threads", "node:fs", "node:timers"];
    const reached = new Set<string>();
    const queue = [...GRAPH]
      .filter(([file]) => file.startsWith("src/sim/"))
      .flatMap(([, imports]) => imports.filter((t) => t.startsWith("src/workers/")));
    const bad: string[] = [];
    while (queue.length > 0) {
      const file = queue.pop()!;
      if (reached.has(file)) continue;
      reached.add(file);
      for (const target of GRAPH.get(file) ?? []) {
        if (impure.includes(target)) bad.push(`${file} -> ${target}`);
        if (target.startsWith("src/")) queue.push(target);
      }
    }
    expect(reached.size).toBeGreaterThan(0);
    expect(bad).toEqual([]);
  });

  it("every relative import names a file that exists", () => {
    const missing = [...GRAPH].flatMap(([file, imports]) =>
      imports
        .filter((target) => target.startsWith("src/") && !GRAPH.has(target))
        .map((target) => `${file} -> ${target}`),
    );
    expect(missing).toEqual([]);
  });
});
