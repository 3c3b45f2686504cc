// scaling: pull and checkout of one-layer images of 1k, 10k, 50k small files, per file, against cp -al and umoci unpack.
import { mkdir } from "node:fs/promises"
import path from "node:path"
import type { Ctx } from "./context.ts"
import type { BenchImage } from "./images.ts"
import { interleave, median, row, type Row } from "./measure.ts"
import { cli, cliPull, libraryCheckout, libraryPull, rmTree } from "./ours.ts"
import { log, run } from "./proc.ts"

const names = { pull: "syscontainers pull", checkout: "syscontainers checkout", cpal: "cp -al", umoci: "umoci unpack" } as const
type Kind = keyof typeof names

/** Pull and checkout at each size; rows per size, and the marginal cost per file between sizes. */
export const scaling = async (ctx: Ctx, rounds: number): Promise<Row[]> => {
  const medians = new Map<number, Record<Kind, number>>()
  const rows: Row[] = []
  for (const image of ctx.scale) {
    const m = await oneSize(ctx, image, rounds)
    medians.set(image.files, m)
    const n = image.files
    const per = (ms: number) => `${((ms * 1000) / n).toFixed(1)} µs/file overall`
    rows.push(
      row({ metric: `scaling, ${n} files: pull`, peer: names.umoci, ours: m.pull, theirs: m.umoci, runs: rounds, note: `ours ${per(m.pull)}, umoci ${per(m.umoci)}` }),
      row({ metric: `scaling, ${n} files: checkout`, peer: "floor: cp -al", ours: m.checkout, theirs: m.cpal, runs: rounds, note: `ours ${per(m.checkout)}, cp -al ${per(m.cpal)}` }),
      row({ metric: `scaling, ${n} files: checkout`, peer: names.umoci, ours: m.checkout, theirs: m.umoci, runs: rounds }),
    )
  }
  // marginal cost per file: the fixed costs (process starts, the CLI's module loading) drop out
  const sizes = [...medians.keys()].sort((a, b) => a - b)
  if (sizes.length >= 3) {
    const marginal = (k: Kind, a: number, b: number) => ((medians.get(b)![k] - medians.get(a)![k]) * 1000) / (b - a)
    const [s0, s1, s2] = [sizes[0]!, sizes[sizes.length - 2]!, sizes[sizes.length - 1]!]
    for (const k of ["pull", "checkout"] as const) {
      const low = marginal(k, s0, s1)
      const high = marginal(k, s1, s2)
      rows.push(
        row({
          metric: `scaling: ${names[k]} µs per added file, ${s1}→${s2} files`,
          peer: `the same, ${s0}→${s1} files`,
          ours: high,
          theirs: low,
          goal: 1.5,
          runs: rounds,
          unit: "us/file",
          note: "flat per-file cost: the upper range within 1.5x of the lower",
        }),
      )
      for (const peer of ["cpal", "umoci"] as const)
        rows.push(row({ metric: `scaling: ${names[k]} µs per added file, ${s1}→${s2} files`, peer: names[peer], ours: high, theirs: marginal(peer, s1, s2), runs: rounds, unit: "us/file" }))
    }
  }
  return rows
}

const oneSize = async (ctx: Ctx, image: BenchImage, rounds: number): Promise<Record<Kind, number>> => {
  log(`scaling: ${image.files} files`)
  const base = path.join(ctx.dir, "scaling", image.key)
  await mkdir(base, { recursive: true })
  const tag = image.docker.split(":").pop()!
  const name = `bench-scale:${tag}`
  try {
    const repo = path.join(base, "repo")
    await libraryPull(repo, ctx.registriesConf, image.docker, name)
    const reference = path.join(base, "reference")
    await libraryCheckout(repo, name, reference, "union")
    const at = (kind: string, i: number) => path.join(base, `${kind}-${i}`)
    // big sizes take long: no warm-up round here, the set-up above has warmed the caches
    const samples = await interleave(`${image.files} files`, [
      { name: "pull", run: (i) => cliPull(at("pull", i), ctx.registriesConf, image.docker, name), cleanup: async (i) => rmTree(at("pull", i)) },
      { name: "checkout", run: (i) => cli(repo, ctx.registriesConf, ["checkout", name, at("checkout", i)]), cleanup: async (i) => rmTree(at("checkout", i)) },
      { name: "cpal", run: (i) => run(["cp", "-al", path.join(reference, "rootfs"), at("cpal", i)]), cleanup: async (i) => rmTree(at("cpal", i)) },
      { name: "umoci", run: (i) => run(["umoci", "unpack", "--image", image.layoutRef, at("umoci", i)]), cleanup: async (i) => rmTree(at("umoci", i)) },
    ], { rounds, warmup: 0 })
    const m = (k: Kind) => median(samples.get(k)!)
    return { pull: m("pull"), checkout: m("checkout"), cpal: m("cpal"), umoci: m("umoci") }
  } finally {
    rmTree(base)
  }
}
