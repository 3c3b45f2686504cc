// freshBundle: whether a bundled build may stand in for its TypeScript sources. It may only when
// no source file is newer, so an edit is never answered by stale code (a stat per file, ~1 ms).
// CommonJS, like the rest of bin/: node starts a CommonJS entry ~10 ms sooner than an ES module.
const { existsSync, readdirSync, statSync } = require("node:fs")
const path = require("node:path")

// a directory's own mtime counts: it moves when a file in it is added, removed or renamed
const newestIn = (p) => {
  const st = statSync(p)
  if (!st.isDirectory()) return st.mtimeMs
  return readdirSync(p).reduce((t, name) => Math.max(t, newestIn(path.join(p, name))), st.mtimeMs)
}

/**
 * True when `bundle` exists and is at least as new as every file and directory under `sources`
 * (directories or files; a missing one is skipped). The build dates a bundle from when it began,
 * so a source saved while it ran counts as newer.
 */
const bundleIsCurrent = (bundle, sources) => {
  try {
    const built = statSync(bundle).mtimeMs
    return sources.filter((p) => existsSync(p)).every((p) => built >= newestIn(p))
  } catch {
    return false
  }
}

module.exports = { bundleIsCurrent }
