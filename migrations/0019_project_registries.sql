CREATE TABLE "project_registries" (
	"project_id" text PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"address" text,
	"username" text,
	"encrypted_password" text,
	"region" text,
	"registry_name" text,
	"updated_by" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "project_registries_kind_valid" CHECK (kind IN ('generic', 'ecr', 'digitalocean')),
	CONSTRAINT "project_registries_fields" CHECK (CASE kind WHEN 'generic' THEN address IS NOT NULL AND username IS NOT NULL AND encrypted_password IS NOT NULL
                    WHEN 'digitalocean' THEN registry_name IS NOT NULL ELSE true END)
);
--> statement-breakpoint
ALTER TABLE "project_registries" ADD CONSTRAINT "project_registries_project_id_projects_id_fk" FOREIGN KEY ("project_id") REFERENCES "public"."projects"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "project_registries" ADD CONSTRAINT "project_registries_updated_by_users_id_fk" FOREIGN KEY ("updated_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
-- Keeps project_registries.updated_at current (the function is from 0001_updated_at_triggers.sql).
CREATE TRIGGER project_registries_set_updated_at BEFORE UPDATE ON "project_registries" FOR EACH ROW EXECUTE FUNCTION stagely_set_updated_at();
