import { and, desc, eq, lt, or, type AnyColumn, type SQL } from "drizzle-orm";
import * as z from "zod";
import { ApiError } from "./errors.ts";
import { isStorableInstant } from "./schemas.ts";

/** `?limit=&cursor=` accepted by every list. */
export const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().max(200).optional(),
});

export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

export const pageSchema = <T extends z.ZodType>(item: T) => z.object({ data: z.array(item), next_cursor: z.string().nullable() });

interface Position {
  at: Date;
  id: string;
}

function encode(position: Position): string {
  return btoa(JSON.stringify([position.at.toISOString(), position.id])).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

/** Our ids are a prefix, an underscore and lowercase alphanumerics (src/lib/ids.ts); GitHub's are numbers. */
const cursorId = /^(?:[a-z]+_[0-9a-z]{1,32}|[1-9][0-9]{0,18})$/;

function decode(cursor: string): Position {
  try {
    const [at, id] = JSON.parse(atob(cursor.replaceAll("-", "+").replaceAll("_", "/"))) as [unknown, unknown];
    if (typeof at !== "string" || typeof id !== "string" || !cursorId.test(id)) throw new Error();
    const date = new Date(at);
    // A forged time outside what Postgres stores would make the query fail rather than select nothing.
    if (!isStorableInstant(date)) throw new Error();
    return { at: date, id };
  } catch {
    throw new ApiError("VALIDATION_FAILED", "invalid cursor: pass the next_cursor of the previous page unchanged", {
      issues: [{ path: "cursor", message: "invalid cursor" }],
    });
  }
}

/**
 * Newest first, keyset-paginated on (time, id). Returns the WHERE condition for the page after `cursor`, the
 * ORDER BY, and a function that cuts the limit+1 rows fetched into a page.
 */
export function keyset(timeColumn: AnyColumn, idColumn: AnyColumn, query: { limit: number; cursor?: string }) {
  const after = query.cursor ? decode(query.cursor) : undefined;
  const where: SQL | undefined = after
    ? or(lt(timeColumn, after.at), and(eq(timeColumn, after.at), lt(idColumn, after.id)))
    : undefined;
  return {
    where,
    orderBy: [desc(timeColumn), desc(idColumn)] as const,
    fetch: query.limit + 1,
    page<Row, Item>(rows: Row[], positionOf: (row: Row) => Position, toItem: (row: Row) => Item): Page<Item> {
      const more = rows.length > query.limit;
      const kept = more ? rows.slice(0, query.limit) : rows;
      const last = kept[kept.length - 1];
      return { data: kept.map(toItem), next_cursor: more && last ? encode(positionOf(last)) : null };
    },
  };
}
