import { Hono } from "hono/tiny";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import * as z from "zod";
import type { AppEnv } from "../app-env.ts";
import { handleError, handleNotFound } from "./errors.ts";
import { requestContext } from "./request-context.ts";
import { validate } from "./validation.ts";

// The app's error handling and validation, mounted on a route of this test's own (the API has no JSON route yet).
const app = new Hono<AppEnv>()
  .use(requestContext)
  .post("/things", validate("json", z.object({ name: z.string().min(1), size: z.enum(["small", "large"]) }).strict()), (c) =>
    c.json({ ok: c.req.valid("json").name }),
  )
  .get("/things/:id", validate("param", z.object({ id: z.string().regex(/^\d+$/) })), validate("query", z.object({ limit: z.coerce.number().int() })), (c) =>
    c.json({ id: c.req.valid("param").id }),
  )
  .get("/boom", () => {
    throw new Error("database password is hunter2");
  })
  .notFound(handleNotFound)
  .onError(handleError);

const post = (body: string) => app.request("/things", { method: "POST", body, headers: { "content-type": "application/json" } }, env);

afterEach(() => vi.restoreAllMocks());

describe("error handling", () => {
  it("answers malformed JSON with 400 in the error shape", async () => {
    const response = await post("{not json");
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      error: { code: "BAD_REQUEST", message: "request body is not valid JSON", request_id: response.headers.get("x-request-id") },
    });
  });

  it("names every failing field, including unknown ones", async () => {
    const response = await post(JSON.stringify({ name: "", size: "huge", extra: 1 }));
    expect(response.status).toBe(400);
    const { error } = (await response.json()) as { error: { code: string; issues: { path: string }[]; message: string } };
    expect(error.code).toBe("VALIDATION_FAILED");
    expect(error.issues.map((i) => i.path).sort()).toEqual(["body", "name", "size"]);
    expect(error.message).toMatch(/^invalid body: /);
    expect(error.message).not.toContain("content-type");
  });

  it("names the part of the request that is wrong, and hints at the header when a body was not sent as JSON", async () => {
    const unlabelled = await app.request("/things", { method: "POST", body: JSON.stringify({ name: "a", size: "small" }), headers: { "content-type": "text/plain" } }, env);
    expect(unlabelled.status).toBe(400);
    const { error } = (await unlabelled.json()) as { error: { message: string } };
    expect(error.message).toMatch(/^invalid body: /);
    expect(error.message).toContain("send it with the header content-type: application/json, not text/plain");

    const query = (await (await app.request("/things/x?limit=many", {}, env)).json()) as { error: { message: string } };
    expect(query.error.message).toMatch(/^invalid path: id: /);
    const limit = (await (await app.request("/things/12?limit=many", {}, env)).json()) as { error: { message: string } };
    expect(limit.error.message).toMatch(/^invalid query: limit: /);
  });

  it("hides unexpected errors behind a 500 with no message or stack, and logs them", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const response = await app.request("/boom", {}, env);
    expect(response.status).toBe(500);
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({ error: { code: "INTERNAL", message: "internal error", request_id: response.headers.get("x-request-id") } });
    expect(text).not.toContain("hunter2");
    expect(logged).toHaveBeenCalled();
  });
});
