import { sql, type SQL } from "drizzle-orm";
import {
  bigint,
  boolean,
  check,
  index,
  integer,
  jsonb,
  numeric,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from "drizzle-orm/pg-core";

/** `column IN ('a', 'b')` for a check constraint. Values are constants from this file, never input. */
function oneOf(column: string, values: readonly string[]): SQL {
  return sql.raw(`${column} IN (${values.map((v) => `'${v}'`).join(", ")})`);
}

const createdAt = () => timestamp("created_at", { withTimezone: true }).notNull().defaultNow();
const updatedAt = () => timestamp("updated_at", { withTimezone: true }).notNull().defaultNow();
const tz = (name: string) => timestamp(name, { withTimezone: true });

export const billingPlans = ["free", "pro", "enterprise"] as const;
export const roles = ["owner", "admin", "member", "viewer"] as const;
export const repoProviders = ["github", "gitlab", "bitbucket"] as const;
export const machineSizes = ["small", "medium", "large", "xlarge"] as const;
export const providerTypes = ["aws", "digitalocean", "hetzner", "local", "gcp", "linode"] as const;
export const vmStatuses = ["pending", "provisioning", "running", "stopped", "terminated"] as const;
export const environmentStatuses = ["pending", "building", "deploying", "ready", "failed", "terminated", "reaped"] as const;
export const liveEnvironmentStatuses = ["pending", "building", "deploying", "ready", "failed"] as const;
/** api_requested: the first preview of a pull request asked for through POST /v1/projects/:id/environments. */
export const runTriggers = ["pr_opened", "pr_synchronized", "api_requested", "manual_rebuild", "secret_updated"] as const;
export const runStatuses = ["pending", "building", "deploying", "testing", "completed", "failed", "cancelled"] as const;
export const runResults = ["success", "failure", "cancelled"] as const;
export const architectures = ["amd64", "arm64", "multi"] as const;
export const jobStatuses = ["queued", "provisioning", "running", "completed", "failed", "cancelled"] as const;
export const logStreams = ["stdout", "stderr"] as const;
export const secretTypes = ["env", "file"] as const;
export const registryKinds = ["generic", "ecr", "digitalocean"] as const;
export const agentRoles = ["builder", "preview"] as const;
export const agentStatuses = ["connected", "disconnected"] as const;
export const tokenKinds = ["session", "api", "sign_in_link"] as const;
/** Who may open a project's preview URLs: members of its team (signed in), or anyone with the link. */
export const previewAccessModes = ["team", "public"] as const;

export const teams = pgTable(
  "teams",
  {
    id: text("id").primaryKey(),
    slug: text("slug").notNull(),
    name: text("name").notNull(),
    billingEmail: text("billing_email"),
    billingPlan: text("billing_plan", { enum: billingPlans }).notNull().default("free"),
    maxConcurrentEnvironments: integer("max_concurrent_environments").notNull().default(5),
    maxConcurrentBuilds: integer("max_concurrent_builds").notNull().default(10),
    deletedAt: tz("deleted_at"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("teams_slug_key").on(t.slug).where(sql`deleted_at IS NULL`),
    check("teams_slug_format", sql`${t.slug} ~ '^[a-z0-9][a-z0-9-]*[a-z0-9]$' AND length(${t.slug}) <= 63`),
    check("teams_billing_plan_valid", oneOf("billing_plan", billingPlans)),
    check("teams_quotas_positive", sql`${t.maxConcurrentEnvironments} > 0 AND ${t.maxConcurrentBuilds} > 0`),
  ],
);

export const users = pgTable(
  "users",
  {
    id: text("id").primaryKey(),
    email: text("email").notNull(),
    name: text("name"),
    avatarUrl: text("avatar_url"),
    githubId: bigint("github_id", { mode: "number" }),
    githubLogin: text("github_login"),
    googleId: text("google_id"),
    isActive: boolean("is_active").notNull().default(true),
    emailVerified: boolean("email_verified").notNull().default(false),
    lastLoginAt: tz("last_login_at"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("users_email_key").on(sql`lower(${t.email})`),
    uniqueIndex("users_github_id_key").on(t.githubId),
    index("users_github_login_idx").on(sql`lower(${t.githubLogin})`),
    uniqueIndex("users_google_id_key").on(t.googleId),
  ],
);

export const teamMembers = pgTable(
  "team_members",
  {
    teamId: text("team_id").notNull().references(() => teams.id, { onDelete: "cascade" }),
    userId: text("user_id").notNull().references(() => users.id, { onDelete: "cascade" }),
    role: text("role", { enum: roles }).notNull(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    primaryKey({ name: "team_members_pkey", columns: [t.teamId, t.userId] }),
    index("team_members_user_idx").on(t.userId),
    check("team_members_role_valid", oneOf("role", roles)),
  ],
);

/** Not accepted, declined or revoked (it may still have expired). */
const invitationOpen = sql`accepted_at IS NULL AND declined_at IS NULL AND revoked_at IS NULL`;

/**
 * An invitation to join a team, for one GitHub login or one email address. Nobody is added to a team without
 * accepting: the invitee, once signed in, sees invitations addressed to their GitHub login or verified email and
 * accepts or declines them. No link or token is sent, so the id alone grants nothing.
 */
export const teamInvitations = pgTable(
  "team_invitations",
  {
    id: text("id").primaryKey(),
    teamId: text("team_id").notNull().references(() => teams.id, { onDelete: "cascade" }),
    email: text("email"),
    githubLogin: text("github_login"),
    role: text("role", { enum: roles }).notNull(),
    invitedBy: text("invited_by").references(() => users.id, { onDelete: "set null" }),
    expiresAt: tz("expires_at").notNull(),
    acceptedAt: tz("accepted_at"),
    acceptedBy: text("accepted_by").references(() => users.id, { onDelete: "set null" }),
    declinedAt: tz("declined_at"),
    revokedAt: tz("revoked_at"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    check("team_invitations_one_invitee", sql`(${t.email} IS NULL) <> (${t.githubLogin} IS NULL)`),
    check("team_invitations_role_valid", oneOf("role", roles)),
    check("team_invitations_answered_once", sql`num_nonnulls(${t.acceptedAt}, ${t.declinedAt}, ${t.revokedAt}) <= 1`),
    // One open invitation per person and team: inviting again replaces it (the route revokes the old one first).
    uniqueIndex("team_invitations_open_email_key").on(t.teamId, sql`lower(${t.email})`).where(sql`email IS NOT NULL AND ${invitationOpen}`),
    uniqueIndex("team_invitations_open_github_login_key").on(t.teamId, sql`lower(${t.githubLogin})`).where(sql`github_login IS NOT NULL AND ${invitationOpen}`),
    // "My invitations": looked up by the signed-in user's email and login.
    index("team_invitations_open_email_idx").on(sql`lower(${t.email})`).where(sql`email IS NOT NULL AND ${invitationOpen}`),
    index("team_invitations_open_github_login_idx").on(sql`lower(${t.githubLogin})`).where(sql`github_login IS NOT NULL AND ${invitationOpen}`),
    index("team_invitations_team_created_idx").on(t.teamId, t.createdAt),
  ],
);

export const cloudProviders = pgTable(
  "cloud_providers",
  {
    id: text("id").primaryKey(),
    teamId: text("team_id").notNull().references(() => teams.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    providerType: text("provider_type", { enum: providerTypes }).notNull(),
    encryptedCredentials: text("encrypted_credentials").notNull(),
    /** Which credential fields are set and the last characters of the main one, e.g. {"fields":["api_token"],"hint":"…3f9a"}. */
    credentialsSummary: jsonb("credentials_summary").$type<{ fields: string[]; hint: string | null }>().notNull().default({ fields: [], hint: null }),
    region: text("region").notNull(),
    config: jsonb("config").$type<Record<string, unknown>>().notNull().default({}),
    isActive: boolean("is_active").notNull().default(true),
    lastValidatedAt: tz("last_validated_at"),
    validationError: text("validation_error"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("cloud_providers_team_name_key").on(t.teamId, t.name),
    check("cloud_providers_type_valid", oneOf("provider_type", providerTypes)),
  ],
);

export const installationAccountTypes = ["User", "Organization", "Enterprise"] as const;
export const repositorySelections = ["all", "selected"] as const;

/**
 * GitHub App installations, keyed by GitHub's installation id. `team_id` is the one team that claimed it through the
 * install flow (null until then, or after the team disconnected it); its webhooks and tokens serve only that team.
 */
export const githubInstallations = pgTable(
  "github_installations",
  {
    id: bigint("id", { mode: "number" }).primaryKey(),
    teamId: text("team_id").references(() => teams.id, { onDelete: "set null" }),
    accountLogin: text("account_login").notNull(),
    accountType: text("account_type", { enum: installationAccountTypes }).notNull(),
    repositorySelection: text("repository_selection", { enum: repositorySelections }).notNull(),
    permissions: jsonb("permissions").$type<Record<string, string>>().notNull().default({}),
    suspendedAt: tz("suspended_at"),
    /** The Stagely user whose install (or re-install) claimed it for the team. */
    claimedBy: text("claimed_by").references(() => users.id, { onDelete: "set null" }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index("github_installations_team_idx").on(t.teamId),
    check("github_installations_account_type_valid", oneOf("account_type", installationAccountTypes)),
    check("github_installations_repository_selection_valid", oneOf("repository_selection", repositorySelections)),
  ],
);

/** The repositories an installation can access, as GitHub last told us (install flow and webhooks). */
export const githubInstallationRepositories = pgTable(
  "github_installation_repositories",
  {
    installationId: bigint("installation_id", { mode: "number" })
      .notNull()
      .references(() => githubInstallations.id, { onDelete: "cascade" }),
    repositoryId: bigint("repository_id", { mode: "number" }).notNull(),
    /** `owner/name`, lowercased (projects store `https://github.com/<full_name>`). */
    fullName: text("full_name").notNull(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    primaryKey({ name: "github_installation_repositories_pkey", columns: [t.installationId, t.repositoryId] }),
    index("github_installation_repositories_full_name_idx").on(t.fullName),
    check("github_installation_repositories_full_name_lowercase", sql`${t.fullName} = lower(${t.fullName})`),
  ],
);

export const projects = pgTable(
  "projects",
  {
    id: text("id").primaryKey(),
    teamId: text("team_id").notNull().references(() => teams.id, { onDelete: "cascade" }),
    slug: text("slug").notNull(),
    name: text("name").notNull(),
    repoUrl: text("repo_url").notNull(),
    repoProvider: text("repo_provider", { enum: repoProviders }).notNull().default("github"),
    defaultBranch: text("default_branch").notNull().default("main"),
    cloudProviderId: text("cloud_provider_id").references(() => cloudProviders.id, { onDelete: "set null" }),
    defaultPreviewSize: text("default_preview_size", { enum: machineSizes }).notNull().default("medium"),
    config: jsonb("config").$type<Record<string, unknown>>().notNull().default({}),
    isActive: boolean("is_active").notNull().default(true),
    /** Previews for pull requests from forks (off by default: a fork's code would see the project's secrets). */
    forkPreviews: boolean("fork_previews").notNull().default(false),
    previewTtlHours: integer("preview_ttl_hours").notNull().default(24),
    /** Set when a secret changes; ready environments deployed before it need a redeploy. */
    secretsChangedAt: tz("secrets_changed_at"),
    /**
     * The team's GitHub App installation that covers the repository: checked when the project names it, kept current by
     * the install flow and webhooks, and checked again (still the team's, not suspended, still covering) before use.
     */
    githubInstallationId: bigint("github_installation_id", { mode: "number" }),
    previewAccess: text("preview_access", { enum: previewAccessModes }).notNull().default("team"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    check("projects_preview_ttl_positive", sql`${t.previewTtlHours} BETWEEN 1 AND 720`),
    check("projects_preview_access_valid", oneOf("preview_access", previewAccessModes)),
    uniqueIndex("projects_team_slug_key").on(t.teamId, t.slug),
    index("projects_repo_url_idx").on(t.repoUrl),
    index("projects_cloud_provider_idx").on(t.cloudProviderId),
    check("projects_repo_provider_valid", oneOf("repo_provider", repoProviders)),
    check("projects_default_preview_size_valid", oneOf("default_preview_size", machineSizes)),
  ],
);

export const environments = pgTable(
  "environments",
  {
    id: text("id").primaryKey(),
    projectId: text("project_id").notNull().references(() => projects.id, { onDelete: "cascade" }),
    prNumber: integer("pr_number").notNull(),
    branchName: text("branch_name").notNull(),
    commitHash: text("commit_hash").notNull(),
    subdomainHash: text("subdomain_hash").notNull(),
    cloudProviderId: text("cloud_provider_id").references(() => cloudProviders.id, { onDelete: "set null" }),
    size: text("size", { enum: machineSizes }).notNull(),
    region: text("region").notNull(),
    vmId: text("vm_id"),
    vmIp: text("vm_ip"),
    vmStatus: text("vm_status", { enum: vmStatuses }).notNull().default("pending"),
    status: text("status", { enum: environmentStatuses }).notNull().default("pending"),
    deployedAt: tz("deployed_at"),
    lastHeartbeatAt: tz("last_heartbeat_at"),
    terminatedAt: tz("terminated_at"),
    estimatedCostUsd: numeric("estimated_cost_usd", { precision: 12, scale: 4 }).notNull().default("0"),
    /** A pull request from a fork: built only if the project allows it, and never given secrets. */
    isFork: boolean("is_fork").notNull().default(false),
    githubDeploymentId: bigint("github_deployment_id", { mode: "number" }),
    githubCommentId: bigint("github_comment_id", { mode: "number" }),
    /** When a visitor last reached the preview URL (written at most once a minute). */
    lastRequestAt: tz("last_request_at"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("environments_subdomain_hash_key").on(t.subdomainHash),
    uniqueIndex("environments_one_live_per_pr")
      .on(t.projectId, t.prNumber)
      .where(sql`status NOT IN ('terminated', 'reaped')`),
    index("environments_project_created_idx").on(t.projectId, t.createdAt),
    index("environments_live_heartbeat_idx")
      .on(t.lastHeartbeatAt)
      .where(sql`status NOT IN ('terminated', 'reaped')`),
    index("environments_cloud_provider_idx").on(t.cloudProviderId),
    check("environments_pr_number_positive", sql`${t.prNumber} > 0`),
    check("environments_subdomain_hash_format", sql`${t.subdomainHash} ~ '^[a-z0-9]{16}$'`),
    check("environments_size_valid", oneOf("size", machineSizes)),
    check("environments_vm_status_valid", oneOf("vm_status", vmStatuses)),
    check("environments_status_valid", oneOf("status", environmentStatuses)),
  ],
);

export interface DeployedService {
  name: string;
  status: string;
  health: string | null;
  port: number | null;
}

export const workflowRuns = pgTable(
  "workflow_runs",
  {
    id: text("id").primaryKey(),
    environmentId: text("environment_id").notNull().references(() => environments.id, { onDelete: "cascade" }),
    trigger: text("trigger", { enum: runTriggers }).notNull(),
    triggeredBy: text("triggered_by"),
    commitHash: text("commit_hash").notNull(),
    config: jsonb("config").$type<Record<string, unknown>>(),
    /** The compose file as read and validated when the run was planned; the deploy sends exactly this. */
    composeFile: text("compose_file"),
    status: text("status", { enum: runStatuses }).notNull().default("pending"),
    startedAt: tz("started_at"),
    completedAt: tz("completed_at"),
    durationSeconds: integer("duration_seconds"),
    result: text("result", { enum: runResults }),
    errorMessage: text("error_message"),
    /** Each service's state as the agent last reported it when the deploy settled (masked); null when none was reported. */
    deployServices: jsonb("deploy_services").$type<DeployedService[]>(),
    /** Makes the creation of a run idempotent: a redelivered webhook or queue message finds the run it made. */
    dedupeKey: text("dedupe_key"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("workflow_runs_dedupe_key").on(t.dedupeKey),
    index("workflow_runs_environment_created_idx").on(t.environmentId, t.createdAt),
    index("workflow_runs_active_idx").on(t.status).where(sql`status IN ('pending', 'building', 'deploying', 'testing')`),
    check("workflow_runs_trigger_valid", oneOf("trigger", runTriggers)),
    check("workflow_runs_status_valid", oneOf("status", runStatuses)),
    check("workflow_runs_result_valid", sql`result IS NULL OR ${oneOf("result", runResults)}`),
    // COMPOSE_MAX_BYTES (src/pipeline/compose-file.ts).
    check("workflow_runs_compose_file_size", sql`octet_length(compose_file) <= 65536`),
  ],
);

export const buildJobs = pgTable(
  "build_jobs",
  {
    id: text("id").primaryKey(),
    workflowRunId: text("workflow_run_id").notNull().references(() => workflowRuns.id, { onDelete: "cascade" }),
    /** `<build>_<arch>`: the stagely.yaml build (also the compose service it feeds) and the architecture. */
    name: text("name").notNull(),
    architecture: text("architecture", { enum: architectures }).notNull(),
    timeoutSeconds: integer("timeout_seconds").notNull().default(1800),
    contextPath: text("context_path").notNull(),
    dockerfilePath: text("dockerfile_path").notNull(),
    vmId: text("vm_id"),
    agentId: text("agent_id"),
    cloudProviderId: text("cloud_provider_id").references(() => cloudProviders.id, { onDelete: "set null" }),
    machineSize: text("machine_size", { enum: machineSizes }).notNull().default("medium"),
    status: text("status", { enum: jobStatuses }).notNull().default("queued"),
    queuedAt: tz("queued_at").notNull().defaultNow(),
    startedAt: tz("started_at"),
    completedAt: tz("completed_at"),
    durationSeconds: integer("duration_seconds"),
    artifactUrl: text("artifact_url"),
    exitCode: integer("exit_code"),
    errorMessage: text("error_message"),
    attempt: integer("attempt").notNull().default(1),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("build_jobs_run_name_key").on(t.workflowRunId, t.name),
    index("build_jobs_active_idx").on(t.status).where(sql`status IN ('queued', 'provisioning', 'running')`),
    /** The reaper's retention step finds jobs finished long ago (their logs go). */
    index("build_jobs_completed_idx").on(t.completedAt),
    check("build_jobs_architecture_valid", oneOf("architecture", architectures)),
    check("build_jobs_machine_size_valid", oneOf("machine_size", machineSizes)),
    check("build_jobs_status_valid", oneOf("status", jobStatuses)),
    check("build_jobs_attempt_positive", sql`${t.attempt} >= 1`),
  ],
);

export const buildLogs = pgTable(
  "build_logs",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    buildJobId: text("build_job_id").notNull().references(() => buildJobs.id, { onDelete: "cascade" }),
    seq: bigint("seq", { mode: "number" }).notNull(),
    timestamp: tz("timestamp").notNull(),
    stream: text("stream", { enum: logStreams }).notNull(),
    line: text("line").notNull(),
  },
  (t) => [
    uniqueIndex("build_logs_job_seq_key").on(t.buildJobId, t.seq),
    check("build_logs_stream_valid", oneOf("stream", logStreams)),
    check("build_logs_seq_nonnegative", sql`${t.seq} >= 0`),
  ],
);

/**
 * A project's container registry (registry mode: builder VMs push there, the preview pulls by digest). One per project;
 * none means default mode (images are built on the preview VM). `generic`: `address` with a username and a password
 * (encrypted, bound to the project); `ecr`: the project's AWS cloud account gets a 12-hour token (GetAuthorizationToken)
 * for `region`; `digitalocean`: the project's DigitalOcean account gets expiring Docker credentials for `registry_name`.
 */
export const projectRegistries = pgTable(
  "project_registries",
  {
    projectId: text("project_id").primaryKey().references(() => projects.id, { onDelete: "cascade" }),
    kind: text("kind", { enum: registryKinds }).notNull(),
    /** generic: host[:port][/namespace] images are pushed under. */
    address: text("address"),
    username: text("username"),
    encryptedPassword: text("encrypted_password"),
    /** ecr: the region of the registry (default: the cloud account's region). */
    region: text("region"),
    /** digitalocean: the registry's name (registry.digitalocean.com/<name>). */
    registryName: text("registry_name"),
    updatedBy: text("updated_by").references(() => users.id, { onDelete: "set null" }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  () => [
    check("project_registries_kind_valid", oneOf("kind", registryKinds)),
    check(
      "project_registries_fields",
      sql`CASE kind WHEN 'generic' THEN address IS NOT NULL AND username IS NOT NULL AND encrypted_password IS NOT NULL
                    WHEN 'digitalocean' THEN registry_name IS NOT NULL ELSE true END`,
    ),
  ],
);

export const secrets = pgTable(
  "secrets",
  {
    id: text("id").primaryKey(),
    projectId: text("project_id").notNull().references(() => projects.id, { onDelete: "cascade" }),
    key: text("key").notNull(),
    encryptedValue: text("encrypted_value").notNull(),
    scope: text("scope").notNull().default("global"),
    secretType: text("secret_type", { enum: secretTypes }).notNull().default("env"),
    filePath: text("file_path"),
    filePermissions: text("file_permissions"),
    createdBy: text("created_by").references(() => users.id, { onDelete: "set null" }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("secrets_project_key_scope_key").on(t.projectId, t.key, t.scope),
    check("secrets_type_valid", oneOf("secret_type", secretTypes)),
    check(
      "secrets_file_fields",
      sql`(${t.secretType} = 'file') = (${t.filePath} IS NOT NULL)`,
    ),
    check("secrets_file_permissions_format", sql`${t.filePermissions} IS NULL OR ${t.filePermissions} ~ '^0[0-7]{3}$'`),
  ],
);

/** Append-only. No foreign keys: an audit row never blocks deleting what it mentions, and outlives it. */
export const auditLogs = pgTable(
  "audit_logs",
  {
    id: text("id").primaryKey(),
    actorId: text("actor_id"),
    actorEmail: text("actor_email"),
    actorIp: text("actor_ip"),
    action: text("action").notNull(),
    resourceType: text("resource_type").notNull(),
    resourceId: text("resource_id"),
    teamId: text("team_id"),
    projectId: text("project_id"),
    metadata: jsonb("metadata").$type<Record<string, unknown>>().notNull().default({}),
    timestamp: tz("timestamp").notNull().defaultNow(),
  },
  (t) => [
    index("audit_logs_team_time_idx").on(t.teamId, t.timestamp.desc(), t.id.desc()),
    index("audit_logs_time_idx").on(t.timestamp),
    index("audit_logs_resource_idx").on(t.resourceType, t.resourceId),
    check("audit_logs_action_format", sql`${t.action} ~ '^[a-z_]+\\.[a-z_]+$'`),
  ],
);

export const agentConnections = pgTable(
  "agent_connections",
  {
    agentId: text("agent_id").primaryKey(),
    environmentId: text("environment_id").references(() => environments.id, { onDelete: "cascade" }),
    buildJobId: text("build_job_id").references(() => buildJobs.id, { onDelete: "cascade" }),
    role: text("role", { enum: agentRoles }).notNull(),
    tokenHash: text("token_hash").notNull(),
    status: text("status", { enum: agentStatuses }).notNull().default("disconnected"),
    ipAddress: text("ip_address"),
    agentVersion: text("agent_version"),
    systemInfo: jsonb("system_info").$type<Record<string, unknown>>(),
    connectedAt: tz("connected_at"),
    lastSeenAt: tz("last_seen_at"),
    disconnectedAt: tz("disconnected_at"),
    /** When the agent's Durable Object confirmed the token refused; null while the agent may still be in use. */
    revokedAt: tz("revoked_at"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("agent_connections_token_hash_key").on(t.tokenHash),
    index("agent_connections_environment_idx").on(t.environmentId),
    index("agent_connections_build_job_idx").on(t.buildJobId),
    /** The reaper retries revocations that failed: agents not yet revoked. */
    index("agent_connections_unrevoked_idx").on(t.createdAt).where(sql`revoked_at IS NULL`),
    check("agent_connections_role_valid", oneOf("role", agentRoles)),
    check("agent_connections_status_valid", oneOf("status", agentStatuses)),
    check("agent_connections_token_hash_format", sql`${t.tokenHash} ~ '^[0-9a-f]{64}$'`),
    check(
      "agent_connections_assignment",
      sql`(${t.role} = 'builder' AND ${t.buildJobId} IS NOT NULL AND ${t.environmentId} IS NULL) OR (${t.role} = 'preview' AND ${t.environmentId} IS NOT NULL AND ${t.buildJobId} IS NULL)`,
    ),
  ],
);

/** User sessions (`ses_`) and personal API tokens (`tok_`): only the SHA-256 of the token is stored. */
export const apiTokens = pgTable(
  "api_tokens",
  {
    id: text("id").primaryKey(),
    userId: text("user_id").notNull().references(() => users.id, { onDelete: "cascade" }),
    kind: text("kind", { enum: tokenKinds }).notNull(),
    name: text("name").notNull(),
    tokenHash: text("token_hash").notNull(),
    /** The token's first characters, to recognise it in a list (never enough to use it). */
    tokenHint: text("token_hint").notNull(),
    expiresAt: tz("expires_at"),
    lastUsedAt: tz("last_used_at"),
    revokedAt: tz("revoked_at"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("api_tokens_token_hash_key").on(t.tokenHash),
    index("api_tokens_user_idx").on(t.userId, t.kind, t.createdAt),
    check("api_tokens_kind_valid", oneOf("kind", tokenKinds)),
    check("api_tokens_token_hash_format", sql`${t.tokenHash} ~ '^[0-9a-f]{64}$'`),
  ],
);

/**
 * The last known state of each pull request of a project, from its webhooks. Events are applied only if newer than
 * the last one applied (GitHub's `pull_request.updated_at`), so late or reordered deliveries change nothing.
 */
export const pullRequests = pgTable(
  "pull_requests",
  {
    projectId: text("project_id").notNull().references(() => projects.id, { onDelete: "cascade" }),
    prNumber: integer("pr_number").notNull(),
    state: text("state", { enum: ["open", "closed"] }).notNull(),
    headSha: text("head_sha").notNull(),
    headRef: text("head_ref").notNull(),
    /** GitHub's title (null for rows recorded before titles were kept), and the event time it is from. */
    title: text("title"),
    titleAt: tz("title_at"),
    isFork: boolean("is_fork").notNull().default(false),
    lastEventAt: tz("last_event_at").notNull(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    primaryKey({ name: "pull_requests_pkey", columns: [t.projectId, t.prNumber] }),
    check("pull_requests_state_valid", sql`${t.state} IN ('open', 'closed')`),
  ],
);

/**
 * Share tokens of a preview (`stg_shr_...`): let someone outside the team open that one preview until they expire or
 * are revoked. Only the SHA-256 of the token is stored.
 */
export const previewShareTokens = pgTable(
  "preview_share_tokens",
  {
    id: text("id").primaryKey(),
    environmentId: text("environment_id").notNull().references(() => environments.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    tokenHash: text("token_hash").notNull(),
    tokenHint: text("token_hint").notNull(),
    createdBy: text("created_by").references(() => users.id, { onDelete: "set null" }),
    expiresAt: tz("expires_at").notNull(),
    revokedAt: tz("revoked_at"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("preview_share_tokens_token_hash_key").on(t.tokenHash),
    index("preview_share_tokens_environment_idx").on(t.environmentId, t.createdAt),
    check("preview_share_tokens_token_hash_format", sql`${t.tokenHash} ~ '^[0-9a-f]{64}$'`),
  ],
);

/** GitHub webhook deliveries already accepted (X-GitHub-Delivery), so a redelivery is processed once. */
export const webhookDeliveries = pgTable(
  "webhook_deliveries",
  {
    deliveryId: text("delivery_id").primaryKey(),
    event: text("event").notNull(),
    receivedAt: tz("received_at").notNull().defaultNow(),
  },
  (t) => [index("webhook_deliveries_received_idx").on(t.receivedAt)],
);

/** Tables that carry `updated_at`, kept current by a trigger (migrations/0001_updated_at_triggers.sql). */
export const tablesWithUpdatedAt = [
  "teams",
  "users",
  "team_members",
  "cloud_providers",
  "projects",
  "environments",
  "workflow_runs",
  "build_jobs",
  "secrets",
  "agent_connections",
  "api_tokens",
  "pull_requests",
  "github_installations",
  "github_installation_repositories",
  "team_invitations",
  "preview_share_tokens",
] as const;
