// ours: syscontainers as a user runs it (the CLI, the redis recipe), and the core library in-process for profiles.
import { Effect } from "effect"
import path from "node:path"
import { rmSync } from "node:fs"
import { makeSpawn, Spawn, type CommandObserver, type ProcessResult } from "@syscontainers/core/Spawn"
import * as Ostree from "@syscontainers/core/Ostree"
import * as Images from "@syscontainers/core/Images"
import * as Pull from "@syscontainers/core/Pull"
import * as Layers from "@syscontainers/core/Layers"
import { stateRootFor } from "@syscontainers/core/OciRuntime"
import { repoRoot, tsxWrapper, tsxWrapperIsOurs } from "../test/fixtures/harness.ts"
import { run, runQuiet } from "./proc.ts"

/** The command a user runs: `packages/core/bin/syscontainers.js`. */
export const bin = path.join(repoRoot, "packages", "core", "bin", "syscontainers.js")

/**
 * `tsx` as the README's commands reach it: setup.sh's wrapper in /usr/local/bin for this checkout
 * (one node with tsx's loader for `tsx FILE`), else tsx's own CLI from node_modules/.bin (a node
 * that starts another: what a machine without the wrapper, or `pnpm exec tsx`, pays).
 */
export const tsxCommand = (): { readonly argv0: string; readonly label: string } =>
  tsxWrapperIsOurs()
    ? { argv0: tsxWrapper, label: "setup.sh's tsx wrapper: one node with scripts/ts-hooks.mjs" }
    : { argv0: path.join(repoRoot, "node_modules", ".bin", "tsx"), label: "tsx's CLI from node_modules/.bin (no wrapper installed): two nodes" }

/** `node bin --repo REPO --registries-conf CONF ARGS...`; resolves with stdout. */
export const cli = async (repo: string, registriesConf: string, args: ReadonlyArray<string>): Promise<string> =>
  (await run(["node", bin, "--repo", repo, "--registries-conf", registriesConf, ...args])).stdout

/** What `pull --json` says. */
export interface PullJson {
  readonly layersImported: number
  readonly layersReused: number
  readonly bytesImported: number
  readonly skipped: boolean
}

/** `syscontainers pull SRC NAME --json`. */
export const cliPull = async (repo: string, registriesConf: string, from: string, name: string): Promise<PullJson> =>
  JSON.parse(await cli(repo, registriesConf, ["--json", "pull", from, name])) as PullJson

/** Removes a container of ours by name (runc's state root as the CLI uses it as root); fine if gone. */
export const removeContainer = async (name: string) => {
  await runQuiet(["runc", `--root=${stateRootFor("runc")}`, "delete", "--force", name])
}

/** Runs an effect of the core library with a Spawn that reports every command to `observe`. */
export const withSpawn = <A, E>(e: Effect.Effect<A, E, Spawn>, observe?: CommandObserver): Promise<A> =>
  Effect.runPromise(e.pipe(Effect.provideService(Spawn, makeSpawn(observe))))

/** One command the library ran: its argv, when it started and ended (ms since the job began). */
export interface Call {
  readonly argv: ReadonlyArray<string>
  readonly start: number
  readonly end: number
}

/** An observer that records every call with its start and end times. */
export const recorder = () => {
  const calls: Call[] = []
  const open = new Map<ReadonlyArray<string>, number[]>()
  const t0 = performance.now()
  const observe: CommandObserver = ({ argv, result }: { readonly argv: ReadonlyArray<string>; readonly result?: ProcessResult }) => {
    const now = performance.now() - t0
    if (!result) {
      const starts = open.get(argv) ?? []
      starts.push(now)
      open.set(argv, starts)
      return
    }
    const start = open.get(argv)?.shift() ?? now - result.durationMs
    calls.push({ argv, start, end: now })
  }
  return { calls, observe, elapsed: () => performance.now() - t0 }
}

/** Pull in-process (no CLI start-up), every command recorded. */
export const libraryPull = async (repoPath: string, registriesConf: string, from: string, name: string, observe?: CommandObserver) =>
  withSpawn(
    Effect.gen(function* () {
      const repo = yield* Ostree.init({ path: repoPath })
      return yield* Pull.pull({ from, name, repo, registriesConf })
    }),
    observe,
  )

/** Checkout in-process (no CLI start-up), every command recorded. */
export const libraryCheckout = async (repoPath: string, name: string, into: string, order: Layers.LayerOrder, observe?: CommandObserver, shared = false) =>
  withSpawn(
    Effect.gen(function* () {
      const repo = yield* Ostree.open(repoPath)
      const image = yield* Images.get(repo, name)
      return yield* Layers.applyLayers({ image, into, order, shared })
    }),
    observe,
  )

/** Removes a directory tree (a repo, a bundle) between runs. */
export const rmTree = (dir: string) => rmSync(dir, { recursive: true, force: true })
