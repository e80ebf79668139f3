-- Keeps preview_share_tokens.updated_at current (the function is from 0001_updated_at_triggers.sql).
CREATE TRIGGER preview_share_tokens_set_updated_at BEFORE UPDATE ON "preview_share_tokens" FOR EACH ROW EXECUTE FUNCTION stagely_set_updated_at();
