// crun: the hybrid-cgroup workaround (detection, the run wrap, the rootless config rewrite), as root and as a fresh non-root user.
import { suite } from "uvu"
import * as assert from "uvu/assert"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import type * as Scope from "effect/Scope"
import { chownSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs"
import path from "node:path"
import { fileURLToPath } from "node:url"
import type { ContainerRuntime } from "../packages/core/src/ContainerRuntime.ts"
import { makeOciRuntime, stateRootFor } from "../packages/core/src/OciRuntime.ts"
import { crunNeedsCgroupWorkaround, crunRootlessConfig, crunSetup, crunWrap, runtime } from "../packages/core/src/Runtimes.ts"
import { SpawnLive, type Spawn } from "../packages/core/src/Spawn.ts"
import { cleanupTemps, run, runFileAsUser, sh, shAny, tempDir } from "./fixtures/harness.ts"
import { makeProbeBundle } from "./fixtures/probeBundle.ts"

const thisFile = fileURLToPath(import.meta.url)
const isRoot = process.getuid?.() === 0
const hybrid = crunNeedsCgroupWorkaround() !== undefined
const tag = `cr${process.pid}`
type Cfg = Record<string, any>

// ---------------------------------------------------------------------------------------------
// child mode: the rootless test re-runs this file as the test user to drive crun there
// ---------------------------------------------------------------------------------------------

interface ChildJob {
  readonly bundle: string
  readonly detachedBundle: string
  readonly rangesBundle: string
}

const childMain = async (job: ChildJob) => {
  const result: Record<string, unknown> = { uid: process.getuid?.() }
  const logs: string[] = []
  await Effect.runPromise(
    Effect.gen(function* () {
      const rt = yield* runtime("crun", { log: (l) => logs.push(l) })
      result.attached = yield* rt.runAttached({ bundle: job.bundle, name: "rl-attached" })
      const d = yield* rt.runDetached({ bundle: job.detachedBundle, name: "rl-detached" })
      result.detached = d.status
      result.listed = (yield* rt.list()).map((c) => `${c.name}:${c.status}`)
      result.exec = yield* rt.exec("rl-detached", ["sh", "-c", "id -u; cat /proc/self/uid_map | tr -s ' '; pwd"])
      yield* rt.kill("rl-detached", "SIGKILL")
      for (let i = 0; i < 100 && (yield* rt.state("rl-detached")).status !== "stopped"; i++) yield* Effect.sleep("50 millis")
      result.afterKill = (yield* rt.state("rl-detached")).status
      yield* rt.delete("rl-detached")
      const ranges = yield* rt.runAttached({ bundle: job.rangesBundle, name: "rl-ranges" }).pipe(Effect.flip)
      result.ranges = { tag: ranges._tag, message: ranges.message }
      result.left = (yield* rt.list()).length
      const configs = `${stateRootFor("crun")}.configs`
      result.configsLeft = existsSync(configs) ? readdirSync(configs) : []
    }).pipe(
      Effect.catchAll((e) => Effect.sync(() => void (result.error = `${(e as { _tag?: string })._tag}: ${(e as Error).message}`))),
      Effect.provide(SpawnLive),
    ),
  )
  result.logs = logs
  console.log(`CHILD-RESULT ${JSON.stringify(result)}`)
}

// ---------------------------------------------------------------------------------------------
// pure: detection, the wrap, the config rewrite
// ---------------------------------------------------------------------------------------------

const pure = suite("crun: detection and config rewrite")

pure("hybrid cgroups are detected from a non-empty unified cgroup.controllers; empty or missing is not hybrid", () => {
  const dir = tempDir("crun-detect")
  const file = path.join(dir, "cgroup.controllers")
  writeFileSync(file, "hugetlb\n")
  assert.is(crunNeedsCgroupWorkaround(file), `${file} lists "hugetlb" (hybrid cgroups)`)
  writeFileSync(file, "\n")
  assert.is(crunNeedsCgroupWorkaround(file), undefined)
  assert.is(crunNeedsCgroupWorkaround(path.join(dir, "missing")), undefined)
})

pure("the wrap: root gets a private mount namespace, others a user namespace too; none when not hybrid", () => {
  const dir = tempDir("crun-wrap")
  const file = path.join(dir, "cgroup.controllers")
  writeFileSync(file, "hugetlb pids\n")
  const asRoot = crunSetup({ controllersFile: file, uid: 0, gid: 0 })
  assert.equal(asRoot?.wrap.slice(0, 3), ["unshare", "--mount", "--propagation=private"])
  assert.is(asRoot?.rewriteConfig, undefined)
  assert.match(asRoot?.why ?? "", /crun run goes into a private mount namespace with a tmpfs over \/sys\/fs\/cgroup\/unified/)
  const asUser = crunSetup({ controllersFile: file, uid: 1234, gid: 1235 })
  assert.equal(asUser?.wrap.slice(0, 4), ["unshare", "--user", "--map-root-user", "--mount"])
  assert.ok(asUser?.rewriteConfig, "rootless rewrites the config")
  assert.match(asUser?.why ?? "", /mappings name 0 for uid 1234/)
  // the script is a constant and ends in $0: the runtime's argv follows as positional parameters
  assert.equal(asUser?.wrap.slice(-4), ["sh", "-c", 'mount -t tmpfs -o size=4k syscontainers-cgroup-workaround /sys/fs/cgroup/unified && exec "$@"', "sh"])
  writeFileSync(file, "")
  assert.is(crunSetup({ controllersFile: file, uid: 1234 }), undefined)
  assert.equal(crunWrap({ controllersFile: file, uid: 0 }), [])
})

const userns = (uidMappings: Cfg[] | undefined, gidMappings: Cfg[] | undefined = uidMappings): Cfg => ({
  ociVersion: "1.0.2",
  process: { args: ["sh"] },
  linux: { namespaces: [{ type: "mount" }, { type: "user" }], ...(uidMappings ? { uidMappings } : {}), ...(gidMappings ? { gidMappings } : {}) },
})
const rewrite = (c: Cfg) => Effect.runSync(Effect.either(crunRootlessConfig({ uid: 1234, gid: 1235 })(c, "/b/config.json").pipe(Effect.map((r) => r as Cfg))))

pure("rootless rewrite: container ids mapped to the caller's uid/gid now map to 0 (the caller in the outer namespace); the rest is kept", () => {
  const c = userns([{ containerID: 0, hostID: 1234, size: 1 }], [{ containerID: 0, hostID: 1235, size: 1 }])
  const r = rewrite(c)
  assert.is(r._tag, "Right")
  if (r._tag !== "Right") return
  assert.equal(r.right.linux.uidMappings, [{ containerID: 0, hostID: 0, size: 1 }])
  assert.equal(r.right.linux.gidMappings, [{ containerID: 0, hostID: 0, size: 1 }])
  assert.equal(r.right.linux.namespaces, c.linux.namespaces)
  assert.equal(r.right.process, c.process)
  assert.equal(c.linux.uidMappings, [{ containerID: 0, hostID: 1234, size: 1 }], "the input is not changed")
  const none = rewrite(userns(undefined))
  assert.is(none._tag, "Right")
  if (none._tag === "Right") assert.not.ok("uidMappings" in none.right.linux)
})

pure("rootless rewrite refuses subuid ranges and a config without a user namespace, naming runc or bwrap", () => {
  const ranges = rewrite(userns([{ containerID: 0, hostID: 1234, size: 1 }, { containerID: 1, hostID: 100000, size: 65536 }], [{ containerID: 0, hostID: 1235, size: 1 }]))
  assert.is(ranges._tag, "Left")
  if (ranges._tag !== "Left") return
  assert.is(ranges.left._tag, "SpecInvalid")
  assert.equal(ranges.left.violations.map((v) => v.pointer), ["/linux/uidMappings/1"])
  assert.match(ranges.left.message, /maps to host uid 100000 \(size 65536\).*only your own uid and gid exist \(uid 1234, size 1\); use runc or bwrap/)
  const otherUser = rewrite(userns([{ containerID: 0, hostID: 0, size: 1 }]))
  assert.is(otherUser._tag, "Left")
  if (otherUser._tag === "Left") assert.equal(otherUser.left.violations.map((v) => v.pointer), ["/linux/uidMappings/0", "/linux/gidMappings/0"])
  const noUserns = rewrite({ process: { args: ["sh"] }, linux: { namespaces: [{ type: "mount" }] } })
  assert.is(noUserns._tag, "Left")
  if (noUserns._tag === "Left") {
    assert.equal(noUserns.left.violations.map((v) => v.pointer), ["/linux/namespaces"])
    assert.match(noUserns.left.message, /no user namespace.*runc spec --rootless makes one.*use runc or bwrap/)
  }
})


// ---------------------------------------------------------------------------------------------
// root: the wrap on this host
// ---------------------------------------------------------------------------------------------

const root = suite("crun: as root")
const quiet = <A, E>(e: Effect.Effect<A, E, Spawn | Scope.Scope>) => run(e.pipe(Logger.withMinimumLogLevel(LogLevel.Error)))

const probe = async (name: string, args: ReadonlyArray<string>) => {
  const dir = tempDir(`crun-${name}`)
  const b = await run(makeProbeBundle(dir))
  mkdirSync(path.join(dir, "out"), { mode: 0o777 })
  b.patch((c) => {
    c.process.terminal = false
    c.process.args = args
    c.mounts.push({ destination: "/out", type: "bind", source: path.join(dir, "out"), options: ["rbind", "rw"] })
  })
  return { dir, out: (f: string) => (existsSync(path.join(dir, "out", f)) ? readFileSync(path.join(dir, "out", f), "utf8") : "") }
}

const removeOurs = () =>
  quiet(
    Effect.flatMap(runtime("crun"), (rt) =>
      rt.list().pipe(Effect.flatMap((all) => Effect.forEach(all.filter((c) => c.name.startsWith(tag)), (c) => rt.delete(c.name, { force: true }).pipe(Effect.ignore)))),
    ).pipe(Effect.ignore),
  )

root("runtime('crun') says in the log when it applies the workaround, and only then", async () => {
  const logs: string[] = []
  await quiet(runtime("crun", { log: (l) => logs.push(l) }))
  await quiet(runtime("runc", { log: (l) => logs.push(l) }))
  if (hybrid) {
    assert.is(logs.length, 1)
    assert.match(logs[0] ?? "", /^crun: \/sys\/fs\/cgroup\/unified\/cgroup\.controllers lists ".+" \(hybrid cgroups\); crun run goes into/)
  } else assert.equal(logs, [])
})

root("a detached container outlives its wrapper, sees cgroup v1 only, and the host's cgroup2 mount is untouched", async () => {
  if (!isRoot || !hybrid) return
  const p = await probe("detached", ["sh", "-c", "while :; do sleep 0.1; done"])
  const name = `${tag}-det`
  const r = await quiet(
    Effect.gen(function* () {
      const rt = yield* runtime("crun")
      const s = yield* rt.runDetached({ bundle: p.dir, name })
      const ex = yield* rt.exec(name, ["sh", "-c", "grep -c '^0::' /proc/self/cgroup; grep -c ':pids:/' /proc/self/cgroup"])
      return { s, ex }
    }),
  )
  const stat = readFileSync(`/proc/${r.s.pid}/stat`, "utf8")
  const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
  const parent = readFileSync(`/proc/${ppid}/comm`, "utf8").trim()
  assert.not.ok(["unshare", "sh"].includes(parent), `the container's parent is ${parent}, not its wrapper`)
  assert.is(r.ex.stdout, "1\n1\n", "the container joined a cgroup v1 pids hierarchy")
  assert.ok(crunNeedsCgroupWorkaround(), "the host still lists its cgroup2 controllers")
  const mounts = readFileSync("/proc/self/mounts", "utf8")
  assert.not.match(mounts, /syscontainers-cgroup-workaround/)
  assert.is(readFileSync(`/proc/${r.s.pid}/mounts`, "utf8").includes("syscontainers-cgroup-workaround"), false, "the container mounts its own /sys")
  await quiet(Effect.flatMap(runtime("crun"), (rt) => rt.delete(name, { force: true })))
})

root("an attached container that ignores SIGINT is killed when the grace runs out: 137, nothing left", async () => {
  if (!isRoot) return
  const p = await probe("grace", ["sh", "-c", "trap '' INT; echo up >/out/o; while :; do sleep 0.1; done"])
  const name = `${tag}-grace`
  const noop = () => {}
  process.on("SIGINT", noop)
  try {
    const rt = await run(makeOciRuntime({ name: "crun", wrap: crunWrap(), stopGraceMs: 300 }))
    const started = Date.now()
    const attached = run(rt.runAttached({ bundle: p.dir, name }))
    for (let i = 0; i < 200 && !p.out("o").includes("up"); i++) await new Promise((res) => setTimeout(res, 25))
    assert.is(p.out("o"), "up\n")
    process.kill(process.pid, "SIGINT")
    assert.is(await attached, 137)
    assert.ok(Date.now() - started < 8_000, "killed after the 300 ms grace, not the 10 s default")
    const left = await run(rt.state(name).pipe(Effect.flip))
    assert.is(left._tag, "ContainerNotFound")
  } finally {
    process.off("SIGINT", noop)
  }
})

root("exec runs as the container's process.user in its cwd (crun 1.8 alone would use 0 and /)", async () => {
  if (!isRoot) return
  const p = await probe("exec-user", ["sh", "-c", "while :; do sleep 0.1; done"])
  const cfg = JSON.parse(readFileSync(path.join(p.dir, "config.json"), "utf8"))
  cfg.process.user = { uid: 1000, gid: 1000 }
  cfg.process.cwd = "/tmp"
  writeFileSync(path.join(p.dir, "config.json"), JSON.stringify(cfg))
  const name = `${tag}-exec`
  const r = await quiet(
    Effect.gen(function* () {
      const rt: ContainerRuntime = yield* runtime("crun")
      yield* rt.runDetached({ bundle: p.dir, name })
      const ex = yield* rt.exec(name, ["sh", "-c", "id -u; pwd"])
      const missing = yield* rt.exec(name, ["no-such-command"])
      yield* rt.delete(name, { force: true })
      return { ex, missing }
    }),
  )
  assert.equal(r.ex, { exitCode: 0, stdout: "1000\n/tmp\n", stderr: "" })
  assert.is.not(r.missing.exitCode, 0)
  assert.ok(!existsSync(`${stateRootFor("crun")}.configs`) || readdirSync(`${stateRootFor("crun")}.configs`).length === 0, "no process.json left behind")
})

// ---------------------------------------------------------------------------------------------
// rootless: a real non-root user runs crun through the runtime (this file in child mode)
// ---------------------------------------------------------------------------------------------

const testUser = `sc-crun-${Math.random().toString(36).slice(2, 8)}`
let userMade = false
let userRuntimeDir = ""

root("rootless: a fresh user runs attached and detached containers with exec/kill/delete; subuid ranges are refused by name", async () => {
  if (!isRoot || !hybrid) return
  await sh(["useradd", "-m", "-s", "/bin/sh", testUser])
  userMade = true
  const uid = Number((await sh(["id", "-u", testUser])).trim())
  const gid = Number((await sh(["id", "-g", testUser])).trim())
  const home = (await sh(["getent", "passwd", testUser])).split(":")[5] ?? ""
  const job: ChildJob = { bundle: path.join(home, "attached"), detachedBundle: path.join(home, "detached"), rangesBundle: path.join(home, "ranges") }
  const own = (id: number) => [{ containerID: 0, hostID: id, size: 1 }]
  for (const [dir, script, uidMaps] of [
    [job.bundle, "{ id -u; id -g; cat /proc/self/uid_map | tr -s ' '; touch / 2>/dev/null && echo root-rw || echo root-ro; touch /out/mine; } >/out/o 2>&1; exit 3", own(uid)],
    [job.detachedBundle, "while :; do sleep 0.1; done", own(uid)],
    [job.rangesBundle, "true", [...own(uid), { containerID: 1, hostID: 100000, size: 65536 }]],
  ] as const) {
    mkdirSync(dir)
    const b = await run(makeProbeBundle(dir, { rootless: true }))
    mkdirSync(path.join(dir, "out"))
    b.patch((c) => {
      c.process.args = ["sh", "-c", script]
      c.process.terminal = false
      c.process.cwd = "/tmp"
      // runc spec --rootless ran as root here: map to the user instead
      c.linux.uidMappings = uidMaps
      c.linux.gidMappings = own(gid)
      c.mounts.push({ destination: "/out", type: "bind", source: path.join(dir, "out"), options: ["rbind", "rw"] })
    })
  }
  await sh(["chown", "-R", `${uid}:${gid}`, home])
  userRuntimeDir = tempDir("crun-user-run")
  chownSync(userRuntimeDir, uid, gid)
  const res = await runFileAsUser({ file: thisFile, user: testUser, home, runtimeDir: userRuntimeDir, jobVar: "SC_CRUN_CHILD", job })
  assert.is(res.error, undefined, res.error)
  assert.is(res.uid, uid)
  assert.match(res.logs[0] ?? "", new RegExp(`unshare --user --map-root-user --mount.*mappings name 0 for uid ${uid}`))
  assert.is(res.attached, 3)
  // the container's user namespace sits in the wrap's, where the user is 0: its uid_map says 0 0 1
  assert.is(readFileSync(path.join(job.bundle, "out", "o"), "utf8"), "0\n0\n 0 0 1\nroot-ro\n")
  assert.is((await sh(["stat", "-c", "%u:%g", path.join(job.bundle, "out", "mine")])).trim(), `${uid}:${gid}`, "container root is the user on the host")
  assert.is(res.detached, "running")
  assert.equal(res.listed, ["rl-detached:running"])
  assert.equal(res.exec, { exitCode: 0, stdout: "0\n 0 0 1\n/tmp\n", stderr: "" })
  assert.is(res.afterKill, "stopped")
  assert.is(res.ranges.tag, "SpecInvalid")
  assert.match(res.ranges.message, /\/linux\/uidMappings\/1: maps to host uid 100000 .*use runc or bwrap/)
  assert.is(res.left, 0)
  assert.equal(res.configsLeft, [], "the rewritten config copies are gone")
})

root.after(async () => {
  if (!isRoot) return
  await removeOurs()
  if (userMade) {
    // whatever a failed child left: crun's state is the user's own; kill its containers as the user
    if (userRuntimeDir) {
      const rootDir = path.join(userRuntimeDir, "syscontainers", "crun")
      const names = existsSync(rootDir) ? readdirSync(rootDir) : []
      for (const n of names) await shAny(["runuser", "-u", testUser, "--", "crun", `--root=${rootDir}`, "delete", "--force", n])
    }
    await new Promise((res) => setTimeout(res, 200))
    await shAny(["userdel", "-r", testUser])
  }
  cleanupTemps()
})

const childJob = process.env.SC_CRUN_CHILD
if (childJob) await childMain(JSON.parse(childJob) as ChildJob)
else {
  pure.run()
  root.run()
}
