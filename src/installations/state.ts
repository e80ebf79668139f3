import type { Config } from "../config.ts";
import { deriveHmacKey, hmacSha256Hex, timingSafeEqual } from "../lib/crypto.ts";
import { ApiError } from "../lib/errors.ts";

/** How long a team admin may take on GitHub between asking for the install link and coming back. */
export const INSTALL_STATE_TTL_SECONDS = 30 * 60;

/** Who asked to install the App, for which team: carried through GitHub in the install link's `state`. */
export interface InstallIntent {
  teamId: string;
  userId: string;
}

// A key of its own, derived from the encryption key with HKDF (no extra secret to configure), distinct from sign-in's.
const stateKey = (config: Config) => deriveHmacKey(config.ENCRYPTION_KEY, "stagely github install state v1");

/** `<team id>.<user id>.<expiry>.<hmac>`: ids are `[a-z0-9_]`, so the dots separate unambiguously. */
export async function signInstallState(config: Config, intent: InstallIntent, nowMs = Date.now()): Promise<{ state: string; expiresAt: Date }> {
  const expires = Math.floor(nowMs / 1000) + INSTALL_STATE_TTL_SECONDS;
  const payload = `${intent.teamId}.${intent.userId}.${expires}`;
  return { state: `${payload}.${await hmacSha256Hex(await stateKey(config), payload)}`, expiresAt: new Date(expires * 1000) };
}

const restart = "ask for a new link with GET /v1/teams/{team}/github/install-url and install again";

/** The intent of a state this server signed and that has not expired; 401 otherwise. */
export async function verifyInstallState(config: Config, state: string, nowMs = Date.now()): Promise<InstallIntent> {
  const parts = state.split(".");
  const [teamId = "", userId = "", expires = "", mac = ""] = parts;
  const expected = await hmacSha256Hex(await stateKey(config), `${teamId}.${userId}.${expires}`);
  if (parts.length !== 4 || !timingSafeEqual(mac, expected)) throw new ApiError("UNAUTHORIZED", `invalid install state; ${restart}`);
  if (Number(expires) < nowMs / 1000) throw new ApiError("UNAUTHORIZED", `the install link expired; ${restart}`);
  return { teamId, userId };
}
