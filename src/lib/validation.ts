import { zValidator } from "@hono/zod-validator";
import type { ValidationTargets } from "hono";
import type { z } from "zod";
import { ApiError, type FieldIssue } from "./errors.ts";

/**
 * U+0000 and unpaired UTF-16 surrogates: Postgres refuses NUL in text and jsonb, and refuses an unpaired surrogate
 * in jsonb (in text it would silently become U+FFFD). With the `u` flag a well-formed pair is one code point, so
 * `\p{Cs}` matches only an unpaired half.
 */
const unstorable = /\u0000|\p{Cs}/u;

export function isStorableText(text: string): boolean {
  return !unstorable.test(text);
}

function textProblem(text: string): string {
  return text.includes("\u0000") ? "must not contain U+0000 (NUL)" : "must be valid Unicode text (it has an unpaired surrogate)";
}

const MAX_REPORTED = 10;

/**
 * Every string of a request part (values and object keys, at any depth, so jsonb payloads too) that Postgres could
 * not store, as issues naming where it is. Iterative, so a deeply nested body cannot exhaust the stack.
 */
export function unstorableTextIssues(value: unknown, root: string): FieldIssue[] {
  interface Visit {
    value: unknown;
    key: string | null;
    parent: Visit | null;
  }
  // Paths are built only for the few strings reported: each visit knows its parent, not its whole path.
  const pathOf = (visit: Visit): string => {
    const keys: string[] = [];
    for (let at: Visit | null = visit; at && at.key !== null; at = at.parent) keys.push(at.key);
    return keys.length ? keys.reverse().join(".") : root;
  };
  const issues: FieldIssue[] = [];
  const pending: Visit[] = [{ value, key: null, parent: null }];
  while (pending.length > 0 && issues.length < MAX_REPORTED) {
    const visit = pending.pop()!;
    const current = visit.value;
    if (typeof current === "string") {
      if (!isStorableText(current)) issues.push({ path: pathOf(visit), message: textProblem(current) });
    } else if (Array.isArray(current)) {
      current.forEach((item, index) => pending.push({ value: item, key: String(index), parent: visit }));
    } else if (current !== null && typeof current === "object") {
      for (const [key, item] of Object.entries(current)) {
        if (isStorableText(key)) pending.push({ value: item, key, parent: visit });
        else issues.push({ path: pathOf(visit), message: `has a key that ${textProblem(key)}` });
      }
    }
  }
  return issues;
}

/** The request part as a caller knows it (Hono's target names are its own: json, param). */
const PART: Partial<Record<keyof ValidationTargets, string>> = { json: "body", param: "path", query: "query", header: "header", form: "form", cookie: "cookie" };
const partOf = (target: keyof ValidationTargets) => PART[target] ?? target;

function validationFailed(part: string, issues: FieldIssue[], hint = ""): ApiError {
  const summary = issues.map((i) => `${i.path}: ${i.message}`).join("; ");
  return new ApiError("VALIDATION_FAILED", `invalid ${part}: ${summary}${hint}`, { issues });
}

/** Hono reads a body only when it is sent as JSON: without the header, a good body looks empty. */
function contentTypeHint(target: keyof ValidationTargets, contentType: string | undefined): string {
  if (target !== "json" || /^application\/([a-z0-9.+-]*\+)?json\b/i.test(contentType ?? "")) return "";
  return ` (the body was not read as JSON: send it with the header content-type: application/json${contentType ? `, not ${contentType}` : ""})`;
}

/**
 * zod validation for a request part; failures become a 400 naming every failing field. Before the schema runs,
 * every string of the part is checked to be storable text (see unstorableTextIssues), so no route has to think of it.
 */
export function validate<Target extends keyof ValidationTargets, Schema extends z.ZodType>(target: Target, schema: Schema) {
  return zValidator(
    target,
    schema,
    (result, c) => {
      if (result.success) return;
      throw validationFailed(
        partOf(target),
        result.error.issues.map((issue) => ({ path: issue.path.length ? issue.path.join(".") : partOf(target), message: issue.message })),
        contentTypeHint(target, c.req.header("content-type")),
      );
    },
    {
      validationFunction: (checked, value) => {
        const issues = unstorableTextIssues(value, partOf(target));
        if (issues.length > 0) throw validationFailed(partOf(target), issues);
        // The library types this result with a conditional type TypeScript cannot resolve for a generic schema.
        return checked.safeParseAsync(value) as never;
      },
    },
  );
}
