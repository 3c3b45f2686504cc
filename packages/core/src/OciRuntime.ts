// OciRuntime: runc (and crun) behind the ContainerRuntime interface, state kept per user.
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import os from "node:os"
import { randomBytes } from "node:crypto"
import path from "node:path"
import { Spawn, type ProcessResult, type RunOptions } from "./Spawn.ts"
import { CommandFailed, ContainerExists, ContainerNotFound, ContainerNotRunning, SpecInvalid, ToolMissing, unknownSignal } from "./Errors.ts"
import type { ContainerRuntime, ContainerState, RuntimeName, StartOptions } from "./ContainerRuntime.ts"
import { parseSignal } from "./internal/signals.ts"
import { validName } from "./internal/bwrapState.ts"

/** Where a runtime keeps its state for this user: $XDG_RUNTIME_DIR, /run as root, else a private tmp dir. */
export const stateRootFor = (runtime: RuntimeName): string => {
  const xdg = process.env["XDG_RUNTIME_DIR"]
  const uid = process.getuid?.() ?? 0
  const base = xdg && xdg.length > 0 ? path.join(xdg, "syscontainers") : uid === 0 ? "/run/syscontainers" : path.join(os.tmpdir(), `syscontainers-${uid}`)
  return path.join(base, runtime)
}

/** The log file of a detached container. */
export const logFile = (bundle: string, name: string) => path.join(bundle, `${name}.log`)

/** How an OCI runtime is driven. */
export interface OciRuntimeOptions {
  readonly name: "runc" | "crun"
  readonly stateRoot?: string
  /** Prefixes the argv of `run` only (crun's cgroup workaround); the other verbs read the state and run bare. */
  readonly wrap?: ReadonlyArray<string>
  /**
   * Rewrites config.json for a run (crun only: the copy is handed over with `run --config`, the bundle
   * stays untouched). Fails with SpecInvalid when the config cannot run this way.
   */
  readonly rewriteConfig?: (config: Record<string, unknown>, configPath: string) => Effect.Effect<Record<string, unknown>, SpecInvalid>
  /** After a SIGINT/SIGTERM/SIGHUP is forwarded to an attached container, how long it has before KILL (default 10 s). */
  readonly stopGraceMs?: number
}

// the container's own exit code is an answer, not a failure of ours
const anyExit = Array.from({ length: 256 }, (_, i) => i)

const notFound = /does not exist|container not found|no such file or directory/i
// runc: `level=error msg="runc run failed: container with given ID already exists"`; crun: "container `NAME` already exists"
const takenBy = /level=error msg="[^"]*container with given ID already exists|^(crun: )?(error: )?container `[^`]+` already exists/m

const notFoundAs = (name: string) => (e: CommandFailed | ToolMissing) =>
  e._tag === "CommandFailed" && notFound.test(e.stderrTail) ? new ContainerNotFound({ name }) : e

/** The exit code a shell would report: the process's own, or 128 + the signal that ended it. */
const exitCodeOf = (r: ProcessResult) => (r.signal ? 128 + (parseSignal(r.signal) ?? 0) : (r.exitCode ?? 1))

interface RuncListEntry {
  readonly id: string
  readonly pid: number
  readonly status: ContainerState["status"]
  readonly bundle: string
}

const readIfThere = (file: string): string => {
  try {
    return readFileSync(file, "utf8")
  } catch {
    return ""
  }
}

/** The signals an attached run passes on to its container while it owns the terminal. */
const forwarded: ReadonlyArray<NodeJS.Signals> = ["SIGINT", "SIGTERM", "SIGHUP"]

/** runc or crun: the same command line, a different binary. `wrap` prefixes `run` (crun's cgroup workaround). */
export const makeOciRuntime = (o: OciRuntimeOptions) => Effect.map(Spawn, (spawn) => ociRuntime(spawn, o))

const ociRuntime = (spawn: Spawn["Type"], o: OciRuntimeOptions): ContainerRuntime => {
  const root = o.stateRoot ?? stateRootFor(o.name)
  // beside the state root, not in it: crun list would take a file in there for a container
  const configDir = `${root}.configs`
  const stopGrace = o.stopGraceMs ?? 10_000
  const base = () => {
    mkdirSync(root, { recursive: true, mode: 0o700 })
    return [o.name, `--root=${root}`]
  }
  const tool = (args: ReadonlyArray<string>, options: RunOptions = {}) => spawn.run([...base(), ...args], options)
  const runArgv = (args: ReadonlyArray<string>) => [...(o.wrap ?? []), ...base(), ...args]

  const toState = (e: RuncListEntry): ContainerState => ({ name: e.id, runtime: o.name, pid: e.pid, status: e.status, bundle: e.bundle })

  const state = (name: string) =>
    tool(["state", name]).pipe(
      Effect.map((r) => toState(JSON.parse(r.stdout) as RuncListEntry)),
      Effect.mapError(notFoundAs(name)),
    )

  // runc and crun keep a container as a directory of the state root, and refuse a name that has
  // one: so do we, by a stat rather than a `state` process (~10 ms a run)
  const holds = (name: string) => validName(name) && existsSync(path.join(root, name))
  const mustBeFree = (name: string) => (holds(name) ? Effect.fail(new ContainerExists({ name, runtime: o.name })) : Effect.void)

  // runc prints `null` for no containers, crun `[ ]`; both take --format=json
  const list = () =>
    tool(["list", "--format=json"]).pipe(
      Effect.map((r) => ((JSON.parse(r.stdout || "null") as RuncListEntry[] | null) ?? []).map(toState)),
    )

  const kill = (name: string, signal = "TERM") =>
    Effect.gen(function* () {
      const signo = parseSignal(signal)
      // crun 1.8 takes an unknown name for signal 0 and says nothing: check it ourselves
      if (signo === undefined) return yield* Effect.fail(unknownSignal(signal))
      yield* tool(["kill", name, String(signo)]).pipe(
        Effect.mapError(notFoundAs(name)),
        // runc: "container not running"; crun: "kill container: No such process"
        Effect.mapError((e) => (e._tag === "CommandFailed" && /container not running|No such process/.test(e.stderrTail) ? new ContainerNotRunning({ name, runtime: o.name }) : e)),
      )
    })

  const remove = (name: string, options: { readonly force?: boolean } = {}) =>
    tool(["delete", ...(options.force ? ["--force"] : []), name]).pipe(
      Effect.asVoid,
      Effect.mapError(notFoundAs(name)),
    )

  /** `--config=COPY` when the config is rewritten for this run; the copy is removed when the scope closes. */
  const configArgs = (s: StartOptions) =>
    Effect.gen(function* () {
      const rewrite = o.rewriteConfig
      if (!rewrite) return [] as ReadonlyArray<string>
      const configPath = path.join(path.resolve(s.bundle), "config.json")
      const config = yield* Effect.try({
        try: () => JSON.parse(readFileSync(configPath, "utf8")) as Record<string, unknown>,
        catch: (e) => new SpecInvalid({ path: configPath, violations: [{ pointer: "", message: `cannot read it: ${e instanceof Error ? e.message : String(e)}` }] }),
      })
      const rewritten = yield* rewrite(config, configPath)
      const copy = path.join(configDir, `${s.name}.json`)
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          mkdirSync(configDir, { recursive: true, mode: 0o700 })
          writeFileSync(copy, JSON.stringify(rewritten), { mode: 0o600 })
        }),
        () => Effect.sync(() => rmSync(copy, { force: true })),
      )
      return [`--config=${copy}`]
    })

  const runAttached = (s: StartOptions) =>
    Effect.scoped(
      Effect.gen(function* () {
        yield* mustBeFree(s.name)
        const config = yield* configArgs(s)
        // signals to us go to the runtime process, which passes them on (as a terminal's Ctrl-C
        // does); a second one, or the grace running out, kills the container: pid 1 ignores
        // SIGINT and SIGTERM unless it handles them
        const signals = yield* Queue.unbounded<NodeJS.Signals>()
        const received: NodeJS.Signals[] = []
        let passedOn = false
        const handlers = forwarded.map((sig) => [sig, () => void (received.push(sig), Queue.unsafeOffer(signals, sig))] as const)
        yield* Effect.acquireRelease(
          Effect.sync(() => handlers.forEach(([sig, h]) => process.on(sig, h))),
          () => Effect.sync(() => handlers.forEach(([sig, h]) => process.off(sig, h))),
        )
        // interrupted before the runtime process is ours to watch (while spawn.start starts it), the
        // stop below cannot run: the container, if it came to be, is deleted as the scope closes
        let stopped = false
        yield* Effect.addFinalizer((exit) => (Exit.isFailure(exit) && !stopped && holds(s.name) ? remove(s.name, { force: true }).pipe(Effect.ignore) : Effect.void))
        const proc = yield* spawn.start(runArgv(["run", `--bundle=${s.bundle}`, ...config, s.name]), { stdio: "inherit" })
        const killHard = kill(s.name, "KILL").pipe(Effect.ignore)
        const forwarder = Effect.gen(function* () {
          const first = yield* Queue.take(signals)
          // the wrapper (unshare, sh) execs into the runtime: until then a signal would end the wrapper
          for (let i = 0; i < 200 && !isRuntime(proc.pid, o.name); i++) yield* Effect.sleep("10 millis")
          yield* proc.kill(first)
          passedOn = true
          const grace = yield* Effect.fork(Effect.sleep(stopGrace).pipe(Effect.zipRight(killHard)))
          yield* Queue.take(signals)
          yield* Fiber.interrupt(grace)
          yield* killHard
        })
        const fwd = yield* Effect.fork(forwarder)
        // (interruption ends the forwarder at once: the stop below does its work itself)
        const stop = Effect.gen(function* () {
          // one signal only: a second SIGINT makes redis exit at once, unsaved
          if (!passedOn) yield* kill(s.name, received[0] ?? "TERM").pipe(Effect.ignore)
          const seen = received.length
          const anotherSignal = Effect.repeat(Effect.sleep("20 millis"), { until: () => received.length > seen })
          // the wait must be interruptible for its own timeout to end it
          yield* Effect.raceFirst(proc.exited, anotherSignal).pipe(Effect.interruptible, Effect.timeout(stopGrace), Effect.ignore)
          yield* remove(s.name, { force: true }).pipe(Effect.ignore)
          stopped = true
        })
        const result = yield* proc.exited.pipe(
          // interrupted (a sibling failed, a recipe's Ctrl-C): the container must not outlive us, but
          // it gets what `runc run` and Ctrl-C give it first: the signal (TERM when none came) and
          // the grace to exit cleanly (redis saves its data then), cut short by another signal, and
          // only then the forced delete
          Effect.onInterrupt(() => stop),
        )
        yield* Fiber.interrupt(fwd)
        return exitCodeOf(result)
      }),
    )

  const runDetached = (s: StartOptions) =>
    Effect.scoped(
      Effect.gen(function* () {
        yield* mustBeFree(s.name)
        const config = yield* configArgs(s)
        const log = logFile(s.bundle, s.name)
        const fd = openSync(log, "a")
        const logStart = fstatSync(fd).size
        // the runtime writes the container's pid here: no `state` process to learn it
        mkdirSync(configDir, { recursive: true, mode: 0o700 })
        const pidFile = path.join(configDir, `${s.name}.pid-${process.pid}-${randomBytes(4).toString("hex")}`)
        yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(pidFile, { force: true })))
        // the container inherits these descriptors, so they must be files, never our pipes
        yield* spawn.run(runArgv(["run", "--detach", `--pid-file=${pidFile}`, `--bundle=${s.bundle}`, ...config, s.name]), { stdio: { stdout: fd, stderr: fd } }).pipe(
          Effect.ensuring(Effect.sync(() => closeSync(fd))),
          Effect.catchIf((e): e is CommandFailed => e._tag === "CommandFailed", (e) =>
            Effect.gen(function* () {
              // the runtime wrote its complaint into the log: put what this run wrote where the error can show it
              const tail = readFileSync(log).subarray(logStart).toString("utf8").slice(-4000)
              // a container that came in between under this name is someone else's: leave it be (the
              // runtime's own words; the container writes to this log too)
              if (takenBy.test(tail)) return yield* Effect.fail(new ContainerExists({ name: s.name, runtime: o.name }))
              yield* remove(s.name, { force: true }).pipe(Effect.ignore)
              return yield* Effect.fail(new CommandFailed({ ...e, stderrTail: tail }))
            }),
          ),
        )
        const pid = Number(readIfThere(pidFile).trim())
        // no pid written (a runtime that skipped it): ask the state, as before
        if (!Number.isInteger(pid) || pid <= 0) return yield* state(s.name)
        // a container that has already exited is not running any more
        return { name: s.name, runtime: o.name, pid, status: existsSync(`/proc/${pid}`) ? "running" : "stopped", bundle: s.bundle } satisfies ContainerState
      }),
    )

  /**
   * crun 1.8's exec runs as uid 0 in / with crun's default capabilities and no no_new_privs
   * unless told: hand it the container's own process (from the config crun keeps in its state),
   * with our argv, as runc does by itself.
   */
  const crunProcess = (name: string, argv: ReadonlyArray<string>) =>
    Effect.gen(function* () {
      if (o.name !== "crun") return [] as ReadonlyArray<string>
      const kept = path.join(root, name, "config.json")
      const config = yield* Effect.try({
        try: () => JSON.parse(readFileSync(kept, "utf8")) as { readonly process?: Record<string, unknown> },
        catch: () => new ContainerNotFound({ name }),
      })
      const file = path.join(configDir, `${name}.exec-${process.pid}-${Date.now()}.json`)
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          mkdirSync(configDir, { recursive: true, mode: 0o700 })
          writeFileSync(file, JSON.stringify({ ...config.process, args: argv, terminal: false }), { mode: 0o600 })
        }),
        () => Effect.sync(() => rmSync(file, { force: true })),
      )
      return [`--process=${file}`]
    })

  const exec = (name: string, argv: ReadonlyArray<string>) =>
    Effect.scoped(
      Effect.gen(function* () {
        // runc exec's own "does not exist" could be the command's words: the container's directory
        // (or, without one, the state) says it first
        if (!holds(name)) yield* state(name)
        const processArgs = yield* crunProcess(name, argv)
        const r = yield* tool(["exec", ...processArgs, name, ...(processArgs.length ? [] : argv)], { okExitCodes: anyExit })
        return { exitCode: r.exitCode ?? 1, stdout: r.stdout, stderr: r.stderr }
      }),
    )

  const kept = () => {
    let names: string[]
    try {
      names = readdirSync(root).filter(validName)
    } catch {
      return [] // no state root: no container yet
    }
    return names.filter((name) => holds(name)).map((name) => ({ name, bundle: keptBundle(path.join(root, name)) }))
  }

  return { name: o.name, runAttached, runDetached, exec, list, holds, kept, state, kill, delete: remove }
}

/**
 * The bundle a container's state directory names: runc's state.json lists it among its labels
 * ("bundle=DIR"), crun's status file has it as "bundle". Undefined when neither can be read.
 */
const keptBundle = (dir: string): string | undefined => {
  const read = (file: string) => {
    try {
      return JSON.parse(readFileSync(path.join(dir, file), "utf8")) as { config?: { labels?: unknown }; bundle?: unknown }
    } catch {
      return undefined
    }
  }
  const runc = read("state.json")
  const label = Array.isArray(runc?.config?.labels) ? (runc.config.labels as unknown[]).find((l): l is string => typeof l === "string" && l.startsWith("bundle=")) : undefined
  if (label) return label.slice("bundle=".length)
  const crun = read("status")
  return typeof crun?.bundle === "string" ? crun.bundle : undefined
}

/** Whether `pid` is the runtime binary by now (not the wrapper that will exec it). */
const isRuntime = (pid: number, name: string) => {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim() === name
  } catch {
    return true // gone: nothing left to wait for
  }
}

export type { CommandFailed, ToolMissing }
