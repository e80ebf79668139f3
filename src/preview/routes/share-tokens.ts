import { and, eq, inArray, isNull, sql } from "drizzle-orm";
import * as z from "zod";
import { configOf, dbOf } from "../../app-env.ts";
import { auditInsertWhere } from "../../audit/record.ts";
import { teamIdsWithRole } from "../../auth/roles.ts";
import { generateToken } from "../../auth/tokens.ts";
import { environments, liveEnvironmentStatuses, previewShareTokens, projects } from "../../db/schema.ts";
import { environmentParams } from "../../environments/model.ts";
import { explainMiss } from "../../lib/access.ts";
import { ApiError } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";
import { keyset, pageQuery, pageSchema } from "../../lib/pagination.ts";
import { defineRoute } from "../../lib/route.ts";
import { previewUrl } from "../../pipeline/records.ts";
import { SHARE_PARAM } from "../credentials.ts";
import { createdShareTokenSchema, shareTokenParams, shareTokenSchema, toApiShareToken } from "../model.ts";
import { pushSnapshots, snapshotSelect, toSnapshot, type SnapshotRow } from "../snapshot.ts";

const environmentTeam = (id: string) => sql`SELECT p.team_id FROM ${environments} e JOIN ${projects} p ON p.id = e.project_id WHERE e.id = ${id}`;

export const createShareToken = defineRoute({
  method: "post",
  path: "/v1/environments/:id/share-tokens",
  summary: "Create a share token: it opens this one preview (even a team-only one) until it expires or is revoked",
  tag: "previews",
  access: { kind: "team", minRole: "member", resource: "environment" },
  params: environmentParams,
  body: z
    .object({
      name: z.string().trim().min(1).max(100).describe('who or what it is for, e.g. "QA review"'),
      expires_in_hours: z.number().int().min(1).max(720).default(72),
    })
    .strict(),
  example: { name: "QA review", expires_in_hours: 48 },
  response: createdShareTokenSchema,
  status: 201,
  async handler(c, { params, body }) {
    const auth = c.get("auth");
    const db = dbOf(c);
    const token = await generateToken("share");
    const id = newId("shareToken");
    const expiresAt = new Date(Date.now() + body.expires_in_hours * 3_600_000);
    const live = and(
      eq(environments.id, params.id),
      inArray(environments.status, liveEnvironmentStatuses),
      sql`${environments.projectId} IN (SELECT id FROM ${projects} WHERE ${inArray(projects.teamId, teamIdsWithRole(auth, "member"))})`,
    );
    // One batch: the audit row, the token, and the preview host's new state (read after the insert).
    const [, , [created], snapshots] = await db.batch([
      auditInsertWhere(
        db,
        auth,
        { action: "share_token.created", resourceType: "share_token", resourceId: id, metadata: { environment_id: params.id, name: body.name, expires_at: expiresAt.toISOString() } },
        { from: sql`FROM ${environments} WHERE ${live}`, teamId: sql`(SELECT team_id FROM ${projects} WHERE id = ${environments.projectId})`, projectId: sql`${environments.projectId}` },
      ),
      db.execute(sql`
        INSERT INTO ${previewShareTokens} (id, environment_id, name, token_hash, token_hint, created_by, expires_at)
        SELECT ${id}, ${environments.id}, ${body.name}, ${token.hash}, ${token.hint}, ${auth.user.id}, ${expiresAt.toISOString()}
          FROM ${environments} WHERE ${live}`),
      db.select().from(previewShareTokens).where(eq(previewShareTokens.id, id)),
      db.execute<SnapshotRow>(snapshotSelect(sql`e.id = ${params.id}`)),
    ]);
    if (!created) throw await explainMiss(db, auth, { what: "live environment", id: params.id, teamOf: environmentTeam(params.id), minRole: "member" });
    const snapshot = toSnapshot(snapshots.rows[0]!);
    await pushSnapshots(c.env, [snapshot]);
    c.header("Cache-Control", "no-store");
    const url = `${previewUrl(snapshot.subdomain_hash, configOf(c))}/?${SHARE_PARAM}=${token.token}`;
    return c.json({ ...toApiShareToken(created), token: token.token, url }, 201);
  },
});

export const listShareTokens = defineRoute({
  method: "get",
  path: "/v1/environments/:id/share-tokens",
  summary: "List an environment's share tokens (hints only), newest first",
  tag: "previews",
  access: { kind: "team", minRole: "viewer", resource: "environment" },
  params: environmentParams,
  query: pageQuery,
  response: pageSchema(shareTokenSchema),
  async handler(c, { params, query }) {
    const page = keyset(previewShareTokens.createdAt, previewShareTokens.id, query);
    // One round trip answers both "is the environment yours?" (any row at all) and "its tokens" (the joined ones).
    const rows = await dbOf(c)
      .select({ token: previewShareTokens })
      .from(environments)
      .innerJoin(projects, eq(projects.id, environments.projectId))
      .leftJoin(previewShareTokens, and(eq(previewShareTokens.environmentId, environments.id), page.where))
      .where(and(eq(environments.id, params.id), inArray(projects.teamId, teamIdsWithRole(c.get("auth"), "viewer"))))
      .orderBy(...page.orderBy)
      .limit(page.fetch);
    if (rows.length === 0) throw new ApiError("NOT_FOUND", `environment ${params.id} not found`);
    const found = rows.flatMap((r) => (r.token ? [r.token] : []));
    return c.json(page.page(found, (r) => ({ at: r.createdAt, id: r.id }), toApiShareToken));
  },
});

export const revokeShareToken = defineRoute({
  method: "delete",
  path: "/v1/share-tokens/:id",
  summary: "Revoke a share token: it stops working at once, and so do the cookies it gave out",
  tag: "previews",
  access: { kind: "team", minRole: "member", resource: "share_token" },
  params: shareTokenParams,
  status: 204,
  async handler(c, { params }) {
    const auth = c.get("auth");
    const db = dbOf(c);
    const ownedEnvironments = sql`SELECT e.id FROM ${environments} e JOIN ${projects} p ON p.id = e.project_id WHERE ${inArray(sql`p.team_id`, teamIdsWithRole(auth, "member"))}`;
    const revocable = and(eq(previewShareTokens.id, params.id), isNull(previewShareTokens.revokedAt), sql`${previewShareTokens.environmentId} IN (${ownedEnvironments})`);
    const [, revoked, snapshots] = await db.batch([
      auditInsertWhere(
        db,
        auth,
        { action: "share_token.revoked", resourceType: "share_token", resourceId: params.id },
        {
          from: sql`FROM ${previewShareTokens} WHERE ${revocable}`,
          teamId: sql`(SELECT p.team_id FROM ${environments} e JOIN ${projects} p ON p.id = e.project_id WHERE e.id = ${previewShareTokens.environmentId})`,
          projectId: sql`(SELECT project_id FROM ${environments} WHERE id = ${previewShareTokens.environmentId})`,
        },
      ),
      db.update(previewShareTokens).set({ revokedAt: new Date() }).where(revocable).returning({ environmentId: previewShareTokens.environmentId }),
      db.execute<SnapshotRow>(snapshotSelect(sql`e.id = (SELECT environment_id FROM ${previewShareTokens} WHERE id = ${params.id})`)),
    ]);
    if (revoked.length === 0) {
      throw await explainMiss(db, auth, {
        what: "share token",
        id: params.id,
        teamOf: sql`SELECT p.team_id FROM ${previewShareTokens} s JOIN ${environments} e ON e.id = s.environment_id JOIN ${projects} p ON p.id = e.project_id WHERE s.id = ${params.id}`,
        minRole: "member",
        conflict: { when: sql`EXISTS (SELECT 1 FROM ${previewShareTokens} WHERE id = ${params.id} AND revoked_at IS NOT NULL)`, message: `share token ${params.id} is already revoked` },
      });
    }
    await pushSnapshots(c.env, snapshots.rows.map(toSnapshot));
    return c.body(null, 204);
  },
});
