// run: `npm run bench`: syscontainers measured side by side against podman, umoci and the plain tools, on a scratch ext4; writes results.json and results.md.
import { execFileSync } from "node:child_process"
import { cpSync, existsSync, mkdirSync, statSync, writeFileSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { parseArgs } from "node:util"
import { buildScript, defaultCacheDir, startMirror } from "../test/fixtures/mirror.ts"
import { repoRoot } from "../test/fixtures/harness.ts"
import type { Ctx } from "./context.ts"
import { buildBulk, buildScale, push } from "./images.ts"
import { markdownTable, type Row } from "./measure.ts"
import { bundleCurrent, profile } from "./profile.ts"
import { cleanupAll, defer, log, run } from "./proc.ts"
import { coldPull, secondImage } from "./pull.ts"
import { diskForContainers, rootfsReady } from "./rootfs.ts"
import { mountScratch } from "./scratch.ts"
import { scaling } from "./scaling.ts"
import { recipeRuns, startToReady } from "./start.ts"

const groups = ["pull", "second", "rootfs", "disk", "start", "recipe", "scaling", "profile"] as const
type Group = (typeof groups)[number]

const usage = `usage: npm run bench [-- --quick] [-- --only GROUP,...]
  --quick   2 measured rounds instead of 5, scaling at 1k/3k/6k files instead of 1k/10k/50k;
            writes bench/results-quick.{json,md} and leaves bench/results.* alone
  --only    run some groups: ${groups.join(", ")}`

const { values } = parseArgs({ options: { quick: { type: "boolean", default: false }, only: { type: "string" }, help: { type: "boolean", short: "h", default: false } } })
if (values.help) {
  console.log(usage)
  process.exit(0)
}
const quick = values.quick
const only = new Set((values.only ?? groups.join(",")).split(",").map((s) => s.trim()).filter(Boolean))
for (const g of only) if (!(groups as ReadonlyArray<string>).includes(g)) throw new Error(`bench: unknown group ${g}\n${usage}`)
const wanted = (g: Group) => only.has(g)

const have = (tool: string) => {
  try {
    execFileSync("bash", ["-c", 'command -v "$1"', "_", tool], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
}

/** podman comes from Debian; setup.sh brought the rest. Installed only when missing, only as root. */
const ensureTools = () => {
  if (!have("podman")) {
    if (process.getuid?.() !== 0) throw new Error("bench: podman is missing; install it with: sudo apt-get install -y podman")
    log("installing podman from Debian (apt-get)")
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
    execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env })
    execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", "podman"], { stdio: ["ignore", "ignore", "inherit"], env })
  }
  const missing = ["umoci", "skopeo", "ostree", "runc", "docker-registry", "mkfs.ext4", "du", "cp"].filter((t) => !have(t))
  if (missing.length) throw new Error(`bench: missing ${missing.join(", ")} (bash scripts/setup.sh installs them)`)
  if (process.getuid?.() !== 0) throw new Error("bench: needs root (loop mount, podman's overlay storage, runc)")
}

const version = (argv: ReadonlyArray<string>, pick: (out: string) => string = (o) => o.split("\n")[0]!.trim()) => {
  try {
    return pick(execFileSync(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "ignore"] }).toString())
  } catch {
    return "?"
  }
}

ensureTools()
const scratch = mountScratch(path.join(repoRoot, "work", "bench"))
log(`scratch: ${scratch.description}, at ${scratch.dir}`)
// Ctrl-C or kill: containers, podman's storage, the mirror, the mount all go
let interrupted = false
const onSignal = (signal: NodeJS.Signals) => {
  if (interrupted) return
  interrupted = true
  log(`${signal}: cleaning up`)
  void cleanupAll().finally(() => {
    scratch.release()
    process.exit(signal === "SIGINT" ? 130 : 143)
  })
}
process.on("SIGINT", onSignal)
process.on("SIGTERM", onSignal)
process.on("exit", () => scratch.release())

const rows: Row[] = []
const failures: string[] = []
const notes: string[] = []
// other work on the machine shows up in the timings: say how busy it was
const loadAtStart = os.loadavg()[0]!
const started = Date.now()
try {
  // the fixtures' images, built (or found up to date) in their usual cache, then copied: the
  // bench's mirror keeps its registry storage on the scratch filesystem, apart from the tests'
  // the bin runs its bundle only when no source is newer; setup.sh builds it, and so do we in case a source moved since
  const buildCli = path.join(repoRoot, "scripts", "build-cli.mjs")
  if (existsSync(buildCli)) await run(["node", buildCli], { cwd: repoRoot })
  log(`the CLI's bundle is ${bundleCurrent() ? "current" : "stale or missing: the CLI runs through tsx"}`)
  log("fixture images")
  await run(["bash", buildScript, defaultCacheDir])
  const fixtures = path.join(scratch.dir, "fixtures")
  mkdirSync(fixtures, { recursive: true })
  cpSync(path.join(defaultCacheDir, "oci"), path.join(fixtures, "oci"), { recursive: true })
  cpSync(path.join(defaultCacheDir, "oci.key"), path.join(fixtures, "oci.key"))
  const mirror = await startMirror({ cacheDir: fixtures })
  defer("mirror", () => mirror.stop())
  log(`mirror on 127.0.0.1:${mirror.port}`)

  log("building the bench images (GNU tar + umoci) and pushing them to the mirror")
  const imagesDir = path.join(scratch.dir, "images")
  const bulk = await buildBulk(imagesDir)
  const scaleSizes = quick ? [1000, 3000, 6000] : [1000, 10_000, 50_000]
  const scale = wanted("scaling") ? await Promise.all(scaleSizes.map((n) => buildScale(imagesDir, n))) : []
  for (const image of [bulk, ...scale]) await push(image, { port: mirror.port, dir: path.join(imagesDir, "push") })

  const ctx: Ctx = {
    dir: path.join(scratch.dir, "work"),
    quick,
    rounds: quick ? 2 : 5,
    registriesConf: mirror.registriesConf,
    mirrorPort: mirror.port,
    fixtureLayout: path.join(fixtures, "oci"),
    bulk,
    scale,
    profile: [],
  }
  const redis = { label: "redis", name: "redis", docker: "docker://redis:alpine", qualified: "docker.io/library/redis:alpine", layoutRef: `${ctx.fixtureLayout}:redis-alpine` }
  const nginx = { label: "nginx", name: "nginx", docker: "docker://nginx:alpine", qualified: "docker.io/library/nginx:alpine" }
  const bulkTarget = { label: "bulk (5,000 small files + 5 x 20 MiB)", name: "bench-bulk", docker: bulk.docker, qualified: bulk.qualified, layoutRef: bulk.layoutRef }

  // the product is edited while a run goes on: a source newer than the bundle sends the CLI
  // through tsx (half a second more per call). Each group starts on a current bundle and is
  // measured again, once, if the bundle went stale or was rebuilt while it ran.
  const bundleFile = path.join(repoRoot, "packages", "core", "dist", "cli.cjs")
  const bundleTime = () => (existsSync(bundleFile) ? statSync(bundleFile).mtimeMs : 0)
  const headOf = () => version(["git", "-C", repoRoot, "rev-parse", "--short", "HEAD"])
  const measuredAt = new Map<string, string>()
  const group = async (g: Group, job: () => Promise<Row[] | void>) => {
    if (!wanted(g) || interrupted) return
    for (let attempt = 1; attempt <= 2; attempt++) {
      if (existsSync(buildCli) && !bundleCurrent()) {
        log("a source changed: rebuilding the CLI's bundle (scripts/build-cli.mjs)")
        await run(["node", buildCli], { cwd: repoRoot })
      }
      const startedAt = Date.now()
      const head = headOf()
      try {
        const r = await job()
        const clean = bundleCurrent() && bundleTime() < startedAt
        if (!clean && attempt === 1 && !interrupted) {
          log(`group ${g}: the sources changed while it ran (its CLI calls may have gone through tsx): measuring it again`)
          continue
        }
        if (!clean) notes.push(`${g}: the sources changed during both attempts; some of its CLI calls may have gone through tsx`)
        measuredAt.set(g, headOf() === head ? head : `${head}..${headOf()}`)
        if (r) rows.push(...r)
      } catch (e) {
        failures.push(`${g}: ${(e as Error).message}`)
        log(`group ${g} failed: ${(e as Error).stack ?? e}`)
      }
      return
    }
  }
  await group("pull", async () => [...(await coldPull(ctx, redis)), ...(await coldPull(ctx, bulkTarget))])
  await group("second", () => secondImage(ctx, redis, nginx))
  await group("rootfs", async () => [...(await rootfsReady(ctx, redis, { podman: 0.5 })), ...(await rootfsReady(ctx, bulkTarget, { cpal: 1.5, umoci: 0.1 }))])
  await group("disk", () => diskForContainers(ctx, redis, 20))
  await group("start", () => startToReady(ctx))
  await group("recipe", () => recipeRuns(ctx))
  await group("scaling", () => scaling(ctx, quick ? 2 : 3))
  await group("profile", () => profile(ctx))

  const minutes = ((Date.now() - started) / 60_000).toFixed(1)
  const machine = `${os.cpus().length} cores (${os.cpus()[0]?.model.trim() ?? "?"}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${os.release()}`
  const versions = [
    `node ${process.version}`,
    version(["podman", "--version"]),
    version(["skopeo", "--version"]),
    `ostree ${version(["ostree", "--version"], (o) => /Version: '?([^'\n]+)/.exec(o)?.[1] ?? "?")}`,
    `umoci ${version(["umoci", "--version"], (o) => o.trim().split(" ").pop() ?? "?")}`,
    version(["runc", "--version"]),
  ].join(", ")
  // the product changes under a long run too: say which code was measured
  const head = version(["git", "-C", repoRoot, "rev-parse", "--short", "HEAD"])
  const dirty = version(["git", "-C", repoRoot, "status", "--porcelain", "--", "packages", "recipes", "scripts"], (o) => o.trim())
  const commit = `${head}${dirty && dirty !== "?" ? " with uncommitted changes in packages/recipes/scripts" : ""}`
  const met = rows.filter((r) => r.met === true).length
  const missed = rows.filter((r) => r.met === false)
  const md = [
    "# Benchmarks",
    "",
    `\`npm run bench${quick ? " -- --quick" : ""}\`, ${new Date().toISOString().slice(0, 10)}, ${minutes} min. ${machine}.`,
    `Measured: commit ${commit}. Filesystem: ${scratch.description}. Tools: ${versions}.`,
    `Load average (1 min) ${loadAtStart.toFixed(2)} at the start, ${os.loadavg()[0]!.toFixed(2)} at the end (anything above 0 is other work sharing the 2 cores).`,
    `The CLI ran its esbuild bundle through V8's code cache (packages/core/dist/cli.cjs; rebuilt before a group when a source had changed, and a group measured again when one changed while it ran); recipes run through tsx as the README says.${notes.length ? ` Caveats: ${notes.join("; ")}.` : ""}`,
    ...(new Set(measuredAt.values()).size > 1 ? [`The product changed between groups: ${[...measuredAt.entries()].map(([g, c]) => `${g} at ${c}`).join(", ")}.`] : []),
    "",
    `Each comparison runs its contenders interleaved (A B A B ...), one warm-up round then ${ctx.rounds} measured rounds; the table shows medians (scaling: ${quick ? 2 : 3} rounds, no warm-up). ` +
      "ratio = ours / peer; a goal is the ratio to stay under. *ours* is the `syscontainers` command line as a user runs it (process start included) unless the row says *library*. " +
      "Images come from a local registry on 127.0.0.1 (the test mirror), so a pull's network is loopback. podman uses its own storage (overlay) on the same filesystem, runc, cgroupfs. " +
      "Readiness is a RESP `PING` answered `+PONG` (what `redis-cli ping` sends), polled every 5 ms.",
    "",
    `Goals: ${met} met, ${missed.length} missed.${failures.length ? ` Groups that failed: ${failures.join("; ")}.` : ""}`,
    "",
    markdownTable(rows),
    "",
    ...(missed.length ? ["Missed goals, by how much:", "", ...missed.map((r) => `- ${r.metric}, against ${r.peer}: ${r.ratio.toFixed(2)}x where the goal is ≤ ${r.goal}x (${(r.ratio / r.goal!).toFixed(1)}x over)`), ""] : []),
    "## Where our time goes",
    "",
    ...ctx.profile,
    "",
  ].join("\n")
  const out = quick ? "results-quick" : "results"
  const benchDir = path.join(repoRoot, "bench")
  writeFileSync(path.join(benchDir, `${out}.json`), JSON.stringify(rows, null, 2) + "\n")
  writeFileSync(path.join(benchDir, `${out}.md`), md)
  log(`wrote bench/${out}.json and bench/${out}.md: ${met} goals met, ${missed.length} missed, ${minutes} min`)
  console.log(markdownTable(rows))
  if (failures.length) process.exitCode = 1
} catch (e) {
  log(`bench failed: ${(e as Error).stack ?? e}`)
  process.exitCode = 1
} finally {
  if (!interrupted) {
    await cleanupAll()
    scratch.release()
  }
}
