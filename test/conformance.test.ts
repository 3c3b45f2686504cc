// conformance: one busybox probe bundle under runc, crun and bwrap (Runtimes.runtime), checking the same observable behaviour for each.
import { suite } from "uvu"
import * as assert from "uvu/assert"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { createServer, type Server } from "node:net"
import path from "node:path"
import type { ContainerRuntime, RuntimeName } from "../packages/core/src/ContainerRuntime.ts"
import { runtime } from "../packages/core/src/Runtimes.ts"
import { Spawn } from "../packages/core/src/Spawn.ts"
import { cleanupTemps, run, tempDir, loud } from "./fixtures/harness.ts"
import { makeProbeBundle, type ProbeBundle } from "./fixtures/probeBundle.ts"


/** Waits (5 s at most) until the probe container has written "up" to `file` on the host. */
const cameUp = async (file: string) => {
  for (let i = 0; i < 200; i++) {
    if (existsSync(file) && readFileSync(file, "utf8").includes("up")) return true
    await new Promise((res) => setTimeout(res, 25))
  }
  return false
}

const isRoot = process.getuid?.() === 0
const runtimes: ReadonlyArray<RuntimeName> = ["runc", "crun", "bwrap"]
const tag = `cf${process.pid}`
const token = `conformance-token-${process.pid}`
// set in our own environment: no runtime may let it into the container
const leak = "SC_CONFORMANCE_LEAK"
process.env[leak] = "leaked"

type Cfg = Record<string, any>

/** What every run shares; each test sets only process.args, and the network variant, the same for every runtime. */
interface World {
  readonly bundle: ProbeBundle
  readonly base: Cfg
  readonly out: string
  readonly roDir: string
  readonly server: Server
  readonly port: number
}
let world: World | undefined
const w = () => {
  if (!world) throw new Error("setup did not run")
  return world
}

const setup = async (): Promise<World> => {
  const dir = tempDir("conformance")
  const bundle = await run(makeProbeBundle(dir))
  // nc proves what the network reaches; wc and tr keep outputs short
  for (const applet of ["nc", "wc", "tr", "sort"]) symlinkSync("busybox", path.join(bundle.rootfs, "bin", applet))
  for (const d of ["work", "ro", "out", "scratch"]) mkdirSync(path.join(bundle.rootfs, d))
  const out = path.join(dir, "out")
  const roDir = path.join(dir, "ro")
  mkdirSync(out, { mode: 0o777 })
  mkdirSync(roDir)
  writeFileSync(path.join(roDir, "hello"), "from-the-host\n")
  bundle.patch((c) => {
    c.process.terminal = false
    c.process.cwd = "/work"
    c.process.env = [...c.process.env, "PROBE=from-config", "SPACED=a b  c"]
    c.hostname = "probe-host"
    // bwrap cannot mount /dev/shm noexec (Bubblewrap.ts): drop it for every runtime alike
    c.mounts = c.mounts.map((m: Cfg) => (m.destination === "/dev/shm" ? { ...m, options: m.options.filter((o: string) => o !== "noexec") } : m))
    c.mounts.push(
      { destination: "/ro", type: "bind", source: roDir, options: ["rbind", "ro"] },
      { destination: "/out", type: "bind", source: out, options: ["rbind", "rw"] },
      { destination: "/scratch", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777", "size=1m"] },
    )
  })
  const base = bundle.readConfig()
  assert.is(base.root.readonly, true, "runc spec makes the root read-only")
  assert.ok(base.linux.namespaces.some((n: Cfg) => n.type === "network"), "runc spec asks for a network namespace")
  const server = createServer((sock) => sock.end(`${token}\n`))
  const port = await new Promise<number>((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)))
  return { bundle, base, out, roDir, server, port }
}

/** Writes the bundle's config: the shared base with these args (and the network namespace, unless `hostNetwork`). */
const configure = (args: ReadonlyArray<string>, o: { readonly hostNetwork?: boolean } = {}) => {
  const c = structuredClone(w().base)
  c.process.args = args
  if (o.hostNetwork) c.linux.namespaces = c.linux.namespaces.filter((n: Cfg) => n.type !== "network")
  w().bundle.writeConfig(c)
}

// bwrap warns (Effect.logWarning) about what it maps differently on every run: docs/runtimes.md has them
const withRt = <A, E>(name: RuntimeName, f: (rt: ContainerRuntime) => Effect.Effect<A, E, Spawn>) =>
  run(Effect.flatMap(runtime(name), f).pipe(Logger.withMinimumLogLevel(LogLevel.Error)))

/** Runs `script` attached; its stdout and stderr land in out/<file>, read back with the exit code. */
const probe = async (rt: RuntimeName, file: string, script: string, o: { readonly hostNetwork?: boolean } = {}) => {
  const target = path.join(w().out, file)
  rmSync(target, { force: true })
  configure(["sh", "-c", `{ ${script}\n} >/out/${file} 2>&1`], o)
  const code = await withRt(rt, (r) => r.runAttached({ bundle: w().bundle.dir, name: `${tag}-${file}` }))
  return { code, out: existsSync(target) ? readFileSync(target, "utf8") : "" }
}

const waitForStatus = (rt: ContainerRuntime, name: string, status: string) =>
  Effect.gen(function* () {
    for (let i = 0; i < 100; i++) {
      const s = yield* rt.state(name)
      if (s.status === status) return s.status
      yield* Effect.sleep("50 millis")
    }
    return (yield* rt.state(name)).status
  })

const ours = (name: string) => name.startsWith(`${tag}-`)

for (const rtName of runtimes) {
  const t = suite(`conformance: ${rtName}`)

  t.before(loud("before", async () => {
    world ??= await setup()
  }))

  t.after(async () => {
    // whatever a failed test left running: kill and forget it
    await withRt(rtName, (rt) =>
      rt.list().pipe(
        Effect.flatMap((all) => Effect.forEach(all.filter((c) => ours(c.name)), (c) => rt.delete(c.name, { force: true }).pipe(Effect.ignore))),
        Effect.ignore,
      ),
    )
  })

  t("args reach the process as given, spaces and all", async () => {
    if (!isRoot) return
    const file = `${rtName}-args`
    rmSync(path.join(w().out, file), { force: true })
    configure(["sh", "-c", `printf '%s|' "$0" "$@" "$#" >/out/${file}`, "zero", "one", "two words", ""])
    const code = await withRt(rtName, (r) => r.runAttached({ bundle: w().bundle.dir, name: `${tag}-${file}` }))
    assert.is(code, 0)
    assert.is(readFileSync(path.join(w().out, file), "utf8"), "zero|one|two words||3|")
  })

  t("env: exactly the config's (plus HOME from the image's passwd); ours does not leak in", async () => {
    if (!isRoot) return
    assert.is(process.env[leak], "leaked", "the variable is set in our own environment")
    // env as the process itself, no shell to add PWD and SHLVL: its stdout is the detached log
    const name = `${tag}-${rtName}-env`
    configure(["env"])
    const r = await withRt(rtName, (rt) =>
      Effect.gen(function* () {
        yield* rt.runDetached({ bundle: w().bundle.dir, name })
        const status = yield* waitForStatus(rt, name, "stopped")
        yield* rt.delete(name, { force: true })
        return { status, log: readFileSync(path.join(w().bundle.dir, `${name}.log`), "utf8") }
      }),
    )
    assert.is(r.status, "stopped")
    // bwrap 0.8 exports PWD after --chdir, past any --unsetenv (docs/runtimes.md)
    const extra = rtName === "bwrap" ? ["HOME=/root", "PWD=/work"] : ["HOME=/root"]
    assert.equal(r.log.trim().split("\n").sort(), [...w().base.process.env, ...extra].sort())
    assert.not.match(r.log, leak)
  })

  t("cwd and hostname are the config's", async () => {
    if (!isRoot) return
    const r = await probe(rtName, `${rtName}-cwd`, "pwd; hostname")
    assert.is(r.out, "/work\nprobe-host\n")
  })

  t("uid and gid inside are process.user's", async () => {
    if (!isRoot) return
    const r = await probe(rtName, `${rtName}-ids`, "id -u; id -g")
    assert.is(r.out, `${w().base.process.user.uid}\n${w().base.process.user.gid}\n`)
  })

  t("the root is read-only: writing to / fails", async () => {
    if (!isRoot) return
    const r = await probe(rtName, `${rtName}-rootro`, "touch /written && echo root-rw || echo root-ro; ls /written 2>/dev/null || echo absent")
    assert.is(r.out.split("\n").filter((l) => !l.startsWith("touch:")).join("\n"), "root-ro\nabsent\n")
    assert.not.ok(existsSync(path.join(w().bundle.rootfs, "written")))
  })

  t("a read-only bind is readable and not writable; a read-write bind's writes show on the host", async () => {
    if (!isRoot) return
    const r = await probe(rtName, `${rtName}-binds`, `cat /ro/hello; touch /ro/x 2>/dev/null && echo ro-writable || echo ro-refused; echo from-${rtName} >/out/${rtName}-rw && echo rw-written`)
    assert.is(r.out, "from-the-host\nro-refused\nrw-written\n")
    assert.not.ok(existsSync(path.join(w().roDir, "x")), "nothing landed in the read-only bind's source")
    assert.is(readFileSync(path.join(w().out, `${rtName}-rw`), "utf8"), `from-${rtName}\n`)
  })

  t("a tmpfs mount is writable and is a tmpfs in /proc/mounts", async () => {
    if (!isRoot) return
    const r = await probe(rtName, `${rtName}-tmpfs`, "echo x >/scratch/f && cat /scratch/f; grep ' /scratch ' /proc/mounts | cut -d' ' -f3")
    assert.is(r.out, "x\ntmpfs\n")
  })

  t("a private network namespace: only lo, and a port open on the host's 127.0.0.1 is not reachable", async () => {
    if (!isRoot) return
    const r = await probe(rtName, `${rtName}-netns`, `grep : /proc/net/dev | cut -d: -f1 | tr -d ' '; nc -w 2 127.0.0.1 ${w().port} </dev/null; echo "nc=$?"`)
    const lines = r.out.trim().split("\n")
    assert.equal(lines.filter((l) => !l.startsWith("nc")), ["lo"])
    assert.not.match(r.out, token)
    assert.match(lines.at(-1) ?? "", /^nc=[1-9]\d*$/)
  })

  t("without the network namespace the host's network is shared: the same port answers", async () => {
    if (!isRoot) return
    const r = await probe(rtName, `${rtName}-hostnet`, `nc -w 2 127.0.0.1 ${w().port} </dev/null; echo "nc=$?"; grep -c : /proc/net/dev`, { hostNetwork: true })
    assert.match(r.out, new RegExp(`^${token}\nnc=0\n`))
    const interfaces = Number(r.out.trim().split("\n").pop())
    const host = readFileSync("/proc/net/dev", "utf8").split("\n").filter((l) => l.includes(":")).length
    assert.is(interfaces, host, "the host's interfaces")
  })

  t("the exit code comes back from runAttached, and the container is gone after", async () => {
    if (!isRoot) return
    const r = await probe(rtName, `${rtName}-exit`, "exit 7")
    assert.is(r.code, 7)
    const left = await withRt(rtName, (rt) => rt.state(`${tag}-${rtName}-exit`).pipe(Effect.flip))
    assert.is(left._tag, "ContainerNotFound")
  })

  t("detached: running in list and state, exec sees the config, TERM stops it, delete forgets it", async () => {
    if (!isRoot) return
    const name = `${tag}-${rtName}-det`
    configure(["sh", "-c", "trap 'echo got-TERM; exit 0' TERM; echo up; while :; do sleep 0.1; done"])
    const r = await withRt(rtName, (rt) =>
      Effect.gen(function* () {
        const started = yield* rt.runDetached({ bundle: w().bundle.dir, name })
        const listed = (yield* rt.list()).filter((c) => c.name === name).map((c) => c.status)
        const ex = yield* rt.exec(name, ["sh", "-c", "hostname; pwd; echo $PROBE; id -u"])
        yield* rt.kill(name, "TERM")
        const after = yield* waitForStatus(rt, name, "stopped")
        const killStopped = yield* rt.kill(name, "TERM").pipe(Effect.flip)
        yield* rt.delete(name)
        const gone = yield* rt.state(name).pipe(Effect.flip)
        const stillListed = (yield* rt.list()).some((c) => c.name === name)
        return { started, listed, ex, after, killStopped, gone: gone._tag, stillListed }
      }),
    )
    assert.is(r.started.status, "running")
    assert.is(r.started.name, name)
    assert.is(r.started.runtime, rtName)
    assert.ok(r.started.pid > 0)
    assert.equal(r.listed, ["running"])
    assert.equal(r.ex, { exitCode: 0, stdout: "probe-host\n/work\nfrom-config\n0\n", stderr: "" })
    assert.is(r.after, "stopped")
    assert.is(r.killStopped._tag, "ContainerNotRunning", r.killStopped.message)
    assert.match(r.killStopped.message, new RegExp(`container ${name} is not running \\(${rtName}\\)`))
    assert.is(readFileSync(path.join(w().bundle.dir, `${name}.log`), "utf8"), "up\ngot-TERM\n")
    assert.is(r.gone, "ContainerNotFound")
    assert.is(r.stillListed, false)
  })

  t("SIGINT to us while attached reaches the container, whose own exit code comes back; nothing is left", async () => {
    if (!isRoot) return
    const name = `${tag}-${rtName}-int`
    const file = `${rtName}-int`
    rmSync(path.join(w().out, file), { force: true })
    configure(["sh", "-c", `trap 'echo got-INT >>/out/${file}; exit 5' INT; echo up >/out/${file}; while :; do sleep 0.1; done`])
    const noop = () => {}
    process.on("SIGINT", noop) // never let the test process itself die of it
    try {
      const attached = withRt(rtName, (rt) => rt.runAttached({ bundle: w().bundle.dir, name }))
      assert.ok(await cameUp(path.join(w().out, file)), "the container came up")
      process.kill(process.pid, "SIGINT")
      assert.is(await attached, 5)
      assert.is(readFileSync(path.join(w().out, file), "utf8"), "up\ngot-INT\n")
      const left = await withRt(rtName, (rt) => rt.state(name).pipe(Effect.flip))
      assert.is(left._tag, "ContainerNotFound")
    } finally {
      process.off("SIGINT", noop)
    }
  })

  t("kill: an unknown signal name is refused, and the container keeps running", async () => {
    if (!isRoot) return
    const name = `${tag}-${rtName}-badsig`
    configure(["sh", "-c", "while :; do sleep 0.1; done"])
    const r = await withRt(rtName, (rt) =>
      Effect.gen(function* () {
        yield* rt.runDetached({ bundle: w().bundle.dir, name })
        const bad = yield* rt.kill(name, "NOSUCHSIGNAL").pipe(Effect.flip)
        const status = (yield* rt.state(name)).status
        yield* rt.delete(name, { force: true })
        return { bad, status, left: (yield* rt.list()).filter((c) => c.name === name) }
      }),
    )
    assert.is(r.bad._tag, "InvalidInput")
    assert.match(r.bad.message, /unknown signal "NOSUCHSIGNAL"/)
    assert.is(r.status, "running")
    assert.equal(r.left, [])
  })

  if (rtName !== "bwrap")
    t("a second SIGINT kills an attached container that ignores the first: 137, nothing left", async () => {
      if (!isRoot) return
      const name = `${tag}-${rtName}-int2`
      const file = `${rtName}-int2`
      rmSync(path.join(w().out, file), { force: true })
      configure(["sh", "-c", `trap '' INT; echo up >/out/${file}; while :; do sleep 0.1; done`])
      const noop = () => {}
      process.on("SIGINT", noop)
      try {
        const attached = withRt(rtName, (rt) => rt.runAttached({ bundle: w().bundle.dir, name }))
        assert.ok(await cameUp(path.join(w().out, file)), "the container came up")
        process.kill(process.pid, "SIGINT")
        await new Promise((res) => setTimeout(res, 300))
        const afterFirst = await withRt(rtName, (rt) => rt.state(name))
        assert.is(afterFirst.status, "running", "the container ignored SIGINT")
        process.kill(process.pid, "SIGINT")
        assert.is(await attached, 137)
        const left = await withRt(rtName, (rt) => rt.state(name).pipe(Effect.flip))
        assert.is(left._tag, "ContainerNotFound")
      } finally {
        process.off("SIGINT", noop)
      }
    })

  t("process.user 1000:1000 without a user namespace: runc and crun run and exec as it; bwrap refuses (it needs one)", async () => {
    if (!isRoot) return
    const name = `${tag}-${rtName}-user`
    const c = structuredClone(w().base)
    c.process.user = { uid: 1000, gid: 1000, additionalGids: [5] }
    c.process.args = ["sh", "-c", "while :; do sleep 0.1; done"]
    w().bundle.writeConfig(c)
    const r = await withRt(rtName, (rt) =>
      Effect.gen(function* () {
        const started = yield* rt.runDetached({ bundle: w().bundle.dir, name }).pipe(Effect.either)
        if (started._tag === "Left") return { refused: started.left }
        const ex = yield* rt.exec(name, ["sh", "-c", "id -u; id -g; id -G; pwd; grep NoNewPrivs /proc/self/status | tr -d '\\t'"])
        yield* rt.delete(name, { force: true })
        return { ex }
      }),
    )
    if (rtName === "bwrap") {
      assert.is(r.refused?._tag, "SpecInvalid")
      assert.match(r.refused?.message ?? "", /\/process\/user: bwrap switches to uid 1000\/gid 1000 only inside a user namespace/)
    } else {
      assert.is(r.refused, undefined, r.refused?.message)
      // exec is the container's process: its user, groups, cwd and no_new_privs
      assert.equal(r.ex, { exitCode: 0, stdout: "1000\n1000\n1000 5\n/work\nNoNewPrivs:1\n", stderr: "" })
    }
  })

  t.run()
}

const cleanup = suite("conformance: cleanup")
cleanup("every runtime's list holds none of our containers", async () => {
  if (!isRoot) return
  for (const rt of runtimes) {
    const left = await withRt(rt, (r) => r.list())
    assert.equal(left.filter((c) => ours(c.name)).map((c) => c.name), [], rt)
  }
})
cleanup.after(async () => {
  await new Promise<void>((res) => (world ? world.server.close(() => res()) : res()))
  cleanupTemps()
})
cleanup.run()
