CREATE TABLE "github_installation_repositories" (
	"installation_id" bigint NOT NULL,
	"repository_id" bigint NOT NULL,
	"full_name" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "github_installation_repositories_pkey" PRIMARY KEY("installation_id","repository_id"),
	CONSTRAINT "github_installation_repositories_full_name_lowercase" CHECK ("github_installation_repositories"."full_name" = lower("github_installation_repositories"."full_name"))
);
--> statement-breakpoint
CREATE TABLE "github_installations" (
	"id" bigint PRIMARY KEY NOT NULL,
	"team_id" text,
	"account_login" text NOT NULL,
	"account_type" text NOT NULL,
	"repository_selection" text NOT NULL,
	"permissions" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"suspended_at" timestamp with time zone,
	"claimed_by" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "github_installations_account_type_valid" CHECK (account_type IN ('User', 'Organization', 'Enterprise')),
	CONSTRAINT "github_installations_repository_selection_valid" CHECK (repository_selection IN ('all', 'selected'))
);
--> statement-breakpoint
ALTER TABLE "github_installation_repositories" ADD CONSTRAINT "github_installation_repositories_installation_id_github_installations_id_fk" FOREIGN KEY ("installation_id") REFERENCES "public"."github_installations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "github_installations" ADD CONSTRAINT "github_installations_team_id_teams_id_fk" FOREIGN KEY ("team_id") REFERENCES "public"."teams"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "github_installations" ADD CONSTRAINT "github_installations_claimed_by_users_id_fk" FOREIGN KEY ("claimed_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "github_installation_repositories_full_name_idx" ON "github_installation_repositories" USING btree ("full_name");--> statement-breakpoint
CREATE INDEX "github_installations_team_idx" ON "github_installations" USING btree ("team_id");