import { describe, expect, it } from "vitest";
import { child, items, parseXml, textOf } from "./xml.ts";

describe("parseXml", () => {
  it("reads EC2 documents: declaration, namespace, item lists, self-closing and escaped text", () => {
    const root = parseXml(`<?xml version="1.0" encoding="UTF-8"?>
      <DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
        <!-- a comment -->
        <requestId>r-1</requestId>
        <reservationSet><item><instancesSet>
          <item><instanceId>i-0123456789abcdef0</instanceId><reason/><tagSet><item><key>a&amp;b</key><value>&lt;x&gt; &#65;&#x42;</value></item></tagSet></item>
          <item><instanceId>i-0123456789abcdef1</instanceId></item>
        </instancesSet></item></reservationSet>
      </DescribeInstancesResponse>`);
    expect(root.name).toBe("DescribeInstancesResponse");
    const instances = items(items(root, "reservationSet")[0], "instancesSet");
    expect(instances.map((i) => textOf(i, "instanceId"))).toEqual(["i-0123456789abcdef0", "i-0123456789abcdef1"]);
    const tag = items(instances[0], "tagSet")[0];
    expect([textOf(tag, "key"), textOf(tag, "value")]).toEqual(["a&b", "<x> AB"]);
    expect(textOf(instances[0], "reason")).toBeUndefined();
    expect(child(root, "missing")).toBeUndefined();
  });

  it("strips namespace prefixes and reads CDATA", () => {
    const root = parseXml("<ns:Response><ns:Code><![CDATA[a<b]]></ns:Code></ns:Response>");
    expect(textOf(root, "Code")).toBe("a<b");
  });

  it.each([
    ["", "empty"],
    ["not xml at all", "text"],
    ["<a><b></a>", "mismatched"],
    ["<a>", "unclosed"],
    ["<a></a><b></b>", "two roots"],
    ["<a></a>trailing", "trailing text"],
    ["<a><!-- open", "unterminated comment"],
    ["<a attr='x", "unterminated tag"],
    ["<1a></1a>", "bad name"],
    ["<html><body>502 Bad Gateway", "an HTML error page"],
  ])("throws on malformed input (%s: %s)", (source) => {
    expect(() => parseXml(source)).toThrow(Error);
  });
});
