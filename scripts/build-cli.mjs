// build-cli: bundles the syscontainers command into one ES module, so a start neither transpiles
// TypeScript nor loads Effect's whole barrel (about 1 s saved per call on these machines).
import { build } from "esbuild"
import path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
await build({
  entryPoints: [path.join(root, "packages/core/src/Cli.ts")],
  outfile: path.join(root, "packages/core/dist/cli.mjs"),
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
