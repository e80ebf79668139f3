import { base64ToBytes, bytesToBase64 } from "../../lib/crypto.ts";
import { GitHubError } from "./errors.ts";

/**
 * The GitHub App's own credential: a JWT signed RS256 with the App's private key (Web Crypto only).
 * GitHub hands out PKCS#1 keys ("BEGIN RSA PRIVATE KEY"); Web Crypto imports only PKCS#8, so a PKCS#1 key is wrapped
 * in a PKCS#8 PrivateKeyInfo first.
 */

/** How far back `iat` is set, against clock drift (GitHub's recommendation). */
export const JWT_BACKDATE_SECONDS = 60;
/** exp - iat: GitHub's maximum of 10 minutes, counted from the backdated iat. */
export const JWT_LIFETIME_SECONDS = 600;

const badKey = () =>
  new GitHubError("misconfigured", "GITHUB_APP_PRIVATE_KEY is not a PEM RSA private key (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)");

/** DER length octets. */
function derLength(length: number): number[] {
  if (length < 0x80) return [length];
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return [0x80 | bytes.length, ...bytes];
}

function der(tag: number, content: Uint8Array | number[]): number[] {
  return [tag, ...derLength(content.length), ...content];
}

/** AlgorithmIdentifier for rsaEncryption (OID 1.2.840.113549.1.1.1) with NULL parameters. */
const RSA_ALGORITHM = [0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00];

/** PrivateKeyInfo ::= SEQUENCE { version 0, rsaEncryption, OCTET STRING { RSAPrivateKey } } */
export function pkcs1ToPkcs8(pkcs1: Uint8Array): Uint8Array<ArrayBuffer> {
  const version = [0x02, 0x01, 0x00];
  return new Uint8Array(der(0x30, [...version, ...RSA_ALGORITHM, ...der(0x04, pkcs1)]));
}

/** The DER bytes inside a PEM block, and which kind it is. Accepts keys pasted with literal "\n" escapes. */
export function readPem(pem: string): { kind: "pkcs8" | "pkcs1"; der: Uint8Array<ArrayBuffer> } {
  const text = pem.replace(/\\n/g, "\n").trim();
  const match = /^-----BEGIN (RSA PRIVATE KEY|PRIVATE KEY)-----([A-Za-z0-9+/=\s]+)-----END \1-----$/.exec(text);
  if (!match) throw badKey();
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = base64ToBytes(match[2]!.replace(/\s+/g, ""));
  } catch {
    throw badKey();
  }
  if (bytes.length < 64 || bytes[0] !== 0x30) throw badKey();
  return { kind: match[1] === "RSA PRIVATE KEY" ? "pkcs1" : "pkcs8", der: bytes };
}

/** Imports the App's private key for RS256 signing; a key that cannot be read is a misconfigured error. */
export async function importAppPrivateKey(pem: string): Promise<CryptoKey> {
  const { kind, der: bytes } = readPem(pem);
  const pkcs8 = kind === "pkcs1" ? pkcs1ToPkcs8(bytes) : bytes;
  try {
    return await crypto.subtle.importKey("pkcs8", pkcs8, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, false, ["sign"]);
  } catch {
    throw badKey();
  }
}

function base64Url(bytes: Uint8Array): string {
  return bytesToBase64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const encoder = new TextEncoder();

/** A JWT for the App: iat 60 s in the past, exp 10 minutes after iat, iss the App id (or client id). */
export async function signAppJwt(key: CryptoKey, appId: string, nowMs: number): Promise<{ jwt: string; expiresAtMs: number }> {
  const iat = Math.floor(nowMs / 1000) - JWT_BACKDATE_SECONDS;
  const exp = iat + JWT_LIFETIME_SECONDS;
  // GitHub takes the numeric App id as a number and the client id ("Iv1.…") as a string.
  const iss = /^\d+$/.test(appId) ? Number(appId) : appId;
  const header = base64Url(encoder.encode(JSON.stringify({ alg: "RS256", typ: "JWT" })));
  const payload = base64Url(encoder.encode(JSON.stringify({ iat, exp, iss })));
  const signature = await crypto.subtle.sign("RSASSA-PKCS1-v1_5", key, encoder.encode(`${header}.${payload}`));
  return { jwt: `${header}.${payload}.${base64Url(new Uint8Array(signature))}`, expiresAtMs: exp * 1000 };
}
