/** Byte-for-byte cases against redis-server (test/app/redis-compat.test.ts): sets-zsets commands. */
export const COMMANDS: readonly (readonly string[])[] = [];
