import { execFile } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getDb, getSql } from "../src/db/client.ts";
import { applyMigrations } from "../src/db/migrate.ts";
import { projects, secrets, teams } from "../src/db/schema.ts";
import { bytesToBase64, hexToBytes } from "../src/lib/crypto.ts";
import { newId } from "../src/lib/ids.ts";
import { loadMigrations } from "./lib/migration-files.ts";
import { defaultTestBackend, startLocalDatabase, type LocalDatabase } from "./local-db/index.ts";

// `npm run secrets:rotate` tells the operator when ENCRYPTION_REFUSE_LEGACY may be turned on (issue 9), and with it on
// refuses to read the Go format and says how to recover.

const OLD = { id: "k1", hex: "11".repeat(32) };
const NEW = { id: "k2", hex: "22".repeat(32) };
const root = join(import.meta.dirname, "..");

/** The Go core's format: base64(nonce ‖ ciphertext ‖ tag), no associated data. */
async function goSeal(hex: string, plaintext: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", hexToBytes(hex), "AES-GCM", false, ["encrypt"]);
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce }, key, new TextEncoder().encode(plaintext)));
  return bytesToBase64(new Uint8Array([...nonce, ...sealed]));
}

let local: LocalDatabase;
let databaseUrl: string;
let projectId: string;

beforeAll(async () => {
  local = await startLocalDatabase({ backend: defaultTestBackend() });
  await local.server.backend.createDatabase("rotation");
  databaseUrl = local.databaseUrl("rotation");
  await applyMigrations(getSql(databaseUrl), await loadMigrations());
  const teamId = newId("team");
  projectId = newId("project");
  const db = getDb(databaseUrl);
  await db.batch([
    db.insert(teams).values({ id: teamId, slug: "rotation", name: "Rotation" }),
    db.insert(projects).values({ id: projectId, teamId, slug: "app", name: "App", repoUrl: "https://github.com/acme/app" }),
  ]);
  await addLegacySecret("FIRST");
}, 120_000);

afterAll(() => local?.stop());

async function addLegacySecret(key: string): Promise<void> {
  await getDb(databaseUrl).insert(secrets).values({ id: newId("secret"), projectId, key, scope: "global", encryptedValue: await goSeal(OLD.hex, `${key}-value`) });
}

function rotate(refuseLegacy: "true" | "false"): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    ENCRYPTION_KEY: NEW.hex,
    ENCRYPTION_KEY_ID: NEW.id,
    ENCRYPTION_OLD_KEYS: `${OLD.id}:${OLD.hex}`,
    ENCRYPTION_REFUSE_LEGACY: refuseLegacy,
  };
  return new Promise((resolve) => {
    execFile(process.execPath, ["scripts/rotate-secrets.ts"], { cwd: root, env }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

describe("npm run secrets:rotate", () => {
  it("says to turn ENCRYPTION_REFUSE_LEGACY on once no legacy value is left, and with it on refuses legacy values, saying how to recover", { timeout: 60_000 }, async () => {
    const first = await rotate("false");
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain("Done: 1 value(s) re-encrypted.");
    expect(first.stdout).toContain('No legacy (Go format) values are left: set ENCRYPTION_REFUSE_LEGACY = "true"');

    const refusing = await rotate("true");
    expect(refusing.code, refusing.stderr).toBe(0);
    expect(refusing.stdout).toContain("No legacy (Go format) values are left, and ENCRYPTION_REFUSE_LEGACY is on.");

    // A Go-format value written afterwards (say, restored from a backup) cannot be read while the setting is on.
    await addLegacySecret("RESTORED");
    const refused = await rotate("true");
    expect(refused.code).toBe(2);
    expect(refused.stdout).toContain("1 legacy (Go format) value(s) remain: keep ENCRYPTION_REFUSE_LEGACY off");
    expect(refused.stderr).toContain("ENCRYPTION_REFUSE_LEGACY is on, so legacy values cannot be read: run again with ENCRYPTION_REFUSE_LEGACY=false");
    expect(refused.stderr).not.toContain("RESTORED-value");

    const recovered = await rotate("false");
    expect(recovered.code, recovered.stderr).toBe(0);
    expect(recovered.stdout).toContain("Done: 1 value(s) re-encrypted.");
  });
});
