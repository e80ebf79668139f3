import { describe, expect, it } from "vitest";
import { fakeUrl } from "../../test/fakes/urls.ts";
import { credentialSchemas } from "./credentials.ts";
import { providerConfigSchemas, providerFromRow, validateProviderCredentials } from "./factory.ts";
import { retryAfterSeconds } from "./http.ts";
import { defaultSizes, machineTypeFor, sizeOverridesSchema } from "./sizes.ts";
import { fakeAdmin, inTests, providerRow, testKeyring } from "./testing.ts";

const AWS_SECRET = "SuperSecretAwsKey/0123456789abcdefABCDEF";
const awsCredentials = { access_key_id: "AKIAEXAMPLE000000001", secret_access_key: AWS_SECRET };

describe("providerFromRow", () => {
  it("builds each provider type from its row, one object per row", async () => {
    const keyring = await testKeyring();
    const rows = [
      await providerRow("aws", awsCredentials, { region: "eu-west-1" }),
      await providerRow("digitalocean", { api_token: "dop_v1_0123456789abcdef0123" }, { region: "fra1" }),
      await providerRow("hetzner", { api_token: "hetzner0123456789abcdef" }, { region: "fsn1" }),
      await providerRow("local", {}, { region: "local" }),
    ];
    const providers = await Promise.all(rows.map((row) => providerFromRow(row, keyring, inTests)));
    expect(providers.map((p) => p.type)).toEqual(["aws", "digitalocean", "hetzner", "local"]);
    const again = await providerFromRow(rows[0]!, keyring, inTests);
    expect(again).not.toBe(providers[0]);
  });

  it("refuses credentials sealed for another row, so a copied ciphertext is useless", async () => {
    const original = await providerRow("aws", awsCredentials, { region: "eu-west-1" });
    const copied = { ...(await providerRow("aws", {}, { region: "eu-west-1" })), encryptedCredentials: original.encryptedCredentials };
    const error = await providerFromRow(copied, await testKeyring(), inTests).catch((e: unknown) => e);
    expect(error).toMatchObject({ kind: "invalid_credentials", message: expect.stringContaining("cannot be decrypted") });
  });

  it("refuses garbage and incomplete credentials without echoing them", async () => {
    const keyring = await testKeyring();
    const garbage = { ...(await providerRow("aws", {}, { region: "eu-west-1" })), encryptedCredentials: "not ciphertext" };
    await expect(providerFromRow(garbage, keyring, inTests)).rejects.toMatchObject({ kind: "invalid_credentials" });

    const incomplete = await providerRow("aws", { access_key_id: "AKIAEXAMPLE000000001", secret: AWS_SECRET }, { region: "eu-west-1" });
    const error = (await providerFromRow(incomplete, keyring, inTests).catch((e: unknown) => e)) as Error;
    expect(error).toMatchObject({ kind: "invalid_credentials" });
    expect(error.message).toContain("secret_access_key");
    expect(error.message).not.toContain(AWS_SECRET);
  });

  it("refuses reserved provider types, bad regions and bad config as unsupported", async () => {
    const keyring = await testKeyring();
    await expect(providerFromRow(await providerRow("gcp", {}, { region: "europe-west1" }), keyring, inTests)).rejects.toMatchObject({ kind: "unsupported" });
    await expect(providerFromRow(await providerRow("aws", awsCredentials, { region: "eu-west-1.evil.com" }), keyring, inTests)).rejects.toMatchObject({ kind: "unsupported" });
    const badConfigs = [
      { endpoint: "http://ec2.example.com" },
      { endpoint: "https://user:pass@ec2.example.com" },
      { sizes: { amd64: { huge: "x1e.32xlarge" } } },
      { images: { "eu-west-1": { amd64: "not-an-ami" } } },
      { unknown_key: true },
    ];
    for (const config of badConfigs) {
      const row = await providerRow("aws", awsCredentials, { region: "eu-west-1", config });
      await expect(providerFromRow(row, keyring, inTests), JSON.stringify(config)).rejects.toMatchObject({ kind: "unsupported", message: expect.stringContaining("config") });
    }
  });
});

describe("providerFromRow on a production server", () => {
  it("refuses the local cloud and rows that override where the cloud is, and builds the rest", async () => {
    const keyring = await testKeyring();
    const production = { stage: "production" } as const;
    await expect(providerFromRow(await providerRow("local", {}, { region: "local" }), keyring, production)).rejects.toMatchObject({
      kind: "unsupported",
      message: expect.stringContaining("provider_type"),
    });
    const redirected = await providerRow("aws", awsCredentials, { region: "eu-west-1", config: { endpoint: "https://ec2.attacker.example" } });
    await expect(providerFromRow(redirected, keyring, production)).rejects.toMatchObject({ kind: "unsupported", message: expect.stringContaining("config.endpoint") });
    expect((await providerFromRow(redirected, keyring, inTests)).type).toBe("aws");
    const plain = await providerRow("aws", awsCredentials, { region: "eu-west-1", config: { spot: true } });
    expect((await providerFromRow(plain, keyring, production)).type).toBe("aws");
  });
});

describe("validateProviderCredentials", () => {
  it("answers ok for working credentials and a safe message otherwise", async () => {
    const keyring = await testKeyring();
    const { token } = await fakeAdmin<{ token: string }>("digitalocean", "accounts", {});
    const endpoint = { endpoint: fakeUrl("digitalocean") };
    expect(await validateProviderCredentials(await providerRow("digitalocean", { api_token: token }, { region: "fra1", config: endpoint }), keyring, inTests)).toEqual({ ok: true });

    const wrongToken = `${token.slice(0, -4)}0000`;
    const result = await validateProviderCredentials(await providerRow("digitalocean", { api_token: wrongToken }, { region: "fra1", config: endpoint }), keyring, inTests);
    expect(result).toEqual({ ok: false, error: "DigitalOcean: Unable to authenticate you" });

    const unreachable = await providerRow("aws", awsCredentials, { region: "eu-west-1", config: { endpoint: "http://127.0.0.1:9" } });
    const down = await validateProviderCredentials(unreachable, keyring, inTests);
    expect(down).toEqual({ ok: false, error: expect.stringContaining("could not reach AWS EC2") });
    expect(JSON.stringify(down)).not.toContain(AWS_SECRET);
  });
});

describe("credential and config schemas", () => {
  it("accept what each provider type needs and refuse anything else", () => {
    expect(credentialSchemas.aws.safeParse(awsCredentials).success).toBe(true);
    expect(credentialSchemas.aws.safeParse({ access_key_id: "akia-lower", secret_access_key: AWS_SECRET }).success).toBe(false);
    expect(credentialSchemas.aws.safeParse({ ...awsCredentials, extra: 1 }).success).toBe(false);
    expect(credentialSchemas.digitalocean.safeParse({ api_token: "dop_v1_0123456789abcdef0123" }).success).toBe(true);
    expect(credentialSchemas.hetzner.safeParse({ api_token: "short" }).success).toBe(false);
    expect(credentialSchemas.local.safeParse({}).success).toBe(true);
    expect(credentialSchemas.local.safeParse({ api_token: "x" }).success).toBe(false);
  });

  it("take endpoints over https, or http on loopback only", () => {
    const ok = (endpoint: string) => providerConfigSchemas.hetzner.safeParse({ endpoint }).success;
    expect(ok("https://api.hetzner.cloud")).toBe(true);
    expect(ok("http://127.0.0.1:4010")).toBe(true);
    expect(ok("http://localhost:4010")).toBe(true);
    expect(ok("http://api.hetzner.cloud")).toBe(false);
    expect(ok("https://api.hetzner.cloud/?x=1")).toBe(false);
    expect(ok("ftp://127.0.0.1")).toBe(false);
    expect(providerConfigSchemas.hetzner.parse({ endpoint: "https://proxy.example.com/hetzner/" }).endpoint).toBe("https://proxy.example.com/hetzner");
  });
});

describe("sizes", () => {
  it("are ARCHITECTURE.md's map by default", () => {
    expect(machineTypeFor("aws", "small", "amd64", undefined)).toBe("t3.small");
    expect(machineTypeFor("aws", "xlarge", "arm64", undefined)).toBe("c6g.4xlarge");
    expect(machineTypeFor("digitalocean", "medium", "amd64", undefined)).toBe("c-4");
    expect(machineTypeFor("hetzner", "large", "amd64", undefined)).toBe("cx43");
    expect(machineTypeFor("hetzner", "small", "arm64", undefined)).toBe("cax11");
    expect(Object.keys(defaultSizes.digitalocean)).toEqual(["amd64"]);
  });

  it("can be overridden one entry at a time", () => {
    const overrides = sizeOverridesSchema.parse({ amd64: { small: "cx22" } });
    expect(machineTypeFor("hetzner", "small", "amd64", overrides)).toBe("cx22");
    expect(machineTypeFor("hetzner", "medium", "amd64", overrides)).toBe("cx33");
    expect(() => machineTypeFor("digitalocean", "small", "arm64", undefined)).toThrow(expect.objectContaining({ kind: "unsupported" }));
    expect(sizeOverridesSchema.safeParse({ amd64: { small: "Bad Type!" } }).success).toBe(false);
  });
});

describe("retryAfterSeconds", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");
  it("reads Retry-After as seconds or a date, then RateLimit-Reset as a Unix time", () => {
    expect(retryAfterSeconds(new Headers({ "retry-after": "12" }), now)).toBe(12);
    expect(retryAfterSeconds(new Headers({ "retry-after": "Thu, 01 Jan 2026 00:00:30 GMT" }), now)).toBe(30);
    expect(retryAfterSeconds(new Headers({ "ratelimit-reset": String(now / 1000 + 45) }), now)).toBe(45);
    expect(retryAfterSeconds(new Headers({ "retry-after": "soon" }), now)).toBeUndefined();
    expect(retryAfterSeconds(new Headers(), now)).toBeUndefined();
  });
});
