import { describe, expect, it } from "vitest";
import { idPrefixes, isId, newId, newSubdomainHash, type IdKind } from "./ids.ts";

describe("ids", () => {
  it("prefixes every kind and appends 16 lowercase alphanumerics", () => {
    for (const kind of Object.keys(idPrefixes) as IdKind[]) {
      const id = newId(kind);
      expect(id).toMatch(new RegExp(`^${idPrefixes[kind]}_[0-9a-z]{16}$`));
      expect(isId(kind, id)).toBe(true);
    }
    expect(newId("environment").startsWith("env_")).toBe(true);
    expect(isId("environment", newId("team"))).toBe(false);
  });

  it("does not repeat across 100,000 draws", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 100_000; i++) seen.add(newId("buildJob"));
    expect(seen.size).toBe(100_000);
  });

  it("makes subdomain hashes that are DNS labels", () => {
    const hashes = new Set(Array.from({ length: 10_000 }, newSubdomainHash));
    expect(hashes.size).toBe(10_000);
    for (const hash of hashes) expect(hash).toMatch(/^[a-z0-9]{16}$/);
  });

  it("uses the whole alphabet (no bias toward a subset)", () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 2_000; i++) for (const ch of newSubdomainHash()) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    expect(counts.size).toBe(36);
    const expected = (2_000 * 16) / 36;
    for (const count of counts.values()) expect(Math.abs(count - expected) / expected).toBeLessThan(0.2);
  });
});
