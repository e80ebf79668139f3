import * as z from "zod";

/** Shared request pieces. */
export const slug = z
  .string()
  .min(2)
  .max(63)
  .regex(/^[a-z0-9][a-z0-9-]*[a-z0-9]$/, "must be lowercase letters, digits and dashes, not starting or ending with a dash");

export const teamRef = z.string().min(2).max(64).regex(/^[a-z0-9_-]+$/, "must be a team id or slug");

export const idOf = (prefix: string) =>
  z.string().regex(new RegExp(`^${prefix}_[0-9a-z]{16}$`), `must be an id like ${prefix}_0123456789abcdef`);

export const teamParams = z.object({ team: teamRef });

export const timestamp = z.iso.datetime();

/**
 * Years 0001-9999 in UTC: what Postgres stores and `Date.toISOString()` writes in its plain form (outside it, Postgres
 * refuses year 0 and the six-digit `+010000` form). False for an invalid date.
 */
export function isStorableInstant(date: Date): boolean {
  const year = date.getUTCFullYear();
  return year >= 1 && year <= 9999;
}

/** A date and time in a request (query or body), with any offset, that Postgres can compare with its timestamps. */
export const timestampInput = z.iso
  .datetime({ offset: true })
  .refine((value) => isStorableInstant(new Date(value)), "must be between 0001-01-01 and 9999-12-31 (UTC)");

export const iso = (value: Date | null): string | null => (value ? value.toISOString() : null);

/** A name made from free text into a slug: "My App!" → "my-app". */
export function slugify(text: string): string {
  return text
    .toLowerCase()
    .normalize("NFKD")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 63);
}
