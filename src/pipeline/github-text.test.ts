import { describe, expect, it } from "vitest";
import { inertCodeBlock, inertText, MAX_DETAIL_CHARS } from "./github-text.ts";

describe("inertText", () => {
  it("shows bidi controls, zero-width and other invisible characters and controls as U+FFFD", () => {
    const hostile = "a\u202Eb\u2066c\u2069d\u200Be\u200Df\uFEFFg\u0000h\u001Bi\u0085j\u2028k\u061Cl\u00ADm\ud800n";
    expect(inertText(hostile, 1000)).toBe("a\uFFFDb\uFFFDc\uFFFDd\uFFFDe\uFFFDf\uFFFDg\uFFFDh\uFFFDi\uFFFDj\uFFFDk\uFFFDl\uFFFDm\uFFFDn");
  });

  it("keeps line breaks, tabs, emoji and other scripts", () => {
    expect(inertText("line 1\r\nline 2\rline 3\n\tindented 🚀 ünïcödé 日本語 עברית", 1000)).toBe("line 1\nline 2\nline 3\n\tindented 🚀 ünïcödé 日本語 עברית");
  });

  it("cuts to the limit with …, never inside a surrogate pair", () => {
    expect(inertText("abcdef", 4)).toBe("abc…");
    expect(inertText("ab🚀cd", 4)).toBe("ab…");
    expect(inertText("x".repeat(100_000), 100)).toHaveLength(100);
  });
});

describe("inertCodeBlock", () => {
  it("puts the text in a fence longer than any run of backticks inside, so nothing can close it", () => {
    const text = "```\n@octocat [click](https://evil.example) <img src=x onerror=alert(1)>\n````\n# heading";
    const block = inertCodeBlock(text);
    expect(block).toBe(`\`\`\`\`\`text\n${text}\n\`\`\`\`\``);
    const lines = block.split("\n");
    // Only the last line closes the block: no line inside starts with five backticks.
    expect(lines.slice(1, -1).some((line) => /^ {0,3}`{5}/.test(line))).toBe(false);
  });

  it(`caps the text at ${MAX_DETAIL_CHARS} characters, so a comment stays under GitHub's 65,536`, () => {
    const block = inertCodeBlock(`${"`".repeat(70_000)}\u202E`);
    expect(block.length).toBeLessThan(65_536);
    expect(block).not.toContain("\u202E");
  });
});
