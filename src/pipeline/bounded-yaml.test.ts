import { describe, expect, it } from "vitest";
import { DEFAULT_YAML_LIMITS, formatPath, MAX_QUOTED_CHARS, quoteInput, readBoundedYaml, type YamlLimits } from "./bounded-yaml.ts";

function read(text: string, limits: Partial<YamlLimits> = {}) {
  const result = readBoundedYaml(text, "x.yaml", { ...DEFAULT_YAML_LIMITS, ...limits });
  if (!result.ok) throw new Error(`expected a value, got:\n${result.errors.join("\n")}`);
  return result;
}

function errorsOf(text: string, limits: Partial<YamlLimits> = {}): string[] {
  const result = readBoundedYaml(text, "x.yaml", { ...DEFAULT_YAML_LIMITS, ...limits });
  if (result.ok) throw new Error("expected errors, got a value");
  return result.errors;
}

const plain = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown;

describe("readBoundedYaml: values", () => {
  it("answers plain data: mappings without a prototype, lists, strings, numbers, booleans, null", () => {
    const { value } = read("a: 1\nb: [x, 2.5, true, null, ~]\nc: {d: 'e'}\n");
    expect(plain(value)).toEqual({ a: 1, b: ["x", 2.5, true, null, null], c: { d: "e" } });
    expect(Object.getPrototypeOf(value)).toBeNull();
  });

  it("answers an empty document (or only comments) as null", () => {
    expect(read("").value).toBeNull();
    expect(read("# nothing\n\n").value).toBeNull();
  });

  it("keeps the text of numbers, booleans and null as written", () => {
    const { value, textOf } = read("a: 1.10\nb: 007\nc: 0x1F\nd: True\ne: ~\nf: x\nl: [1.50, '2.0']\n");
    const map = value as Record<string, unknown>;
    expect(["a", "b", "c", "d", "e", "f"].map((k) => [map[k], textOf(map, k)])).toEqual([
      [1.1, "1.10"],
      [7, "007"],
      [31, "0x1F"],
      [true, "True"],
      [null, "~"],
      ["x", undefined],
    ]);
    expect([textOf(map.l as object, 0), textOf(map.l as object, 1)]).toEqual(["1.50", undefined]);
  });

  it("shares an anchor's value with its aliases instead of copying it", () => {
    const { value } = read("a: &x {k: [1, 2]}\nb: *x\nc: *x\n");
    const map = value as Record<string, unknown>;
    expect(map.b).toBe(map.a);
    expect(map.c).toBe(map.a);
  });

  it("merges with <<: keys before it and earlier merges win, keys after it replace, text as written is kept", () => {
    const { value, textOf } = read(
      "base: &base {a: 1, b: 2, v: 1.10}\nother: &other {b: 20, c: 30}\nm:\n  a: 0\n  <<: [*base, *other]\n  c: 3\n",
    );
    const merged = (value as Record<string, Record<string, unknown>>).m!;
    expect(plain(merged)).toEqual({ a: 0, b: 2, v: 1.1, c: 3 });
    expect(textOf(merged, "v")).toBe("1.10");
  });

  it("takes a quoted << as an ordinary key", () => {
    expect(plain(read("m: {'<<': 1}\n").value)).toEqual({ m: { "<<": 1 } });
  });

  it("refuses a merge of something other than mappings", () => {
    expect(errorsOf("a: &a [1]\nm: {<<: *a}\n")).toEqual(["x.yaml: m[\"<<\"] must be a mapping or a list of mappings (merge key)"]);
  });

  it("reads keys as their text, so 1 and '1' are the same key: a duplicate", () => {
    expect(errorsOf("1: a\n'1': b\n")).toEqual(['x.yaml: has the key "1" more than once']);
    expect(errorsOf("m:\n  true: a\n  'true': b\n")).toEqual(['x.yaml: m has the key "true" more than once']);
    expect(Object.keys(read("1.10: a\n").value as object)).toEqual(["1.10"]);
  });

  it("keeps keys such as __proto__ as data", () => {
    const { value } = read("__proto__: {polluted: true}\nconstructor: 1\n");
    expect(Object.keys(value as object)).toEqual(["__proto__", "constructor"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("refuses lists and mappings as keys, before anything writes them out", () => {
    expect(errorsOf("{a: 1}: 2\n")).toEqual(["x.yaml: has a key that is a list or mapping; keys must be plain text"]);
    expect(errorsOf("m:\n  ? [a, b]\n  : 1\n")).toEqual(["x.yaml: m has a key that is a list or mapping; keys must be plain text"]);
    expect(errorsOf("a: &k [1]\nm: {*k : 1}\n")).toEqual(["x.yaml: m has a key that is an alias of something other than a defined scalar; keys must be plain text"]);
  });

  it("takes an alias of a scalar as a key", () => {
    expect(plain(read("a: &k name\nm: {*k : 1}\n").value)).toEqual({ a: "name", m: { name: 1 } });
  });

  it("accepts the core tags and refuses others, or reads local tags as untagged when allowed", () => {
    expect(plain(read("a: !!str 1.10\nb: !!int '7'\nc: !!map {d: !!seq [1]}\n").value)).toEqual({ a: "1.10", b: 7, c: { d: [1] } });
    for (const [text, tag] of [
      ["a: !!binary aGVsbG8=", "!!binary"],
      ["a: !!timestamp 2001-12-14", "!!timestamp"],
      ["a: !!set {x: null}", "!!set"],
      ["a: !reset []", "!reset"],
    ]) {
      expect(errorsOf(text!)).toEqual([`x.yaml: a uses the YAML tag "${tag}", which is not supported here`]);
    }
    expect(plain(read("a: !reset []\nb: !override {c: 1}\n", { allowLocalTags: true }).value)).toEqual({ a: [], b: { c: 1 } });
  });

  it("refuses an alias used before its anchor or inside the value it names", () => {
    expect(errorsOf("a: *nope\n")).toEqual(['x.yaml: a uses the alias "nope" before its anchor is defined']);
    expect(errorsOf("a: &x [1, *x]\n")).toEqual(['x.yaml: a[1] uses the alias "x" inside the value it names']);
  });

  it("refuses several documents", () => {
    expect(errorsOf("a: 1\n---\nb: 2\n")).toEqual(["x.yaml: holds several YAML documents (the second starts at line 2, column 1); only one is allowed"]);
  });

  it("reports syntax errors with their line and column, once per kind", () => {
    expect(errorsOf("a: [1, 2\nb: 3\n")).toEqual(["x.yaml: is not valid YAML (line 2, column 1): Flow sequence in block collection must be sufficiently indented and end with a ]"]);
    expect(errorsOf("a:\n\tb: 1\nc:\n\td: 2\n")).toHaveLength(1);
  });

  it("never throws on input that is not text", () => {
    for (const input of [undefined, null, 42, {}, ["a"]]) expect(readBoundedYaml(input, "x.yaml")).toEqual({ ok: false, errors: ["x.yaml: is not text"] });
  });
});

describe("readBoundedYaml: limits, checked while reading", () => {
  it("refuses more bytes than maxBytes, counted in UTF-8", () => {
    expect(errorsOf("a: ééé\n", { maxBytes: 8 })).toEqual(["x.yaml: is larger than 8 bytes"]);
    expect(errorsOf(`a: ${"€".repeat(30_000)}`)).toEqual(["x.yaml: is larger than 64 KiB"]);
    expect(read("a: ééé", { maxBytes: 9 }).value).toEqual({ a: "ééé" });
  });

  it("stops at maxTokens keys, values and indicators, and at maxLexemes counting layout", () => {
    expect(errorsOf("a: [1, 2, 3, 4, 5, 6]\n", { maxTokens: 10 })).toEqual(["x.yaml: has more than 10 YAML tokens (keys, values and indicators) (at line 1, column 14)"]);
    expect(read("a: [1, 2, 3]\n", { maxTokens: 10 }).value).toEqual({ a: [1, 2, 3] });
    expect(errorsOf(`a: 1${"\n".repeat(50)}`, { maxLexemes: 40 })).toEqual([
      "x.yaml: has more than 40 YAML tokens counting spaces, line breaks and comments; make it shorter (at line 34, column 1)",
    ]);
  });

  it(`allows ${DEFAULT_YAML_LIMITS.maxDepth} levels of nesting, in flow, block and compact style, and no more`, () => {
    const depth = DEFAULT_YAML_LIMITS.maxDepth;
    const flow = (n: number) => `${"[".repeat(n)}x${"]".repeat(n)}`;
    const block = (n: number) => Array.from({ length: n }, (_, i) => `${"  ".repeat(i)}k${i}:`).join("\n") + " x\n";
    const compact = (n: number) => `${"- ".repeat(n)}x\n`;
    for (const make of [flow, block, compact]) {
      expect(readBoundedYaml(make(depth), "x.yaml").ok).toBe(true);
      expect(errorsOf(make(depth + 1))).toEqual([expect.stringMatching(/^x\.yaml: .*nests collections more than 32 levels deep/)]);
    }
    // Far deeper input stops while it is parsed, long before its end.
    expect(errorsOf(`a: ${"[".repeat(30_000)}`)).toEqual(["x.yaml: nests collections more than 32 levels deep (at line 1, column 38)"]);
  });

  it("limits aliases, anchors and tags", () => {
    expect(errorsOf(`a: &a 1\nb: [${Array(4).fill("*a").join(", ")}]\n`, { maxAliases: 3 })).toEqual(["x.yaml: has more than 3 YAML aliases (*name) (at line 2, column 17)"]);
    expect(errorsOf("a: &a 1\nb: &b 2\n", { maxAliases: 1 })).toEqual(["x.yaml: has more than 1 YAML anchors (&name) (at line 2, column 4)"]);
    expect(errorsOf("a: !!str 1\nb: !!str 2\n", { maxAliases: 1 })).toEqual(["x.yaml: has more than 1 YAML tags (!tag) (at line 2, column 4)"]);
  });

  it("limits the characters of one scalar, key or value", () => {
    expect(errorsOf("a: abcdef\n", { maxScalarChars: 5 })).toEqual(["x.yaml: a is longer than 5 characters"]);
    expect(errorsOf("? abcdef\n: 1\n", { maxScalarChars: 5 })).toEqual(["x.yaml: is longer than 5 characters"]);
  });

  it("limits the values and text the document stands for once aliases and merges are expanded", () => {
    const bomb = `a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\n${"bcdefghi".split("").map((n, i) => `${n}: &${n} [${Array(9).fill(`*${i === 0 ? "a" : "bcdefghi"[i - 1]}`).join(", ")}]`).join("\n")}\n`;
    expect(errorsOf(bomb)).toEqual(["x.yaml: has more than 20000 values once its aliases and merge keys are expanded"]);
    expect(errorsOf(`s: &s ${"x".repeat(10_000)}\nl: [${Array(30).fill("*s").join(", ")}]\n`)).toEqual(["x.yaml: has more than 256 KiB of text once its aliases and merge keys are expanded"]);
    expect(read(`s: &s ${"x".repeat(10_000)}\nl: [${Array(20).fill("*s").join(", ")}]\n`).ok).toBe(true);
  });
});

describe("error messages", () => {
  it(`quote at most ${MAX_QUOTED_CHARS} characters of the input, with invisible and bidi characters escaped`, () => {
    const sneaky = `evil\u202Egnp.exe\u200B${"x".repeat(100)}`;
    const [error] = errorsOf(`"${sneaky}": 1\n"${sneaky}": 2\n`);
    expect(error).toBe(`x.yaml: has the key "evil\\u202egnp.exe\\u200b${"x".repeat(MAX_QUOTED_CHARS - 13)}…" more than once`);
    expect(quoteInput("a\u0000\u2066b\ud800")).toBe('"a\\u0000\\u2066b\\ud800"');
  });

  it("cut the yaml package's messages, which may quote the input", () => {
    const errors = errorsOf(`a: |${"z".repeat(60_000)}\n  b\n`);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.length).toBeLessThan(200);
    const tagErrors = errorsOf(`a: !x!${"y".repeat(60_000)} 1\n`);
    expect(tagErrors.every((e) => e.length < 200)).toBe(true);
  });

  it("shorten long paths in the middle", () => {
    expect(formatPath(["builds", "api", "build_args", "A"])).toBe("builds.api.build_args.A");
    expect(formatPath(Array.from({ length: 12 }, (_, i) => i))).toBe("[0][1][2][3]…[8][9][10][11]");
    expect(formatPath(["a", "b c", "x".repeat(50)])).toBe(`a["b c"]["${"x".repeat(40)}…"]`);
  });
});
