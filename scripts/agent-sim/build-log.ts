// Plausible `docker buildx build` output for the agent simulator: what a build job streams as LOG lines.

export interface SimLine {
  stream: "stdout" | "stderr";
  data: string;
}

const packages = ["react", "express", "zod", "pg", "typescript", "esbuild", "vite", "lodash", "undici", "hono", "drizzle-orm", "nanoid"];

function pick<T>(items: readonly T[], i: number): T {
  return items[i % items.length]!;
}

/**
 * `count` lines (at least the frame of a build) for building `image` from `dockerfile`; a failing build ends with the
 * error buildx prints. BuildKit writes its progress to stderr, the program output it shows to stdout.
 */
export function buildLog(options: { image: string; dockerfile: string; platform: string; count: number; fail: boolean }): SimLine[] {
  const head: SimLine[] = [
    { stream: "stderr", data: "#0 building with \"default\" instance using docker driver" },
    { stream: "stderr", data: `#1 [internal] load build definition from ${options.dockerfile}` },
    { stream: "stderr", data: "#1 transferring dockerfile: 612B done" },
    { stream: "stderr", data: `#2 [internal] load metadata for docker.io/library/node:22-alpine (${options.platform})` },
    { stream: "stderr", data: "#3 [1/6] FROM docker.io/library/node:22-alpine@sha256:6e80991f69cc7722c561e5d14d5e72ab47c0d6b6cfb3ae50fb9cf9a7b30fdf97" },
    { stream: "stderr", data: "#4 [2/6] WORKDIR /app" },
    { stream: "stderr", data: "#5 [3/6] COPY package.json package-lock.json ./" },
    { stream: "stderr", data: "#6 [4/6] RUN npm ci" },
  ];
  const tail: SimLine[] = options.fail
    ? [
        { stream: "stderr", data: "#8 [6/6] RUN npm run build" },
        { stream: "stdout", data: "#8 4.210 src/server.ts(12,7): error TS2322: Type 'string' is not assignable to type 'number'." },
        { stream: "stderr", data: "#8 ERROR: process \"/bin/sh -c npm run build\" did not complete successfully: exit code: 2" },
        { stream: "stderr", data: "ERROR: failed to solve: process \"/bin/sh -c npm run build\" did not complete successfully: exit code: 2" },
      ]
    : [
        { stream: "stderr", data: "#8 [6/6] RUN npm run build" },
        { stream: "stdout", data: "#8 3.904 build finished in 1.8s" },
        { stream: "stderr", data: "#9 exporting to image" },
        { stream: "stderr", data: "#9 exporting layers 2.1s done" },
        { stream: "stderr", data: `#9 naming to ${options.image} done` },
        { stream: "stderr", data: `#9 pushing ${options.image} 3.4s done` },
      ];
  const middle = Math.max(0, options.count - head.length - tail.length);
  const body: SimLine[] = [];
  for (let i = 0; i < middle; i++) {
    const t = (0.05 * (i + 1)).toFixed(3);
    body.push(
      i % 9 === 8
        ? { stream: "stderr", data: `#6 ${t} npm warn deprecated ${pick(packages, i)}@1.${i % 10}.0: this version is no longer supported` }
        : { stream: "stdout", data: `#6 ${t} added ${pick(packages, i)}@${(i % 5) + 1}.${i % 13}.${i % 7} (${(i * 37) % 900 + 12} kB)` },
    );
  }
  return [...head, ...body, ...tail].slice(0, Math.max(options.count, 0));
}
