CREATE TABLE "agent_connections" (
	"agent_id" text PRIMARY KEY NOT NULL,
	"environment_id" text,
	"build_job_id" text,
	"role" text NOT NULL,
	"token_hash" text NOT NULL,
	"status" text DEFAULT 'disconnected' NOT NULL,
	"ip_address" text,
	"agent_version" text,
	"system_info" jsonb,
	"connected_at" timestamp with time zone,
	"last_seen_at" timestamp with time zone,
	"disconnected_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "agent_connections_role_valid" CHECK (role IN ('builder', 'preview')),
	CONSTRAINT "agent_connections_status_valid" CHECK (status IN ('connected', 'disconnected')),
	CONSTRAINT "agent_connections_token_hash_format" CHECK ("agent_connections"."token_hash" ~ '^[0-9a-f]{64}$'),
	CONSTRAINT "agent_connections_assignment" CHECK (("agent_connections"."role" = 'builder' AND "agent_connections"."build_job_id" IS NOT NULL AND "agent_connections"."environment_id" IS NULL) OR ("agent_connections"."role" = 'preview' AND "agent_connections"."environment_id" IS NOT NULL AND "agent_connections"."build_job_id" IS NULL))
);
--> statement-breakpoint
CREATE TABLE "audit_logs" (
	"id" text PRIMARY KEY NOT NULL,
	"actor_id" text,
	"actor_email" text,
	"actor_ip" text,
	"action" text NOT NULL,
	"resource_type" text NOT NULL,
	"resource_id" text,
	"team_id" text,
	"project_id" text,
	"metadata" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"timestamp" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "audit_logs_action_format" CHECK ("audit_logs"."action" ~ '^[a-z_]+\.[a-z_]+$')
);
--> statement-breakpoint
CREATE TABLE "build_jobs" (
	"id" text PRIMARY KEY NOT NULL,
	"workflow_run_id" text NOT NULL,
	"name" text NOT NULL,
	"architecture" text NOT NULL,
	"context_path" text NOT NULL,
	"dockerfile_path" text NOT NULL,
	"vm_id" text,
	"agent_id" text,
	"cloud_provider_id" text,
	"machine_size" text DEFAULT 'medium' NOT NULL,
	"status" text DEFAULT 'queued' NOT NULL,
	"queued_at" timestamp with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp with time zone,
	"completed_at" timestamp with time zone,
	"duration_seconds" integer,
	"artifact_url" text,
	"exit_code" integer,
	"error_message" text,
	"attempt" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "build_jobs_architecture_valid" CHECK (architecture IN ('amd64', 'arm64', 'multi')),
	CONSTRAINT "build_jobs_machine_size_valid" CHECK (machine_size IN ('small', 'medium', 'large', 'xlarge')),
	CONSTRAINT "build_jobs_status_valid" CHECK (status IN ('queued', 'provisioning', 'running', 'completed', 'failed', 'cancelled')),
	CONSTRAINT "build_jobs_attempt_positive" CHECK ("build_jobs"."attempt" >= 1)
);
--> statement-breakpoint
CREATE TABLE "build_logs" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "build_logs_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"build_job_id" text NOT NULL,
	"seq" bigint NOT NULL,
	"timestamp" timestamp with time zone NOT NULL,
	"stream" text NOT NULL,
	"line" text NOT NULL,
	CONSTRAINT "build_logs_stream_valid" CHECK (stream IN ('stdout', 'stderr')),
	CONSTRAINT "build_logs_seq_nonnegative" CHECK ("build_logs"."seq" >= 0)
);
--> statement-breakpoint
CREATE TABLE "cloud_providers" (
	"id" text PRIMARY KEY NOT NULL,
	"team_id" text NOT NULL,
	"name" text NOT NULL,
	"provider_type" text NOT NULL,
	"encrypted_credentials" text NOT NULL,
	"region" text NOT NULL,
	"config" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"is_active" boolean DEFAULT true NOT NULL,
	"last_validated_at" timestamp with time zone,
	"validation_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "cloud_providers_type_valid" CHECK (provider_type IN ('aws', 'digitalocean', 'hetzner', 'local', 'gcp', 'linode'))
);
--> statement-breakpoint
CREATE TABLE "environments" (
	"id" text PRIMARY KEY NOT NULL,
	"project_id" text NOT NULL,
	"pr_number" integer NOT NULL,
	"branch_name" text NOT NULL,
	"commit_hash" text NOT NULL,
	"subdomain_hash" text NOT NULL,
	"cloud_provider_id" text,
	"size" text NOT NULL,
	"region" text NOT NULL,
	"vm_id" text,
	"vm_ip" text,
	"vm_status" text DEFAULT 'pending' NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"deployed_at" timestamp with time zone,
	"last_heartbeat_at" timestamp with time zone,
	"terminated_at" timestamp with time zone,
	"estimated_cost_usd" numeric(12, 4) DEFAULT '0' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "environments_pr_number_positive" CHECK ("environments"."pr_number" > 0),
	CONSTRAINT "environments_subdomain_hash_format" CHECK ("environments"."subdomain_hash" ~ '^[a-z0-9]{16}$'),
	CONSTRAINT "environments_size_valid" CHECK (size IN ('small', 'medium', 'large', 'xlarge')),
	CONSTRAINT "environments_vm_status_valid" CHECK (vm_status IN ('pending', 'provisioning', 'running', 'stopped', 'terminated')),
	CONSTRAINT "environments_status_valid" CHECK (status IN ('pending', 'building', 'deploying', 'ready', 'failed', 'terminated', 'reaped'))
);
--> statement-breakpoint
CREATE TABLE "projects" (
	"id" text PRIMARY KEY NOT NULL,
	"team_id" text NOT NULL,
	"slug" text NOT NULL,
	"name" text NOT NULL,
	"repo_url" text NOT NULL,
	"repo_provider" text DEFAULT 'github' NOT NULL,
	"default_branch" text DEFAULT 'main' NOT NULL,
	"cloud_provider_id" text,
	"default_preview_size" text DEFAULT 'medium' NOT NULL,
	"config" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"is_active" boolean DEFAULT true NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "projects_repo_provider_valid" CHECK (repo_provider IN ('github', 'gitlab', 'bitbucket')),
	CONSTRAINT "projects_default_preview_size_valid" CHECK (default_preview_size IN ('small', 'medium', 'large', 'xlarge'))
);
--> statement-breakpoint
CREATE TABLE "secrets" (
	"id" text PRIMARY KEY NOT NULL,
	"project_id" text NOT NULL,
	"key" text NOT NULL,
	"encrypted_value" text NOT NULL,
	"scope" text DEFAULT 'global' NOT NULL,
	"secret_type" text DEFAULT 'env' NOT NULL,
	"file_path" text,
	"file_permissions" text,
	"created_by" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "secrets_type_valid" CHECK (secret_type IN ('env', 'file')),
	CONSTRAINT "secrets_file_fields" CHECK (("secrets"."secret_type" = 'file') = ("secrets"."file_path" IS NOT NULL)),
	CONSTRAINT "secrets_file_permissions_format" CHECK ("secrets"."file_permissions" IS NULL OR "secrets"."file_permissions" ~ '^0[0-7]{3}$')
);
--> statement-breakpoint
CREATE TABLE "team_members" (
	"team_id" text NOT NULL,
	"user_id" text NOT NULL,
	"role" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "team_members_pkey" PRIMARY KEY("team_id","user_id"),
	CONSTRAINT "team_members_role_valid" CHECK (role IN ('owner', 'admin', 'member', 'viewer'))
);
--> statement-breakpoint
CREATE TABLE "teams" (
	"id" text PRIMARY KEY NOT NULL,
	"slug" text NOT NULL,
	"name" text NOT NULL,
	"billing_email" text,
	"billing_plan" text DEFAULT 'free' NOT NULL,
	"max_concurrent_environments" integer DEFAULT 5 NOT NULL,
	"max_concurrent_builds" integer DEFAULT 10 NOT NULL,
	"deleted_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "teams_slug_format" CHECK ("teams"."slug" ~ '^[a-z0-9][a-z0-9-]*[a-z0-9]$' AND length("teams"."slug") <= 63),
	CONSTRAINT "teams_billing_plan_valid" CHECK (billing_plan IN ('free', 'pro', 'enterprise')),
	CONSTRAINT "teams_quotas_positive" CHECK ("teams"."max_concurrent_environments" > 0 AND "teams"."max_concurrent_builds" > 0)
);
--> statement-breakpoint
CREATE TABLE "users" (
	"id" text PRIMARY KEY NOT NULL,
	"email" text NOT NULL,
	"name" text,
	"avatar_url" text,
	"github_id" bigint,
	"google_id" text,
	"is_active" boolean DEFAULT true NOT NULL,
	"email_verified" boolean DEFAULT false NOT NULL,
	"last_login_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "workflow_runs" (
	"id" text PRIMARY KEY NOT NULL,
	"environment_id" text NOT NULL,
	"trigger" text NOT NULL,
	"triggered_by" text,
	"commit_hash" text NOT NULL,
	"config" jsonb,
	"status" text DEFAULT 'pending' NOT NULL,
	"started_at" timestamp with time zone,
	"completed_at" timestamp with time zone,
	"duration_seconds" integer,
	"result" text,
	"error_message" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "workflow_runs_trigger_valid" CHECK (trigger IN ('pr_opened', 'pr_synchronized', 'manual_rebuild', 'secret_updated')),
	CONSTRAINT "workflow_runs_status_valid" CHECK (status IN ('pending', 'building', 'deploying', 'testing', 'completed', 'failed', 'cancelled')),
	CONSTRAINT "workflow_runs_result_valid" CHECK (result IS NULL OR result IN ('success', 'failure', 'cancelled'))
);
--> statement-breakpoint
ALTER TABLE "agent_connections" ADD CONSTRAINT "agent_connections_environment_id_environments_id_fk" FOREIGN KEY ("environment_id") REFERENCES "public"."environments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "agent_connections" ADD CONSTRAINT "agent_connections_build_job_id_build_jobs_id_fk" FOREIGN KEY ("build_job_id") REFERENCES "public"."build_jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "build_jobs" ADD CONSTRAINT "build_jobs_workflow_run_id_workflow_runs_id_fk" FOREIGN KEY ("workflow_run_id") REFERENCES "public"."workflow_runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "build_jobs" ADD CONSTRAINT "build_jobs_cloud_provider_id_cloud_providers_id_fk" FOREIGN KEY ("cloud_provider_id") REFERENCES "public"."cloud_providers"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "build_logs" ADD CONSTRAINT "build_logs_build_job_id_build_jobs_id_fk" FOREIGN KEY ("build_job_id") REFERENCES "public"."build_jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "cloud_providers" ADD CONSTRAINT "cloud_providers_team_id_teams_id_fk" FOREIGN KEY ("team_id") REFERENCES "public"."teams"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "environments" ADD CONSTRAINT "environments_project_id_projects_id_fk" FOREIGN KEY ("project_id") REFERENCES "public"."projects"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "environments" ADD CONSTRAINT "environments_cloud_provider_id_cloud_providers_id_fk" FOREIGN KEY ("cloud_provider_id") REFERENCES "public"."cloud_providers"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "projects" ADD CONSTRAINT "projects_team_id_teams_id_fk" FOREIGN KEY ("team_id") REFERENCES "public"."teams"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "projects" ADD CONSTRAINT "projects_cloud_provider_id_cloud_providers_id_fk" FOREIGN KEY ("cloud_provider_id") REFERENCES "public"."cloud_providers"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "secrets" ADD CONSTRAINT "secrets_project_id_projects_id_fk" FOREIGN KEY ("project_id") REFERENCES "public"."projects"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "secrets" ADD CONSTRAINT "secrets_created_by_users_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "team_members" ADD CONSTRAINT "team_members_team_id_teams_id_fk" FOREIGN KEY ("team_id") REFERENCES "public"."teams"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "team_members" ADD CONSTRAINT "team_members_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "workflow_runs" ADD CONSTRAINT "workflow_runs_environment_id_environments_id_fk" FOREIGN KEY ("environment_id") REFERENCES "public"."environments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "agent_connections_token_hash_key" ON "agent_connections" USING btree ("token_hash");--> statement-breakpoint
CREATE INDEX "agent_connections_environment_idx" ON "agent_connections" USING btree ("environment_id");--> statement-breakpoint
CREATE INDEX "agent_connections_build_job_idx" ON "agent_connections" USING btree ("build_job_id");--> statement-breakpoint
CREATE INDEX "audit_logs_team_time_idx" ON "audit_logs" USING btree ("team_id","timestamp" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "audit_logs_resource_idx" ON "audit_logs" USING btree ("resource_type","resource_id");--> statement-breakpoint
CREATE UNIQUE INDEX "build_jobs_run_name_key" ON "build_jobs" USING btree ("workflow_run_id","name");--> statement-breakpoint
CREATE INDEX "build_jobs_active_idx" ON "build_jobs" USING btree ("status") WHERE status IN ('queued', 'provisioning', 'running');--> statement-breakpoint
CREATE UNIQUE INDEX "build_logs_job_seq_key" ON "build_logs" USING btree ("build_job_id","seq");--> statement-breakpoint
CREATE UNIQUE INDEX "cloud_providers_team_name_key" ON "cloud_providers" USING btree ("team_id","name");--> statement-breakpoint
CREATE UNIQUE INDEX "environments_subdomain_hash_key" ON "environments" USING btree ("subdomain_hash");--> statement-breakpoint
CREATE UNIQUE INDEX "environments_one_live_per_pr" ON "environments" USING btree ("project_id","pr_number") WHERE status NOT IN ('terminated', 'reaped');--> statement-breakpoint
CREATE INDEX "environments_project_created_idx" ON "environments" USING btree ("project_id","created_at");--> statement-breakpoint
CREATE INDEX "environments_live_heartbeat_idx" ON "environments" USING btree ("last_heartbeat_at") WHERE status NOT IN ('terminated', 'reaped');--> statement-breakpoint
CREATE INDEX "environments_cloud_provider_idx" ON "environments" USING btree ("cloud_provider_id");--> statement-breakpoint
CREATE UNIQUE INDEX "projects_team_slug_key" ON "projects" USING btree ("team_id","slug");--> statement-breakpoint
CREATE INDEX "projects_repo_url_idx" ON "projects" USING btree ("repo_url");--> statement-breakpoint
CREATE INDEX "projects_cloud_provider_idx" ON "projects" USING btree ("cloud_provider_id");--> statement-breakpoint
CREATE UNIQUE INDEX "secrets_project_key_scope_key" ON "secrets" USING btree ("project_id","key","scope");--> statement-breakpoint
CREATE INDEX "team_members_user_idx" ON "team_members" USING btree ("user_id");--> statement-breakpoint
CREATE UNIQUE INDEX "teams_slug_key" ON "teams" USING btree ("slug") WHERE deleted_at IS NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "users_email_key" ON "users" USING btree (lower("email"));--> statement-breakpoint
CREATE UNIQUE INDEX "users_github_id_key" ON "users" USING btree ("github_id");--> statement-breakpoint
CREATE UNIQUE INDEX "users_google_id_key" ON "users" USING btree ("google_id");--> statement-breakpoint
CREATE INDEX "workflow_runs_environment_created_idx" ON "workflow_runs" USING btree ("environment_id","created_at");--> statement-breakpoint
CREATE INDEX "workflow_runs_active_idx" ON "workflow_runs" USING btree ("status") WHERE status IN ('pending', 'building', 'deploying', 'testing');