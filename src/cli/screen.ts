import { fitToWidth } from "./cluster-line.ts";

/**
 * The terminal: event lines scroll; the status line stays last. On a TTY it is rewritten in
 * place; otherwise it is printed only when the state it shows (roles, replicas up) changes.
 */
export class Screen {
  private readonly tty = process.stdout.isTTY === true;
  /** The status line now on screen (TTY), "" when none. */
  private shown = "";
  /** The last status key printed (non-TTY). */
  private lastKey = "";

  print(text: string): void {
    this.clear();
    process.stdout.write(`${text}\n`);
    if (this.tty && this.shown.length > 0) process.stdout.write(this.shown);
  }

  status(line: string, key: string): void {
    if (this.tty) {
      const shown = `\r${fitToWidth(line, process.stdout.columns)}\x1b[K`;
      if (shown === this.shown) return;
      this.shown = shown;
      process.stdout.write(shown);
    } else if (key !== this.lastKey) {
      this.lastKey = key;
      process.stdout.write(`${line}\n`);
    }
  }

  /** Remove the status line (TTY) so that what follows starts on a clean line. */
  clear(): void {
    if (this.tty && this.shown.length > 0) process.stdout.write("\r\x1b[K");
  }

  /** Stop drawing the status line. */
  release(): void {
    this.clear();
    this.shown = "";
  }
}
