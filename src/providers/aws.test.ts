import { describe, expect, it } from "vitest";
import { expectedUbuntuImage } from "../../test/fakes/aws.ts";
import { fakeUrl } from "../../test/fakes/urls.ts";
import { providerFromRow } from "./factory.ts";
import type { HttpOptions } from "./http.ts";
import { fakeAdmin, injectFailure, inTests, providerRow, recordedRequests, testKeyring, testSpec } from "./testing.ts";

interface FakeInstance {
  instance_id: string;
  region: string;
  state: string;
  image_id: string;
  instance_type: string;
  client_token: string;
  spot: boolean;
  root_volume_gb: number;
  metadata_options: { http_tokens: string; http_put_response_hop_limit: number; http_endpoint: string };
  tags: Record<string, string>;
  user_data: string;
}

async function setup(options: { account?: Record<string, unknown>; config?: Record<string, unknown>; region?: string; http?: HttpOptions } = {}) {
  const account = await fakeAdmin<{ access_key_id: string; secret_access_key: string }>("aws", "accounts", options.account ?? {});
  const row = await providerRow("aws", account, { region: options.region ?? "us-east-1", config: { endpoint: fakeUrl("aws"), ...options.config } });
  const provider = await providerFromRow(row, await testKeyring(), { ...options.http, ...inTests });
  const key = account.access_key_id;
  return {
    provider,
    account,
    requests: async (action?: string) => (await recordedRequests("aws", key)).filter((r) => !action || r.operation === action),
    instances: async () => (await fakeAdmin<{ instances: FakeInstance[] }>("aws", `accounts/${key}/instances`)).instances,
    fail: (failure: Parameters<typeof injectFailure>[2]) => injectFailure("aws", key, failure),
  };
}

describe("AWS: createInstance", () => {
  it("launches one tagged instance from the newest Canonical Ubuntu image, with the user data base64-encoded", async () => {
    const { provider, requests, instances } = await setup();
    const spec = testSpec({ tags: { agent_id: "agt_aws0000000000001", environment_id: "env_aws0000000000001" }, idempotencyKey: "agt_aws0000000000001" });
    const instance = await provider.createInstance(spec);

    expect(instance).toMatchObject({ state: "pending", region: "us-east-1", instanceType: "t3.small", publicIp: null });
    expect(instance.id).toMatch(/^i-[0-9a-f]{17}$/);
    expect(instance.tags).toEqual({ agent_id: "agt_aws0000000000001", environment_id: "env_aws0000000000001" });
    const [launched] = await instances();
    expect(launched).toMatchObject({ instance_id: instance.id, image_id: expectedUbuntuImage("us-east-1", "amd64"), user_data: spec.userData, root_volume_gb: 40 });
    expect(launched!.tags).toEqual({ "stagely:managed": "true", "stagely:agent": "agt_aws0000000000001", "stagely:environment": "env_aws0000000000001" });

    const [run] = await requests("RunInstances");
    expect(run!.body).toMatchObject({
      MinCount: "1",
      MaxCount: "1",
      InstanceType: "t3.small",
      "TagSpecification.2.ResourceType": "volume",
      "TagSpecification.2.Tag.1.Key": "stagely:managed",
      "BlockDeviceMapping.1.DeviceName": "/dev/sda1",
    });
    expect(run!.body.ClientToken).toMatch(/^stagely-[0-9a-f]{56}$/);
    expect(atob(run!.body.UserData!)).toBe(spec.userData);
    const [images] = await requests("DescribeImages");
    expect(images!.body).toMatchObject({ "Owner.1": "099720109477", "Filter.1.Value.1": "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*" });
  });

  it("requires IMDSv2 with a hop limit of 1, so containers cannot read the user data (and its agent token)", async () => {
    const { provider, instances } = await setup();
    await provider.createInstance(testSpec({ idempotencyKey: "agt_aws00000000imds" }));
    const [launched] = await instances();
    expect(launched!.metadata_options).toEqual({ http_tokens: "required", http_put_response_hop_limit: 1, http_endpoint: "enabled" });
  });

  it("picks an arm64 image and a Graviton type for arm64 (the fake refuses mismatched architectures)", async () => {
    const { provider, instances } = await setup({ region: "eu-west-1" });
    const instance = await provider.createInstance(testSpec({ architecture: "arm64", size: "medium", region: "eu-west-1" }));
    expect(instance.instanceType).toBe("c6g.xlarge");
    expect((await instances())[0]).toMatchObject({ image_id: expectedUbuntuImage("eu-west-1", "arm64"), region: "eu-west-1" });
  });

  it("makes DescribeImages + RunInstances for a first create and only RunInstances once the image is known", async () => {
    const { provider, requests } = await setup({ region: "eu-north-1" });
    await provider.createInstance(testSpec({ region: "eu-north-1" }));
    await provider.createInstance(testSpec({ region: "eu-north-1" }));
    expect((await requests()).map((r) => r.operation)).toEqual(["DescribeImages", "RunInstances", "RunInstances"]);
  });

  it("uses a configured AMI and size overrides, and launches spot instances when asked", async () => {
    const ami = expectedUbuntuImage("us-east-2", "amd64");
    const { provider, requests, instances } = await setup({
      region: "us-east-2",
      config: { images: { "us-east-2": { amd64: ami } }, sizes: { amd64: { large: "m6i.2xlarge" } }, spot: true, root_volume_gb: 100 },
    });
    const instance = await provider.createInstance(testSpec({ size: "large", region: "us-east-2" }));
    expect(instance.instanceType).toBe("m6i.2xlarge");
    expect((await requests()).map((r) => r.operation)).toEqual(["RunInstances"]);
    expect((await instances())[0]).toMatchObject({ image_id: ami, spot: true, root_volume_gb: 100 });
  });

  it("returns the first attempt's instance when a create is retried with the same idempotency key", async () => {
    const { provider, requests, instances } = await setup();
    const spec = testSpec();
    const first = await provider.createInstance(spec);
    const second = await provider.createInstance(spec);
    expect(second.id).toBe(first.id);
    expect(await instances()).toHaveLength(1);
    const tokens = (await requests("RunInstances")).map((r) => r.body.ClientToken);
    expect(tokens).toHaveLength(2);
    expect(tokens[1]).toBe(tokens[0]);
  });

  it("makes one VM when the answer to a create was lost and the create is retried", async () => {
    const { provider, fail, instances } = await setup();
    const spec = testSpec();
    await fail({ match: "RunInstances", mode: "drop_response" });
    await expect(provider.createInstance(spec)).rejects.toMatchObject({ kind: "transient" });
    const retried = await provider.createInstance(spec);
    const launched = await instances();
    expect(launched).toHaveLength(1);
    expect(retried.id).toBe(launched[0]!.instance_id);
  });

  it("finds the first instance by its client token when a retry's parameters differ", async () => {
    const { provider, requests, instances } = await setup();
    const spec = testSpec();
    const first = await provider.createInstance(spec);
    const retried = await provider.createInstance({ ...spec, size: "medium" });
    expect(retried.id).toBe(first.id);
    expect(await instances()).toHaveLength(1);
    expect((await requests("DescribeInstances")).at(-1)!.body).toMatchObject({ "Filter.1.Name": "client-token" });
  });

  it("refuses bad specs before calling AWS", async () => {
    const { provider, requests } = await setup();
    await expect(provider.createInstance(testSpec({ region: "us-east-1.evil.example" }))).rejects.toMatchObject({ kind: "unsupported" });
    await expect(provider.createInstance(testSpec({ userData: "x".repeat(16 * 1024 + 1) }))).rejects.toMatchObject({ kind: "unsupported" });
    await expect(provider.createInstance(testSpec({ tags: { agent_id: "agt bad/id" } }))).rejects.toMatchObject({ kind: "unsupported" });
    expect(await requests()).toEqual([]);
  });
});

describe("AWS: getInstance, terminateInstance", () => {
  it("reports the running state and public address once the instance has booted", async () => {
    const { provider } = await setup();
    const created = await provider.createInstance(testSpec());
    const instance = await provider.getInstance(created.id);
    expect(instance).toMatchObject({ id: created.id, state: "running", instanceType: "t3.small" });
    expect(instance.publicIp).toMatch(/^203\.0\.113\.\d+$/);
    expect(instance.privateIp).toMatch(/^172\.31\./);
  });

  it("answers not_found for an unknown id, and for a malformed one without calling AWS", async () => {
    const { provider, requests } = await setup();
    await expect(provider.getInstance("i-0123456789abcdef0")).rejects.toMatchObject({ kind: "not_found", code: "InvalidInstanceID.NotFound" });
    const before = (await requests()).length;
    await expect(provider.getInstance("../../etc")).rejects.toMatchObject({ kind: "not_found" });
    expect(await requests()).toHaveLength(before);
  });

  it("looks in the instance's own region when told, the row's region otherwise", async () => {
    const { provider } = await setup({ region: "us-east-1" });
    const created = await provider.createInstance(testSpec({ region: "eu-central-1" }));
    await expect(provider.getInstance(created.id)).rejects.toMatchObject({ kind: "not_found" });
    expect((await provider.getInstance(created.id, "eu-central-1")).id).toBe(created.id);
  });

  it("terminates idempotently: running, already terminated and unknown instances are all success", async () => {
    const { provider, requests } = await setup();
    const created = await provider.createInstance(testSpec());
    await provider.terminateInstance(created.id);
    expect((await provider.getInstance(created.id)).state).toMatch(/^terminat/);
    await provider.terminateInstance(created.id);
    await provider.terminateInstance("i-0123456789abcdef0");
    await provider.terminateInstance("not-an-instance-id");
    expect((await requests("TerminateInstances")).map((r) => r.body["InstanceId.1"])).toEqual([created.id, created.id, "i-0123456789abcdef0"]);
  });
});

describe("AWS: findInstances", () => {
  it("pages through every Stagely instance that is not terminated, and skips others", async () => {
    const { provider, account, requests } = await setup({ account: { page_size: 2 } });
    const environment_id = "env_awsfind00000001";
    const created = [];
    for (let i = 0; i < 5; i++) created.push(await provider.createInstance(testSpec({ tags: { agent_id: `agt_awsfind0000000${i}`, environment_id }, idempotencyKey: `k${i}` })));
    await provider.terminateInstance(created[4]!.id);
    await fakeAdmin("aws", `accounts/${account.access_key_id}/instances`, { region: "us-east-1", tags: { Name: "not ours" } });

    const found = await provider.findInstances();
    expect(found.map((i) => i.id).sort()).toEqual(created.slice(0, 4).map((i) => i.id).sort());
    expect(found.every((i) => i.tags.environment_id === environment_id)).toBe(true);
    const pages = await requests("DescribeInstances");
    expect(pages.length).toBeGreaterThanOrEqual(2);
    expect(pages[1]!.body.NextToken).toBeTruthy();

    expect((await provider.findInstances({ agent_id: "agt_awsfind00000002" })).map((i) => i.id)).toEqual([created[2]!.id]);
  });
});

describe("AWS: validateCredentials", () => {
  it("succeeds with working credentials and an enabled region", async () => {
    const { provider, requests } = await setup();
    await provider.validateCredentials();
    expect((await requests()).map((r) => r.operation)).toEqual(["DescribeRegions"]);
  });

  it("fails as invalid_credentials for a wrong secret, without showing it", async () => {
    const account = await fakeAdmin<{ access_key_id: string; secret_access_key: string }>("aws", "accounts", {});
    const wrong = { access_key_id: account.access_key_id, secret_access_key: "WrongSecretWrongSecretWrongSecret1234" };
    const row = await providerRow("aws", wrong, { region: "us-east-1", config: { endpoint: fakeUrl("aws") } });
    const provider = await providerFromRow(row, await testKeyring(), inTests);
    const error = await provider.validateCredentials().catch((e: unknown) => e);
    expect(error).toMatchObject({ kind: "invalid_credentials", code: "AuthFailure" });
    expect(String((error as Error).message)).not.toContain(wrong.secret_access_key);
  });

  it("fails as invalid_credentials when IAM does not allow the call, and unsupported for a disabled region", async () => {
    const denied = await setup({ account: { unauthorized_actions: ["DescribeRegions"] } });
    await expect(denied.provider.validateCredentials()).rejects.toMatchObject({ kind: "invalid_credentials", code: "UnauthorizedOperation" });
    const optIn = await setup({ region: "ap-east-1" });
    await expect(optIn.provider.validateCredentials()).rejects.toMatchObject({ kind: "unsupported" });
  });
});

describe("AWS: error classes", () => {
  it("classifies EC2 error codes", async () => {
    const { provider, fail } = await setup({ account: { instance_limit: 1 } });
    await provider.createInstance(testSpec({ region: "us-west-2" }));
    await expect(provider.createInstance(testSpec({ region: "us-west-2" }))).rejects.toMatchObject({ kind: "quota_exceeded", code: "InstanceLimitExceeded" });

    const cases = [
      { status: 500, code: "InsufficientInstanceCapacity", kind: "unsupported", retryable: false },
      { status: 503, code: "RequestLimitExceeded", kind: "rate_limited", retryable: true },
      { status: 500, code: "InternalError", kind: "transient", retryable: true },
      { status: 400, code: "InvalidParameterValue", kind: "unsupported", retryable: false },
      { status: 401, code: "AuthFailure", kind: "invalid_credentials", retryable: false },
    ];
    for (const c of cases) {
      await fail({ match: "DescribeInstances", status: c.status, code: c.code, message: "injected" });
      const error = await provider.findInstances().catch((e: unknown) => e);
      expect(error, c.code).toMatchObject({ name: "ProviderError", kind: c.kind, code: c.code, retryable: c.retryable });
      expect((error as Error).message).toContain(c.code);
    }
  });

  it("treats a dropped connection and a timeout as transient", async () => {
    const { provider, fail } = await setup({ http: { timeoutMs: 300 } });
    await fail({ match: "DescribeInstances", mode: "reset" });
    await expect(provider.findInstances()).rejects.toMatchObject({ kind: "transient" });
    await fail({ match: "DescribeInstances", mode: "hang" });
    await expect(provider.findInstances()).rejects.toMatchObject({ kind: "transient", message: expect.stringContaining("did not answer") });
  });

  it("treats a non-XML gateway error as transient", async () => {
    const provider = await providerFromRow(
      await providerRow("aws", { access_key_id: "AKIAFAKEFAKEFAKE0000", secret_access_key: "0123456789abcdef0123456789" }, { region: "us-east-1" }),
      await testKeyring(),
      { ...inTests, fetch: async () => new Response("<html><body>502 Bad Gateway</body>", { status: 502 }) },
    );
    await expect(provider.findInstances()).rejects.toMatchObject({ kind: "transient", message: expect.stringContaining("HTTP 502") });
  });
});
