CREATE TRIGGER api_tokens_set_updated_at BEFORE UPDATE ON "api_tokens" FOR EACH ROW EXECUTE FUNCTION stagely_set_updated_at();
