// Attached runs under runc, stopped the ways they are stopped: an interruption (a recipe's Ctrl-C, a
// failed sibling) and a signal to `syscontainers run`, as systemd stops a unit.
import { suite } from "uvu"
import * as assert from "uvu/assert"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { spawn } from "node:child_process"
import { existsSync, mkdirSync, readFileSync } from "node:fs"
import path from "node:path"
import { makeOciRuntime, stateRootFor } from "../packages/core/src/OciRuntime.ts"
import { makeBubblewrapRuntime } from "../packages/core/src/Bubblewrap.ts"
import { SpawnLive } from "../packages/core/src/Spawn.ts"
import { cleanupTemps, repoRoot, run, tempDir, loud } from "./fixtures/harness.ts"
import { makeProbeBundle } from "./fixtures/probeBundle.ts"

const t = suite("attached runs")
const tag = `at${process.pid}`
const bin = path.join(repoRoot, "packages/core/bin/syscontainers.js")

/** A busybox bundle running `script`, with /out bound to DIR/out for what it reports. */
const probe = async (what: string, script: string) => {
  const dir = tempDir(`attached-${what}`)
  const b = await run(makeProbeBundle(dir))
  mkdirSync(path.join(dir, "out"), { mode: 0o777 })
  b.patch((c) => {
    c.process.terminal = false
    c.process.args = ["sh", "-c", script]
    c.mounts.push({ destination: "/out", type: "bind", source: path.join(dir, "out"), options: ["rbind", "rw"] })
    // bwrap cannot mount /dev/shm noexec (and refuses to pretend): without it, for every runtime alike
    c.mounts = c.mounts.map((m: { destination: string; options?: string[] }) => (m.destination === "/dev/shm" ? { ...m, options: (m.options ?? []).filter((o) => o !== "noexec") } : m))
  })
  const out = (f: string) => (existsSync(path.join(dir, "out", f)) ? readFileSync(path.join(dir, "out", f), "utf8") : "")
  const until = async (f: string, text: string) => {
    for (let i = 0; i < 400 && !out(f).includes(text); i++) await new Promise((r) => setTimeout(r, 25))
    return out(f)
  }
  return { dir, out, until }
}
type Probe = Awaited<ReturnType<typeof probe>>

/**
 * Runs `bundle` attached under `rt` until its container says "up", then interrupts the run (the
 * runtime process is started by then, so the run is the runtime's to stop); resolves with how long
 * the interruption took, in ms.
 */
const interruptOnceUp = async (rt: { readonly runAttached: (o: { bundle: string; name: string }) => Effect.Effect<number, unknown, never> }, p: Probe, name: string) => {
  const fiber = Effect.runFork(rt.runAttached({ bundle: p.dir, name }).pipe(Effect.provide(SpawnLive)))
  assert.is(await p.until("o", "up"), "up\n")
  await new Promise((r) => setTimeout(r, 200))
  const started = Date.now()
  await Effect.runPromise(Fiber.interrupt(fiber))
  return Date.now() - started
}

t.before(loud("before", async () => {}))
t.after(() => cleanupTemps())

t("interrupted, a container that ignores TERM and INT is killed when the grace runs out; the interruption ends, nothing is left", async () => {
  const p = await probe("deaf", "trap '' TERM INT; echo up >/out/o; while :; do sleep 0.1; done")
  const name = `${tag}-deaf`
  const rt = await run(makeOciRuntime({ name: "runc", stopGraceMs: 500 }))
  const took = await interruptOnceUp(rt, p, name)
  assert.ok(took < 4_000, `the interruption took ${took} ms, past the 500 ms grace`)
  assert.not.ok(existsSync(path.join(stateRootFor("runc"), name)), "no state left")
})

t("bwrap: interrupted, a container that ignores TERM and INT is killed when the grace runs out; one that handles TERM finishes", async () => {
  const rt = await run(makeBubblewrapRuntime({ stopGraceMs: 500 }))
  const deaf = await probe("bwrap-deaf", "trap '' TERM INT; echo up >/out/o; while :; do sleep 0.1; done")
  const took = await interruptOnceUp(rt, deaf, `${tag}-bwrap-deaf`)
  assert.ok(took < 4_000, `the interruption took ${took} ms, past the 500 ms grace`)
  const polite = await probe("bwrap-polite", "trap 'sleep 0.2; echo done >/out/o; exit 0' TERM; echo up >/out/o; while :; do sleep 0.1; done")
  const rt2 = await run(makeBubblewrapRuntime({ stopGraceMs: 5_000 }))
  await interruptOnceUp(rt2, polite, `${tag}-bwrap-polite`)
  assert.is(polite.out("o"), "done\n", "its TERM handler ran to the end, not killed with bwrap")
  assert.not.ok(existsSync(path.join(rt.stateRoot, `${tag}-bwrap-deaf`)) || existsSync(path.join(rt.stateRoot, `${tag}-bwrap-polite`)), "no state left")
})

t("interrupted, a container that handles TERM gets one and the time to finish", async () => {
  const p = await probe("polite", "trap 'sleep 0.3; echo done >/out/o; exit 0' TERM; echo up >/out/o; while :; do sleep 0.1; done")
  const name = `${tag}-polite`
  const rt = await run(makeOciRuntime({ name: "runc", stopGraceMs: 5_000 }))
  await interruptOnceUp(rt, p, name)
  assert.is(p.out("o"), "done\n", "its TERM handler ran to the end")
  assert.not.ok(existsSync(path.join(stateRootFor("runc"), name)))
})

t("syscontainers run, attached, passes SIGTERM to the container and ends with the container's own status", async () => {
  const p = await probe("cli", "trap 'echo term >/out/o; exit 7' TERM; echo up >/out/o; while :; do sleep 0.1; done")
  const name = `${tag}-cli`
  const child = spawn("node", [bin, "run", p.dir, name], { stdio: ["ignore", "ignore", "pipe"] })
  let said = ""
  child.stderr.on("data", (d: Buffer) => void (said += d.toString()))
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  assert.is(await p.until("o", "up"), "up\n")
  child.kill("SIGTERM")
  assert.is(await exited, 7, said)
  assert.is(p.out("o"), "term\n")
  assert.not.ok(existsSync(path.join(stateRootFor("runc"), name)), "deleted after it exited")
})

t.run()

