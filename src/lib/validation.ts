import { zValidator } from "@hono/zod-validator";
import type { ValidationTargets } from "hono";
import type { z } from "zod";
import { ApiError } from "./errors.ts";

/** zod validation for a request part; failures become a 400 naming every failing field. */
export function validate<Target extends keyof ValidationTargets, Schema extends z.ZodType>(target: Target, schema: Schema) {
  return zValidator(target, schema, (result) => {
    if (result.success) return;
    const issues = result.error.issues.map((issue) => ({
      path: issue.path.length ? issue.path.join(".") : target,
      message: issue.message,
    }));
    const summary = issues.map((i) => `${i.path}: ${i.message}`).join("; ");
    throw new ApiError("VALIDATION_FAILED", `invalid ${target}: ${summary}`, { issues });
  });
}
