// Layers: redis's layers checked out in both orders equal umoci unpack's rootfs, as hardlinks into the repo.
import { suite } from "uvu"
import * as assert from "uvu/assert"
import * as Effect from "effect/Effect"
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs"
import path from "node:path"
import * as Ostree from "../packages/core/src/Ostree.ts"
import { pull } from "../packages/core/src/Pull.ts"
import * as Images from "../packages/core/src/Images.ts"
import { applyLayers } from "../packages/core/src/Layers.ts"
import { cleanupTemps, failure, run, sh, skopeo, tempDir, loud } from "./fixtures/harness.ts"
import { useMirror, type Mirror } from "./fixtures/mirror.ts"
import { diffTrees, snapshotTree } from "./fixtures/tree.ts"

const t = suite("Layers")
let mirror: Mirror
let work: string
let repoDir: string

// a bare-user checkout drops setuid/setgid/sticky, forces u+r on files, and applies no ownership
// (ostree keeps owners in xattrs of the objects; -U checkouts are the caller's), like umoci --rootless
const fileMask = { modeMask: true, ignoreOwner: true } as const

t.before(loud("before", async () => {
  mirror = await useMirror()
  work = tempDir("layers")
  repoDir = path.join(work, "ostree")
  await run(Effect.flatMap(Ostree.init({ path: repoDir }), (repo) => pull({ from: "docker://redis:alpine", name: "redis", repo })))
  await sh([...skopeo(), "copy", "--quiet", "docker://redis:alpine", `oci:${path.join(work, "layout")}:redis`])
  await sh(["umoci", "unpack", "--image", `${path.join(work, "layout")}:redis`, path.join(work, "umoci")])
}))
t.after(async () => {
  cleanupTemps()
  await mirror.stop()
})

const image = () => run(Effect.flatMap(Ostree.open(repoDir), (repo) => Images.get(repo, "redis")))

t("union (bottom-up) and union-add (top-down) give the same tree as umoci unpack", async () => {
  const img = await image()
  const union = await run(applyLayers({ image: img, into: path.join(work, "union"), order: "union" }))
  const add = await run(applyLayers({ image: img, into: path.join(work, "add"), order: "union-add" }))
  const reference = snapshotTree(path.join(work, "umoci", "rootfs"))
  const a = snapshotTree(union.rootfs)
  const b = snapshotTree(add.rootfs)
  assert.equal(diffTrees(a, b), [], "union vs union-add")
  assert.equal(diffTrees(reference, a, fileMask), [], "umoci vs union")
  assert.ok(a.size > 50, `a real rootfs, not an empty one (${a.size} entries)`)
})

t("whiteouts and opaque directories took effect, and no whiteout file is left", async () => {
  const rootfs = path.join(work, "union", "rootfs")
  const all: string[] = []
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      all.push(e.name)
      if (e.isDirectory()) walk(path.join(d, e.name))
    }
  }
  walk(rootfs)
  assert.equal(all.filter((n) => n.startsWith(".wh.")), [])
  // the fixture's layers delete a lower file and replace a lower directory's content
  const ref = snapshotTree(path.join(work, "umoci", "rootfs"))
  const layerTars = await sh(["sh", "-c", 'for b in "$1"/blobs/sha256/*; do tar tzf "$b" 2>/dev/null; done', "sh", path.join(work, "layout")])
  const whiteouts = layerTars.split("\n").filter((l) => /(^|\/)\.wh\.[^/]+$/.test(l) && !l.endsWith(".wh..wh..opq"))
  assert.ok(whiteouts.length > 0, "the fixture has a whiteout")
  for (const w of whiteouts) {
    const gone = w.replace(/\.wh\./, "")
    assert.not.ok(ref.has(gone.replace(/^\.\//, "")), `umoci removed ${gone}`)
    assert.not.ok(existsSync(path.join(rootfs, gone)), `we removed ${gone}`)
  }
})

t("files are hardlinks into the repo: a rootfs costs no file data", async () => {
  const rootfs = path.join(work, "union", "rootfs")
  const server = statSync(path.join(rootfs, "usr/bin/redis-server"))
  assert.ok(server.nlink >= 2, `redis-server nlink ${server.nlink}`)
  const again = statSync(path.join(work, "add", "rootfs", "usr/bin/redis-server"))
  assert.is(again.ino, server.ino, "both bundles share the inode")
  const marker = JSON.parse(readFileSync(path.join(work, "union", ".syscontainers-checkout.json"), "utf8"))
  assert.is(marker.mode, "hardlink")
  assert.ok(existsSync(path.join(work, "union", "manifest.json")))
})

t("copy mode makes private files", async () => {
  const img = await image()
  const copy = await run(applyLayers({ image: img, into: path.join(work, "copy"), order: "union", link: "copy" }))
  const s = statSync(path.join(copy.rootfs, "usr/bin/redis-server"))
  assert.is(s.nlink, 1)
  assert.equal(diffTrees(snapshotTree(path.join(work, "union", "rootfs")), snapshotTree(copy.rootfs)), [])
})

t("into an existing rootfs: InvalidInput, the existing tree untouched", async () => {
  const img = await image()
  const before = lstatSync(path.join(work, "union", "rootfs", "usr/bin/redis-server")).ino
  const e = await failure(applyLayers({ image: img, into: path.join(work, "union") }))
  assert.is(e._tag, "InvalidInput")
  assert.match(e.message, /already holds a rootfs/)
  assert.is(lstatSync(path.join(work, "union", "rootfs", "usr/bin/redis-server")).ino, before)
})

t("hardlinks across filesystems: HardlinkImpossible names copy mode; copy mode works there", async () => {
  const img = await image()
  const mnt = path.join(work, "other-fs")
  mkdirSync(mnt)
  await sh(["mount", "-t", "tmpfs", "-o", "size=256m", "syscontainers-test", mnt])
  try {
    const e = await failure(applyLayers({ image: img, into: path.join(mnt, "b") }))
    assert.is(e._tag, "HardlinkImpossible")
    assert.match(e.message, /copy mode/)
    assert.not.ok(existsSync(path.join(mnt, "b")), "no half-made bundle")
    const copy = await run(applyLayers({ image: img, into: path.join(mnt, "c"), link: "copy" }))
    assert.ok(existsSync(path.join(copy.rootfs, "usr/bin/redis-server")))
  } finally {
    await sh(["umount", mnt])
  }
})

t("a checkout that fails leaves no bundle behind; one whose layer is gone from the repo says so before it makes anything", async () => {
  const img = await image()
  const broken = { ...img, manifest: { ...img.manifest, layers: [...img.manifest.layers, { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: `sha256:${"0".repeat(64)}`, size: 1 }] } }
  const into = path.join(work, "broken")
  const gone = await failure(applyLayers({ image: broken, into }))
  assert.is(gone._tag, "ImageNotFound")
  assert.match(gone.message, /layer sha256:0{64} was removed/)
  assert.not.ok(existsSync(into))
  // the layer's ref there, naming a commit the repo does not hold: ostree fails mid-checkout, after
  // the bundle and the lower layers were made
  const fakeRef = path.join(img.repo.path, "refs", "heads", "ociimage", "0".repeat(64))
  writeFileSync(fakeRef, `${"1".repeat(64)}\n`)
  try {
    const e = await failure(applyLayers({ image: broken, into }))
    assert.is(e._tag, "CommandFailed")
    assert.not.ok(existsSync(into))
  } finally {
    rmSync(fakeRef, { force: true })
  }
})

t.run()
