/** A run of text with the SGR styles (colours, bold, …) in force, as CSS class names (styles.css, `.ansi-*`). */
export interface Segment {
  text: string;
  classes: string[];
}

interface Style {
  fg: number | null;
  bg: number | null;
  bold: boolean;
  dim: boolean;
  italic: boolean;
  underline: boolean;
}

const plain = (): Style => ({ fg: null, bg: null, bold: false, dim: false, italic: false, underline: false });

// CSI sequences (ESC [ … final byte), OSC sequences (ESC ] … BEL or ESC \), and other two-byte escapes.
const escapes = /\x1b\[([0-9;:?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]/g;

function apply(style: Style, params: string): void {
  const codes = params === "" ? [0] : params.split(/[;:]/).map((p) => Number(p) || 0);
  for (let i = 0; i < codes.length; i++) {
    const code = codes[i]!;
    if (code === 0) Object.assign(style, plain());
    else if (code === 1) style.bold = true;
    else if (code === 2) style.dim = true;
    else if (code === 3) style.italic = true;
    else if (code === 4) style.underline = true;
    else if (code === 22) style.bold = style.dim = false;
    else if (code === 23) style.italic = false;
    else if (code === 24) style.underline = false;
    else if (code >= 30 && code <= 37) style.fg = code - 30;
    else if (code >= 90 && code <= 97) style.fg = code - 90 + 8;
    else if (code === 39) style.fg = null;
    else if (code >= 40 && code <= 47) style.bg = code - 40;
    else if (code >= 100 && code <= 107) style.bg = code - 100 + 8;
    else if (code === 49) style.bg = null;
    else if (code === 38 || code === 48) {
      // 256-colour (5;n) and true-colour (2;r;g;b): the first 16 map onto the palette, the rest are left plain.
      const mode = codes[i + 1];
      const value = mode === 5 ? codes[i + 2] : undefined;
      if (value !== undefined && value < 16) style[code === 38 ? "fg" : "bg"] = value;
      i += mode === 5 ? 2 : mode === 2 ? 4 : 0;
    }
  }
}

function classesOf(style: Style): string[] {
  const classes: string[] = [];
  if (style.fg !== null) classes.push(`ansi-fg${style.fg}`);
  if (style.bg !== null) classes.push(`ansi-bg${style.bg}`);
  if (style.bold) classes.push("ansi-bold");
  if (style.dim) classes.push("ansi-dim");
  if (style.italic) classes.push("ansi-italic");
  if (style.underline) classes.push("ansi-underline");
  return classes;
}

/** Splits a log line at its ANSI escape sequences: styled text segments, with every escape sequence removed. */
export function parseAnsi(line: string): Segment[] {
  const segments: Segment[] = [];
  const style = plain();
  let last = 0;
  const push = (text: string) => {
    if (text) segments.push({ text, classes: classesOf(style) });
  };
  for (const match of line.matchAll(escapes)) {
    push(line.slice(last, match.index));
    if (match[2] === "m") apply(style, match[1] ?? "");
    last = match.index + match[0].length;
  }
  push(line.slice(last));
  return segments;
}

/** The line as plain text (search, error detection, download). */
export function stripAnsi(line: string): string {
  return line.replace(escapes, "");
}
