/**
 * A tiny echo process for the machine-limits probe: echoes UDP datagrams and TCP bytes on
 * 127.0.0.1 (ports chosen by the kernel), prints `{"udpPort":U,"tcpPort":T}` on one line, and
 * exits when its stdin closes (when the benchmark that spawned it exits).
 *
 *   node bench/lib/echo-server.ts
 */
import { createSocket } from "node:dgram";
import { createServer } from "node:net";

const udp = createSocket("udp4");
udp.on("message", (message, remote) => udp.send(message, remote.port, remote.address));
await new Promise<void>((resolve) => udp.bind(0, "127.0.0.1", resolve));

const tcp = createServer({ noDelay: true }, (socket) => {
  socket.on("data", (chunk) => socket.write(chunk));
  socket.on("error", () => socket.destroy());
});
await new Promise<void>((resolve) => tcp.listen(0, "127.0.0.1", resolve));
const tcpAddress = tcp.address();
if (tcpAddress === null || typeof tcpAddress === "string") throw new Error("no TCP address");

process.stdout.write(
  `${JSON.stringify({ udpPort: udp.address().port, tcpPort: tcpAddress.port })}\n`,
);
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
process.stdin.on("close", () => process.exit(0));
