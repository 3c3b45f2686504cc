// Spawn: the one place that starts processes (through zx), always from an argv array.
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import { $, type ProcessPromise } from "zx/core"
import { spawn as spawnProcess } from "node:child_process"
import { existsSync } from "node:fs"
import path from "node:path"
import type { Readable } from "node:stream"
import { CommandFailed, ToolMissing } from "./Errors.ts"
import { debianPackageOf, which } from "./internal/tools.ts"

/** How one process is started. */
export interface RunOptions {
  readonly cwd?: string
  /** Merged over the caller's environment; `undefined` removes a variable. */
  readonly env?: Readonly<Record<string, string | undefined>>
  /** Start from an empty environment (then only `env` is passed: without a PATH in it, a bare tool name is looked for in /bin and /usr/bin only). */
  readonly cleanEnv?: boolean
  readonly input?: string | Buffer | Readable
  /** For records (tutorials): a command whose output is `input`, when `input` is a stream. */
  readonly inputFrom?: ReadonlyArray<string>
  /** "inherit" hands the terminal to the process (attached runs); file descriptors send output to files. */
  readonly stdio?: "pipe" | "inherit" | { readonly stdout: number; readonly stderr: number }
  /** Exit codes that are not failures (default: only 0). */
  readonly okExitCodes?: ReadonlyArray<number>
  /**
   * A process group of its own: the terminal's Ctrl-C (sent to our whole group) does not reach it,
   * so work that must not stop halfway finishes (with an uninterruptible effect around it).
   */
  readonly ownProcessGroup?: boolean
}

/** What a finished process left. */
export interface ProcessResult {
  readonly argv: ReadonlyArray<string>
  readonly exitCode: number | null
  readonly signal: string | null
  readonly stdout: string
  readonly stderr: string
  readonly durationMs: number
  /** Why the process never started, when it did not (then exitCode and signal are null). */
  readonly notStarted?: { readonly reason: string; readonly toolMissing: boolean }
}

/** A process started in the background; ended by its scope if still running. */
export interface Running {
  readonly argv: ReadonlyArray<string>
  readonly pid: number
  readonly stdout: Readable
  readonly stderr: Readable
  /** Completes when the process ends (never fails: inspect exitCode/signal). */
  readonly exited: Effect.Effect<ProcessResult>
  readonly kill: (signal?: NodeJS.Signals) => Effect.Effect<void>
}

/** Someone who wants to see every command (progress, tutorials, logs). */
/** What an observer sees of a command: its argv, its standard input when that was text, its result once done. */
export type CommandObserver = (event: {
  readonly argv: ReadonlyArray<string>
  readonly input?: string
  readonly inputFrom?: ReadonlyArray<string>
  readonly result?: ProcessResult
}) => void

export class Spawn extends Context.Tag("@syscontainers/core/Spawn")<Spawn, {
  /** Runs argv to completion; fails with CommandFailed on a bad exit, ToolMissing when the tool is not there to start. */
  readonly run: (argv: ReadonlyArray<string>, options?: RunOptions) => Effect.Effect<ProcessResult, CommandFailed | ToolMissing>
  /** Starts argv in the background (ToolMissing, or CommandFailed, when it cannot start); the process is killed (SIGTERM, then SIGKILL) when the scope closes. */
  readonly start: (argv: ReadonlyArray<string>, options?: RunOptions) => Effect.Effect<Running, ToolMissing | CommandFailed, Scope.Scope>
}>() {}

/** The process for argv, started at once (zx runs it on creation); no pid when it could not start. */
const startProcess = (argv: ReadonlyArray<string>, options: RunOptions) => {
  const p = commandFor(argv, options)
  // a process that exits before reading all of its input closes the pipe under the writer: that
  // EPIPE is not a failure of ours (the exit status says what went wrong), and unheard it would
  // crash node
  if (options.input !== undefined) p.stdin?.on("error", () => {})
  return p
}

const envFor = (options: RunOptions) => {
  const env: Record<string, string> = {}
  const base = options.cleanEnv ? {} : process.env
  for (const [k, v] of Object.entries({ ...base, ...options.env })) if (v !== undefined) env[k] = v
  return env
}

const commandFor = (argv: ReadonlyArray<string>, options: RunOptions) => {
  const [file = "", ...args] = argv
  return $({
    cwd: options.cwd ?? process.cwd(),
    env: envFor(options),
    quiet: true,
    nothrow: true,
    verbose: false,
    // zx quotes argv into a command line for a shell; we hand the argv itself to the kernel instead:
    // no bash between us and the tool (~1 ms a process, and none of the ~/.bashrc bash reads when
    // its stdin is a socket, as node's pipes are), the pid is the tool's, and a missing tool fails
    // to start (ENOENT) instead of exiting 127 like anything else may
    spawn: ((_command: string, _args: unknown, spawnOptions: object) => spawnProcess(file, args, { ...spawnOptions, shell: false })) as never,
    // the command line zx would build is never run: no quoting (zx has none of its own without bash)
    quote: (arg: string) => arg,
    ...(options.input !== undefined ? { input: options.input } : {}),
    ...(options.ownProcessGroup ? { detached: true } : {}),
    stdio:
      options.stdio === "inherit"
        ? "inherit"
        : typeof options.stdio === "object"
          ? [options.input !== undefined ? "pipe" : "ignore", options.stdio.stdout, options.stdio.stderr]
          : ["pipe", "pipe", "pipe"],
  })`${[...argv]}`
}

const toResult = (argv: ReadonlyArray<string>, out: { exitCode: number | null; signal: string | null; stdout: string; stderr: string; duration: number; notStarted?: ProcessResult["notStarted"] }): ProcessResult => ({
  argv,
  exitCode: out.notStarted ? null : out.exitCode,
  signal: out.notStarted ? null : out.signal,
  stdout: out.stdout,
  stderr: out.notStarted ? `${argv[0]}: cannot start it: ${out.notStarted.reason}` : out.stderr,
  durationMs: out.duration,
  ...(out.notStarted ? { notStarted: out.notStarted } : {}),
})

/**
 * Why argv could not start, from the spawn's error. ENOENT is not always the tool: the working
 * directory, or the interpreter or loader a script or binary names, may be what is missing.
 */
const whyNotStarted = (argv: ReadonlyArray<string>, options: RunOptions, cause: unknown): NonNullable<ProcessResult["notStarted"]> => {
  const e = cause as NodeJS.ErrnoException | null | undefined
  const file = argv[0] ?? ""
  if (e?.code !== "ENOENT") return { reason: e?.code ? `${e.code} (${e.message})` : (e?.message ?? "unknown error"), toolMissing: false }
  const cwd = options.cwd ?? process.cwd()
  if (!existsSync(cwd)) return { reason: `its working directory ${cwd} does not exist`, toolMissing: false }
  // where the kernel was asked to look: the child's PATH, else libuv's default
  const there = file.includes("/") ? existsSync(path.resolve(cwd, file)) : which(file, envFor(options)["PATH"] ?? "/bin:/usr/bin") !== undefined
  return there
    ? { reason: `${file} is there, but what it needs to run is not (its interpreter or loader: ENOENT)`, toolMissing: false }
    : { reason: `${file} is not installed (${file.includes("/") ? "no such file" : "not on PATH"})`, toolMissing: true }
}

/** ToolMissing when the tool is not there to start; a tool's own exit status (127 too) is its own. */
const missing = (argv: ReadonlyArray<string>, r: ProcessResult) =>
  r.notStarted?.toolMissing ? new ToolMissing({ tool: argv[0] ?? "", debianPackage: debianPackageOf(argv[0] ?? "") }) : undefined

const awaitOutput = (argv: ReadonlyArray<string>, options: RunOptions, p: ProcessPromise) =>
  Effect.promise(() => p.then((o) => o, (o) => o)).pipe(
    Effect.map((o) =>
      toResult(argv, {
        exitCode: o.exitCode,
        signal: o.signal,
        stdout: o.stdout ?? "",
        stderr: o.stderr ?? "",
        duration: o.duration ?? 0,
        // zx keeps the spawn's own error (the exec failed) as the output's cause
        notStarted: p.pid === undefined ? whyNotStarted(argv, options, o.cause) : undefined,
      }),
    ),
  )

/**
 * How this fiber's commands reach the observer: at once (undefined), or through a holder that
 * delivers them later (a later branch of inOrder).
 */
const reportVia = FiberRef.unsafeMake<((deliver: () => void) => void) | undefined>(undefined)

const report = (deliver: () => void) => Effect.flatMap(FiberRef.get(reportVia), (via) => Effect.sync(() => (via ? via(deliver) : deliver())))

type Successes<T extends ReadonlyArray<Effect.Effect<unknown, unknown, unknown>>> = { -readonly [K in keyof T]: Effect.Effect.Success<T[K]> }

/**
 * Runs `effects` at once, but their commands reach the observer as if they had run one after
 * another: the first's as they happen, a later one's once every one before it has ended. Progress
 * and tutorials then read the same whichever process finishes first. Only what goes through the
 * observer waits: anything else the effects report (a step's own events) comes as it happens.
 * `startFirst` names a branch to start before the others (the longest, say): the order they are
 * reported in stays the order given.
 */
export const inOrder = <const T extends ReadonlyArray<Effect.Effect<unknown, unknown, unknown>>>(
  effects: T,
  options: { readonly startFirst?: number } = {},
): Effect.Effect<Successes<T>, Effect.Effect.Error<T[number]>, Effect.Effect.Context<T[number]>> =>
  Effect.flatMap(FiberRef.get(reportVia), (outer) => {
    // inside another inOrder's later branch, what is let out here goes on through that one
    const deliverOut = (deliver: () => void) => (outer ? outer(deliver) : deliver())
    const held = effects.map(() => [] as Array<() => void>)
    const ended = effects.map(() => false)
    // the first branch that has not ended: its reports, and those of the ended ones before it, are out
    let open = 0
    const flush = (i: number) => held[i]!.splice(0).forEach(deliverOut)
    const advance = () => {
      while (open < effects.length && ended[open]) flush(open++)
      if (open < effects.length) flush(open)
    }
    const branches = effects.map((e, i) =>
      e.pipe(
        Effect.locally(reportVia, (deliver: () => void) => (i <= open ? deliverOut(deliver) : held[i]!.push(deliver))),
        Effect.ensuring(Effect.sync(() => ((ended[i] = true), advance()))),
      ),
    )
    const first = options.startFirst
    if (first !== undefined && !(Number.isInteger(first) && first >= 0 && first < branches.length))
      return Effect.dieMessage(`inOrder: startFirst ${first} names none of the ${branches.length} branches`)
    if (first === undefined || first === 0)
      return Effect.all(branches, { concurrency: "unbounded" }) as unknown as Effect.Effect<Successes<T>, Effect.Effect.Error<T[number]>, Effect.Effect.Context<T[number]>>
    // Effect.all starts its effects in the order listed: that one first, the results back in place
    const started = [branches[first]!, ...branches.filter((_, i) => i !== first)]
    return Effect.all(started, { concurrency: "unbounded" }).pipe(
      Effect.map((results) => [...results.slice(1, first + 1), results[0], ...results.slice(first + 1)]),
    ) as unknown as Effect.Effect<Successes<T>, Effect.Effect.Error<T[number]>, Effect.Effect.Context<T[number]>>
  })

/**
 * For work started ahead of its turn (a step's read that may begin when its recipe does): `hold`
 * runs an effect whose commands reach the observer only once `release` has run, in the order they
 * ran, and as they come after that. Whoever reads the reports then sees them where the work belongs.
 */
export const heldReports = () => {
  let held: Array<() => void> | undefined = []
  return {
    hold: <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
      Effect.flatMap(FiberRef.get(reportVia), (outer) => {
        const deliverOut = (deliver: () => void) => (outer ? outer(deliver) : deliver())
        return Effect.locally(effect, reportVia, (deliver: () => void) => (held ? held.push(() => deliverOut(deliver)) : deliverOut(deliver)))
      }),
    release: Effect.sync(() => {
      const waiting = held ?? []
      held = undefined
      waiting.forEach((deliver) => deliver())
    }),
  }
}

/** Builds a Spawn that reports every command to `observe`. */
export const makeSpawn = (observe?: CommandObserver) =>
  Spawn.of({
    run: (argv, options = {}) =>
      Effect.suspend(() => {
        const p = startProcess(argv, options)
        // interrupted (Ctrl-C, a sibling failed): the process must not outlive the effect
        return report(() => observe?.({ argv })).pipe(
          Effect.zipRight(awaitOutput(argv, options, p)),
          Effect.onInterrupt(() =>
            Effect.sync(() => {
              try {
                if (p.pid) process.kill(p.pid, "SIGTERM")
              } catch {
                // already gone
              }
            }),
          ),
        )
      }).pipe(
        Effect.tap((result) =>
          report(() =>
            observe?.({ argv, result, ...(typeof options.input === "string" ? { input: options.input } : {}), ...(options.inputFrom ? { inputFrom: options.inputFrom } : {}) }),
          ),
        ),
        Effect.flatMap((r): Effect.Effect<ProcessResult, CommandFailed | ToolMissing> => {
          const notInstalled = missing(argv, r)
          if (notInstalled) return Effect.fail(notInstalled)
          const ok = r.signal === null && (options.okExitCodes ?? [0]).includes(r.exitCode ?? -1)
          return ok
            ? Effect.succeed(r)
            : Effect.fail(new CommandFailed({ argv, exitCode: r.exitCode, signal: r.signal, stderrTail: r.stderr.slice(-4000) }))
        }),
      ),
    start: (argv, options = {}) =>
      Effect.acquireRelease(
        Effect.zipRight(report(() => observe?.({ argv })), Effect.sync(() => {
          const p = startProcess(argv, options)
          const exited = awaitOutput(argv, options, p)
          const pid = p.pid ?? -1
          const running: Running = {
            argv,
            pid,
            stdout: p.stdout,
            stderr: p.stderr,
            exited,
            kill: (signal = "SIGTERM") =>
              Effect.sync(() => {
                try {
                  if (pid > 0) process.kill(pid, signal)
                } catch {
                  // already gone
                }
              }),
          }
          return running
        })),
        (running) =>
          Effect.gen(function* () {
            yield* running.kill("SIGTERM")
            // a release runs uninterruptibly: the wait must be made interruptible for its timeout to end it
            const done = yield* running.exited.pipe(Effect.interruptible, Effect.timeout("5 seconds"), Effect.option)
            if (done._tag === "None") {
              yield* running.kill("SIGKILL")
              yield* running.exited
            }
          }),
      ).pipe(
        Effect.flatMap((running) =>
          // started, or not at all (then it has no pid, and its end comes at once): a missing tool is ToolMissing
          running.pid > 0
            ? Effect.succeed(running)
            : Effect.flatMap(running.exited, (r) => Effect.fail(missing(argv, r) ?? new CommandFailed({ argv, exitCode: null, signal: null, stderrTail: r.stderr }))),
        ),
      ),
  })

/** The real process service. */
export const SpawnLive = Layer.succeed(Spawn, makeSpawn())
