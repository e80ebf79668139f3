import { parse, stringify } from "yaml";
import { z } from "zod";
import type { Architecture } from "./types.ts";

/**
 * The user data of every Stagely VM, builder or preview. The agent token is written once, into agent.json (0600,
 * root); it appears nowhere else in the user data.
 */
export const AGENT_CONFIG_PATH = "/etc/stagely/agent.json";
const AGENT_BINARY = "/usr/local/bin/stagely-agent";
const AGENT_UNIT = "stagely-agent.service";

const agentConfigSchema = z.object({
  agent_id: z.string().min(1),
  token: z.string().min(1),
  core_url: z.string().min(1),
  role: z.enum(["builder", "preview"]),
  job_id: z.string().min(1).optional(),
  environment_id: z.string().min(1).optional(),
});

/** The content of /etc/stagely/agent.json. */
export type AgentConfig = z.infer<typeof agentConfigSchema>;

export interface CloudInitInput {
  agentId: string;
  token: string;
  /** Where the agent reaches Core (PUBLIC_URL); it dials `<coreUrl>/v1/agent/connect`. */
  coreUrl: string;
  role: "builder" | "preview";
  /** Required for a builder. */
  jobId?: string;
  /** Required for a preview. */
  environmentId?: string;
  architecture: Architecture;
  /** AGENT_DOWNLOAD_URL; `{arch}` becomes amd64 or arm64. */
  agentDownloadUrl: string;
}

// Restart=on-failure restarts a crashed agent but not one that exited 0, which the agent does after TERMINATE.
const unit = `[Unit]
Description=Stagely agent
Wants=network-online.target
After=network-online.target docker.service
StartLimitIntervalSec=0

[Service]
ExecStart=${AGENT_BINARY} --config ${AGENT_CONFIG_PATH}
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
`;

const installDocker = "command -v docker >/dev/null 2>&1 || curl -fsSL --retry 5 https://get.docker.com | sh";
const installCompose =
  "docker compose version >/dev/null 2>&1 || { apt-get update && { apt-get install -y docker-compose-plugin || apt-get install -y docker-compose-v2; }; }";

/** A `#cloud-config` document. Throws a TypeError on input that would make a VM that cannot work. */
export function renderCloudInit(input: CloudInitInput): string {
  const workId = input.role === "builder" ? input.jobId : input.environmentId;
  if (!workId) throw new TypeError(`a ${input.role} VM needs ${input.role === "builder" ? "jobId" : "environmentId"}`);
  const downloadUrl = input.agentDownloadUrl.replaceAll("{arch}", input.architecture);
  if (!/^https?:\/\/\S+$/.test(downloadUrl)) throw new TypeError("agentDownloadUrl must be an http(s) URL");
  const agentConfig: AgentConfig = {
    agent_id: input.agentId,
    token: input.token,
    core_url: input.coreUrl.replace(/\/+$/, ""),
    role: input.role,
    ...(input.role === "builder" ? { job_id: workId } : { environment_id: workId }),
  };
  const document = {
    write_files: [
      { path: AGENT_CONFIG_PATH, owner: "root:root", permissions: "0600", content: `${JSON.stringify(agentConfig)}\n` },
      { path: `/etc/systemd/system/${AGENT_UNIT}`, owner: "root:root", permissions: "0644", content: unit },
    ],
    // Exec form (no shell) wherever a value comes from configuration.
    runcmd: [
      ["sh", "-c", installDocker],
      ["sh", "-c", installCompose],
      ["curl", "-fsSL", "--retry", "5", "-o", AGENT_BINARY, downloadUrl],
      ["chmod", "0755", AGENT_BINARY],
      ["systemctl", "daemon-reload"],
      ["systemctl", "enable", "--now", AGENT_UNIT],
    ],
  };
  return `#cloud-config\n${stringify(document, { lineWidth: 0 })}`;
}

/** The agent.json written by user data from renderCloudInit, or undefined when there is none (the local cloud reads it). */
export function readAgentConfig(userData: string): AgentConfig | undefined {
  if (!userData.startsWith("#cloud-config")) return undefined;
  try {
    const files = z.object({ write_files: z.array(z.object({ path: z.string(), content: z.string() })) }).parse(parse(userData)).write_files;
    const file = files.find((f) => f.path === AGENT_CONFIG_PATH);
    return file ? agentConfigSchema.parse(JSON.parse(file.content)) : undefined;
  } catch {
    return undefined;
  }
}
