const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto", style: "narrow" });
const steps: [Intl.RelativeTimeFormatUnit, number][] = [
  ["second", 60],
  ["minute", 60],
  ["hour", 24],
  ["day", 30],
  ["month", 12],
  ["year", Number.POSITIVE_INFINITY],
];

/** "3 min. ago", "yesterday": how long ago an ISO time was. */
export function ago(iso: string | null, now = Date.now()): string {
  if (!iso) return "never";
  let value = (new Date(iso).getTime() - now) / 1000;
  for (const [unit, size] of steps) {
    if (Math.abs(value) < size) return relative.format(Math.round(value), unit);
    value /= size;
  }
  return iso;
}

export function dateTime(iso: string | null): string {
  return iso ? new Date(iso).toLocaleString() : "";
}

export function shortSha(sha: string): string {
  return sha.slice(0, 7);
}

export function duration(seconds: number | null): string {
  if (seconds === null) return "";
  return seconds < 60 ? `${seconds} s` : `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}

/** "acme/web" from https://github.com/acme/web. */
export function repoName(url: string): string {
  return url.replace(/^https:\/\/github\.com\//, "");
}
