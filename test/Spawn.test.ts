// Spawn: argv straight to the kernel (no shell), missing tools, and inOrder, which runs work at once
// while its commands reach the observer in a fixed order.
import { suite } from "uvu"
import * as assert from "uvu/assert"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { heldReports, inOrder, makeSpawn, Spawn, SpawnLive, type CommandObserver } from "../packages/core/src/Spawn.ts"
import * as Ostree from "../packages/core/src/Ostree.ts"

const t = suite("Spawn")

/** Runs `e` with a real Spawn whose observer logs "start:ARGV" and "done:ARGV" as they come. */
const observed = async <A, E>(e: Effect.Effect<A, E, Spawn>) => {
  const seen: string[] = []
  const observe: CommandObserver = ({ argv, result }) => void seen.push(`${result ? "done" : "start"}:${argv.join(" ")}`)
  const t0 = Date.now()
  const exit = await Effect.runPromiseExit(e.pipe(Effect.provideService(Spawn, makeSpawn(observe))))
  return { exit, seen, ms: Date.now() - t0 }
}

const sh = (script: string) => Effect.flatMap(Spawn, (s) => s.run(["sh", "-c", script]))

const live = <A, E>(e: Effect.Effect<A, E, Spawn>) => Effect.runPromise(Effect.either(e).pipe(Effect.provide(SpawnLive)))

t("argv reaches the tool as it is, with no shell: no word splitting, no globbing, no PWD or SHLVL added", async () => {
  const odd = ["two words", "*", "$HOME", "a'b\"c", ""]
  const r = await live(Effect.flatMap(Spawn, (s) => s.run(["printf", "[%s]\n", ...odd])))
  assert.ok(r._tag === "Right")
  if (r._tag === "Right") assert.is(r.right.stdout, odd.map((a) => `[${a}]\n`).join(""))
  const env = await live(Effect.flatMap(Spawn, (s) => s.run(["/usr/bin/env"], { cleanEnv: true, env: { ONLY: "this" } })))
  assert.ok(env._tag === "Right" && env.right.stdout === "ONLY=this\n", "the environment given, nothing more")
})

t("a tool that is not there: ToolMissing naming its Debian package, from run and at once from start; a tool's own exit 127 is its status", async () => {
  const run = await live(Effect.flatMap(Spawn, (s) => s.run(["/nonexistent/skopeo", "inspect"])))
  assert.ok(run._tag === "Left" && run.left._tag === "ToolMissing" && run.left.debianPackage === "skopeo", JSON.stringify(run))
  const t0 = Date.now()
  const start = await live(Effect.scoped(Effect.flatMap(Spawn, (s) => s.start(["no-such-tool-syscontainers"]))))
  assert.ok(start._tag === "Left" && start.left._tag === "ToolMissing", JSON.stringify(start))
  assert.ok(Date.now() - t0 < 40, "start knows at once, without waiting to see the tool exit")
  const own = await live(Effect.flatMap(Spawn, (s) => s.run(["sh", "-c", "echo not found >&2; exit 127"])))
  assert.ok(own._tag === "Left" && own.left._tag === "CommandFailed" && own.left.exitCode === 127, JSON.stringify(own))
  // started: a pid of its own, and the scope ends it
  const pid = await Effect.runPromise(Effect.scoped(Effect.flatMap(Spawn, (s) => Effect.map(s.start(["sleep", "5"]), (p) => p.pid))).pipe(Effect.provide(SpawnLive)))
  assert.ok(pid > 0)
  let alive = true
  try {
    process.kill(pid, 0)
  } catch {
    alive = false
  }
  assert.not.ok(alive, "ended with its scope")
})

t("ENOENT that is not the tool: a missing working directory, a missing interpreter: CommandFailed saying so, not ToolMissing", async () => {
  const cwd = await live(Effect.flatMap(Spawn, (s) => s.run(["ls"], { cwd: "/nonexistent-syscontainers-dir" })))
  assert.ok(cwd._tag === "Left" && cwd.left._tag === "CommandFailed", JSON.stringify(cwd))
  if (cwd._tag === "Left") assert.match(cwd.left.message, /working directory \/nonexistent-syscontainers-dir does not exist/)
  const dir = mkdtempSync(path.join(os.tmpdir(), "spawn-"))
  const script = path.join(dir, "script")
  writeFileSync(script, "#!/nonexistent/interpreter\n", { mode: 0o755 })
  const interp = await live(Effect.flatMap(Spawn, (s) => s.run([script])))
  rmSync(dir, { recursive: true, force: true })
  assert.ok(interp._tag === "Left" && interp.left._tag === "CommandFailed", JSON.stringify(interp))
  if (interp._tag === "Left") assert.match(interp.left.message, /interpreter or loader/)
})

t("no bash needed: with nothing on PATH, an absolute argv still runs", async () => {
  // zx quotes for a shell it looks for at import; a process where there is none must still spawn
  const probe = `import { Effect } from "effect"; import { Spawn, SpawnLive } from ${JSON.stringify(path.resolve("packages/core/src/Spawn.ts"))}
const r = await Effect.runPromise(Effect.flatMap(Spawn, (s) => s.run(["/bin/echo", "a b"])).pipe(Effect.provide(SpawnLive)))
process.stdout.write(r.stdout)`
  // beside the workspace's node_modules, so that "effect" resolves
  mkdirSync(path.resolve("work"), { recursive: true })
  const dir = mkdtempSync(path.resolve("work", "spawn-probe-"))
  writeFileSync(path.join(dir, "probe.mts"), probe)
  const out = execFileSync(process.execPath, ["--import", "tsx", path.join(dir, "probe.mts")], { env: { PATH: "/nonexistent" }, cwd: process.cwd() }).toString()
  rmSync(dir, { recursive: true, force: true })
  assert.is(out, "a b\n")
})

t("ownProcessGroup: the process leads a group of its own (a Ctrl-C to ours passes it by); Ostree.commit asks for it when it writes a ref", async () => {
  const pgidOf = (opts: { ownProcessGroup?: boolean }) => live(Effect.flatMap(Spawn, (s) => s.run(["ps", "-o", "pid=,pgid=", "-p", String(process.pid)], opts)))
  const ours = await pgidOf({})
  assert.ok(ours._tag === "Right")
  const mine = Number(ours._tag === "Right" ? ours.right.stdout.trim().split(/\s+/)[1] : NaN)
  const own = await live(Effect.flatMap(Spawn, (s) => s.run(["sh", "-c", "ps -o pgid= -p $$"], { ownProcessGroup: true })))
  const same = await live(Effect.flatMap(Spawn, (s) => s.run(["sh", "-c", "ps -o pgid= -p $$"])))
  assert.ok(own._tag === "Right" && same._tag === "Right")
  if (own._tag === "Right" && same._tag === "Right") {
    assert.is(Number(same.right.stdout.trim()), mine, "by default, our group")
    assert.is.not(Number(own.right.stdout.trim()), mine, "its own group")
  }
  // which ostree calls ask for it
  const dir = mkdtempSync(path.join(os.tmpdir(), "spawn-ostree-"))
  const seen: Array<{ argv: ReadonlyArray<string>; own: boolean }> = []
  const real = makeSpawn()
  const recording = Spawn.of({ ...real, run: (argv, o) => (seen.push({ argv, own: o?.ownProcessGroup === true }), real.run(argv, o)) })
  mkdirSync(path.join(dir, "tree"))
  writeFileSync(path.join(dir, "tree", "f"), "x")
  await Effect.runPromise(
    Effect.gen(function* () {
      const repo = yield* Ostree.init({ path: path.join(dir, "repo") })
      yield* Ostree.commit(repo, { branch: "test/named", tree: { dir: path.join(dir, "tree") } })
      yield* Ostree.commit(repo, { tree: { dir: path.join(dir, "tree") } })
    }).pipe(Effect.provideService(Spawn, recording)),
  )
  rmSync(dir, { recursive: true, force: true })
  const commits = seen.filter((c) => c.argv[1] === "commit").map((c) => ({ named: c.argv.includes("--branch=test/named"), own: c.own }))
  assert.equal(commits, [{ named: true, own: true }, { named: false, own: false }])
})

t("inOrder: branches run at once; a later branch's commands are reported after the earlier branch's, though they ended first", async () => {
  const slow = Effect.zipRight(sh("sleep 0.3; echo a1"), sh("echo a2"))
  const quick = sh("echo b1")
  const { exit, seen, ms } = await observed(inOrder([slow, quick]))
  assert.ok(exit._tag === "Success", String(exit))
  if (exit._tag === "Success") assert.equal(exit.value.map((r) => r.stdout.trim()), ["a2", "b1"], "each branch's result, in the branches' order")
  assert.equal(seen, ["start:sh -c sleep 0.3; echo a1", "done:sh -c sleep 0.3; echo a1", "start:sh -c echo a2", "done:sh -c echo a2", "start:sh -c echo b1", "done:sh -c echo b1"])
  // b1 ran while a1 slept: one after the other would take as long as both
  assert.ok(ms < 300 + 250, `ran at once (${ms} ms)`)
})

t("inOrder: a failing branch ends the others, and every command that ran is still reported, in order", async () => {
  const long = sh("sleep 5")
  const failing = Effect.zipRight(sh("sleep 0.1"), sh("exit 3"))
  const { exit, seen, ms } = await observed(inOrder([long, failing]))
  assert.is(exit._tag, "Failure")
  assert.ok(ms < 3000, `the sleeping branch was interrupted (${ms} ms)`)
  assert.equal(seen, ["start:sh -c sleep 5", "start:sh -c sleep 0.1", "done:sh -c sleep 0.1", "start:sh -c exit 3", "done:sh -c exit 3"], "the interrupted one never finished; the failed branch's reports came after it ended")
})

t("inOrder startFirst: that branch starts before the others; results and reports keep the order given", async () => {
  const began: string[] = []
  const branch = (name: string) => Effect.zipRight(Effect.sync(() => void began.push(name)), sh(`echo ${name}`))
  const { exit, seen } = await observed(inOrder([branch("a"), branch("b"), branch("c")], { startFirst: 2 }))
  assert.is(exit._tag, "Success", String(exit))
  if (exit._tag === "Success") assert.equal(exit.value.map((r) => r.stdout.trim()), ["a", "b", "c"])
  assert.is(began[0], "c", `started first: ${began.join(", ")}`)
  assert.equal(seen.filter((s) => s.startsWith("done:")), ["done:sh -c echo a", "done:sh -c echo b", "done:sh -c echo c"])
  // a branch that is not there is a mistake of the caller's, said as such, with nothing run
  for (const wrong of [1.5, 3, -1]) {
    const bad = await observed(inOrder([branch("x"), branch("y"), branch("z")], { startFirst: wrong }))
    assert.is(bad.exit._tag, "Failure")
    assert.match(String(bad.exit), new RegExp(`startFirst ${wrong} names none of the 3 branches`))
    assert.equal(bad.seen, [])
  }
})

t("inOrder inside inOrder: the inner one's reports still wait for the outer branches before it", async () => {
  const { seen } = await observed(inOrder([sh("sleep 0.3; echo A"), inOrder([sh("echo B1"), sh("echo B2")])]))
  assert.equal(seen, ["start:sh -c sleep 0.3; echo A", "done:sh -c sleep 0.3; echo A", "start:sh -c echo B1", "done:sh -c echo B1", "start:sh -c echo B2", "done:sh -c echo B2"])
})

t("heldReports: commands run at once but reach the observer only at release, in the order they ran; after it, as they happen", async () => {
  const reports = heldReports()
  const dir = mkdtempSync(path.join(os.tmpdir(), "sc-held-"))
  const fifo = path.join(dir, "go")
  execFileSync("mkfifo", [fifo])
  // no sleeps: a1 and a2 end before "meanwhile" starts; a3 waits on the fifo until "after" has ended
  const { exit, seen } = await observed(
    Effect.gen(function* () {
      const ahead = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(reports.hold(Effect.all([sh("echo a1"), sh("echo a2"), Deferred.succeed(ahead, undefined), sh(`cat ${fifo}`)])))
      yield* Deferred.await(ahead)
      yield* sh("echo meanwhile")
      yield* reports.release
      yield* sh("echo after")
      yield* sh(`echo go > ${fifo}`)
      return yield* Fiber.join(fiber)
    }),
  )
  rmSync(dir, { recursive: true, force: true })
  assert.is(exit._tag, "Success", String(exit))
  // a1 and a2 ended before "meanwhile" ran, yet come after it, in their order
  assert.equal(seen.slice(0, 6), ["start:sh -c echo meanwhile", "done:sh -c echo meanwhile", "start:sh -c echo a1", "done:sh -c echo a1", "start:sh -c echo a2", "done:sh -c echo a2"])
  // once released, a3's end comes as it happens: after "after", which ended while a3 waited
  assert.ok(seen.indexOf("done:sh -c echo after") < seen.indexOf(`done:sh -c cat ${fifo}`), seen.join(", "))
  assert.ok(seen.indexOf(`start:sh -c cat ${fifo}`) > 5, seen.join(", "))
})

t("outside inOrder, commands are reported as they happen", async () => {
  const { seen } = await observed(Effect.all([sh("sleep 0.2"), sh("true")], { concurrency: "unbounded" }))
  assert.equal(seen.indexOf("done:sh -c true") < seen.indexOf("done:sh -c sleep 0.2"), true, `live order: ${seen.join(", ")}`)
})

t.run()
