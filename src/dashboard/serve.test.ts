import { describe, expect, it } from "vitest";
import { call } from "../../test/harness.ts";

describe("the dashboard, served by the Worker", () => {
  it("serves the app shell at / and at every page address, with a strict content security policy", async () => {
    for (const path of ["/", "/t/acme/environments", "/t/acme/environments/env_0123456789abcdef", "/sign-in"]) {
      const response = await call("GET", path);
      expect(response.status, path).toBe(200);
      expect(response.headers.get("content-type"), path).toMatch(/^text\/html/);
      expect(response.text).toMatch(/<script type="module" src="\/ui\/app-[A-Z0-9]{8}\.js">/);
      const policy = response.headers.get("content-security-policy")!;
      expect(policy).toContain("default-src 'self'");
      expect(policy).toContain("frame-ancestors 'none'");
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    }
  });

  it("serves the content-hashed bundles as immutable, and a missing file as a 404, not the shell", async () => {
    const shell = await call("GET", "/");
    for (const path of [/src="(\/ui\/[^"]+\.js)"/.exec(shell.text)![1]!, /href="(\/ui\/[^"]+\.css)"/.exec(shell.text)![1]!]) {
      const bundle = await call("GET", path);
      expect(bundle.status, path).toBe(200);
      expect(bundle.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
      expect(bundle.headers.get("content-security-policy")).toBeNull();
    }
    const missing = await call("GET", "/ui/app-AAAAAAAA.js");
    expect(missing.status).toBe(404);
    expect(missing.text).not.toContain("<script");
  });

  it("leaves the API's addresses to the API: unknown ones are JSON 404s, docs and health still answer", async () => {
    for (const path of ["/v1", "/v1/nope", "/v1/teams/acme/nothing-here"]) {
      const response = await call("GET", path);
      expect(response.status, path).toBe(404);
      expect(response.body.error.code, path).toBe("NOT_FOUND");
    }
    expect((await call("GET", "/health")).status).toBe(200);
    expect((await call("GET", "/docs")).text).toContain("/v1/");
    expect((await call("POST", "/t/acme/environments")).status).toBe(404);
  });
});
