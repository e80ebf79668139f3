import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../config.ts";
import { bytesToBase64, hexToBytes, Keyring, keyringFromConfig } from "../lib/crypto.ts";
import { newId } from "../lib/ids.ts";
import { db } from "../../test/db.ts";
import { associatedData } from "./encrypted-columns.ts";
import { rotateEncryptedValues, type RotationProgress } from "./rotate-encryption.ts";
import { cloudProviders, projectRegistries, projects, secrets, teams } from "./schema.ts";

const OLD = { id: "k1", hex: "11".repeat(32) };
const NEW = { id: "k2", hex: "22".repeat(32) };

/** The Go core's format, sealed directly with Web Crypto: base64(nonce ‖ ciphertext ‖ tag), no associated data. */
async function goSeal(hex: string, plaintext: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", hexToBytes(hex), "AES-GCM", false, ["encrypt"]);
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce }, key, new TextEncoder().encode(plaintext)));
  return bytesToBase64(new Uint8Array([...nonce, ...sealed]));
}

async function seed(count: number) {
  const old = await Keyring.create(OLD);
  const teamId = newId("team");
  const projectId = newId("project");
  const providerId = newId("cloudProvider");
  await db.batch([
    db.insert(teams).values({ id: teamId, slug: `rot-${teamId.slice(5)}`, name: "Rotation" }),
    db.insert(projects).values({ id: projectId, teamId, slug: "app", name: "App", repoUrl: "https://github.com/acme/app" }),
    db.insert(cloudProviders).values({ id: providerId, teamId, name: "do", providerType: "digitalocean", region: "fra1", encryptedCredentials: await goSeal(OLD.hex, '{"api_token":"dop_v1_x"}') }),
  ]);
  const rows = [];
  for (let i = 0; i < count; i++) {
    const row = { id: newId("secret"), projectId, key: `KEY_${i}`, scope: "global" };
    const stored = i % 2 === 0 ? await goSeal(OLD.hex, `value-${i}`) : await old.encrypt(`value-${i}`, associatedData.secret(row));
    rows.push({ ...row, encryptedValue: stored });
  }
  await db.insert(secrets).values(rows);
  await db.insert(projectRegistries).values({
    projectId,
    kind: "generic",
    address: "registry.example.com/acme",
    username: "stagely",
    encryptedPassword: await old.encrypt("registry-password", associatedData.registryPassword({ projectId })),
  });
  return { projectId, providerId };
}

describe("rotateEncryptedValues", () => {
  it("re-encrypts legacy and old-key values under the active key, bound to their rows, in batches", async () => {
    const { projectId, providerId } = await seed(7);
    const keyring = await Keyring.create(NEW, [OLD]);
    const progress: RotationProgress[] = [];
    const result = await rotateEncryptedValues(db, keyring, { batchSize: 3, onProgress: (p) => progress.push({ ...p }) });
    expect(result).toEqual({ rotated: 9, failed: [], legacyRemaining: 0 });
    expect(progress.filter((p) => p.table === "secrets").map((p) => p.done)).toEqual([0, 3, 6, 7]);
    expect(progress.filter((p) => p.table === "cloud_providers").at(-1)).toMatchObject({ done: 1, total: 1 });
    expect(progress.at(-1)).toMatchObject({ table: "project_registries", done: 1, total: 1 });

    const onlyNew = await Keyring.create(NEW);
    for (const row of await db.select().from(secrets).where(eq(secrets.projectId, projectId))) {
      expect(row.encryptedValue.startsWith("v1.k2.")).toBe(true);
      expect(await onlyNew.decrypt(row.encryptedValue, associatedData.secret(row))).toBe(`value-${row.key.slice(4)}`);
    }
    const [provider] = await db.select().from(cloudProviders).where(eq(cloudProviders.id, providerId));
    expect(await onlyNew.decrypt(provider!.encryptedCredentials, associatedData.cloudCredentials(provider!))).toBe('{"api_token":"dop_v1_x"}');
    const [registry] = await db.select().from(projectRegistries).where(eq(projectRegistries.projectId, projectId));
    expect(await onlyNew.decrypt(registry!.encryptedPassword!, associatedData.registryPassword(registry!))).toBe("registry-password");

    expect(await rotateEncryptedValues(db, keyring)).toEqual({ rotated: 0, failed: [], legacyRemaining: 0 });
  });

  it("resumes after an interruption without redoing finished rows", async () => {
    const { projectId } = await seed(5);
    const keyring = await Keyring.create(NEW, [OLD]);
    const stop = new Error("interrupted");
    await expect(
      rotateEncryptedValues(db, keyring, {
        batchSize: 2,
        onProgress: (p) => {
          if (p.table === "secrets" && p.done === 2) throw stop;
        },
      }),
    ).rejects.toBe(stop);
    const mine = () => db.select().from(secrets).where(eq(secrets.projectId, projectId));
    expect((await mine()).filter((r) => r.encryptedValue.startsWith("v1.k2.")).length).toBeGreaterThanOrEqual(2);
    await rotateEncryptedValues(db, keyring, { batchSize: 2 });
    expect((await mine()).every((r) => r.encryptedValue.startsWith("v1.k2."))).toBe(true);
  });

  it("reports values no configured key can open and leaves them untouched", async () => {
    const { projectId } = await seed(1);
    const stray = { id: newId("secret"), projectId, key: "STRAY", scope: "global", encryptedValue: await goSeal("33".repeat(32), "x") };
    await db.insert(secrets).values(stray);
    const result = await rotateEncryptedValues(db, await Keyring.create(NEW, [OLD]));
    expect(result.failed).toContain(stray.id);
    expect(result.legacyRemaining).toBe(1);
    const [after] = await db.select().from(secrets).where(eq(secrets.id, stray.id));
    expect(after!.encryptedValue).toBe(stray.encryptedValue);
    await db.delete(secrets).where(eq(secrets.id, stray.id));
  });

  it("with legacy values refused, leaves them untouched and counts them, so the setting is only turned on after rotating", async () => {
    const { projectId } = await seed(2);
    const refusing = await Keyring.create(NEW, [OLD], { refuseLegacy: true });
    const result = await rotateEncryptedValues(db, refusing);
    expect(result.legacyRemaining).toBe(2);
    expect(result.failed).toHaveLength(2);
    // The secret under the old key and the registry password.
    expect(result.rotated).toBe(2);
    expect(await rotateEncryptedValues(db, await Keyring.create(NEW, [OLD]))).toMatchObject({ failed: [], legacyRemaining: 0 });
    for (const row of await db.select().from(secrets).where(eq(secrets.projectId, projectId))) {
      expect(await refusing.decrypt(row.encryptedValue, associatedData.secret(row))).toMatch(/^value-/);
    }
  });

  it('once a run reports no legacy values left, ENCRYPTION_REFUSE_LEGACY = "true" in the settings reads every value and refuses the Go format', async () => {
    const { projectId } = await seed(3);
    expect(await rotateEncryptedValues(db, await Keyring.create(NEW, [OLD]))).toMatchObject({ failed: [], legacyRemaining: 0 });
    const settings = (refuseLegacy: string) =>
      parseConfig({
        DATABASE_URL: "postgres://app:pa55word@ep-cool-1.eu-central-1.aws.neon.tech/stagely",
        ENCRYPTION_KEY: NEW.hex,
        ENCRYPTION_KEY_ID: NEW.id,
        ENCRYPTION_OLD_KEYS: `${OLD.id}:${OLD.hex}`,
        ENCRYPTION_REFUSE_LEGACY: refuseLegacy,
      });
    const refusing = await keyringFromConfig(settings("true"));
    for (const row of await db.select().from(secrets).where(eq(secrets.projectId, projectId))) {
      expect(await refusing.decrypt(row.encryptedValue, associatedData.secret(row))).toMatch(/^value-/);
    }
    const leftBehind = await goSeal(OLD.hex, "left-behind");
    await expect(refusing.decrypt(leftBehind, "")).rejects.toMatchObject({ reason: "legacy_refused" });
    expect(await (await keyringFromConfig(settings("false"))).decrypt(leftBehind, "")).toBe("left-behind");
  });
});
