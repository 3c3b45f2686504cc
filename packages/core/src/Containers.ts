// Containers: run a bundle under a chosen runtime, and find, signal and remove containers by name.
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import path from "node:path"
import type { ContainerRuntime, ContainerState, RuntimeName } from "./ContainerRuntime.ts"
import { ContainerExists, ContainerNotFound } from "./Errors.ts"
import { sameDir } from "./Paths.ts"
import { allRuntimes, runtime } from "./Runtimes.ts"

/** A running (or created) container: what exec, kill and delete take. */
export interface Container {
  readonly name: string
  readonly runtime: RuntimeName
  readonly bundle: string
  readonly pid: number
}

/** What `run` takes. */
export interface RunOptions {
  /** A bundle directory (or a Bundle handle's path) with config.json. */
  readonly bundle: string
  readonly name: string
  readonly runtime?: RuntimeName
  readonly detach?: boolean
  readonly log?: (line: string) => void
}

const logOf = (o: RunOptions) => (o.log ? { log: o.log } : {})

/**
 * Starts a detached container. Inside a Scope: if the scope ends by failure or interruption
 * (Ctrl-C, a later step failing) the container is killed and deleted; on success it keeps running.
 */
export const start = Effect.fn("Containers.start")(function* (o: RunOptions) {
  yield* nameMustBeFree(o.name)
  const rt = yield* runtime(o.runtime ?? "runc", logOf(o))
  const bundle = path.resolve(o.bundle)
  recordUser(bundle, rt.name, o.name)
  return yield* Effect.acquireRelease(
    rt.runDetached({ bundle, name: o.name }).pipe(
      Effect.map((s): Container => ({ name: o.name, runtime: rt.name, bundle, pid: s.pid })),
    ),
    (c, exit) => (Exit.isFailure(exit) ? rt.delete(c.name, { force: true }).pipe(Effect.ignore) : Effect.void),
  )
})

/** Runs attached like `runc run`: the terminal is the container's; resolves with its exit code. */
export const runAttached = Effect.fn("Containers.runAttached")(function* (o: RunOptions) {
  yield* nameMustBeFree(o.name)
  const rt = yield* runtime(o.runtime ?? "runc", logOf(o))
  const bundle = path.resolve(o.bundle)
  recordUser(bundle, rt.name, o.name)
  const code = yield* rt.runAttached({ bundle, name: o.name })
  // an attached run's container is gone when it exits; remove the state runc keeps
  yield* rt.delete(o.name, { force: true }).pipe(Effect.ignore)
  return code
})

/**
 * Every container of every runtime, failing when a runtime cannot say (only one that is not
 * installed counts as having none): for decisions that must not miss one, like removing a tree
 * containers may run on.
 */
export const listStrict = Effect.fn("Containers.listStrict")(function* () {
  const runtimes = yield* allRuntimes
  const lists = yield* Effect.forEach(runtimes, (rt) => rt.list().pipe(Effect.catchTag("ToolMissing", () => Effect.succeed<ReadonlyArray<ContainerState>>([]))), { concurrency: "unbounded" })
  return lists.flat()
})

/** Every container of every runtime. */
export const list = Effect.fn("Containers.list")(function* () {
  const runtimes = yield* allRuntimes
  const lists = yield* Effect.forEach(runtimes, (rt) => rt.list().pipe(Effect.orElseSucceed((): ReadonlyArray<ContainerState> => [])))
  return lists.flat()
})

/** The runtime that holds container `name`. */
export const find = Effect.fn("Containers.find")(function* (name: string) {
  const runtimes = yield* allRuntimes
  for (const rt of runtimes) {
    const found = yield* rt.state(name).pipe(Effect.option)
    if (found._tag === "Some") return { runtime: rt, state: found.value }
  }
  return yield* Effect.fail(new ContainerNotFound({ name }))
})

/**
 * The runtime that holds container `name`, for verbs that need no state: the first, in find's
 * order, that shows it on the filesystem (a stat, where a `runc state` is a ~10 ms process),
 * else as find asks them.
 */
const holderOf = (name: string) =>
  Effect.gen(function* () {
    const runtimes = yield* allRuntimes
    const holder = runtimes.find((rt) => rt.holds?.(name) === true)
    return holder ?? (yield* find(name)).runtime
  })

// A bundle keeps the names of the containers started from it (one empty file each, RUNTIME.NAME),
// so asking whether one still runs there costs stats, and a `state` only for a name still held
const usersDir = (bundle: string) => path.join(bundle, ".syscontainers-containers")
const recordUser = (bundle: string, runtimeName: RuntimeName, name: string) => {
  try {
    mkdirSync(usersDir(bundle), { recursive: true })
    writeFileSync(path.join(usersDir(bundle), `${runtimeName}.${name}`), "")
  } catch {
    // a bundle we may not write to: runningFrom will not know of this one
  }
}

/**
 * The containers running from `bundle`, not stopped: those started from it by start or runAttached
 * (recorded in it), and those a runtime's state names it for though we did not start them (a raw
 * `runc run`, as a dry-run script does). A `state` process only for the candidates.
 */
export const runningFrom = Effect.fn("Containers.runningFrom")(function* (bundle: string) {
  const dir = usersDir(path.resolve(bundle))
  let entries: string[]
  try {
    entries = readdirSync(dir)
  } catch {
    entries = []
  }
  const runtimes = yield* allRuntimes
  const candidates: Array<{ readonly rt: ContainerRuntime; readonly name: string }> = []
  for (const entry of entries) {
    const dot = entry.indexOf(".")
    const rt = runtimes.find((r) => r.name === entry.slice(0, dot))
    const name = entry.slice(dot + 1)
    if (!rt?.holds?.(name)) {
      // gone: forget it
      rmSync(path.join(dir, entry), { force: true })
      continue
    }
    candidates.push({ rt, name })
  }
  for (const rt of runtimes)
    for (const kept of rt.kept?.() ?? [])
      // a state we cannot read may name this bundle: its runtime says
      if ((kept.bundle === undefined || sameDir(kept.bundle, bundle)) && !candidates.some((c) => c.rt === rt && c.name === kept.name)) candidates.push({ rt, name: kept.name })
  const names: string[] = []
  for (const { rt, name } of candidates) {
    const state = yield* rt.state(name).pipe(Effect.option)
    if (state._tag === "Some" && state.value.status !== "stopped" && sameDir(state.value.bundle, bundle)) names.push(name)
  }
  return names as ReadonlyArray<string>
})

/** The runtime that keeps a container named `name`, as the filesystem shows it (no process), if any. */
export const holding = Effect.fn("Containers.holding")(function* (name: string) {
  const runtimes = yield* allRuntimes
  return runtimes.find((rt) => rt.holds?.(name) === true)?.name
})

/**
 * A name is one container's across runtimes: exec, kill and rm find a container by its name alone,
 * so a second runtime must not take a name the first holds (each runtime checks only its own).
 */
const nameMustBeFree = (name: string) =>
  Effect.flatMap(holding(name), (held) => (held ? Effect.fail(new ContainerExists({ name, runtime: held })) : Effect.void))

/** Runs argv in container `name`. */
export const exec = Effect.fn("Containers.exec")(function* (name: string, argv: ReadonlyArray<string>) {
  const rt = yield* holderOf(name)
  return yield* rt.exec(name, argv)
})

/** Sends a signal (name or number) to container `name`. */
export const kill = Effect.fn("Containers.kill")(function* (name: string, signal = "TERM") {
  const rt = yield* holderOf(name)
  yield* rt.kill(name, signal)
})

/** Removes container `name`; `force` kills it first. */
export const remove = Effect.fn("Containers.remove")(function* (name: string, options: { readonly force?: boolean } = {}) {
  const rt = yield* holderOf(name)
  yield* rt.delete(name, options)
})
