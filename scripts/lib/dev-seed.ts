import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { and, eq, isNull, sql } from "drizzle-orm";
import { generateToken, hashToken } from "../../src/auth/tokens.ts";
import type { Db } from "../../src/db/client.ts";
import { apiTokens, cloudProviders, githubInstallationRepositories, githubInstallations, teamMembers, teams, users } from "../../src/db/schema.ts";
import type { Keyring } from "../../src/lib/crypto.ts";
import { encryptCredentials } from "../../src/providers/credentials.ts";
import { newId } from "../../src/lib/ids.ts";

export const DEV_USER_ID = "usr_developer0000001";
export const DEV_TEAM_ID = "team_development00001";
export const DEV_PROVIDER_ID = "cp_localcloud000001";
/** The local GitHub's installation of the App for the team (npm run demo adds repositories of account acme to it). */
export const DEV_INSTALLATION = { id: 1, repositoryId: 1, fullName: "acme/web" } as const;

/**
 * The development user and team (with the local cloud, at `localCloudUrl`, as its cloud provider and the local
 * GitHub's installation of the App covering acme/web), created on first start, and an API token for them kept in a git-ignored file
 * (`.stagely/dev-token`) so every `npm run dev` can print it. Only ever run against the local database.
 */
export async function seedDevelopment(db: Db, keyring: Keyring, tokenFile: string, localCloudUrl: string): Promise<{ token: string; created: boolean }> {
  await db.batch([
    db.insert(users).values({ id: DEV_USER_ID, email: "developer@stagely.localhost", name: "Local Developer", emailVerified: true }).onConflictDoNothing(),
    db.insert(teams).values({ id: DEV_TEAM_ID, slug: "dev", name: "Development" }).onConflictDoNothing(),
    db.insert(teamMembers).values({ teamId: DEV_TEAM_ID, userId: DEV_USER_ID, role: "owner" }).onConflictDoNothing(),
    // The local cloud (scripts/local-cloud, started by npm run dev) is the team's cloud: previews with no account.
    db
      .insert(cloudProviders)
      .values({
        id: DEV_PROVIDER_ID,
        teamId: DEV_TEAM_ID,
        name: "local",
        providerType: "local",
        region: "local",
        encryptedCredentials: await encryptCredentials(keyring, { id: DEV_PROVIDER_ID }, {}),
        config: { endpoint: localCloudUrl },
      })
      // The local cloud's port follows PORT: the provider points at this start's.
      .onConflictDoUpdate({ target: cloudProviders.id, set: { config: { endpoint: localCloudUrl } } }),
    db
      .insert(githubInstallations)
      .values({ id: DEV_INSTALLATION.id, teamId: DEV_TEAM_ID, accountLogin: "acme", accountType: "Organization", repositorySelection: "selected" })
      .onConflictDoNothing(),
    db
      .insert(githubInstallationRepositories)
      .values({ installationId: DEV_INSTALLATION.id, repositoryId: DEV_INSTALLATION.repositoryId, fullName: DEV_INSTALLATION.fullName })
      .onConflictDoNothing(),
  ]);
  if (existsSync(tokenFile)) {
    const token = readFileSync(tokenFile, "utf8").trim();
    const [valid] = await db
      .select({ id: apiTokens.id })
      .from(apiTokens)
      .where(and(eq(apiTokens.tokenHash, await hashToken(token)), isNull(apiTokens.revokedAt), sql`(expires_at IS NULL OR expires_at > now())`));
    if (valid) return { token, created: false };
  }
  const token = await generateToken("api");
  await db.insert(apiTokens).values({ id: newId("token"), userId: DEV_USER_ID, kind: "api", name: "npm run dev", tokenHash: token.hash, tokenHint: token.hint });
  mkdirSync(dirname(tokenFile), { recursive: true });
  writeFileSync(tokenFile, `${token.token}\n`, { mode: 0o600 });
  return { token: token.token, created: true };
}
