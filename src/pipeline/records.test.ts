import { describe, expect, it } from "vitest";
import { previewUrl } from "./records.ts";

describe("previewUrl", () => {
  it("is https on the preview domain in production", () => {
    expect(previewUrl("abc123", { PREVIEW_DOMAIN: "preview.example.com", PUBLIC_URL: "https://stagely.example.com" })).toBe("https://abc123.preview.example.com");
  });

  it("takes the API's scheme and port on a *.localhost domain, where wrangler dev serves both", () => {
    expect(previewUrl("abc123", { PREVIEW_DOMAIN: "preview.localhost", PUBLIC_URL: "http://127.0.0.1:8787" })).toBe("http://abc123.preview.localhost:8787");
    expect(previewUrl("abc123", { PREVIEW_DOMAIN: "localhost", PUBLIC_URL: "http://127.0.0.1" })).toBe("http://abc123.localhost");
  });
});
