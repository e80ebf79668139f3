import { eq } from "drizzle-orm";
import { dbOf } from "../../app-env.ts";
import { users } from "../../db/schema.ts";
import { defineRoute } from "../../lib/route.ts";
import { meSchema, toApiUser } from "../model.ts";

export const getMe = defineRoute({
  method: "get",
  path: "/v1/me",
  summary: "The signed-in user and their teams with roles",
  tag: "auth",
  access: { kind: "user" },
  response: meSchema,
  async handler(c) {
    const auth = c.get("auth");
    const [user] = await dbOf(c).select().from(users).where(eq(users.id, auth.user.id));
    return c.json({
      user: toApiUser(user!),
      teams: auth.memberships.map((m) => ({ id: m.teamId, slug: m.slug, role: m.role })),
    });
  },
});
