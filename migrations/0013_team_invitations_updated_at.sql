CREATE TRIGGER team_invitations_set_updated_at BEFORE UPDATE ON "team_invitations" FOR EACH ROW EXECUTE FUNCTION stagely_set_updated_at();
