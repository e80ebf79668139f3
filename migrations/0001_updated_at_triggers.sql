-- Keeps updated_at current on every mutable table (the list is tablesWithUpdatedAt in src/db/schema.ts).
CREATE FUNCTION stagely_set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER teams_set_updated_at BEFORE UPDATE ON "teams" FOR EACH ROW EXECUTE FUNCTION stagely_set_updated_at();
--> statement-breakpoint
CREATE TRIGGER users_set_updated_at BEFORE UPDATE ON "users" FOR EACH ROW EXECUTE FUNCTION stagely_set_updated_at();
--> statement-breakpoint
CREATE TRIGGER team_members_set_updated_at BEFORE UPDATE ON "team_members" FOR EACH ROW EXECUTE FUNCTION stagely_set_updated_at();
--> statement-breakpoint
CREATE TRIGGER cloud_providers_set_updated_at BEFORE UPDATE ON "cloud_providers" FOR EACH ROW EXECUTE FUNCTION stagely_set_updated_at();
--> statement-breakpoint
CREATE TRIGGER projects_set_updated_at BEFORE UPDATE ON "projects" FOR EACH ROW EXECUTE FUNCTION stagely_set_updated_at();
--> statement-breakpoint
CREATE TRIGGER environments_set_updated_at BEFORE UPDATE ON "environments" FOR EACH ROW EXECUTE FUNCTION stagely_set_updated_at();
--> statement-breakpoint
CREATE TRIGGER workflow_runs_set_updated_at BEFORE UPDATE ON "workflow_runs" FOR EACH ROW EXECUTE FUNCTION stagely_set_updated_at();
--> statement-breakpoint
CREATE TRIGGER build_jobs_set_updated_at BEFORE UPDATE ON "build_jobs" FOR EACH ROW EXECUTE FUNCTION stagely_set_updated_at();
--> statement-breakpoint
CREATE TRIGGER secrets_set_updated_at BEFORE UPDATE ON "secrets" FOR EACH ROW EXECUTE FUNCTION stagely_set_updated_at();
--> statement-breakpoint
CREATE TRIGGER agent_connections_set_updated_at BEFORE UPDATE ON "agent_connections" FOR EACH ROW EXECUTE FUNCTION stagely_set_updated_at();
