import { Composer, CST, isAlias, isMap, isPair, isScalar, isSeq, Lexer, Parser, type Node as YamlNode } from "yaml";
import { hiddenCharacters } from "../lib/text.ts";

/**
 * A YAML reader for repository content (stagely.yaml, the compose file), which on fork pull requests comes from
 * anyone. Whatever the input, reading it costs bounded time and memory: the limits are checked while the text is
 * lexed and parsed (tokens, nesting depth, anchors, aliases and tags, before the `yaml` package's Composer runs) and
 * while the composed document is turned into plain values (depth, string lengths, duplicate keys, the size after
 * aliases and merge keys are expanded). Errors are short and name the path (or the line): they never quote more than
 * a few dozen characters of the input.
 *
 * Values come out as plain data: mappings (objects with no prototype), arrays, strings, numbers, booleans, null.
 * Keys must be scalars; a key is the text of the scalar (`1:` and `'1':` are the same key, and a duplicate).
 * `textOf(container, key)` answers a scalar's text as written (`1.10`, `007`, `yes`) for callers that keep it.
 * Aliases share the value of their anchor (nothing is copied); merge keys (`<<: *base`) copy the base's entries.
 */

export interface YamlLimits {
  /** UTF-8 bytes of the text. */
  maxBytes: number;
  /** Lexical tokens other than spaces, line breaks and comments: keys, values, indicators. */
  maxTokens: number;
  /** All lexical tokens, layout included. */
  maxLexemes: number;
  /** Nesting of collections. */
  maxDepth: number;
  /** Each of: aliases (`*a`), anchors (`&a`) and tags (`!t`). */
  maxAliases: number;
  /** Characters of one scalar (a key or a value). */
  maxScalarChars: number;
  /** Values and characters of the document as if every alias and merge key were written out in full. */
  maxExpandedValues: number;
  maxExpandedChars: number;
  /** Local tags (`!reset`, `!override` in compose files) are read as if untagged; otherwise any non-core tag is an error. */
  allowLocalTags: boolean;
}

export const DEFAULT_YAML_LIMITS: YamlLimits = {
  maxBytes: 64 * 1024,
  maxTokens: 6_000,
  maxLexemes: 12_000,
  maxDepth: 32,
  maxAliases: 100,
  maxScalarChars: 16 * 1024,
  maxExpandedValues: 20_000,
  maxExpandedChars: 256 * 1024,
  allowLocalTags: false,
};

export type Path = (string | number)[];
export type Mapping = Record<string, unknown>;

/** The most characters of the input an error quotes. */
export const MAX_QUOTED_CHARS = 40;
/** More problems than this are summarized in one last line. */
export const MAX_PROBLEMS = 50;

/** A piece of the input fit to appear in a message: quoted, at most MAX_QUOTED_CHARS, hidden characters as \uXXXX. */
export function quoteInput(text: string): string {
  const cut = text.length > MAX_QUOTED_CHARS ? `${text.slice(0, MAX_QUOTED_CHARS).replace(/[\ud800-\udbff]$/, "")}…` : text;
  return JSON.stringify(cut).replace(hiddenCharacters, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

const identifier = /^[A-Za-z0-9_-]+$/;

/** Segments a path shows at each end when it is longer than twice this (the middle becomes `…`). */
const PATH_ENDS = 4;

export function formatPath(path: Path): string {
  let out = "";
  path.forEach((segment, index) => {
    if (path.length > 2 * PATH_ENDS && index >= PATH_ENDS && index < path.length - PATH_ENDS) {
      if (index === PATH_ENDS) out += "…";
      return;
    }
    if (typeof segment === "number") out += `[${segment}]`;
    else if (identifier.test(segment) && segment.length <= MAX_QUOTED_CHARS) out += out ? `.${segment}` : segment;
    else out += `[${quoteInput(segment)}]`;
  });
  return out;
}

/** Problems of one file, each a line `<file>: <path> <message>`, in the order found, without repeats. */
export class Problems {
  private readonly seen = new Set<string>();
  readonly list: string[] = [];
  readonly file: string;

  constructor(file: string) {
    this.file = file;
  }

  add(path: Path, message: string): void {
    const line = path.length ? `${this.file}: ${formatPath(path)} ${message}` : `${this.file}: ${message}`;
    if (this.seen.has(line)) return;
    this.seen.add(line);
    this.list.push(line);
  }

  get count(): number {
    return this.list.length;
  }

  /** The problems, at most MAX_PROBLEMS and a line counting the rest. */
  summary(): string[] {
    if (this.list.length <= MAX_PROBLEMS) return [...this.list];
    return [...this.list.slice(0, MAX_PROBLEMS), `${this.file}: ${this.list.length - MAX_PROBLEMS} more errors not shown`];
  }
}

export function isMapping(value: unknown): value is Mapping {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

export type YamlReadResult =
  | { ok: true; value: unknown; textOf: (container: object, key: string | number) => string | undefined }
  | { ok: false; errors: string[] };

/** Thrown inside the reader when a limit is reached: reading stops at once. */
class LimitReached extends Error {}

const coreTags = new Set(["str", "int", "float", "bool", "null", "map", "seq"].map((t) => `tag:yaml.org,2002:${t}`));
const layoutTokens = new Set<string>(["space", "newline", "comment", "byte-order-mark"]);

function sizeText(bytes: number): string {
  return bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} bytes`;
}

function byteLength(text: string): number {
  return new TextEncoder().encode(text).length;
}

function lineAndColumn(text: string, offset: number): string {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(Math.max(0, offset), text.length);
  for (let i = text.indexOf("\n"); i !== -1 && i < end; i = text.indexOf("\n", i + 1)) {
    line += 1;
    lineStart = i + 1;
  }
  return `line ${line}, column ${end - lineStart + 1}`;
}

function shortTag(tag: string): string {
  return tag.startsWith("tag:yaml.org,2002:") ? `!!${tag.slice("tag:yaml.org,2002:".length)}` : tag;
}

/** A message of the yaml package, which may quote the input: cut to a safe length. */
function yamlMessage(message: string): string {
  const text = message.replace(/\s+/g, " ").trim();
  const cut = text.length > 100 ? `${text.slice(0, 100)}…` : text;
  return cut.replace(hiddenCharacters, "\uFFFD");
}

/**
 * Lexes and parses with the limits checked at every token, so a hostile text stops early; answers the CST.
 * Throws LimitReached after recording the problem.
 */
function parseBounded(text: string, limits: YamlLimits, problems: Problems): CST.Token[] {
  const lexer = new Lexer();
  const parser = new Parser();
  const tokens: CST.Token[] = [];
  let lexemes = 0;
  let significantTokens = 0;
  const counts = { alias: 0, anchor: 0, tag: 0 };
  const stop = (message: string): never => {
    problems.add([], `${message} (at ${lineAndColumn(text, parser.offset)})`);
    throw new LimitReached();
  };
  for (const lexeme of lexer.lex(text)) {
    lexemes += 1;
    if (lexemes > limits.maxLexemes) stop(`has more than ${limits.maxLexemes} YAML tokens counting spaces, line breaks and comments; make it shorter`);
    // A plain scalar comes as a "scalar" marker and then its text (type null), which is not counted again.
    const type = CST.tokenType(lexeme);
    if (type !== null && !layoutTokens.has(type)) {
      significantTokens += 1;
      if (significantTokens > limits.maxTokens) stop(`has more than ${limits.maxTokens} YAML tokens (keys, values and indicators)`);
    }
    if (type === "alias" || type === "anchor" || type === "tag") {
      counts[type] += 1;
      if (counts[type] > limits.maxAliases) stop(`has more than ${limits.maxAliases} YAML ${type === "alias" ? "aliases (*name)" : type === "anchor" ? "anchors (&name)" : "tags (!tag)"}`);
    }
    for (const token of parser.next(lexeme)) tokens.push(token);
    // The parser's stack holds the document and each open collection (and a scalar or key being read).
    if (parser.stack.length > limits.maxDepth + 3) stop(`nests collections more than ${limits.maxDepth} levels deep`);
  }
  for (const token of parser.end()) tokens.push(token);
  return tokens;
}

/** A converted node: its value, its text as written (scalars other than strings), and the values and characters it stands for. */
interface Converted {
  value: unknown;
  text?: string;
  values: number;
  chars: number;
}

/** Turns the composed document into plain values, within the limits. */
class Converter {
  private readonly anchors = new Map<string, Converted | "open">();
  private readonly texts = new WeakMap<object, Map<string | number, string>>();
  private values = 0;
  private chars = 0;
  private readonly limits: YamlLimits;
  private readonly problems: Problems;

  constructor(limits: YamlLimits, problems: Problems) {
    this.limits = limits;
    this.problems = problems;
  }

  textOf = (container: object, key: string | number): string | undefined => this.texts.get(container)?.get(key);

  private spend(values: number, chars: number): void {
    this.values += values;
    this.chars += chars;
    if (this.values > this.limits.maxExpandedValues) {
      this.problems.add([], `has more than ${this.limits.maxExpandedValues} values once its aliases and merge keys are expanded`);
      throw new LimitReached();
    }
    if (this.chars > this.limits.maxExpandedChars) {
      this.problems.add([], `has more than ${sizeText(this.limits.maxExpandedChars)} of text once its aliases and merge keys are expanded`);
      throw new LimitReached();
    }
  }

  private remember(container: object, key: string | number, text: string): void {
    let texts = this.texts.get(container);
    if (!texts) this.texts.set(container, (texts = new Map()));
    texts.set(key, text);
  }

  private checkTag(node: YamlNode, path: Path): boolean {
    const tag = node.tag;
    if (tag === undefined || coreTags.has(tag)) return true;
    if (tag.startsWith("!") && this.limits.allowLocalTags) return true;
    this.problems.add(path, `uses the YAML tag ${quoteInput(shortTag(tag))}, which is not supported here`);
    return false;
  }

  convert(node: unknown, path: Path, depth: number): Converted {
    if (depth > this.limits.maxDepth) {
      this.problems.add(path, `nests collections more than ${this.limits.maxDepth} levels deep`);
      throw new LimitReached();
    }
    if (node === null || node === undefined) {
      this.spend(1, 0);
      return { value: null, values: 1, chars: 0 };
    }
    if (isAlias(node)) {
      const anchored = this.anchors.get(node.source);
      if (anchored === undefined) {
        this.problems.add(path, `uses the alias ${quoteInput(node.source)} before its anchor is defined`);
        return { value: null, values: 1, chars: 0 };
      }
      if (anchored === "open") {
        this.problems.add(path, `uses the alias ${quoteInput(node.source)} inside the value it names`);
        return { value: null, values: 1, chars: 0 };
      }
      this.spend(anchored.values, anchored.chars);
      return anchored;
    }
    const yamlNode = node as YamlNode;
    if (yamlNode.anchor) this.anchors.set(yamlNode.anchor, "open");
    const result = this.convertNode(yamlNode, path, depth);
    if (yamlNode.anchor) this.anchors.set(yamlNode.anchor, result);
    return result;
  }

  private convertNode(node: YamlNode, path: Path, depth: number): Converted {
    const tagOk = this.checkTag(node, path);
    if (isScalar(node)) {
      const value = node.value;
      if (!tagOk) return { value: null, values: 1, chars: 0 };
      if (typeof value === "string") {
        if (value.length > this.limits.maxScalarChars) {
          this.problems.add(path, `is longer than ${this.limits.maxScalarChars} characters`);
          return { value: null, values: 1, chars: 0 };
        }
        this.spend(1, value.length);
        return { value, values: 1, chars: value.length };
      }
      if (value === null || typeof value === "boolean" || typeof value === "number") {
        const text = typeof node.source === "string" ? node.source : String(value);
        this.spend(1, text.length);
        return { value, text, values: 1, chars: text.length };
      }
      this.problems.add(path, "is not a plain YAML value");
      return { value: null, values: 1, chars: 0 };
    }
    if (isSeq(node)) {
      const items: unknown[] = [];
      let values = 1;
      let chars = 0;
      this.spend(1, 0);
      node.items.forEach((item, index) => {
        const converted = this.convert(item, [...path, index], depth + 1);
        if (converted.text !== undefined) this.remember(items, index, converted.text);
        items.push(converted.value);
        values += converted.values;
        chars += converted.chars;
      });
      return { value: items, values, chars };
    }
    if (isMap(node)) return this.convertMap(node.items, path, depth);
    this.problems.add(path, "is not a plain YAML value");
    return { value: null, values: 1, chars: 0 };
  }

  private convertMap(pairs: unknown[], path: Path, depth: number): Converted {
    const map: Mapping = Object.create(null) as Mapping;
    const explicit = new Set<string>();
    let values = 1;
    let chars = 0;
    this.spend(1, 0);
    for (const pair of pairs) {
      if (!isPair(pair)) continue;
      const keyNode = pair.key as YamlNode | null;
      if (isScalar(keyNode) && keyNode.type === "PLAIN" && keyNode.value === "<<" && !keyNode.tag) {
        const merged = this.convert(pair.value, [...path, "<<"], depth + 1);
        values += merged.values;
        chars += merged.chars;
        this.merge(map, merged.value, [...path, "<<"]);
        continue;
      }
      const key = this.keyOf(keyNode, path, depth);
      if (key === undefined) continue;
      values += 1;
      chars += key.length;
      if (explicit.has(key)) {
        this.problems.add(path, `has the key ${quoteInput(key)} more than once`);
        continue;
      }
      explicit.add(key);
      const converted = this.convert(pair.value, [...path, key], depth + 1);
      values += converted.values;
      chars += converted.chars;
      map[key] = converted.value;
      if (converted.text !== undefined) this.remember(map, key, converted.text);
      else this.texts.get(map)?.delete(key);
    }
    return { value: map, values, chars };
  }

  /** A key's text; undefined (and a problem) when the key is not a scalar. */
  private keyOf(node: YamlNode | null, path: Path, depth: number): string | undefined {
    if (node === null) return "";
    let keyNode: unknown = node;
    if (isAlias(node)) {
      const anchored = this.anchors.get(node.source);
      if (anchored === undefined || anchored === "open" || typeof anchored.value === "object") {
        this.problems.add(path, "has a key that is an alias of something other than a defined scalar; keys must be plain text");
        return undefined;
      }
      const text = typeof anchored.value === "string" ? anchored.value : (anchored.text ?? "");
      this.spend(1, text.length);
      return text;
    }
    if (!isScalar(keyNode)) {
      // Refused before anything reads it: a collection used as a key would have to be written out as text.
      this.problems.add(path, "has a key that is a list or mapping; keys must be plain text");
      return undefined;
    }
    const converted = this.convert(keyNode, path, depth + 1);
    if (typeof converted.value === "string") return converted.value;
    return converted.text ?? (converted.value === null ? "" : String(converted.value));
  }

  /**
   * `<<: *base` or `<<: [*a, *b]`: copies the entries not set yet (by a key before it or an earlier merge); a key
   * written after the merge key replaces the merged entry.
   */
  private merge(map: Mapping, source: unknown, path: Path): void {
    const sources = Array.isArray(source) ? source : [source];
    for (const from of sources) {
      if (!isMapping(from)) {
        this.problems.add(path, "must be a mapping or a list of mappings (merge key)");
        continue;
      }
      const keys = Object.keys(from);
      this.spend(keys.length, 0);
      for (const key of keys) {
        if (Object.hasOwn(map, key)) continue;
        map[key] = from[key];
        const text = this.texts.get(from)?.get(key);
        if (text !== undefined) this.remember(map, key, text);
      }
    }
  }
}

/**
 * Reads one YAML document within `limits`. `file` names it in errors (`stagely.yaml: builds.api has ...`).
 * Never throws on input: anything wrong is an error in the result.
 */
export function readBoundedYaml(text: unknown, file: string, limits: YamlLimits = DEFAULT_YAML_LIMITS): YamlReadResult {
  const problems = new Problems(file);
  if (typeof text !== "string") return { ok: false, errors: [`${file}: is not text`] };
  // Every UTF-16 unit is at least one UTF-8 byte, so a long string is refused before it is encoded.
  if (text.length > limits.maxBytes || byteLength(text) > limits.maxBytes) {
    return { ok: false, errors: [`${file}: is larger than ${sizeText(limits.maxBytes)}`] };
  }
  const stackTraceLimit = Error.stackTraceLimit;
  // The yaml package makes an Error per problem it finds; their stack traces would cost more than the parse.
  Error.stackTraceLimit = 0;
  try {
    const tokens = parseBounded(text, limits, problems);
    const composer = new Composer({ version: "1.2", schema: "core", uniqueKeys: false, merge: false, intAsBigInt: false, logLevel: "silent" });
    const documents = [...composer.compose(tokens, true, text.length)];
    if (documents.length > 1) {
      problems.add([], `holds several YAML documents (the second starts at ${lineAndColumn(text, documents[1]!.range[0])}); only one is allowed`);
      return { ok: false, errors: problems.summary() };
    }
    const document = documents[0];
    if (!document) return { ok: true, value: null, textOf: () => undefined };
    if (document.errors.length > 0) {
      const codes = new Set<string>();
      for (const error of document.errors) {
        if (codes.has(error.code)) continue;
        codes.add(error.code);
        problems.add([], `is not valid YAML (${lineAndColumn(text, error.pos[0])}): ${yamlMessage(error.message)}`);
      }
      return { ok: false, errors: problems.summary() };
    }
    const converter = new Converter(limits, problems);
    const { value } = converter.convert(document.contents, [], 0);
    if (problems.count > 0) return { ok: false, errors: problems.summary() };
    return { ok: true, value, textOf: converter.textOf };
  } catch (error) {
    if (error instanceof LimitReached) return { ok: false, errors: problems.summary() };
    throw error;
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
}
