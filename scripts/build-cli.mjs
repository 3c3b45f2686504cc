// build-cli: bundles the syscontainers command, and @syscontainers/dsl for recipes, each into one
// ES module, so a start neither transpiles TypeScript nor loads Effect's modules one by one (under
// tsx each module crosses to its hooks' thread and back: ~0.3 s for Effect alone here).
import { build } from "esbuild"
import { execFileSync } from "node:child_process"
import { createRequire } from "node:module"
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs"
import os from "node:os"
import codeCache from "../packages/core/bin/codeCache.js"
import path from "node:path"
import { fileURLToPath } from "node:url"

const { cacheFilesOf } = codeCache
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const bundle = (entry, outfile, format) =>
  build({
    // CommonJS has no import.meta: the module's own file stands in (Steps.ts finds the bin from it)
    ...(format === "cjs" ? { define: { "import.meta.url": "__importMetaUrl" }, banner: { js: 'const __importMetaUrl = require("node:url").pathToFileURL(__filename).href;' } } : {}),
    entryPoints: [path.join(root, entry)],
    outfile: path.resolve(root, outfile),
    bundle: true,
    platform: "node",
    target: "node20",
    format,
    minifySyntax: true,
    treeShaking: true,
    logLevel: "warning",
    // zx and ajv use require(); an ES module bundle needs one
    ...(format === "esm" ? { banner: { js: 'import { createRequire as __cr } from "node:module"; const require = __cr(import.meta.url);' } } : {}),
  })

// both are CommonJS, run through V8's code cache (packages/core/bin/codeCache.js)
const cli = path.join(root, "packages/core/dist/cli.cjs")
const dsl = path.join(root, "packages/dsl/dist/index.cjs")
// dated from when the build began: a source saved while it ran is newer than the bundle
const began = new Date()
await Promise.all([bundle("packages/core/src/Cli.ts", cli, "cjs"), bundle("packages/dsl/src/index.ts", dsl, "cjs")])
for (const b of [cli, dsl]) utimesSync(b, began, began)
// a new build gets new caches, made here by one run each (written at exit) rather than by the
// first user, who may not be allowed to write beside the bundles
for (const file of [cli, dsl].flatMap(cacheFilesOf)) rmSync(file, { force: true })
// a command that runs (and fails on a repo that is not there) compiles more of what every command
// needs (Effect's runtime, the error reports) than --help does
const scratch = mkdtempSync(path.join(os.tmpdir(), "syscontainers-build-"))
try {
  execFileSync(process.execPath, [path.join(root, "packages/core/bin/syscontainers.js"), "--repo", path.join(scratch, "none"), "images"], { stdio: "ignore" })
} catch {
  // the failure was the point
} finally {
  rmSync(scratch, { recursive: true, force: true })
}

// packages/dsl/index.mjs chooses the bundle or the sources at import time; an ES module names its
// exports statically, so the list is written here from what the bundle exports
const loader = path.join(root, "packages/dsl/index.mjs")
// (its cache is made by a process of its own: one that also ran the build would look long-running,
// and a real run, which compiles much more, would not replace the cache it left)
execFileSync(process.execPath, ["-e", `require(${JSON.stringify(path.join(root, "packages/core/bin/codeCache.js"))}).loadCached(${JSON.stringify(dsl)})`], { stdio: "ignore" })
const names = Object.keys(createRequire(import.meta.url)(dsl)).sort()
const text = `// @syscontainers/dsl as node loads it: the bundled build (dist/index.cjs, from scripts/build-cli.mjs,
// through V8's code cache) when no source of dsl or core is newer, else the TypeScript sources (the
// caller runs under tsx). Written by scripts/build-cli.mjs: the export list follows src/index.ts.
import path from "node:path"
import { fileURLToPath } from "node:url"
import { bundleIsCurrent } from "@syscontainers/core/freshBundle"
import { loadCached } from "@syscontainers/core/codeCache"

const here = path.dirname(fileURLToPath(import.meta.url))
const bundle = path.join(here, "dist", "index.cjs")
const sources = [path.join(here, "src"), path.join(here, "..", "core", "src"), path.join(here, "..", "..", "pnpm-lock.yaml")]
const dsl = bundleIsCurrent(bundle, sources) ? loadCached(bundle) : await import("./src/index.ts")

export const {
${names.map((n) => `  ${n},`).join("\n")}
} = dsl
`
const old = (() => { try { return readFileSync(loader, "utf8") } catch { return "" } })()
if (old !== text) {
  // in CI the committed loader must already be right: recipes of a clone without a build use it
  if (process.env.CI) {
    console.error("build-cli: packages/dsl/index.mjs does not list what src/index.ts exports: run `node scripts/build-cli.mjs` and commit it")
    process.exit(1)
  }
  writeFileSync(loader, text)
  console.log("build-cli: wrote packages/dsl/index.mjs (the dsl's exports changed; commit it)")
}
