// Masking secret values in log lines. Pure (no database, no Workers API): the agent gateway and the agent both use it.

/** Secret values shorter than this are not masked (they would mask ordinary words). */
export const MIN_MASKED_LENGTH = 8;
export const MASK = "***";

export type Masker = (line: string) => string;

/**
 * Replaces every occurrence of each value with `***`, longest first so a value containing another is masked whole.
 * A multi-line value (a key file) is also masked line by line, since logs arrive one line at a time.
 */
export function createMasker(values: readonly string[]): Masker {
  const candidates = new Set<string>();
  for (const value of values) {
    for (const part of [value, ...value.split(/\r?\n/).map((l) => l.trim())]) {
      if (part.length >= MIN_MASKED_LENGTH) candidates.add(part);
    }
  }
  const ordered = [...candidates].sort((a, b) => b.length - a.length);
  if (ordered.length === 0) return (line) => line;
  return (line) => {
    let out = line;
    for (const value of ordered) if (out.includes(value)) out = out.split(value).join(MASK);
    return out;
  };
}
