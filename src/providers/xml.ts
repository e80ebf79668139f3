/**
 * Just enough XML for EC2's Query API responses: elements and text (attributes, comments, declarations and
 * namespaces are skipped). Workers have no DOMParser. Malformed input throws an Error.
 */
export interface XmlElement {
  name: string;
  text: string;
  children: XmlElement[];
}

const entities: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };

function decode(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-z]+);/g, (whole, entity: string) => {
    if (entity.startsWith("#x")) return String.fromCodePoint(Number.parseInt(entity.slice(2), 16));
    if (entity.startsWith("#")) return String.fromCodePoint(Number(entity.slice(1)));
    return entities[entity] ?? whole;
  });
}

export function parseXml(source: string): XmlElement {
  const root: XmlElement = { name: "", text: "", children: [] };
  const stack: XmlElement[] = [root];
  const tag = /<(\?|\/)?([^>]*?)(\/)?>/gy;
  let position = 0;
  while (position < source.length) {
    const next = source.indexOf("<", position);
    const top = stack[stack.length - 1]!;
    if (next === -1) {
      if (source.slice(position).trim()) throw new Error("text after the last element");
      break;
    }
    if (next > position) top.text += decode(source.slice(position, next));
    if (source.startsWith("<!--", next)) {
      const end = source.indexOf("-->", next);
      if (end === -1) throw new Error("unterminated comment");
      position = end + 3;
      continue;
    }
    if (source.startsWith("<![CDATA[", next)) {
      const end = source.indexOf("]]>", next);
      if (end === -1) throw new Error("unterminated CDATA");
      top.text += source.slice(next + 9, end);
      position = end + 3;
      continue;
    }
    tag.lastIndex = next;
    const match = tag.exec(source);
    if (!match) throw new Error("unterminated tag");
    position = tag.lastIndex;
    const [, kind, body = "", selfClosing] = match;
    if (kind === "?") continue;
    const qualified = body.trim().split(/\s/)[0] ?? "";
    if (!/^[A-Za-z_][\w.:-]*$/.test(qualified)) throw new Error("bad element name");
    const name = qualified.replace(/^.*:/, "");
    if (kind === "/") {
      if (stack.length === 1 || top.name !== name) throw new Error(`unexpected </${name}>`);
      stack.pop();
      continue;
    }
    const element: XmlElement = { name, text: "", children: [] };
    top.children.push(element);
    if (!selfClosing) stack.push(element);
  }
  if (stack.length !== 1) throw new Error("unclosed element");
  if (root.children.length !== 1) throw new Error("expected one root element");
  return root.children[0]!;
}

export function child(element: XmlElement | undefined, name: string): XmlElement | undefined {
  return element?.children.find((c) => c.name === name);
}

/** The text of a direct child, or undefined when there is none or it is empty. */
export function textOf(element: XmlElement | undefined, name: string): string | undefined {
  const text = child(element, name)?.text.trim();
  return text ? text : undefined;
}

/** EC2 lists: `<instancesSet><item>…</item>…</instancesSet>`. */
export function items(element: XmlElement | undefined, setName: string): XmlElement[] {
  return child(element, setName)?.children.filter((c) => c.name === "item") ?? [];
}
