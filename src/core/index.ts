export * from "./ballot.ts";
export * from "./config.ts";
export * from "./errors.ts";
export * from "./prng.ts";
export * from "./ready.ts";
export * from "./replica.ts";
export * from "./types.ts";
export * from "./wire.ts";
