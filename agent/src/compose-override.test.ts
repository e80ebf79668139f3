import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { readComposeFile, renderOverride } from "./compose-override.ts";
import { JobFailure } from "./job-context.ts";

const compose = "services:\n  api: {build: ./api}\n  web: {image: web}\n  db: {image: postgres:16}\n";

describe("readComposeFile", () => {
  it("lists the services and keeps the version key when there is one", () => {
    expect(readComposeFile(compose)).toEqual({ services: ["api", "web", "db"], version: null });
    expect(readComposeFile('version: "3.8"\nservices: {web: {image: x}}\n')).toEqual({ services: ["web"], version: "3.8" });
  });

  it("refuses, saying why, a file that is not YAML or has no services", () => {
    for (const [text, problem] of [
      ["services: [", /not valid YAML/],
      ["just: text\n", /defines no services/],
      ["services: []\n", /defines no services/],
      ["", /defines no services/],
    ] as const) {
      const error = (() => {
        try {
          readComposeFile(text);
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(JobFailure);
      expect((error as JobFailure).code).toBe("BAD_COMPOSE_FILE");
      expect((error as JobFailure).message).toMatch(problem);
    }
  });
});

describe("renderOverride", () => {
  const secrets = [
    { key: "SHARED", value: "global-value-1", scope: "global" },
    { key: "DATABASE_URL", value: "postgres://global", scope: "global" },
    { key: "DATABASE_URL", value: "postgres://api-only", scope: "api" },
    { key: "API_KEY", value: "global-value-1", scope: "api" },
  ];

  it("pins built services to their images, gives every service its secrets by scope (scoped wins), and mounts files read-only", () => {
    const { yaml, env } = renderOverride(readComposeFile(compose), { images: { api: "registry/api@sha256:abc", web: "sha256:def" }, secrets }, [
      { hostPath: "/var/lib/stagely/projects/p/files/1a2b", containerPath: "/run/secrets/ca.pem" },
    ]);
    const document = parse(yaml) as { services: Record<string, { image?: string; environment?: Record<string, string>; volumes?: string[] }> };
    expect(Object.keys(document.services)).toEqual(["api", "web", "db"]);
    expect(document.services.api!.image).toBe("registry/api@sha256:abc");
    expect(document.services.web!.image).toBe("sha256:def");
    expect(document.services.db!.image).toBeUndefined();
    // Values become references to compose's environment; equal values share one variable.
    const resolve = (ref: string) => env[/^\$\{(STAGELY_SECRET_\d+)\}$/.exec(ref)![1]!];
    const envOf = (service: string) => Object.fromEntries(Object.entries(document.services[service]!.environment!).map(([k, v]) => [k, resolve(v)]));
    expect(envOf("api")).toEqual({ SHARED: "global-value-1", DATABASE_URL: "postgres://api-only", API_KEY: "global-value-1" });
    expect(envOf("web")).toEqual({ SHARED: "global-value-1", DATABASE_URL: "postgres://global" });
    expect(envOf("db")).toEqual(envOf("web"));
    expect(Object.keys(env)).toHaveLength(3);
    for (const service of ["api", "web", "db"]) expect(document.services[service]!.volumes).toEqual(["/var/lib/stagely/projects/p/files/1a2b:/run/secrets/ca.pem:ro"]);
  });

  it("never writes a secret value into the file", () => {
    const { yaml } = renderOverride(readComposeFile(compose), { images: {}, secrets }, []);
    for (const secret of secrets) expect(yaml).not.toContain(secret.value);
  });

  it("repeats the compose file's version key (compose v1 merges only files of one version)", () => {
    const { yaml } = renderOverride(readComposeFile('version: "2.4"\nservices: {web: {image: x}}\n'), { images: { web: "y" }, secrets: [] }, []);
    expect(parse(yaml)).toEqual({ version: "2.4", services: { web: { image: "y" } } });
  });

  it("refuses images for services the compose file does not define", () => {
    expect(() => renderOverride(readComposeFile(compose), { images: { worker: "w" }, secrets: [] }, [])).toThrow(/does not define the built service\(s\) worker/);
  });
});
