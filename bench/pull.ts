// pull: cold pulls into an empty store, and a second image over a shared base, ours against podman, skopeo and the floor.
import { createHash } from "node:crypto"
import { createReadStream } from "node:fs"
import { mkdir } from "node:fs/promises"
import path from "node:path"
import { pipeline } from "node:stream/promises"
import { Writable } from "node:stream"
import { createGunzip } from "node:zlib"
import type { Ctx } from "./context.ts"
import { layerBlobs } from "./images.ts"
import { compare, interleave, median, row, WARMUP, type Row } from "./measure.ts"
import { cliPull, libraryPull, rmTree } from "./ours.ts"
import { makePodman, type Podman } from "./podman.ts"
import { log, run } from "./proc.ts"

/** Bytes a tree takes on disk, each inode counted once (GNU du), not crossing into other mounts. */
export const du = async (...dirs: ReadonlyArray<string>): Promise<number> => {
  const out = (await run(["du", "-s", "-x", "-c", "--block-size=1", ...dirs])).stdout.trim().split("\n")
  return Number(out[out.length - 1]!.split(/\s+/)[0])
}

/** An image as each side names it. */
export interface PullTarget {
  readonly label: string
  /** docker://... for syscontainers and skopeo. */
  readonly docker: string
  /** docker.io/library/...:tag for podman. */
  readonly qualified: string
  /** Its name in our repo. */
  readonly name: string
}

// what every puller must at least do with the blobs: hash the compressed bytes, gunzip, hash the tar
const hashBlob = async (file: string) => {
  const compressed = createHash("sha256")
  const tar = createHash("sha256")
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      tar.update(chunk)
      cb()
    },
  })
  // big chunks: zlib's default 16 KiB output chunks cost a third more here
  const source = createReadStream(file, { highWaterMark: 1 << 20 })
  source.on("data", (d) => compressed.update(d))
  await pipeline(source, createGunzip({ chunkSize: 1 << 20 }), sink)
  return [compressed.digest("hex"), tar.digest("hex")]
}

/** Cold pull of one image into an empty store: ours (CLI and library), podman, skopeo to oci:, the floor. */
export const coldPull = async (ctx: Ctx, t: PullTarget): Promise<Row[]> => {
  log(`cold pull: ${t.label}`)
  const base = path.join(ctx.dir, "pull", t.name)
  await mkdir(base, { recursive: true })
  // the floor works on blobs already here: one skopeo copy, untimed
  const reference = path.join(base, "reference")
  await run(["skopeo", `--registries-conf=${ctx.registriesConf}`, "copy", "--quiet", t.docker, `oci:${reference}:ref`])
  const blobs = await layerBlobs(reference, "ref")
  let podman: Podman | undefined
  const samples = await interleave(`cold pull ${t.label}`, [
    {
      name: "ours",
      run: (i) => cliPull(path.join(base, `ours-${i}`), ctx.registriesConf, t.docker, t.name),
      cleanup: async (i) => rmTree(path.join(base, `ours-${i}`)),
    },
    {
      name: "podman",
      prepare: async (i) => {
        podman = makePodman(path.join(base, `podman-${i}`), ctx.registriesConf)
      },
      run: () => podman!.run(["pull", "--quiet", "--tls-verify=false", t.qualified]),
      cleanup: () => podman!.destroy(),
    },
    {
      name: "skopeo",
      run: (i) => run(["skopeo", `--registries-conf=${ctx.registriesConf}`, "copy", "--quiet", t.docker, `oci:${path.join(base, `skopeo-${i}`)}:x`]),
      cleanup: async (i) => rmTree(path.join(base, `skopeo-${i}`)),
    },
    {
      name: "floor",
      run: () => Promise.all(blobs.map((b) => hashBlob(b.path))),
    },
    {
      name: "library",
      run: (i) => libraryPull(path.join(base, `lib-${i}`), ctx.registriesConf, t.docker, t.name),
      cleanup: async (i) => rmTree(path.join(base, `lib-${i}`)),
    },
  ], { rounds: ctx.rounds })
  rmTree(base)
  const metric = `cold pull: ${t.label}`
  return [
    ...compare(metric, samples, "ours", [
      { name: "podman", label: "podman pull", goal: 0.6, note: "both into an empty store made for the run (our repo's ostree init, podman's storage init included)" },
      { name: "skopeo", label: "skopeo copy to oci:" },
      { name: "floor", label: "floor: sha256 + gunzip + sha256 of the blobs (in-process)" },
    ]),
    row({
      metric: `${metric} (library in-process, no CLI start-up)`,
      peer: "podman pull",
      ours: median(samples.get("library")!),
      theirs: median(samples.get("podman")!),
      runs: samples.get("library")!.length,
      note: "context: what the goal would see if the CLI started instantly",
    }),
  ]
}

/** nginx after redis: only the new layers come in; time and store growth against podman. */
export const secondImage = async (ctx: Ctx, first: PullTarget, second: PullTarget): Promise<Row[]> => {
  log(`second image: ${second.label} after ${first.label}`)
  const base = path.join(ctx.dir, "second")
  await mkdir(base, { recursive: true })
  let podman: Podman | undefined
  const growth = { ours: [] as number[], podman: [] as number[] }
  const imported: number[] = []
  const reused: number[] = []
  let before = 0
  const samples = await interleave(`${second.name} after ${first.name}`, [
    {
      name: "ours",
      prepare: async (i) => {
        await cliPull(path.join(base, `ours-${i}`), ctx.registriesConf, first.docker, first.name)
        before = await du(path.join(base, `ours-${i}`))
      },
      run: async (i) => {
        const r = await cliPull(path.join(base, `ours-${i}`), ctx.registriesConf, second.docker, second.name)
        if (i < WARMUP) return
        imported.push(r.layersImported)
        reused.push(r.layersReused)
      },
      cleanup: async (i) => {
        if (i >= WARMUP) growth.ours.push((await du(path.join(base, `ours-${i}`))) - before)
        rmTree(path.join(base, `ours-${i}`))
      },
    },
    {
      name: "podman",
      prepare: async (i) => {
        podman = makePodman(path.join(base, `podman-${i}`), ctx.registriesConf)
        await podman.run(["pull", "--quiet", "--tls-verify=false", first.qualified])
        before = await du(podman.dir)
      },
      run: () => podman!.run(["pull", "--quiet", "--tls-verify=false", second.qualified]),
      cleanup: async (i) => {
        if (i >= WARMUP) growth.podman.push((await du(podman!.dir)) - before)
        await podman!.destroy()
      },
    },
  ], { rounds: ctx.rounds })
  rmTree(base)
  const newLayers = await newLayerCount(ctx, first, second)
  const metric = `second image sharing a base: ${second.label} after ${first.label}`
  const allOnlyNew = imported.every((n) => n === newLayers)
  return [
    ...compare(metric, samples, "ours", [{ name: "podman", label: "podman pull", goal: 0.6 }]),
    row({ metric: `${metric}: store growth`, peer: "podman storage growth", ours: median(growth.ours), theirs: median(growth.podman), goal: 0.3, runs: growth.ours.length, unit: "bytes" }),
    {
      ...row({
        metric: `${metric}: layers imported`,
        peer: "layers not in the first image",
        ours: median(imported),
        theirs: newLayers,
        runs: imported.length,
        unit: "layers",
        note: `${median(reused)} reused; ${allOnlyNew ? "every run imported only the new layers" : `runs imported ${imported.join(", ")}`}`,
      }),
      goal: 1,
      met: allOnlyNew,
    },
  ]
}

// layers of `second` that `first` does not have, from the mirror's manifests
const newLayerCount = async (ctx: Ctx, first: PullTarget, second: PullTarget) => {
  const layersOf = async (t: PullTarget) => {
    const raw = (await run(["skopeo", `--registries-conf=${ctx.registriesConf}`, "inspect", "--raw", t.docker])).stdout
    return (JSON.parse(raw) as { layers: Array<{ digest: string }> }).layers.map((l) => l.digest)
  }
  const had = new Set(await layersOf(first))
  return (await layersOf(second)).filter((d) => !had.has(d)).length
}
