import { randomBytes, randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { commonAdmin, headersOf, jsonReply, parseJson, serve, writeReply, type CloudAccount, type Reply } from "./cloud-accounts.ts";
import { listen, readBody } from "../../scripts/local-github/http.ts";
import type { FakeService } from "./index.ts";

/**
 * DigitalOcean's v2 API for droplets and the account: bearer tokens, JSON bodies checked like the real API
 * (required fields, hostname-safe names, tag syntax, known sizes, images and regions, the droplet limit), answers in
 * DigitalOcean's shapes (`{droplet}`, `{droplets, links: {pages}, meta: {total}}`, errors `{id, message}`).
 *
 * Admin (besides test/fakes/cloud-accounts.ts):
 *   POST /_fake/accounts {droplet_limit?, page_size?, boot_ms?, read_only?} → {token}
 *   GET  /_fake/accounts/<token>/droplets  every droplet ever created, deleted ones included, with user data
 *   POST /_fake/accounts/<token>/droplets {tags}  a droplet made outside Stagely → {id}
 */

const SIZES = new Set(["s-1vcpu-1gb", "s-1vcpu-2gb", "s-2vcpu-2gb", "s-2vcpu-4gb", "s-4vcpu-8gb", "c-2", "c-4", "c-8", "c-16", "c-32"]);
const IMAGES = new Set(["ubuntu-24-04-x64", "ubuntu-22-04-x64", "debian-12-x64"]);
const REGIONS = new Set(["nyc1", "nyc3", "sfo3", "ams3", "fra1", "lon1", "sgp1", "blr1", "tor1", "syd1"]);
const MAX_USER_DATA_BYTES = 64 * 1024;

interface Droplet {
  id: number;
  name: string;
  size: string;
  image: string;
  region: string;
  tags: string[];
  userData: string;
  createdAt: string;
  changedAt: number;
  deleted: boolean;
}

interface DoAccount extends CloudAccount {
  token: string;
  droplets: Map<number, Droplet>;
  dropletLimit: number;
  pageSize: number;
  bootMs: number;
  readOnly: boolean;
  /** Registry credentials handed out (docker-credentials), for tests to check what was asked. */
  registryCredentials: { registry: string; readWrite: boolean; expirySeconds: number | null }[];
}

let nextDropletId = 3164444000;

const error = (status: number, id: string, message: string, headers: Record<string, string> = {}) => jsonReply(status, { id, message }, headers);
const notFound = () => error(404, "not_found", "The resource you were accessing could not be found.");

function dropletJson(d: Droplet, bootMs: number) {
  const active = Date.now() - d.changedAt >= bootMs;
  const octet = 1 + (d.id % 254);
  return {
    id: d.id,
    name: d.name,
    memory: 4096,
    vcpus: 2,
    disk: 80,
    locked: false,
    status: active ? "active" : "new",
    kernel: null,
    created_at: d.createdAt,
    features: ["droplet_agent", "private_networking"],
    backup_ids: [],
    next_backup_window: null,
    snapshot_ids: [],
    image: { id: 161770000, name: "24.04 (LTS) x64", distribution: "Ubuntu", slug: d.image, public: true },
    volume_ids: [],
    size: { slug: d.size },
    size_slug: d.size,
    networks: active
      ? {
          v4: [
            { ip_address: `10.114.0.${octet}`, netmask: "255.255.240.0", gateway: "10.114.0.1", type: "private" },
            { ip_address: `198.51.100.${octet}`, netmask: "255.255.240.0", gateway: "198.51.100.1", type: "public" },
          ],
          v6: [],
        }
      : { v4: [], v6: [] },
    region: { name: d.region.toUpperCase(), slug: d.region, features: ["metadata", "install_agent"], available: true, sizes: [...SIZES] },
    tags: d.tags,
    vpc_uuid: "5a4981aa-9653-4bd1-bef5-d6bff52042e4",
  };
}

function createDroplet(account: DoAccount, body: unknown): Reply {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return error(400, "bad_request", "the request body must be a JSON object");
  const b = body as Record<string, unknown>;
  const invalid = (message: string) => error(422, "unprocessable_entity", message);
  if (typeof b.name !== "string" || !b.name) return invalid("Name is required");
  if (!/^[a-zA-Z0-9.-]{1,255}$/.test(b.name)) return invalid("Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)");
  if (typeof b.size !== "string" || !SIZES.has(b.size)) return invalid("You specified an invalid size for Droplet creation.");
  if (typeof b.image !== "string" || !IMAGES.has(b.image)) return invalid("You specified an invalid image for Droplet creation.");
  if (b.region !== undefined && (typeof b.region !== "string" || !REGIONS.has(b.region))) return invalid("You specified an invalid region for Droplet creation.");
  if (b.user_data !== undefined && (typeof b.user_data !== "string" || Buffer.byteLength(b.user_data) > MAX_USER_DATA_BYTES)) {
    return invalid("user_data must be a string of at most 64 KiB");
  }
  const tags = b.tags ?? [];
  if (!Array.isArray(tags) || tags.some((tag) => typeof tag !== "string" || !/^[a-zA-Z0-9_:-]{1,255}$/.test(tag))) {
    return invalid("Tag names may only contain letters, numbers, colons, dashes, and underscores, and be at most 255 characters");
  }
  const live = [...account.droplets.values()].filter((d) => !d.deleted).length;
  if (live >= account.dropletLimit) return invalid("creating this/these droplet(s) will exceed your droplet limit");
  const droplet: Droplet = {
    id: nextDropletId++,
    name: b.name,
    size: b.size,
    image: b.image,
    region: (b.region as string | undefined) ?? "nyc3",
    tags: tags as string[],
    userData: (b.user_data as string | undefined) ?? "",
    createdAt: new Date().toISOString(),
    changedAt: Date.now(),
    deleted: false,
  };
  account.droplets.set(droplet.id, droplet);
  return jsonReply(202, {
    droplet: dropletJson(droplet, account.bootMs),
    links: { actions: [{ id: Number(randomBytes(4).readUInt32BE()), rel: "create", href: `https://api.digitalocean.com/v2/actions/${droplet.id}` }] },
  });
}

function listDroplets(account: DoAccount, url: URL, origin: string): Reply {
  const tag = url.searchParams.get("tag_name");
  const perPage = Math.min(Number(url.searchParams.get("per_page") ?? 20), 200, account.pageSize);
  const page = Number(url.searchParams.get("page") ?? 1);
  if (!Number.isInteger(perPage) || perPage < 1 || !Number.isInteger(page) || page < 1) return error(400, "bad_request", "page and per_page must be positive integers");
  const all = [...account.droplets.values()].filter((d) => !d.deleted && (tag === null || d.tags.includes(tag)));
  const last = Math.max(1, Math.ceil(all.length / perPage));
  const link = (p: number) => {
    const next = new URL(`${origin}/v2/droplets`);
    if (tag !== null) next.searchParams.set("tag_name", tag);
    next.searchParams.set("page", String(p));
    next.searchParams.set("per_page", String(perPage));
    return next.toString();
  };
  const pages: Record<string, string> = {};
  if (page > 1) Object.assign(pages, { first: link(1), prev: link(page - 1) });
  if (page < last) Object.assign(pages, { next: link(page + 1), last: link(last) });
  return jsonReply(200, {
    droplets: all.slice((page - 1) * perPage, page * perPage).map((d) => dropletJson(d, account.bootMs)),
    links: { pages },
    meta: { total: all.length },
  });
}

function api(account: DoAccount, method: string, url: URL, body: string, origin: string): Reply {
  const write = method !== "GET";
  if (write && account.readOnly) return error(403, "Forbidden", "You are not authorized to perform this operation");
  const id = /^\/v2\/droplets\/(\d+)$/.exec(url.pathname)?.[1];
  const droplet = id === undefined ? undefined : account.droplets.get(Number(id));
  if (method === "GET" && url.pathname === "/v2/account") {
    return jsonReply(200, {
      account: {
        droplet_limit: account.dropletLimit,
        floating_ip_limit: 3,
        volume_limit: 100,
        email: "ops@example.com",
        uuid: randomUUID(),
        email_verified: true,
        status: "active",
        status_message: "",
        team: { uuid: "3b9a0a5e-0000-4000-8000-000000000001", name: "Stagely test team" },
      },
    });
  }
  if (method === "GET" && url.pathname === "/v2/droplets") return listDroplets(account, url, origin);
  const registry = /^\/v2\/registries\/([a-z0-9-]+)\/docker-credentials$/.exec(url.pathname)?.[1];
  if (method === "GET" && registry !== undefined) {
    // The documented answer: a Docker config whose auth is base64(<token>:<token>), expiring after expiry_seconds.
    const expiry = url.searchParams.get("expiry_seconds");
    if (expiry !== null && !/^\d+$/.test(expiry)) return error(400, "bad_request", "expiry_seconds must be a whole number");
    if (account.readOnly && url.searchParams.get("read_write") === "true") return error(403, "forbidden", "You are not authorized to perform this operation");
    const credential = `reg_${randomBytes(12).toString("hex")}`;
    account.registryCredentials.push({ registry, readWrite: url.searchParams.get("read_write") === "true", expirySeconds: expiry === null ? null : Number(expiry) });
    return jsonReply(200, { auths: { "registry.digitalocean.com": { auth: Buffer.from(`${credential}:${credential}`).toString("base64") } } });
  }
  if (method === "POST" && url.pathname === "/v2/droplets") {
    const parsed = parseJson(body);
    return parsed === undefined ? error(400, "bad_request", "unexpected end of JSON input") : createDroplet(account, parsed);
  }
  if (id !== undefined && (method === "GET" || method === "DELETE")) {
    if (!droplet || droplet.deleted) return notFound();
    if (method === "GET") return jsonReply(200, { droplet: dropletJson(droplet, account.bootMs) });
    droplet.deleted = true;
    return jsonReply(204);
  }
  return notFound();
}

function admin(accounts: Map<string, DoAccount>, route: string, body: string): Reply {
  const common = commonAdmin(route, body, (key) => accounts.get(key));
  if (common) return common;
  const input = (parseJson(body) ?? {}) as Record<string, unknown>;
  if (route === "POST /_fake/accounts") {
    const account: DoAccount = {
      token: `dop_v1_${randomBytes(32).toString("hex")}`,
      droplets: new Map(),
      dropletLimit: typeof input.droplet_limit === "number" ? input.droplet_limit : 25,
      pageSize: typeof input.page_size === "number" ? input.page_size : 200,
      bootMs: typeof input.boot_ms === "number" ? input.boot_ms : 0,
      readOnly: input.read_only === true,
      registryCredentials: [],
      failures: [],
      requests: [],
    };
    accounts.set(account.token, account);
    return jsonReply(201, { token: account.token });
  }
  const match = /^(GET|POST) \/_fake\/accounts\/([^/]+)\/droplets$/.exec(route);
  const account = match ? accounts.get(decodeURIComponent(match[2]!)) : undefined;
  if (!match || !account) return jsonReply(404, { message: `no admin route ${route}` });
  if (match[1] === "GET") {
    const droplets = [...account.droplets.values()].map((d) => ({ id: d.id, name: d.name, size: d.size, image: d.image, region: d.region, tags: d.tags, deleted: d.deleted, user_data: d.userData }));
    return jsonReply(200, { droplets });
  }
  const droplet: Droplet = {
    id: nextDropletId++,
    name: "hand-made",
    size: "s-1vcpu-1gb",
    image: "ubuntu-24-04-x64",
    region: "nyc3",
    tags: Array.isArray(input.tags) ? (input.tags as string[]) : [],
    userData: "",
    createdAt: new Date().toISOString(),
    changedAt: Date.now(),
    deleted: false,
  };
  account.droplets.set(droplet.id, droplet);
  return jsonReply(201, { id: droplet.id });
}

export const digitalOceanFake: FakeService = {
  name: "digitalocean",
  start() {
    const accounts = new Map<string, DoAccount>();
    return listen(async (req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url ?? "/", "http://digitalocean.fake");
      const body = await readBody(req);
      const route = `${req.method} ${url.pathname}`;
      if (url.pathname.startsWith("/_fake/")) return writeReply(res, admin(accounts, route, body));

      const headers = headersOf(req);
      const token = /^Bearer (\S+)$/.exec(headers.authorization ?? "")?.[1];
      const account = token ? accounts.get(token) : undefined;
      if (!account) return writeReply(res, error(401, "Unauthorized", "Unable to authenticate you"));
      if (req.method === "POST" && !headers["content-type"]?.startsWith("application/json")) {
        return writeReply(res, error(415, "unsupported_media_type", "Content-Type must be application/json"));
      }
      const origin = `http://${headers.host}`;
      await serve(
        req,
        res,
        account,
        { operation: route, method: req.method ?? "GET", path: url.pathname + url.search, headers, body: parseJson(body) ?? body },
        (failure) => error(failure.status, failure.code, failure.message, failure.headers),
        () => api(account, req.method ?? "GET", url, body, origin),
      );
    });
  },
};
