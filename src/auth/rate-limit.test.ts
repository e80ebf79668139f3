import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, seedUser } from "../../test/harness.ts";
import { clientKey } from "./rate-limit.ts";

// wrangler.toml [[ratelimits]]: 120 mutations per user, 30 sign-in requests and 600 agent connects per client IP, per minute.

/**
 * The local limiters count in 60-second windows aligned to the wall clock: a burst that must land in one window
 * starts early enough in it to finish there (waiting for the next one if needed).
 */
async function roomInWindow(seconds: number): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < seconds * 1000) await new Promise((resolve) => setTimeout(resolve, left + 200));
}

describe("mutation rate limit", () => {
  it("counts per user: more tokens buy no more changes; reads and other users are not limited", async () => {
    const busy = await seedUser();
    await roomInWindow(50);
    const minted: string[] = [];
    for (let i = 0; i < 120; i++) {
      const response = await call("POST", "/v1/tokens", { token: busy.token, body: { name: `t${i}` } });
      expect(response.status, `change ${i + 1}`).toBe(201);
      minted.push(response.body.token);
    }
    const limited = await call("POST", "/v1/tokens", { token: busy.token, body: { name: "one more" } });
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("60");
    expect(limited.body.error).toMatchObject({ code: "RATE_LIMITED", message: expect.stringContaining("this account") });
    const withFreshToken = await call("POST", "/v1/tokens", { token: minted.at(-1)!, body: { name: "from a new token" } });
    expect(withFreshToken.status).toBe(429);

    expect((await call("GET", "/v1/me", { token: minted[0] })).status).toBe(200);
    const calm = await seedUser();
    expect((await call("POST", "/v1/tokens", { token: calm.token, body: { name: "fine" } })).status).toBe(201);
  }, 120_000);
});

describe("per-IP limits on routes without a Stagely token", () => {
  const fromIp = (ip: string, path: string, init: RequestInit = {}) =>
    exports.default.fetch(new Request(`https://stagely.test${path}`, { ...init, redirect: "manual", headers: { ...init.headers, "CF-Connecting-IP": ip } }));

  it("limits GitHub sign-in per client address, start and callback together, and not webhooks", async () => {
    const ip = "203.0.113.10";
    await roomInWindow(15);
    for (let i = 0; i < 30; i++) expect((await fromIp(ip, "/v1/auth/github")).status, `sign-in ${i + 1}`).toBe(302);
    const limited = await fromIp(ip, "/v1/auth/github/callback?code=x&state=y");
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("60");
    expect(((await limited.json()) as { error: { message: string } }).error.message).toContain("from your address");
    expect((await fromIp(ip, "/v1/auth/github")).status).toBe(429);

    expect((await fromIp("203.0.113.11", "/v1/auth/github")).status).toBe(302);
    // GitHub's webhooks come from shared addresses: never limited per IP (this one fails its signature instead).
    const webhook = await fromIp(ip, "/v1/webhooks/github", { method: "POST", body: "{}", headers: { "X-GitHub-Event": "ping" } });
    expect(webhook.status).toBe(401);
  }, 120_000);

  it("counts an IPv6 client by its /64, an IPv4 client by its address", async () => {
    expect(clientKey("203.0.113.9")).toBe("203.0.113.9");
    for (const ip of ["2001:db8:aa:bb::1", "2001:0db8:00aa:00bb:ffff:1:2:3", "2001:DB8:AA:BB:0:0:0:0"]) expect(clientKey(ip), ip).toBe("2001:db8:aa:bb::/64");
    expect(clientKey("2001:db8:aa:bc::1")).toBe("2001:db8:aa:bc::/64");
    expect(clientKey("::1")).toBe("0:0:0:0::/64");
    expect(clientKey("fe80::1:2:3:4")).toBe("fe80:0:0:0::/64");

    await roomInWindow(15);
    for (let i = 0; i < 30; i++) expect((await fromIp(`2001:db8:1:2::${i + 1}`, "/v1/auth/github")).status).toBe(302);
    expect((await fromIp("2001:db8:1:2:ffff::99", "/v1/auth/github")).status).toBe(429);
    expect((await fromIp("2001:db8:1:3::1", "/v1/auth/github")).status).toBe(302);
  }, 120_000);

  it("limits agent connects per client address before waking any agent", async () => {
    const ip = "203.0.113.20";
    const connect = (from: string) => fromIp(from, "/v1/agent/connect", { headers: { Upgrade: "websocket", Authorization: "Bearer not-an-agent-token" } });
    await roomInWindow(40);
    const statuses = new Map<number, number>();
    for (let i = 0; i < 600; i++) {
      const status = (await connect(ip)).status;
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
    expect(Object.fromEntries(statuses)).toEqual({ 401: 600 });
    const limited = await connect(ip);
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("60");
    expect((await connect("203.0.113.21")).status).toBe(401);
  }, 120_000);
});
