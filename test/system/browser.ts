import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";

/** Debian's Chromium (`apt-get install chromium`; .ci/run installs it when missing). Never a downloaded browser. */
export const CHROMIUM = "/usr/bin/chromium";

/** Screenshots and measurements of the browser tests (git-ignored). */
export const ARTIFACTS = join(import.meta.dirname, "..", "..", "test-artifacts", "dashboard");

/**
 * Whether browser tests can run here. In CI a missing Chromium is a failure; elsewhere the tests are skipped, loudly.
 */
export function browserAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI) throw new Error(`${CHROMIUM} is missing: .ci/run must install Debian's chromium before the tests`);
  console.warn(`\n*** SKIPPING the browser tests: ${CHROMIUM} is missing (apt-get install -y chromium) ***\n`);
  return false;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}
