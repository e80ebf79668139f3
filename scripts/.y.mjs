import * as esbuild from "esbuild";
import { gzipSync } from "node:zlib";
for (const src of [
 'export { Composer, CST, isAlias, isMap, isPair, isScalar, isSeq, Lexer, Parser } from "yaml";',
 'export { Composer, CST, isAlias, isMap, isPair, isScalar, isSeq, Lexer, Parser, parse, stringify } from "yaml";',
 'export * as z from "zod";',
 'import * as z from "zod"; export const s = z.object({a: z.string().min(1), b: z.number().int().optional(), c: z.enum(["x"]) , d: z.array(z.string())}).strict();',
 'import * as z from "zod/mini"; export const s = z.strictObject({a: z.string().check(z.minLength(1)), b: z.optional(z.int()), c: z.enum(["x"]) , d: z.array(z.string())});',
]) {
  const r = await esbuild.build({ stdin: { contents: src, resolveDir: process.cwd(), loader: "js" }, bundle: true, minify: true, format: "esm", write: false, platform: "neutral", conditions: ["workerd","worker","browser"], mainFields: ["module","main"], logLevel: "silent" });
  console.log((gzipSync(r.outputFiles[0].contents, {level:9}).length/1024).toFixed(1), src.slice(0, 90));
}
