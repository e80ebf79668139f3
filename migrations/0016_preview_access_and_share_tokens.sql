CREATE TABLE "preview_share_tokens" (
	"id" text PRIMARY KEY NOT NULL,
	"environment_id" text NOT NULL,
	"name" text NOT NULL,
	"token_hash" text NOT NULL,
	"token_hint" text NOT NULL,
	"created_by" text,
	"expires_at" timestamp with time zone NOT NULL,
	"revoked_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "preview_share_tokens_token_hash_format" CHECK ("preview_share_tokens"."token_hash" ~ '^[0-9a-f]{64}$')
);
--> statement-breakpoint
ALTER TABLE "environments" ADD COLUMN "last_request_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "projects" ADD COLUMN "preview_access" text DEFAULT 'team' NOT NULL;--> statement-breakpoint
ALTER TABLE "preview_share_tokens" ADD CONSTRAINT "preview_share_tokens_environment_id_environments_id_fk" FOREIGN KEY ("environment_id") REFERENCES "public"."environments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "preview_share_tokens" ADD CONSTRAINT "preview_share_tokens_created_by_users_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "preview_share_tokens_token_hash_key" ON "preview_share_tokens" USING btree ("token_hash");--> statement-breakpoint
CREATE INDEX "preview_share_tokens_environment_idx" ON "preview_share_tokens" USING btree ("environment_id","created_at");--> statement-breakpoint
ALTER TABLE "projects" ADD CONSTRAINT "projects_preview_access_valid" CHECK (preview_access IN ('team', 'public'));