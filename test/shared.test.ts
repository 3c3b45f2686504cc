// shared checkouts: bundles that run on the image's one read-only checkout in the repo: one tree
// for any number of containers, the same tree as umoci's, never written, and kept while in use.
import { suite } from "uvu"
import * as assert from "uvu/assert"
import * as Effect from "effect/Effect"
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs"
import path from "node:path"
import * as Ostree from "../packages/core/src/Ostree.ts"
import { pull } from "../packages/core/src/Pull.ts"
import * as Images from "../packages/core/src/Images.ts"
import { applyLayers, sharedCheckoutDir } from "../packages/core/src/Layers.ts"
import * as RuntimeSpec from "../packages/core/src/RuntimeSpec.ts"
import * as Containers from "../packages/core/src/Containers.ts"
import { makeSpawn, Spawn } from "../packages/core/src/Spawn.ts"
import { cleanupTemps, failure, freePort, run, sh, skopeo, tempDir, loud, pongWithin } from "./fixtures/harness.ts"
import { useMirror, type Mirror } from "./fixtures/mirror.ts"
import { runtimeSpecErrors } from "./fixtures/ociSchemas.ts"
import { diffTrees, snapshotTree } from "./fixtures/tree.ts"

const t = suite("shared checkouts")
let mirror: Mirror
let work: string
let repoDir: string
const names: string[] = []
const nameOf = (what: string) => {
  const n = `sc-test-shared-${what}-${process.pid}`
  names.push(n)
  return n
}
const image = () => run(Effect.flatMap(Ostree.open(repoDir), (repo) => Images.get(repo, "redis")))

t.before(loud("before", async () => {
  mirror = await useMirror()
  work = tempDir("shared")
  repoDir = path.join(work, "ostree")
  await run(Effect.flatMap(Ostree.init({ path: repoDir }), (repo) => pull({ from: "docker://redis:alpine", name: "redis", repo })))
}))
t.after(async () => {
  for (const n of names) await run(Containers.remove(n, { force: true }).pipe(Effect.ignore))
  cleanupTemps()
  await mirror.stop()
})

t("two bundles, one tree: made once in the repo, equal to umoci's, no rootfs of their own", async () => {
  const img = await image()
  const checkouts: string[][] = []
  const spawn = makeSpawn(({ argv, result }) => void (result && argv[0] === "ostree" && argv[1] === "checkout" && checkouts.push([...argv])))
  const apply = (into: string, order: "union" | "union-add") =>
    Effect.runPromise(applyLayers({ image: img, into, order, shared: true }).pipe(Effect.provideService(Spawn, spawn)))
  const a = await apply(path.join(work, "a"), "union")
  const made = checkouts.length
  assert.ok(made > 0, "the first shared bundle made the checkout")
  const b = await apply(path.join(work, "b"), "union-add")
  assert.is(checkouts.length, made, "the second made none")
  assert.is(a.rootfs, b.rootfs)
  assert.is(a.rootfs, path.join(sharedCheckoutDir(img.repo, img), "rootfs"))
  assert.not.ok(existsSync(path.join(work, "a", "rootfs")), "the bundle has no tree of its own")
  assert.ok(existsSync(path.join(work, "a", "manifest.json")))
  assert.is(JSON.parse(readFileSync(path.join(work, "b", ".syscontainers-checkout.json"), "utf8")).rootfs, a.rootfs)
  await sh([...skopeo(), "copy", "--quiet", "docker://redis:alpine", `oci:${path.join(work, "layout")}:redis`])
  await sh(["umoci", "raw", "unpack", "--image", `${path.join(work, "layout")}:redis`, path.join(work, "umoci")])
  assert.equal(diffTrees(snapshotTree(path.join(work, "umoci")), snapshotTree(a.rootfs), { modeMask: true, ignoreOwner: true }), [])
  assert.ok(statSync(path.join(a.rootfs, "usr/bin/redis-server")).nlink >= 2, "hardlinks into the store")
})

t("copy and shared together: InvalidInput, nothing made", async () => {
  const into = path.join(work, "both")
  const e = await failure(applyLayers({ image: await image(), into, link: "copy", shared: true }))
  assert.is(e._tag, "InvalidInput")
  assert.match(e.message, /shared/)
  assert.not.ok(existsSync(into))
})

t("a spec for a shared bundle roots it read-only at the shared tree (absolute: runc refuses a symlinked rootfs); two redis run on it at once and cannot write it", async () => {
  const img = await image()
  const started: Array<{ port: number; name: string }> = []
  for (const b of ["a", "b"]) {
    const bundle = path.join(work, b)
    const port = await freePort()
    await run(RuntimeSpec.generate({ bundle, rootless: true, terminal: false }))
    const config = JSON.parse(readFileSync(path.join(bundle, "config.json"), "utf8"))
    assert.equal(config.root, { path: path.join(sharedCheckoutDir(img.repo, img), "rootfs"), readonly: true })
    const fromImage = await run(RuntimeSpec.fromImage({ image: img.config.config ?? {}, rootfs: config.root.path, bundle }))
    await run(RuntimeSpec.patchConfig({ bundle, edits: [...fromImage, { kind: "args", args: ["redis-server", "--port", String(port)] }, { kind: "tmpfs", destination: "/tmp" }, { kind: "tmpfs", destination: "/var/run" }] }))
    assert.is(runtimeSpecErrors(JSON.parse(readFileSync(path.join(bundle, "config.json"), "utf8"))), "", "the official runtime-spec schema")
    const name = nameOf(b)
    await run(Containers.start({ bundle, name }))
    started.push({ port, name })
  }
  for (const { port } of started) {
    assert.is(await pongWithin(port), "PONG")
  }
  const w = await run(Containers.exec(started[0]!.name, ["sh", "-c", "echo corrupt > /usr/bin/redis-server; echo $?"]))
  assert.not.equal(w.stdout.trim(), "0", "the write failed")
  assert.not.match(readFileSync(path.join(sharedCheckoutDir(img.repo, img), "rootfs", "usr/bin/redis-server"), "latin1").slice(0, 8), /corrupt/)
})

t("a leftover where the shared tree goes (an interrupted removal, no marker) is replaced by a whole tree", async () => {
  const img = await image()
  const dir = sharedCheckoutDir(img.repo, img)
  const aside = `${dir}.kept-by-test`
  renameSync(dir, aside)
  mkdirSync(path.join(dir, "rootfs", "usr"), { recursive: true })
  writeFileSync(path.join(dir, "rootfs", "usr", "half"), "what an interrupted rm -r left")
  const c = await run(applyLayers({ image: img, into: path.join(work, "after-leftover"), shared: true }))
  assert.ok(existsSync(path.join(dir, ".syscontainers-checkout.json")), "whole: the marker is there")
  assert.not.ok(existsSync(path.join(c.rootfs, "usr", "half")))
  assert.equal(diffTrees(snapshotTree(path.join(aside, "rootfs")), snapshotTree(c.rootfs)), [])
  rmSync(dir, { recursive: true, force: true })
  renameSync(aside, dir)
})

t("an image pulled under two names has one shared tree: rmi of one keeps it, rmi of the last removes it", async () => {
  const repo = await run(Ostree.open(repoDir))
  await run(pull({ from: "docker://redis:alpine", name: "redis2", repo }))
  const twin = await run(Images.get(repo, "redis2"))
  assert.is(sharedCheckoutDir(repo, twin), sharedCheckoutDir(repo, await image()))
  await run(Images.remove(repo, "redis2"))
  assert.ok(existsSync(sharedCheckoutDir(repo, twin)), "redis still has it")
})

t("rmi while containers run on the shared tree, or bundles are checked out on it: ImageInUse naming them, nothing removed; after rm and the bundles, rmi removes the tree", async () => {
  const repo = await run(Ostree.open(repoDir))
  const img = await image()
  const e = await failure(Images.remove(repo, "redis"))
  assert.is(e._tag, "ImageInUse")
  for (const n of names) assert.match(e.message, n)
  assert.ok(existsSync(sharedCheckoutDir(repo, img)), "the tree stays")
  assert.ok(Ostree.hasRef(repo, img.ref), "the image stays")
  for (const n of names) await run(Containers.remove(n, { force: true }))
  // no container runs, but the bundles root there: without the tree they could never run again
  const bundles = await failure(Images.remove(repo, "redis"))
  assert.is(bundles._tag, "ImageInUse")
  for (const b of ["a", "b"]) assert.match(bundles.message, path.join(work, b))
  assert.ok(existsSync(sharedCheckoutDir(repo, img)), "the tree stays")
  for (const b of ["a", "b"]) rmSync(path.join(work, b), { recursive: true, force: true })
  await run(Images.remove(repo, "redis"))
  assert.not.ok(existsSync(sharedCheckoutDir(repo, img)), "removed with the image")
  assert.not.ok(Ostree.hasRef(repo, img.ref))
})

t.run()
