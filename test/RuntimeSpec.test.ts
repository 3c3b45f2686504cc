// RuntimeSpec tests: real `runc spec` and `runc run` in temp dirs; every config written is checked against our schema and the OCI one.
import { test } from "uvu"
import * as assert from "uvu/assert"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import Ajv04 from "ajv-draft-04"
import Ajv2020 from "ajv/dist/2020.js"
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { randomBytes } from "node:crypto"
import { execFileSync } from "node:child_process"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { CommandFailed, InvalidInput, SpecInvalid, ToolMissing } from "../packages/core/src/Errors.ts"
import { makeSpawn, Spawn, SpawnLive } from "../packages/core/src/Spawn.ts"
import * as RuntimeSpec from "../packages/core/src/RuntimeSpec.ts"
import type { Edit, RuntimeConfig } from "../packages/core/src/RuntimeSpec.ts"
import { writeFileAtomic } from "../packages/core/src/internal/specFiles.ts"

const here = path.dirname(fileURLToPath(import.meta.url))
const ociDir = path.resolve(here, "../../shared/oci-spec/runtime-spec")
const schemaPath = path.resolve(here, "../packages/core/src/schema/runtime-config.schema.json")
const uid = process.getuid?.() ?? 0
const gid = process.getgid?.() ?? 0

let work = ""
const stateDir = () => path.join(work, "runc-state")
const started: string[] = []

const run = <A, E>(eff: Effect.Effect<A, E, Spawn>): Promise<A> => Effect.runPromise(eff.pipe(Effect.provide(SpawnLive)))
const failure = <A, E>(eff: Effect.Effect<A, E, Spawn>): Promise<E> => Effect.runPromise(Effect.flip(eff).pipe(Effect.provide(SpawnLive)))

// the OCI schemas are draft-04 and refer to each other by file name
const official = (() => {
  const ajv = new Ajv04.default({ strict: false, allErrors: true })
  for (const f of readdirSync(ociDir).filter((f) => f.endsWith(".json"))) ajv.addSchema(JSON.parse(readFileSync(path.join(ociDir, f), "utf8")), f)
  const v = ajv.getSchema("config-schema.json")
  if (!v) throw new Error("config-schema.json did not load")
  return v
})()

const assertValidEverywhere = (config: unknown, label: string) => {
  assert.equal(RuntimeSpec.validate(config), [], `${label}: our schema`)
  assert.ok(official(config), `${label}: OCI schema: ${JSON.stringify(official.errors)}`)
}

const newDir = (name: string) => mkdtempSync(path.join(work, `${name}-`))
const readJson = (file: string): RuntimeConfig => JSON.parse(readFileSync(file, "utf8")) as RuntimeConfig
const configOf = (bundle: string) => readJson(path.join(bundle, "config.json"))
const scratchDirs = () => readdirSync(os.tmpdir()).filter((f) => f.startsWith("syscontainers-spec-")).sort()
const listing = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? [d.name + "/", ...listing(path.join(dir, d.name)).map((f) => `${d.name}/${f}`)] : [d.name])).sort()

// a fresh bundle with a generated config, patched with `edits`; both versions come back, the new one checked everywhere
const patched = async (edits: ReadonlyArray<Edit>, o: { rootless?: boolean } = {}) => {
  const bundle = newDir("bundle")
  const before = await run(RuntimeSpec.generate({ bundle, rootless: o.rootless ?? false, terminal: false }))
  const returned = await run(RuntimeSpec.patchConfig({ bundle, edits }))
  const after = configOf(bundle)
  assert.equal(returned, after, "patchConfig returns what it wrote")
  assertValidEverywhere(after, JSON.stringify(edits))
  return { bundle, before, after }
}

// patching must fail with SpecInvalid at `pointers`, leaving every byte and file of the bundle as it was
const rejected = async (bundle: string, edits: ReadonlyArray<Edit>, pointers: ReadonlyArray<string>) => {
  const file = path.join(bundle, "config.json")
  const bytes = readFileSync(file)
  const files = listing(bundle)
  const e = await failure(RuntimeSpec.patchConfig({ bundle, edits }))
  assert.instance(e, SpecInvalid)
  const err = e as SpecInvalid
  assert.is(err.path, file)
  assert.equal(err.violations.map((v) => v.pointer).sort(), [...pointers].sort(), err.message)
  assert.ok(err.message.includes(pointers[0] ?? ""), "the message names the pointer")
  assert.ok(readFileSync(file).equals(bytes), "config.json is byte-identical")
  assert.equal(listing(bundle), files, "no temp file or directory left behind")
  return err
}

test.before(() => {
  work = mkdtempSync(path.join(os.tmpdir(), "syscontainers-runtimespec-test-"))
  mkdirSync(stateDir())
})

test.after(() => {
  for (const name of started) {
    try {
      // synchronous on purpose: the hook must finish before the temp dir goes, even after a failure
      execFileSync("runc", ["--root", stateDir(), "delete", "--force", name], { stdio: "ignore" })
    } catch {
      // already gone: runc run removes a container that exited
    }
  }
  rmSync(work, { recursive: true, force: true })
})

// ---------------------------------------------------------------------------------------------

test("schema: compiles with plain ajv (2020-12, strict mode)", () => {
  const ajv = new Ajv2020.default({ strict: true })
  const v = ajv.compile(JSON.parse(readFileSync(schemaPath, "utf8")) as object)
  assert.ok(v({ ociVersion: "1.0.2", root: { path: "rootfs" } }))
  assert.not.ok(v({ ociVersion: "1.0.2", process: { cwd: "/", args: [] } }))
})

test("generate: runc spec's config with terminal off, valid in both schemas, nothing else left", async () => {
  const bundle = newDir("gen")
  const scratchBefore = scratchDirs()
  const config = await run(RuntimeSpec.generate({ bundle, rootless: false, terminal: false }))
  assert.equal(configOf(bundle), config)
  assertValidEverywhere(config, "runc spec")
  // exactly runc's own output but for process.terminal
  const direct = newDir("direct")
  execFileSync("runc", ["spec", "--bundle", direct])
  const runcs = configOf(direct)
  assert.is(runcs.process?.terminal, true)
  assert.equal(config, { ...runcs, process: { ...runcs.process, terminal: false } })
  assert.equal(listing(bundle), ["config.json"])
  assert.equal(scratchDirs(), scratchBefore, "runc's scratch directory is removed")
  assert.ok(readFileSync(path.join(bundle, "config.json"), "utf8").startsWith("{\n\t\"ociVersion\""), "tab-indented like runc")
})

test("generate reuse: runc runs once per bundle, runc binary and ids; a re-run takes its output from the memo; another key or a broken memo runs runc", async () => {
  const bundle = newDir("reuse")
  const runs: string[][] = []
  const counting = Layer.succeed(Spawn, makeSpawn(({ argv, result }) => void (result && argv[0] === "runc" && runs.push([...argv]))))
  const gen = (o: { rootless: boolean; reuse?: boolean }) => Effect.runPromise(RuntimeSpec.generateFrom({ bundle, terminal: false, replace: true, reuse: true, ...o }).pipe(Effect.provide(counting)))
  const first = await gen({ rootless: true })
  assert.is(first.reused, undefined)
  assert.is(runs.length, 1, "the first run starts runc")
  const memo = path.join(bundle, ".syscontainers-runc-spec.json")
  assert.ok(existsSync(memo), "and keeps its output")
  // the container's edits since then do not matter: the memo holds runc's own output
  writeFileSync(path.join(bundle, "config.json"), "{}")
  const second = await gen({ rootless: true })
  assert.is(second.reused, memo)
  assert.is(runs.length, 1, "no runc process the second time")
  assert.equal(second.config, first.config)
  assert.equal(configOf(bundle), first.config, "config.json written as runc's output again")
  await gen({ rootless: false })
  assert.is(runs.length, 2, "--rootless changed: runc runs")
  assert.not.ok(configOf(bundle).linux?.uidMappings, "and its output is the non-rootless one")
  writeFileSync(memo, "{ not json")
  const afterBroken = await gen({ rootless: false })
  assert.is(runs.length, 3, "a broken memo: runc runs")
  assert.is(afterBroken.reused, undefined)
  await gen({ rootless: false, reuse: false })
  assert.is(runs.length, 4, "reuse off: runc runs")
})

test("generate: terminal follows the caller's request, else whether stdin is a TTY", async () => {
  const asked = await run(RuntimeSpec.generate({ bundle: newDir("tty"), rootless: false, terminal: true }))
  assert.is(asked.process?.terminal, true)
  const dflt = await run(RuntimeSpec.generate({ bundle: newDir("tty"), rootless: false }))
  assert.is(dflt.process?.terminal, process.stdin.isTTY === true)
})

test("generate --rootless: user namespace mapping the caller, no network namespace; valid in both schemas", async () => {
  const bundle = newDir("rootless")
  const config = await run(RuntimeSpec.generate({ bundle, rootless: true, terminal: false }))
  assertValidEverywhere(config, "runc spec --rootless")
  const types = (config.linux?.namespaces ?? []).map((n) => n.type)
  assert.ok(types.includes("user"))
  assert.not.ok(types.includes("network"))
  assert.equal(config.linux?.uidMappings, [{ containerID: 0, hostID: uid, size: 1 }])
  assert.equal(config.linux?.gidMappings, [{ containerID: 0, hostID: gid, size: 1 }])
  assert.equal(configOf(bundle), config)
})

test("generate: an existing config.json is kept unless replace is asked", async () => {
  const bundle = newDir("exists")
  await run(RuntimeSpec.generate({ bundle, rootless: false, terminal: false }))
  await run(RuntimeSpec.patchConfig({ bundle, edits: [{ kind: "args", args: ["/bin/true"] }] }))
  const bytes = readFileSync(path.join(bundle, "config.json"))
  const e = await failure(RuntimeSpec.generate({ bundle, rootless: false, terminal: false }))
  assert.instance(e, InvalidInput)
  assert.match((e as InvalidInput).message, /already exists/)
  assert.match((e as InvalidInput).message, /replace: true/)
  assert.ok(readFileSync(path.join(bundle, "config.json")).equals(bytes))
  const again = await run(RuntimeSpec.generate({ bundle, rootless: true, terminal: false, replace: true }))
  assert.equal(again.process?.args, ["sh"])
  assert.equal(configOf(bundle), again)
  assert.equal(listing(bundle), ["config.json"])
})

test("generate: a bundle that is not a directory is InvalidInput", async () => {
  const e = await failure(RuntimeSpec.generate({ bundle: path.join(work, "nope"), rootless: false }))
  assert.instance(e, InvalidInput)
  assert.match((e as InvalidInput).message, /not a directory/)
  assert.not.ok(existsSync(path.join(work, "nope")))
})

test("generate: runc failing, missing or writing garbage leaves no config.json and no scratch dir", async () => {
  const scratchBefore = scratchDirs()
  const fake = (run: Spawn["Type"]["run"]) => Layer.succeed(Spawn, Spawn.of({ run, start: () => Effect.die("not used") }))
  const attempt = (layer: Layer.Layer<Spawn>) => {
    const bundle = newDir("fake")
    return Effect.runPromise(Effect.flip(RuntimeSpec.generate({ bundle, rootless: false })).pipe(Effect.provide(layer))).then((e) => ({ e, bundle }))
  }
  const failed = await attempt(fake((argv) => Effect.fail(new CommandFailed({ argv, exitCode: 1, signal: null, stderrTail: "boom" }))))
  assert.instance(failed.e, CommandFailed)
  assert.equal(listing(failed.bundle), [])
  const missing = await attempt(fake(() => Effect.fail(new ToolMissing({ tool: "runc", debianPackage: "runc" }))))
  assert.instance(missing.e, ToolMissing)
  assert.equal(listing(missing.bundle), [])
  const garbage = await attempt(
    fake((argv) =>
      Effect.sync(() => {
        writeFileSync(path.join(argv[argv.length - 1] ?? "", "config.json"), "{ not json")
        return { argv, exitCode: 0, signal: null, stdout: "", stderr: "", durationMs: 1 }
      }),
    ),
  )
  assert.instance(garbage.e, CommandFailed)
  assert.match((garbage.e as CommandFailed).message, /did not write a JSON config.json/)
  assert.equal(listing(garbage.bundle), [])
  assert.equal(scratchDirs(), scratchBefore)
})

test("schema: the OCI good examples for Linux pass ours, the bad ones fail at the right pointer", () => {
  const dir = path.join(ociDir, "test/config")
  for (const f of ["minimal.json", "minimal-for-start.json", "spec-example.json", "linux-netdevice.json", "linux-rdma.json"]) {
    const doc = JSON.parse(readFileSync(path.join(dir, "good", f), "utf8")) as unknown
    assert.ok(official(doc), `${f} is good for the OCI schema`)
    assert.equal(RuntimeSpec.validate(doc), [], f)
  }
  const bad: Record<string, string> = {
    "linux-hugepage.json": "/linux/resources/hugepageLimits/0/pageSize",
    "linux-netdevice.json": "/linux/netDevices/eth0/name",
    "linux-rdma.json": "/linux/resources/rdma/mlx5_1/hcaHandles",
  }
  for (const [f, pointer] of Object.entries(bad)) {
    const doc = JSON.parse(readFileSync(path.join(dir, "bad", f), "utf8")) as unknown
    assert.not.ok(official(doc), `${f} is bad for the OCI schema`)
    assert.equal(RuntimeSpec.validate(doc).map((v) => v.pointer), [pointer], f)
  }
  assert.throws(() => JSON.parse(readFileSync(path.join(dir, "bad/invalid-json.json"), "utf8")))
})

test("readConfig: invalid JSON is SpecInvalid, a missing file InvalidInput", async () => {
  const bundle = newDir("read")
  const missing = await failure(RuntimeSpec.readConfig(bundle))
  assert.instance(missing, InvalidInput)
  assert.match((missing as InvalidInput).message, /no config.json/)
  copyFileSync(path.join(ociDir, "test/config/bad/invalid-json.json"), path.join(bundle, "config.json"))
  const broken = await failure(RuntimeSpec.readConfig(bundle))
  assert.instance(broken, SpecInvalid)
  assert.match((broken as SpecInvalid).message, /not JSON/)
})

test("validate: duplicate and unknown namespaces, bad env, hostname without uts, mappings without userns", () => {
  const base: RuntimeConfig = { ociVersion: "1.0.2", root: { path: "rootfs" }, process: { cwd: "/", args: ["sh"] } }
  const dup = RuntimeSpec.validate({ ...base, linux: { namespaces: [{ type: "pid" }, { type: "mount" }, { type: "pid", path: "/proc/1/ns/pid" }] } })
  assert.equal(dup, [{ pointer: "/linux/namespaces", message: "the pid namespace may appear only once" }])
  const unknown = RuntimeSpec.validate({ ...base, linux: { namespaces: [{ type: "pid" }, { type: "bogus" }] } })
  assert.equal(unknown.map((v) => v.pointer), ["/linux/namespaces/1/type"])
  const env = RuntimeSpec.validate({ ...base, process: { cwd: "/", args: ["sh"], env: ["PATH=/bin", "NOVALUE", "=x"] } })
  assert.equal(env.map((v) => v.pointer), ["/process/env/1", "/process/env/2"])
  const host = RuntimeSpec.validate({ ...base, hostname: "h", linux: { namespaces: [{ type: "mount" }] } })
  assert.equal(host.map((v) => v.pointer), ["/hostname"])
  assert.match(host[0]?.message ?? "", /uts namespace/)
  const maps = RuntimeSpec.validate({ ...base, linux: { uidMappings: [{ containerID: 0, hostID: 1000, size: 1 }], gidMappings: [{ containerID: 0, hostID: 1000, size: 1 }] } })
  assert.equal(maps.map((v) => v.pointer), ["/linux/uidMappings", "/linux/gidMappings"])
  const noMaps = RuntimeSpec.validate({ ...base, linux: { namespaces: [{ type: "user" }] } })
  assert.equal(noMaps.map((v) => v.pointer), ["/linux/uidMappings"])
  const missing = RuntimeSpec.validate({ root: { path: "rootfs" }, process: { cwd: "/" } })
  assert.equal(missing.map((v) => v.pointer).sort(), ["/ociVersion", "/process/args"])
})

test("applyEdits: pure (the input is untouched) and ordered", () => {
  const config: RuntimeConfig = { ociVersion: "1.0.2", process: { cwd: "/", args: ["sh"], env: ["A=1"] }, mounts: [] }
  const frozen = JSON.stringify(config)
  const out = RuntimeSpec.applyEdits(config, [{ kind: "env", set: { B: "2" } }, { kind: "env", unset: ["A"] }, { kind: "cwd", cwd: "/x" }])
  assert.is(JSON.stringify(config), frozen)
  assert.equal(out.process, { cwd: "/x", args: ["sh"], env: ["B=2"] })
})

// ---------------------------------------------------------------------------------------------
// one test per edit kind: the exact JSON that changed, and nothing else

test("edit args", async () => {
  const { before, after } = await patched([{ kind: "args", args: ["/bin/echo", "hi there"] }])
  assert.equal(after.process?.args, ["/bin/echo", "hi there"])
  assert.equal({ ...after, process: { ...after.process, args: before.process?.args } }, before)
})

test("edit env: set in place or appended, unset removed", async () => {
  const { before, after } = await patched([{ kind: "env", set: { PATH: "/bin", FOO: "bar=baz" }, unset: ["TERM"] }])
  assert.equal(after.process?.env, ["PATH=/bin", "FOO=bar=baz"])
  assert.equal({ ...after, process: { ...after.process, env: before.process?.env } }, before)
  const bundle = newDir("envbad")
  await run(RuntimeSpec.generate({ bundle, rootless: false, terminal: false }))
  const bytes = readFileSync(path.join(bundle, "config.json"))
  const e = await failure(RuntimeSpec.patchConfig({ bundle, edits: [{ kind: "env", set: { "A=B": "c" } }] }))
  assert.instance(e, InvalidInput)
  assert.match((e as InvalidInput).message, /"A=B"/)
  assert.ok(readFileSync(path.join(bundle, "config.json")).equals(bytes))
})

test("edit cwd", async () => {
  const { before, after } = await patched([{ kind: "cwd", cwd: "/srv/app" }])
  assert.is(after.process?.cwd, "/srv/app")
  assert.equal({ ...after, process: { ...after.process, cwd: "/" } }, before)
})

test("edit tmpfs: appended with the options given (or the defaults), replacing a mount in place", async () => {
  const { before, after } = await patched([
    { kind: "tmpfs", destination: "/tmp", options: ["nosuid", "nodev", "mode=1777", "size=64m"] },
    { kind: "tmpfs", destination: "/run" },
    { kind: "tmpfs", destination: "/dev/shm/", options: ["nosuid", "size=1m"] },
  ])
  const mounts = after.mounts ?? []
  assert.equal(mounts.slice(-2), [
    { destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777", "size=64m"] },
    { destination: "/run", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777"] },
  ])
  assert.equal(mounts[3], { destination: "/dev/shm/", type: "tmpfs", source: "tmpfs", options: ["nosuid", "size=1m"] })
  assert.equal({ ...after, mounts: [...mounts.slice(0, 3), before.mounts?.[3], ...mounts.slice(4, -2)] }, before)
})

test("edit bind: relative source made in the bundle, absolute kept, ro/rw options", async () => {
  const abs = newDir("abs-src")
  const { bundle, before, after } = await patched([
    { kind: "bind", source: "volumes/data", destination: "/data" },
    { kind: "bind", source: abs, destination: "/etc/app", readonly: true },
  ])
  assert.equal((after.mounts ?? []).slice(-2), [
    { destination: "/data", type: "bind", source: "volumes/data", options: ["rbind", "rw"] },
    { destination: "/etc/app", type: "bind", source: abs, options: ["rbind", "ro"] },
  ])
  assert.equal({ ...after, mounts: before.mounts }, before)
  assert.ok(existsSync(path.join(bundle, "volumes/data")), "the relative source was created in the bundle")
})

test("edit bind: create false with a missing source is refused at /mounts/N/source, nothing made", async () => {
  const { bundle } = await patched([])
  const err = await rejected(bundle, [{ kind: "bind", source: "nothere", destination: "/x", create: false }], ["/mounts/7/source"])
  assert.match(err.message, /does not exist/)
  // and a bind removed again by a later unmount creates nothing
  await run(RuntimeSpec.patchConfig({ bundle, edits: [{ kind: "bind", source: "gone", destination: "/g" }, { kind: "unmount", destination: "/g" }] }))
  assert.not.ok(existsSync(path.join(bundle, "gone")))
})

test("edit unmount: only that mount goes; an absent one is no change", async () => {
  const { before, after } = await patched([{ kind: "unmount", destination: "/dev/mqueue" }, { kind: "unmount", destination: "/nothing" }])
  assert.equal(after.mounts, (before.mounts ?? []).filter((m) => m.destination !== "/dev/mqueue"))
  assert.equal({ ...after, mounts: before.mounts }, before)
})

test("edit namespace: remove, add new at the end, add existing replaced in place", async () => {
  const { before, after } = await patched([
    { kind: "namespace", type: "network", action: "remove" },
    { kind: "namespace", type: "cgroup", action: "add" },
    { kind: "namespace", type: "ipc", action: "add", path: "/proc/1/ns/ipc" },
  ])
  assert.equal(after.linux?.namespaces, [{ type: "pid" }, { type: "ipc", path: "/proc/1/ns/ipc" }, { type: "uts" }, { type: "mount" }, { type: "cgroup" }])
  assert.equal({ ...after, linux: { ...after.linux, namespaces: before.linux?.namespaces } }, before)
})

test("edit idMappings: replaces both lists; without a user namespace it is refused", async () => {
  const uidMap = [{ containerID: 0, hostID: uid, size: 1 }, { containerID: 1, hostID: 100000, size: 65536 }]
  const gidMap = [{ containerID: 0, hostID: gid, size: 1 }, { containerID: 1, hostID: 200000, size: 65536 }]
  const { before, after } = await patched([{ kind: "idMappings", uid: uidMap, gid: gidMap }], { rootless: true })
  assert.equal(after.linux?.uidMappings, uidMap)
  assert.equal(after.linux?.gidMappings, gidMap)
  assert.equal({ ...after, linux: { ...after.linux, uidMappings: before.linux?.uidMappings, gidMappings: before.linux?.gidMappings } }, before)

  const rootful = await patched([])
  await rejected(rootful.bundle, [{ kind: "idMappings", uid: uidMap, gid: gidMap }], ["/linux/uidMappings", "/linux/gidMappings"])
  const withUserns = await run(RuntimeSpec.patchConfig({ bundle: rootful.bundle, edits: [{ kind: "namespace", type: "user", action: "add" }, { kind: "idMappings", uid: uidMap, gid: gidMap }] }))
  assertValidEverywhere(withUserns, "userns + mappings")
  // empty lists remove the mappings (and then the user namespace must go too)
  const cleared = await run(RuntimeSpec.patchConfig({ bundle: rootful.bundle, edits: [{ kind: "idMappings", uid: [], gid: [] }, { kind: "namespace", type: "user", action: "remove" }] }))
  assert.equal(cleared, rootful.after)
})

test("edit hostname: set, and a uts namespace added when missing; removing uts after is refused", async () => {
  const { before, after } = await patched([{ kind: "namespace", type: "uts", action: "remove" }, { kind: "hostname", hostname: "probe" }])
  assert.is(after.hostname, "probe")
  assert.equal(after.linux?.namespaces, [{ type: "pid" }, { type: "network" }, { type: "ipc" }, { type: "mount" }, { type: "uts" }])
  assert.equal({ ...after, hostname: "runc", linux: { ...after.linux, namespaces: before.linux?.namespaces } }, before)
  const err = await rejected((await patched([])).bundle, [{ kind: "hostname", hostname: "x" }, { kind: "namespace", type: "uts", action: "remove" }], ["/hostname"])
  assert.match(err.message, /uts namespace/)
})

test("edit capabilities: normalized names, every set runc uses, inheritable only when present", async () => {
  const { before, after } = await patched([{ kind: "capabilities", add: ["net_admin", "CAP_SYS_PTRACE", "NET_ADMIN"], drop: ["kill"] }])
  const want = ["CAP_AUDIT_WRITE", "CAP_NET_BIND_SERVICE", "CAP_NET_ADMIN", "CAP_SYS_PTRACE"]
  assert.equal(after.process?.capabilities, { bounding: want, effective: want, permitted: want, ambient: want })
  assert.equal({ ...after, process: { ...after.process, capabilities: before.process?.capabilities } }, before)

  const only = await patched([{ kind: "capabilities", drop: ["ALL"], add: ["NET_BIND_SERVICE"] }])
  const one = ["CAP_NET_BIND_SERVICE"]
  assert.equal(only.after.process?.capabilities, { bounding: one, effective: one, permitted: one, ambient: one })

  const err = await rejected(only.bundle, [{ kind: "capabilities", add: ["net admin"] }], [
    "/process/capabilities/bounding/1",
    "/process/capabilities/effective/1",
    "/process/capabilities/permitted/1",
    "/process/capabilities/ambient/1",
  ])
  assert.match(err.message, /CAP_NET_ADMIN/)
})

test("edit readonlyRoot: writable is fine for a copy, refused for a hardlinked checkout", async () => {
  const { bundle, before, after } = await patched([{ kind: "readonlyRoot", readonly: false }])
  assert.equal(after.root, { path: "rootfs", readonly: false })
  assert.equal({ ...after, root: before.root }, before)

  writeFileSync(path.join(bundle, ".syscontainers-checkout.json"), JSON.stringify({ mode: "copy" }))
  await run(RuntimeSpec.patchConfig({ bundle, edits: [{ kind: "readonlyRoot", readonly: false }] }))

  const linked = (await patched([])).bundle
  writeFileSync(path.join(linked, ".syscontainers-checkout.json"), JSON.stringify({ mode: "hardlink", rev: "abc" }))
  const err = await rejected(linked, [{ kind: "readonlyRoot", readonly: false }], ["/root/readonly"])
  assert.match(err.message, /the rootfs is hardlinked to the ostree store; a writable root would corrupt it; check out a copy \(mode: copy\) instead/)
  // writeConfig holds the same line
  const direct = await failure(RuntimeSpec.writeConfig(linked, { ...configOf(linked), root: { path: "rootfs" } }))
  assert.instance(direct, SpecInvalid)
  assert.equal((direct as SpecInvalid).violations.map((v) => v.pointer), ["/root/readonly"])
})

test("edit user: uid, gid and supplementary groups, replacing the old ones", async () => {
  const { bundle, before, after } = await patched([{ kind: "user", uid: 1000, gid: 1000, additionalGids: [27, 100] }])
  assert.equal(after.process?.user, { uid: 1000, gid: 1000, additionalGids: [27, 100] })
  assert.equal({ ...after, process: { ...after.process, user: before.process?.user } }, before)
  const again = await run(RuntimeSpec.patchConfig({ bundle, edits: [{ kind: "user", uid: 5, gid: 6 }] }))
  assert.equal(again.process?.user, { uid: 5, gid: 6 })
})

test("invalid edits are SpecInvalid at their pointer; config.json byte-identical, no temp file", async () => {
  const { bundle } = await patched([])
  await rejected(bundle, [{ kind: "cwd", cwd: "relative" }], ["/process/cwd"])
  await rejected(bundle, [{ kind: "args", args: [] }], ["/process/args"])
  await rejected(bundle, [{ kind: "tmpfs", destination: "tmp" }], ["/mounts/7/destination"])
  const err = await rejected(bundle, [{ kind: "cwd", cwd: "x" }, { kind: "args", args: [] }], ["/process/cwd", "/process/args"])
  assert.match(err.message, /absolute path/)
  writeFileSync(path.join(bundle, ".syscontainers-checkout.json"), JSON.stringify({ mode: "hardlink" }))
  await rejected(bundle, [{ kind: "readonlyRoot", readonly: false }], ["/root/readonly"])
})

test("writeFileAtomic: a failed rename leaves the target and no temp file", async () => {
  const dir = newDir("atomic")
  mkdirSync(path.join(dir, "config.json"))
  writeFileSync(path.join(dir, "config.json/keep"), "x")
  const e = await writeFileAtomic(path.join(dir, "config.json"), "{}").then(() => undefined, (err: unknown) => err)
  assert.ok(e instanceof Error)
  assert.equal(listing(dir), ["config.json/", "config.json/keep"])
  await writeFileAtomic(path.join(dir, "other.json"), "{}\n")
  assert.is(readFileSync(path.join(dir, "other.json"), "utf8"), "{}\n")
  assert.equal(listing(dir), ["config.json/", "config.json/keep", "other.json"])
})

// ---------------------------------------------------------------------------------------------
// from an image

const makeRootfs = () => {
  const rootfs = newDir("rootfs")
  mkdirSync(path.join(rootfs, "etc"))
  writeFileSync(path.join(rootfs, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n# a comment\napp:x:1000:1000::/home/app:/bin/sh\nbroken line\n")
  writeFileSync(path.join(rootfs, "etc/group"), "root:x:0:\napp:x:1000:\nwheel:x:10:other,app\nstaff:x:50:\n")
  return rootfs
}

test("fromImage: Entrypoint+Cmd, Env over runc's, WorkingDir, Volumes, then the user", async () => {
  const rootfs = makeRootfs()
  const bundle = newDir("img")
  const edits = await run(
    RuntimeSpec.fromImage({
      image: { Entrypoint: ["/entry", "-v"], Cmd: ["serve"], Env: ["PATH=/opt/bin", "LANG=C.UTF-8", "EQ=a=b"], WorkingDir: "srv", Volumes: { "/var/lib/data": {}, "/cache/": {}, "/cache": {} }, User: "app" },
      rootfs,
      bundle,
    }),
  )
  assert.equal(edits, [
    { kind: "args", args: ["/entry", "-v", "serve"] },
    { kind: "env", set: { PATH: "/opt/bin", LANG: "C.UTF-8", EQ: "a=b" } },
    { kind: "cwd", cwd: "/srv" },
    { kind: "bind", source: "volumes/var_2Flib_2Fdata", destination: "/var/lib/data", readonly: false, create: true },
    { kind: "bind", source: "volumes/cache", destination: "/cache", readonly: false, create: true },
    { kind: "user", uid: 1000, gid: 1000, additionalGids: [10] },
  ])
  const split = await run(RuntimeSpec.imageEdits({ image: { Cmd: ["sh"], User: "app" }, rootfs, bundle }))
  assert.equal(split.user, { kind: "user", uid: 1000, gid: 1000, additionalGids: [10] })
  assert.not.ok(split.edits.some((e) => e.kind === "user"))
  // defaults: cwd "/", no user edit when the image names none
  const plain = await run(RuntimeSpec.fromImage({ image: { Entrypoint: null, Cmd: ["sh"] }, rootfs, bundle }))
  assert.equal(plain, [{ kind: "args", args: ["sh"] }, { kind: "env", set: {} }, { kind: "cwd", cwd: "/" }])
})

test("fromImage edits patch a real config: env merged (image wins), volume directories created", async () => {
  const rootfs = makeRootfs()
  const bundle = newDir("img-bundle")
  await run(RuntimeSpec.generate({ bundle, rootless: true, terminal: false }))
  const r = await run(RuntimeSpec.imageEdits({ image: { Cmd: ["/app"], Env: ["PATH=/opt/bin", "LANG=C"], Volumes: { "/var/lib/data": {} }, User: "app" }, rootfs, bundle }))
  // rootless: only container 0 is mapped, so the image's user is left out
  const config = await run(RuntimeSpec.patchConfig({ bundle, edits: r.edits }))
  assertValidEverywhere(config, "image edits")
  assert.equal(config.process?.env, ["PATH=/opt/bin", "TERM=xterm", "LANG=C"])
  assert.equal(config.process?.user, { uid: 0, gid: 0 })
  assert.ok(existsSync(path.join(bundle, "volumes/var_2Flib_2Fdata")))
})

test("fromImage: users by name, uid, uid:gid, name:group; unknown names are InvalidInput naming the file", async () => {
  const rootfs = makeRootfs()
  const bundle = newDir("users")
  const userOf = async (User: string) => {
    const r = await run(RuntimeSpec.imageEdits({ image: { Cmd: ["sh"], User }, rootfs, bundle }))
    return r.user
  }
  assert.equal(await userOf("app"), { kind: "user", uid: 1000, gid: 1000, additionalGids: [10] })
  assert.equal(await userOf("1000"), { kind: "user", uid: 1000, gid: 1000, additionalGids: [10] })
  assert.equal(await userOf("1001"), { kind: "user", uid: 1001, gid: 0 })
  assert.equal(await userOf("1001:50"), { kind: "user", uid: 1001, gid: 50 })
  assert.equal(await userOf("app:staff"), { kind: "user", uid: 1000, gid: 50 })
  assert.equal(await userOf("root:wheel"), { kind: "user", uid: 0, gid: 10 })
  for (const [User, file] of [["ghost", "etc/passwd"], ["app:nogroup", "etc/group"]] as const) {
    const e = await failure(RuntimeSpec.fromImage({ image: { Cmd: ["sh"], User }, rootfs, bundle }))
    assert.instance(e, InvalidInput)
    const name = User.includes(":") ? "nogroup" : "ghost"
    assert.match((e as InvalidInput).message, new RegExp(`"${name}"`))
    assert.ok((e as InvalidInput).message.includes(path.join(rootfs, file)), (e as InvalidInput).message)
  }
  const bad = await failure(RuntimeSpec.fromImage({ image: { Cmd: ["sh"], User: ":5" }, rootfs, bundle }))
  assert.instance(bad, InvalidInput)
  // a rootfs without /etc/passwd still takes numeric users, but not names
  const bare = newDir("bare")
  assert.equal((await run(RuntimeSpec.imageEdits({ image: { Cmd: ["sh"], User: "7:8" }, rootfs: bare, bundle }))).user, { kind: "user", uid: 7, gid: 8 })
  const noFile = await failure(RuntimeSpec.fromImage({ image: { Cmd: ["sh"], User: "app" }, rootfs: bare, bundle }))
  assert.match((noFile as InvalidInput).message, /does not exist/)
})

test("fromImage: /etc/passwd as an absolute symlink is read inside the rootfs, not the host's", async () => {
  const rootfs = newDir("linked")
  mkdirSync(path.join(rootfs, "etc"))
  mkdirSync(path.join(rootfs, "usr/lib"), { recursive: true })
  writeFileSync(path.join(rootfs, "usr/lib/passwd"), "svc:x:4242:4343::/:/bin/sh\n")
  symlinkSync("/usr/lib/passwd", path.join(rootfs, "etc/passwd"))
  // a link climbing out of the rootfs stays in it too (.. at / is /)
  symlinkSync("../../../../../../../../etc/hostname", path.join(rootfs, "etc/group"))
  const r = await run(RuntimeSpec.imageEdits({ image: { Cmd: ["sh"], User: "svc" }, rootfs: path.relative(work, rootfs), bundle: work }))
  assert.equal(r.user, { kind: "user", uid: 4242, gid: 4343 })
  const e = await failure(RuntimeSpec.fromImage({ image: { Cmd: ["sh"], User: "root" }, rootfs, bundle: work }))
  assert.match((e as InvalidInput).message, /no user "root"/)
})

test("fromImage: no Entrypoint and no Cmd, bad Env and / as a volume are InvalidInput", async () => {
  const rootfs = makeRootfs()
  const bundle = newDir("noargs")
  const none = await failure(RuntimeSpec.fromImage({ image: { Entrypoint: [], Cmd: null }, rootfs, bundle }))
  assert.instance(none, InvalidInput)
  assert.match((none as InvalidInput).message, /neither an Entrypoint nor a Cmd/)
  assert.instance(await failure(RuntimeSpec.fromImage({ image: { Cmd: ["sh"], Env: ["NOEQUALS"] }, rootfs, bundle })), InvalidInput)
  assert.instance(await failure(RuntimeSpec.fromImage({ image: { Cmd: ["sh"], Volumes: { "/": {} } }, rootfs, bundle })), InvalidInput)
  assert.is(RuntimeSpec.volumeSource("/a_b/c d/é"), "volumes/a_5Fb_2Fc_20d_2F_C3_A9")
})

// ---------------------------------------------------------------------------------------------
// id mappings

test("subid parsing: first range by name or uid, comments and malformed lines skipped", () => {
  const text = "# comment\nalice:100000:65536\nbob:x:y\nbob:300000:1000\n1000:400000:5\nbob:500000:9\n"
  assert.equal(RuntimeSpec.firstSubidRange(text, { name: "bob", id: 1 }), { start: 300000, count: 1000 })
  assert.equal(RuntimeSpec.firstSubidRange(text, { name: "carol", id: 1000 }), { start: 400000, count: 5 })
  assert.is(RuntimeSpec.firstSubidRange(text, { name: "dave", id: 2 }), undefined)
  assert.is(RuntimeSpec.firstSubidRange("", { name: "root", id: 0 }), undefined)
})

test("idMappingsFor: single id, subid ranges from the files, and a user without ranges", async () => {
  const dir = newDir("subid")
  const subuid = path.join(dir, "subuid")
  const subgid = path.join(dir, "subgid")
  writeFileSync(subuid, "other:1:2\nalice:100000:65536\n")
  writeFileSync(subgid, "alice:200000:65536\n")
  assert.equal(await run(RuntimeSpec.idMappingsFor({ mode: "single", uid: 1000, gid: 1001 })), {
    kind: "idMappings",
    uid: [{ containerID: 0, hostID: 1000, size: 1 }],
    gid: [{ containerID: 0, hostID: 1001, size: 1 }],
  })
  assert.equal(await run(RuntimeSpec.idMappingsFor({ mode: "subids", uid: 1000, gid: 1001, user: "alice", subuidFile: subuid, subgidFile: subgid })), {
    kind: "idMappings",
    uid: [{ containerID: 0, hostID: 1000, size: 1 }, { containerID: 1, hostID: 100000, size: 65536 }],
    gid: [{ containerID: 0, hostID: 1001, size: 1 }, { containerID: 1, hostID: 200000, size: 65536 }],
  })
  const e = await failure(RuntimeSpec.idMappingsFor({ mode: "subids", uid: 1002, gid: 1002, user: "bob", subuidFile: subuid, subgidFile: subgid }))
  assert.instance(e, InvalidInput)
  assert.match((e as InvalidInput).message, /no subordinate id range for user bob/)
  assert.ok((e as InvalidInput).message.includes(subuid))
  const noFile = await failure(RuntimeSpec.idMappingsFor({ mode: "subids", user: "alice", subuidFile: path.join(dir, "missing"), subgidFile: subgid }))
  assert.instance(noFile, InvalidInput)
})

// ---------------------------------------------------------------------------------------------
// the proof: runc runs what we wrote

test("runc runs the patched bundle: args, env, cwd, hostname, tmpfs and a relative bind", async () => {
  const bundle = newDir("run")
  mkdirSync(path.join(bundle, "rootfs/bin"), { recursive: true })
  copyFileSync("/bin/busybox", path.join(bundle, "rootfs/bin/busybox"))
  symlinkSync("busybox", path.join(bundle, "rootfs/bin/sh"))
  // terminal off even from an interactive shell: runc would otherwise want a console socket
  await run(RuntimeSpec.generate({ bundle, rootless: false, terminal: false }))
  const config = await run(
    RuntimeSpec.patchConfig({
      bundle,
      edits: [
        { kind: "args", args: ["/bin/busybox", "sh", "-c", "echo $FOO; pwd; hostname; echo written > /data/out; touch /tmp/ok"] },
        { kind: "env", set: { FOO: "bar" } },
        { kind: "cwd", cwd: "/tmp" },
        { kind: "hostname", hostname: "probe" },
        { kind: "tmpfs", destination: "/tmp", options: ["nosuid", "nodev", "mode=1777", "size=64m"] },
        { kind: "bind", source: "volumes/data", destination: "/data" },
      ],
    }),
  )
  assertValidEverywhere(config, "run bundle")
  const name = `probe-${randomBytes(4).toString("hex")}`
  started.push(name)
  const result = await run(
    Effect.gen(function* () {
      const spawn = yield* Spawn
      return yield* spawn.run(["runc", "--root", stateDir(), "run", "--bundle", bundle, name], { cwd: work })
    }),
  )
  assert.equal(result.stdout.trim().split("\n"), ["bar", "/tmp", "probe"], result.stderr)
  assert.is(readFileSync(path.join(bundle, "volumes/data/out"), "utf8"), "written\n")
  assert.not.ok(existsSync(path.join(bundle, "rootfs/tmp/ok")), "/tmp was a tmpfs, not the rootfs")
})

test.run()
