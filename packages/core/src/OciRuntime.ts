// OciRuntime: runc (and crun) behind the ContainerRuntime interface, state kept per user.
import { Effect } from "effect"
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { Spawn, type RunOptions } from "./Spawn.ts"
import { CommandFailed, ContainerExists, ContainerNotFound, ToolMissing } from "./Errors.ts"
import type { ContainerRuntime, ContainerState, RuntimeName, StartOptions } from "./ContainerRuntime.ts"

/** Where a runtime keeps its state for this user: $XDG_RUNTIME_DIR, /run as root, else a private tmp dir. */
export const stateRootFor = (runtime: RuntimeName): string => {
  const xdg = process.env["XDG_RUNTIME_DIR"]
  const uid = process.getuid?.() ?? 0
  const base = xdg && xdg.length > 0 ? path.join(xdg, "syscontainers") : uid === 0 ? "/run/syscontainers" : path.join(os.tmpdir(), `syscontainers-${uid}`)
  return path.join(base, runtime)
}

/** The log file of a detached container. */
export const logFile = (bundle: string, name: string) => path.join(bundle, `${name}.log`)

// the container's own exit code is an answer, not a failure of ours
const anyExit = Array.from({ length: 256 }, (_, i) => i)

const notFound = /does not exist|container not found|no such file or directory/i

const notFoundAs = (name: string) => (e: CommandFailed | ToolMissing) =>
  e._tag === "CommandFailed" && notFound.test(e.stderrTail) ? new ContainerNotFound({ name }) : e

interface RuncListEntry {
  readonly id: string
  readonly pid: number
  readonly status: ContainerState["status"]
  readonly bundle: string
}

/** runc or crun: the same command line, a different binary. `wrap` prefixes argv (crun's cgroup workaround). */
export const makeOciRuntime = (o: { readonly name: "runc" | "crun"; readonly stateRoot?: string; readonly wrap?: ReadonlyArray<string> }) =>
  Effect.map(Spawn, (spawn) => ociRuntime(spawn, o))

const ociRuntime = (spawn: Spawn["Type"], o: { readonly name: "runc" | "crun"; readonly stateRoot?: string; readonly wrap?: ReadonlyArray<string> }): ContainerRuntime => {
  const root = o.stateRoot ?? stateRootFor(o.name)
  const base = () => {
    mkdirSync(root, { recursive: true, mode: 0o700 })
    return [...(o.wrap ?? []), o.name, `--root=${root}`]
  }
  const tool = (args: ReadonlyArray<string>, options: RunOptions = {}) => spawn.run([...base(), ...args], options)

  const toState = (e: RuncListEntry): ContainerState => ({ name: e.id, runtime: o.name, pid: e.pid, status: e.status, bundle: e.bundle })

  const state = (name: string) =>
    tool(["state", name]).pipe(
      Effect.map((r) => toState(JSON.parse(r.stdout) as RuncListEntry)),
      Effect.mapError(notFoundAs(name)),
    )

  const mustBeFree = (name: string) =>
    state(name).pipe(
      Effect.matchEffect({
        onSuccess: () => Effect.fail(new ContainerExists({ name, runtime: o.name })),
        onFailure: (e) => (e._tag === "ContainerNotFound" ? Effect.void : Effect.fail(e)),
      }),
    )

  const list = () =>
    tool(["list", "--format=json"]).pipe(
      Effect.map((r) => ((JSON.parse(r.stdout || "null") as RuncListEntry[] | null) ?? []).map(toState)),
    )

  const kill = (name: string, signal = "TERM") =>
    tool(["kill", name, signal.replace(/^SIG/, "")]).pipe(
      Effect.asVoid,
      Effect.mapError(notFoundAs(name)),
    )

  const remove = (name: string, options: { readonly force?: boolean } = {}) =>
    tool(["delete", ...(options.force ? ["--force"] : []), name]).pipe(
      Effect.asVoid,
      Effect.mapError(notFoundAs(name)),
    )

  const runAttached = (s: StartOptions) =>
    Effect.gen(function* () {
      yield* mustBeFree(s.name)
      const r = yield* tool(["run", `--bundle=${s.bundle}`, s.name], { stdio: "inherit", okExitCodes: anyExit })
      return r.exitCode ?? 1
    }).pipe(
      // Ctrl-C or a failure while attached: the container must not outlive us
      Effect.onInterrupt(() => remove(s.name, { force: true }).pipe(Effect.ignore)),
    )

  const runDetached = (s: StartOptions) =>
    Effect.gen(function* () {
      yield* mustBeFree(s.name)
      const log = logFile(s.bundle, s.name)
      const fd = openSync(log, "a")
      // the container inherits these descriptors, so they must be files, never our pipes
      yield* tool(["run", "--detach", `--bundle=${s.bundle}`, s.name], { stdio: { stdout: fd, stderr: fd } }).pipe(
        Effect.ensuring(Effect.sync(() => closeSync(fd))),
        Effect.catchIf((e): e is CommandFailed => e._tag === "CommandFailed", (e) =>
          Effect.gen(function* () {
            // runc wrote its complaint into the log: put it where the error can show it
            const tail = readFileSync(log, "utf8").slice(-4000)
            yield* remove(s.name, { force: true }).pipe(Effect.ignore)
            return yield* Effect.fail(new CommandFailed({ ...e, stderrTail: tail }))
          }),
        ),
      )
      return yield* state(s.name)
    })

  const exec = (name: string, argv: ReadonlyArray<string>) =>
    Effect.gen(function* () {
      yield* state(name)
      const r = yield* tool(["exec", name, ...argv], { okExitCodes: anyExit })
      return { exitCode: r.exitCode ?? 1, stdout: r.stdout, stderr: r.stderr }
    })

  return { name: o.name, runAttached, runDetached, exec, list, state, kill, delete: remove }
}

export type { CommandFailed, ToolMissing }
