// The dashboard's only way to the server: the public API (/v1) on this origin, authenticated by the HttpOnly session
// cookie. Changes carry the CSRF token from the script-readable cookie (src/auth/browser-session.ts).

export type Role = "viewer" | "member" | "admin" | "owner";

export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

export interface User {
  id: string;
  email: string;
  name: string | null;
  github_login: string | null;
  avatar_url: string | null;
}

export interface Me {
  user: User;
  teams: { id: string; slug: string; role: Role }[];
}

export interface Team {
  id: string;
  slug: string;
  name: string;
  billing_email: string | null;
  max_concurrent_environments: number;
  max_concurrent_builds: number;
  role: Role;
}

export interface Member {
  user_id: string;
  email: string;
  name: string | null;
  github_login: string | null;
  role: Role;
  joined_at: string;
}

export interface Invitation {
  id: string;
  team: { id: string; slug: string; name: string };
  email: string | null;
  github_login: string | null;
  role: Role;
  status: "pending" | "accepted" | "declined" | "revoked" | "expired";
  invited_by: { id: string; name: string | null; github_login: string | null } | null;
  expires_at: string;
  answered_at: string | null;
  created_at: string;
}

export interface Installation {
  id: number;
  account_login: string;
  account_type: string;
  repository_selection: "all" | "selected";
  suspended_at: string | null;
  repositories: { id: number; full_name: string }[];
  created_at: string;
}

export const machineSizes = ["small", "medium", "large", "xlarge"] as const;
export const previewAccessModes = ["team", "public"] as const;

export interface Project {
  id: string;
  slug: string;
  name: string;
  repo_url: string;
  default_branch: string;
  default_preview_size: (typeof machineSizes)[number];
  cloud_provider_id: string | null;
  is_active: boolean;
  fork_previews: boolean;
  preview_ttl_hours: number;
  preview_access: (typeof previewAccessModes)[number];
  created_at: string;
}

export interface Secret {
  id: string;
  key: string;
  scope: string;
  secret_type: "env" | "file";
  file_path: string | null;
  file_permissions: string | null;
  updated_at: string;
}

export const providerTypes = ["aws", "digitalocean", "hetzner", "local"] as const;
export type ProviderType = (typeof providerTypes)[number];

export interface CloudProvider {
  id: string;
  name: string;
  provider_type: ProviderType;
  region: string;
  config: Record<string, unknown>;
  credentials: { fields: string[]; hint: string | null };
  last_validated_at: string | null;
  validation_error: string | null;
  created_at: string;
}

export interface Environment {
  id: string;
  project_id: string;
  pr_number: number;
  pr_title: string | null;
  branch_name: string;
  commit_hash: string;
  status: string;
  url: string;
  size: string;
  region: string;
  cloud_provider_id: string | null;
  vm_status: string;
  is_fork: boolean;
  deployed_at: string | null;
  last_heartbeat_at: string | null;
  last_request_at: string | null;
  terminated_at: string | null;
  created_at: string;
}

export interface Run {
  id: string;
  trigger: string;
  triggered_by: string | null;
  commit_hash: string;
  status: string;
  result: string | null;
  error_message: string | null;
  deploy_services: { name: string; status: string; health: string | null; port: number | null }[] | null;
  started_at: string | null;
  completed_at: string | null;
  duration_seconds: number | null;
  created_at: string;
}

export interface Job {
  id: string;
  name: string;
  architecture: string;
  status: string;
  machine_size: string;
  exit_code: number | null;
  error_message: string | null;
  duration_seconds: number | null;
}

export interface ShareToken {
  id: string;
  name: string;
  token_hint: string;
  expires_at: string;
  revoked_at: string | null;
  created_by: string | null;
  created_at: string;
}

export interface CreatedShareToken extends ShareToken {
  token: string;
  url: string;
}

export interface AuditEntry {
  id: string;
  action: string;
  resource_type: string;
  resource_id: string | null;
  actor_email: string | null;
  actor_ip: string | null;
  metadata: Record<string, unknown>;
  timestamp: string;
}

export interface ApiToken {
  id: string;
  name: string;
  token_hint: string;
  expires_at: string | null;
  last_used_at: string | null;
  created_at: string;
}

export interface FieldIssue {
  path: string;
  message: string;
}

/** An error answer of the API ({"error": {code, message, issues?}}), or a network failure (status 0). */
export class ApiFailure extends Error {
  readonly status: number;
  readonly code: string;
  readonly issues: FieldIssue[];

  constructor(status: number, code: string, message: string, issues: FieldIssue[] = []) {
    super(message);
    this.status = status;
    this.code = code;
    this.issues = issues;
  }
}

/** Fired when the API says the session is gone: the app shows the sign-in page. */
export const SIGNED_OUT_EVENT = "stagely:signed-out";

const CSRF_COOKIE = "stagely_csrf";

function csrfToken(): string | undefined {
  const prefix = `${CSRF_COOKIE}=`;
  return document.cookie
    .split("; ")
    .find((c) => c.startsWith(prefix))
    ?.slice(prefix.length);
}

export async function api<T>(method: "GET" | "POST" | "PATCH" | "DELETE", path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const csrf = method === "GET" ? undefined : csrfToken();
  if (csrf) headers["X-CSRF-Token"] = csrf;
  let response: Response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  } catch {
    throw new ApiFailure(0, "NETWORK", "the server could not be reached; check your connection and try again");
  }
  if (response.status === 204) return undefined as T;
  const answer = (await response.json().catch(() => null)) as { error?: { code: string; message: string; issues?: FieldIssue[] } } | null;
  if (response.ok) return answer as T;
  if (response.status === 401) window.dispatchEvent(new Event(SIGNED_OUT_EVENT));
  const error = answer?.error;
  throw new ApiFailure(response.status, error?.code ?? "HTTP_ERROR", error?.message ?? `the server answered ${response.status}`, error?.issues ?? []);
}

/** A query string from the set values of `params`. */
export function query(params: Record<string, string | number | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  const text = search.toString();
  return text ? `?${text}` : "";
}
