import type { Delivery } from "./github.ts";

/** A deployment status as the local GitHub stores it (GitHub's JSON shape). */
export interface DeploymentStatusView {
  state: string;
  description: string;
  environment_url: string;
  log_url: string;
  created_at: string;
}

/** What one browser page of the local GitHub shows. */
export type PageData =
  | { kind: "index"; repositories: { fullName: string; pulls: number }[] }
  | { kind: "repository"; fullName: string; pulls: { number: number; title: string; state: string; headRef: string }[]; deliveries: Delivery[] }
  | {
      kind: "pull";
      fullName: string;
      number: number;
      pull: { title: string; state: string; headRef: string; headSha: string } | null;
      deployments: { id: number; environment: string; sha: string; createdAt: string; statuses: DeploymentStatusView[] }[];
      comments: { user: string; body: string; createdAt: string; updatedAt: string }[];
      deliveries: Delivery[];
      base: string;
    };

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
/** Only http(s) links become anchors: a status or comment is data from the API, not trusted markup. */
const link = (url: string, text = url) => (/^https?:\/\//.test(url) ? `<a href="${escape(url)}">${escape(text)}</a>` : escape(text));

const style = `body{font:14px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1f2328}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem;border-bottom:1px solid #d0d7de}.box{border:1px solid #d0d7de;border-radius:6px;padding:.75rem;margin:.5rem 0}
.muted{color:#59636e}.state{font-weight:600}pre{white-space:pre-wrap;margin:0;font:inherit}table{border-collapse:collapse}td{padding:.2rem .6rem .2rem 0;vertical-align:top}`;

function layout(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)} · local GitHub</title><style>${style}</style></head>
<body><p class="muted"><a href="/">local GitHub</a> — what GitHub would show; served by scripts/local-github for npm run dev</p>${body}</body></html>`;
}

function deliveries(list: Delivery[]): string {
  if (list.length === 0) return `<p class="muted">No webhook deliveries yet.</p>`;
  const rows = list
    .slice(-20)
    .reverse()
    .map((d) => `<tr><td>${escape(d.deliveredAt)}</td><td>${escape(`${d.event}.${d.action}`)}</td><td class="state">${d.status || "failed"}</td><td><pre>${escape(d.body)}</pre></td></tr>`);
  return `<table>${rows.join("")}</table>`;
}

/** The HTML of a page of the local GitHub. */
export function renderPage(view: PageData): string {
  if (view.kind === "index") {
    const items = view.repositories.map((r) => `<li>${`<a href="/${escape(r.fullName)}">${escape(r.fullName)}</a>`} <span class="muted">${r.pulls} pull request(s)</span></li>`);
    return layout("Repositories", `<h1>Repositories</h1>${items.length ? `<ul>${items.join("")}</ul>` : `<p class="muted">None yet: run npm run demo.</p>`}`);
  }
  if (view.kind === "repository") {
    const items = view.pulls.map((p) => `<li><a href="/${escape(view.fullName)}/pull/${p.number}">#${p.number} ${escape(p.title)}</a> <span class="muted">${escape(p.state)} · ${escape(p.headRef)}</span></li>`);
    return layout(view.fullName, `<h1>${escape(view.fullName)}</h1><h2>Pull requests</h2>${items.length ? `<ul>${items.join("")}</ul>` : `<p class="muted">None.</p>`}<h2>Webhook deliveries</h2>${deliveries(view.deliveries)}`);
  }
  const head = view.pull
    ? `<p><span class="state">${escape(view.pull.state)}</span> · ${escape(view.pull.headRef)} at <code>${escape(view.pull.headSha.slice(0, 12))}</code></p>`
    : "";
  const deployments = view.deployments.map((d) => {
    const statuses = d.statuses.map(
      (s) => `<li><span class="state">${escape(s.state)}</span> ${escape(s.description)} ${s.environment_url ? link(s.environment_url, "View deployment") : ""} ${s.log_url ? link(s.log_url, "logs") : ""} <span class="muted">${escape(s.created_at)}</span></li>`,
    );
    return `<div class="box"><strong>${escape(d.environment)}</strong> <span class="muted">deployment ${d.id} of <code>${escape(d.sha.slice(0, 12))}</code>, ${escape(d.createdAt)}</span><ul>${statuses.join("")}</ul></div>`;
  });
  const comments = view.comments.map((c) => `<div class="box"><p><strong>${escape(c.user)}</strong> <span class="muted">${escape(c.updatedAt)}</span></p><pre>${escape(c.body)}</pre></div>`);
  return layout(
    `${view.fullName} #${view.number}`,
    `<h1>${escape(view.pull?.title ?? `#${view.number}`)} <span class="muted">${escape(view.fullName)}#${view.number}</span></h1>${head}
<h2>Deployments</h2>${deployments.join("") || `<p class="muted">None yet.</p>`}
<h2>Comments</h2>${comments.join("") || `<p class="muted">None yet.</p>`}
<h2>Webhook deliveries</h2>${deliveries(view.deliveries)}`,
  );
}
