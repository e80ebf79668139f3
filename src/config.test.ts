import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "./config.ts";

const KEY = "ab".repeat(32);
const valid = { DATABASE_URL: "postgres://app:pa55word@ep-cool-1.eu-central-1.aws.neon.tech/stagely", ENCRYPTION_KEY: KEY };

function problemsOf(source: Record<string, unknown>): string[] {
  try {
    parseConfig(source);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error("expected the config to be rejected");
}

describe("parseConfig", () => {
  it("accepts a minimal production config and fills defaults", () => {
    const config = parseConfig(valid);
    expect(config).toMatchObject({ STAGELY_ENV: "production", LOG_LEVEL: "info", ENCRYPTION_KEY_ID: "k1", ENCRYPTION_OLD_KEYS: [] });
  });

  it("lists every problem at once, naming the variable", () => {
    const problems = problemsOf({ STAGELY_ENV: "staging" });
    expect(problems).toEqual(
      expect.arrayContaining([
        "DATABASE_URL is required",
        "ENCRYPTION_KEY is required",
        expect.stringMatching(/^STAGELY_ENV /),
      ]),
    );
    expect(problems).toHaveLength(3);
  });

  it("rejects an ENCRYPTION_KEY that does not decode to 32 bytes, without echoing it", () => {
    for (const bad of ["ab".repeat(16), "zz".repeat(32), "ab".repeat(33)]) {
      const problems = problemsOf({ ...valid, ENCRYPTION_KEY: bad });
      expect(problems).toEqual(["ENCRYPTION_KEY must be 64 hex characters (a 32-byte AES-256 key)"]);
      expect(problems.join()).not.toContain(bad);
    }
  });

  it("rejects a DATABASE_URL that is not postgres, without echoing its password", () => {
    const bad = "mysql://root:topsecretpw@db/x";
    const problems = problemsOf({ ...valid, DATABASE_URL: bad });
    expect(problems).toEqual(["DATABASE_URL must be a postgres:// URL with a host and a database name"]);
    expect(String(new ConfigError(problems).message)).not.toContain("topsecretpw");
  });

  it("reads ENCRYPTION_REFUSE_LEGACY as a boolean, off unless set to true", () => {
    expect(parseConfig(valid).ENCRYPTION_REFUSE_LEGACY).toBe(false);
    expect(parseConfig({ ...valid, ENCRYPTION_REFUSE_LEGACY: "true" }).ENCRYPTION_REFUSE_LEGACY).toBe(true);
    expect(parseConfig({ ...valid, ENCRYPTION_REFUSE_LEGACY: "false" }).ENCRYPTION_REFUSE_LEGACY).toBe(false);
    expect(problemsOf({ ...valid, ENCRYPTION_REFUSE_LEGACY: "yes" })).toEqual(['ENCRYPTION_REFUSE_LEGACY must be "true" or "false"']);
  });

  it("parses retired keys for rotation and rejects malformed entries", () => {
    const config = parseConfig({ ...valid, ENCRYPTION_KEY_ID: "k2", ENCRYPTION_OLD_KEYS: `k1:${"cd".repeat(32)}, k0:${"ef".repeat(32)}` });
    expect(config.ENCRYPTION_OLD_KEYS).toEqual([
      { id: "k1", hex: "cd".repeat(32) },
      { id: "k0", hex: "ef".repeat(32) },
    ]);
    const problems = problemsOf({ ...valid, ENCRYPTION_OLD_KEYS: `k1:${"cd".repeat(31)}` });
    expect(problems).toEqual(["ENCRYPTION_OLD_KEYS entry 1 must look like id:<64 hex characters>"]);
    expect(problems.join()).not.toContain("cd".repeat(31));
  });
});
