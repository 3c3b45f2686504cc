// build-cli: bundles the syscontainers command, and @syscontainers/dsl for recipes, each into one
// ES module, so a start neither transpiles TypeScript nor loads Effect's modules one by one (under
// tsx each module crosses to its hooks' thread and back: ~0.3 s for Effect alone here).
import { build } from "esbuild"
import { readFileSync, writeFileSync } from "node:fs"
import path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const bundle = (entry, outfile) =>
  build({
    entryPoints: [path.join(root, entry)],
    outfile: path.join(root, outfile),
    bundle: true,
    platform: "node",
    target: "node20",
    format: "esm",
    minifySyntax: true,
    treeShaking: true,
    logLevel: "warning",
    // zx and ajv use require(); an ES module bundle needs one
    banner: { js: 'import { createRequire as __cr } from "node:module"; const require = __cr(import.meta.url);' },
  })

await Promise.all([
  bundle("packages/core/src/Cli.ts", "packages/core/dist/cli.mjs"),
  bundle("packages/dsl/src/index.ts", "packages/dsl/dist/index.mjs"),
])

// packages/dsl/index.mjs chooses the bundle or the sources at import time; an ES module names its
// exports statically, so the list is written here from what the bundle exports
const loader = path.join(root, "packages/dsl/index.mjs")
const names = Object.keys(await import(pathToFileURL(path.join(root, "packages/dsl/dist/index.mjs")).href)).sort()
const text = `// @syscontainers/dsl as node loads it: the bundled build (dist/index.mjs, from scripts/build-cli.mjs)
// when no source of dsl or core is newer, else the TypeScript sources (the caller runs under tsx).
// Written by scripts/build-cli.mjs: the export list follows src/index.ts.
import path from "node:path"
import { fileURLToPath } from "node:url"
import { bundleIsCurrent } from "@syscontainers/core/freshBundle"

const here = path.dirname(fileURLToPath(import.meta.url))
const sources = [path.join(here, "src"), path.join(here, "..", "core", "src")]
const dsl = bundleIsCurrent(path.join(here, "dist", "index.mjs"), sources) ? await import("./dist/index.mjs") : await import("./src/index.ts")

export const {
${names.map((n) => `  ${n},`).join("\n")}
} = dsl
`
const old = (() => { try { return readFileSync(loader, "utf8") } catch { return "" } })()
if (old !== text) {
  writeFileSync(loader, text)
  console.log("build-cli: wrote packages/dsl/index.mjs (the dsl's exports changed; commit it)")
}
