import type { Child } from "hono/jsx";
import { useState } from "hono/jsx/dom";
import { ApiFailure } from "./api.ts";
import type { PagedList } from "./hooks.ts";

const badgeKinds: Record<string, string> = {
  ready: "ok",
  completed: "ok",
  success: "ok",
  pending: "wait",
  queued: "wait",
  provisioning: "busy",
  building: "busy",
  running: "busy",
  deploying: "busy",
  testing: "busy",
  failed: "bad",
  failure: "bad",
  terminated: "off",
  reaped: "off",
  cancelled: "off",
  accepted: "ok",
  declined: "off",
  revoked: "off",
  expired: "off",
  active: "ok",
  healthy: "ok",
  starting: "busy",
  unhealthy: "bad",
  exited: "bad",
};

/** A status as a coloured label with its name written out (colour is never the only signal). */
export function StatusBadge({ status }: { status: string }) {
  return <span class={`badge badge-${badgeKinds[status] ?? "off"}`}>{status}</span>;
}

export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  const failure = error instanceof ApiFailure ? error : new ApiFailure(0, "ERROR", String(error));
  return (
    <div class="note note-error" role="alert">
      <p>{failure.message}</p>
      {failure.issues.length > 0 && (
        <ul>
          {failure.issues.map((issue) => (
            <li>
              <code>{issue.path}</code>: {issue.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="muted" aria-live="polite">
      Loading {what}…
    </p>
  );
}

export function PageHeader({ title, children }: { title: Child; children?: Child }) {
  return (
    <div class="page-header">
      <h1>{title}</h1>
      {children && <div class="actions">{children}</div>}
    </div>
  );
}

export function Field({ label, hint, children }: { label: string; hint?: Child; children: Child }) {
  return (
    <label class="field">
      <span class="field-label">{label}</span>
      {children}
      {hint && <span class="field-hint">{hint}</span>}
    </label>
  );
}

/**
 * A form's submit handling: no page load, a busy state while the request runs, the API's error shown (with the
 * failing fields). `action` gets the form's data; the form is reset after success unless `keep` is set.
 */
export function useSubmit(action: (data: FormData) => Promise<void>, options: { keep?: boolean } = {}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const onSubmit = async (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    setBusy(true);
    setError(undefined);
    try {
      await action(new FormData(form));
      if (!options.keep) form.reset();
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, onSubmit };
}

/** A button that runs an API call, after a confirmation when `confirm` is given, and shows its error next to it. */
export function ActionButton(props: { label: string; busyLabel?: string; confirm?: string; danger?: boolean; onAction: () => Promise<unknown> }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const run = async () => {
    if (props.confirm && !window.confirm(props.confirm)) return;
    setBusy(true);
    setError(undefined);
    try {
      await props.onAction();
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  return (
    <span class="action">
      <button type="button" class={props.danger ? "danger" : ""} disabled={busy} onClick={run}>
        {busy ? (props.busyLabel ?? `${props.label}…`) : props.label}
      </button>
      {error ? <ErrorNote error={error} /> : null}
    </span>
  );
}

export function Empty({ children }: { children: Child }) {
  return <p class="empty">{children}</p>;
}

/** The next page of a cursor-paginated list, while there is one. */
export function LoadMore({ list }: { list: Pick<PagedList<unknown>, "more" | "loadMore"> }) {
  return list.more ? (
    <button type="button" onClick={list.loadMore}>
      Load more
    </button>
  ) : null;
}

/** A table's header row; `actions` adds the (visually hidden) column of row actions. */
export function TableHead({ columns, actions = false }: { columns: string[]; actions?: boolean }) {
  return (
    <thead>
      <tr>
        {columns.map((column) => (
          <th>{column}</th>
        ))}
        {actions && (
          <th>
            <span class="visually-hidden">Actions</span>
          </th>
        )}
      </tr>
    </thead>
  );
}

