CREATE TRIGGER pull_requests_set_updated_at BEFORE UPDATE ON "pull_requests" FOR EACH ROW EXECUTE FUNCTION stagely_set_updated_at();
