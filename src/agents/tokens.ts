import { randomHex, sha256Hex } from "../lib/crypto.ts";

/**
 * Agent tokens: `stg_agt_<16 id chars>_<64 hex = 256 random bits>`. The agent id inside routes a connect to its
 * Durable Object without a database query; the DO compares SHA-256(token) with the hash registered when the token
 * was issued. Only the hash is stored anywhere.
 */
const TOKEN_PATTERN = /^stg_agt_([0-9a-z]{16})_[0-9a-f]{64}$/;

export function newAgentToken(agentId: string): string {
  const match = /^agt_([0-9a-z]{16})$/.exec(agentId);
  if (!match) throw new TypeError("not an agent id");
  return `stg_agt_${match[1]}_${randomHex(32)}`;
}

/** The agent id a well-formed token names, or undefined. Says nothing about whether the token is valid. */
export function agentIdOfToken(token: string): string | undefined {
  const match = TOKEN_PATTERN.exec(token);
  return match ? `agt_${match[1]}` : undefined;
}

/** `Authorization: Bearer <token>` → the token, or undefined. */
export function bearerToken(header: string | undefined | null): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return match?.[1];
}

export function hashAgentToken(token: string): Promise<string> {
  return sha256Hex(token);
}
