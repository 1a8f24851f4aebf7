/**
 * Error codes, per layer (src/core/errors.ts): each layer declares the codes it throws in a table
 * (`export const X_ERROR_CODES = [...] as const`). This test reads every table from the source and
 * checks that no code is declared twice, every `"ERR_…"` the source names is declared, and every
 * declared code is used somewhere besides its table. The checker is first shown to catch planted
 * mistakes.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TABLE = /export const (\w+_ERROR_CODES) = \[([\s\S]*?)\] as const/g;
const CODE = /["'`](ERR_[A-Z0-9_]+)["'`]/g;

interface Source {
  readonly path: string;
  readonly text: string;
}

function sources(dir: string): Source[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    if (!/\.ts$/.test(entry.name) || /\.d\.ts$/.test(entry.name)) return [];
    return [{ path, text: readFileSync(join(ROOT, path), "utf8") }];
  });
}

/** Every mistake in the code tables of `files`, one line each; [] when they are sound. */
function checkErrorTables(files: readonly Source[]): string[] {
  const problems: string[] = [];
  const declaredIn = new Map<string, string>();
  const uses = new Map<string, number>();
  for (const file of files) {
    const withoutTables = file.text.replace(TABLE, (_whole, name: string, body: string) => {
      for (const [, code] of body.matchAll(CODE)) {
        const earlier = declaredIn.get(code!);
        if (earlier !== undefined)
          problems.push(`${code} is declared twice: ${earlier} and ${file.path} ${name}`);
        else declaredIn.set(code!, `${file.path} ${name}`);
      }
      return "";
    });
    for (const [, code] of withoutTables.matchAll(CODE))
      uses.set(code!, (uses.get(code!) ?? 0) + 1);
  }
  for (const [code, count] of uses)
    if (!declaredIn.has(code))
      problems.push(`${code} is used (${count}×) but no table declares it`);
  for (const [code, where] of declaredIn)
    if (!uses.has(code)) problems.push(`${code} (${where}) is declared but nothing uses it`);
  return problems;
}

describe("error codes, per layer", () => {
  it("the checker catches a code declared twice, an undeclared one and an unused one", () => {
    const planted: Source[] = [
      {
        path: "a.ts",
        text: 'export const A_ERROR_CODES = ["ERR_A", "ERR_TWICE", "ERR_UNUSED"] as const;\nthrow new E("ERR_A"); f("ERR_TWICE"); g("ERR_STRAY");',
      },
      { path: "b.ts", text: 'export const B_ERROR_CODES = [\n  "ERR_TWICE",\n] as const;' },
    ];
    expect(checkErrorTables(planted)).toEqual([
      "ERR_TWICE is declared twice: a.ts A_ERROR_CODES and b.ts B_ERROR_CODES",
      "ERR_STRAY is used (1×) but no table declares it",
      "ERR_UNUSED (a.ts A_ERROR_CODES) is declared but nothing uses it",
    ]);
  });

  it("src: every code declared once, by its layer, and used", () => {
    const files = sources("src");
    const tables = files.filter((f) => /_ERROR_CODES = \[/.test(f.text)).map((f) => f.path);
    // The core, storage, transport and ring layers each own a table (more as layers add codes).
    for (const layer of ["src/core/", "src/storage/", "src/transport/", "src/ring/"])
      expect(tables.some((path) => path.startsWith(layer))).toBe(true);
    expect(checkErrorTables(files)).toEqual([]);
  });
});
