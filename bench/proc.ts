// proc: how the bench starts processes (the core Spawn service, argv only), times them, waits for redis, and cleans up.
import { Effect } from "effect"
import { createConnection } from "node:net"
import { makeSpawn, type CommandObserver, type ProcessResult, type RunOptions } from "@syscontainers/core/Spawn"

const plain = makeSpawn()

/** Runs argv to completion through the core Spawn service; rejects on a bad exit. */
export const run = (argv: ReadonlyArray<string>, options: RunOptions = {}, observe?: CommandObserver): Promise<ProcessResult> =>
  Effect.runPromise((observe ? makeSpawn(observe) : plain).run(argv, options))

/** Like run, but never rejects: for clean-up, where "already gone" is fine. */
export const runQuiet = (argv: ReadonlyArray<string>, options: RunOptions = {}): Promise<ProcessResult | undefined> =>
  run(argv, options).catch(() => undefined)

/** Milliseconds `job` takes, measured around the whole call (process start and exit included). */
export const timed = async (job: () => Promise<unknown>): Promise<number> => {
  const t0 = performance.now()
  await job()
  return performance.now() - t0
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export { freePort } from "../test/fixtures/harness.ts"

// one RESP PING over a fresh connection: what `redis-cli ping` does, without a process start per try
const pingOnce = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port })
    let answer = ""
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => done(false))
    socket.once("error", () => done(false))
    socket.on("data", (d: Buffer) => {
      answer += d.toString()
      if (answer.includes("\r\n")) done(answer.startsWith("+PONG"))
    })
    socket.once("connect", () => socket.write("PING\r\n"))
  })

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Resolves once redis on `port` answers PONG; rejects after `timeoutMs`. Polls every 5 ms. */
export const waitPong = async (port: number, timeoutMs = 20_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await pingOnce(port)) return
    await sleep(5)
  }
  throw new Error(`bench: redis on 127.0.0.1:${port} did not answer PONG within ${timeoutMs} ms`)
}

type Cleanup = () => Promise<void> | void
const cleanups: Array<{ readonly what: string; readonly fn: Cleanup }> = []

/** Registers clean-up to run at the end (last registered runs first); returns a function that runs it now and forgets it. */
export const defer = (what: string, fn: Cleanup): (() => Promise<void>) => {
  const entry = { what, fn }
  cleanups.push(entry)
  return async () => {
    const i = cleanups.indexOf(entry)
    if (i < 0) return
    cleanups.splice(i, 1)
    await fn()
  }
}

/** Runs every registered clean-up, newest first; a failing one is reported and the rest still run. */
export const cleanupAll = async (): Promise<void> => {
  while (cleanups.length > 0) {
    const { what, fn } = cleanups.pop()!
    try {
      await fn()
    } catch (e) {
      process.stderr.write(`bench: clean-up "${what}" failed: ${(e as Error).message}\n`)
    }
  }
}

const t0 = Date.now()

/** A progress line on stderr, stamped with the time since the bench started. */
export const log = (line: string) => {
  const s = ((Date.now() - t0) / 1000).toFixed(0).padStart(4)
  process.stderr.write(`[${s} s] ${line}\n`)
}
