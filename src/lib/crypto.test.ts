import { describe, expect, it } from "vitest";
import { bytesToHex, DecryptionError, deriveHmacKey, hkdfSha256, Keyring, hmacSha256Hex, sha256Hex, timingSafeEqual } from "./crypto.ts";

// Vectors made outside this module, with Node's crypto (createCipheriv("aes-256-gcm")), in the Go core's format
// base64(nonce ‖ ciphertext ‖ tag) and with no associated data.
const GO_KEY = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const goVectors = [
  { stored: "yv66vvrO263eyviI8YHBVsMlO3QtbjP/QT/tUCBW8XzvKFhHeuoyRoawBJ3ONKQg46lX7cgl51LHgmksnraMwatp", plaintext: '{"api_token":"do-v1-0123456789abcdef"}' },
  { stored: "AAAAAAAAAAAAAAABNn74KIgxVXQI4QKVChbiag==", plaintext: "" },
  { stored: "oaKjpKWmp6ipqqusViwjHIci/dn8GpKAy1ZcaE19UQVMORtxZ5wmWraOGA==", plaintext: "pässwörd 🔐" },
];
// Same tool, with associated data "secret:prj_x:API_KEY:global", wrapped in the versioned format under key id "k1".
const versionedVector = {
  stored: "v1.k1.AQIDBAUGBwgJCgsMbZ80oYnmwqs/xwA1dWeWJJmSExuuDWZV7ojVHQ7R",
  aad: "secret:prj_x:API_KEY:global",
  plaintext: "hunter2-secret",
};

const OTHER_KEY = "ff".repeat(32);

describe("Keyring", () => {
  it("decrypts values written by the Go core", async () => {
    const keyring = await Keyring.create({ id: "k1", hex: GO_KEY });
    for (const vector of goVectors) expect(await keyring.decrypt(vector.stored, "ignored for legacy values")).toBe(vector.plaintext);
  });

  it("refuses the Go format once told to, and still reads versioned values", async () => {
    const keyring = await Keyring.create({ id: "k1", hex: GO_KEY }, [], { refuseLegacy: true });
    for (const vector of goVectors) await expect(keyring.decrypt(vector.stored, "")).rejects.toMatchObject({ reason: "legacy_refused" });
    expect(await keyring.decrypt(versionedVector.stored, versionedVector.aad)).toBe(versionedVector.plaintext);
  });

  it("decrypts an independently produced versioned value with its associated data", async () => {
    const keyring = await Keyring.create({ id: "k1", hex: GO_KEY });
    expect(await keyring.decrypt(versionedVector.stored, versionedVector.aad)).toBe(versionedVector.plaintext);
  });

  it("round-trips new values in the versioned format with a random nonce each time", async () => {
    const keyring = await Keyring.create({ id: "k1", hex: GO_KEY });
    const a = await keyring.encrypt("s3cr3t value", "row:1");
    const b = await keyring.encrypt("s3cr3t value", "row:1");
    expect(a).toMatch(/^v1\.k1\.[A-Za-z0-9+/]+=*$/);
    expect(a).not.toBe(b);
    expect(a).not.toContain("s3cr3t");
    expect(await keyring.decrypt(a, "row:1")).toBe("s3cr3t value");
  });

  it("refuses a value moved to another row (associated data differs)", async () => {
    const keyring = await Keyring.create({ id: "k1", hex: GO_KEY });
    const stored = await keyring.encrypt("value", "secret:prj_a:KEY:global");
    await expect(keyring.decrypt(stored, "secret:prj_b:KEY:global")).rejects.toMatchObject({ reason: "authentication_failed" });
  });

  it("detects tampering of nonce, ciphertext and tag", async () => {
    const keyring = await Keyring.create({ id: "k1", hex: GO_KEY });
    const raw = Uint8Array.from(atob(goVectors[0]!.stored), (ch) => ch.charCodeAt(0));
    for (const index of [0, 15, raw.length - 1]) {
      const copy = raw.slice();
      copy[index]! ^= 0x01;
      const tampered = btoa(String.fromCharCode(...copy));
      await expect(keyring.decrypt(tampered, "")).rejects.toBeInstanceOf(DecryptionError);
    }
  });

  it("detects the wrong key with a typed error", async () => {
    const keyring = await Keyring.create({ id: "k1", hex: OTHER_KEY });
    await expect(keyring.decrypt(goVectors[0]!.stored, "")).rejects.toMatchObject({ name: "DecryptionError", reason: "authentication_failed" });
    await expect(keyring.decrypt(versionedVector.stored, versionedVector.aad)).rejects.toMatchObject({ reason: "authentication_failed" });
  });

  it("names an unknown key id and malformed input", async () => {
    const keyring = await Keyring.create({ id: "k1", hex: GO_KEY });
    await expect(keyring.decrypt("v1.k9.AAAA", "")).rejects.toMatchObject({ reason: "unknown_key" });
    await expect(keyring.decrypt("v2.k1.AAAA", "")).rejects.toMatchObject({ reason: "malformed" });
    await expect(keyring.decrypt("not base64 !!", "")).rejects.toMatchObject({ reason: "malformed" });
    await expect(keyring.decrypt("AAAA", "")).rejects.toMatchObject({ reason: "malformed" });
  });

  it("rotates: the active key encrypts, retired keys still decrypt, needsRotation tells which is which", async () => {
    const old = await Keyring.create({ id: "k1", hex: GO_KEY });
    const sealedOld = await old.encrypt("v", "aad");
    const rotated = await Keyring.create({ id: "k2", hex: OTHER_KEY }, [{ id: "k1", hex: GO_KEY }]);
    expect(await rotated.decrypt(sealedOld, "aad")).toBe("v");
    expect(await rotated.decrypt(goVectors[0]!.stored, "")).toBe(goVectors[0]!.plaintext);
    const sealedNew = await rotated.encrypt("v", "aad");
    expect(sealedNew.startsWith("v1.k2.")).toBe(true);
    expect(rotated.needsRotation(sealedOld)).toBe(true);
    expect(rotated.needsRotation(goVectors[0]!.stored)).toBe(true);
    expect(rotated.needsRotation(sealedNew)).toBe(false);
  });

  it("rejects keys that are not 32 bytes and duplicate ids", async () => {
    await expect(Keyring.create({ id: "k1", hex: "00".repeat(16) })).rejects.toThrow(/32 bytes/);
    await expect(Keyring.create({ id: "k1", hex: GO_KEY }, [{ id: "k1", hex: OTHER_KEY }])).rejects.toThrow(/twice/);
  });
});

describe("hashes and comparison", () => {
  it("computes SHA-256 and HMAC-SHA256 as the standard vectors say", async () => {
    expect(await sha256Hex("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    // RFC 4231 test case 2
    expect(await hmacSha256Hex("Jefe", "what do ya want for nothing?")).toBe(
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    );
  });

  it("derives keys with HKDF-SHA-256 as RFC 5869 says", async () => {
    const bytes = (from: number, to: number) => new Uint8Array(Array.from({ length: to - from + 1 }, (_, i) => from + i));
    // RFC 5869 test case 1
    expect(bytesToHex(await hkdfSha256(new Uint8Array(22).fill(0x0b), bytes(0xf0, 0xf9), 42, bytes(0x00, 0x0c)))).toBe(
      "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
    );
    // RFC 5869 test case 3: no salt, no info
    expect(bytesToHex(await hkdfSha256(new Uint8Array(22).fill(0x0b), "", 42))).toBe(
      "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
    );
  });

  it("derives a separate HMAC key per purpose, none equal to using the master key itself", async () => {
    const sign = async (key: CryptoKey | string) => hmacSha256Hex(key, "message");
    const [a, b] = [await deriveHmacKey(GO_KEY, "purpose a"), await deriveHmacKey(GO_KEY, "purpose b")];
    expect(await sign(a)).toBe(await sign(await deriveHmacKey(GO_KEY, "purpose a")));
    expect(await sign(a)).not.toBe(await sign(b));
    expect(await sign(a)).not.toBe(await sign(await deriveHmacKey(OTHER_KEY, "purpose a")));
    expect(await sign(a)).not.toBe(await sign(`purpose a:${GO_KEY}`));
  });

  it("compares strings in constant time and correctly", () => {
    expect(timingSafeEqual("abc", "abc")).toBe(true);
    expect(timingSafeEqual("abc", "abd")).toBe(false);
    expect(timingSafeEqual("abc", "abcd")).toBe(false);
    expect(timingSafeEqual("", "")).toBe(true);
  });
});
