/**
 * The last lines a supervised program wrote, for error messages and /status: stdout and stderr
 * split into lines (each stream keeps its own partial line) and kept in one bounded ring.
 */

/** Lines of output kept (stdout and stderr together): enough to show why a program failed. */
export const PROGRAM_OUTPUT_LINES_MAX = 64;
/** A longer line is cut to this many characters and marked, so the ring stays small. */
export const PROGRAM_OUTPUT_LINE_CHARS_MAX = 1024;

const CUT_MARK = " [line cut]";

export type ProgramStream = "stdout" | "stderr";

export class ProgramOutput {
  /** Complete lines, oldest first. Invariant: lines.length <= linesMax. */
  private readonly lines: string[] = [];
  /**
   * Each stream's line so far (no newline yet). Invariant: at most charsMax + 1 characters; the
   * extra one only says the line was longer and will be cut.
   */
  private readonly partial: Record<ProgramStream, string> = { stdout: "", stderr: "" };

  private readonly onLine: (line: string, stream: ProgramStream) => void;
  private readonly linesMax: number;
  private readonly charsMax: number;

  constructor(
    onLine: (line: string, stream: ProgramStream) => void = () => {},
    linesMax = PROGRAM_OUTPUT_LINES_MAX,
    charsMax = PROGRAM_OUTPUT_LINE_CHARS_MAX,
  ) {
    this.onLine = onLine;
    this.linesMax = linesMax;
    this.charsMax = charsMax;
  }

  /** Feed decoded text from one stream; each complete line goes to the ring and to onLine. */
  write(stream: ProgramStream, text: string): void {
    const pieces = text.split("\n");
    const last = pieces.pop()!;
    for (const piece of pieces) {
      this.push(stream, this.partial[stream] + piece);
      this.partial[stream] = "";
    }
    this.partial[stream] = (this.partial[stream] + last).slice(0, this.charsMax + 1);
  }

  /** The stream ended: an unfinished last line still counts. */
  end(stream: ProgramStream): void {
    if (this.partial[stream].length > 0) this.push(stream, this.partial[stream]);
    this.partial[stream] = "";
  }

  /** Add a line of our own (e.g. why spawn failed), as if the program had written it. */
  note(line: string): void {
    this.push("stderr", line);
  }

  /** The kept lines, oldest first (a copy). */
  tail(): string[] {
    return [...this.lines];
  }

  private push(stream: ProgramStream, raw: string): void {
    const trimmed = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    const line =
      trimmed.length > this.charsMax ? trimmed.slice(0, this.charsMax) + CUT_MARK : trimmed;
    this.lines.push(line);
    if (this.lines.length > this.linesMax) this.lines.shift();
    this.onLine(line, stream);
  }
}
