// builds: the bundled command and dsl stand in for their sources only when current, and the dsl's
// loader exports exactly what its sources do (a recipe sees the same module either way).
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs"
import path from "node:path"
import { spawn } from "node:child_process"
import { pathToFileURL } from "node:url"
import { bundleIsCurrent } from "@syscontainers/core/freshBundle"
import { cacheFileOf, cacheFilesOf, readCache } from "@syscontainers/core/codeCache"
import * as dslSources from "@syscontainers/dsl"
import { cleanupTemps, repoRoot, sh, shAny, tempDir, tsxWrapper, tsxWrapperIsOurs } from "./fixtures/harness.ts"

const t = suite("builds")
t.after(() => cleanupTemps())

const at = (file: string, seconds: number) => utimesSync(file, seconds, seconds)

t("bundleIsCurrent: a bundle older than any source, in any subdirectory, does not count; a missing one neither", () => {
  const dir = tempDir("fresh")
  const src = path.join(dir, "src")
  mkdirSync(path.join(src, "internal"), { recursive: true })
  const bundle = path.join(dir, "bundle.mjs")
  writeFileSync(path.join(src, "a.ts"), "")
  writeFileSync(path.join(src, "internal", "b.ts"), "")
  assert.is(bundleIsCurrent(bundle, [src]), false, "missing bundle")
  writeFileSync(bundle, "")
  at(path.join(src, "a.ts"), 1000)
  at(path.join(src, "internal", "b.ts"), 1000)
  at(path.join(src, "internal"), 1000)
  at(src, 1000)
  at(bundle, 2000)
  assert.is(bundleIsCurrent(bundle, [src]), true)
  at(path.join(src, "internal", "b.ts"), 3000)
  assert.is(bundleIsCurrent(bundle, [src]), false, "a nested source edited after the build")
  // a missing source path is skipped (a lockfile a clone may not have); a file may stand for itself
  at(path.join(src, "internal", "b.ts"), 1000)
  at(path.join(src, "internal"), 1000)
  at(src, 1000)
  assert.is(bundleIsCurrent(bundle, [src, path.join(dir, "nowhere")]), true, "a missing path is no source")
  writeFileSync(path.join(dir, "lock.yaml"), "")
  at(path.join(dir, "lock.yaml"), 3000)
  assert.is(bundleIsCurrent(bundle, [src, path.join(dir, "lock.yaml")]), false, "a newer lockfile: the bundled dependencies moved")
  // a deleted source leaves no file to be newer: its directory's mtime tells
  rmSync(path.join(src, "internal", "b.ts"))
  assert.is(bundleIsCurrent(bundle, [src]), false, "a source removed after the build")
})

t("packages/dsl/index.mjs exports exactly what packages/dsl/src/index.ts exports", async () => {
  const loader = (await import(pathToFileURL(path.join(repoRoot, "packages/dsl/index.mjs")).href)) as Record<string, unknown>
  assert.equal(Object.keys(loader).sort(), Object.keys(dslSources).sort(), "run `node scripts/build-cli.mjs` and commit packages/dsl/index.mjs")
})

t("loadCached: runs a CommonJS bundle, writes V8's code cache at exit, takes it next time, replaces it when the bundle changed", async () => {
  const dir = tempDir("v8cache")
  const bundle = path.join(dir, "b.cjs")
  const runner = path.join(dir, "run.cjs")
  writeFileSync(runner, `const { loadCached } = require(${JSON.stringify(path.join(repoRoot, "packages/core/bin/codeCache.js"))})\nconsole.log(loadCached(${JSON.stringify(bundle)}).answer())`)
  // this process's node: cacheFileOf names V8's version
  const answer = async () => (await sh([process.execPath, runner])).trim()
  writeFileSync(bundle, "exports.answer = () => 'one:' + require('node:path').basename(__filename)")
  at(bundle, 5000)
  const first = cacheFileOf(bundle)
  assert.is(await answer(), "one:b.cjs")
  assert.ok(existsSync(first), "written at exit")
  at(first, 1000)
  assert.is(await answer(), "one:b.cjs")
  assert.is(statSync(first).mtimeMs, 1000_000, "taken, not rewritten")
  // the same length, other code: V8 alone would take the old cache (it knows a source by its length)
  writeFileSync(bundle, "exports.answer = () => 'two:' + require('node:path').basename(__filename)")
  at(bundle, 6000)
  assert.is(await answer(), "two:b.cjs", "the rebuilt bundle's own code runs")
  assert.ok(existsSync(cacheFileOf(bundle)) && cacheFileOf(bundle) !== first, "under its own cache")
})

t("loadCached: a run much busier than the one that wrote the cache writes it again (it compiled more); a short, idle or GC-heavy one leaves it", async () => {
  const dir = tempDir("v8cache-grow")
  const bundle = path.join(dir, "b.cjs")
  const runner = path.join(dir, "run.cjs")
  // the bundle's `busy` spins for the ms it is given, as a real command computes; `idle` only waits
  writeFileSync(runner, `const { loadCached } = require(${JSON.stringify(path.join(repoRoot, "packages/core/bin/codeCache.js"))})\nconst b = loadCached(${JSON.stringify(bundle)})\nconst [how, ms] = process.argv.slice(2)\nif (how === "idle") setTimeout(() => {}, Number(ms)); else b[how](Number(ms))`)
  // busy: spins; churn: makes and drops megabytes, so V8 runs many major GCs (and may drop bytecode)
  writeFileSync(bundle, "exports.busy = (ms) => { const end = Date.now() + ms; while (Date.now() < end); }\nexports.churn = (ms) => { let keep = []; const end = Date.now() + ms; while (Date.now() < end) { keep.push(Buffer.alloc(1 << 20).toString('latin1')); if (keep.length > 60) keep = [] } }")
  const runFor = (how: "busy" | "idle" | "churn", ms: number) => sh([process.execPath, runner, how, String(ms)])
  const cpuOf = () => readCache(cacheFileOf(bundle))?.cpuMs ?? NaN
  await runFor("busy", 0)
  const short = cpuOf()
  assert.ok(short > 0 && short < 1000, `the first run wrote the cache and its CPU time (${short} ms)`)
  await runFor("busy", 0)
  assert.is(cpuOf(), short, "a run as busy as the writer's leaves the cache")
  await runFor("idle", 800)
  assert.is(cpuOf(), short, "a long idle run (an attached container) leaves it too")
  await runFor("busy", 600)
  const busy = cpuOf()
  assert.ok(busy >= 500 && busy > short, `a run 600 ms busier wrote it again (${busy} ms)`)
  await runFor("busy", 0)
  assert.is(cpuOf(), busy, "a lighter run leaves the busier run's cache")
  // many major GCs: V8 may have dropped the bytecode of what ran only at start, so no rewrite;
  // and where there was no cache, the one it writes counts as no work, for the next run to replace
  await runFor("churn", 1500)
  assert.is(cpuOf(), busy, "a busier run with many major GCs leaves the cache")
  rmSync(cacheFileOf(bundle))
  await runFor("churn", 1500)
  assert.is(cpuOf(), 0, "written where there was none, as no work")
  await runFor("busy", 0)
  assert.ok(cpuOf() > 0, "and the next run replaces it")
  // a file in another format (an older build's): V8 never sees it, and the run writes ours
  writeFileSync(cacheFileOf(bundle), "not a cache of ours")
  await runFor("busy", 0)
  assert.ok(cpuOf() > 0, "replaced by one in our format")
  // a writer killed while saving leaves its temporary file: a rebuild removes it with the caches
  writeFileSync(`${cacheFileOf(bundle)}.12345`, "half")
  assert.ok(cacheFilesOf(bundle).includes(`${cacheFileOf(bundle)}.12345`))
})

t("a recipe run as a user runs it loads the bundle: no module of Effect or of our sources is resolved one by one", async () => {
  // a resolve hook beside tsx's logs every URL node resolves while recipes/redis.ts prints its help
  const dir = tempDir("loads")
  const log = path.join(dir, "resolved.log")
  writeFileSync(path.join(dir, "hooks.mjs"), `import { appendFileSync } from "node:fs"
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context)
  appendFileSync(${JSON.stringify(log)}, r.url + "\\n")
  return r
}`)
  writeFileSync(path.join(dir, "register.mjs"), `import { register } from "node:module"\nregister(${JSON.stringify(pathToFileURL(path.join(dir, "hooks.mjs")).href)})`)
  await sh(["node", "--import", "tsx", "--import", path.join(dir, "register.mjs"), path.join(repoRoot, "recipes/redis.ts"), "--help"])
  const urls = readFileSync(log, "utf8").split("\n").filter(Boolean)
  assert.ok(urls.some((u) => u.endsWith("/packages/dsl/index.mjs")), "the dsl's loader")
  const oneByOne = urls.filter((u) => u.includes("/node_modules/.pnpm/effect@") || u.includes("/packages/core/src/") || u.includes("/packages/dsl/src/"))
  assert.equal(oneByOne, [], "modules the bundle should have held")
})

// setup.sh installs it as root (the README's `tsx recipes/redis.ts`); elsewhere there is none to test
const ourWrapper = tsxWrapperIsOurs()
// as root, setup.sh writes it unless a tsx of someone else's is there, which it leaves alone
if (process.getuid?.() === 0 && !existsSync(tsxWrapper)) throw new Error(`builds: no ${tsxWrapper}: run bash scripts/setup.sh`)
if (existsSync(tsxWrapper) && !ourWrapper) console.log(`builds: ${tsxWrapper} is not setup.sh's wrapper for ${repoRoot}; its test is skipped`)

if (ourWrapper)
  t("setup.sh's tsx wrapper: `tsx FILE ARGS` is one node running FILE with tsx's loader (its pid, args and status) and node's compile cache; flags still reach tsx's CLI", async () => {
    const dir = tempDir("tsx-wrapper")
    const script = path.join(dir, "probe.ts")
    // type annotations: tsx's loader is there; the pid: no second node stands between us and the script
    writeFileSync(script, "const pid: number = process.pid\nconsole.log(JSON.stringify({ pid, args: process.argv.slice(2) }))\nprocess.exitCode = 3\n")
    const child = spawn(tsxWrapper, [script, "a b", "--flag"], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    child.stdout.on("data", (d: Buffer) => (out += d))
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve))
    const seen = JSON.parse(out) as { pid: number; args: string[] }
    assert.equal(seen.args, ["a b", "--flag"])
    assert.is(seen.pid, child.pid, "the script runs in the process the wrapper became (tsx's CLI would start another node)")
    assert.is(code, 3)
    // node's compile cache, in the checkout (not /tmp); a NODE_COMPILE_CACHE of the user's own wins
    const cacheProbe = path.join(dir, "cache.ts")
    // (node keeps its entries in a folder per node version and flags, under the one named)
    writeFileSync(cacheProbe, 'import { getCompileCacheDir } from "node:module"\nimport path from "node:path"\nconst dir = getCompileCacheDir()\nconsole.log(dir ? path.dirname(dir) : "none")\n')
    assert.is((await sh(["env", "-u", "NODE_COMPILE_CACHE", tsxWrapper, cacheProbe])).trim(), path.join(repoRoot, "node_modules/.cache/node-compile-cache"))
    const own = path.join(dir, "own-cache")
    assert.is((await sh(["env", `NODE_COMPILE_CACHE=${own}`, tsxWrapper, cacheProbe])).trim(), own)
    // not a file: tsx's own CLI, which knows its flags
    assert.match(await sh([tsxWrapper, "--version"]), /tsx v\d/)
    assert.is((await sh([tsxWrapper, "-e", "const n: number = 41; console.log(n + 1)"])).trim(), "42")
  })

// scripts/ts-hooks.mjs, the wrapper's loader: this checkout's files through its own in-thread hooks
// and transform cache, anything else through tsx's loader. Which one ran shows in whose cache the
// probe's transformed source landed: ours in node_modules/.cache/ts-hooks, tsx's under TMPDIR.
const hooksCache = path.join(repoRoot, "node_modules/.cache/ts-hooks")
const transformedBy = (marker: string, tmp: string) => {
  const holds = (dir: string) => existsSync(dir) && readdirSync(dir, { recursive: true, withFileTypes: true }).some((e) => e.isFile() && readFileSync(path.join(e.parentPath, e.name), "utf8").includes(marker))
  return { ours: holds(hooksCache), tsx: holds(tmp) }
}
const forgetTransforms = (marker: string) => {
  for (const f of existsSync(hooksCache) ? readdirSync(hooksCache) : []) if (readFileSync(path.join(hooksCache, f), "utf8").includes(marker)) rmSync(path.join(hooksCache, f))
}
/**
 * A probe script in `dir`: types, a `./helper.js` import that names helper.ts, an extensionless one
 * that names other.ts beside a directory other/ (node alone refuses that as a directory import),
 * and a throw on its line 6.
 */
const writeProbe = (dir: string, marker: string) => {
  writeFileSync(path.join(dir, "helper.ts"), `export const helper: string = "${marker}-helper"\n`)
  writeFileSync(path.join(dir, "other.ts"), `export const other = 2 as const // ${marker}\n`)
  mkdirSync(path.join(dir, "other"))
  writeFileSync(
    path.join(dir, "probe.ts"),
    `import { helper } from "./helper.js"\nimport { other } from "./other"\nconst marker: string = "${marker}"\nconsole.log(JSON.stringify({ marker, helper, other, args: process.argv.slice(2) }))\n\nif (process.argv[2] === "throw") throw new Error("from line 6")\n`,
  )
  return path.join(dir, "probe.ts")
}
/** A directory inside the checkout (the hooks take only its files), readable by anyone. */
const probeDirInCheckout = () => {
  const dir = mkdtempSync(path.join(repoRoot, "test", ".probe-"))
  chmodSync(dir, 0o755)
  inCheckout.push(dir)
  return dir
}
const inCheckout: string[] = []
t.after(() => {
  for (const d of inCheckout.splice(0)) rmSync(d, { recursive: true, force: true })
})

if (ourWrapper)
  t("ts-hooks: a script of this checkout runs through the wrapper's own hooks (./x.js and ./x name x.ts, errors point at its TypeScript lines, an edit is seen); one outside goes to tsx", async () => {
    const tmp = tempDir("ts-hooks-tmp")
    const marker = `probe-${process.pid}-${Date.now()}`
    const probe = writeProbe(probeDirInCheckout(), marker)
    // an entry last written 40 days ago goes at the next miss; one of yesterday stays
    mkdirSync(hooksCache, { recursive: true })
    const stale = path.join(hooksCache, `stale-${marker}.js`)
    const recent = path.join(hooksCache, `recent-${marker}.js`)
    writeFileSync(stale, "")
    writeFileSync(recent, "")
    const daysAgo = (d: number) => (Date.now() - d * 24 * 3600 * 1000) / 1000
    utimesSync(stale, daysAgo(40), daysAgo(40))
    utimesSync(recent, daysAgo(1), daysAgo(1))
    try {
      const out = JSON.parse(await sh(["env", `TMPDIR=${tmp}`, tsxWrapper, probe, "a b"]))
      assert.equal(out, { marker, helper: `${marker}-helper`, other: 2, args: ["a b"] })
      assert.equal(transformedBy(marker, tmp), { ours: true, tsx: false }, "the checkout's script went through our hooks, not tsx's")
      assert.equal([existsSync(stale), existsSync(recent)], [false, true], "a miss prunes entries older than a month")
      const thrown = await shAny(["env", `TMPDIR=${tmp}`, tsxWrapper, probe, "throw"])
      assert.is(thrown.exitCode, 1)
      assert.match(thrown.stderr, `${probe}:6:`, "the stack names the TypeScript file and line (source maps)")
      // the cache goes by the source, not the name: the same file edited gives the new code
      writeFileSync(probe, readFileSync(probe, "utf8").replace(`const marker: string = "${marker}"`, `const marker: string = "${marker}-edited"`))
      assert.is(JSON.parse(await sh(["env", `TMPDIR=${tmp}`, tsxWrapper, probe])).marker, `${marker}-edited`)

      // the same files outside the checkout: tsx's loader, its cache
      const outsideMarker = `${marker}-outside`
      const outside = writeProbe(tempDir("ts-hooks-outside"), outsideMarker)
      assert.is(JSON.parse(await sh(["env", `TMPDIR=${tmp}`, tsxWrapper, outside])).marker, outsideMarker)
      assert.equal(transformedBy(outsideMarker, tmp), { ours: false, tsx: true }, "a script outside the checkout went to tsx")
    } finally {
      forgetTransforms(marker)
      rmSync(stale, { force: true })
      rmSync(recent, { force: true })
    }
  })

if (ourWrapper)
  t("ts-hooks: a user who cannot write the checkout's cache still runs its scripts (through tsx's loader, caching in their own TMPDIR)", async () => {
    const user = "sc-tshooks"
    await shAny(["userdel", "--remove", user])
    await sh(["useradd", "--create-home", "--shell", "/bin/sh", user])
    try {
      const tmp = tempDir("ts-hooks-user")
      chmodSync(tmp, 0o777)
      const marker = `probe-user-${process.pid}-${Date.now()}`
      const probe = writeProbe(probeDirInCheckout(), marker)
      const out = JSON.parse(await sh(["runuser", "-u", user, "--", "env", "-i", `HOME=/home/${user}`, `PATH=${process.env["PATH"]}`, `TMPDIR=${tmp}`, tsxWrapper, probe]))
      assert.is(out.marker, marker)
      assert.equal(transformedBy(marker, tmp), { ours: false, tsx: true })
    } finally {
      await shAny(["pkill", "-u", user])
      await shAny(["userdel", "--remove", user])
    }
  })

t.run()
