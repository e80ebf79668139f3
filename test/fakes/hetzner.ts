import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { commonAdmin, headersOf, jsonReply, parseJson, serve, writeReply, type CloudAccount, type Reply } from "./cloud-accounts.ts";
import { listen, readBody } from "../../scripts/local-github/http.ts";
import type { FakeService } from "./index.ts";

/**
 * Hetzner Cloud's v1 API for servers: bearer tokens (read-only or read & write), JSON bodies checked like the real
 * API (required fields, hostname names unique per project, label syntax, known server types, images and locations,
 * Arm types only in the EU), answers in Hetzner's shapes (`{server, action, next_actions, root_password}`,
 * `{servers, meta: {pagination}}`, errors `{error: {code, message, details}}`).
 *
 * Admin (besides test/fakes/cloud-accounts.ts):
 *   POST /_fake/accounts {server_limit?, page_size?, boot_ms?, read_only?} → {token}
 *   GET  /_fake/accounts/<token>/servers  every server ever created, deleted ones included, with user data
 *   POST /_fake/accounts/<token>/servers {labels}  a server made outside Stagely → {id}
 */

const SERVER_TYPES: Record<string, "x86" | "arm"> = {
  cx23: "x86", cx33: "x86", cx43: "x86", cx53: "x86", cpx11: "x86", cpx21: "x86",
  cax11: "arm", cax21: "arm", cax31: "arm", cax41: "arm",
};
const IMAGES = new Set(["ubuntu-24.04", "ubuntu-22.04", "debian-12"]);
const LOCATIONS: Record<string, { city: string; zone: string }> = {
  fsn1: { city: "Falkenstein", zone: "eu-central" },
  nbg1: { city: "Nuremberg", zone: "eu-central" },
  hel1: { city: "Helsinki", zone: "eu-central" },
  ash: { city: "Ashburn, VA", zone: "us-east" },
  hil: { city: "Hillsboro, OR", zone: "us-west" },
  sin: { city: "Singapore", zone: "ap-southeast" },
};
const MAX_USER_DATA_BYTES = 32 * 1024;
const labelKey = /^([a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\/)?[a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?$/;
const labelValue = /^([a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?)?$/;

interface Server {
  id: number;
  name: string;
  serverType: string;
  image: string;
  location: string;
  labels: Record<string, string>;
  userData: string;
  created: string;
  changedAt: number;
  deleted: boolean;
}

interface HetznerAccount extends CloudAccount {
  token: string;
  servers: Map<number, Server>;
  serverLimit: number;
  pageSize: number;
  bootMs: number;
  readOnly: boolean;
}

let nextServerId = 42000000;
let nextActionId = 13000000;

const error = (status: number, code: string, message: string, details: unknown = {}, headers: Record<string, string> = {}) =>
  jsonReply(status, { error: { code, message, details } }, headers);
const invalidInput = (field: string, message: string) => error(400, "invalid_input", `invalid input in field '${field}'`, { fields: [{ name: field, messages: [message] }] });

function action(command: string, serverId: number) {
  return {
    id: nextActionId++,
    command,
    status: "running",
    progress: 0,
    started: new Date().toISOString(),
    finished: null,
    resources: [{ id: serverId, type: "server" }],
    error: null,
  };
}

function serverJson(s: Server, bootMs: number) {
  const running = Date.now() - s.changedAt >= bootMs;
  const location = LOCATIONS[s.location]!;
  const architecture = SERVER_TYPES[s.serverType]!;
  const octet = 1 + (s.id % 254);
  return {
    id: s.id,
    name: s.name,
    status: running ? "running" : "initializing",
    created: s.created,
    public_net: {
      ipv4: { id: s.id + 1, ip: `203.0.113.${octet}`, blocked: false, dns_ptr: `static.${octet}.113.0.203.clients.your-server.de` },
      ipv6: { id: s.id + 2, ip: "2001:db8::/64", blocked: false, dns_ptr: [] },
      floating_ips: [],
      firewalls: [],
    },
    private_net: [],
    server_type: { id: 100, name: s.serverType, description: s.serverType.toUpperCase(), cores: 2, memory: 4, disk: 40, deprecated: false, storage_type: "local", cpu_type: "shared", architecture },
    datacenter: {
      id: 4,
      name: `${s.location}-dc14`,
      description: `${location.city} DC Park 1`,
      location: { id: 1, name: s.location, description: location.city, country: "DE", city: location.city, latitude: 50.47612, longitude: 12.370071, network_zone: location.zone },
    },
    image: { id: 161547269, type: "system", status: "available", name: s.image, description: s.image, os_flavor: "ubuntu", os_version: s.image.split("-")[1] ?? null, architecture },
    iso: null,
    rescue_enabled: false,
    locked: false,
    backup_window: null,
    outgoing_traffic: 0,
    ingoing_traffic: 0,
    included_traffic: 21990232555520,
    protection: { delete: false, rebuild: false },
    labels: s.labels,
    volumes: [],
    load_balancers: [],
    primary_disk_size: 40,
    placement_group: null,
  };
}

function createServer(account: HetznerAccount, body: unknown): Reply {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return error(400, "json_error", "the request body must be a JSON object");
  const b = body as Record<string, unknown>;
  if (typeof b.name !== "string" || !b.name) return invalidInput("name", "Missing data for required field.");
  if (!/^(?=.{1,63}$)[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/.test(b.name)) return invalidInput("name", "Name must be a valid hostname.");
  if (typeof b.server_type !== "string" || !b.server_type) return invalidInput("server_type", "Missing data for required field.");
  if (!(b.server_type in SERVER_TYPES)) return invalidInput("server_type", `server type ${b.server_type} not found`);
  if (typeof b.image !== "string" || !b.image) return invalidInput("image", "Missing data for required field.");
  if (!IMAGES.has(b.image)) return invalidInput("image", `image ${b.image} not found`);
  const location = (b.location ?? "fsn1") as string;
  if (typeof location !== "string" || !(location in LOCATIONS)) return invalidInput("location", `location ${String(location)} not found`);
  if (SERVER_TYPES[b.server_type] === "arm" && LOCATIONS[location]!.zone !== "eu-central") {
    return error(412, "resource_unavailable", `server type ${b.server_type} is not available in location ${location}`);
  }
  if (b.user_data !== undefined && (typeof b.user_data !== "string" || Buffer.byteLength(b.user_data) > MAX_USER_DATA_BYTES)) {
    return invalidInput("user_data", "Length must be between 0 and 32768.");
  }
  const labels = (b.labels ?? {}) as Record<string, unknown>;
  if (typeof labels !== "object" || Array.isArray(labels)) return invalidInput("labels", "Not a valid mapping type.");
  for (const [key, value] of Object.entries(labels)) {
    if (!labelKey.test(key) || typeof value !== "string" || !labelValue.test(value)) return invalidInput("labels", `label ${key} is invalid`);
  }
  const live = [...account.servers.values()].filter((s) => !s.deleted);
  if (live.some((s) => s.name === b.name)) return error(409, "uniqueness_error", "server name is already used", { fields: [{ name: "name" }] });
  if (live.length >= account.serverLimit) return error(403, "resource_limit_exceeded", "server limit exceeded");
  const server: Server = {
    id: nextServerId++,
    name: b.name,
    serverType: b.server_type,
    image: b.image,
    location,
    labels: labels as Record<string, string>,
    userData: (b.user_data as string | undefined) ?? "",
    created: new Date().toISOString(),
    changedAt: Date.now(),
    deleted: false,
  };
  account.servers.set(server.id, server);
  return jsonReply(201, {
    server: serverJson(server, account.bootMs),
    action: action("create_server", server.id),
    next_actions: [action("start_server", server.id)],
    root_password: null,
  });
}

/** `key=value`, `key!=value`, `key` and `!key`, joined by commas (all must hold). */
function selectorMatcher(selector: string | null): ((labels: Record<string, string>) => boolean) | undefined {
  if (!selector) return () => true;
  const terms = selector.split(",").map((term) => /^(!)?([^=!]+)(?:(!?=)(.*))?$/.exec(term.trim()));
  if (terms.some((t) => !t || !labelKey.test(t[2]!))) return undefined;
  return (labels) =>
    terms.every((t) => {
      const [, not, key, op, value] = t!;
      if (op === "=") return labels[key!] === value;
      if (op === "!=") return labels[key!] !== value;
      return not ? !(key! in labels) : key! in labels;
    });
}

function listServers(account: HetznerAccount, url: URL): Reply {
  const matches = selectorMatcher(url.searchParams.get("label_selector"));
  if (!matches) return invalidInput("label_selector", "invalid label selector");
  const perPage = Math.min(Number(url.searchParams.get("per_page") ?? 25), 50, account.pageSize);
  const page = Number(url.searchParams.get("page") ?? 1);
  if (!Number.isInteger(perPage) || perPage < 1 || !Number.isInteger(page) || page < 1) return invalidInput("page", "page and per_page must be positive integers");
  const all = [...account.servers.values()].filter((s) => !s.deleted && matches(s.labels));
  const last = Math.max(1, Math.ceil(all.length / perPage));
  return jsonReply(200, {
    servers: all.slice((page - 1) * perPage, page * perPage).map((s) => serverJson(s, account.bootMs)),
    meta: {
      pagination: {
        page,
        per_page: perPage,
        previous_page: page > 1 ? page - 1 : null,
        next_page: page < last ? page + 1 : null,
        last_page: last,
        total_entries: all.length,
      },
    },
  });
}

function api(account: HetznerAccount, method: string, url: URL, body: string): Reply {
  if (method !== "GET" && account.readOnly) return error(403, "forbidden", "insufficient permissions for this request: the token is read-only");
  const id = /^\/v1\/servers\/(\d+)$/.exec(url.pathname)?.[1];
  if (method === "GET" && url.pathname === "/v1/servers") return listServers(account, url);
  if (method === "POST" && url.pathname === "/v1/servers") {
    const parsed = parseJson(body);
    return parsed === undefined ? error(400, "json_error", "Invalid JSON input in your request") : createServer(account, parsed);
  }
  if (id !== undefined && (method === "GET" || method === "DELETE")) {
    const server = account.servers.get(Number(id));
    if (!server || server.deleted) return error(404, "not_found", `server with ID '${id}' not found`);
    if (method === "GET") return jsonReply(200, { server: serverJson(server, account.bootMs) });
    server.deleted = true;
    return jsonReply(200, { action: action("delete_server", server.id) });
  }
  return error(404, "not_found", "not found");
}

function admin(accounts: Map<string, HetznerAccount>, route: string, body: string): Reply {
  const common = commonAdmin(route, body, (key) => accounts.get(key));
  if (common) return common;
  const input = (parseJson(body) ?? {}) as Record<string, unknown>;
  if (route === "POST /_fake/accounts") {
    const account: HetznerAccount = {
      token: randomBytes(48).toString("base64url").slice(0, 64),
      servers: new Map(),
      serverLimit: typeof input.server_limit === "number" ? input.server_limit : 10,
      pageSize: typeof input.page_size === "number" ? input.page_size : 50,
      bootMs: typeof input.boot_ms === "number" ? input.boot_ms : 0,
      readOnly: input.read_only === true,
      failures: [],
      requests: [],
    };
    accounts.set(account.token, account);
    return jsonReply(201, { token: account.token });
  }
  const match = /^(GET|POST) \/_fake\/accounts\/([^/]+)\/servers$/.exec(route);
  const account = match ? accounts.get(decodeURIComponent(match[2]!)) : undefined;
  if (!match || !account) return jsonReply(404, { message: `no admin route ${route}` });
  if (match[1] === "GET") {
    const servers = [...account.servers.values()].map((s) => ({ id: s.id, name: s.name, server_type: s.serverType, image: s.image, location: s.location, labels: s.labels, deleted: s.deleted, user_data: s.userData }));
    return jsonReply(200, { servers });
  }
  const server: Server = {
    id: nextServerId++,
    name: `hand-made-${nextServerId}`,
    serverType: "cx23",
    image: "ubuntu-24.04",
    location: "fsn1",
    labels: (input.labels ?? {}) as Record<string, string>,
    userData: "",
    created: new Date().toISOString(),
    changedAt: Date.now(),
    deleted: false,
  };
  account.servers.set(server.id, server);
  return jsonReply(201, { id: server.id });
}

export const hetznerFake: FakeService = {
  name: "hetzner",
  start() {
    const accounts = new Map<string, HetznerAccount>();
    return listen(async (req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url ?? "/", "http://hetzner.fake");
      const body = await readBody(req);
      const route = `${req.method} ${url.pathname}`;
      if (url.pathname.startsWith("/_fake/")) return writeReply(res, admin(accounts, route, body));

      const headers = headersOf(req);
      const token = /^Bearer (\S+)$/.exec(headers.authorization ?? "")?.[1];
      const account = token ? accounts.get(token) : undefined;
      if (!account) return writeReply(res, error(401, "unauthorized", "unable to authenticate"));
      if (req.method === "POST" && !headers["content-type"]?.startsWith("application/json")) {
        return writeReply(res, error(400, "json_error", "Content-Type must be application/json"));
      }
      await serve(
        req,
        res,
        account,
        { operation: route, method: req.method ?? "GET", path: url.pathname + url.search, headers, body: parseJson(body) ?? body },
        (failure) => error(failure.status, failure.code, failure.message, {}, failure.headers),
        () => api(account, req.method ?? "GET", url, body),
      );
    });
  },
};
