#!/usr/bin/env node
// The syscontainers command: the bundled build when it is current (through V8's code cache), else
// the TypeScript sources through tsx.
const path = require("node:path")
const { bundleIsCurrent } = require("./freshBundle.js")
const { loadCached } = require("./codeCache.js")

const core = path.resolve(__dirname, "..")
const bundle = path.join(core, "dist", "cli.cjs")

const mainOf = async () => {
  // the lockfile too: the bundle holds Effect, zx and ajv as they were installed
  if (bundleIsCurrent(bundle, [path.join(core, "src"), path.join(core, "..", "..", "pnpm-lock.yaml")])) return loadCached(bundle).main
  const { register } = await import("tsx/esm/api")
  register()
  return (await import("../src/Cli.ts")).main
}
mainOf().then(async (main) => {
  process.exitCode = await main(process.argv.slice(2))
})
