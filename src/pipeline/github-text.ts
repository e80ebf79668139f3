import { hiddenCharacters } from "../lib/text.ts";

/**
 * Text that comes from a repository or an agent (stagely.yaml and compose errors, build names, deploy log lines) on
 * its way to GitHub. A pull request comment is markdown, and from a fork anyone writes that text: it must not add
 * formatting, links, @-mentions, HTML, or reorder what is shown with bidi controls, and it must keep the comment under
 * GitHub's 65,536 characters. Every such text goes through `inertText`; in a comment it is shown with
 * `inertCodeBlock`, inside which GitHub renders no markdown, autolinks, mentions or HTML.
 */

/** A code block of this much text (and a fence as long, at worst) stays well under GitHub's 65,536 characters per comment. */
export const MAX_DETAIL_CHARS = 16_000;

/**
 * Untrusted text with every hidden or reordering character shown as U+FFFD, `\r\n` as `\n`, and at most
 * `maxChars` UTF-16 units (cut with `…`, never inside a surrogate pair).
 */
export function inertText(text: string, maxChars: number): string {
  const clean = text.replace(/\r\n?/g, "\n").replace(hiddenCharacters, "\uFFFD");
  if (clean.length <= maxChars) return clean;
  return `${clean.slice(0, maxChars - 1).replace(/[\ud800-\udbff]$/, "")}…`;
}

/**
 * Untrusted text as a fenced code block of a markdown comment: shown exactly as `inertText` leaves it. The fence is
 * longer than any run of backticks inside, so no line of the text can close it.
 */
export function inertCodeBlock(text: string, maxChars = MAX_DETAIL_CHARS): string {
  const body = inertText(text, maxChars);
  const longestRun = (body.match(/`+/g) ?? []).reduce((longest, run) => Math.max(longest, run.length), 0);
  const fence = "`".repeat(Math.max(3, longestRun + 1));
  return `${fence}text\n${body}\n${fence}`;
}
