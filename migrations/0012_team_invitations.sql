CREATE TABLE "team_invitations" (
	"id" text PRIMARY KEY NOT NULL,
	"team_id" text NOT NULL,
	"email" text,
	"github_login" text,
	"role" text NOT NULL,
	"invited_by" text,
	"expires_at" timestamp with time zone NOT NULL,
	"accepted_at" timestamp with time zone,
	"accepted_by" text,
	"declined_at" timestamp with time zone,
	"revoked_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "team_invitations_one_invitee" CHECK (("team_invitations"."email" IS NULL) <> ("team_invitations"."github_login" IS NULL)),
	CONSTRAINT "team_invitations_role_valid" CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
	CONSTRAINT "team_invitations_answered_once" CHECK (num_nonnulls("team_invitations"."accepted_at", "team_invitations"."declined_at", "team_invitations"."revoked_at") <= 1)
);
--> statement-breakpoint
ALTER TABLE "team_invitations" ADD CONSTRAINT "team_invitations_team_id_teams_id_fk" FOREIGN KEY ("team_id") REFERENCES "public"."teams"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "team_invitations" ADD CONSTRAINT "team_invitations_invited_by_users_id_fk" FOREIGN KEY ("invited_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "team_invitations" ADD CONSTRAINT "team_invitations_accepted_by_users_id_fk" FOREIGN KEY ("accepted_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "team_invitations_open_email_key" ON "team_invitations" USING btree ("team_id",lower("email")) WHERE email IS NOT NULL AND accepted_at IS NULL AND declined_at IS NULL AND revoked_at IS NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "team_invitations_open_github_login_key" ON "team_invitations" USING btree ("team_id",lower("github_login")) WHERE github_login IS NOT NULL AND accepted_at IS NULL AND declined_at IS NULL AND revoked_at IS NULL;--> statement-breakpoint
CREATE INDEX "team_invitations_open_email_idx" ON "team_invitations" USING btree (lower("email")) WHERE email IS NOT NULL AND accepted_at IS NULL AND declined_at IS NULL AND revoked_at IS NULL;--> statement-breakpoint
CREATE INDEX "team_invitations_open_github_login_idx" ON "team_invitations" USING btree (lower("github_login")) WHERE github_login IS NOT NULL AND accepted_at IS NULL AND declined_at IS NULL AND revoked_at IS NULL;--> statement-breakpoint
CREATE INDEX "team_invitations_team_created_idx" ON "team_invitations" USING btree ("team_id","created_at");