/** Byte-for-byte cases against redis-server (test/app/redis-compat.test.ts): lists-hashes commands. */
export const COMMANDS: readonly (readonly string[])[] = [];
