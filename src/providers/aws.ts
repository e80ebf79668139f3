/**
 * AWS EC2 through the Query API (version 2016-11-15), signed with SigV4 by aws4fetch.
 *
 * Tags (key = value), on the instance and its volumes, set at launch: `stagely:managed = true`,
 * `stagely:agent = <agent id>`, `stagely:environment = <environment id>`, `stagely:job = <job id>`.
 *
 * Idempotent create: RunInstances carries a ClientToken derived from the spec's idempotency key, so EC2 answers a
 * retry with the instance of the first attempt. If the retry's parameters differ (a newer AMI was published in
 * between), EC2 says IdempotentParameterMismatch and we return the instance found by its client token.
 *
 * Image: `config.images[region][arch]`, else the newest Canonical (owner 099720109477) image whose name matches
 * `config.image_name` (default: Ubuntu 24.04 LTS, gp3) for the architecture, via DescribeImages (cached for 6 hours).
 */
import { AwsClient } from "aws4fetch";
import * as z from "zod";
import { bytesToBase64, sha256Hex } from "../lib/crypto.ts";
import type { Credentials } from "./credentials.ts";
import { isProviderError, ProviderError, type ProviderErrorKind } from "./errors.ts";
import { cloudHttp, endpointSchema, type HttpOptions } from "./http.ts";
import { machineTypeFor, sizeOverridesSchema } from "./sizes.ts";
import { checkFilter, checkRegion, checkSpec, readTags, tagPairs } from "./spec.ts";
import type { Architecture, CloudProvider, Instance, InstanceState } from "./types.ts";
import { child, items, parseXml, textOf, type XmlElement } from "./xml.ts";

const API_VERSION = "2016-11-15";
const CANONICAL_OWNER = "099720109477";
const MAX_USER_DATA_BYTES = 16 * 1024;
const IMAGE_CACHE_MS = 6 * 60 * 60 * 1000;
const LIVE_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"];

const amiId = z.string().regex(/^ami-[0-9a-f]{8,17}$/, "must be an AMI id (ami-…)");

export const awsConfigSchema = z.strictObject({
  /** Default: https://ec2.<region>.amazonaws.com */
  endpoint: endpointSchema.optional(),
  images: z.record(z.string(), z.strictObject({ amd64: amiId.optional(), arm64: amiId.optional() })).optional(),
  /** A DescribeImages name filter; `{arch}` becomes amd64 or arm64. */
  image_name: z
    .string()
    .regex(/^[\w./*{}-]{1,200}$/, "must be an image name pattern such as ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{arch}-server-*")
    .optional(),
  sizes: sizeOverridesSchema.optional(),
  /** Launch spot instances (one-time, terminated on interruption). */
  spot: z.boolean().optional(),
  subnet_id: z.string().regex(/^subnet-[0-9a-f]{8,17}$/, "must be a subnet id (subnet-…)").optional(),
  security_group_ids: z.array(z.string().regex(/^sg-[0-9a-f]{8,17}$/, "must be a security group id (sg-…)")).max(5).optional(),
  root_volume_gb: z.number().int().min(8).max(16384).optional(),
});
export type AwsConfig = z.infer<typeof awsConfigSchema>;

const DEFAULT_IMAGE_NAME = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{arch}-server-*";
const DEFAULT_ROOT_VOLUME_GB = 40;

/** Public images are the same for every account, so one cache serves all teams. */
const imageCache = new Map<string, { imageId: string; rootDevice: string; expires: number }>();

const errorKinds: Record<string, ProviderErrorKind> = {
  AuthFailure: "invalid_credentials",
  UnauthorizedOperation: "invalid_credentials",
  SignatureDoesNotMatch: "invalid_credentials",
  InvalidClientTokenId: "invalid_credentials",
  OptInRequired: "invalid_credentials",
  Blocked: "invalid_credentials",
  InstanceLimitExceeded: "quota_exceeded",
  VcpuLimitExceeded: "quota_exceeded",
  MaxSpotInstanceCountExceeded: "quota_exceeded",
  InsufficientInstanceCapacity: "unsupported",
  RequestLimitExceeded: "rate_limited",
  Throttling: "rate_limited",
  InternalError: "transient",
  InternalFailure: "transient",
  ServiceUnavailable: "transient",
  Unavailable: "transient",
  RequestExpired: "transient",
  "InvalidInstanceID.NotFound": "not_found",
  "InvalidInstanceID.Malformed": "not_found",
};

const states: Record<string, InstanceState> = {
  pending: "pending",
  running: "running",
  stopping: "stopped",
  stopped: "stopped",
  "shutting-down": "terminating",
  terminated: "terminated",
};

const instanceIdPattern = /^i-[0-9a-f]{8,17}$/;

export function createAwsProvider(options: {
  credentials: Credentials<"aws">;
  region: string;
  config: AwsConfig;
  http?: HttpOptions;
}): CloudProvider {
  const { credentials, config } = options;
  const defaultRegion = options.region;
  const http = cloudHttp("AWS EC2", options.http ?? {}, [credentials.secret_access_key]);
  const client = new AwsClient({
    accessKeyId: credentials.access_key_id,
    secretAccessKey: credentials.secret_access_key,
    service: "ec2",
    retries: 0,
  });
  const endpointFor = (region: string) => config.endpoint ?? `https://ec2.${region}.amazonaws.com`;

  async function call(action: string, params: Record<string, string>, region: string): Promise<XmlElement> {
    checkRegion(region);
    const body = new URLSearchParams({ Action: action, Version: API_VERSION, ...params }).toString();
    const request = await client.sign(`${endpointFor(region)}/`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
      body,
      aws: { region },
    });
    const response = await http.send(request);
    let root: XmlElement | undefined;
    try {
      root = parseXml(await response.text());
    } catch {
      // An unreadable body: judged by its status alone below.
    }
    if (response.ok && root) return root;
    const error = child(child(root, "Errors"), "Error");
    const code = textOf(error, "Code");
    const kind = (code ? errorKinds[code] : undefined) ?? (response.ok || response.status >= 500 ? "transient" : "unsupported");
    const detail = code ? `${code}: ${textOf(error, "Message") ?? "no message"}` : `HTTP ${response.status} without an EC2 answer`;
    throw new ProviderError(kind, `AWS EC2 ${action} in ${region} failed: ${http.safe(detail)}`, { code });
  }

  async function imageFor(region: string, architecture: Architecture): Promise<{ imageId: string; rootDevice: string }> {
    const configured = config.images?.[region]?.[architecture];
    // Canonical's Ubuntu images use /dev/sda1 for their root volume.
    if (configured) return { imageId: configured, rootDevice: "/dev/sda1" };
    const name = (config.image_name ?? DEFAULT_IMAGE_NAME).replaceAll("{arch}", architecture);
    const key = `${endpointFor(region)} ${region} ${name}`;
    const cached = imageCache.get(key);
    if (cached && cached.expires > Date.now()) return cached;
    const root = await call(
      "DescribeImages",
      {
        "Owner.1": CANONICAL_OWNER,
        "Filter.1.Name": "name",
        "Filter.1.Value.1": name,
        "Filter.2.Name": "architecture",
        "Filter.2.Value.1": architecture === "amd64" ? "x86_64" : "arm64",
        "Filter.3.Name": "state",
        "Filter.3.Value.1": "available",
      },
      region,
    );
    const newest = items(root, "imagesSet")
      .map((image) => ({ imageId: textOf(image, "imageId"), created: textOf(image, "creationDate") ?? "", rootDevice: textOf(image, "rootDeviceName") }))
      .filter((image) => image.imageId)
      .sort((a, b) => b.created.localeCompare(a.created))[0];
    if (!newest) {
      throw new ProviderError("unsupported", `AWS has no Canonical image named ${name} in ${region}; set config.images.${region}.${architecture}`);
    }
    const image = { imageId: newest.imageId!, rootDevice: newest.rootDevice ?? "/dev/sda1", expires: Date.now() + IMAGE_CACHE_MS };
    imageCache.set(key, image);
    return image;
  }

  function toInstance(item: XmlElement, region: string): Instance {
    const id = textOf(item, "instanceId");
    if (!id) throw new ProviderError("transient", "AWS EC2 sent an instance without an id");
    const tags = new Map(items(item, "tagSet").map((tag) => [textOf(tag, "key"), textOf(tag, "value")]));
    return {
      id,
      state: states[textOf(child(item, "instanceState"), "name") ?? ""] ?? "pending",
      publicIp: textOf(item, "ipAddress") ?? null,
      privateIp: textOf(item, "privateIpAddress") ?? null,
      region,
      instanceType: textOf(item, "instanceType") ?? "",
      tags: readTags((name) => tags.get(`stagely:${name}`)),
      createdAt: textOf(item, "launchTime") ?? null,
    };
  }

  /** DescribeInstances with filters, every page. */
  async function describe(filters: [string, string[]][], region: string): Promise<Instance[]> {
    const params: Record<string, string> = { MaxResults: "1000" };
    filters.forEach(([name, values], i) => {
      params[`Filter.${i + 1}.Name`] = name;
      values.forEach((value, j) => (params[`Filter.${i + 1}.Value.${j + 1}`] = value));
    });
    const found: Instance[] = [];
    for (let nextToken: string | undefined; ; ) {
      const root = await call("DescribeInstances", nextToken ? { ...params, NextToken: nextToken } : params, region);
      for (const reservation of items(root, "reservationSet")) {
        for (const item of items(reservation, "instancesSet")) found.push(toInstance(item, region));
      }
      nextToken = textOf(root, "nextToken");
      if (!nextToken) return found;
    }
  }

  return {
    type: "aws",

    async createInstance(spec) {
      checkSpec(spec, "AWS", MAX_USER_DATA_BYTES);
      const region = spec.region;
      const instanceType = machineTypeFor("aws", spec.size, spec.architecture, config.sizes);
      const image = await imageFor(region, spec.architecture);
      const clientToken = `stagely-${(await sha256Hex(spec.idempotencyKey)).slice(0, 56)}`;
      const params: Record<string, string> = {
        ImageId: image.imageId,
        InstanceType: instanceType,
        MinCount: "1",
        MaxCount: "1",
        ClientToken: clientToken,
        UserData: bytesToBase64(new TextEncoder().encode(spec.userData)),
        InstanceInitiatedShutdownBehavior: "terminate",
        "BlockDeviceMapping.1.DeviceName": image.rootDevice,
        "BlockDeviceMapping.1.Ebs.VolumeSize": String(config.root_volume_gb ?? DEFAULT_ROOT_VOLUME_GB),
        "BlockDeviceMapping.1.Ebs.VolumeType": "gp3",
        "BlockDeviceMapping.1.Ebs.DeleteOnTermination": "true",
        // IMDSv2 only, and its token cannot cross a second hop: containers on the VM cannot read the user data
        // (which holds the agent token) from the metadata service.
        "MetadataOptions.HttpEndpoint": "enabled",
        "MetadataOptions.HttpTokens": "required",
        "MetadataOptions.HttpPutResponseHopLimit": "1",
      };
      ["instance", "volume"].forEach((resourceType, i) => {
        params[`TagSpecification.${i + 1}.ResourceType`] = resourceType;
        tagPairs(spec.tags).forEach(([name, value], j) => {
          params[`TagSpecification.${i + 1}.Tag.${j + 1}.Key`] = `stagely:${name}`;
          params[`TagSpecification.${i + 1}.Tag.${j + 1}.Value`] = value;
        });
      });
      if (config.spot) {
        params["InstanceMarketOptions.MarketType"] = "spot";
        params["InstanceMarketOptions.SpotOptions.SpotInstanceType"] = "one-time";
        params["InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior"] = "terminate";
      }
      if (config.subnet_id) params.SubnetId = config.subnet_id;
      config.security_group_ids?.forEach((id, i) => (params[`SecurityGroupId.${i + 1}`] = id));

      try {
        const root = await call("RunInstances", params, region);
        const item = items(root, "instancesSet")[0];
        if (!item) throw new ProviderError("transient", "AWS EC2 RunInstances answered without an instance");
        return toInstance(item, region);
      } catch (error) {
        if (!(error instanceof ProviderError) || error.code !== "IdempotentParameterMismatch") throw error;
        const [first] = await describe([["client-token", [clientToken]]], region);
        if (!first) throw error;
        return first;
      }
    },

    async getInstance(id, region = defaultRegion) {
      const notFound = new ProviderError("not_found", `AWS EC2 has no instance ${id.slice(0, 40)} in ${region}`);
      if (!instanceIdPattern.test(id)) throw notFound;
      const root = await call("DescribeInstances", { "InstanceId.1": id }, region);
      const item = items(items(root, "reservationSet")[0], "instancesSet")[0];
      if (!item) throw notFound;
      return toInstance(item, region);
    },

    async terminateInstance(id, region = defaultRegion) {
      if (!instanceIdPattern.test(id)) return;
      try {
        await call("TerminateInstances", { "InstanceId.1": id }, region);
      } catch (error) {
        if (!isProviderError(error, "not_found")) throw error;
      }
    },

    async validateCredentials() {
      // Asked in us-east-1, which every account has, so a region that is not enabled is not mistaken for a bad key.
      const root = await call("DescribeRegions", { AllRegions: "true", "RegionName.1": defaultRegion }, "us-east-1");
      const region = items(root, "regionInfo").find((item) => textOf(item, "regionName") === defaultRegion);
      if (!region) throw new ProviderError("unsupported", `AWS has no region ${defaultRegion}`);
      if (textOf(region, "optInStatus") === "not-opted-in") {
        throw new ProviderError("unsupported", `AWS region ${defaultRegion} is not enabled for this account`);
      }
    },

    async findInstances(filter = {}, region = defaultRegion) {
      const tagFilters = tagPairs(checkFilter(filter)).map(([name, value]): [string, string[]] => [`tag:stagely:${name}`, [value]]);
      return describe([...tagFilters, ["instance-state-name", LIVE_STATES]], region);
    },
  };
}

const ecrAuthorizationData = z.object({
  authorizationData: z.array(z.object({ authorizationToken: z.string(), proxyEndpoint: z.string(), expiresAt: z.number().optional() })).min(1),
});

/**
 * Docker credentials for the account's ECR registry in `region`: GetAuthorizationToken (ECR's JSON API, signed with
 * SigV4 for service "ecr") returns base64 "AWS:<password>", valid 12 hours, and the registry's endpoint.
 */
export async function ecrAuthorization(options: {
  credentials: Credentials<"aws">;
  region: string;
  config: AwsConfig;
  http?: HttpOptions;
}): Promise<{ registry: string; username: string; password: string }> {
  checkRegion(options.region);
  const { credentials } = options;
  const http = cloudHttp("AWS ECR", options.http ?? {}, [credentials.secret_access_key]);
  const client = new AwsClient({ accessKeyId: credentials.access_key_id, secretAccessKey: credentials.secret_access_key, service: "ecr", retries: 0 });
  const endpoint = options.config.endpoint ?? `https://api.ecr.${options.region}.amazonaws.com`;
  const request = await client.sign(`${endpoint}/`, {
    method: "POST",
    headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken" },
    body: "{}",
    aws: { region: options.region },
  });
  const response = await http.send(request);
  const text = await response.text().catch(() => "");
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!response.ok) {
    const error = z.object({ __type: z.string().optional(), message: z.string().optional() }).safeParse(body).data ?? {};
    const code = error.__type?.split("#").pop();
    const kind: ProviderErrorKind =
      code === "AccessDeniedException" || code === "UnrecognizedClientException" || response.status === 401 || response.status === 403 ? "invalid_credentials" : response.status >= 500 ? "transient" : "unsupported";
    throw new ProviderError(kind, `AWS ECR GetAuthorizationToken in ${options.region} failed: ${http.safe(code ? `${code}: ${error.message ?? "no message"}` : `HTTP ${response.status}`)}`, { code });
  }
  const parsed = ecrAuthorizationData.safeParse(body);
  if (!parsed.success) throw new ProviderError("transient", "AWS ECR sent an unreadable GetAuthorizationToken answer");
  const data = parsed.data.authorizationData[0]!;
  const [username, ...rest] = new TextDecoder().decode(Uint8Array.from(atob(data.authorizationToken), (c) => c.charCodeAt(0))).split(":");
  return { registry: data.proxyEndpoint.replace(/^https?:\/\//, "").replace(/\/+$/, ""), username: username!, password: rest.join(":") };
}
