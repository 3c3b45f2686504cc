#!/usr/bin/env node
// The syscontainers command: the bundled build when it is current, else the TypeScript sources through tsx.
import path from "node:path"
import { fileURLToPath } from "node:url"
import { bundleIsCurrent } from "./freshBundle.js"

const core = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const bundle = path.join(core, "dist", "cli.mjs")

let main
if (bundleIsCurrent(bundle, [path.join(core, "src")])) ({ main } = await import(bundle))
else {
  const { register } = await import("tsx/esm/api")
  register()
  ;({ main } = await import("../src/Cli.ts"))
}
process.exitCode = await main(process.argv.slice(2))
