import { describe, expect, it } from "vitest";
import { COMPOSE_MAX_BYTES, MAX_SERVICES, parseComposeFile, type ComposePort } from "./compose-file.ts";

function servicesOf(text: string) {
  const result = parseComposeFile(text, "compose.yaml");
  if (!result.ok) throw new Error(`expected a valid compose file, got:\n${result.errors.join("\n")}`);
  expect(result.file.path).toBe("compose.yaml");
  return result.file.services;
}

function errorsOf(text: string): string[] {
  const result = parseComposeFile(text, "docker-compose.yml");
  if (result.ok) throw new Error("expected errors, got a valid compose file");
  return result.errors;
}

const port = (target: number, published: string | null, extra: Partial<ComposePort> = {}): ComposePort => ({ target, targetEnd: target, published, protocol: "tcp", ...extra });

describe("parseComposeFile", () => {
  it("reads services: image or build, ports, healthcheck", () => {
    const services = servicesOf(`
name: shop
x-common: &common
  restart: unless-stopped
services:
  web:
    <<: *common
    build: {context: ./web, dockerfile: Dockerfile}
    ports: ["80:3000"]
    healthcheck: {test: ["CMD", "curl", "-f", "http://localhost:3000"], interval: 10s}
  api:
    image: registry.example.com/acme/api:1.2
    build: ./api
    expose: ["8080"]
  db:
    image: postgres:16
    healthcheck: {disable: true}
  worker:
    extends: {service: api}
    healthcheck: {test: ["NONE"]}
volumes: {data: {}}
`);
    expect(services).toEqual([
      { name: "web", image: null, build: true, ports: [port(3000, "80")], healthcheck: true },
      { name: "api", image: "registry.example.com/acme/api:1.2", build: true, ports: [], healthcheck: false },
      { name: "db", image: "postgres:16", build: false, ports: [], healthcheck: false },
      { name: "worker", image: null, build: false, ports: [], healthcheck: false },
    ]);
  });

  it("reads ports in compose's short syntax", () => {
    const cases: [string | number, ComposePort][] = [
      [3000, port(3000, null)],
      ["3000", port(3000, null)],
      ["8080:3000", port(3000, "8080")],
      ["127.0.0.1:8080:3000", port(3000, "8080")],
      ["127.0.0.1::3000", port(3000, null)],
      ["[::1]:8080:3000", port(3000, "8080")],
      ["8080:3000/udp", port(3000, "8080", { protocol: "udp" })],
      ["9000-9002:9000-9002", { target: 9000, targetEnd: 9002, published: "9000-9002", protocol: "tcp" }],
      ["${WEB_PORT:-8080}:3000", port(3000, "${WEB_PORT:-8080}")],
      ["127.0.0.1:${PORT}:3000", port(3000, "${PORT}")],
    ];
    for (const [entry, expected] of cases) {
      const [service] = servicesOf(`services:\n  web:\n    image: web\n    ports: [${JSON.stringify(entry)}]\n`);
      expect(service!.ports, String(entry)).toEqual([expected]);
    }
  });

  it("reads ports in compose's long syntax", () => {
    const [service] = servicesOf(`
services:
  web:
    image: web
    ports:
      - {target: 3000, published: "8080", host_ip: 127.0.0.1, protocol: tcp, mode: host, name: http, app_protocol: http}
      - {target: 53, published: 5353, protocol: udp}
      - target: 9000
`);
    expect(service!.ports).toEqual([port(3000, "8080"), port(53, "5353", { protocol: "udp" }), port(9000, null)]);
  });

  it("reads local tags (!reset, !override) as if untagged", () => {
    const [service] = servicesOf("services:\n  web:\n    image: web\n    ports: !override [\"80:3000\"]\n    environment: !reset []\n");
    expect(service!.ports).toEqual([port(3000, "80")]);
  });

  const cases: [string, string, string[]][] = [
    ["an empty file", "# nothing\n", ["docker-compose.yml: is empty; it needs services"]],
    ["a list", "- web\n", ["docker-compose.yml: must be a mapping with services at the top level"]],
    ["no services", "version: '3'\n", ["docker-compose.yml: services is required"]],
    ["services as a list", "services: [web]\n", ["docker-compose.yml: services must be a mapping"]],
    ["no service", "services: {}\n", ["docker-compose.yml: services must list at least one service"]],
    ["a bad service name", "services:\n  'my web': {image: web}\n", ['docker-compose.yml: services["my web"] is not a valid service name (letters, digits, _, . and -, at most 63 characters)']],
    ["a long service name", `services:\n  ${"s".repeat(64)}: {image: web}\n`, [`docker-compose.yml: services["${"s".repeat(40)}…"] is not a valid service name (letters, digits, _, . and -, at most 63 characters)`]],
    ["a service that is not a mapping", "services:\n  web: nginx\n", ["docker-compose.yml: services.web must be a mapping"]],
    ["a service without image or build", "services:\n  web: {ports: ['80']}\n", ["docker-compose.yml: services.web needs image or build"]],
    ["an image that is not a name", "services:\n  web: {image: 3}\n", ["docker-compose.yml: services.web.image must be an image name", "docker-compose.yml: services.web needs image or build"]],
    ["a build that is a list", "services:\n  web: {build: [a]}\n", ["docker-compose.yml: services.web.build must be a path or a mapping", "docker-compose.yml: services.web needs image or build"]],
    ["ports as a string", "services:\n  web: {image: web, ports: '80:3000'}\n", ["docker-compose.yml: services.web.ports must be a list"]],
    ["a port that is no port", "services:\n  web: {image: web, ports: [http]}\n", ['docker-compose.yml: services.web.ports[0] must end with a container port (1-65535) or range, like "8080:3000"']],
    ["port 0", "services:\n  web: {image: web, ports: ['80:0']}\n", ['docker-compose.yml: services.web.ports[0] must end with a container port (1-65535) or range, like "8080:3000"']],
    ["port 65536", "services:\n  web: {image: web, ports: [65536]}\n", ['docker-compose.yml: services.web.ports[0] must end with a container port (1-65535) or range, like "8080:3000"']],
    ["a reversed range", "services:\n  web: {image: web, ports: ['3005-3000']}\n", ['docker-compose.yml: services.web.ports[0] must end with a container port (1-65535) or range, like "8080:3000"']],
    ["a variable container port", "services:\n  web: {image: web, ports: ['80:${PORT}']}\n", ['docker-compose.yml: services.web.ports[0] must end with a container port (1-65535) or range, like "8080:3000" (variables are not supported in the container port)']],
    ["a bad host port", "services:\n  web: {image: web, ports: ['http:3000']}\n", ['docker-compose.yml: services.web.ports[0] has a host port "http" that is not a port (1-65535) or range']],
    ["a bad protocol", "services:\n  web: {image: web, ports: ['80:3000/quic']}\n", ['docker-compose.yml: services.web.ports[0] has protocol "quic"; it must be tcp, udp or sctp']],
    ["a port of another type", "services:\n  web: {image: web, ports: [[80]]}\n", ['docker-compose.yml: services.web.ports[0] must be a port like "8080:3000" or a mapping with target']],
    ["a long-syntax port without target", "services:\n  web: {image: web, ports: [{published: 80}]}\n", ["docker-compose.yml: services.web.ports[0].target is required"]],
    ["a long-syntax port with a bad target", "services:\n  web: {image: web, ports: [{target: http}]}\n", ["docker-compose.yml: services.web.ports[0].target must be a port number (1-65535)"]],
    ["a long-syntax port with an unknown key", "services:\n  web: {image: web, ports: [{target: 80, external: true}]}\n", ["docker-compose.yml: services.web.ports[0].external is not a key of a port (target, published, host_ip, protocol, mode, name, app_protocol)"]],
    ["a long-syntax port with a bad published port", "services:\n  web: {image: web, ports: [{target: 80, published: [1]}]}\n", ["docker-compose.yml: services.web.ports[0].published must be a port number or range"]],
    ["a long-syntax port with a bad protocol", "services:\n  web: {image: web, ports: [{target: 80, protocol: icmp}]}\n", ["docker-compose.yml: services.web.ports[0].protocol must be tcp, udp or sctp"]],
    ["a healthcheck that is not a mapping", "services:\n  web: {image: web, healthcheck: curl}\n", ["docker-compose.yml: services.web.healthcheck must be a mapping"]],
    ["YAML the reader refuses", "services:\n  web: {image: web}\n  web: {image: web2}\n", ['docker-compose.yml: services has the key "web" more than once']],
    ["a syntax error", "services:\n  web: {image: web\n", [expect.stringMatching(/^docker-compose\.yml: is not valid YAML \(line \d+, column \d+\): /) as unknown as string]],
  ];
  for (const [name, text, expected] of cases) {
    it(`reports ${name}`, () => {
      expect(errorsOf(text)).toEqual(expected);
    });
  }

  it(`refuses more than ${MAX_SERVICES} services and files over ${COMPOSE_MAX_BYTES / 1024} KiB`, () => {
    const services = Array.from({ length: MAX_SERVICES + 1 }, (_, i) => `  s${i}: {image: s}`).join("\n");
    expect(errorsOf(`services:\n${services}\n`)).toEqual([`docker-compose.yml: services has ${MAX_SERVICES + 1} services; at most ${MAX_SERVICES} are allowed`]);
    expect(errorsOf(`services:\n  web: {image: web}\n# ${"x".repeat(COMPOSE_MAX_BYTES)}\n`)).toEqual(["docker-compose.yml: is larger than 64 KiB"]);
  });

  it("accepts long values such as inline config files, up to the file's size", () => {
    const [service] = servicesOf(`services:\n  web:\n    image: web\n    command: ${JSON.stringify("x".repeat(40_000))}\n`);
    expect(service!.name).toBe("web");
  });
});
