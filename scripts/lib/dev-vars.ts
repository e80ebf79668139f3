import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const DEV_VARS_PATH = join(import.meta.dirname, "..", "..", ".dev.vars");

/** Reads .dev.vars (KEY=value lines, as wrangler does); empty when the file does not exist. */
export function readDevVars(path = DEV_VARS_PATH): Record<string, string> {
  if (!existsSync(path)) return {};
  const vars: Record<string, string> = {};
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const match = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (match) vars[match[1]!] = match[2]!.replace(/^"(.*)"$/, "$1");
  }
  return vars;
}

export function writeDevVars(vars: Record<string, string>, path = DEV_VARS_PATH): void {
  const body = Object.entries(vars).map(([k, v]) => `${k}=${v}`).join("\n");
  writeFileSync(path, `# Local development settings, read by wrangler dev. Never commit this file.\n${body}\n`, { mode: 0o600 });
}
