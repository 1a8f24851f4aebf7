import { type Logger, pino } from "pino";
import pretty from "pino-pretty";
import type { ReplicaConfig } from "./config.ts";

/**
 * JSON lines by default (for log shippers); `--log-format pretty` for a person at a terminal.
 * Every thread makes its own logger with a `thread` binding, so lines say where they come from.
 */
export function createLogger(
  config: Pick<ReplicaConfig, "id" | "logLevel" | "logFormat">,
  thread: string,
): Logger {
  const options = { level: config.logLevel, base: { replica: config.id, thread } };
  if (config.logFormat === "pretty") {
    return pino(
      options,
      pretty({
        colorize: process.stdout.isTTY === true,
        sync: true,
        destination: 1,
        singleLine: true,
        ignore: "pid,hostname",
      }),
    );
  }
  return pino(options, pino.destination({ dest: 1, sync: false }));
}
