import { describe, expect, it } from "vitest";
import { fakeUrl } from "./urls.ts";
import { verifySigV4, type SignedRequest } from "./aws.ts";

// AWS's published Signature Version 4 test suite (docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html):
// these requests, credentials and signatures come from it, not from our signer.
const SUITE_KEY_ID = "AKIDEXAMPLE";
const SUITE_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SUITE_TIME = new Date("2015-08-30T12:36:00Z");
const SCOPE = `Credential=${SUITE_KEY_ID}/20150830/us-east-1/service/aws4_request`;
const secretOf = (id: string) => (id === SUITE_KEY_ID ? SUITE_SECRET : undefined);

const getVanilla: SignedRequest = {
  method: "GET",
  path: "/",
  headers: {
    host: "example.amazonaws.com",
    "x-amz-date": "20150830T123600Z",
    authorization: `AWS4-HMAC-SHA256 ${SCOPE}, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31`,
  },
  body: "",
};

const getVanillaQueryOrderKeyCase: SignedRequest = {
  ...getVanilla,
  path: "/?Param2=value2&Param1=value1",
  headers: {
    ...getVanilla.headers,
    authorization: `AWS4-HMAC-SHA256 ${SCOPE}, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500`,
  },
};

const postFormUrlencoded: SignedRequest = {
  method: "POST",
  path: "/",
  headers: {
    "content-type": "application/x-www-form-urlencoded",
    host: "example.amazonaws.com",
    "x-amz-date": "20150830T123600Z",
    authorization: `AWS4-HMAC-SHA256 ${SCOPE}, SignedHeaders=content-type;host;x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a`,
  },
  body: "Param1=value1",
};

describe("the AWS fake's SigV4 verifier against AWS's published test vectors", () => {
  it.each([
    ["get-vanilla", getVanilla],
    ["get-vanilla-query-order-key-case", getVanillaQueryOrderKeyCase],
    ["post-x-www-form-urlencoded", postFormUrlencoded],
  ])("accepts %s", (_name, request) => {
    expect(verifySigV4(request, secretOf, SUITE_TIME)).toMatchObject({ ok: true, accessKeyId: SUITE_KEY_ID, region: "us-east-1", service: "service" });
  });

  it("builds the suite's canonical request for post-x-www-form-urlencoded", () => {
    const result = verifySigV4(postFormUrlencoded, secretOf, SUITE_TIME);
    expect(result.ok && result.canonicalRequest).toBe(
      [
        "POST",
        "/",
        "",
        "content-type:application/x-www-form-urlencoded",
        "host:example.amazonaws.com",
        "x-amz-date:20150830T123600Z",
        "",
        "content-type;host;x-amz-date",
        "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
      ].join("\n"),
    );
  });

  it.each([
    ["another body", { ...postFormUrlencoded, body: "Param1=value2" }],
    ["another path", { ...getVanilla, path: "/other" }],
    ["another query value", { ...getVanillaQueryOrderKeyCase, path: "/?Param2=value2&Param1=value9" }],
    ["another host", { ...getVanilla, headers: { ...getVanilla.headers, host: "evil.example.com" } }],
    ["another method", { ...getVanilla, method: "DELETE" }],
    ["a flipped signature digit", { ...getVanilla, headers: { ...getVanilla.headers, authorization: getVanilla.headers.authorization!.replace(/31$/, "32") } }],
  ])("rejects a request with %s", (_what, request) => {
    expect(verifySigV4(request, secretOf, SUITE_TIME)).toMatchObject({ ok: false, code: "AuthFailure" });
  });

  it("rejects the right signature made with another secret, or an unknown key", () => {
    expect(verifySigV4(getVanilla, () => "not-the-secret", SUITE_TIME)).toMatchObject({ ok: false, code: "AuthFailure" });
    expect(verifySigV4(getVanilla, () => undefined, SUITE_TIME)).toMatchObject({ ok: false, code: "AuthFailure" });
  });

  it("rejects requests signed more than five minutes away from now", () => {
    const later = new Date(SUITE_TIME.getTime() + 6 * 60 * 1000);
    expect(verifySigV4(getVanilla, secretOf, later)).toMatchObject({ ok: false, code: "RequestExpired" });
  });

  it("rejects a missing header, unsigned host or a scope date other than X-Amz-Date's", () => {
    const { authorization, ...unsigned } = getVanilla.headers;
    expect(verifySigV4({ ...getVanilla, headers: unsigned }, secretOf, SUITE_TIME).ok).toBe(false);
    const noHost = authorization!.replace("SignedHeaders=host;x-amz-date", "SignedHeaders=x-amz-date");
    expect(verifySigV4({ ...getVanilla, headers: { ...getVanilla.headers, authorization: noHost } }, secretOf, SUITE_TIME).ok).toBe(false);
    const otherDay = authorization!.replace("/20150830/", "/20150831/");
    expect(verifySigV4({ ...getVanilla, headers: { ...getVanilla.headers, authorization: otherDay } }, secretOf, SUITE_TIME).ok).toBe(false);
  });
});

describe("the AWS fake over HTTP", () => {
  it("answers an unsigned request with EC2's AuthFailure document", async () => {
    const response = await fetch(`${fakeUrl("aws")}/`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "Action=DescribeRegions&Version=2016-11-15",
    });
    expect(response.status).toBe(401);
    const text = await response.text();
    expect(text).toContain("<Response><Errors><Error><Code>AuthFailure</Code>");
    expect(text).toContain("<RequestID>");
  });
});
