import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { AGENT_CONFIG_PATH, readAgentConfig, renderCloudInit, type CloudInitInput } from "./cloud-init.ts";

const TOKEN = "stagely_agent_tok_3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c";

const builder: CloudInitInput = {
  agentId: "agt_0123456789abcdef",
  token: TOKEN,
  coreUrl: "https://stagely.example.com/",
  role: "builder",
  jobId: "job_0123456789abcdef",
  architecture: "arm64",
  agentDownloadUrl: "https://downloads.stagely.dev/agent/latest/stagely-agent-linux-{arch}",
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
const commands = (doc: CloudConfig) => doc.runcmd.map((c) => (Array.isArray(c) ? c.join(" ") : c));

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

  it("enables a systemd unit that restarts a crashed agent but not one that exited after TERMINATE", () => {
    const { doc } = render(builder);
    const unit = fileAt(doc, "/etc/systemd/system/stagely-agent.service")!;
    expect(unit.permissions).toBe("0644");
    expect(unit.content).toMatch(/^Restart=on-failure$/m);
    expect(unit.content).not.toMatch(/^Restart=always$/m);
    expect(unit.content).toMatch(/^ExecStart=\/usr\/local\/bin\/stagely-agent --config \/etc\/stagely\/agent\.json$/m);
    expect(unit.content).toMatch(/^WantedBy=multi-user\.target$/m);
    expect(commands(doc)).toContain("systemctl enable --now stagely-agent.service");
  });

  it("installs Docker and the compose plugin only when missing, before the agent starts", () => {
    const cmds = commands(render(builder).doc);
    const docker = cmds.findIndex((c) => c.includes("command -v docker") && c.includes("get.docker.com"));
    const compose = cmds.findIndex((c) => c.includes("docker compose version") && c.includes("docker-compose-plugin"));
    const enable = cmds.findIndex((c) => c.startsWith("systemctl enable"));
    expect(docker).toBeGreaterThanOrEqual(0);
    expect(compose).toBeGreaterThan(docker);
    expect(enable).toBeGreaterThan(compose);
  });

  it("downloads the agent built for the VM's architecture", () => {
    for (const architecture of ["amd64", "arm64"] as const) {
      const { doc } = render({ ...builder, architecture });
      const download = doc.runcmd.find((c) => Array.isArray(c) && c[0] === "curl") as string[];
      expect(download.at(-1)).toBe(`https://downloads.stagely.dev/agent/latest/stagely-agent-linux-${architecture}`);
      expect(download).toContain("/usr/local/bin/stagely-agent");
    }
  });

  it("refuses input that would make a VM whose agent cannot work", () => {
    expect(() => renderCloudInit({ ...builder, jobId: undefined })).toThrow(/jobId/);
    expect(() => renderCloudInit({ ...builder, role: "preview", jobId: undefined })).toThrow(/environmentId/);
    expect(() => renderCloudInit({ ...builder, agentDownloadUrl: "file:///etc/passwd" })).toThrow(/http/);
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
