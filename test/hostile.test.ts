// hostile images through the whole pipeline: refused at pull with LayerRejected, nothing written, nothing outside touched.
import { test } from "uvu"
import * as assert from "uvu/assert"
import * as Effect from "effect/Effect"
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { randomBytes } from "node:crypto"
import path from "node:path"
import * as Ostree from "../packages/core/src/Ostree.ts"
import { pull } from "../packages/core/src/Pull.ts"
import { applyLayers } from "../packages/core/src/Layers.ts"
import { makeSpawn, Spawn } from "../packages/core/src/Spawn.ts"
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

// ostree processes of ours still running (a streamed commit must end with its pull, however it ends)
const ourOstrees = async () => (await sh(["ps", "-o", "comm=", "--ppid", String(process.pid)])).split("\n").filter((c) => c.trim() === "ostree")

// 1.5 MiB that gzip cannot shrink: the layer is big enough to stream into ostree while it is scanned
const incompressible = randomBytes(3 << 19)
const streamed = (l: LayerSpec): LayerSpec =>
  l.writer === "own" ? { ...l, entries: [{ type: "raw", header: { name: "etc/big.bin", type: "file" }, content: incompressible }, ...l.entries] } : l

for (const h of hostile.flatMap((h) => [h, { ...h, what: `${h.what}, after 1.5 MiB (a streamed commit)`, layer: streamed(h.layer) }])) {
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
    assert.equal(await ourOstrees(), [], "no ostree left running")
  })
}

test("a big layer with devices, a FIFO and a hardlink to a lower file: streamed, refused by ostree, rewritten; equals umoci", async () => {
  const dir = tempDir("devices")
  const img = await buildImage(path.join(dir, "img"), [
    { entries: [{ type: "dir", path: "etc" }, { type: "file", path: "etc/lower", content: "from below" }] },
    {
      // our own tar writer: GNU tar will not write a hardlink to a file outside its input
      writer: "own",
      entries: [
        { type: "file", path: "etc/big.bin", content: incompressible },
        { type: "char", path: "etc/null", major: 1, minor: 3 },
        { type: "fifo", path: "etc/fifo", mode: 0o600 },
        { type: "hardlink", path: "etc/again", target: "etc/lower" },
      ],
    },
  ])
  assert.ok(statSync(path.join(img.layout, "blobs", "sha256", img.layers[1]!.digest.slice(7))).size >= 1 << 20, "the layer streams")
  const repoDir = path.join(dir, "ostree")
  const commits: string[][] = []
  const spawn = makeSpawn(({ argv, result }) => void (result && argv[1] === "commit" && commits.push([...argv])))
  const { image } = await Effect.runPromise(
    Effect.flatMap(Ostree.init({ path: repoDir }), (repo) => pull({ from: img.ref, name: "devices", repo })).pipe(Effect.provideService(Spawn, spawn)),
  )
  assert.equal(await ourOstrees(), [])
  // the streamed commit (stdin) went first and failed on the devices; the rewritten tar was committed
  // (unnamed), then named by a short commit of that tree
  assert.ok(commits.some((a) => a.includes("--tree=tar=")), "a streamed commit ran")
  assert.ok(commits.some((a) => a.some((x) => /^--tree=tar=.+\.tar$/.test(x)) && a.includes("--orphan")), "the rewritten tar was committed")
  assert.ok(commits.some((a) => a.some((x) => x.startsWith("--tree=ref=")) && a.includes(`--branch=ociimage/${img.layers[1]!.digest.slice(7)}`)), "and named")
  await sh(["umoci", "raw", "unpack", "--image", img.ref.replace(/^oci:/, ""), path.join(dir, "umoci")])
  for (const order of ["union", "union-add"] as const) {
    const b = await run(applyLayers({ image, into: path.join(dir, order), order }))
    assert.equal(diffTrees(snapshotTree(path.join(dir, "umoci")), snapshotTree(b.rootfs), { modeMask: true }), [], order)
  }
})

test("a big layer with 4 MiB of zeros after its end: ostree stops reading early; the pull neither hangs nor fails", async () => {
  const dir = tempDir("trailer")
  const img = await buildImage(path.join(dir, "img"), [base, { writer: "own", entries: [{ type: "file", path: "etc/big.bin", content: incompressible }], trailer: new Uint8Array(4 << 20) }])
  const repoDir = path.join(dir, "ostree")
  const pulled = run(Effect.flatMap(Ostree.init({ path: repoDir }), (repo) => pull({ from: img.ref, name: "trailer", repo })))
  const timeout = new Promise<"hung">((resolve) => setTimeout(() => resolve("hung"), 60_000).unref())
  const outcome = await Promise.race([pulled.then(() => "pulled" as const), timeout])
  assert.is(outcome, "pulled")
  assert.ok(Ostree.hasRef(await run(Ostree.open(repoDir)), "ociimage/trailer_3Alatest"))
  assert.equal(await ourOstrees(), [])
})

test("a corrupt big layer in a local layout: skopeo's copy refuses it before anything streams; no refs; no ostree running", async () => {
  const dir = tempDir("corrupt")
  const img = await buildImage(path.join(dir, "img"), [base, { entries: [{ type: "file", path: "etc/big.bin", content: incompressible }] }])
  // one byte flipped in the middle of the big layer's blob, as a damaged local layout would have it
  const blob = path.join(img.layout, "blobs", "sha256", img.layers[1]!.digest.slice(7))
  const bytes = readFileSync(blob)
  const middle = bytes.length >> 1
  bytes[middle] = bytes[middle]! ^ 0xff
  writeFileSync(blob, bytes)
  const repoDir = path.join(dir, "ostree")
  const e = await failure(Effect.flatMap(Ostree.init({ path: repoDir }), (repo) => pull({ from: img.ref, name: "corrupt", repo })))
  assert.is(e._tag, "CommandFailed", e.message)
  if (e._tag === "CommandFailed") assert.is(e.argv[0], "skopeo")
  assert.equal(await refs(repoDir), [])
  assert.equal(await ourOstrees(), [])
})

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
