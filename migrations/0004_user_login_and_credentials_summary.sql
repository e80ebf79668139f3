ALTER TABLE "cloud_providers" ADD COLUMN "credentials_summary" jsonb DEFAULT '{"fields":[],"hint":null}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "github_login" text;--> statement-breakpoint
CREATE INDEX "users_github_login_idx" ON "users" USING btree (lower("github_login"));