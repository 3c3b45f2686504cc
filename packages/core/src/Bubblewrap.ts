// Bubblewrap: runs OCI bundles under Debian's bwrap 0.8 with bwrap-oci's semantics, as a ContainerRuntime.
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { closeSync, constants, lstatSync, mkdirSync, openSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs"
import path from "node:path"
import type { ContainerRuntime, ContainerState, RuntimeError, StartOptions } from "./ContainerRuntime.ts"
import { CommandFailed, ContainerExists, ContainerNotFound, ContainerNotRunning, SpecInvalid, ToolMissing, unknownSignal, type SpecViolation } from "./Errors.ts"
import { Spawn } from "./Spawn.ts"
import { bwrapArgs, encodeArgs, splitCommand, type BwrapTranslation, type IdMapEntry } from "./internal/bwrapArgs.ts"
import { launchArgv } from "./internal/bwrapLaunch.ts"
import {
  comm, defaultStateRoot, ensureStateRoot, isAlive, listNames, parentPid, readState, readStatus, startTime, validName, writeState,
  type BwrapStateFile, type BwrapStatus,
} from "./internal/bwrapState.ts"
import { debianPackageOf, which } from "./internal/tools.ts"

export { bwrapArgs, encodeArgs, parseSize, splitCommand } from "./internal/bwrapArgs.ts"
export type { BwrapArgsOptions, BwrapTranslation, IdMapEntry, PathKind } from "./internal/bwrapArgs.ts"
export { defaultStateRoot } from "./internal/bwrapState.ts"
export { parseSignal } from "./internal/signals.ts"
import { parseSignal } from "./internal/signals.ts"

/** How the bubblewrap runtime is set up. */
export interface BubblewrapOptions {
  /** Where containers' state lives (default: $XDG_RUNTIME_DIR/syscontainers/bwrap, /run/... for root). */
  readonly stateRoot?: string
  /** Run configs holding restrictions bwrap cannot apply (they become warnings); default false. */
  readonly allowUnsupported?: boolean
  /** Sees every warning (default: Effect.logWarning). */
  readonly onWarning?: (message: string) => void
  /** The bwrap binary (default: bwrap on PATH). */
  readonly bwrap?: string
  /** How long to wait for bwrap to start the container (default 10 s). */
  readonly startTimeoutMs?: number
  /** How long an interrupted attached container has to exit after its signal, before KILL (default 10 s). */
  readonly stopGraceMs?: number
}

/** StartOptions plus a per-run allowUnsupported. */
export interface BwrapStartOptions extends StartOptions {
  readonly allowUnsupported?: boolean
}

/** The bubblewrap runtime: the ContainerRuntime verbs, taking BwrapStartOptions. */
export interface BubblewrapRuntime extends ContainerRuntime {
  readonly name: "bwrap"
  readonly runAttached: (o: BwrapStartOptions) => Effect.Effect<number, RuntimeError>
  readonly runDetached: (o: BwrapStartOptions) => Effect.Effect<ContainerState, RuntimeError>
  readonly stateRoot: string
}

const allExitCodes = Array.from({ length: 256 }, (_, i) => i)
// the launcher (setsid, prlimit, bwrap) finds its tools on our PATH and gets nothing else of ours
const launchEnv = { PATH: process.env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" }

// what glibc's loader and libc act on as a program starts: its list for setuid programs
// (UNSECURE_ENVVARS), every LD_ variable, and GLIBC_TUNABLES
const loaderVariables = new Set(["GCONV_PATH", "GETCONF_DIR", "GLIBC_TUNABLES", "HOSTALIASES", "LOCALDOMAIN", "LOCPATH", "MALLOC_ARENA_MAX", "MALLOC_ARENA_TEST", "MALLOC_TRACE", "NIS_PATH", "NLSPATH", "RESOLV_HOST_CONF", "RES_OPTIONS", "TMPDIR", "TZDIR"])
const isLoaderVariable = (name: string) => name.startsWith("LD_") || loaderVariables.has(name)

const entryExists = (file: string) => {
  try {
    lstatSync(file)
    return true
  } catch {
    return false
  }
}

// what we refuse ourselves has no argv of its own: name the verb, so the message still reads
// "bwrap-runtime kill web: exit 1 / container web is not running" (RuntimeError has no better tag)
const refused = (verb: string, name: string, detail: string) =>
  new CommandFailed({ argv: ["bwrap-runtime", verb, name], exitCode: 1, signal: null, stderrTail: detail })

const tail = (file: string, from = 0) => {
  try {
    return readFileSync(file).subarray(from).toString("utf8").slice(-4000)
  } catch {
    return ""
  }
}
const sizeOf = (file: string) => {
  try {
    return statSync(file).size
  } catch {
    return 0
  }
}

const killQuietly = (pid: number, signal: NodeJS.Signals | number) => {
  try {
    if (pid > 0) process.kill(pid, signal)
  } catch {
    // already gone
  }
}

/** Polls `check` every 10 ms until it gives a value, or gives undefined after `ms`. */
const waitFor = <A>(check: () => A | undefined, ms: number): Effect.Effect<A | undefined> =>
  Effect.gen(function* () {
    const until = Date.now() + ms
    for (;;) {
      const v = check()
      if (v !== undefined || Date.now() > until) return v
      yield* Effect.sleep("10 millis")
    }
  })

/** Builds the runtime from a Spawn service. */
export const bubblewrapRuntime = (spawn: Spawn["Type"], options: BubblewrapOptions = {}): BubblewrapRuntime => {
  const stateRoot = path.resolve(options.stateRoot ?? defaultStateRoot())
  const dirOf = (name: string) => path.join(stateRoot, name)
  const startTimeout = options.startTimeoutMs ?? 10_000
  const stopGrace = options.stopGraceMs ?? 10_000
  const hostUid = process.geteuid?.() ?? 0
  const hostGid = process.getegid?.() ?? 0
  const warn = (message: string) =>
    options.onWarning ? Effect.sync(() => options.onWarning?.(message)) : Effect.logWarning(`bwrap: ${message}`)

  const tool = (name: string) =>
    Effect.suspend(() => {
      const found = which(name)
      return found ? Effect.succeed(found) : Effect.fail(new ToolMissing({ tool: name, debianPackage: debianPackageOf(name) }))
    })

  const readConfig = (file: string) =>
    Effect.try({
      try: (): unknown => JSON.parse(readFileSync(file, "utf8")),
      catch: (e) => new SpecInvalid({ path: file, violations: [{ pointer: "", message: `cannot read it: ${e instanceof Error ? e.message : String(e)}` }] }),
    })

  const removeDir = (dir: string) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))

  /** Translates the bundle, checks tools, claims the name; everything a run does before starting bwrap. */
  const prepare = (o: BwrapStartOptions, mode: "attached" | "detached") =>
    Effect.gen(function* () {
      const verb = mode === "attached" ? "run" : "run --detach"
      if (!validName(o.name)) return yield* Effect.fail(refused(verb, o.name, "a container name is letters, digits and _.+- (starting with a letter or digit), at most 128"))
      const bundle = path.resolve(o.bundle)
      const configPath = path.join(bundle, "config.json")
      const config = yield* readConfig(configPath)
      const t = bwrapArgs(config, bundle, { hostUid, hostGid })
      if (t.invalid.length) return yield* Effect.fail(new SpecInvalid({ path: configPath, violations: t.invalid }))
      const allow = o.allowUnsupported ?? options.allowUnsupported ?? false
      if (t.unsupported.length && !allow)
        return yield* Effect.fail(new SpecInvalid({ path: configPath, violations: t.unsupported.map(asViolation) }))
      for (const w of t.warnings) yield* warn(w)
      for (const u of t.unsupported) yield* warn(`NOT APPLIED (allowUnsupported): ${u}`)

      const bwrap = yield* tool(options.bwrap ?? "bwrap")
      yield* tool("setsid")
      for (const t2 of ["prlimit", "choom"]) if (t.prefix.includes(t2)) yield* tool(t2)
      if (t.idMaps && hostUid !== 0) {
        yield* tool("newuidmap")
        yield* tool("newgidmap")
      }

      const unsafe = yield* Effect.try({ try: () => ensureStateRoot(stateRoot), catch: (e) => refused(verb, o.name, `state root ${stateRoot}: ${String(e)}`) })
      if (unsafe) return yield* Effect.fail(refused(verb, o.name, unsafe))
      const dir = dirOf(o.name)
      yield* Effect.try({
        try: () => mkdirSync(dir, { mode: 0o700 }),
        catch: (e) => ((e as NodeJS.ErrnoException).code === "EEXIST" ? new ContainerExists({ name: o.name, runtime: "bwrap" }) : refused(verb, o.name, String(e))),
      })
      return { bundle, dir, t, bwrap }
    })

  /** Claims state, starts bwrap, waits for its child pid; hands back what a run needs next. */
  const launch = (o: BwrapStartOptions, mode: "attached" | "detached", p: { bundle: string; dir: string; t: BwrapTranslation; bwrap: string }) =>
    Effect.gen(function* () {
      const { dir, t } = p
      const statusFile = path.join(dir, "bwrap-status.json")
      const argsFile = path.join(dir, "bwrap.args")
      const { options: bwrapOptions, command } = splitCommand(t.args)
      // the options (mounts, env with its secrets) go through a file and --args, not the command line
      writeFileSync(argsFile, encodeArgs(bwrapOptions), { mode: 0o600 })
      const userns = t.idMaps ? { fifo: path.join(dir, "userns.fifo"), infoFile: path.join(dir, "bwrap-info.json") } : undefined
      if (userns) yield* spawn.run(["mkfifo", "-m", "600", userns.fifo])
      const base: BwrapStateFile = {
        name: o.name, runtime: "bwrap", pid: 0, bwrapPid: 0, pidStartTime: "", bundle: p.bundle,
        created: new Date().toISOString(), status: "creating", attached: mode === "attached",
        namespaces: t.namespaces, env: t.env, user: t.user, cwd: t.cwd, userns: t.namespaces.includes("user"),
      }
      writeState(dir, base)
      const logFile = mode === "detached" ? path.join(p.bundle, `${o.name}.log`) : undefined
      // the launcher's sh would die on an unwritable log before bwrap could say anything
      if (logFile) yield* Effect.try({ try: () => closeSync(openSync(logFile, "a", 0o640)), catch: (e) => refused("run --detach", o.name, `cannot write the log: ${String(e)}`) })
      const argv = launchArgv({
        mode, bwrap: p.bwrap, statusFile, argsFile, prefix: t.prefix, command,
        ...(logFile ? { logFile } : {}), ...(userns ? { userns } : {}), ...(t.umask !== undefined ? { umask: t.umask } : {}),
      })
      return { argv, statusFile, logFile, userns, base }
    })

  /** Writes the id maps bwrap left to us (--userns-block-fd), then lets it go on. */
  const writeIdMaps = (name: string, child: number, maps: NonNullable<BwrapTranslation["idMaps"]>, fifo: string) =>
    Effect.gen(function* () {
      const lines = (list: ReadonlyArray<IdMapEntry>) => list.map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join("")
      const flat = (list: ReadonlyArray<IdMapEntry>) => list.flatMap((m) => [String(m.containerID), String(m.hostID), String(m.size)])
      if (hostUid === 0) {
        // root may write any map itself, in one write() each as the kernel wants
        yield* Effect.try({
          try: () => {
            writeFileSync(`/proc/${child}/uid_map`, lines(maps.uid))
            writeFileSync(`/proc/${child}/gid_map`, lines(maps.gid))
          },
          catch: (e) => refused("run", name, `writing the id maps of ${child}: ${String(e)}`),
        })
      } else {
        // newuidmap/newgidmap (setuid) check the ranges against /etc/subuid and /etc/subgid
        yield* spawn.run([yield* tool("newuidmap"), String(child), ...flat(maps.uid)])
        yield* spawn.run([yield* tool("newgidmap"), String(child), ...flat(maps.gid)])
      }
      yield* Effect.try({
        try: () => {
          const fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK)
          writeSync(fd, "1")
          closeSync(fd)
        },
        catch: (e) => refused("run", name, `releasing bwrap: ${String(e)}`),
      })
    }).pipe(
      // bwrap waits on the fifo forever: end it if the maps could not be written
      Effect.tapError(() => Effect.sync(() => killQuietly(parentPid(child) ?? 0, "SIGKILL"))),
    )

  /** Records the started container: its pid, bwrap's pid, and the pid's start time. */
  const recordRunning = (dir: string, base: BwrapStateFile, child: number) =>
    Effect.sync(() => {
      const state: BwrapStateFile = { ...base, pid: child, bwrapPid: parentPid(child) ?? 0, pidStartTime: startTime(child) ?? "", status: "running" }
      writeState(dir, state)
      return state
    })

  const describe = (name: string): ContainerState => {
    const s = readState(dirOf(name))
    if (!s) return { name, runtime: "bwrap", pid: 0, status: "stopped", bundle: "" }
    if (s.pid > 0 && isAlive(s.pid, s.pidStartTime)) return { name, runtime: "bwrap", pid: s.pid, status: "running", bundle: s.bundle }
    // still starting, unless the run that was starting it died long ago
    if (s.status === "creating" && Date.now() - Date.parse(s.created) < startTimeout + 5_000)
      return { name, runtime: "bwrap", pid: 0, status: "creating", bundle: s.bundle }
    return { name, runtime: "bwrap", pid: 0, status: "stopped", bundle: s.bundle }
  }

  const holds = (name: string) => {
    if (!validName(name)) return false
    try {
      return statSync(dirOf(name)).isDirectory()
    } catch {
      return false
    }
  }
  const existing = (name: string) => Effect.suspend(() => (holds(name) ? Effect.succeed(dirOf(name)) : Effect.fail(new ContainerNotFound({ name }))))

  const runDetached = Effect.fn("Bubblewrap.runDetached")(function* (o: BwrapStartOptions) {
    const p = yield* prepare(o, "detached")
    return yield* Effect.gen(function* () {
      const l = yield* launch(o, "detached", p)
      const logStart = sizeOf(l.logFile ?? "")
      yield* spawn.run(l.argv, { cleanEnv: true, env: launchEnv })
      const st = yield* waitFor((): BwrapStatus | undefined => {
        const s = readStatus(l.statusFile)
        return s.childPid !== undefined || s.bwrapExit !== undefined ? s : undefined
      }, startTimeout)
      const logTail = () => tail(l.logFile ?? "", logStart)
      if (st?.childPid === undefined)
        return yield* Effect.fail(new CommandFailed({ argv: l.argv, exitCode: st?.bwrapExit ?? null, signal: null, stderrTail: logTail() || `bwrap did not start within ${startTimeout} ms` }))
      const child = st.childPid
      if (p.t.idMaps && l.userns) yield* writeIdMaps(o.name, child, p.t.idMaps, l.userns.fifo)
      const state = yield* recordRunning(p.dir, l.base, child)
      // bwrap reports the pid before setting up the sandbox: wait until the command runs or ends
      yield* waitFor(() => (comm(child) !== "bwrap" || !isAlive(child, state.pidStartTime) ? true : undefined), startTimeout)
      if (!isAlive(child, state.pidStartTime)) {
        const log = logTail()
        if (/^bwrap: /m.test(log)) {
          const s = yield* waitFor(() => readStatus(l.statusFile).exitCode, 1_000)
          return yield* Effect.fail(new CommandFailed({ argv: l.argv, exitCode: s ?? null, signal: null, stderrTail: log }))
        }
      }
      return describe(o.name)
    }).pipe(
      Effect.tapError(() =>
        Effect.sync(() => {
          const s = readState(p.dir)
          if (s && s.pid > 0 && isAlive(s.pid, s.pidStartTime)) killQuietly(s.pid, "SIGKILL")
        }).pipe(Effect.zipRight(removeDir(p.dir))),
      ),
    )
  })

  const runAttached = Effect.fn("Bubblewrap.runAttached")(function* (o: BwrapStartOptions) {
    const p = yield* prepare(o, "attached")
    // until bwrap tells us the container's pid, remember signals; then deliver them there
    let target = 0
    let targetStart = ""
    const pending: NodeJS.Signals[] = []
    let signals = 0
    const forward = (signal: NodeJS.Signals) => () => {
      signals++
      if (target > 0) killQuietly(target, signal)
      else pending.push(signal)
    }
    const alive = () => target > 0 && isAlive(target, targetStart)
    // interrupted (a recipe's Ctrl-C, a failed sibling): what runc run and Ctrl-C give a container:
    // the signal (TERM when none was passed on), the grace to exit cleanly, cut short by another
    // signal, then KILL. bwrap itself is not signalled first: with --die-with-parent its death
    // would SIGKILL the container at once
    const stop = Effect.gen(function* () {
      // just started: bwrap may not have told us the container's pid yet
      if (target === 0) yield* waitFor(() => (target > 0 ? true : undefined), 2_000)
      if (!alive()) return
      if (signals === 0) killQuietly(target, "SIGTERM")
      const seen = signals
      yield* waitFor(() => (!alive() || signals > seen ? true : undefined), stopGrace)
      if (alive()) killQuietly(target, "SIGKILL")
    })
    const handlers: ReadonlyArray<readonly [NodeJS.Signals, () => void]> = [["SIGINT", forward("SIGINT")], ["SIGTERM", forward("SIGTERM")]]
    const body = Effect.gen(function* () {
      const l = yield* launch(o, "attached", p)
      // scoped: it ends with this run, however the run ends
      const watcher = yield* Effect.forkScoped(
        Effect.gen(function* () {
          const st = yield* waitFor(() => readStatus(l.statusFile).childPid, startTimeout)
          if (st === undefined) return
          if (p.t.idMaps && l.userns) yield* writeIdMaps(o.name, st, p.t.idMaps, l.userns.fifo)
          const state = yield* recordRunning(p.dir, l.base, st)
          target = st
          targetStart = state.pidStartTime
          for (const s of pending.splice(0)) killQuietly(target, s)
        }),
      )
      const proc = yield* spawn.start(l.argv, { stdio: "inherit", cleanEnv: true, env: launchEnv })
      const r = yield* proc.exited.pipe(Effect.onInterrupt(() => stop))
      // bwrap killed by a signal: report it the way a shell would
      const code = r.signal ? 128 + (parseSignal(r.signal) ?? 0) : (r.exitCode ?? 1)
      // done by now, or never will be (bwrap failed before reporting a pid): either way stop it
      const watched = yield* Fiber.interrupt(watcher)
      if (Exit.isFailure(watched) && !Exit.isInterrupted(watched)) return yield* Effect.failCause(watched.cause)
      return code
    })
    return yield* Effect.acquireUseRelease(
      Effect.sync(() => handlers.forEach(([s, h]) => process.on(s, h))),
      () => Effect.scoped(body),
      () => Effect.sync(() => handlers.forEach(([s, h]) => process.off(s, h))),
    ).pipe(
      // the container lives only as long as this run: end it if we are interrupted, and forget it
      Effect.ensuring(Effect.sync(() => {
        if (target > 0 && isAlive(target, targetStart)) killQuietly(target, "SIGKILL")
      }).pipe(Effect.zipRight(removeDir(p.dir)))),
    )
  })

  const running = (verb: string, name: string) =>
    Effect.gen(function* () {
      const dir = yield* existing(name)
      const s = readState(dir)
      if (!s || s.pid <= 0 || !isAlive(s.pid, s.pidStartTime)) return yield* Effect.fail(new ContainerNotRunning({ name, runtime: "bwrap" }))
      return s
    })

  // exec runs with nsenter's credentials: the container's namespaces, root, cwd, env and user,
  // but not its capability sets or no_new_privs (neither nsenter nor the image can set those)
  const exec = Effect.fn("Bubblewrap.exec")(function* (name: string, argv: ReadonlyArray<string>) {
    const s = yield* running("exec", name)
    if (argv.length === 0) return yield* Effect.fail(refused("exec", name, "nothing to run: argv is empty"))
    const nsenter = yield* tool("nsenter")
    // enter exactly the namespaces that differ from ours: entering our own user namespace is
    // refused, and from inside the container's user namespace we may not join the host's others
    const kinds: ReadonlyArray<readonly [string, string, string]> = [
      ["user", "user", "--user"], ["mnt", "mount", "--mount"], ["ipc", "ipc", "--ipc"], ["pid", "pid", "--pid"],
      ["net", "network", "--net"], ["uts", "uts", "--uts"], ["cgroup", "cgroup", "--cgroup"],
    ]
    const flags = kinds.filter(([proc, oci]) => {
      try {
        return readlinkSync(`/proc/${s.pid}/ns/${proc}`) !== readlinkSync(`/proc/self/ns/${proc}`)
      } catch {
        return s.namespaces.includes(oci)
      }
    })
    const entersUser = flags.some(([proc]) => proc === "user")
    const cmd = [
      nsenter, "--target", String(s.pid), ...flags.map(([, , flag]) => flag),
      // --root and --wd open the container's /proc/PID/root and cwd before entering its mount ns
      "--root", "--wd",
      // our uid and gid map to process.user's in there (bwrapArgs refuses configs where they
      // would not), so keep them: nsenter's default setuid(0) and setgroups() fail where bwrap
      // wrote "deny" to setgroups, and would be the wrong user anyway
      ...(entersUser ? ["--preserve-credentials"] : []),
    ]
    // the container's environment, exactly (Spawn adds nothing); but nsenter is a host binary that
    // the host's loader starts before it enters anything, and the image chose that environment:
    // what the loader and libc act on (LD_PRELOAD names a file to run as us) is set inside, by the
    // container's own env(1). A command missing in the container is nsenter's exit 127.
    const env = Object.fromEntries(s.env.map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]))
    const unsafe = Object.keys(env).filter(isLoaderVariable)
    let argvInside = argv
    if (unsafe.length > 0) {
      // the entry itself (lstat): a link in there points into the container, not into our root
      const envTool = ["/usr/bin/env", "/bin/env"].find((f) => entryExists(`/proc/${s.pid}/root${f}`))
      if (!envTool)
        return yield* Effect.fail(refused("exec", name, `the container's environment sets ${unsafe.join(", ")}, which the host's nsenter would act on before entering the container, and the container has no env(1) (/usr/bin/env or /bin/env) to set them inside`))
      argvInside = [envTool, ...unsafe.map((k) => `${k}=${env[k]}`), ...argv]
      for (const k of unsafe) delete env[k]
    }
    const r = yield* spawn.run([...cmd, "--", ...argvInside], { cleanEnv: true, env, okExitCodes: allExitCodes }).pipe(
      Effect.catchTag("CommandFailed", (e) => (e.signal ? Effect.succeed({ exitCode: 128 + (parseSignal(e.signal) ?? 0), stdout: "", stderr: e.stderrTail }) : Effect.fail(e))),
    )
    return { exitCode: r.exitCode ?? 1, stdout: r.stdout, stderr: r.stderr }
  })

  const kill = Effect.fn("Bubblewrap.kill")(function* (name: string, signal = "TERM") {
    const signo = parseSignal(signal)
    if (signo === undefined) return yield* Effect.fail(unknownSignal(signal))
    const s = yield* running("kill", name)
    yield* Effect.try({ try: () => process.kill(s.pid, signo), catch: (e) => refused("kill", name, `kill ${s.pid}: ${String(e)}`) })
  })

  const del = Effect.fn("Bubblewrap.delete")(function* (name: string, o: { readonly force?: boolean } = {}) {
    const dir = yield* existing(name)
    const s = readState(dir)
    if (s && s.pid > 0 && isAlive(s.pid, s.pidStartTime)) {
      if (!o.force) return yield* Effect.fail(refused("delete", name, `container ${name} is running (pid ${s.pid}); kill it first or delete with force`))
      killQuietly(s.pid, "SIGKILL")
      const gone = yield* waitFor(() => (isAlive(s.pid, s.pidStartTime) ? undefined : true), 5_000)
      if (!gone) return yield* Effect.fail(refused("delete", name, `pid ${s.pid} survived SIGKILL for 5 s`))
    }
    yield* removeDir(dir)
  })

  return {
    name: "bwrap",
    stateRoot,
    runAttached,
    runDetached,
    exec,
    list: () => Effect.sync(() => listNames(stateRoot).map(describe)),
    holds,
    state: (name) => existing(name).pipe(Effect.map(() => describe(name))),
    kill,
    delete: del,
  }
}

/** The bubblewrap runtime, built from the Spawn service. */
export const makeBubblewrapRuntime = (options: BubblewrapOptions = {}): Effect.Effect<BubblewrapRuntime, never, Spawn> =>
  Effect.map(Spawn, (spawn) => bubblewrapRuntime(spawn, options))

// "POINTER: message" back into a violation, with what to do about it
const asViolation = (u: string): SpecViolation => {
  const at = u.indexOf(": ")
  const hint = " (bwrap cannot honour this: remove it from config.json, or run with --runtime runc; a library caller may pass allowUnsupported to run without it)"
  return at < 0 ? { pointer: "", message: u + hint } : { pointer: u.slice(0, at), message: u.slice(at + 2) + hint }
}
