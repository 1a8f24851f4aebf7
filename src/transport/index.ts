import { TcpTransport } from "./tcp-transport.ts";
import type { Transport, TransportOptions } from "./transport.ts";
import { UdpTransport } from "./udp-transport.ts";

/** Socket transports; "shm" (ShmTransport) is built from a fabric instead of addresses. */
export type TransportKind = "udp" | "tcp";

/** The socket transport `--transport` names; UDP is the default. Options are validated here. */
export function createTransport(kind: TransportKind, options: TransportOptions): Transport {
  switch (kind) {
    case "udp":
      return new UdpTransport(options);
    case "tcp":
      return new TcpTransport(options);
  }
}

export * from "./frame.ts";
export { FrameReader } from "./frame-reader.ts";
export * from "./peer-keys.ts";
export * from "./peer-sessions.ts";
export * from "./reassembly.ts";
export * from "./replay-window.ts";
export * from "./shm-transport.ts";
export * from "./tcp-transport.ts";
export * from "./transport.ts";
export * from "./transport-errors.ts";
export * from "./udp-transport.ts";
