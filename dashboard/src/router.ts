import { useEffect, useState } from "hono/jsx/dom";

// History-based navigation: links to dashboard pages are ordinary <a href> elements; a click on one is turned into a
// pushState, so every page has a real address (reload, new tab, back and forward all work).

const NAVIGATED = "stagely:navigated";

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  if (options.replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  window.dispatchEvent(new Event(NAVIGATED));
  window.scrollTo(0, 0);
}

/** The current address; the component re-renders when it changes. */
export function useLocation(): URL {
  const [href, setHref] = useState(location.href);
  useEffect(() => {
    const update = () => setHref(location.href);
    window.addEventListener("popstate", update);
    window.addEventListener(NAVIGATED, update);
    return () => {
      window.removeEventListener("popstate", update);
      window.removeEventListener(NAVIGATED, update);
    };
  }, []);
  return new URL(href);
}

/** Plain left clicks on links to dashboard pages stay in the app; API links (/v1: sign-in) and downloads do not. */
export function interceptLinks(): void {
  document.addEventListener("click", (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const link = (event.target as Element | null)?.closest?.("a");
    if (!link || link.target || link.hasAttribute("download") || link.origin !== location.origin) return;
    if (link.pathname.startsWith("/v1/") || link.pathname === "/docs") return;
    event.preventDefault();
    navigate(link.pathname + link.search);
  });
}
