ALTER TABLE "agent_connections" ADD COLUMN "revoked_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "agent_connections_unrevoked_idx" ON "agent_connections" USING btree ("created_at") WHERE revoked_at IS NULL;--> statement-breakpoint
CREATE INDEX "audit_logs_time_idx" ON "audit_logs" USING btree ("timestamp");--> statement-breakpoint
CREATE INDEX "build_jobs_completed_idx" ON "build_jobs" USING btree ("completed_at");--> statement-breakpoint
CREATE INDEX "webhook_deliveries_received_idx" ON "webhook_deliveries" USING btree ("received_at");