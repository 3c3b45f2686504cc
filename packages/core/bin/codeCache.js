// codeCache: runs a CommonJS bundle through V8's code cache, kept beside it. Parsing and compiling
// the same megabyte at every start was ~35 ms of the command's ~140 ms here.
const { readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } = require("node:fs")
const Module = require("node:module")
const path = require("node:path")
const v8 = require("node:v8")
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

/** Every cache file a bundle ever had, and any a killed writer left half-written (a rebuild removes them). */
const cacheFilesOf = (bundle) =>
  readdirSync(path.dirname(bundle))
    .filter((f) => f.startsWith(`${path.basename(bundle)}.`) && /\.v8cache(\.\d+)?$/.test(f))
    .map((f) => path.join(path.dirname(bundle), f))

// A cache file: this tag, the CPU time the process that wrote it had used (ms, float64), then V8's data.
const TAG = Buffer.from("scc1")
const HEADER = TAG.length + 8

/** The cache in `file`, or undefined when there is none (or none in our format). */
const readCache = (file) => {
  let bytes
  try {
    bytes = readFileSync(file)
  } catch {
    return undefined // none yet
  }
  if (bytes.length <= HEADER || !bytes.subarray(0, TAG.length).equals(TAG)) return undefined
  return { cpuMs: bytes.readDoubleLE(TAG.length), data: bytes.subarray(HEADER) }
}

const save = (script, cacheFile, cpuMs) => {
  // whole or not at all (another start may read it meanwhile); a read-only install just goes without
  const tmp = `${cacheFile}.${process.pid}`
  try {
    const used = Buffer.alloc(8)
    used.writeDoubleLE(cpuMs)
    writeFileSync(tmp, Buffer.concat([TAG, used, script.createCachedData()]))
    renameSync(tmp, cacheFile)
  } catch {
    rmSync(tmp, { force: true })
  }
}

const builtins = new Set(Module.builtinModules)

/**
 * The bundle's `require`. esbuild put every package in the bundle, so what it requires is node's
 * own modules (~100 calls): those come straight from node, past any loader's resolve hooks (under
 * tsx each went through tsx's resolver: ~3 ms a start here). Anything else, the usual way.
 */
const requireFor = (bundle) => {
  const usual = Module.createRequire(bundle)
  if (typeof process.getBuiltinModule !== "function") return usual // node before 20.16 and 22.3
  const own = (id) => ((id.startsWith("node:") || builtins.has(id) ? process.getBuiltinModule(id) : undefined) ?? usual(id))
  return Object.assign(own, { resolve: usual.resolve, cache: usual.cache, main: usual.main, extensions: usual.extensions })
}

/**
 * Loads `bundle` (CommonJS) and returns its exports. At exit it writes the cache when there was none,
 * when V8 refused it, or when this process did well over the work of the one that wrote it: V8
 * caches only the functions the writer had compiled, so the cache a `--help` left lacks most of
 * what a real run needs (measured: a warm recipe run 330 → 308 ms once a full run had rewritten
 * it). Work is CPU time, not wall time: an attached run waits for hours and compiles little.
 * Writing costs ~12 ms, so a run about as busy as the writer's (jitter included) leaves it alone.
 *
 * But V8 also drops the bytecode of a function that has not run for 6 major GCs
 * (--bytecode-old-age), and the bundle's module initialisers run once, at start: a cache written
 * after that many lacks them, V8 takes it, and compiles them again at every start (measured:
 * `syscontainers --help` 65 → 102 ms after a long pull wrote the cache). Such a process replaces
 * no cache, and one it writes where there was none counts as no work: the next run replaces it.
 */
const loadCached = (bundle) => {
  const cacheFile = cacheFileOf(bundle)
  const cached = readCache(cacheFile)
  const gcs = typeof v8.GCProfiler === "function" ? new v8.GCProfiler() : undefined
  gcs?.start()
  const script = new vm.Script(Module.wrap(readFileSync(bundle, "utf8")), { filename: bundle, ...(cached ? { cachedData: cached.data } : {}) })
  const module = { exports: {} }
  script.runInThisContext()(module.exports, requireFor(bundle), module, bundle, path.dirname(bundle))
  process.once("exit", () => {
    // since the process started: node's own start-up counts alike for every run
    const { user, system } = process.cpuUsage()
    const cpuMs = (user + system) / 1000
    const majorGcs = (gcs?.stop()?.statistics ?? []).filter((s) => s.gcType === "MarkSweepCompact").length
    // fewer than V8's bytecode-old-age: nothing compiled can have been dropped yet
    const whole = gcs !== undefined && majorGcs < 6
    const busier = cached !== undefined && (cached.cpuMs === 0 || cpuMs > 1.5 * cached.cpuMs + 50)
    if (!cached || script.cachedDataRejected || (whole && busier)) save(script, cacheFile, whole ? cpuMs : 0)
  })
  return module.exports
}

module.exports = { cacheFileOf, cacheFilesOf, loadCached, readCache }
