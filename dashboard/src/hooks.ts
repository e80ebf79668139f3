import { useEffect, useRef, useState } from "hono/jsx/dom";
import { api, ApiFailure, type Page } from "./api.ts";

export interface Resource<T> {
  data: T | undefined;
  error: ApiFailure | undefined;
  reload(): void;
}

/**
 * GETs `path` (null: nothing yet), again on reload(), and every `refreshMs` while given and while `changing` (if given)
 * says the last answer may still change.
 */
export function useResource<T>(path: string | null, refreshMs?: number, changing?: (data: T) => boolean): Resource<T> {
  const [state, setState] = useState<{ path: string | null; data?: T; error?: ApiFailure }>({ path });
  const [version, setVersion] = useState(0);
  const latest = useRef<{ data?: T; changing?: (data: T) => boolean }>({});
  latest.current = { data: state.path === path ? state.data : undefined, changing };
  useEffect(() => {
    if (!path) return;
    let current = true;
    const load = () =>
      api<T>("GET", path).then(
        (data) => current && setState({ path, data }),
        (error: ApiFailure) => current && setState((s) => ({ path, data: s.path === path ? s.data : undefined, error })),
      );
    void load();
    const timer = refreshMs
      ? setInterval(() => {
          const { data, changing: stillChanging } = latest.current;
          if (data === undefined || !stillChanging || stillChanging(data)) void load();
        }, refreshMs)
      : undefined;
    return () => {
      current = false;
      clearInterval(timer);
    };
  }, [path, version, refreshMs]);
  const fresh = state.path === path;
  return { data: fresh ? state.data : undefined, error: fresh ? state.error : undefined, reload: () => setVersion((v) => v + 1) };
}

export interface PagedList<T> {
  items: T[] | undefined;
  error: ApiFailure | undefined;
  more: boolean;
  loadMore(): void;
  reload(): void;
}

/** A cursor-paginated list (`path` already has its filters): the first page, and further pages on loadMore(). */
export function usePagedList<T>(path: string | null, refreshMs?: number): PagedList<T> {
  const first = useResource<Page<T>>(path, refreshMs);
  const [extra, setExtra] = useState<{ path: string | null; items: T[]; cursor: string | null; error?: ApiFailure }>({ path, items: [], cursor: null });
  const fresh = extra.path === path;
  const cursor = fresh && extra.items.length ? extra.cursor : (first.data?.next_cursor ?? null);
  const loadMore = () => {
    if (!path || !cursor) return;
    const separator = path.includes("?") ? "&" : "?";
    api<Page<T>>("GET", `${path}${separator}cursor=${encodeURIComponent(cursor)}`).then(
      (page) => setExtra({ path, items: [...(fresh ? extra.items : []), ...page.data], cursor: page.next_cursor }),
      (error: ApiFailure) => setExtra({ ...extra, path, error }),
    );
  };
  return {
    items: first.data ? [...first.data.data, ...(fresh ? extra.items : [])] : undefined,
    error: first.error ?? (fresh ? extra.error : undefined),
    more: cursor !== null,
    loadMore,
    reload: () => {
      setExtra({ path, items: [], cursor: null });
      first.reload();
    },
  };
}
