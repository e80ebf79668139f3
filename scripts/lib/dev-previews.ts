import { eq } from "drizzle-orm";
import type { Db } from "../../src/db/client.ts";
import { environments, projects } from "../../src/db/schema.ts";

/**
 * The address a browser on this machine opens for a ready preview: `http://<hash>.<domain>:<port>/` (browsers and curl
 * resolve *.localhost here). A team-only preview of the development team becomes a share link made with the
 * development user's token (GitHub sign-in to a preview is a step too many for a local try).
 */
export async function localPreviewLink(
  options: { apiUrl: string; previewDomain: string; devToken?: string },
  preview: { environmentId: string; hash: string; access: string; ofDevTeam: boolean },
): Promise<{ link: string; note: string }> {
  const address = `http://${preview.hash}.${options.previewDomain}:${new URL(options.apiUrl).port}/`;
  if (preview.access === "public") return { link: address, note: "" };
  if (preview.ofDevTeam && options.devToken) {
    const share = await fetch(`${options.apiUrl}/v1/environments/${preview.environmentId}/share-tokens`, {
      method: "POST",
      headers: { Authorization: `Bearer ${options.devToken}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "npm run dev", expires_in_hours: 24 }),
    });
    if (share.ok) {
      const { url } = (await share.json()) as { url: string };
      return { link: url.replace(/^https?:\/\/[^/]+\//, address), note: "  (team-only: this share link sets a cookie for it, 24 h)" };
    }
  }
  return { link: address, note: "  (team-only: send X-Stagely-Token, or make the project public)" };
}

/** Prints each preview's local address when it becomes ready (again after a redeploy). */
export function announcePreviews(options: { db: Db; apiUrl: string; previewDomain: string; devTeamId: string; devToken?: string; log: (line: string) => void }): void {
  const announced = new Map<string, number>();
  const check = async () => {
    const ready = await options.db
      .select({ id: environments.id, hash: environments.subdomainHash, pr: environments.prNumber, deployedAt: environments.deployedAt, project: projects.slug, teamId: projects.teamId, access: projects.previewAccess })
      .from(environments)
      .innerJoin(projects, eq(projects.id, environments.projectId))
      .where(eq(environments.status, "ready"));
    for (const preview of ready) {
      const deployed = preview.deployedAt?.getTime() ?? 0;
      if (announced.get(preview.id) === deployed) continue;
      announced.set(preview.id, deployed);
      const { link, note } = await localPreviewLink(options, { environmentId: preview.id, hash: preview.hash, access: preview.access, ofDevTeam: preview.teamId === options.devTeamId });
      options.log(`preview ready: ${preview.project} #${preview.pr} at ${link}${note}`);
    }
  };
  setInterval(() => void check().catch((error: unknown) => options.log(`could not list previews: ${error instanceof Error ? error.message : String(error)}`)), 3000).unref();
}
