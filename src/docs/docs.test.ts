import { describe, expect, it } from "vitest";
import { call } from "../../test/harness.ts";
import { registeredRoutes } from "../lib/route.ts";

describe("API documentation", () => {
  it("generates /openapi.json from the same schemas that validate, covering every route", async () => {
    const response = await call("GET", "/openapi.json");
    expect(response.status).toBe(200);
    const document = response.body as { openapi: string; paths: Record<string, Record<string, any>> };
    expect(document.openapi).toBe("3.0.3");
    for (const route of registeredRoutes()) {
      const operation = document.paths[route.path.replace(/:([a-z_]+)/g, "{$1}")]?.[route.method];
      expect(operation, `${route.method} ${route.path}`).toBeDefined();
      if (route.body) expect(operation.requestBody.content["application/json"].schema).toBeTypeOf("object");
    }
    const createSecret = document.paths["/v1/projects/{id}/secrets"]!.post;
    const schema = createSecret.requestBody.content["application/json"].schema;
    expect(schema.required).toEqual(expect.arrayContaining(["key", "value"]));
    expect(schema.properties.key.pattern).toBe("^[A-Za-z_][A-Za-z0-9_]*$");
    expect(createSecret.description).toMatch(/admin/);
    // A file secret's path says it is relative (the API refuses an absolute one).
    expect(schema.properties.file_path.description).toMatch(/relative to the repository's checkout .*no leading \//);
  });

  it("serves a readable docs page", async () => {
    const response = await call("GET", "/docs");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/text\/html/);
    expect(response.text).toContain("POST /v1/projects/:id/secrets");
  });
});
