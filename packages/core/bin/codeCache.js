// codeCache: runs a CommonJS bundle through V8's code cache, kept beside it. Parsing and compiling
// the same megabyte at every start was ~35 ms of the command's ~140 ms here.
const { readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } = require("node:fs")
const Module = require("node:module")
const path = require("node:path")
const vm = require("node:vm")

/**
 * The cache's file for the bundle as it is now. V8 refuses a cache made by another V8 or with other
 * flags, but knows its source only by length: the bundle's size and mtime in the name keep a cache
 * from ever meeting a rebuilt bundle of the same length, and V8's version keeps the project's pinned
 * node and a system node (each may run the bundle) from overwriting each other's cache at every start.
 */
const cacheFileOf = (bundle) => {
  const st = statSync(bundle)
  return `${bundle}.${st.size}-${Math.trunc(st.mtimeMs)}-v8-${process.versions.v8}.v8cache`
}

/** Every cache file a bundle ever had (a rebuild removes them). */
const cacheFilesOf = (bundle) =>
  readdirSync(path.dirname(bundle))
    .filter((f) => f.startsWith(`${path.basename(bundle)}.`) && f.endsWith(".v8cache"))
    .map((f) => path.join(path.dirname(bundle), f))

const save = (script, cacheFile) => {
  // whole or not at all (another start may read it meanwhile); a read-only install just goes without
  const tmp = `${cacheFile}.${process.pid}`
  try {
    writeFileSync(tmp, script.createCachedData())
    renameSync(tmp, cacheFile)
  } catch {
    rmSync(tmp, { force: true })
  }
}

/** Loads `bundle` (CommonJS) and returns its exports; writes the cache at exit when there was none or V8 refused it. */
const loadCached = (bundle) => {
  const cacheFile = cacheFileOf(bundle)
  let cachedData
  try {
    cachedData = readFileSync(cacheFile)
  } catch {
    // none yet
  }
  const script = new vm.Script(Module.wrap(readFileSync(bundle, "utf8")), { filename: bundle, ...(cachedData ? { cachedData } : {}) })
  const module = { exports: {} }
  script.runInThisContext()(module.exports, Module.createRequire(bundle), module, bundle, path.dirname(bundle))
  // at exit the cache also holds the functions this run compiled, not just the top level
  if (!cachedData || script.cachedDataRejected) process.once("exit", () => save(script, cacheFile))
  return module.exports
}

module.exports = { cacheFileOf, cacheFilesOf, loadCached }
