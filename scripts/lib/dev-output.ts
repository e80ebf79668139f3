/**
 * wrangler dev's lines `npm run dev` does not show: what a developer cannot act on (the offline warning about
 * workers.cloudflare.com and its stack line, the types warning, the bindings table printed twice, banners, the
 * asset build's chatter, and the dev script's own readiness polls). Errors, the Worker's logs and anything unknown
 * are shown.
 */
const NOISE: RegExp[] = [
  /^\s*⛅️ wrangler /,
  /^─+$/,
  /^\[custom build\](?!.*\b(error|failed)\b)/i,
  /^Using (secrets|vars) defined in /,
  /^Your Worker has access to the following bindings:/,
  /^Binding\s+Resource\s+Mode$/,
  /^env\.[A-Z0-9_]+ .*\s(local|remote)$/,
  /^\[wrangler:warn\] Unable to fetch the `Request\.cf` object/,
  /^Error: getaddrinfo (EAI_AGAIN|ENOTFOUND) workers\.cloudflare\.com/,
  /^\s+at GetAddrInfoReqWrap\./,
  /types might be out of date|wrangler types/i,
  /^⎔ (Starting local server|Reloading local server|Connection status updated)/,
  /^\[wrangler:info\] Ready on /,
  /^\[wrangler:info\] (GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS|QUEUE) /,
  /^\{"time":"[^"]*","level":"info","msg":"request",.*"method":"(GET|HEAD)",.*"status":[23]\d\d,/,
  /"path":"\/(ready|__scheduled)"/,
];

export function isWranglerNoise(line: string): boolean {
  return line.trim() === "" || NOISE.some((pattern) => pattern.test(line));
}
