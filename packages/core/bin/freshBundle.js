// freshBundle: whether a bundled build may stand in for its TypeScript sources. It may only when
// no source file is newer, so an edit is never answered by stale code (a stat per file, ~1 ms).
// CommonJS, like the rest of bin/: node starts a CommonJS entry ~10 ms sooner than an ES module.
const { readdirSync, statSync } = require("node:fs")
const path = require("node:path")

const newestIn = (dir) =>
  readdirSync(dir, { withFileTypes: true }).reduce((t, e) => {
    const p = path.join(dir, e.name)
    return Math.max(t, e.isDirectory() ? newestIn(p) : statSync(p).mtimeMs)
  }, 0)

/** True when `bundle` exists and is at least as new as every file under `sourceDirs`. */
const bundleIsCurrent = (bundle, sourceDirs) => {
  try {
    const built = statSync(bundle).mtimeMs
    return sourceDirs.every((dir) => built >= newestIn(dir))
  } catch {
    return false
  }
}

module.exports = { bundleIsCurrent }
