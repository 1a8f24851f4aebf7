/** Flag values the benchmarks share: positive integers, one or a comma-separated list. */

export function parseList(name: string, text: string): number[] {
  const values = text.split(",").map((v) => Number(v.trim()));
  for (const v of values)
    if (!Number.isSafeInteger(v) || v < 1)
      throw new Error(`--${name} takes positive integers, comma-separated; got "${text}"`);
  return values;
}

export function parsePositive(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1)
    throw new Error(`--${name} takes a positive integer; got "${text}"`);
  return value;
}
