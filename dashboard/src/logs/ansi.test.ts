import { describe, expect, it } from "vitest";
import { parseAnsi, stripAnsi } from "./ansi.ts";

describe("ANSI colours in log lines", () => {
  it("turns SGR colours and weights into classes and resets them", () => {
    expect(parseAnsi("\x1b[31mred\x1b[0m plain \x1b[1;92mbold bright green\x1b[39m bold")).toEqual([
      { text: "red", classes: ["ansi-fg1"] },
      { text: " plain ", classes: [] },
      { text: "bold bright green", classes: ["ansi-fg10", "ansi-bold"] },
      { text: " bold", classes: ["ansi-bold"] },
    ]);
  });

  it("keeps the 16-colour part of 256-colour codes and skips true-colour parameters", () => {
    expect(parseAnsi("\x1b[38;5;3myellow\x1b[38;2;10;20;30m still yellow\x1b[48;5;200m")).toEqual([
      { text: "yellow", classes: ["ansi-fg3"] },
      { text: " still yellow", classes: ["ansi-fg3"] },
    ]);
  });

  it("drops cursor movement, erase and OSC sequences, and text without escapes stays one segment", () => {
    expect(stripAnsi("\x1b[2K\x1b[1Gstep 1\x1b]0;title\x07 done\x1b[?25h")).toBe("step 1 done");
    expect(parseAnsi("#6 0.050 added react@1.0.0")).toEqual([{ text: "#6 0.050 added react@1.0.0", classes: [] }]);
    expect(parseAnsi("")).toEqual([]);
  });

  it("treats a bare ESC [ m as a reset", () => {
    expect(parseAnsi("\x1b[4mu\x1b[mx")).toEqual([
      { text: "u", classes: ["ansi-underline"] },
      { text: "x", classes: [] },
    ]);
  });
});
