// profile: where our pull and checkout spend their time (every ostree/skopeo call timed), and what the CLI's start-up costs.
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import { createReadStream, createWriteStream, existsSync } from "node:fs"
import { Writable } from "node:stream"
import { pipeline } from "node:stream/promises"
import { createGunzip } from "node:zlib"
import * as Ostree from "@syscontainers/core/Ostree"
import { blobRef } from "@syscontainers/core/OstreeRefs"
import { mkdir } from "node:fs/promises"
import { createRequire } from "node:module"
import path from "node:path"
import { bundleIsCurrent } from "@syscontainers/core/freshBundle"
import { scanLayer } from "@syscontainers/core/internal/layerScan"
import { repoRoot } from "../test/fixtures/harness.ts"
import type { Ctx } from "./context.ts"
import { layerBlobs } from "./images.ts"
import { fmtMs, median } from "./measure.ts"
import * as Containers from "@syscontainers/core/Containers"
import { bin, libraryCheckout, libraryPull, recorder, removeContainer, rmTree, tsxCommand, withSpawn, type Call } from "./ours.ts"
import { defer, freePort, log, run, timed, waitPong } from "./proc.ts"
import { prepareBundle } from "./start.ts"

/** A call's kind, for the breakdown: tool, verb, and what distinguishes costly variants. */
const kindOf = (argv: ReadonlyArray<string>): string => {
  const [tool, verb] = argv
  if (tool === "ostree") {
    if (verb === "commit") return argv.some((a) => a.startsWith("--tree=tar=")) ? "ostree commit --tree=tar (a layer)" : "ostree commit --tree=dir (config, manifest)"
    if (verb === "show") return "ostree show --print-metadata-key"
    if (verb === "ls") return "ostree ls -R"
    return `ostree ${verb}`
  }
  if (tool === "skopeo") return `skopeo ${argv.find((a) => a === "copy" || a === "inspect") ?? verb}`
  return tool ?? "?"
}

/** Time covered by at least one of the calls (they overlap when layers go in parallel). */
const busy = (calls: ReadonlyArray<Call>) => {
  const spans = [...calls].sort((a, b) => a.start - b.start)
  let total = 0
  let end = -Infinity
  for (const c of spans) {
    if (c.start > end) {
      total += c.end - c.start
      end = c.end
    } else if (c.end > end) {
      total += c.end - end
      end = c.end
    }
  }
  return total
}

/** A markdown table: each kind of call, how often, its summed time; then the wall time and what no command covers. */
const breakdown = (title: string, wall: number, calls: ReadonlyArray<Call>, extra: ReadonlyArray<[string, string]> = []) => {
  const byKind = new Map<string, { n: number; ms: number; max: number }>()
  for (const c of calls) {
    const k = kindOf(c.argv)
    const e = byKind.get(k) ?? { n: 0, ms: 0, max: 0 }
    e.n += 1
    e.ms += c.end - c.start
    e.max = Math.max(e.max, c.end - c.start)
    byKind.set(k, e)
  }
  const covered = busy(calls)
  return [
    `#### ${title}: ${fmtMs(wall)} in-process`,
    "",
    "| what | calls | summed time | longest | share of wall |",
    "|---|---:|---:|---:|---:|",
    ...[...byKind.entries()]
      .sort((a, b) => b[1].ms - a[1].ms)
      .map(([k, e]) => `| \`${k}\` | ${e.n} | ${fmtMs(e.ms)} | ${fmtMs(e.max)} | ${((100 * e.ms) / wall).toFixed(0)}% |`),
    `| in node, no command running (parsing, scanning tars, planning, fs calls) | | ${fmtMs(wall - covered)} | | ${((100 * (wall - covered)) / wall).toFixed(0)}% |`,
    ...extra.map(([k, v]) => `| ${k} | | ${v} | | |`),
    "",
  ].join("\n")
}

/** Median wall time of `argv` over `n` runs (process start to exit). */
const probe = async (argv: ReadonlyArray<string>, n: number, cwd = repoRoot) => {
  const xs: number[] = []
  for (let i = 0; i < n; i++) xs.push(await timed(() => run(argv, { cwd })))
  return median(xs)
}

// esbuild comes with tsx: the bundler a build step would use
const esbuildBin = () => {
  try {
    const fromTsx = createRequire(createRequire(import.meta.url).resolve("tsx/package.json"))
    const pkg = fromTsx.resolve("esbuild/package.json")
    const exe = path.join(path.dirname(pkg), "bin", "esbuild")
    return existsSync(exe) ? exe : undefined
  } catch {
    return undefined
  }
}

/** Whether the bin will run the bundle (packages/core/dist/cli.cjs no older than any source), as the bin decides. */
export const bundleCurrent = (): boolean =>
  bundleIsCurrent(path.join(repoRoot, "packages", "core", "dist", "cli.cjs"), [path.join(repoRoot, "packages", "core", "src"), path.join(repoRoot, "pnpm-lock.yaml")])

/** Whether a recipe will load the dsl's bundle (packages/dsl/dist/index.cjs), as packages/dsl/index.mjs decides. */
export const dslBundleCurrent = (): boolean =>
  bundleIsCurrent(path.join(repoRoot, "packages", "dsl", "dist", "index.cjs"), [...["dsl", "core"].map((p) => path.join(repoRoot, "packages", p, "src")), path.join(repoRoot, "pnpm-lock.yaml")])

/** What one CLI call and one recipe run pay before their first command: node, tsx, the module graph. */
const startup = async (ctx: Ctx) => {
  const dir = path.join(ctx.dir, "profile")
  await mkdir(dir, { recursive: true })
  const n = ctx.quick ? 3 : 5
  const rows: Array<[string, number]> = []
  const recipe = path.join(repoRoot, "recipes", "redis.ts")
  rows.push(["`node -e 0`", await probe(["node", "-e", "0"], n)])
  rows.push(["`node --import tsx -e 0` (tsx's loader registered)", await probe(["node", "--import", "tsx", "-e", "0"], n)])
  rows.push([`\`syscontainers --help\` (the bin; ${bundleCurrent() ? "its bundle dist/cli.cjs is current" : "its bundle is stale or missing: tsx"})`, await probe(["node", bin, "--help"], n)])
  const cliTs = path.join(repoRoot, "packages", "core", "src", "Cli.ts")
  rows.push(["`syscontainers --help` from the sources through tsx (the bin's fallback)", await probe(["node", "--import", "tsx", "--input-type=module", "-e", `const { main } = await import(${JSON.stringify(cliTs)}); process.exitCode = await main(["--help"])`], n)])
  rows.push([`\`node --import tsx recipes/redis.ts --help\` (${dslBundleCurrent() ? "the dsl's bundle dist/index.cjs" : "the dsl's bundle is stale or missing: dsl + core sources"} through tsx)`, await probe(["node", "--import", "tsx", recipe, "--help"], n)])
  const tsx = tsxCommand()
  rows.push([`\`tsx recipes/redis.ts --help\` (the tsx command, as the README says: ${tsx.label})`, await probe([tsx.argv0, recipe, "--help"], n)])
  rows.push(["`node_modules/.bin/tsx recipes/redis.ts --help` (tsx's own CLI, as `pnpm exec tsx` runs it: a node that starts another with the loader)", await probe([path.join(repoRoot, "node_modules", ".bin", "tsx"), recipe, "--help"], n)])
  rows.push(["`node --conditions=syscontainers-source --import tsx recipes/redis.ts --help` (the dsl and core sources and Effect module by module through tsx: before the bundle)", await probe(["node", "--conditions=syscontainers-source", "--import", "tsx", recipe, "--help"], n)])
  const esbuild = esbuildBin()
  if (esbuild) {
    // zx is the Spawn service's engine: what loading it costs a bundled start, on its own
    // read from stdin, esbuild resolves from its cwd: zx from this workspace
    const zxOut = path.join(dir, "zx-only.bundle.mjs")
    await run([esbuild, "--bundle", "--platform=node", "--format=esm", "--target=node20", `--outfile=${zxOut}`, "--log-level=error", "--banner:js=import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"], {
      cwd: repoRoot,
      input: 'import { $ } from "zx/core"\nif (typeof $ !== "function") process.exitCode = 1\n',
    })
    rows.push(["`node zx-only.mjs`: nothing but `import { $ } from \"zx/core\"`, bundled the same way (zx's share of a bundled start)", await probe(["node", zxOut], n)])
  }
  return [
    "### Start-up: paid by every `syscontainers` command and every recipe run",
    "",
    "| process | median wall |",
    "|---|---:|",
    ...rows.map(([k, v]) => `| ${k} | ${fmtMs(v)} |`),
    "",
  ].join("\n")
}

/** Our spawn path (core Spawn: zx with an argv spawn, no shell) against a bare node spawn, per process. */
const spawnCost = async () => {
  const n = 20
  const viaSpawn = await timed(async () => {
    for (let i = 0; i < n; i++) await run(["true"])
  })
  const t0 = performance.now()
  for (let i = 0; i < n; i++) spawnSync("true")
  const bare = performance.now() - t0
  return `Per process: ${fmtMs(viaSpawn / n)} through the core Spawn service (zx, argv straight to the kernel), ${fmtMs(bare / n)} with a bare \`child_process.spawnSync\`.\n`
}

/** nginx into a repo that holds redis: what a pull costs when most of it is already there. */
const secondPull = async (ctx: Ctx, dir: string) => {
  const repo = path.join(dir, "repo-second")
  await libraryPull(repo, ctx.registriesConf, "docker://redis:alpine", "redis")
  const p = recorder()
  await libraryPull(repo, ctx.registriesConf, "docker://nginx:alpine", "nginx", p.observe)
  const wall = p.elapsed()
  rmTree(repo)
  return breakdown("pull nginx after redis (base layer shared)", wall, p.calls)
}

/** `syscontainers run --detach` in-process on a prepared bundle: until runc returns, then until PONG. */
const runDetached = async (ctx: Ctx, dir: string) => {
  const repo = path.join(dir, "repo-run")
  await libraryPull(repo, ctx.registriesConf, "docker://redis:alpine", "redis")
  const port = await freePort()
  const bundle = path.join(dir, "run-bundle")
  await prepareBundle(repo, bundle, port)
  const name = `bench-profile-${process.pid}`
  const forget = defer("profile container", () => removeContainer(name))
  try {
    const p = recorder()
    await withSpawn(Effect.scoped(Containers.start({ bundle, name, runtime: "runc" })), p.observe)
    const started = p.elapsed()
    await waitPong(port)
    const ready = p.elapsed()
    return breakdown(`run -d redis, bundle prepared (PONG ${fmtMs(ready - started)} after runc returned)`, started, p.calls)
  } finally {
    await forget()
    rmTree(repo)
    rmTree(bundle)
  }
}

/** Median of `n` runs of an async job, in ms. */
const medianOf = async (n: number, job: (i: number) => Promise<unknown>, between?: (i: number) => Promise<void> | void) => {
  const xs: number[] = []
  for (let i = 0; i < n; i++) {
    xs.push(await timed(() => job(i)))
    await between?.(i)
  }
  return median(xs)
}

const streamThrough = async (file: string, o: { readonly hashCompressed: boolean; readonly hashTar: boolean; readonly chunkSize?: number }) => {
  const source = createReadStream(file, { highWaterMark: 1 << 20 })
  const compressed = createHash("sha256")
  if (o.hashCompressed) source.on("data", (d) => compressed.update(d))
  const tar = createHash("sha256")
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (o.hashTar) tar.update(chunk)
      cb()
    },
  })
  await pipeline(source, createGunzip(o.chunkSize ? { chunkSize: o.chunkSize } : {}), sink)
}

const hashOnly = async (file: string) => {
  const h = createHash("sha256")
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer)
}

/**
 * The pull's work on the bulk image taken apart, one layer after the other: each pass over the
 * bytes on its own, and ostree's commit of the compressed and of the uncompressed tar.
 */
const pullAnatomy = async (ctx: Ctx, dir: string) => {
  const blobs = await layerBlobs(ctx.bulk.layout, ctx.bulk.layoutRef.split(":").pop()!)
  const n = ctx.quick ? 2 : 3
  const pass = (o: Parameters<typeof streamThrough>[1]) => medianOf(n, async () => {
    for (const b of blobs) await streamThrough(b.path, o)
  })
  const tars: string[] = []
  for (const [i, b] of blobs.entries()) {
    const out = path.join(dir, `layer${i}.tar`)
    await pipeline(createReadStream(b.path), createGunzip(), createWriteStream(out))
    tars.push(out)
  }
  const commitAll = (files: ReadonlyArray<string>) =>
    medianOf(
      n,
      async (i) => {
        const repo = path.join(dir, `commit-repo-${i}`)
        await run(["ostree", "init", "--mode=bare-user", `--repo=${repo}`])
        for (const [j, f] of files.entries())
          await run(["ostree", "commit", `--repo=${repo}`, "--tar-autocreate-parents", `--branch=l${j}`, `--tree=tar=${f}`, "--no-xattrs", "--fsync=false"], { env: { LC_ALL: "C.UTF-8" } })
      },
      (i) => rmTree(path.join(dir, `commit-repo-${i}`)),
    )
  const scan = await medianOf(n, async () => {
    for (const b of blobs) await Effect.runPromise(scanLayer({ path: b.path, digest: b.digest }))
  })
  const rows: Array<[string, number]> = [
    ["sha256 of the compressed blobs", await medianOf(n, async () => {
      for (const b of blobs) await hashOnly(b.path)
    })],
    ["gunzip + sha256 of the tar, zlib's default 16 KiB output chunks (as `scanLayer` reads)", await pass({ hashCompressed: false, hashTar: true })],
    ["gunzip + sha256 of the tar, `createGunzip({ chunkSize: 1 << 20 })`", await pass({ hashCompressed: false, hashTar: true, chunkSize: 1 << 20 })],
    ["the floor: sha256 + gunzip + sha256, 1 MiB chunks", await pass({ hashCompressed: true, hashTar: true, chunkSize: 1 << 20 })],
    ["`scanLayer` (sha256 + gunzip + sha256 + every tar header parsed in JS)", scan],
    ["`ostree commit --tree=tar=` of the gzip blobs (what the pull ran for every layer before it streamed; it still does for layers under 1 MiB)", await commitAll(blobs.map((b) => b.path))],
    ["`ostree commit --tree=tar=` of the same tars uncompressed (what a streamed layer costs ostree: it reads the tar the scan gunzips)", await commitAll(tars)],
  ]
  for (const t of tars) rmTree(t)
  return [
    "#### pull, taken apart: the bulk image's two layers, one after the other (in-process passes use node's zlib and crypto)",
    "",
    "| pass | median |",
    "|---|---:|",
    ...rows.map(([k, v]) => `| ${k} | ${fmtMs(v)} |`),
    "",
  ].join("\n")
}

/** One ostree process per layer (what applyLayers runs) against one `checkout --from-stdin` for all (possible only where the layers share a skip list). */
const checkoutAnatomy = async (ctx: Ctx, dir: string) => {
  const repoPath = path.join(dir, "repo-anatomy")
  const image = await libraryPull(repoPath, ctx.registriesConf, "docker://redis:alpine", "redis")
  const repo = image.image.repo
  const n = ctx.quick ? 3 : 5
  const layers = image.image.manifest.layers.map((l) => blobRef(l.digest))
  const list = (into: string): Ostree.CheckoutOptions[] => layers.map((ref) => ({ ref, into, union: "union", link: "hardlink" }))
  const into = (k: string, i: number) => path.join(dir, `anatomy-${k}-${i}`)
  const perLayer = await medianOf(n, (i) => withSpawn(Effect.forEach(list(into("each", i)), (o) => Ostree.checkout(repo, o), { discard: true })), (i) => rmTree(into("each", i)))
  // ostree reads NUL-separated "REV\0SUBPATH\0" pairs; options and destination are the command line's, shared by all
  const oneProcess = await medianOf(
    n,
    (i) => run(["ostree", "checkout", `--repo=${repoPath}`, "-U", "--union", "--require-hardlinks", "--fsync=false", "--from-stdin", into("many", i)], { input: layers.map((ref) => `${ref}\0/\0`).join(""), env: { LC_ALL: "C.UTF-8" } }),
    (i) => rmTree(into("many", i)),
  )
  const refsCall = await medianOf(n, () => run(["ostree", "refs", `--repo=${repoPath}`]))
  const showCall = await medianOf(n, () => run(["ostree", "show", "--print-metadata-key=docker.digest", `--repo=${repoPath}`, image.image.ref]))
  rmTree(repoPath)
  return [
    `#### checkout, taken apart: redis's ${layers.length} layers, no skip lists`,
    "",
    "| what | median |",
    "|---|---:|",
    `| one \`ostree checkout --union\` per layer (${layers.length} processes) | ${fmtMs(perLayer)} |`,
    `| one \`ostree checkout --from-stdin DEST\` for all layers (one process; one set of options, so one skip list for all) | ${fmtMs(oneProcess)} |`,
    `| one \`ostree refs\` (the cost of any ostree call: start, open the repo) | ${fmtMs(refsCall)} |`,
    `| one \`ostree show --print-metadata-key\` | ${fmtMs(showCall)} |`,
    "",
  ].join("\n")
}

/** What the runtime spec's schema costs a fresh process: the first validate compiles it (ajv). */
const validateCost = async (ctx: Ctx) => {
  const spec = path.join(repoRoot, "packages", "core", "src", "RuntimeSpec.ts")
  const script = [
    `const { validate } = await import(${JSON.stringify(spec)})`,
    "const config = { ociVersion: '1.0.2', root: { path: 'rootfs' }, process: { cwd: '/', args: ['sh'] } }",
    "let t = performance.now(); validate(config); const first = performance.now() - t",
    "t = performance.now(); validate(config); const second = performance.now() - t",
    "console.log(JSON.stringify({ first, second }))",
  ].join("\n")
  const xs: Array<{ first: number; second: number }> = []
  for (let i = 0; i < (ctx.quick ? 2 : 3); i++) xs.push(JSON.parse((await run(["node", "--import", "tsx", "--input-type=module", "-e", script], { cwd: repoRoot })).stdout.trim()) as { first: number; second: number })
  return `The runtime-spec schema: the first \`RuntimeSpec.validate\` in a fresh process takes ${fmtMs(median(xs.map((x) => x.first)))}, later ones ${fmtMs(median(xs.map((x) => x.second)))}; every \`spec\` and \`patch\` (a CLI call, a recipe's spec step) pays the first.\n`
}

/** The profile: start-up, pull and checkout broken down per command, scanLayer alone. */
export const profile = async (ctx: Ctx): Promise<void> => {
  log("profile: start-up, pull and checkout per command")
  const dir = path.join(ctx.dir, "profile")
  await mkdir(dir, { recursive: true })
  const sections: string[] = [await startup(ctx), await spawnCost()]
  const targets = [
    { label: "redis", docker: "docker://redis:alpine", name: "redis", layout: ctx.fixtureLayout, tag: "redis-alpine" },
    { label: "bulk (5,000 small files + 5 x 20 MiB)", docker: ctx.bulk.docker, name: "bench-bulk", layout: ctx.bulk.layout, tag: ctx.bulk.layoutRef.split(":").pop()! },
  ]
  try {
    for (const t of targets) {
      const repo = path.join(dir, `repo-${t.name}`)
      // one untimed pull first: the mirror's and the page cache's first-touch costs stay out
      await libraryPull(path.join(dir, "warm"), ctx.registriesConf, t.docker, t.name)
      rmTree(path.join(dir, "warm"))
      const p = recorder()
      await libraryPull(repo, ctx.registriesConf, t.docker, t.name, p.observe)
      const pullWall = p.elapsed()
      // the JS tar pass of the pull on its own: gunzip, sha256 twice, parse every header
      const blobs = await layerBlobs(t.layout, t.tag)
      const scanMs = await timed(() => Effect.runPromise(Effect.forEach(blobs, (b) => scanLayer({ path: b.path, digest: b.digest }), { concurrency: 2 })))
      sections.push(breakdown(`pull ${t.label}`, pullWall, p.calls, [["of which `scanLayer` over the blobs (measured alone, same concurrency)", fmtMs(scanMs)]]))
      // the first checkout after a pull may plan and cache what later ones reuse: each shown apart
      const checkouts = [
        { order: "union", what: "the first after the pull" },
        { order: "union", what: "a later one" },
        { order: "union-add", what: "a later one" },
      ] as const
      for (const [i, c] of checkouts.entries()) {
        const r = recorder()
        await libraryCheckout(repo, t.name, path.join(dir, `bundle-${t.name}-${i}`), c.order, r.observe)
        sections.push(breakdown(`checkout ${t.label}, --order ${c.order}, ${c.what}`, r.elapsed(), r.calls))
        rmTree(path.join(dir, `bundle-${t.name}-${i}`))
      }
      rmTree(repo)
    }
    sections.push(await secondPull(ctx, dir), await runDetached(ctx, dir), await pullAnatomy(ctx, dir), await checkoutAnatomy(ctx, dir), await validateCost(ctx))
  } finally {
    rmTree(dir)
  }
  ctx.profile.unshift(sections.join("\n"))
}
