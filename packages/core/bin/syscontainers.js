#!/usr/bin/env node
// The syscontainers command: the bundled build when it is current, else the TypeScript sources through tsx.
import { readdirSync, statSync } from "node:fs"
import path from "node:path"
import { fileURLToPath } from "node:url"

const core = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const bundle = path.join(core, "dist", "cli.mjs")

// the bundle counts only when no source is newer: an edit never runs stale code
const newestSource = (dir) =>
  readdirSync(dir, { withFileTypes: true }).reduce((t, e) => {
    const p = path.join(dir, e.name)
    return Math.max(t, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs)
  }, 0)
const current = (() => {
  try {
    return statSync(bundle).mtimeMs >= newestSource(path.join(core, "src"))
  } catch {
    return false
  }
})()

let main
if (current) ({ main } = await import(bundle))
else {
  const { register } = await import("tsx/esm/api")
  register()
  ;({ main } = await import("../src/Cli.ts"))
}
process.exitCode = await main(process.argv.slice(2))
