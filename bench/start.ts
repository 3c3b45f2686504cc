// start: from a prepared bundle (or a cached image) to redis answering PONG: ours, podman run, runc; and the redis recipe cold and warm.
import { Effect } from "effect"
import { closeSync, mkdirSync, openSync } from "node:fs"
import { mkdir, rm } from "node:fs/promises"
import path from "node:path"
import * as RuntimeSpec from "@syscontainers/core/RuntimeSpec"
import * as Images from "@syscontainers/core/Images"
import * as Ostree from "@syscontainers/core/Ostree"
import { redisEdits } from "../recipes/redis.ts"
import { repoRoot } from "../test/fixtures/harness.ts"
import type { Ctx } from "./context.ts"
import { compare, fmtMs, interleave, median, row, WARMUP, type Row } from "./measure.ts"
import { bin, libraryCheckout, libraryPull, removeContainer, rmTree, tsxCommand, withSpawn } from "./ours.ts"
import { makePodman, ulimits, type Podman } from "./podman.ts"
import { defer, freePort, log, run, runQuiet, waitPong } from "./proc.ts"

const redisQualified = "docker.io/library/redis:alpine"

/** A bundle as the recipe makes it: hardlinked rootfs, rootless runc spec, the image's and redis's edits for `port`. */
export const prepareBundle = async (repo: string, into: string, port: number) => {
  await libraryCheckout(repo, "redis", into, "union")
  mkdirSync(path.join(into, "data"), { recursive: true })
  await withSpawn(
    Effect.gen(function* () {
      const image = yield* Images.get(yield* Ostree.open(repo), "redis")
      yield* RuntimeSpec.generate({ bundle: into, rootless: true, terminal: false })
      const fromImage = yield* RuntimeSpec.fromImage({ image: image.config.config ?? {}, rootfs: "rootfs", bundle: into })
      yield* RuntimeSpec.patchConfig({ bundle: into, edits: [...fromImage, ...redisEdits({ network: "host", port, name: "bench", runtime: "runc" })] })
    }),
  )
}

/** podman run -d of redis on `port` (host network, loopback only). */
const podmanRedis = (podman: Podman, name: string, port: number) =>
  podman.run(["run", "--detach", "--quiet", "--name", name, "--network", "host", ...ulimits, redisQualified, "redis-server", "--bind", "127.0.0.1", "--port", String(port)])

/** Start to ready with the bundle prepared: `syscontainers run -d`, `podman run -d`, `runc run -d`, each until PONG. */
export const startToReady = async (ctx: Ctx): Promise<Row[]> => {
  log("start to ready: redis")
  const base = path.join(ctx.dir, "start")
  await mkdir(base, { recursive: true })
  const repo = path.join(base, "repo")
  await libraryPull(repo, ctx.registriesConf, "docker://redis:alpine", "redis")
  const ports = { ours: await freePort(), runc: await freePort(), podman: await freePort() }
  const ourBundle = path.join(base, "ours")
  const runcBundle = path.join(base, "runc")
  await prepareBundle(repo, ourBundle, ports.ours)
  await prepareBundle(repo, runcBundle, ports.runc)
  const runcRoot = path.join("/run", `syscontainers-bench-${process.pid}`)
  mkdirSync(runcRoot, { recursive: true })
  const podman = makePodman(path.join(base, "podman"), ctx.registriesConf)
  await podman.run(["pull", "--quiet", "--tls-verify=false", redisQualified])
  const names = (kind: string, i: number) => `bench-start-${kind}-${process.pid}-${i}`
  // whatever happens, every container started here goes
  const started: Array<() => Promise<void>> = []
  const forget = defer("start-to-ready containers", async () => {
    for (const stop of started) await stop()
  })
  try {
    const samples = await interleave("start to ready", [
      {
        name: "ours",
        prepare: async (i) => void started.push(() => removeContainer(names("ours", i))),
        run: async (i) => {
          await run(["node", bin, "run", ourBundle, names("ours", i), "--detach"])
          await waitPong(ports.ours)
        },
        cleanup: (i) => removeContainer(names("ours", i)),
      },
      {
        name: "podman",
        prepare: async (i) => void started.push(() => runQuiet(podman.argv(["rm", "--force", "--time", "0", names("podman", i)])).then(() => {})),
        run: async (i) => {
          await podmanRedis(podman, names("podman", i), ports.podman)
          await waitPong(ports.podman)
        },
        cleanup: async (i) => void (await podman.run(["rm", "--force", "--time", "0", names("podman", i)])),
      },
      {
        name: "runc",
        prepare: async (i) => void started.push(() => runQuiet(["runc", `--root=${runcRoot}`, "delete", "--force", names("runc", i)]).then(() => {})),
        run: async (i) => {
          // the container inherits these descriptors: a file, never our pipes
          const fd = openSync(path.join(runcBundle, "runc.log"), "a")
          try {
            await run(["runc", `--root=${runcRoot}`, "run", "--detach", `--bundle=${runcBundle}`, names("runc", i)], { stdio: { stdout: fd, stderr: fd } })
          } finally {
            closeSync(fd)
          }
          await waitPong(ports.runc)
        },
        cleanup: async (i) => void (await run(["runc", `--root=${runcRoot}`, "delete", "--force", names("runc", i)])),
      },
    ], { rounds: ctx.rounds })
    return compare("start to ready, bundle prepared: redis until PONG", samples, "ours", [
      { name: "podman", label: "podman run -d", goal: 1.0 },
      { name: "runc", label: "floor: runc run -d" },
    ])
  } finally {
    await forget()
    await podman.destroy()
    await rm(runcRoot, { recursive: true, force: true })
    rmTree(base)
  }
}

/** The recipe's per-step table: the lines from its "step  time" header to "total". */
const stepTable = (stderr: string) => {
  const lines = stderr.replace(/\x1b\[[0-9;]*m/g, "").split("\n")
  const start = lines.findIndex((l) => /^\s*step\s+time/.test(l))
  if (start < 0) return ""
  const end = lines.findIndex((l, i) => i > start && /^\s*total\s/.test(l))
  return lines.slice(start, end < 0 ? undefined : end + 1).join("\n")
}

/** The recipe's own total, in ms, from its per-step table. */
const stepsTotalOf = (stderr: string) => Number(/^\s*total\s+([\d.]+)\s*s/m.exec(stepTable(stderr))?.[1] ?? NaN) * 1000

/**
 * The redis recipe end to end, as a user runs it: cold (fresh workdir), then warm (same workdir,
 * image cached, bundle reused), against podman run -d with the image cached. Each until PONG.
 */
export const recipeRuns = async (ctx: Ctx): Promise<Row[]> => {
  log("redis recipe: cold, warm, podman")
  const base = path.join(ctx.dir, "recipe")
  await mkdir(base, { recursive: true })
  const podman = makePodman(path.join(base, "podman"), ctx.registriesConf)
  await podman.run(["pull", "--quiet", "--tls-verify=false", redisQualified])
  const workdir = (i: number) => path.join(base, `w${i}`)
  const name = (i: number) => `bench-recipe-${process.pid}-${i}`
  const ports: number[] = []
  const started: Array<() => Promise<void>> = []
  const forget = defer("recipe containers", async () => {
    for (const stop of started) await stop()
  })
  let lastWarm = ""
  let lastCold = ""
  // what each run's own table says its steps took, cold and warm
  const stepTotals = { cold: [] as number[], warm: [] as number[] }
  // `tsx recipes/redis.ts`, as the README says, through the mirror we started (CONTAINERS_REGISTRIES_CONF),
  // as a user's would go through theirs
  const tsx = tsxCommand()
  log(`redis recipe: tsx is ${tsx.argv0} (${tsx.label})`)
  const recipe = async (i: number) => {
    const r = await run(
      [tsx.argv0, path.join(repoRoot, "recipes", "redis.ts"), "--detach", "--port", String(ports[i]), "--workdir", workdir(i), "--name", name(i)],
      { cwd: repoRoot, env: { CONTAINERS_REGISTRIES_CONF: ctx.registriesConf } },
    )
    await waitPong(ports[i]!)
    return r.stderr
  }
  try {
    const samples = await interleave("redis recipe", [
      {
        name: "cold",
        prepare: async (i) => {
          ports[i] = await freePort()
          started.push(() => removeContainer(name(i)))
        },
        run: async (i) => {
          lastCold = await recipe(i)
          if (i >= WARMUP) stepTotals.cold.push(stepsTotalOf(lastCold))
        },
        cleanup: (i) => removeContainer(name(i)),
      },
      {
        name: "warm",
        run: async (i) => {
          lastWarm = await recipe(i)
          if (i >= WARMUP) stepTotals.warm.push(stepsTotalOf(lastWarm))
        },
        cleanup: async (i) => {
          await removeContainer(name(i))
          rmTree(workdir(i))
        },
      },
      {
        name: "podman",
        prepare: async (i) => void started.push(() => runQuiet(podman.argv(["rm", "--force", "--time", "0", `${name(i)}-podman`])).then(() => {})),
        run: async (i) => {
          await podmanRedis(podman, `${name(i)}-podman`, ports[i]!)
          await waitPong(ports[i]!)
        },
        cleanup: async (i) => void (await podman.run(["rm", "--force", "--time", "0", `${name(i)}-podman`])),
      },
    ], { rounds: ctx.rounds })
    const warm = median(samples.get("warm")!)
    const cold = median(samples.get("cold")!)
    const steps = stepTable(lastWarm)
    const stepsTotal = stepsTotalOf(lastWarm)
    ctx.profile.push(
      [
        "### The redis recipe, warm (image cached, bundle reused): its own per-step table",
        "",
        `Wall time until PONG ${fmtMs(warm)} (median); the steps add up to ${Number.isFinite(stepsTotal) ? fmtMs(stepsTotal) : "?"}, the rest (${Number.isFinite(stepsTotal) ? fmtMs(warm - stepsTotal) : "?"}) is outside the steps: node, tsx, loading dsl + core before the first step, and the exit.`,
        "",
        "```",
        steps,
        "```",
        "",
        "Cold (fresh workdir), last run:",
        "",
        "```",
        stepTable(lastCold),
        "```",
      ].join("\n"),
    )
    const metric = "warm recipe end to end: recipes/redis.ts --detach until PONG (image cached)"
    return [
      row({ metric, peer: "budget: 1.0 s wall", ours: warm, theirs: 1000, goal: 1.0, runs: samples.get("warm")!.length }),
      ...compare(metric, samples, "warm", [{ name: "podman", label: "podman run -d until PONG (image cached)" }]),
      row({ metric: "first vs second recipe run, wall until PONG (ratio warm / cold)", peer: "cold run (fresh workdir)", ours: warm, theirs: cold, goal: 0.33, runs: samples.get("warm")!.length, note: `tsx: ${tsx.label}` }),
      // the same runs, counting only the recipe's steps (its own table's total): what re-running saves,
      // without node's and tsx's start, which no recipe can change
      row({ metric: "first vs second recipe run, the recipe's steps (its own total; ratio warm / cold)", peer: "cold run's steps", ours: median(stepTotals.warm), theirs: median(stepTotals.cold), goal: 0.33, runs: stepTotals.warm.length }),
    ]
  } finally {
    await forget()
    await podman.destroy()
    rmTree(base)
  }
}
