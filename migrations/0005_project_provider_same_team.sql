-- A project may only use a cloud provider of its own team. Deleting the provider clears only cloud_provider_id
-- (PostgreSQL 15+ column list), never the project's team.
CREATE UNIQUE INDEX cloud_providers_id_team_key ON cloud_providers (id, team_id);
--> statement-breakpoint
ALTER TABLE projects ADD CONSTRAINT projects_cloud_provider_same_team
  FOREIGN KEY (cloud_provider_id, team_id) REFERENCES cloud_providers (id, team_id) ON DELETE SET NULL (cloud_provider_id);
