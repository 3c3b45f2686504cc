// RepoLock: one writer at a time in a repo, across processes, and no writer while a reader checks
// out. What a pull decides from the refs it sees (a layer is there: reuse it) must still hold when
// it names its image, and what rmi or a pull that moves a name takes away must not be a layer
// another pull is about to name, nor the commits or shared tree a checkout is reading.
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs"
import path from "node:path"
import { PassThrough } from "node:stream"
import { CommandFailed, type ToolMissing } from "./Errors.ts"
import type { Repo } from "./Ostree.ts"
import { Spawn } from "./Spawn.ts"

/** The file locked: in the repo's own folder of ours, so every user of the repo meets it. */
export const lockFileOf = (repo: Repo): string => path.join(repo.path, "syscontainers", "lock")

/**
 * Holds the repo's lock until the scope closes: a writer's (exclusive), or with `shared` a reader's,
 * which other readers hold at the same time. flock(1) takes it (`flock --exclusive FILE cat`) and
 * keeps it while its `cat` runs: the kernel lets go whenever that process ends, so a holder killed
 * any way, even SIGKILL, leaves no stale lock. `cat` echoing a byte back says the lock is ours.
 * While another holds it, `waiting` hears who (each holder writes its pid and what it does into
 * the file once it holds it); after `timeoutMs` (default an hour) it gives up. A reader of a repo
 * with no lock file that it may not create reads without one: it could not lock out a writer of
 * that repo, and a writer there would have made the file.
 */
export const hold = (
  repo: Repo,
  doing: string,
  o: { readonly waiting?: (holder: string) => void; readonly timeoutMs?: number; readonly shared?: boolean } = {},
): Effect.Effect<void, CommandFailed | ToolMissing, Spawn | Scope.Scope> =>
  Effect.gen(function* () {
    const file = lockFileOf(repo)
    try {
      mkdirSync(path.dirname(file), { recursive: true })
    } catch {
      // a repo we may not write to: flock says so, with the file it could not open
    }
    if (o.shared && !existsSync(file) && !creatable(file)) return
    const spawn = yield* Spawn
    const stdin = new PassThrough()
    const argv = ["flock", o.shared ? "--shared" : "--exclusive", file, "cat"]
    // the scope ends the holder (Spawn.start kills it), and with it the lock
    const holder = yield* spawn.start(argv, { input: stdin })
    const granted = Effect.async<void>((resume) => {
      const got = () => resume(Effect.void)
      holder.stdout?.once("data", got)
      stdin.write("\n")
      return Effect.sync(() => holder.stdout?.off("data", got))
    })
    const told = yield* granted.pipe(Effect.timeout("100 millis"), Effect.option)
    if (told._tag === "None") {
      o.waiting?.(readHolder(file))
      const late = yield* granted.pipe(
        Effect.raceFirst(Effect.flatMap(holder.exited, (r) => Effect.fail(new CommandFailed({ argv, exitCode: r.exitCode, signal: r.signal, stderrTail: r.stderr.slice(-4000) })))),
        Effect.timeout(`${o.timeoutMs ?? 3_600_000} millis`),
        Effect.option,
      )
      if (late._tag === "None")
        return yield* Effect.fail(new CommandFailed({ argv, exitCode: null, signal: null, stderrTail: `${repo.path} stayed locked by ${readHolder(file)} for ${(o.timeoutMs ?? 3_600_000) / 1000} s: let it finish, or end it` }))
    }
    // for whoever waits next: who holds it, and for what
    try {
      writeFileSync(file, `${process.pid} ${doing}\n`)
    } catch {
      // a repo we may lock but not write: the waiter just hears less
    }
  })

const creatable = (file: string) => {
  try {
    closeSync(openSync(file, "a"))
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
