ALTER TABLE "pull_requests" ADD COLUMN "title" text;--> statement-breakpoint
ALTER TABLE "pull_requests" ADD COLUMN "title_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "workflow_runs" ADD COLUMN "deploy_services" jsonb;