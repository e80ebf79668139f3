import { inject } from "vitest";
import { describe, expect, it } from "vitest";

describe("toolchain", () => {
  it("runs the test tooling on Node 22 or newer (npm scripts use the pinned Node 24)", () => {
    const version = inject("hostNodeVersion");
    const major = Number(/^v(\d+)\./.exec(version)?.[1]);
    expect(major, `tests ran on Node ${version}; run them through npm (npm test) so the pinned Node is used`).toBeGreaterThanOrEqual(22);
  });
});
