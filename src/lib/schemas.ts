import { z } from "zod";

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
