ALTER TABLE "build_jobs" ADD COLUMN "timeout_seconds" integer DEFAULT 1800 NOT NULL;--> statement-breakpoint
ALTER TABLE "environments" ADD COLUMN "is_fork" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "environments" ADD COLUMN "github_deployment_id" bigint;--> statement-breakpoint
ALTER TABLE "environments" ADD COLUMN "github_comment_id" bigint;--> statement-breakpoint
ALTER TABLE "projects" ADD COLUMN "github_installation_id" bigint;--> statement-breakpoint
ALTER TABLE "workflow_runs" ADD COLUMN "dedupe_key" text;--> statement-breakpoint
CREATE UNIQUE INDEX "workflow_runs_dedupe_key" ON "workflow_runs" USING btree ("dedupe_key");