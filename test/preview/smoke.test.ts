import { afterAll, expect, it } from "vitest";
import { servePreview, visit, type ServedPreview } from "./helpers.ts";

let preview: ServedPreview;
afterAll(() => preview?.agent.stop());

it("serves the app through the tunnel", async () => {
  preview = await servePreview();
  const response = await visit(preview.url("/echo?x=1"), { method: "POST", body: "hello" });
  const body = await response.json<any>();
  expect(response.status).toBe(200);
  expect(body).toMatchObject({ method: "POST", path: "/echo?x=1", body: "hello" });
});
