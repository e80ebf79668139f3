import { describe, expect, it } from "vitest";
import { pathWithoutShare, safeReturnPath, sessionCookieValues, withoutSessionCookie } from "./credentials.ts";
import { previewHostOf } from "./hosts.ts";

const config = { PREVIEW_DOMAIN: "preview.example.com", PUBLIC_URL: "https://stagely.example.com" };

describe("previewHostOf", () => {
  it("reads <hash> and <route>--<hash> hosts under the preview domain", () => {
    expect(previewHostOf("k3v9x2m1q8w7e5r4.preview.example.com", config)).toEqual({ hash: "k3v9x2m1q8w7e5r4", route: null });
    expect(previewHostOf("api--k3v9x2m1q8w7e5r4.preview.example.com", config)).toEqual({ hash: "k3v9x2m1q8w7e5r4", route: "api" });
    expect(previewHostOf("K3V9X2M1Q8W7E5R4.Preview.Example.Com.", config)).toEqual({ hash: "k3v9x2m1q8w7e5r4", route: null });
  });

  it("answers invalid for other names under the preview domain, and undefined (the API) for everything else", () => {
    for (const host of ["short.preview.example.com", "a.k3v9x2m1q8w7e5r4.preview.example.com", "-x--k3v9x2m1q8w7e5r4.preview.example.com", "--k3v9x2m1q8w7e5r4.preview.example.com"]) {
      expect(previewHostOf(host, config), host).toBe("invalid");
    }
    for (const host of ["stagely.example.com", "preview.example.com", "k3v9x2m1q8w7e5r4.example.com", "evilpreview.example.com"]) {
      expect(previewHostOf(host, config), host).toBeUndefined();
    }
    expect(previewHostOf("stagely.preview.example.com", { ...config, PUBLIC_URL: "https://stagely.preview.example.com" })).toBeUndefined();
  });
});

describe("credentials", () => {
  it("finds every Stagely session cookie, and removes them leaving the app's cookies as sent", () => {
    const header = "a=1; __Host-stagely_preview=aa; b=x=y; stagely_preview=bb;c";
    expect(sessionCookieValues(header)).toEqual(["aa", "bb"]);
    expect(withoutSessionCookie(header)).toBe("a=1; b=x=y; c");
    expect(withoutSessionCookie("__Host-stagely_preview=aa")).toBeNull();
    expect(sessionCookieValues(undefined)).toEqual([]);
  });

  it("removes only the share parameter from a query", () => {
    const path = (url: string) => pathWithoutShare(new URL(url));
    expect(path("https://h/p?a=1&stagely_share=t&b=%20x+y")).toBe("/p?a=1&b=%20x+y");
    expect(path("https://h/p?stagely_share=t")).toBe("/p");
    expect(path("https://h/p?stagely%5Fshare=t&x=%zz")).toBe("/p?x=%zz");
  });

  it("sends visitors back only to a path of the same origin", () => {
    expect(safeReturnPath("/a?b=1")).toBe("/a?b=1");
    for (const bad of ["//evil.example/x", "/\\evil.example", "https://evil.example", "", null, "/" + "x".repeat(3000)]) expect(safeReturnPath(bad)).toBe("/");
  });
});
