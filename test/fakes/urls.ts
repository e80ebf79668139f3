import { env } from "cloudflare:workers";

/** Base URL of a fake service started by test/fakes/index.ts (inside workerd). */
export function fakeUrl(name: string): string {
  const urls = JSON.parse(env.TEST_FAKE_URLS) as Record<string, string>;
  const url = urls[name];
  if (!url) throw new Error(`no fake service named "${name}" (registered: ${Object.keys(urls).join(", ") || "none"})`);
  return url;
}
