// layerScan tests: real blobs from GNU tar and umoci (digests vs sha256sum), hostile layers refused, sanitized tars ostree takes.
import { test } from "uvu"
import * as assert from "uvu/assert"
import * as Effect from "effect/Effect"
import { execFileSync, spawnSync } from "node:child_process"
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { createHash } from "node:crypto"
import { PassThrough } from "node:stream"
import { DigestMismatch, LayerRejected } from "../packages/core/src/Errors.ts"
import { scanLayer, writeSanitizedTar, type LayerScan } from "../packages/core/src/internal/layerScan.ts"
import { filterTar, listTar, tarEnd, tarEntry, tarGlobalHeader } from "../packages/core/src/internal/tar.ts"
import { buildImage, gzipBlob, layerTar, type LayerSpec } from "./fixtures/layers.ts"

let work = ""
test.before(() => {
  work = mkdtempSync(path.join(os.tmpdir(), "sc-test-layerscan-"))
})
test.after(() => {
  rmSync(work, { recursive: true, force: true })
})

const sha256sum = (file: string) => `sha256:${execFileSync("sha256sum", [file]).toString().split(" ")[0]}`
const scan = (o: { path: string; digest: string; mediaType?: string }) => Effect.runPromise(scanLayer(o))
const scanError = (o: { path: string; digest: string }) => Effect.runPromise(Effect.flip(scanLayer(o)))
const ostreeEnv = { ...process.env, LC_ALL: "C.UTF-8" }

let blobs = 0
// a gzip blob of one layer, built by our writer or GNU tar, named by its digest
const blobOf = (spec: LayerSpec) => {
  const dir = path.join(work, `blob${blobs++}`)
  return gzipBlob(layerTar(dir, spec, 0), dir)
}

const repo = () => {
  const r = path.join(work, `repo${blobs++}`)
  execFileSync("ostree", ["init", `--repo=${r}`, "--mode=bare-user"])
  return r
}
const commit = (r: string, tar: string) =>
  spawnSync("ostree", ["commit", `--repo=${r}`, "--branch=l", "--tar-autocreate-parents", `--tree=tar=${tar}`], { env: ostreeEnv, encoding: "utf8" })
const ls = (r: string) => execFileSync("ostree", ["ls", `--repo=${r}`, "-R", "l"], { env: ostreeEnv }).toString()

test("digest, size and diff_id of umoci's gzip blobs equal sha256sum of the blob and of the tar", async () => {
  const img = await buildImage(path.join(work, "plain"), [
    { entries: [{ type: "dir", path: "etc" }, { type: "file", path: "etc/hosts", content: "127.0.0.1 localhost\n" }, { type: "symlink", path: "bin", target: "usr/bin" }] },
    { root: { mode: 0o755 }, entries: [{ type: "file", path: "etc/hosts", content: "::1 localhost\n", mode: 0o600 }, { type: "whiteout", path: "bin" }] },
  ])
  for (const l of img.layers) {
    const s = await scan({ path: l.blob, digest: l.digest, mediaType: l.mediaType })
    assert.is(s.digest, sha256sum(l.blob))
    assert.is(s.diffId, sha256sum(l.tar))
    assert.is(s.diffId, l.diffId)
    assert.is(s.size, statSync(l.blob).size)
    assert.is(s.uncompressedSize, statSync(l.tar).size)
    assert.is(s.compression, "gzip")
    assert.is(s.needsRewrite, false)
    assert.equal(s.reasons, [])
  }
  const [first, second] = await Promise.all(img.layers.map((l) => scan({ path: l.blob, digest: l.digest })))
  assert.equal(first!.entries.map((e) => `${e.type} ${e.path}${e.target ? ` -> ${e.target}` : ""}`), ["dir etc", "file etc/hosts", "symlink bin -> usr/bin"])
  // no "./" entry in the first layer: ostree must be told to make the root
  assert.equal(first!.implicitDirs, [""])
  assert.equal(second!.implicitDirs, [])
  assert.equal(second!.entries.map((e) => `${e.path} ${e.mode.toString(8)}`), [" 755", "etc 755", "etc/hosts 600", ".wh.bin 644"])
})

test("an uncompressed blob: diff_id equals the digest", async () => {
  const dir = path.join(work, "raw")
  const tar = layerTar(dir, { entries: [{ type: "file", path: "a", content: "a" }] }, 0)
  const s = await scan({ path: tar, digest: sha256sum(tar), mediaType: "application/vnd.oci.image.layer.v1.tar" })
  assert.is(s.compression, "none")
  assert.is(s.diffId, s.digest)
  assert.is(s.size, s.uncompressedSize)
})

test("a blob that does not hash to its digest: DigestMismatch with both digests", async () => {
  const b = blobOf({ entries: [{ type: "file", path: "a", content: "a" }] })
  const wrong = `sha256:${"0".repeat(64)}`
  const e = await scanError({ path: b.blob, digest: wrong })
  assert.instance(e, DigestMismatch)
  assert.is(e._tag, "DigestMismatch")
  if (e._tag !== "DigestMismatch") return
  assert.is(e.expected, wrong)
  assert.is(e.actual, b.digest)
  assert.match(e.message, /hashes to sha256:/)
})

test("a truncated gzip blob: DigestMismatch against the manifest, LayerRejected when the digest was of the broken bytes", async () => {
  const b = blobOf({ entries: [{ type: "file", path: "big", content: "x".repeat(200_000) }] })
  truncateSync(b.blob, statSync(b.blob).size - 100)
  const mismatch = await scanError({ path: b.blob, digest: b.digest })
  assert.is(mismatch._tag, "DigestMismatch")
  const e = await scanError({ path: b.blob, digest: sha256sum(b.blob) })
  assert.is(e._tag, "LayerRejected")
  assert.match(e.message, /gzip|truncated|end of file/i)
})

test("tee: gets the uncompressed tar byte for byte and is ended; on a digest mismatch it is destroyed, never ended", async () => {
  const b = blobOf({ entries: [{ type: "file", path: "big", content: "y".repeat(3_000_000) }, { type: "file", path: "small", content: "s" }] })
  const collect = (tee: PassThrough) => {
    const chunks: Buffer[] = []
    let ended = false
    tee.on("data", (c: Buffer) => chunks.push(c))
    tee.on("end", () => (ended = true))
    return { bytes: () => Buffer.concat(chunks), ended: () => ended }
  }
  const good = new PassThrough()
  const got = collect(good)
  const s = await Effect.runPromise(scanLayer({ path: b.blob, digest: b.digest, tee: good }))
  await new Promise((r) => setImmediate(r))
  assert.ok(got.ended(), "ended")
  assert.is(got.bytes().length, s.uncompressedSize)
  assert.is(`sha256:${createHash("sha256").update(got.bytes()).digest("hex")}`, s.diffId)

  const bad = new PassThrough()
  const seen = collect(bad)
  const e = await Effect.runPromise(Effect.flip(scanLayer({ path: b.blob, digest: `sha256:${"1".repeat(64)}`, tee: bad })))
  assert.is(e._tag, "DigestMismatch")
  assert.ok(bad.destroyed, "destroyed: its reader must not take the bytes for a whole layer")
  assert.not.ok(seen.ended(), "never ended")

  // a reader that gives up (ostree refusing the tar) does not stall or fail the scan
  const quitter = new PassThrough({ highWaterMark: 1024 })
  quitter.once("data", () => quitter.destroy())
  const alone = await Effect.runPromise(scanLayer({ path: b.blob, digest: b.digest, tee: quitter }))
  assert.is(alone.diffId, s.diffId)
})

const hostile: ReadonlyArray<{ readonly name: string; readonly spec: LayerSpec; readonly entry: string; readonly reason: RegExp }> = [
  { name: "a '..' component", spec: { writer: "own", entries: [{ type: "file", path: "../etc/passwd", content: "x" }] }, entry: "../etc/passwd", reason: /'\.\.' component/ },
  { name: "an absolute escape", spec: { writer: "own", entries: [{ type: "file", path: "/../../root/.ssh/authorized_keys" }] }, entry: "/../../root/.ssh/authorized_keys", reason: /'\.\.'/ },
  { name: "'..' in the middle", spec: { writer: "own", entries: [{ type: "dir", path: "a" }, { type: "file", path: "a/../../b" }] }, entry: "a/../../b", reason: /'\.\.'/ },
  { name: "the whiteout '.wh.'", spec: { writer: "own", entries: [{ type: "raw", header: { name: ".wh.", type: "file" } }] }, entry: ".wh.", reason: /whiteout of an empty/ },
  { name: "the whiteout '.wh..'", spec: { writer: "own", entries: [{ type: "dir", path: "etc" }, { type: "raw", header: { name: "etc/.wh..", type: "file" } }] }, entry: "etc/.wh..", reason: /'\.'/ },
  { name: "the whiteout '.wh...'", spec: { writer: "own", entries: [{ type: "raw", header: { name: ".wh...", type: "file" } }] }, entry: ".wh...", reason: /'\.\.'/ },
  { name: "a non-UTF-8 name", spec: { writer: "own", entries: [{ type: "raw", header: { name: Buffer.from([0x61, 0xff, 0x62]), type: "file" } }] }, entry: "a\\xffb", reason: /not UTF-8/ },
  { name: "a NUL in a PAX path", spec: { writer: "own", entries: [{ type: "raw", header: { name: "safe", type: "file", pax: { path: "evil\0name" } } }] }, entry: "evil\0name", reason: /NUL/ },
  { name: "a newline in a name", spec: { writer: "own", entries: [{ type: "file", path: "two\nlines" }] }, entry: "two\nlines", reason: /newline/ },
  {
    name: "an entry under a same-layer symlink",
    spec: { writer: "own", entries: [{ type: "symlink", path: "l", target: "/etc" }, { type: "file", path: "l/passwd", content: "root::0:0::/:/bin/sh\n" }] },
    entry: "l/passwd",
    reason: /parent "l" is a symlink in the same layer/,
  },
  { name: "an entry under a same-layer file", spec: { writer: "own", entries: [{ type: "file", path: "f" }, { type: "file", path: "f/x" }] }, entry: "f/x", reason: /not a directory in the same layer/ },
  { name: "a hardlink escaping the rootfs", spec: { writer: "own", entries: [{ type: "hardlink", path: "h", target: "../../etc/shadow" }] }, entry: "h", reason: /escapes the rootfs/ },
  { name: "a root that is a symlink", spec: { writer: "own", entries: [{ type: "raw", header: { name: "./", type: "symlink", linkname: "/" } }] }, entry: "./", reason: /type of the root/ },
  { name: "a directory named as a whiteout", spec: { writer: "own", entries: [{ type: "dir", path: ".wh.etc" }] }, entry: ".wh.etc/", reason: /must not be a directory/ },
  { name: "a symlink whose name holds ' -> '", spec: { writer: "own", entries: [{ type: "symlink", path: "usr -> etc", target: "/etc" }] }, entry: "usr -> etc", reason: /' -> '/ },
  { name: "a path that is both a directory and a file", spec: { writer: "own", entries: [{ type: "dir", path: "x" }, { type: "file", path: "x" }] }, entry: "x", reason: /appears twice/ },
  { name: "a directory with content", spec: { writer: "own", entries: [{ type: "raw", header: { name: "d/", type: "dir" }, content: "smuggled" }] }, entry: "d/", reason: /content/ },
]

for (const h of hostile) {
  test(`hostile layer, ${h.name}: LayerRejected naming the layer and the entry`, async () => {
    const b = blobOf(h.spec)
    const e = await scanError({ path: b.blob, digest: b.digest })
    assert.instance(e, LayerRejected)
    if (e._tag !== "LayerRejected") return
    assert.is(e.layer, b.digest)
    assert.is(e.entry, h.entry)
    assert.match(e.reason, h.reason)
    assert.match(e.message, /malformed or hostile; nothing was imported/)
  })
}

test("writeSanitizedTar on a hostile layer: LayerRejected, and no half-written tar is left", async () => {
  const b = blobOf({ writer: "own", entries: [{ type: "file", path: "ok", content: "x".repeat(100_000) }, { type: "fifo", path: "p" }, { type: "file", path: "../escape" }] })
  const out = path.join(work, "hostile-sanitized.tar")
  const e = await Effect.runPromise(Effect.flip(writeSanitizedTar({ path: b.blob, to: out, digest: b.digest })))
  assert.is(e._tag, "LayerRejected")
  assert.is(e.entry, "../escape")
  assert.is(e.layer, b.digest)
  assert.not.ok(existsSync(out), "the partial output was removed")
})

test("the opaque marker .wh..wh..opq and ordinary dotfiles are accepted", async () => {
  const b = blobOf({ entries: [{ type: "dir", path: "etc" }, { type: "opaque", path: "etc" }, { type: "file", path: "etc/.wh-not-a-whiteout" }, { type: "file", path: "..dots" }] })
  const s = await scan({ path: b.blob, digest: b.digest })
  assert.equal(s.entries.map((e) => e.path), ["etc", "etc/.wh..wh..opq", "etc/.wh-not-a-whiteout", "..dots"])
  assert.is(s.needsRewrite, false)
})

const tarLines = (tar: string) => execFileSync("tar", ["-tvf", tar]).toString().trim().split("\n").map((l) => l.replace(/^(\S+) \S+ +\S+ \S+ \S+ /, "$1 "))

test("a FIFO and devices: needsRewrite; ostree refuses the blob and takes the sanitized tar", async () => {
  const img = await buildImage(path.join(work, "devices"), [
    {
      entries: [
        { type: "dir", path: "dev" },
        { type: "char", path: "dev/null", major: 1, minor: 3 },
        { type: "block", path: "dev/sda", major: 8, minor: 0, mode: 0o660 },
        { type: "fifo", path: "run/initctl", mode: 0o600 },
        { type: "file", path: "etc/keep", content: "kept" },
      ],
    },
  ])
  const l = img.layers[0]!
  const s: LayerScan = await scan({ path: l.blob, digest: l.digest })
  assert.is(s.needsRewrite, true)
  assert.match(s.reasons.join("\n"), /device nodes or FIFOs/)
  assert.equal(s.devices, [
    { path: "dev/null", type: "char", mode: 0o666, uid: 0, gid: 0, devmajor: 1, devminor: 3 },
    { path: "dev/sda", type: "block", mode: 0o660, uid: 0, gid: 0, devmajor: 8, devminor: 0 },
    { path: "run/initctl", type: "fifo", mode: 0o600, uid: 0, gid: 0, devmajor: 0, devminor: 0 },
  ])
  const r = repo()
  const refused = commit(r, l.blob)
  assert.is.not(refused.status, 0, "ostree refuses the layer as it is")
  const out = path.join(work, "devices", "sanitized.tar")
  const w = await Effect.runPromise(writeSanitizedTar({ path: l.blob, to: out, digest: l.digest }))
  assert.equal(w.dropped, ["dev/null", "dev/sda", "run/initctl"])
  const ok = commit(r, out)
  assert.is(ok.status, 0, ok.stderr)
  assert.equal(ls(r).trim().split("\n").map((x) => x.split(" ").pop()), ["/", "/dev", "/etc", "/etc/keep", "/run"])
  // every other entry is copied as it was
  const original = path.join(work, "devices", "original.tar")
  writeFileSync(original, execFileSync("gunzip", ["-c", l.blob]))
  assert.equal(tarLines(out), tarLines(original).filter((x) => !/^[cbp]/.test(x)))
})

test("a hardlink to a file outside its tar: reported, dropped, and the sanitized tar commits", async () => {
  const b = blobOf({ writer: "own", entries: [{ type: "dir", path: "usr" }, { type: "dir", path: "usr/bin" }, { type: "hardlink", path: "usr/bin/b", target: "/usr/bin/a" }, { type: "file", path: "usr/bin/c", content: "c" }] })
  const s = await scan({ path: b.blob, digest: b.digest })
  assert.is(s.needsRewrite, true)
  assert.equal(s.externalHardlinks, [{ path: "usr/bin/b", target: "usr/bin/a" }])
  assert.match(s.reasons.join("\n"), /hardlinks to files not earlier/)
  const r = repo()
  assert.match(commit(r, b.blob).stderr, /hardlink/i, "ostree refuses the dangling hardlink")
  const out = path.join(work, "external.tar")
  const w = await Effect.runPromise(writeSanitizedTar({ path: b.blob, to: out }))
  assert.equal(w.externalHardlinks, s.externalHardlinks)
  assert.is(commit(r, out).status, 0)
  assert.match(ls(r), /\/usr\/bin\/c\n$/)
})

test("a hardlink to a file earlier in the same tar needs no rewrite", async () => {
  const img = await buildImage(path.join(work, "hardlinks"), [
    { entries: [{ type: "file", path: "bin/a", content: "same", mode: 0o755 }, { type: "hardlink", path: "bin/b", target: "bin/a" }] },
  ])
  const l = img.layers[0]!
  const s = await scan({ path: l.blob, digest: l.digest })
  assert.is(s.needsRewrite, false)
  assert.equal(s.entries.find((e) => e.path === "bin/b"), { path: "bin/b", type: "hardlink", mode: 0o755, uid: 0, gid: 0, size: 0, target: "bin/a" })
  const r = repo()
  assert.is(commit(r, l.blob).status, 0)
})

test("a whiteout stored as a char device is written as the empty file ostree keeps", async () => {
  const b = blobOf({ writer: "own", entries: [{ type: "dir", path: "etc" }, { type: "raw", header: { name: "etc/.wh.gone", type: "char", devmajor: 0, devminor: 0 } }] })
  const s = await scan({ path: b.blob, digest: b.digest })
  assert.is(s.needsRewrite, true)
  assert.equal(s.devices, [])
  const out = path.join(work, "whiteout-device.tar")
  const w = await Effect.runPromise(writeSanitizedTar({ path: b.blob, to: out }))
  assert.equal(w.converted, ["etc/.wh.gone"])
  const r = repo()
  assert.is(commit(r, out).status, 0)
  assert.match(ls(r), /-00644 0 0 +0 \/etc\/\.wh\.gone\n/)
})

test("the tar reader agrees with GNU tar on gnu, pax and ustar archives (long names, long links, UTF-8, hardlinks)", async () => {
  const dir = path.join(work, "formats")
  const long = "d".repeat(90)
  mkdirSync(path.join(dir, "src", long, "e".repeat(80)), { recursive: true })
  writeFileSync(path.join(dir, "src", long, "e".repeat(80), "file-with-a-long-name-" + "f".repeat(60)), "deep")
  writeFileSync(path.join(dir, "src", "héllo wörld"), "utf8")
  symlinkSync("t".repeat(140), path.join(dir, "src", "longlink"))
  for (const format of ["gnu", "pax", "ustar"]) {
    const tar = path.join(dir, `${format}.tar`)
    // ustar cannot hold the long link: GNU tar skips it and says so
    spawnSync("tar", [`--format=${format}`, "-cf", tar, "-C", path.join(dir, "src"), "."])
    const ours = (await listTar(createReadStream(tar))).map((e) => `${e.type === "dir" ? "d" : e.type === "symlink" ? "l" : "-"} ${e.path}${e.type === "symlink" ? ` -> ${e.linkname}` : ""}`)
    const theirs = tarLines(tar).map((x) => {
      const m = /^(\S)\S* (.*)$/.exec(x)!
      return `${m[1]} ${m[2]!.replace(/^\.\/?/, "").replace(/\/$/, "")}`
    })
    assert.equal(ours, theirs, format)
    assert.ok(ours.some((x) => x.includes("héllo wörld")), format)
  }
})

test("PAX global and local headers: global uid/gid apply to later entries, local records override them", async () => {
  const tar = Buffer.concat([
    tarEntry({ name: "before", type: "file" }),
    tarGlobalHeader({ uid: "1234", gid: "99" }),
    tarEntry({ name: "after", type: "file" }),
    tarEntry({ name: "short", type: "file", pax: { uid: "7", path: "overridden/by/pax" } }),
    tarEnd(),
  ])
  async function* one() {
    yield tar
  }
  const entries = await listTar(one())
  assert.equal(entries.map((e) => `${e.path} ${e.uid}:${e.gid}`), ["before 0:0", "after 1234:99", "overridden/by/pax 7:99"])
  // a copier keeps the global header, or later entries would change owner
  const kept: Buffer[] = []
  for await (const chunk of filterTar(one(), (e) => (e.path === "before" ? "drop" : "keep"))) kept.push(chunk)
  async function* copied() {
    yield Buffer.concat(kept)
  }
  assert.equal((await listTar(copied())).map((e) => e.uid), [1234, 7])
})

test("filterTar copies kept entries byte for byte and drops the others whole", async () => {
  const a = tarEntry({ name: `${"a".repeat(150)}`, type: "file" }, "first")
  const fifo = tarEntry({ name: "fifo", type: "fifo" })
  const c = tarEntry({ name: "c", type: "file", pax: { "SCHILY.xattr.user.k": "v" } }, "third".repeat(200))
  const original = Buffer.concat([a, fifo, c, tarEnd()])
  const chunks: Buffer[] = []
  // odd chunk sizes: records must not depend on where the stream breaks
  async function* pieces() {
    for (let i = 0; i < original.length; i += 77) yield original.subarray(i, i + 77)
  }
  for await (const chunk of filterTar(pieces(), (e) => (e.type === "fifo" ? "drop" : "keep"))) chunks.push(chunk)
  assert.ok(Buffer.concat(chunks).equals(Buffer.concat([a, c, tarEnd()])))
})

test.run()
