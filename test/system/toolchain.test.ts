import { describe, expect, it } from "vitest";

describe("toolchain (node project)", () => {
  it("runs Node-side tests on Node 22 or newer (npm scripts use the pinned Node 24)", () => {
    const major = Number(/^v(\d+)\./.exec(process.version)?.[1]);
    expect(major, `tests ran on Node ${process.version}; run them through npm (npm test) so the pinned Node is used`).toBeGreaterThanOrEqual(22);
  });
});
