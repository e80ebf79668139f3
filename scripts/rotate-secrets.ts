// npm run secrets:rotate: re-encrypts every secret value and cloud credential under the active ENCRYPTION_KEY.
// Reads DATABASE_URL and ENCRYPTION_* from the environment (or .dev.vars locally). Safe to interrupt and re-run.
import { ConfigError, parseConfig } from "../src/config.ts";
import { getDb } from "../src/db/client.ts";
import { rotateEncryptedValues } from "../src/db/rotate-encryption.ts";
import { keyringFromConfig } from "../src/lib/crypto.ts";
import { readDevVars } from "./lib/dev-vars.ts";

let config;
try {
  config = parseConfig({ ...readDevVars(), ...process.env });
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  console.error("Set DATABASE_URL, ENCRYPTION_KEY (the new key), ENCRYPTION_KEY_ID and ENCRYPTION_OLD_KEYS (id:hex of the old keys).");
  process.exit(1);
}
const keyring = await keyringFromConfig(config);
console.log(`Re-encrypting under key "${keyring.activeKeyId}" (${config.ENCRYPTION_OLD_KEYS.length} retired key(s) configured) ...`);
const result = await rotateEncryptedValues(getDb(config.DATABASE_URL), keyring, {
  onProgress: (p) => console.log(`  ${p.table}: ${p.done}/${p.total}${p.failed.length ? ` (${p.failed.length} unreadable)` : ""}`),
});
console.log(`Done: ${result.rotated} value(s) re-encrypted.`);
if (result.legacyRemaining === 0) {
  console.log(
    config.ENCRYPTION_REFUSE_LEGACY
      ? "No legacy (Go format) values are left, and ENCRYPTION_REFUSE_LEGACY is on."
      : 'No legacy (Go format) values are left: set ENCRYPTION_REFUSE_LEGACY = "true" (wrangler.toml [vars]) and deploy, so none is ever accepted again.',
  );
} else {
  console.log(`${result.legacyRemaining} legacy (Go format) value(s) remain: keep ENCRYPTION_REFUSE_LEGACY off until a run reports none left.`);
}
if (result.failed.length > 0) {
  console.error(`${result.failed.length} value(s) could not be decrypted with any configured key and were left as they were:`);
  for (const id of result.failed) console.error(`  ${id}`);
  console.error(
    config.ENCRYPTION_REFUSE_LEGACY && result.legacyRemaining > 0
      ? "ENCRYPTION_REFUSE_LEGACY is on, so legacy values cannot be read: run again with ENCRYPTION_REFUSE_LEGACY=false, and add the keys they were written with to ENCRYPTION_OLD_KEYS."
      : "Add the key they were written with to ENCRYPTION_OLD_KEYS and run again.",
  );
  process.exit(2);
}
