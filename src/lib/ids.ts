import { customAlphabet } from "nanoid";

const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";
const random16 = customAlphabet(alphabet, 16);

export const idPrefixes = {
  team: "team",
  user: "usr",
  project: "prj",
  cloudProvider: "cp",
  environment: "env",
  workflowRun: "run",
  buildJob: "job",
  secret: "sec",
  agent: "agt",
  token: "tok",
  session: "ses",
  auditLog: "aud",
  invitation: "inv",
  shareToken: "shr",
} as const;

export type IdKind = keyof typeof idPrefixes;

/** A public ID: type prefix, underscore, 16 random lowercase alphanumerics (~82 bits). */
export function newId(kind: IdKind): string {
  return `${idPrefixes[kind]}_${random16()}`;
}

/** True when `value` has the shape of an ID of this kind. */
export function isId(kind: IdKind, value: string): boolean {
  return new RegExp(`^${idPrefixes[kind]}_[0-9a-z]{16}$`).test(value);
}

/** The environment's DNS label: 16 lowercase alphanumerics, unguessable. */
export function newSubdomainHash(): string {
  return random16();
}
