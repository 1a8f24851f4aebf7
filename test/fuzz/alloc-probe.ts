/**
 * The largest Buffer a decoder allocates while it runs, so a fuzz target can check "never
 * allocates by the input's say-so beyond its limit" input by input, deterministically (heap and
 * RSS figures move with the garbage collector; they are reported by the offline runner instead).
 *
 * The decoders allocate through Buffer.alloc / allocUnsafe / allocUnsafeSlow, looked up on the
 * global Buffer at call time, so wrapping those three sees every such allocation. Typed-array
 * constructors and `new Array(n)` are not seen: the targets bound those by checking the results
 * (counts against bytes present), and the runner's peak RSS covers the rest.
 */

type Alloc = (size: number, ...rest: never[]) => Buffer;

const METHODS = ["alloc", "allocUnsafe", "allocUnsafeSlow"] as const;

/** Largest size requested since `resetLargest()`, while installed. */
let largestBytes = 0;
let installed = 0;
const originals = new Map<(typeof METHODS)[number], Alloc>();

function install(): void {
  if (installed++ > 0) return;
  for (const name of METHODS) {
    const original = Buffer[name] as unknown as Alloc;
    originals.set(name, original);
    const wrapped = (size: number, ...rest: never[]): Buffer => {
      if (size > largestBytes) largestBytes = size;
      return original.call(Buffer, size, ...rest);
    };
    (Buffer as unknown as Record<string, Alloc>)[name] = wrapped;
  }
}

function uninstall(): void {
  if (--installed > 0) return;
  for (const [name, original] of originals) {
    (Buffer as unknown as Record<string, Alloc>)[name] = original;
  }
  originals.clear();
}

/** Runs `fn` and returns what it returned with the largest Buffer allocation it made. */
export function measureAllocations<T>(fn: () => T): { result: T; largestBytes: number } {
  install();
  largestBytes = 0;
  try {
    const result = fn();
    return { result, largestBytes };
  } finally {
    uninstall();
  }
}

/** `measureAllocations` for async work (the fuzz process runs nothing else meanwhile). */
export async function measureAllocationsAsync<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; largestBytes: number }> {
  install();
  largestBytes = 0;
  try {
    const result = await fn();
    return { result, largestBytes };
  } finally {
    uninstall();
  }
}
