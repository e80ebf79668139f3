import { configOf, dbOf } from "../../app-env.ts";
import { defineRoute } from "../../lib/route.ts";
import { environmentParams, environmentSchema, toApiEnvironment } from "../model.ts";
import { environmentInTeam } from "../scoped.ts";

export const getEnvironment = defineRoute({
  method: "get",
  path: "/v1/environments/:id",
  summary: "Get a preview environment: status, URL, VM",
  tag: "environments",
  access: { kind: "team", minRole: "viewer", resource: "environment" },
  params: environmentParams,
  response: environmentSchema,
  async handler(c, { params }) {
    const { environment, prTitle, failure } = await environmentInTeam(dbOf(c), c.get("auth"), params.id, "viewer");
    return c.json(toApiEnvironment(environment, prTitle, configOf(c), failure));
  },
});
