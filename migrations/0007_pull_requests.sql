CREATE TABLE "pull_requests" (
	"project_id" text NOT NULL,
	"pr_number" integer NOT NULL,
	"state" text NOT NULL,
	"head_sha" text NOT NULL,
	"head_ref" text NOT NULL,
	"is_fork" boolean DEFAULT false NOT NULL,
	"last_event_at" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "pull_requests_pkey" PRIMARY KEY("project_id","pr_number"),
	CONSTRAINT "pull_requests_state_valid" CHECK ("pull_requests"."state" IN ('open', 'closed'))
);
--> statement-breakpoint
ALTER TABLE "pull_requests" ADD CONSTRAINT "pull_requests_project_id_projects_id_fk" FOREIGN KEY ("project_id") REFERENCES "public"."projects"("id") ON DELETE cascade ON UPDATE no action;