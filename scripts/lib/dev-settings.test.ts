import { describe, expect, it } from "vitest";
import { configuresRealGitHubApp, devPorts, workerVars } from "./dev-settings.ts";

describe("npm run dev's settings", () => {
  it("derives every port from PORT, so a second checkout runs beside the first", () => {
    expect(devPorts(undefined)).toEqual({ api: 8787, database: 8788, cloud: 8789, github: 8790, inspector: 8791 });
    const second = devPorts("8797");
    expect(second).toEqual({ api: 8797, database: 8798, cloud: 8799, github: 8800, inspector: 8801 });
    expect(() => devPorts("eighty")).toThrow(/PORT must be a whole number/);
    expect(() => devPorts("65535")).toThrow(/PORT/);
  });

  it("serves previews at preview.localhost and the API at this machine's port, whatever wrangler.toml and .dev.vars say", () => {
    const vars = workerVars({ PREVIEW_DOMAIN: "preview.example.com", PUBLIC_URL: "https://stagely.example.com", ENCRYPTION_KEY: "ab" }, devPorts("9000"), "stagely", null);
    expect(vars).toMatchObject({ PREVIEW_DOMAIN: "preview.localhost", PUBLIC_URL: "http://127.0.0.1:9000", DATABASE_URL: "postgres://stagely:local@127.0.0.1:9001/stagely", ENCRYPTION_KEY: "ab" });
    expect(vars.GITHUB_API_URL).toBeUndefined();
  });

  it("points every GitHub setting at the local GitHub, unless .dev.vars configures a real App", () => {
    const local = { url: "http://127.0.0.1:9003", appId: "1", appSlug: "s", privateKey: "k", webhookSecret: "w", clientId: "c", clientSecret: "cs" };
    expect(workerVars({ GITHUB_API_URL: "https://api.github.com" }, devPorts("9000"), "stagely", local)).toMatchObject({
      GITHUB_API_URL: "http://127.0.0.1:9003",
      GITHUB_WEB_URL: "http://127.0.0.1:9003",
      GITHUB_WEBHOOK_SECRET: "w",
    });
    expect(configuresRealGitHubApp({ GITHUB_APP_ID: "12345" })).toBe(true);
    expect(configuresRealGitHubApp({})).toBe(false);
  });
});
