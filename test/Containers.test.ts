// Containers: redis from the store under runc: PONG from the host, names, exec, kill, delete, and a read-only root.
import { suite } from "uvu"
import * as assert from "uvu/assert"
import * as Effect from "effect/Effect"
import { existsSync, readFileSync } from "node:fs"
import path from "node:path"
import * as Ostree from "../packages/core/src/Ostree.ts"
import { pull } from "../packages/core/src/Pull.ts"
import { applyLayers } from "../packages/core/src/Layers.ts"
import * as RuntimeSpec from "../packages/core/src/RuntimeSpec.ts"
import * as Containers from "../packages/core/src/Containers.ts"
import { stateRootFor } from "../packages/core/src/OciRuntime.ts"
import { cleanupTemps, failure, freePort, run, sh, tempDir, loud, pongWithin } from "./fixtures/harness.ts"
import { useMirror, type Mirror } from "./fixtures/mirror.ts"
import { Spawn, makeSpawn } from "../packages/core/src/Spawn.ts"
import { runtimeSpecErrors } from "./fixtures/ociSchemas.ts"

const t = suite("Containers")
let mirror: Mirror
let work: string
let repoDir: string
const names: string[] = []
const nameOf = (what: string) => {
  const n = `sc-test-${what}-${process.pid}`
  names.push(n)
  return n
}


/** A redis bundle from the repo: checkout, rootless spec, the image's args, the seed's mounts. */
const redisBundle = async (dir: string, port: number) =>
  run(
    Effect.gen(function* () {
      const repo = yield* Ostree.open(repoDir)
      const { image } = yield* pull({ from: "docker://redis:alpine", name: "redis", repo })
      const bundle = yield* applyLayers({ image, into: dir })
      yield* RuntimeSpec.generate({ bundle: dir, rootless: true, terminal: false })
      const fromImage = yield* RuntimeSpec.fromImage({ image: image.config.config ?? {}, rootfs: bundle.rootfs, bundle: dir })
      yield* RuntimeSpec.patchConfig({
        bundle: dir,
        edits: [
          ...fromImage,
          { kind: "args", args: ["redis-server", "--port", String(port)] },
          { kind: "tmpfs", destination: "/tmp" },
          { kind: "tmpfs", destination: "/var/run" },
        ],
      })
      return bundle
    }),
  )



t.before(loud("before", async () => {
  mirror = await useMirror()
  work = tempDir("containers")
  repoDir = path.join(work, "ostree")
  await run(Ostree.init({ path: repoDir }))
}))
t.after(async () => {
  for (const n of names) await run(Containers.remove(n, { force: true }).pipe(Effect.ignore))
  cleanupTemps()
  await mirror.stop()
})

t("redis runs detached from the store and answers PONG from the host", async () => {
  const port = await freePort()
  const bundle = path.join(work, "redis1")
  await redisBundle(bundle, port)
  const name = nameOf("redis")
  assert.is(runtimeSpecErrors(JSON.parse(readFileSync(path.join(bundle, "config.json"), "utf8"))), "", "the official runtime-spec schema")
  const c = await run(Containers.start({ bundle, name }))
  assert.ok(c.pid > 0)
  assert.is(await pongWithin(port), "PONG", "redis answers")
  const list = await run(Containers.list())
  assert.ok(list.some((s) => s.name === name && s.status === "running" && s.runtime === "runc"))
  const ps = await run(Containers.exec(name, ["ps"]))
  assert.match(ps.stdout.split("\n").find((l) => /^\s*1\s/.test(l)) ?? "", /redis-server/)
  // state is per user, in our own root
  assert.ok(existsSync(path.join(stateRootFor("runc"), name)))
  // the runtime holding it is known from that directory: exec is the one process, no `runc state` first
  const ran: string[][] = []
  const again = await Effect.runPromise(Containers.exec(name, ["true"]).pipe(Effect.provideService(Spawn, makeSpawn(({ argv, result }) => void (result && ran.push([...argv]))))))
  assert.is(again.exitCode, 0)
  assert.equal(ran.map((argv) => argv.filter((a) => !a.startsWith("--root=")).slice(0, 2)), [["runc", "exec"]])
})

t("a name in use: ContainerExists, and the running one is untouched", async () => {
  const name = names[0]!
  const e = await failure(Containers.start({ bundle: path.join(work, "redis1"), name }))
  assert.is(e._tag, "ContainerExists")
  assert.match(e.message, new RegExp(name))
  // under another runtime too: exec, kill and rm find a container by its name alone
  for (const runtime of ["crun", "bwrap"] as const) {
    const other = await failure(Containers.start({ bundle: path.join(work, "redis1"), name, runtime }))
    assert.is(other._tag, "ContainerExists", runtime)
    assert.match(other.message, /\(runc\)/)
  }
  const s = await run(Containers.find(name))
  assert.is(s.state.status, "running")
})

t("the container cannot write into its hardlinked rootfs, and the store stays clean", async () => {
  const name = names[0]!
  const r = await run(Containers.exec(name, ["sh", "-c", "echo corrupt > /usr/bin/redis-server; echo x > /etc/hostname; echo $?"]))
  assert.match(r.stderr + r.stdout, /Read-only file system/)
  assert.not.match(readFileSync(path.join(work, "redis1", "rootfs", "usr/bin/redis-server")).subarray(0, 4).toString("latin1"), /corr/)
  const fsck = await sh(["ostree", "fsck", `--repo=${repoDir}`])
  assert.not.match(fsck, /corrupt/i)
})

t("a writable root over hardlinks is refused by patchConfig", async () => {
  const before = readFileSync(path.join(work, "redis1", "config.json"), "utf8")
  const e = await failure(RuntimeSpec.patchConfig({ bundle: path.join(work, "redis1"), edits: [{ kind: "readonlyRoot", readonly: false }] }))
  assert.is(e._tag, "SpecInvalid")
  assert.match(e.message, /\/root\/readonly/)
  assert.is(readFileSync(path.join(work, "redis1", "config.json"), "utf8"), before)
})

t("kill with a signal name, then delete: nothing of it is left", async () => {
  const name = names[0]!
  await run(Containers.kill(name, "SIGTERM"))
  for (let i = 0; i < 50; i++) {
    const s = await run(Containers.find(name))
    if (s.state.status === "stopped") break
    await new Promise((r) => setTimeout(r, 100))
  }
  await run(Containers.remove(name))
  assert.not.ok(existsSync(path.join(stateRootFor("runc"), name)))
  const e = await failure(Containers.find(name))
  assert.is(e._tag, "ContainerNotFound")
})

t("a container started in a scope that fails is killed and deleted", async () => {
  const port = await freePort()
  const bundle = path.join(work, "redis2")
  await redisBundle(bundle, port)
  const name = nameOf("scoped")
  const e = await failure(
    Effect.gen(function* () {
      yield* Containers.start({ bundle, name })
      return yield* Effect.fail("a later step failed" as const)
    }),
  )
  assert.is(e, "a later step failed")
  const list = await run(Containers.list())
  assert.not.ok(list.some((s) => s.name === name))
  assert.not.ok(existsSync(path.join(stateRootFor("runc"), name)))
})

t("unknown container: ContainerNotFound naming it", async () => {
  const e = await failure(Containers.kill("no-such-container-xyz"))
  assert.is(e._tag, "ContainerNotFound")
  assert.match(e.message, /no-such-container-xyz/)
})

t.run()
