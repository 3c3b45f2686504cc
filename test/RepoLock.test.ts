// RepoLock: one writer at a time in a repo, and none while a checkout reads it. A pull and an rmi
// wait while another process holds the lock (a real flock(1), as another syscontainers would), say
// who holds it, and go on once that holder is gone, even killed with SIGKILL: the kernel lets go of
// the lock, nothing stale stays. A checkout waits for a writer, never for another checkout.
import { suite } from "uvu"
import * as assert from "uvu/assert"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { spawn, type ChildProcess } from "node:child_process"
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import type * as Scope from "effect/Scope"
import path from "node:path"
import * as Images from "../packages/core/src/Images.ts"
import * as Layers from "../packages/core/src/Layers.ts"
import * as Ostree from "../packages/core/src/Ostree.ts"
import { pull, type PullEvent } from "../packages/core/src/Pull.ts"
import * as RepoLock from "../packages/core/src/RepoLock.ts"
import { lockFileOf } from "../packages/core/src/RepoLock.ts"
import { makeSpawn, Spawn, SpawnLive } from "../packages/core/src/Spawn.ts"
import * as Layer from "effect/Layer"
import { cleanupTemps, failure, run, runFileAsUser, sh, shAny, tempDir, loud } from "./fixtures/harness.ts"
import { useMirror, type Mirror } from "./fixtures/mirror.ts"

const t = suite("RepoLock")
const thisFile = fileURLToPath(import.meta.url)
let mirror: Mirror

t.before(loud("before", async () => {
  mirror = await useMirror()
}))
t.after(async () => {
  cleanupTemps()
  await mirror.stop()
})

/**
 * Another process holding the repo's lock, as another writer (or, shared, a checkout) would, until
 * it is killed. `--close`: flock alone holds the lock, not the sleep it runs (which would keep it
 * after flock's SIGKILL, and every test would wait out its 60 s); the sleep is ended by its pid.
 */
const holdElsewhere = async (file: string, who: string, mode: "--exclusive" | "--shared" = "--exclusive") => {
  mkdirSync(path.dirname(file), { recursive: true })
  writeFileSync(file, `${who}\n`)
  const holder = spawn("flock", [mode, "--close", file, "sleep", "60"], { stdio: "ignore" })
  // held once flock runs its sleep
  for (let i = 0; i < 200; i++) {
    const sleeper = Number((await sh(["ps", "-o", "pid=", "--ppid", String(holder.pid)]).catch(() => "")).trim())
    if (sleeper > 0) return { holder, sleeper }
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error("the holder never took the lock")
}

/** SIGKILL for the holder (the lock goes with it), then its sleep; nothing once the holder is gone (flock outlives its sleep). */
const killed = async ({ holder, sleeper }: { readonly holder: ChildProcess; readonly sleeper: number }) => {
  if (holder.exitCode !== null || holder.signalCode !== null) return
  await new Promise<void>((resolve) => (holder.once("exit", () => resolve()), holder.kill("SIGKILL")))
  try {
    process.kill(sleeper, "SIGKILL")
  } catch {
    // ended already
  }
}

/** A temp dir with a repo (ostree/) holding redis pulled from the mirror, and the repo's lock file. */
const withRedis = async (tag: string) => {
  const top = tempDir(tag)
  const repo = await run(Ostree.init({ path: path.join(top, "ostree") }))
  await run(pull({ from: "docker://redis:alpine", name: "redis", repo }))
  return { top, repo, image: await run(Images.get(repo, "redis")), file: lockFileOf(repo) }
}

/** Whether `promise` is still pending after `ms`. */
const pendingAfter = async (promise: Promise<unknown>, ms: number) => {
  let settled = false
  void promise.then(() => (settled = true), () => (settled = true))
  await new Promise((r) => setTimeout(r, ms))
  return !settled
}

/** Processes still holding or waiting for `file` (a flock left behind would show here). */
const flocksOn = async (file: string) => (await sh(["ps", "-eo", "args="])).split("\n").filter((l) => l.startsWith("flock") && l.includes(file))

t("a pull waits while another writer holds the repo, says who, and goes on once that one is killed", async () => {
  const dir = path.join(tempDir("lock"), "ostree")
  const repo = await run(Ostree.init({ path: dir }))
  const file = lockFileOf(repo)
  const holder = await holdElsewhere(file, "4242 rmi something")
  const events: PullEvent[] = []
  const pulling = run(pull({ from: "docker://redis:alpine", name: "redis", repo, onProgress: (e) => void events.push(e) }))
  try {
    assert.ok(await pendingAfter(pulling, 1500), "the pull waited")
    assert.ok(events.some((e) => e.kind === "waiting" && e.holder === "4242 rmi something"), JSON.stringify(events))
    assert.not.ok(Ostree.hasRef(repo, "ociimage/redis_3Alatest"), "nothing named while it waited")
  } finally {
    await killed(holder)
  }
  const r = await pulling
  assert.is(r.skipped, false)
  assert.ok(Ostree.hasRef(repo, "ociimage/redis_3Alatest"))
  // it said who held the lock while it did, and let go of it
  assert.match(readFileSync(file, "utf8"), new RegExp(`^${process.pid} pull docker://redis:alpine as redis:latest`))
  assert.equal(await flocksOn(file), [])
})

t("rmi waits the same way; two pulls at once into one repo both name whole images", async () => {
  const dir = path.join(tempDir("lock2"), "ostree")
  const repo = await run(Ostree.init({ path: dir }))
  // at once: one waits for the other's naming, and each image keeps every layer it names
  await run(Effect.all([pull({ from: "docker://redis:alpine", name: "a", repo }), pull({ from: "docker://nginx:alpine", name: "b", repo })], { concurrency: 2 }))
  const refs = await sh(["ostree", "refs", `--repo=${dir}`])
  for (const n of ["a", "b"]) {
    const image = await run(Images.get(repo, n))
    for (const d of [image.manifest.config, ...image.manifest.layers]) assert.ok(refs.includes(`ociimage/${d.digest.slice(7)}`), `${n} keeps ${d.digest}`)
  }
  const file = lockFileOf(repo)
  const holder = await holdElsewhere(file, "4243 pull something")
  const removing = run(Images.remove(repo, "a"))
  try {
    assert.ok(await pendingAfter(removing, 1000), "rmi waited")
    assert.ok(Ostree.hasRef(repo, "ociimage/a_3Alatest"))
  } finally {
    await killed(holder)
  }
  await removing
  assert.not.ok(Ostree.hasRef(repo, "ociimage/a_3Alatest"))
  assert.ok(Ostree.hasRef(repo, "ociimage/b_3Alatest"))
  assert.equal(await flocksOn(file), [])
})

t("a checkout waits while a writer holds the repo and goes on once it is gone; checkouts read side by side, and rmi waits for them", async () => {
  const { top, repo, image, file } = await withRedis("lock3")

  const writer = await holdElsewhere(file, "4244 rmi redis")
  const first = path.join(top, "b1")
  const heard: string[] = []
  const checkingOut = run(Layers.applyLayers({ image, into: first, waiting: (holder) => void heard.push(holder) }))
  try {
    assert.ok(await pendingAfter(checkingOut, 1000), "the checkout waited for the writer")
    assert.not.ok(existsSync(first), "nothing made while it waited")
    assert.equal(heard, ["4244 rmi redis"], "it said who holds the lock")
  } finally {
    await killed(writer)
  }
  await checkingOut
  assert.ok(existsSync(path.join(first, "rootfs", "usr", "bin", "redis-server")))

  // another checkout holds its reader's lock: a second checkout does not wait for it, rmi does
  const reader = await holdElsewhere(file, "4245 checkout redis into elsewhere", "--shared")
  try {
    const second = run(Layers.applyLayers({ image, into: path.join(top, "b2"), shared: true }))
    assert.not.ok(await pendingAfter(second, 3000), "a checkout beside another one went on")
    await second
    const removing = failure(Images.remove(repo, "redis"))
    assert.ok(await pendingAfter(removing, 1000), "rmi waited for the checkout")
    await killed(reader)
    // the shared tree's bundle is recorded, so rmi, once it may, refuses instead of emptying it
    assert.is((await removing)._tag, "ImageInUse")
  } finally {
    await killed(reader)
  }
  assert.equal(await flocksOn(file), [])
})

t("a writer that waits for checkouts is not kept out by checkouts that come after it; one that waited behind an rmi fails clearly and leaves nothing", async () => {
  const { top, repo, image, file } = await withRedis("lock4")
  // a checkout under way (its reader's lock, taken past the turnstile)
  const reader = await holdElsewhere(file, "4247 checkout redis into elsewhere", "--shared")
  let removing: Promise<unknown> | undefined
  let late: Promise<unknown> | undefined
  const bundle = path.join(top, "late")
  try {
    removing = run(Images.remove(repo, "redis"))
    assert.ok(await pendingAfter(removing, 1000), "rmi waits for the checkout under way")
    // Linux would let another shared lock in beside the first: the turnstile the rmi holds does not
    late = failure(Layers.applyLayers({ image, into: bundle }))
    assert.ok(await pendingAfter(late, 1000), "a checkout that came after the waiting rmi waits for it")
  } finally {
    await killed(reader)
  }
  await removing
  assert.not.ok(Ostree.hasRef(repo, "ociimage/redis_3Alatest"))
  // the image it was given is gone: a clear error, no bundle
  const error = (await late) as { _tag: string; message: string }
  assert.is(error._tag, "ImageNotFound")
  assert.match(error.message, /was removed .* since the image was read: pull it again/)
  assert.not.ok(existsSync(bundle))
  assert.equal(await flocksOn(file), [])
})

t("a writer that waits twice (for another writer at the turnstile, then for a checkout) says so once", async () => {
  const repo = await run(Ostree.init({ path: path.join(tempDir("lock7"), "ostree") }))
  const file = lockFileOf(repo)
  const writer = await holdElsewhere(RepoLock.turnstileOf(repo), "", "--exclusive")
  const reader = await holdElsewhere(file, "4251 checkout redis into elsewhere", "--shared")
  const heard: string[] = []
  const holding = run(Effect.scoped(RepoLock.hold(repo, "rmi something", { waiting: (holder) => void heard.push(holder) })))
  try {
    assert.ok(await pendingAfter(holding, 500), "it waits at the turnstile")
    await killed(writer)
    assert.ok(await pendingAfter(holding, 500), "then for the checkout")
  } finally {
    await killed(writer)
    await killed(reader)
  }
  await holding
  assert.equal(heard, ["4251 checkout redis into elsewhere"])
})

t("a checkout that found no writer registers (no process of its own) and holds off a writer until it ends; one that was killed holds off nothing", async () => {
  const repo = await run(Ostree.init({ path: path.join(tempDir("lock8"), "ostree") }))
  const dir = RepoLock.readersDirOf(repo)
  mkdirSync(dir, { recursive: true })
  // a checkout under way (its process: this sleep), and one killed mid-way whose entry stayed
  const sleeper = spawn("sleep", ["60"], { stdio: "ignore" })
  const live = path.join(dir, "live")
  const dead = path.join(dir, "dead")
  writeFileSync(live, RepoLock.processStamp(sleeper.pid!)!)
  writeFileSync(dead, "999999999 12345")
  const heard: string[] = []
  const holding = run(Effect.scoped(RepoLock.hold(repo, "rmi something", { waiting: (holder) => void heard.push(holder) })))
  try {
    assert.ok(await pendingAfter(holding, 500), "the writer waits for the registered checkout")
    assert.equal(heard, [`a checkout under way (pid ${sleeper.pid})`])
    assert.not.ok(existsSync(dead), "a dead reader's entry went")
  } finally {
    await new Promise<void>((resolve) => (sleeper.once("exit", () => resolve()), sleeper.kill("SIGKILL")))
  }
  await holding
  assert.not.ok(existsSync(live), "an ended reader's entry went too")

  // a real checkout with no writer about: registered while it runs, gone after, no flock started
  const pulled = await withRedis("lock8b")
  const started: string[] = []
  const observed = Layer.succeed(Spawn, makeSpawn(({ argv, result }) => void (result === undefined && started.push(argv[0]!))))
  await Effect.runPromise(Effect.scoped(Layers.applyLayers({ image: pulled.image, into: path.join(pulled.top, "b") })).pipe(Effect.provide(observed)))
  assert.equal(readdirSync(RepoLock.readersDirOf(pulled.repo)), [], "registered while it ran, not after")
  assert.ok(started.length > 0 && !started.includes("flock"), started.join(" "))

  // a writer killed while it held the lock left its marker: the next checkout takes the flock way
  // (the marker is how readers in another pid namespace see a writer) and, holding it, clears it
  writeFileSync(RepoLock.heldMarkerOf(pulled.repo), "4252 rmi something\n")
  started.length = 0
  await Effect.runPromise(Effect.scoped(Layers.applyLayers({ image: pulled.image, into: path.join(pulled.top, "c") })).pipe(Effect.provide(observed)))
  assert.ok(started.includes("flock"), started.join(" "))
  assert.not.ok(existsSync(RepoLock.heldMarkerOf(pulled.repo)))
})

t("a checkout waiting for the lock inside a step's acquire (not interruptible) still stops at once on interruption (Ctrl-C), leaving nothing", async () => {
  const { top, repo, image, file } = await withRedis("lock6")
  const writer = await holdElsewhere(file, "4248 pull something")
  const bundle = path.join(top, "b")
  try {
    // as the dsl's checkout step runs it: the acquire of an acquireRelease
    const fiber = Effect.runFork(Effect.scoped(Effect.acquireRelease(Layers.applyLayers({ image, into: bundle }), () => Effect.void)).pipe(Effect.provide(SpawnLive)))
    await new Promise((r) => setTimeout(r, 500))
    // bounded: an interruption that waited for the lock would wait as long as the writer holds it
    const exit = await Promise.race([Effect.runPromise(Fiber.interrupt(fiber)), new Promise<"still waiting">((r) => setTimeout(() => r("still waiting"), 3000))])
    assert.ok(exit !== "still waiting" && Exit.isInterrupted(exit), "stopped at once, not when the lock came free")
    assert.not.ok(existsSync(bundle))
    assert.equal((await flocksOn(file)).filter((l) => l.includes("--shared")), [], "its flock went with it (the writer's stays)")
  } finally {
    await killed(writer)
  }
})

t("the lock files are readable by every user of the repo; a user who may not open them checks out without the lock, and may not write", async () => {
  const top = tempDir("lock5")
  chmodSync(top, 0o755)
  const repo = await run(Ostree.init({ path: path.join(top, "ostree") }))
  const mask = process.umask(0o077)
  try {
    await run(Effect.scoped(RepoLock.hold(repo, "made under umask 077")))
  } finally {
    process.umask(mask)
  }
  for (const f of [lockFileOf(repo), RepoLock.turnstileOf(repo)]) assert.is(statSync(f).mode & 0o777, 0o644, f)
  // another user's repo whose lock files only root may open (an older syscontainers made them so)
  for (const f of [lockFileOf(repo), RepoLock.turnstileOf(repo)]) chmodSync(f, 0o600)
  const user = "sc-lockuser"
  await shAny(["userdel", "--remove", user])
  await sh(["useradd", "--create-home", "--shell", "/bin/sh", user])
  try {
    const home = (await sh(["getent", "passwd", user])).split(":")[5]!
    const runtimeDir = tempDir("lock5-run")
    await sh(["chown", user, runtimeDir])
    const res = await runFileAsUser({ file: thisFile, user, home, runtimeDir, jobVar: "SC_LOCK_CHILD", job: { repo: repo.path } })
    assert.equal(res, { shared: "ok", exclusive: "CommandFailed" })
  } finally {
    await shAny(["pkill", "-u", user])
    await shAny(["userdel", "--remove", user])
  }
})

/** As the test user: a reader's and a writer's lock on a repo whose lock files it may not open. */
const childMain = async (job: { readonly repo: string }) => {
  const repo = await run(Ostree.open(job.repo))
  const outcome = (e: Effect.Effect<void, { _tag: string }, Spawn | Scope.Scope>) =>
    run(Effect.scoped(e).pipe(Effect.as("ok"), Effect.catchAll((err) => Effect.succeed(err._tag))))
  const shared = await outcome(RepoLock.hold(repo, "reading", { shared: true, timeoutMs: 5000 }))
  const exclusive = await outcome(RepoLock.hold(repo, "writing", { timeoutMs: 5000 }))
  console.log(`CHILD-RESULT ${JSON.stringify({ shared, exclusive })}`)
}

const childJob = process.env["SC_LOCK_CHILD"]
if (childJob) await childMain(JSON.parse(childJob) as { repo: string })
else t.run()
