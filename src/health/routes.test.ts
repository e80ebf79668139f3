import { env, exports } from "cloudflare:workers";
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../index.ts";
import { countRoundTrips } from "../../test/db.ts";

const call = (path: string, init?: RequestInit) => exports.default.fetch(new Request(`https://stagely.test${path}`, init));

async function callWithEnv(path: string, overrides: Partial<Env>) {
  const ctx = createExecutionContext();
  const response = await worker.fetch(new Request(`https://stagely.test${path}`), { ...env, ...overrides } as Env, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

afterEach(() => vi.restoreAllMocks());

describe("GET /health", () => {
  it("answers without touching the database", async () => {
    let response!: Response;
    expect(await countRoundTrips(async () => (response = await call("/health")))).toBe(0);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "ok" });
  });

  it("answers even when the configuration is broken", async () => {
    const response = await callWithEnv("/health", { ENCRYPTION_KEY: "" });
    expect(response.status).toBe(200);
  });
});

describe("GET /ready", () => {
  it("is ready after exactly one database round trip", async () => {
    let response!: Response;
    expect(await countRoundTrips(async () => (response = await call("/ready")))).toBe(1);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "ready", database: "ok" });
  });

  it("answers 503 with a JSON reason, and no password, when the database is unreachable", async () => {
    const response = await callWithEnv("/ready", { DATABASE_URL: "postgres://app:hunter2-db-password@127.0.0.1:9/stagely" });
    expect(response.status).toBe(503);
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({
      error: { code: "SERVICE_UNAVAILABLE", message: "database is unreachable", request_id: response.headers.get("x-request-id") },
    });
    expect(text).not.toContain("hunter2");
  });

  it("answers 500 without details when the configuration is invalid, and logs which settings are wrong (not their values)", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const badKey = "12".repeat(10);
    const response = await callWithEnv("/ready", { ENCRYPTION_KEY: badKey });
    expect(response.status).toBe(500);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("INTERNAL");
    expect(body.error.message).not.toContain("ENCRYPTION_KEY");
    const lines = logged.mock.calls.map((args) => String(args[0]));
    expect(lines.some((line) => line.includes("ENCRYPTION_KEY must be 64 hex characters"))).toBe(true);
    expect(lines.join("\n")).not.toContain(badKey);
  });
});

describe("every response", () => {
  it("carries a request id, keeping a well-formed incoming one", async () => {
    const generated = await call("/health");
    expect(generated.headers.get("x-request-id")).toMatch(/^req_[0-9a-f]{32}$/);
    const kept = await call("/health", { headers: { "X-Request-Id": "trace-abc-12345" } });
    expect(kept.headers.get("x-request-id")).toBe("trace-abc-12345");
    const replaced = await call("/health", { headers: { "X-Request-Id": "bad id <script>" } });
    expect(replaced.headers.get("x-request-id")).toMatch(/^req_/);
  });

  it("uses the one error shape for unknown routes", async () => {
    const response = await call("/v1/nothing-here");
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({
      error: { code: "NOT_FOUND", message: "no route for GET /v1/nothing-here", request_id: response.headers.get("x-request-id") },
    });
  });

  it("rejects bodies over the limit with 413 in the error shape", async () => {
    const response = await call("/health", { method: "POST", body: "x".repeat(1024 * 1024 + 1) });
    expect(response.status).toBe(413);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("PAYLOAD_TOO_LARGE");
  });

  it("writes one structured JSON access log line with the request id", async () => {
    const logged = vi.spyOn(console, "log").mockImplementation(() => {});
    const response = await callWithEnv("/health", { LOG_LEVEL: "info" });
    const lines = logged.mock.calls.map((args) => JSON.parse(String(args[0])) as Record<string, unknown>);
    expect(lines).toContainEqual(
      expect.objectContaining({ level: "info", msg: "request", method: "GET", path: "/health", status: 200, request_id: response.headers.get("x-request-id") }),
    );
  });
});
