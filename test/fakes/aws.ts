import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { commonAdmin, headersOf, jsonReply, parseJson, serve, writeReply, type CloudAccount, type Reply } from "./cloud-accounts.ts";
import { listen, readBody } from "../../scripts/local-github/http.ts";
import type { FakeService } from "./index.ts";

/**
 * AWS EC2's Query API (version 2016-11-15) for RunInstances, DescribeInstances, TerminateInstances, DescribeImages
 * and DescribeRegions. Every request must carry a valid SigV4 signature (verifySigV4, checked against AWS's published
 * test vectors in aws.test.ts) for an account created through the admin API; answers are EC2's XML documents and
 * error codes. Each region has Canonical Ubuntu images (and a look-alike from another owner).
 *
 * Admin (besides test/fakes/cloud-accounts.ts):
 *   POST /_fake/accounts {instance_limit?, page_size?, boot_ms?, unauthorized_actions?} → {access_key_id, secret_access_key}
 *   GET  /_fake/accounts/<key>/instances  every instance ever launched, with decoded user data
 *   POST /_fake/accounts/<key>/instances {region, tags}  a running instance launched outside Stagely → {instance_id}
 */

// ---- SigV4 ----------------------------------------------------------------------------------------------------

export interface SignedRequest {
  method: string;
  /** As sent: path and query, percent-encoded. */
  path: string;
  /** Lowercase names; repeated headers joined with ",". */
  headers: Record<string, string>;
  body: string;
}

export type Verification =
  | { ok: true; accessKeyId: string; region: string; service: string; canonicalRequest: string }
  | { ok: false; code: "AuthFailure" | "RequestExpired"; message: string };

const CLOCK_SKEW_MS = 5 * 60 * 1000;
const sha256 = (data: string) => createHash("sha256").update(data, "utf8").digest("hex");
const hmac = (key: string | Buffer, data: string) => createHmac("sha256", key).update(data, "utf8").digest();
const uriEncode = (text: string) => encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const formDecode = (text: string) => {
  try {
    return decodeURIComponent(text.replace(/\+/g, " "));
  } catch {
    return text;
  }
};

function splitOnce(text: string, separator: string): [string, string] {
  const at = text.indexOf(separator);
  return at === -1 ? [text, ""] : [text.slice(0, at), text.slice(at + 1)];
}

/**
 * Checks an AWS Signature Version 4 Authorization header the way AWS does: recomputes the canonical request from
 * what arrived (method, path encoded once more as for every service but S3, sorted query, the signed headers, the
 * body's SHA-256), the string to sign and the derived key, and compares signatures.
 */
export function verifySigV4(request: SignedRequest, secretOf: (accessKeyId: string) => string | undefined, now: Date): Verification {
  const deny = (message: string): Verification => ({ ok: false, code: "AuthFailure", message });
  const unknownKey = "AWS was not able to validate the provided access credentials";
  const header = /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([a-z0-9-]+)\/([a-z0-9-]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/.exec(
    request.headers.authorization ?? "",
  );
  if (!header) return deny("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' for AWS4-HMAC-SHA256.");
  const [, accessKeyId, date, region, service, signedHeaders, signature] = header as unknown as string[];
  const amzDate = request.headers["x-amz-date"] ?? "";
  const stamp = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!stamp) return deny("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
  if (amzDate.slice(0, 8) !== date) return deny(`Credential should be scoped to a valid date, not ${date}.`);
  const names = signedHeaders!.split(";");
  if (!names.includes("host") || !names.includes("x-amz-date")) return deny("Signed headers must include host and x-amz-date.");
  if (names.some((name) => request.headers[name] === undefined)) return deny("A signed header is missing from the request.");
  const [, y, mo, d, h, mi, s] = stamp.map(Number) as number[];
  if (Math.abs(now.getTime() - Date.UTC(y!, mo! - 1, d!, h!, mi!, s!)) > CLOCK_SKEW_MS) {
    return { ok: false, code: "RequestExpired", message: "Request has expired." };
  }
  const secret = secretOf(accessKeyId!);
  if (secret === undefined) return deny(unknownKey);

  const [rawPath, rawQuery] = splitOnce(request.path, "?");
  const canonicalUri = rawPath.split("/").map(uriEncode).join("/") || "/";
  const canonicalQuery = rawQuery
    .split("&")
    .filter(Boolean)
    .map((pair) => splitOnce(pair, "=").map((part) => uriEncode(formDecode(part))))
    .sort(([k1, v1], [k2, v2]) => (k1! < k2! ? -1 : k1! > k2! ? 1 : v1! < v2! ? -1 : v1! > v2! ? 1 : 0))
    .map((pair) => pair.join("="))
    .join("&");
  const canonicalHeaders = names.map((name) => `${name}:${request.headers[name]!.trim().replace(/\s+/g, " ")}\n`).join("");
  const payloadHash = request.headers["x-amz-content-sha256"] ?? sha256(request.body);
  const canonicalRequest = [request.method, canonicalUri, canonicalQuery, canonicalHeaders, signedHeaders, payloadHash].join("\n");
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonicalRequest)].join("\n");
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${secret}`, date!), region!), service!), "aws4_request");
  const expected = createHmac("sha256", signingKey).update(stringToSign, "utf8").digest("hex");
  if (!timingSafeEqual(Buffer.from(expected), Buffer.from(signature!))) return deny(unknownKey);
  return { ok: true, accessKeyId: accessKeyId!, region: region!, service: service!, canonicalRequest };
}

// ---- EC2 --------------------------------------------------------------------------------------------------------

const NAMESPACE = "http://ec2.amazonaws.com/doc/2016-11-15/";
const CANONICAL_OWNER = "099720109477";
const AWS_REGIONS = ["us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "eu-north-1", "ap-southeast-2", "ap-east-1"];
/** Regions an account must opt in to; the fake's accounts never have. */
const OPT_IN_REGIONS = new Set(["ap-east-1"]);

interface Image {
  imageId: string;
  name: string;
  ownerId: string;
  architecture: "x86_64" | "arm64";
  creationDate: string;
}

type Ec2State = "pending" | "running" | "shutting-down" | "terminated";
const stateCodes: Record<Ec2State, number> = { pending: 0, running: 16, "shutting-down": 32, terminated: 48 };

interface Ec2Instance {
  instanceId: string;
  reservationId: string;
  region: string;
  imageId: string;
  instanceType: string;
  architecture: string;
  state: Ec2State;
  changedAt: number;
  launchTime: string;
  privateIp: string;
  publicIp: string | undefined;
  clientToken: string;
  tags: [string, string][];
  userData: string;
  spot: boolean;
  rootDevice: { name: string; sizeGb: number };
  /** The instance metadata service's options (IMDS): AWS's defaults unless RunInstances set MetadataOptions. */
  metadata: { httpTokens: "optional" | "required"; hopLimit: number; httpEndpoint: "enabled" | "disabled" };
}

interface AwsAccount extends CloudAccount {
  accessKeyId: string;
  secretAccessKey: string;
  ownerId: string;
  instances: Map<string, Ec2Instance>;
  clientTokens: Map<string, { instanceId: string; fingerprint: string }>;
  instanceLimit: number;
  pageSize: number;
  bootMs: number;
  unauthorizedActions: Set<string>;
}

class Ec2Error extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const hex = (bytes: number) => randomBytes(bytes).toString("hex");
const escapeXml = (text: string) =>
  text.replace(/[<>&'"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&apos;", '"': "&quot;" })[c]!);

type XmlValue = string | number | boolean | undefined | XmlValue[] | { [name: string]: XmlValue };

/** Objects become elements, arrays become EC2's `<item>` lists. */
function toXml(value: XmlValue): string {
  if (value === undefined) return "";
  if (Array.isArray(value)) return value.map((item) => `<item>${toXml(item)}</item>`).join("");
  if (typeof value === "object") {
    return Object.entries(value)
      .filter(([, inner]) => inner !== undefined)
      .map(([name, inner]) => `<${name}>${toXml(inner)}</${name}>`)
      .join("");
  }
  return escapeXml(String(value));
}

function ec2Reply(action: string, content: Record<string, XmlValue>): Reply {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${NAMESPACE}">${toXml({ requestId: randomUUID(), ...content })}</${action}Response>`;
  return { status: 200, body, headers: { "content-type": "text/xml;charset=UTF-8" } };
}

function errorReply(status: number, code: string, message: string, headers: Record<string, string> = {}): Reply {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Response>${toXml({ Errors: { Error: { Code: code, Message: message } }, RequestID: randomUUID() })}</Response>`;
  return { status, body, headers: { "content-type": "text/xml;charset=UTF-8", ...headers } };
}

function imagesIn(region: string): Image[] {
  const images: Omit<Image, "imageId">[] = [];
  for (const [arch, architecture] of [["amd64", "x86_64"], ["arm64", "arm64"]] as const) {
    const noble = `ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-${arch}-server`;
    images.push(
      { name: `${noble}-20250115`, ownerId: CANONICAL_OWNER, architecture, creationDate: "2025-01-15T08:00:00.000Z" },
      { name: `${noble}-20250610`, ownerId: CANONICAL_OWNER, architecture, creationDate: "2025-06-10T08:00:00.000Z" },
      { name: `ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-${arch}-server-20250701`, ownerId: CANONICAL_OWNER, architecture, creationDate: "2025-07-01T08:00:00.000Z" },
      // A newer look-alike from someone else: only an Owner filter keeps a client from launching it.
      { name: `${noble}-20991231`, ownerId: "123456789012", architecture, creationDate: "2099-12-31T08:00:00.000Z" },
    );
  }
  return images.map((image) => ({ ...image, imageId: `ami-${sha256(`${region}/${image.ownerId}/${image.name}`).slice(0, 17)}` }));
}

/** The canonical Ubuntu 24.04 image a correct client picks (tests compare with it). */
export function expectedUbuntuImage(region: string, architecture: "amd64" | "arm64"): string {
  return imagesIn(region).find((i) => i.ownerId === CANONICAL_OWNER && i.name.endsWith(`noble-24.04-${architecture}-server-20250610`))!.imageId;
}

const instanceTypePattern = /^([a-z][a-z0-9-]*)\.(nano|micro|small|medium|large|\d*xlarge|metal)$/;
const isArmFamily = (family: string) => family === "a1" || /^[a-z]+\d+g[a-z]*$/.test(family);

/** `Prefix.1`, `Prefix.2`, … in order. */
function indexed(params: Record<string, string>, prefix: string): string[] {
  const values: string[] = [];
  for (let i = 1; params[`${prefix}.${i}`] !== undefined; i++) values.push(params[`${prefix}.${i}`]!);
  return values;
}

function filtersOf(params: Record<string, string>): [string, string[]][] {
  const filters: [string, string[]][] = [];
  for (let i = 1; params[`Filter.${i}.Name`] !== undefined; i++) filters.push([params[`Filter.${i}.Name`]!, indexed(params, `Filter.${i}.Value`)]);
  return filters;
}

const glob = (pattern: string) => new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);

function required(params: Record<string, string>, name: string): string {
  const value = params[name];
  if (value === undefined || value === "") throw new Ec2Error(400, "MissingParameter", `The request must contain the parameter ${name}`);
  return value;
}

function refresh(instance: Ec2Instance, bootMs: number): Ec2Instance {
  if (Date.now() - instance.changedAt < bootMs) return instance;
  if (instance.state === "pending") {
    instance.state = "running";
    instance.publicIp = `203.0.113.${1 + (Number.parseInt(instance.instanceId.slice(2, 6), 16) % 254)}`;
    instance.changedAt = Date.now();
  } else if (instance.state === "shutting-down") {
    instance.state = "terminated";
    instance.publicIp = undefined;
  }
  return instance;
}

function instanceXml(i: Ec2Instance): Record<string, XmlValue> {
  const dashed = (ip: string) => ip.replaceAll(".", "-");
  return {
    instanceId: i.instanceId,
    imageId: i.imageId,
    instanceState: { code: stateCodes[i.state], name: i.state },
    privateDnsName: `ip-${dashed(i.privateIp)}.${i.region}.compute.internal`,
    dnsName: i.publicIp ? `ec2-${dashed(i.publicIp)}.${i.region}.compute.amazonaws.com` : "",
    reason: "",
    amiLaunchIndex: 0,
    productCodes: [],
    instanceType: i.instanceType,
    launchTime: i.launchTime,
    placement: { availabilityZone: `${i.region}a`, groupName: "", tenancy: "default" },
    monitoring: { state: "disabled" },
    subnetId: "subnet-0123456789abcdef0",
    vpcId: "vpc-0123456789abcdef0",
    privateIpAddress: i.privateIp,
    ipAddress: i.publicIp,
    sourceDestCheck: true,
    groupSet: [{ groupId: "sg-0123456789abcdef0", groupName: "default" }],
    architecture: i.architecture,
    rootDeviceType: "ebs",
    rootDeviceName: i.rootDevice.name,
    blockDeviceMapping: [{ deviceName: i.rootDevice.name, ebs: { volumeId: `vol-${i.instanceId.slice(2)}`, status: "attached", attachTime: i.launchTime, deleteOnTermination: true } }],
    instanceLifecycle: i.spot ? "spot" : undefined,
    virtualizationType: "hvm",
    clientToken: i.clientToken,
    tagSet: i.tags.length ? i.tags.map(([key, value]) => ({ key, value })) : undefined,
    hypervisor: "xen",
    ebsOptimized: false,
    enaSupport: true,
    metadataOptions: { state: "applied", httpTokens: i.metadata.httpTokens, httpPutResponseHopLimit: i.metadata.hopLimit, httpEndpoint: i.metadata.httpEndpoint },
  };
}

/** RunInstances' MetadataOptions.*, checked as EC2 checks them. */
function metadataOptions(params: Record<string, string>): Ec2Instance["metadata"] {
  const tokens = params["MetadataOptions.HttpTokens"] ?? "optional";
  const endpoint = params["MetadataOptions.HttpEndpoint"] ?? "enabled";
  const hopLimit = Number(params["MetadataOptions.HttpPutResponseHopLimit"] ?? "1");
  if (tokens !== "optional" && tokens !== "required") throw new Ec2Error(400, "InvalidParameterValue", `Value (${tokens}) for parameter HttpTokens is invalid. Valid values: optional, required`);
  if (endpoint !== "enabled" && endpoint !== "disabled") throw new Ec2Error(400, "InvalidParameterValue", `Value (${endpoint}) for parameter HttpEndpoint is invalid.`);
  if (!Number.isInteger(hopLimit) || hopLimit < 1 || hopLimit > 64) throw new Ec2Error(400, "InvalidParameterValue", "The HttpPutResponseHopLimit must be an integer from 1 to 64.");
  return { httpTokens: tokens, hopLimit, httpEndpoint: endpoint };
}

function lookUp(account: AwsAccount, region: string, ids: string[]): Ec2Instance[] {
  return ids.map((id) => {
    if (!/^i-[0-9a-f]{8,17}$/.test(id)) throw new Ec2Error(400, "InvalidInstanceID.Malformed", `Invalid id: "${id}"`);
    const instance = account.instances.get(id);
    if (!instance || instance.region !== region) throw new Ec2Error(400, "InvalidInstanceID.NotFound", `The instance ID '${id}' does not exist`);
    return refresh(instance, account.bootMs);
  });
}

function runInstances(account: AwsAccount, region: string, params: Record<string, string>): Reply {
  const imageId = required(params, "ImageId");
  const instanceType = required(params, "InstanceType");
  if (required(params, "MinCount") !== "1" || required(params, "MaxCount") !== "1") {
    throw new Ec2Error(400, "InvalidParameterValue", "This fake launches exactly one instance per request (MinCount = MaxCount = 1).");
  }
  const clientToken = params.ClientToken ?? "";
  if (clientToken.length > 64 || !/^[\x20-\x7e]*$/.test(clientToken)) throw new Ec2Error(400, "InvalidParameterValue", "Idempotency token must be 64 ASCII characters or less.");
  const fingerprint = JSON.stringify(Object.entries(params).filter(([name]) => !["ClientToken", "Action", "Version"].includes(name)).sort());
  const previous = clientToken ? account.clientTokens.get(clientToken) : undefined;
  if (previous) {
    if (previous.fingerprint !== fingerprint) {
      throw new Ec2Error(400, "IdempotentParameterMismatch", "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).");
    }
    return reservationReply(account, refresh(account.instances.get(previous.instanceId)!, account.bootMs));
  }

  const image = imagesIn(region).find((i) => i.imageId === imageId);
  if (!image) throw new Ec2Error(400, "InvalidAMIID.NotFound", `The image id '[${imageId}]' does not exist`);
  const typeMatch = instanceTypePattern.exec(instanceType);
  if (!typeMatch) throw new Ec2Error(400, "InvalidParameterValue", `Invalid value '${instanceType}' for InstanceType.`);
  const typeArchitecture = isArmFamily(typeMatch[1]!) ? "arm64" : "x86_64";
  if (typeArchitecture !== image.architecture) {
    throw new Ec2Error(
      400,
      "InvalidParameterValue",
      `The architecture '${typeArchitecture}' of the specified instance type does not match the architecture '${image.architecture}' of the specified AMI. Specify an instance type and an AMI that have matching architectures, and try again.`,
    );
  }
  const encodedUserData = params.UserData ?? "";
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(encodedUserData) || encodedUserData.length % 4 !== 0) {
    throw new Ec2Error(400, "InvalidParameterValue", "Invalid BASE64 encoding of user data.");
  }
  const userData = Buffer.from(encodedUserData, "base64");
  if (userData.length > 16384) throw new Ec2Error(400, "InvalidParameterValue", "User data is limited to 16384 bytes");

  let tags: [string, string][] = [];
  for (let i = 1; params[`TagSpecification.${i}.ResourceType`] !== undefined; i++) {
    const resourceType = params[`TagSpecification.${i}.ResourceType`]!;
    if (!["instance", "volume", "network-interface", "spot-instances-request"].includes(resourceType)) {
      throw new Ec2Error(400, "InvalidParameterValue", `'${resourceType}' is not a valid taggable resource type for this operation.`);
    }
    const pairs: [string, string][] = [];
    for (let j = 1; params[`TagSpecification.${i}.Tag.${j}.Key`] !== undefined; j++) {
      const key = params[`TagSpecification.${i}.Tag.${j}.Key`]!;
      const value = params[`TagSpecification.${i}.Tag.${j}.Value`] ?? "";
      if (!key || key.length > 128 || value.length > 256 || key.toLowerCase().startsWith("aws:")) {
        throw new Ec2Error(400, "InvalidParameterValue", `Tag key '${key}' or its value is not valid.`);
      }
      pairs.push([key, value]);
    }
    if (resourceType === "instance") tags = pairs;
  }
  const device = params["BlockDeviceMapping.1.DeviceName"];
  const sizeGb = Number(params["BlockDeviceMapping.1.Ebs.VolumeSize"] ?? 8);
  if (device !== undefined && device !== "/dev/sda1") throw new Ec2Error(400, "InvalidBlockDeviceMapping", `The device '${device}' is not the root device of ${imageId}.`);
  if (!Number.isInteger(sizeGb) || sizeGb < 8 || sizeGb > 16384) throw new Ec2Error(400, "InvalidParameterValue", "Volume size must be 8 to 16384 GiB for this image.");
  if (params.SubnetId !== undefined && !/^subnet-[0-9a-f]{8,17}$/.test(params.SubnetId)) throw new Ec2Error(400, "InvalidSubnetID.NotFound", `The subnet ID '${params.SubnetId}' does not exist`);

  const live = [...account.instances.values()].filter((i) => refresh(i, account.bootMs).state !== "terminated").length;
  if (live >= account.instanceLimit) {
    throw new Ec2Error(
      400,
      "InstanceLimitExceeded",
      `You have requested more instances (${live + 1}) than your current instance limit of ${account.instanceLimit} allows for the specified instance type. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit.`,
    );
  }

  const instance: Ec2Instance = {
    instanceId: `i-${hex(9).slice(0, 17)}`,
    reservationId: `r-${hex(9).slice(0, 17)}`,
    region,
    imageId,
    instanceType,
    architecture: image.architecture,
    state: "pending",
    changedAt: Date.now(),
    launchTime: new Date().toISOString(),
    privateIp: `172.31.${randomBytes(1)[0]}.${1 + (randomBytes(1)[0]! % 254)}`,
    publicIp: undefined,
    clientToken,
    tags,
    userData: userData.toString("utf8"),
    spot: params["InstanceMarketOptions.MarketType"] === "spot",
    rootDevice: { name: device ?? "/dev/sda1", sizeGb },
    metadata: metadataOptions(params),
  };
  account.instances.set(instance.instanceId, instance);
  if (clientToken) account.clientTokens.set(clientToken, { instanceId: instance.instanceId, fingerprint });
  return reservationReply(account, instance);
}

function reservationReply(account: AwsAccount, instance: Ec2Instance): Reply {
  return ec2Reply("RunInstances", {
    reservationId: instance.reservationId,
    ownerId: account.ownerId,
    groupSet: [],
    instancesSet: [instanceXml(instance)],
  });
}

function describeInstances(account: AwsAccount, region: string, params: Record<string, string>): Reply {
  const ids = indexed(params, "InstanceId");
  const maxResults = params.MaxResults === undefined ? undefined : Number(params.MaxResults);
  if (ids.length && maxResults !== undefined) {
    throw new Ec2Error(400, "InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults");
  }
  if (maxResults !== undefined && (!Number.isInteger(maxResults) || maxResults < 5 || maxResults > 1000)) {
    throw new Ec2Error(400, "InvalidParameterValue", `Value ( ${params.MaxResults} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.`);
  }
  let found = ids.length
    ? lookUp(account, region, ids)
    : [...account.instances.values()].filter((i) => i.region === region).map((i) => refresh(i, account.bootMs));
  for (const [name, values] of filtersOf(params)) {
    const matches = (instance: Ec2Instance): boolean => {
      if (name.startsWith("tag:")) return instance.tags.some(([key, value]) => key === name.slice(4) && values.includes(value));
      if (name === "tag-key") return instance.tags.some(([key]) => values.includes(key));
      if (name === "instance-state-name") return values.includes(instance.state);
      if (name === "client-token") return values.includes(instance.clientToken);
      if (name === "instance-id") return values.includes(instance.instanceId);
      throw new Ec2Error(400, "InvalidParameterValue", `The filter '${name}' is invalid`);
    };
    found = found.filter(matches);
  }
  let offset = 0;
  if (params.NextToken !== undefined) {
    offset = Number(Buffer.from(params.NextToken, "base64url").toString("utf8").replace(/^offset:/, ""));
    if (!Number.isInteger(offset) || offset < 0) throw new Ec2Error(400, "InvalidParameterValue", "The NextToken is invalid.");
  }
  const pageSize = Math.min(maxResults ?? Number.POSITIVE_INFINITY, account.pageSize);
  const page = found.slice(offset, offset + pageSize);
  const more = offset + pageSize < found.length;
  return ec2Reply("DescribeInstances", {
    reservationSet: page.map((instance) => ({
      reservationId: instance.reservationId,
      ownerId: account.ownerId,
      groupSet: [],
      instancesSet: [instanceXml(instance)],
    })),
    nextToken: more ? Buffer.from(`offset:${offset + pageSize}`).toString("base64url") : undefined,
  });
}

function terminateInstances(account: AwsAccount, region: string, params: Record<string, string>): Reply {
  const ids = indexed(params, "InstanceId");
  if (!ids.length) throw new Ec2Error(400, "MissingParameter", "The request must contain the parameter InstanceId");
  const changes = lookUp(account, region, ids).map((instance) => {
    const previous = instance.state;
    if (previous === "pending" || previous === "running") {
      instance.state = "shutting-down";
      instance.changedAt = Date.now();
    }
    return {
      instanceId: instance.instanceId,
      currentState: { code: stateCodes[instance.state], name: instance.state },
      previousState: { code: stateCodes[previous], name: previous },
    };
  });
  return ec2Reply("TerminateInstances", { instancesSet: changes });
}

function describeImages(region: string, params: Record<string, string>): Reply {
  const owners = indexed(params, "Owner");
  const ids = indexed(params, "ImageId");
  let images = imagesIn(region).filter((i) => (!owners.length || owners.includes(i.ownerId)) && (!ids.length || ids.includes(i.imageId)));
  for (const [name, values] of filtersOf(params)) {
    const field = ({ name: "name", architecture: "architecture", "owner-id": "ownerId" } as const)[name as "name"];
    if (name === "state") {
      images = images.filter(() => values.includes("available"));
      continue;
    }
    if (!field) throw new Ec2Error(400, "InvalidParameterValue", `The filter '${name}' is invalid`);
    images = images.filter((image) => values.some((value) => glob(value).test(image[field])));
  }
  return ec2Reply("DescribeImages", {
    imagesSet: images.map((image) => ({
      imageId: image.imageId,
      imageLocation: `${image.ownerId}/${image.name}`,
      imageState: "available",
      imageOwnerId: image.ownerId,
      creationDate: image.creationDate,
      isPublic: true,
      architecture: image.architecture,
      imageType: "machine",
      name: image.name,
      rootDeviceType: "ebs",
      rootDeviceName: "/dev/sda1",
      virtualizationType: "hvm",
      hypervisor: "xen",
      enaSupport: true,
      platformDetails: "Linux/UNIX",
    })),
  });
}

function describeRegions(params: Record<string, string>): Reply {
  const names = indexed(params, "RegionName");
  const unknown = names.filter((name) => !AWS_REGIONS.includes(name));
  if (unknown.length) throw new Ec2Error(400, "InvalidParameterValue", `Invalid region names: ${unknown.join(", ")}`);
  const all = params.AllRegions === "true";
  const regions = AWS_REGIONS.filter((name) => (!names.length || names.includes(name)) && (all || !OPT_IN_REGIONS.has(name)));
  return ec2Reply("DescribeRegions", {
    regionInfo: regions.map((name) => ({
      regionName: name,
      regionEndpoint: `ec2.${name}.amazonaws.com`,
      optInStatus: OPT_IN_REGIONS.has(name) ? "not-opted-in" : "opt-in-not-required",
    })),
  });
}

const actions: Record<string, (account: AwsAccount, region: string, params: Record<string, string>) => Reply> = {
  RunInstances: runInstances,
  DescribeInstances: describeInstances,
  TerminateInstances: terminateInstances,
  DescribeImages: (_account, region, params) => describeImages(region, params),
  DescribeRegions: (_account, _region, params) => describeRegions(params),
};

function ec2(account: AwsAccount, region: string, params: Record<string, string>): Reply {
  try {
    const action = required(params, "Action");
    if (required(params, "Version") !== "2016-11-15") throw new Ec2Error(400, "NoSuchVersion", `An invalid or unsupported API version ${params.Version} was specified.`);
    const handler = actions[action];
    if (!handler) throw new Ec2Error(400, "InvalidAction", `The action ${action} is not valid for this web service.`);
    if (account.unauthorizedActions.has(action)) {
      throw new Ec2Error(403, "UnauthorizedOperation", `You are not authorized to perform this operation. User: arn:aws:iam::${account.ownerId}:user/stagely is not authorized to perform: ec2:${action}`);
    }
    return handler(account, region, params);
  } catch (error) {
    if (error instanceof Ec2Error) return errorReply(error.status, error.code, error.message);
    throw error;
  }
}

function admin(accounts: Map<string, AwsAccount>, route: string, body: string): Reply {
  const common = commonAdmin(route, body, (key) => accounts.get(key));
  if (common) return common;
  const input = (parseJson(body) ?? {}) as Record<string, unknown>;
  if (route === "POST /_fake/accounts") {
    const account: AwsAccount = {
      accessKeyId: `AKIA${hex(8).toUpperCase()}`,
      secretAccessKey: randomBytes(30).toString("base64"),
      ownerId: String(100000000000 + randomBytes(4).readUInt32BE()),
      instances: new Map(),
      clientTokens: new Map(),
      instanceLimit: typeof input.instance_limit === "number" ? input.instance_limit : 20,
      pageSize: typeof input.page_size === "number" ? input.page_size : 1000,
      bootMs: typeof input.boot_ms === "number" ? input.boot_ms : 0,
      unauthorizedActions: new Set(Array.isArray(input.unauthorized_actions) ? (input.unauthorized_actions as string[]) : []),
      failures: [],
      requests: [],
    };
    accounts.set(account.accessKeyId, account);
    return jsonReply(201, { access_key_id: account.accessKeyId, secret_access_key: account.secretAccessKey });
  }
  const match = /^(GET|POST) \/_fake\/accounts\/([^/]+)\/instances$/.exec(route);
  const account = match ? accounts.get(decodeURIComponent(match[2]!)) : undefined;
  if (!match || !account) return jsonReply(404, { message: `no admin route ${route}` });
  if (match[1] === "GET") {
    const instances = [...account.instances.values()].map((i) => refresh(i, account.bootMs));
    return jsonReply(200, {
      instances: instances.map((i) => ({
        instance_id: i.instanceId,
        region: i.region,
        state: i.state,
        image_id: i.imageId,
        instance_type: i.instanceType,
        client_token: i.clientToken,
        spot: i.spot,
        root_volume_gb: i.rootDevice.sizeGb,
        metadata_options: { http_tokens: i.metadata.httpTokens, http_put_response_hop_limit: i.metadata.hopLimit, http_endpoint: i.metadata.httpEndpoint },
        tags: Object.fromEntries(i.tags),
        user_data: i.userData,
      })),
    });
  }
  const region = typeof input.region === "string" ? input.region : "us-east-1";
  const image = imagesIn(region)[0]!;
  const instance: Ec2Instance = {
    instanceId: `i-${hex(9).slice(0, 17)}`,
    reservationId: `r-${hex(9).slice(0, 17)}`,
    region,
    imageId: image.imageId,
    instanceType: "t3.micro",
    architecture: image.architecture,
    state: "running",
    changedAt: Date.now(),
    launchTime: new Date().toISOString(),
    privateIp: "172.31.0.10",
    publicIp: "203.0.113.250",
    clientToken: "",
    tags: Object.entries((input.tags ?? {}) as Record<string, string>),
    userData: "",
    spot: false,
    rootDevice: { name: "/dev/sda1", sizeGb: 8 },
    metadata: { httpTokens: "optional", hopLimit: 1, httpEndpoint: "enabled" },
  };
  account.instances.set(instance.instanceId, instance);
  return jsonReply(201, { instance_id: instance.instanceId });
}

/**
 * Amazon ECR's JSON API (the same signed endpoint, service "ecr"): GetAuthorizationToken answers the documented shape,
 * a base64 "AWS:<password>" token valid 12 hours and the registry's proxy endpoint.
 */
function ecr(account: AwsAccount, region: string, headers: Record<string, string>, body: string): Reply {
  const json = (status: number, value: unknown) => ({ status, headers: { "content-type": "application/x-amz-json-1.1" }, body: JSON.stringify(value) });
  if (headers["x-amz-target"] !== "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken") {
    return json(400, { __type: "UnknownOperationException", message: `unknown operation ${headers["x-amz-target"] ?? "(no X-Amz-Target)"}` });
  }
  if (!headers["content-type"]?.startsWith("application/x-amz-json-1.1")) return json(400, { __type: "SerializationException", message: "Content-Type must be application/x-amz-json-1.1" });
  if (parseJson(body) === undefined) return json(400, { __type: "SerializationException", message: "the body is not JSON" });
  if (account.unauthorizedActions.has("GetAuthorizationToken")) {
    return json(400, { __type: "AccessDeniedException", message: "User is not authorized to perform: ecr:GetAuthorizationToken" });
  }
  const password = randomBytes(24).toString("base64");
  account.requests.push({ operation: "ecr:GetAuthorizationToken", method: "POST", path: "/", headers, body: {} });
  return json(200, {
    authorizationData: [
      {
        authorizationToken: Buffer.from(`AWS:${password}`).toString("base64"),
        expiresAt: Math.floor(Date.now() / 1000) + 12 * 3600,
        proxyEndpoint: `https://${account.ownerId}.dkr.ecr.${region}.amazonaws.com`,
      },
    ],
  });
}

export const awsFake: FakeService = {
  name: "aws",
  start() {
    const accounts = new Map<string, AwsAccount>();
    return listen(async (req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url ?? "/", "http://ec2.fake");
      const body = await readBody(req);
      const route = `${req.method} ${url.pathname}`;
      if (url.pathname.startsWith("/_fake/")) return writeReply(res, admin(accounts, route, body));

      const headers = headersOf(req);
      const verification = verifySigV4({ method: req.method ?? "GET", path: req.url ?? "/", headers, body }, (key) => accounts.get(key)?.secretAccessKey, new Date());
      if (!verification.ok) return writeReply(res, errorReply(verification.code === "RequestExpired" ? 400 : 401, verification.code, verification.message));
      if (verification.service === "ecr") return writeReply(res, ecr(accounts.get(verification.accessKeyId)!, verification.region, headers, body));
      if (verification.service !== "ec2") return writeReply(res, errorReply(401, "AuthFailure", "Credential should be scoped to correct service: 'ec2'."));
      if (!AWS_REGIONS.includes(verification.region)) return writeReply(res, errorReply(401, "AuthFailure", "Credential should be scoped to a valid region."));
      const account = accounts.get(verification.accessKeyId)!;
      if (OPT_IN_REGIONS.has(verification.region)) return writeReply(res, errorReply(401, "AuthFailure", "AWS was not able to validate the provided access credentials"));
      if (req.method === "POST" && !headers["content-type"]?.startsWith("application/x-www-form-urlencoded")) {
        return writeReply(res, errorReply(400, "InvalidParameterValue", "The Content-Type must be application/x-www-form-urlencoded."));
      }
      const params = Object.fromEntries([...url.searchParams, ...new URLSearchParams(req.method === "POST" ? body : "")]);
      await serve(
        req,
        res,
        account,
        { operation: params.Action ?? "", method: req.method ?? "GET", path: url.pathname, headers, body: params },
        (failure) => errorReply(failure.status, failure.code, failure.message, failure.headers),
        () => ec2(account, verification.region, params),
      );
    });
  },
};
