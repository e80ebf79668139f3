CREATE TRIGGER github_installations_set_updated_at BEFORE UPDATE ON "github_installations" FOR EACH ROW EXECUTE FUNCTION stagely_set_updated_at();
--> statement-breakpoint
CREATE TRIGGER github_installation_repositories_set_updated_at BEFORE UPDATE ON "github_installation_repositories" FOR EACH ROW EXECUTE FUNCTION stagely_set_updated_at();
