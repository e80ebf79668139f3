/** The agent's semantic version; its major number is the protocol major it speaks (docs/agent-protocol.md section 8). */
export const AGENT_VERSION = "1.1.0";
