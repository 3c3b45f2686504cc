// hostile images through the whole pipeline: refused at pull with LayerRejected, nothing written, nothing outside touched.
import { test } from "uvu"
import * as assert from "uvu/assert"
import * as Effect from "effect/Effect"
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import path from "node:path"
import * as Ostree from "../packages/core/src/Ostree.ts"
import { pull } from "../packages/core/src/Pull.ts"
import { applyLayers } from "../packages/core/src/Layers.ts"
import { buildImage, type LayerSpec } from "./fixtures/layers.ts"
import { cleanupTemps, failure, run, sh, tempDir } from "./fixtures/harness.ts"
import { diffTrees, snapshotTree } from "./fixtures/tree.ts"

const refs = (repo: string) => sh(["ostree", "refs", `--repo=${repo}`]).then((o) => o.split("\n").filter(Boolean))
const base: LayerSpec = { entries: [{ type: "dir", path: "etc" }, { type: "file", path: "etc/passwd", content: "root:x:0:0::/:/bin/sh\n" }] }

const hostile: ReadonlyArray<{ readonly what: string; readonly layer: LayerSpec; readonly entry: RegExp }> = [
  { what: "a .. component", layer: { writer: "own", entries: [{ type: "raw", header: { name: "etc/../../escape", type: "file" }, content: "x" }] }, entry: /\.\./ },
  { what: "a whiteout named .wh..", layer: { writer: "own", entries: [{ type: "raw", header: { name: "etc/.wh..", type: "file" } }] }, entry: /\.wh\.\./ },
  { what: "a non-UTF-8 name", layer: { writer: "own", entries: [{ type: "raw", header: { name: new Uint8Array([0x65, 0x74, 0x63, 0x2f, 0xff, 0xfe]), type: "file" }, content: "x" }] }, entry: /etc\// },
  { what: "an entry through a symlink to the host", layer: { writer: "own", entries: [{ type: "raw", header: { name: "etc/link", type: "symlink", linkname: "/tmp" } }, { type: "raw", header: { name: "etc/link/pwned", type: "file" }, content: "x" }] }, entry: /etc\/link/ },
]

for (const h of hostile) {
  test(`${h.what}: LayerRejected naming the layer and the entry; no refs; nothing beside`, async () => {
    const dir = tempDir("hostile")
    const sentinel = path.join(dir, "sentinel")
    writeFileSync(sentinel, "untouched")
    const img = await buildImage(path.join(dir, "img"), [base, h.layer])
    const repoDir = path.join(dir, "ostree")
    const e = await failure(Effect.flatMap(Ostree.init({ path: repoDir }), (repo) => pull({ from: img.ref, name: "hostile", repo })))
    assert.is(e._tag, "LayerRejected", e.message)
    assert.match(e.message, img.layers[1]!.digest.slice(7, 19))
    assert.match(e.message, h.entry)
    assert.equal(await refs(repoDir), [], "no refs left")
    assert.is(readFileSync(sentinel, "utf8"), "untouched")
    assert.not.ok(existsSync("/tmp/pwned"))
  })
}

test("a lower symlink to the host, replaced by an upper directory: checked out inside the bundle in both orders", async () => {
  const dir = tempDir("symdir")
  const outside = path.join(dir, "outside")
  mkdirSync(outside)
  writeFileSync(path.join(outside, "keep"), "host file")
  const img = await buildImage(path.join(dir, "img"), [
    { entries: [{ type: "symlink", path: "data", target: outside }] },
    { entries: [{ type: "dir", path: "data" }, { type: "file", path: "data/inside", content: "in the bundle" }] },
  ])
  const repoDir = path.join(dir, "ostree")
  const { image } = await run(Effect.flatMap(Ostree.init({ path: repoDir }), (repo) => pull({ from: img.ref, name: "symdir", repo })))
  const a = await run(applyLayers({ image, into: path.join(dir, "a"), order: "union" }))
  const b = await run(applyLayers({ image, into: path.join(dir, "b"), order: "union-add" }))
  assert.is(readFileSync(path.join(a.rootfs, "data/inside"), "utf8"), "in the bundle")
  assert.equal(diffTrees(snapshotTree(a.rootfs), snapshotTree(b.rootfs)), [])
  assert.not.ok(existsSync(path.join(outside, "inside")), "nothing written through the symlink")
  assert.is(readFileSync(path.join(outside, "keep"), "utf8"), "host file")
})

test.after(() => cleanupTemps())
test.run()
