// RepoLock: one writer at a time in a repo, across processes, and no writer while a reader checks
// out. What a pull decides from the refs it sees (a layer is there: reuse it) must still hold when
// it names its image, and what rmi or a pull that moves a name takes away must not be a layer
// another pull is about to name, nor the commits or shared tree a checkout is reading.
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { randomBytes } from "node:crypto"
import { accessSync, chmodSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs"
import path from "node:path"
import { PassThrough } from "node:stream"
import { CommandFailed, type ToolMissing } from "./Errors.ts"
import type { Repo } from "./Ostree.ts"
import { Spawn } from "./Spawn.ts"

/** What a command says while it waits for the lock: the CLI and recipes word it alike. */
export const waitingNote = (holder: string): string => `waiting for the repo's lock, held by ${holder}`

/** The file locked: in the repo's own folder of ours, so every user of the repo meets it. */
export const lockFileOf = (repo: Repo): string => path.join(repo.path, "syscontainers", "lock")

/**
 * The writers' turnstile. Linux grants a shared flock while an exclusive one waits, so checkouts
 * that keep overlapping would keep a writer out for good: a writer holds this from before it
 * waits for the lock until it lets go, and a reader passes through it (takes it and lets go)
 * before it takes the lock while a writer holds it, so none starts while a writer waits.
 */
export const turnstileOf = (repo: Repo): string => `${lockFileOf(repo)}.writer`

export interface HoldOptions {
  /** Hears who holds the lock when it is not ours within 100 ms. */
  readonly waiting?: (holder: string) => void
  /** How long to wait in all (default an hour); then CommandFailed names the holder. */
  readonly timeoutMs?: number
  /** A reader's lock, held by any number of readers at once. */
  readonly shared?: boolean
}

/**
 * Holds the repo's lock until the scope closes: a writer's (exclusive), or with `shared` a reader's.
 * flock(1) takes it (`flock --exclusive FILE cat`) and keeps it while its `cat` runs: the kernel
 * lets go whenever that process ends, so a holder killed any way, even SIGKILL, leaves no stale
 * lock. `cat` echoing a byte back says the lock is ours. A reader with no writer about only
 * registers (readersDirOf): a writer, once it holds the flock, waits for the registered readers
 * still running, so a checkout pays no process for the lock. While another holds it, `waiting`
 * hears who (each holder writes its pid and what it does into the file once it holds it). Waiting
 * can be interrupted (Ctrl-C), even inside a step's acquire. A reader that may not open the lock
 * file (another user's repo) reads without it: it could not keep that repo's writers out anyway.
 */
export const hold = (repo: Repo, doing: string, o: HoldOptions = {}): Effect.Effect<void, CommandFailed | ToolMissing, Spawn | Scope.Scope> =>
  Effect.gen(function* () {
    const file = lockFileOf(repo)
    const turnstile = turnstileOf(repo)
    try {
      mkdirSync(path.dirname(file), { recursive: true })
    } catch {
      // a repo we may not write to: flock says so, with the file it could not open
    }
    // readable by every user of the repo, whatever the umask of the one who made them
    for (const f of [file, turnstile]) createReadable(f)
    if (o.shared && !(readable(file) && readable(turnstile))) return
    const deadline = Date.now() + (o.timeoutMs ?? 3_600_000)
    // heard once, though a writer may wait twice (at the turnstile, then for the readers)
    let told = false
    const once: HoldOptions = { ...o, waiting: (holder) => (told ? undefined : ((told = true), o.waiting?.(holder))) }
    const take = (lockFile: string, mode: "--shared" | "--exclusive") => takeLock(repo, file, ["flock", mode, lockFile, "cat"], deadline, once)
    if (o.shared) {
      // the usual case, no writer about: a registration, no process
      if (yield* registered(repo, [turnstile, file])) return
      // through the turnstile while a writer holds it, then the reader's flock
      if (writerAt(turnstile) !== false) yield* Effect.scoped(take(turnstile, "--shared"))
      yield* take(file, "--shared")
      // holding it shared, no writer holds it: a marker left by one that was killed is stale
      removeQuietly(heldMarkerOf(repo))
    } else {
      yield* take(turnstile, "--exclusive")
      yield* take(file, "--exclusive")
      // seen by readers in any pid namespace (/proc/locks hides locks of processes it cannot see),
      // before the scan: a reader that looks after this falls back to the flock
      yield* Effect.acquireRelease(
        Effect.sync(() => writeReadable(heldMarkerOf(repo), `${process.pid} ${doing}\n`)),
        () => Effect.sync(() => removeQuietly(heldMarkerOf(repo))),
      )
      yield* registeredGone(repo, file, deadline, once)
    }
    // for whoever waits next: who holds it, and for what
    try {
      writeFileSync(file, `${process.pid} ${doing}\n`)
    } catch {
      // a repo we may lock but not write: the waiter just hears less
    }
  })

/**
 * Where checkouts under way register, one file each (`PID STARTTIME PIDNAMESPACE`), so that a checkout with no
 * writer about needs no process of its own: a writer, once it holds the lock, waits for them.
 */
export const readersDirOf = (repo: Repo): string => path.join(repo.path, "syscontainers", "readers")

/** Written by a writer while it holds the lock (`PID DOING`), removed when it lets go. */
export const heldMarkerOf = (repo: Repo): string => `${lockFileOf(repo)}.held`

/**
 * Registers this reader for the scope, unless a writer is about (false then, and the reader takes
 * the flock way): one holds the lock (its marker), or holds or waits for `lockFiles` (/proc/locks),
 * or that cannot be told. Registered first, looked second: a writer that takes the lock after the
 * look writes its marker and scans after the registration, and waits for it. (A writer may see the
 * entry before its text and drop it as empty: this reader's second look then sees that writer.)
 */
const registered = (repo: Repo, lockFiles: ReadonlyArray<string>) =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => {
        const me = processStamp(process.pid)
        const noWriter = () => !existsSync(heldMarkerOf(repo)) && lockFiles.every((f) => writerAt(f) === false)
        if (me === undefined || !noWriter()) return undefined
        const dir = readersDirOf(repo)
        const entry = path.join(dir, `${process.pid}-${randomBytes(6).toString("hex")}`)
        try {
          // readable by a writer of any user, whatever the umask
          if (!existsSync(dir)) {
            mkdirSync(dir, { recursive: true })
            chmodSync(dir, 0o755)
          }
          writeReadable(entry, `${me} ${pidNamespace() ?? "?"}`)
        } catch {
          removeQuietly(entry)
          return undefined // a repo we may not write to
        }
        if (noWriter()) return entry
        removeQuietly(entry)
        return undefined
      }),
      (entry) => Effect.sync(() => entry && removeQuietly(entry)),
    ),
    (entry) => entry !== undefined,
  )

/** Waits, holding the lock, until no registered reader is still running (bounded by `deadline`, interruptible). */
const registeredGone = (repo: Repo, file: string, deadline: number, o: HoldOptions) =>
  Effect.gen(function* () {
    for (;;) {
      const live = liveReaders(repo)
      if (live.length === 0) return
      o.waiting?.(`${live.length === 1 ? "a checkout" : `${live.length} checkouts`} under way (pid ${live.join(", ")})`)
      if (Date.now() > deadline)
        return yield* Effect.fail(new CommandFailed({ argv: ["flock", "--exclusive", file], exitCode: null, signal: null, stderrTail: `checkouts under way in ${repo.path} (pid ${live.join(", ")}) for ${((o.timeoutMs ?? 3_600_000) / 1000).toFixed(0)} s: let them finish, or end them` }))
      yield* Effect.interruptible(Effect.sleep("20 millis"))
    }
  })

/**
 * The registered readers still running, by pid; the entries of any that ended (even killed) go.
 * What cannot be told counts as running (bounded by the writer's deadline): an entry or a folder
 * we may not read, a reader in another pid namespace (its pid means another process here), a
 * process /proc will not show us (hidepid).
 */
const liveReaders = (repo: Repo): ReadonlyArray<string> => {
  const dir = readersDirOf(repo)
  let names: string[] = []
  try {
    names = readdirSync(dir)
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ENOENT" ? [] : [`unknown (${dir} unreadable)`]
  }
  const ours = pidNamespace()
  const live: string[] = []
  for (const name of names) {
    const entry = path.join(dir, name)
    let text: string
    try {
      text = readFileSync(entry, "utf8")
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") live.push(`unknown (${entry} unreadable)`)
      continue // else gone meanwhile
    }
    const [pidText, start, namespace] = text.trim().split(" ")
    const pid = Number(pidText)
    if (namespace !== undefined && namespace !== ours) {
      live.push(`${pidText} in another pid namespace`)
      continue
    }
    const now = Number.isInteger(pid) && pid > 0 ? processStamp(pid) : undefined
    // the same process, not another that took its pid since
    if (now !== undefined && now === `${pid} ${start}`) live.push(String(pid))
    else if (now === undefined && Number.isInteger(pid) && pid > 0 && !gone(pid)) live.push(`${pid} (hidden from us)`)
    else removeQuietly(entry)
  }
  return live
}

/** Whether no process `pid` exists (as opposed to one /proc does not show us). */
const gone = (pid: number) => {
  try {
    process.kill(pid, 0)
    return false
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ESRCH"
  }
}

const pidNamespace = () => {
  try {
    return readlinkSync("/proc/self/ns/pid")
  } catch {
    return undefined
  }
}

const removeQuietly = (file: string) => {
  try {
    rmSync(file, { force: true })
  } catch {
    // another user's: it stays, and counts by its process like any other
  }
}

const writeReadable = (file: string, text: string, flag = "w") => {
  writeFileSync(file, text, { flag })
  chmodSync(file, 0o644)
}

/** `PID STARTTIME` (clock ticks since boot, from /proc/PID/stat): one process, even after its pid is reused. */
export const processStamp = (pid: number): string | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // after the command's closing parenthesis: state is field 3, starttime field 22
    const start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]
    return start ? `${pid} ${start}` : undefined
  } catch {
    return undefined
  }
}

/** Starts the flock(1) holder `argv` in the scope and returns once it holds its lock. */
const takeLock = (repo: Repo, file: string, argv: ReadonlyArray<string>, deadline: number, o: HoldOptions) =>
  Effect.gen(function* () {
    const spawn = yield* Spawn
    const stdin = new PassThrough()
    // the scope ends the holder (Spawn.start kills it; node then closes its stdin, and cat ends),
    // and with it the lock
    const holder = yield* spawn.start(argv, { input: stdin })
    const granted = Effect.async<void>((resume) => {
      const got = () => resume(Effect.void)
      holder.stdout?.once("data", got)
      stdin.write("\n")
      return Effect.sync(() => holder.stdout?.off("data", got))
    }).pipe(Effect.raceFirst(Effect.flatMap(holder.exited, (r) => Effect.fail(new CommandFailed({ argv, exitCode: r.exitCode, signal: r.signal, stderrTail: r.stderr.slice(-4000) })))))
    const told = yield* granted.pipe(Effect.timeout("100 millis"), Effect.option, Effect.interruptible)
    if (told._tag === "Some") return
    o.waiting?.(readHolder(file))
    const late = yield* granted.pipe(Effect.timeout(`${Math.max(0, deadline - Date.now())} millis`), Effect.option, Effect.interruptible)
    if (late._tag === "None")
      return yield* Effect.fail(new CommandFailed({ argv, exitCode: null, signal: null, stderrTail: `${repo.path} stayed locked by ${readHolder(file)} for ${((o.timeoutMs ?? 3_600_000) / 1000).toFixed(0)} s: let it finish, or end it` }))
  })

/**
 * Whether a process holds, or waits for, an exclusive flock on `file`, as /proc/locks lists them
 * (`1: FLOCK  ADVISORY  WRITE PID MAJOR:MINOR:INODE 0 EOF`, a waiter's with `->`); undefined when
 * it cannot tell. A writer that comes just after the look waits for this reader, as it would have.
 */
const writerAt = (file: string): boolean | undefined => {
  try {
    // by inode alone: /proc/locks names the superblock's device, which stat does not give on btrfs
    // or overlayfs; a lock on the same inode number elsewhere only sends a reader the flock way
    const ino = String(statSync(file).ino)
    return readFileSync("/proc/locks", "utf8")
      .split("\n")
      .some((l) => /\bFLOCK\s+ADVISORY\s+WRITE\s/.test(l) && l.split(/\s+/).some((f) => f.split(":")[2] === ino))
  } catch {
    return undefined
  }
}

const createReadable = (file: string) => {
  try {
    writeReadable(file, "", "wx")
  } catch {
    // there already, or a repo we may not write to
  }
}

const readable = (file: string) => {
  try {
    accessSync(file, constants.R_OK)
    return true
  } catch {
    return false
  }
}

const readHolder = (file: string) => {
  try {
    return readFileSync(file, "utf8").trim() || "another process"
  } catch {
    return "another process"
  }
}
