const encoder = new TextEncoder();
const decoder = new TextDecoder();

export type DecryptionFailure = "malformed" | "unknown_key" | "authentication_failed" | "legacy_refused";

/** A stored value could not be decrypted: wrong key, tampered, or not ciphertext at all. */
export class DecryptionError extends Error {
  readonly reason: DecryptionFailure;
  constructor(reason: DecryptionFailure) {
    super(`decryption failed: ${reason.replaceAll("_", " ")}`);
    this.name = "DecryptionError";
    this.reason = reason;
  }
}

export function hexToBytes(hex: string): Uint8Array<ArrayBuffer> {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new TypeError("not a hex string");
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}

export function bytesToHex(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += byte.toString(16).padStart(2, "0");
  return out;
}

export function bytesToBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

export function base64ToBytes(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export async function sha256Hex(input: string | Uint8Array<ArrayBuffer>): Promise<string> {
  const data = typeof input === "string" ? encoder.encode(input) : input;
  return bytesToHex(new Uint8Array(await crypto.subtle.digest("SHA-256", data)));
}

/** HMAC-SHA256 with a secret string (a webhook secret) or an HMAC key (one derived with deriveKey). */
export async function hmacSha256Hex(secret: string | CryptoKey, message: string | Uint8Array<ArrayBuffer>): Promise<string> {
  const key =
    typeof secret === "string" ? await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]) : secret;
  const data = typeof message === "string" ? encoder.encode(message) : message;
  return bytesToHex(new Uint8Array(await crypto.subtle.sign("HMAC", key, data)));
}

/** HKDF-SHA-256 (RFC 5869): `length` bytes from input key material, an optional salt and `info`. */
export async function hkdfSha256(
  inputKey: Uint8Array<ArrayBuffer>,
  info: string | Uint8Array<ArrayBuffer>,
  length: number,
  salt: Uint8Array<ArrayBuffer> = new Uint8Array(0),
): Promise<Uint8Array<ArrayBuffer>> {
  const material = await crypto.subtle.importKey("raw", inputKey, "HKDF", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt, info: typeof info === "string" ? encoder.encode(info) : info },
    material,
    length * 8,
  );
  return new Uint8Array(bits);
}

/**
 * An HMAC-SHA256 key for one purpose, derived from the master key (ENCRYPTION_KEY, hex) with HKDF. Each purpose
 * names itself in `info`, so the keys are independent of each other and of the master key, and none of them
 * reveals it.
 */
export async function deriveHmacKey(masterKeyHex: string, info: string): Promise<CryptoKey> {
  const raw = await hkdfSha256(hexToBytes(masterKeyHex), info, 32);
  return crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

/** Compares two strings in time that depends only on their lengths. */
export function timingSafeEqual(a: string, b: string): boolean {
  const left = encoder.encode(a);
  const right = encoder.encode(b);
  let diff = left.length ^ right.length;
  const length = Math.max(left.length, right.length);
  for (let i = 0; i < length; i++) diff |= (left[i] ?? 0) ^ (right[i] ?? 0);
  return diff === 0;
}

/** `bytes` of CSPRNG output as lowercase hex. */
export function randomHex(bytes: number): string {
  return bytesToHex(crypto.getRandomValues(new Uint8Array(bytes)));
}

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const VERSION = "v1";

export interface KeyMaterial {
  id: string;
  hex: string;
}

/**
 * AES-256-GCM with several keys, one active.
 *
 * New values: `v1.<key id>.<base64(nonce ‖ ciphertext ‖ tag)>`, sealed with associated data that names the row
 * the value belongs to, so a ciphertext copied to another row fails to decrypt.
 * Legacy values (the Go core): `base64(nonce ‖ ciphertext ‖ tag)` with no key id and no associated data; every
 * configured key is tried, unless `refuseLegacy` (once rotation has rewritten them all: a legacy value is not bound
 * to its row, so accepting the format at all lets a copied ciphertext be read elsewhere).
 */
export class Keyring {
  private readonly active: { id: string; key: CryptoKey };
  private readonly keys: Map<string, CryptoKey>;
  private readonly refuseLegacy: boolean;

  private constructor(active: { id: string; key: CryptoKey }, keys: Map<string, CryptoKey>, refuseLegacy: boolean) {
    this.active = active;
    this.keys = keys;
    this.refuseLegacy = refuseLegacy;
  }

  static async create(active: KeyMaterial, retired: KeyMaterial[] = [], options: { refuseLegacy?: boolean } = {}): Promise<Keyring> {
    const keys = new Map<string, CryptoKey>();
    for (const material of [active, ...retired]) {
      if (keys.has(material.id)) throw new Error(`encryption key id "${material.id}" is configured twice`);
      const raw = hexToBytes(material.hex);
      if (raw.length !== 32) throw new Error(`encryption key "${material.id}" must be 32 bytes`);
      keys.set(material.id, await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]));
    }
    return new Keyring({ id: active.id, key: keys.get(active.id)! }, keys, options.refuseLegacy ?? false);
  }

  get activeKeyId(): string {
    return this.active.id;
  }

  async encrypt(plaintext: string, associatedData: string): Promise<string> {
    const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
    const sealed = await crypto.subtle.encrypt(
      { name: "AES-GCM", iv: nonce, additionalData: encoder.encode(associatedData) },
      this.active.key,
      encoder.encode(plaintext),
    );
    const out = new Uint8Array(NONCE_BYTES + sealed.byteLength);
    out.set(nonce);
    out.set(new Uint8Array(sealed), NONCE_BYTES);
    return `${VERSION}.${this.active.id}.${bytesToBase64(out)}`;
  }

  /** `associatedData` must be what the value was sealed with; legacy values have none and ignore it. */
  async decrypt(stored: string, associatedData: string): Promise<string> {
    const parts = stored.split(".");
    if (parts.length === 1) return this.decryptLegacy(stored);
    const [version, keyId, payload] = parts;
    if (parts.length !== 3 || version !== VERSION || !keyId || !payload) throw new DecryptionError("malformed");
    const key = this.keys.get(keyId);
    if (!key) throw new DecryptionError("unknown_key");
    return open(key, decodePayload(payload), encoder.encode(associatedData));
  }

  /** True when the value is legacy or sealed under a key other than the active one. */
  needsRotation(stored: string): boolean {
    return !stored.startsWith(`${VERSION}.${this.active.id}.`);
  }

  private async decryptLegacy(stored: string): Promise<string> {
    if (this.refuseLegacy) throw new DecryptionError("legacy_refused");
    const sealed = decodePayload(stored);
    for (const key of this.keys.values()) {
      try {
        return await open(key, sealed);
      } catch (error) {
        if (!(error instanceof DecryptionError)) throw error;
      }
    }
    throw new DecryptionError("authentication_failed");
  }
}

function decodePayload(payload: string): Uint8Array<ArrayBuffer> {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = base64ToBytes(payload);
  } catch {
    throw new DecryptionError("malformed");
  }
  if (bytes.length < NONCE_BYTES + TAG_BYTES) throw new DecryptionError("malformed");
  return bytes;
}

async function open(key: CryptoKey, sealed: Uint8Array<ArrayBuffer>, additionalData?: Uint8Array): Promise<string> {
  const params = { name: "AES-GCM", iv: sealed.subarray(0, NONCE_BYTES), ...(additionalData ? { additionalData } : {}) };
  try {
    return decoder.decode(await crypto.subtle.decrypt(params, key, sealed.subarray(NONCE_BYTES)));
  } catch {
    throw new DecryptionError("authentication_failed");
  }
}

interface KeyringSettings {
  ENCRYPTION_KEY: string;
  ENCRYPTION_KEY_ID: string;
  ENCRYPTION_OLD_KEYS: KeyMaterial[];
  ENCRYPTION_REFUSE_LEGACY: boolean;
}

const keyrings = new WeakMap<KeyringSettings, Promise<Keyring>>();

/** The keyring described by the ENCRYPTION_* settings (see config.ts), built once per parsed config. */
export function keyringFromConfig(config: KeyringSettings): Promise<Keyring> {
  let keyring = keyrings.get(config);
  if (!keyring) {
    keyring = Keyring.create({ id: config.ENCRYPTION_KEY_ID, hex: config.ENCRYPTION_KEY }, config.ENCRYPTION_OLD_KEYS, {
      refuseLegacy: config.ENCRYPTION_REFUSE_LEGACY,
    });
    keyrings.set(config, keyring);
  }
  return keyring;
}
