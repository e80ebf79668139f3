import type { Hono, MiddlewareHandler } from "hono";
import * as z from "zod";
import type { AppContext, AppEnv } from "../app-env.ts";
import { requireTeamRole, type Role } from "../auth/roles.ts";
import { requireAuth, type Membership } from "../auth/middleware.ts";
import { limitMutations, limitPerIp, type RateLimiterName } from "../auth/rate-limit.ts";
import { validate } from "./validation.ts";

/**
 * Who may call a route. Used to mount the right middleware, to document the route, and by the security matrix
 * test (test/security-matrix.test.ts), which checks every registered route against its declaration.
 * - public: no token. `perIpLimit` names the rate limiter that counts its requests per client IP; null only for a
 *   route that must not be limited that way (say why where it is declared).
 * - user: any signed-in user; the route only touches the caller's own things.
 * Routes with a token are limited per user on mutations (limitMutations).
 * - team: a member of the team that owns the resource, with at least `minRole`. `resource` names how the
 *   route finds that team: the `:team` path parameter, or the `:id` of a project, cloud provider or secret.
 *   For `resource: "team"` mountRoutes checks the role itself and hands the handler the caller's membership.
 */
export type Access =
  | { kind: "public"; perIpLimit: RateLimiterName | null }
  | { kind: "user" }
  | { kind: "team"; minRole: Role; resource: "team" | "project" | "cloud_provider" | "secret" | "environment" | "run" | "job" | "share_token" };

/** A team route found by its `:team` path parameter (team id or slug). */
type TeamPathAccess = { kind: "team"; minRole: Role; resource: "team" };

/** What a handler receives: the validated request, and for a TeamPathAccess route the caller's membership of `:team`. */
type RouteInput<Params extends AnyObject, Query extends AnyObject, Body extends z.ZodType, A extends Access> = {
  params: z.output<Params>;
  query: z.output<Query>;
  body: z.output<Body>;
} & ([A] extends [TeamPathAccess] ? { team: Membership } : unknown);

type Method = "get" | "post" | "put" | "patch" | "delete";
type AnyObject = z.ZodObject<z.ZodRawShape>;

export interface RouteDefinition<
  Params extends AnyObject = AnyObject,
  Query extends AnyObject = AnyObject,
  Body extends z.ZodType = z.ZodType,
  A extends Access = Access,
> {
  method: Method;
  /** Hono path syntax: /v1/projects/:id */
  path: string;
  summary: string;
  tag: string;
  access: A;
  params?: Params;
  query?: Query;
  body?: Body;
  /** Shape of a successful response body (omitted for 204 and redirects). */
  response?: z.ZodType;
  status?: 200 | 201 | 202 | 204 | 302 | 501;
  /** A valid request body, shown in the docs and used by the security matrix test. */
  example?: z.input<Body>;
  handler: (c: AppContext, input: RouteInput<Params, Query, Body, A>) => Response | Promise<Response>;
}

const registry: RouteDefinition[] = [];

/** Declares a route: its schemas validate the request and document it in /openapi.json (no second copy). */
export function defineRoute<Params extends AnyObject, Query extends AnyObject, Body extends z.ZodType, A extends Access>(
  definition: RouteDefinition<Params, Query, Body, A>,
): RouteDefinition<Params, Query, Body, A> {
  registry.push(definition as unknown as RouteDefinition);
  return definition;
}

/** Every route defined so far (all route modules are imported by app.ts). */
export function registeredRoutes(): readonly RouteDefinition[] {
  return registry;
}

export function mountRoutes(app: Hono<AppEnv>, definitions: RouteDefinition[]): void {
  for (const definition of definitions) {
    const chain: MiddlewareHandler<AppEnv>[] = [];
    if (definition.access.kind === "public") {
      if (definition.access.perIpLimit) chain.push(limitPerIp(definition.access.perIpLimit));
    } else {
      chain.push(requireAuth);
      if (definition.method !== "get") chain.push(limitMutations);
    }
    if (definition.params) chain.push(validate("param", definition.params) as unknown as MiddlewareHandler<AppEnv>);
    if (definition.query) chain.push(validate("query", definition.query) as unknown as MiddlewareHandler<AppEnv>);
    if (definition.body) chain.push(validate("json", definition.body) as unknown as MiddlewareHandler<AppEnv>);
    const { access } = definition;
    const teamPathRole = access.kind === "team" && access.resource === "team" ? access.minRole : null;
    if (teamPathRole && !definition.params?.shape.team) {
      throw new Error(`${definition.method.toUpperCase()} ${definition.path} declares resource "team" but has no :team parameter`);
    }
    const handle: MiddlewareHandler<AppEnv> = async (c) => {
      const params: Record<string, unknown> = definition.params ? c.req.valid("param" as never) : {};
      const input = {
        params,
        query: definition.query ? c.req.valid("query" as never) : {},
        body: definition.body ? c.req.valid("json" as never) : undefined,
      };
      if (!teamPathRole) return definition.handler(c, input as never);
      const team = requireTeamRole(c.get("auth"), String(params.team), teamPathRole);
      return definition.handler(c, { ...input, team } as never);
    };
    app.on(definition.method.toUpperCase(), [definition.path], ...chain, handle);
  }
}

const errorSchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    request_id: z.string(),
    issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  }),
});

function jsonSchema(schema: z.ZodType, io: "input" | "output") {
  return z.toJSONSchema(schema, { io, unrepresentable: "any", target: "openapi-3.0" });
}

function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z_]+)/g, "{$1}");
}

function describeAccess(access: Access): string {
  if (access.kind === "public") return `No authentication.${access.perIpLimit ? " Rate-limited per client IP." : ""}`;
  if (access.kind === "user") return "Any signed-in user.";
  return `Role ${access.minRole} or higher in the team that owns the ${access.resource.replace("_", " ")}.`;
}

/** The OpenAPI 3.0 document, generated from the same zod schemas that validate requests. */
export function openApiDocument(serverUrl: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of registry) {
    const parameters = [
      ...Object.entries(route.params?.shape ?? {}).map(([name, schema]) => ({
        name,
        in: "path",
        required: true,
        schema: jsonSchema(schema as z.ZodType, "input"),
      })),
      ...Object.entries(route.query?.shape ?? {}).map(([name, schema]) => ({
        name,
        in: "query",
        required: !(schema as z.ZodType).safeParse(undefined).success,
        schema: jsonSchema(schema as z.ZodType, "input"),
      })),
    ];
    const status = String(route.status ?? 200);
    const responses: Record<string, unknown> = {
      [status]: route.response
        ? { description: "Success", content: { "application/json": { schema: jsonSchema(route.response, "output") } } }
        : { description: status === "302" ? "Redirect" : "Success" },
      default: { description: "Error", content: { "application/json": { schema: jsonSchema(errorSchema, "output") } } },
    };
    (paths[openApiPath(route.path)] ??= {})[route.method] = {
      summary: route.summary,
      description: describeAccess(route.access),
      tags: [route.tag],
      ...(route.access.kind === "public" ? { security: [] } : {}),
      ...(parameters.length ? { parameters } : {}),
      ...(route.body
        ? {
            requestBody: {
              required: true,
              content: {
                "application/json": {
                  schema: jsonSchema(route.body, "input"),
                  ...(route.example !== undefined ? { example: route.example } : {}),
                },
              },
            },
          }
        : {}),
      responses,
    };
  }
  return {
    openapi: "3.0.3",
    info: {
      title: "Stagely API",
      version: "1",
      description: "Preview environments for every pull request, on your own cloud. Errors share one shape; lists are cursor-paginated.",
    },
    servers: [{ url: serverUrl }],
    components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
    security: [{ bearer: [] }],
    paths,
  };
}
