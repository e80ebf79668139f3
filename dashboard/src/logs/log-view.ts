import { parseAnsi, stripAnsi } from "./ansi.ts";

export interface LogLine {
  seq: number;
  stream: "stdout" | "stderr";
  timestamp: string;
  line: string;
}

/** A line that reads like a failure: what "jump to the first error" looks for. */
const errorPattern = /\b(error|failed|fatal|panic)\b/i;

export interface LogViewState {
  lines: number;
  matches: number;
  /** 1-based index of the highlighted match, 0 when none. */
  current: number;
  following: boolean;
  hasError: boolean;
}

/**
 * A build log in a fixed-size scroll box, managed directly in the DOM (a log can have tens of thousands of lines):
 * lines arrive in batches, once per animation frame; the box follows the tail while the reader is at the bottom and
 * stops following when they scroll up; search highlights matching lines. Text goes in through textContent only.
 */
export class LogView {
  private readonly box: HTMLElement;
  private readonly pending: LogLine[] = [];
  private readonly rows: { el: HTMLElement; text: string }[] = [];
  private frame = 0;
  private term = "";
  private matches: HTMLElement[] = [];
  private current = -1;
  private following = true;
  private firstError: HTMLElement | null = null;
  private readonly onChange: (state: LogViewState) => void;

  constructor(box: HTMLElement, onChange: (state: LogViewState) => void) {
    this.box = box;
    this.onChange = onChange;
    box.addEventListener("scroll", () => {
      const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 24;
      if (atBottom !== this.following) {
        this.following = atBottom;
        this.report();
      }
    });
  }

  append(lines: LogLine[]): void {
    this.pending.push(...lines);
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  private flush(): void {
    this.frame = 0;
    const fragment = document.createDocumentFragment();
    for (const line of this.pending.splice(0)) {
      const text = stripAnsi(line.line);
      const row = document.createElement("div");
      row.className = line.stream === "stderr" ? "log-line stderr" : "log-line";
      const number = document.createElement("span");
      number.className = "log-seq";
      number.textContent = String(line.seq);
      row.append(number);
      for (const segment of parseAnsi(line.line)) {
        const span = document.createElement("span");
        if (segment.classes.length) span.className = segment.classes.join(" ");
        span.textContent = segment.text;
        row.append(span);
      }
      if (!this.firstError && errorPattern.test(text)) {
        row.classList.add("log-error");
        this.firstError = row;
      }
      if (this.term && text.toLowerCase().includes(this.term)) {
        row.classList.add("log-match");
        this.matches.push(row);
      }
      this.rows.push({ el: row, text });
      fragment.append(row);
    }
    this.box.append(fragment);
    if (this.following) this.box.scrollTop = this.box.scrollHeight;
    this.report();
  }

  /** Highlights the lines containing `term` (case-insensitive) and moves to the first of them. */
  search(term: string): void {
    this.term = term.trim().toLowerCase();
    for (const el of this.matches) el.classList.remove("log-match", "log-current");
    this.matches = this.term ? this.rows.filter((r) => r.text.toLowerCase().includes(this.term)).map((r) => r.el) : [];
    for (const el of this.matches) el.classList.add("log-match");
    this.current = -1;
    if (this.matches.length) this.step(1);
    else this.report();
  }

  /** Moves to the next (1) or previous (-1) match, wrapping around. */
  step(direction: 1 | -1): void {
    if (!this.matches.length) return;
    this.matches[this.current]?.classList.remove("log-current");
    this.current = (this.current + direction + this.matches.length) % this.matches.length;
    this.show(this.matches[this.current]!);
  }

  jumpToFirstError(): void {
    if (this.firstError) this.show(this.firstError);
  }

  follow(): void {
    this.following = true;
    this.box.scrollTop = this.box.scrollHeight;
    this.report();
  }

  /** The whole log as plain text, one line per line, for downloading. */
  text(): string {
    return this.rows.map((r) => `${r.text}\n`).join("");
  }

  dispose(): void {
    cancelAnimationFrame(this.frame);
  }

  private show(row: HTMLElement): void {
    this.following = false;
    this.box.querySelector(".log-current")?.classList.remove("log-current");
    row.classList.add("log-current");
    this.box.scrollTop = row.offsetTop - this.box.clientHeight / 2;
    this.report();
  }

  private report(): void {
    this.onChange({
      lines: this.rows.length,
      matches: this.matches.length,
      current: this.current + 1,
      following: this.following,
      hasError: this.firstError !== null,
    });
  }
}
