// Pull: docker://redis:alpine through the offline mirror into ostree, laid out like the old ostree transport.
import { suite } from "uvu"
import * as assert from "uvu/assert"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { createHash } from "node:crypto"
import { cpSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs"
import path from "node:path"
import * as Ostree from "../packages/core/src/Ostree.ts"
import { pull, sourceDigest } from "../packages/core/src/Pull.ts"
import * as Images from "../packages/core/src/Images.ts"
import { Spawn, makeSpawn } from "../packages/core/src/Spawn.ts"
import { CommandFailed } from "../packages/core/src/Errors.ts"
import { cleanupTemps, failure, run, sh, skopeo, tempDir, loud } from "./fixtures/harness.ts"
import { useMirror, type Mirror } from "./fixtures/mirror.ts"
import { imageSpecValidator } from "./fixtures/ociSchemas.ts"

const t = suite("Pull")
let mirror: Mirror
let repoDir: string

const ostreeRefs = (dir: string) => sh(["ostree", "refs", `--repo=${dir}`]).then((o) => o.split("\n").filter(Boolean).sort())
const metaRaw = (dir: string, ref: string, key: string) => sh(["ostree", "show", `--repo=${dir}`, `--print-metadata-key=${key}`, ref]).then((s) => s.trim())

t.before(loud("before", async () => {
  mirror = await useMirror()
  repoDir = path.join(tempDir("pull"), "ostree")
}))
t.after(async () => {
  cleanupTemps()
  await mirror.stop()
})

t("the seed's layout: ociimage/redis_3Alatest, one ref per layer and for the config", async () => {
  const r = await run(Effect.gen(function* () {
    const repo = yield* Ostree.init({ path: repoDir })
    return yield* pull({ from: "docker://redis:alpine", name: "redis", repo })
  }))
  assert.is(r.skipped, false)
  assert.is(r.image.manifest.layers.length, 3)
  const refs = await ostreeRefs(repoDir)
  const blobs = [r.image.manifest.config, ...r.image.manifest.layers].map((d) => `ociimage/${d.digest.slice(7)}`)
  assert.equal(refs, ["ociimage/redis_3Alatest", ...blobs].sort())
  // what the seed does next: ostree cat the config and read .config.Cmd
  const config = JSON.parse(await sh(["ostree", "cat", `--repo=${repoDir}`, `ociimage/${r.image.manifest.config.digest.slice(7)}`, "/content"]))
  assert.equal(config.config.Cmd, ["redis-server"])
  assert.equal(config.config.Entrypoint, ["docker-entrypoint.sh"])
})

t("image metadata: docker.manifest is the stored manifest, docker.digest its sha256, all strings", async () => {
  const manifestFile = await sh(["ostree", "cat", `--repo=${repoDir}`, "ociimage/redis_3Alatest", "/manifest.json"])
  const repo = await run(Ostree.open(repoDir))
  const manifestMeta = await run(Ostree.metadata(repo, "ociimage/redis_3Alatest", "docker.manifest"))
  assert.is(manifestMeta, manifestFile)
  const digest = await run(Ostree.metadata(repo, "ociimage/redis_3Alatest", "docker.digest"))
  assert.is(digest, `sha256:${createHash("sha256").update(manifestFile).digest("hex")}`)
  // GVariant prints strings quoted: a number stored as a number would print bare
  const manifest = JSON.parse(manifestFile)
  for (const layer of manifest.layers) {
    const ref = `ociimage/${layer.digest.slice(7)}`
    assert.is(await metaRaw(repoDir, ref, "docker.size"), `'${layer.size}'`)
    assert.match(await metaRaw(repoDir, ref, "docker.uncompressed_size"), /^'\d+'$/)
    assert.match(await metaRaw(repoDir, ref, "docker.uncompressed_digest"), /^'sha256:[0-9a-f]{64}'$/)
  }
  const config = JSON.parse(await sh(["ostree", "cat", `--repo=${repoDir}`, `ociimage/${manifest.config.digest.slice(7)}`, "/content"]))
  assert.equal(
    manifest.layers.map((l: { digest: string }) => l.digest).length,
    config.rootfs.diff_ids.length,
  )
  // the uncompressed digests we recorded are the image's diff_ids
  for (const [i, layer] of manifest.layers.entries())
    assert.is(await metaRaw(repoDir, `ociimage/${layer.digest.slice(7)}`, "docker.uncompressed_digest"), `'${config.rootfs.diff_ids[i]}'`)
})

t("the manifest and config we stored pass the OCI image-spec schemas", async () => {
  const image = await run(Effect.flatMap(Ostree.open(repoDir), (repo) => Images.get(repo, "redis")))
  const manifestOk = imageSpecValidator("image-manifest-schema.json")
  assert.ok(manifestOk(image.manifest), JSON.stringify(manifestOk.errors))
  const configOk = imageSpecValidator("config-schema.json")
  assert.ok(configOk(image.config), JSON.stringify(configOk.errors))
  assert.not.ok(manifestOk({ ...image.manifest, layers: [{ digest: "nope" }] }), "the schema must reject a broken manifest")
})

t("the repo's caches are extras: a pull whose cache writes fail still pulls, and names the image with all its layers", async () => {
  const dir = path.join(tempDir("pull-nocache"), "ostree")
  // a file where the caches' directories go: every cache write fails
  await run(Ostree.init({ path: dir }))
  mkdirSync(path.join(dir, "syscontainers"), { recursive: true })
  for (const d of ["images", "layers"]) writeFileSync(path.join(dir, "syscontainers", d), "not a directory")
  const r = await run(Effect.flatMap(Ostree.open(dir), (repo) => pull({ from: "docker://redis:alpine", name: "redis", repo })))
  assert.is(r.layersImported, 3)
  const refs = await ostreeRefs(dir)
  assert.ok(refs.includes("ociimage/redis_3Alatest"))
  for (const l of r.image.manifest.layers) assert.ok(refs.includes(`ociimage/${l.digest.slice(7)}`), l.digest)
})

t("a second pull of the same manifest is skipped", async () => {
  const before = statSync(path.join(repoDir, "refs/heads/ociimage/redis_3Alatest")).mtimeMs
  const r = await run(Effect.flatMap(Ostree.open(repoDir), (repo) => pull({ from: "docker://redis:alpine", name: "redis", repo })))
  assert.is(r.skipped, true)
  assert.is(r.layersImported, 0)
  assert.is(statSync(path.join(repoDir, "refs/heads/ociimage/redis_3Alatest")).mtimeMs, before)
})

t("a digest fetched ahead decides the skip, but only for its own source: another's is refused, nothing written", async () => {
  const repo = await run(Ostree.open(repoDir))
  const ahead = await run(sourceDigest("docker://redis:alpine"))
  assert.is(ahead.digest, await run(Ostree.metadata(repo, "ociimage/redis_3Alatest", "syscontainers.source-digest")))
  const r = await run(pull({ from: "docker://redis:alpine", name: "redis", repo, sourceDigest: Effect.succeed(ahead) }))
  assert.is(r.skipped, true)
  // nginx's digest handed to a pull of redis would skip it, or record a digest redis does not have
  const nginx = await run(sourceDigest("docker://nginx:alpine"))
  const before = await ostreeRefs(repoDir)
  const e = await failure(pull({ from: "docker://redis:alpine", name: "redis", repo, sourceDigest: Effect.succeed(nginx) }))
  assert.is(e._tag, "InvalidInput")
  assert.match(e.message, /nginx:alpine/)
  assert.equal(await ostreeRefs(repoDir), before)
})

t("a layer already present is not imported again (nginx shares redis's base layer)", async () => {
  const r = await run(Effect.flatMap(Ostree.open(repoDir), (repo) => pull({ from: "docker://nginx:alpine", name: "nginx", repo })))
  assert.is(r.layersReused, 1)
  assert.is(r.layersImported, r.image.manifest.layers.length - 1)
  assert.ok((await ostreeRefs(repoDir)).includes("ociimage/nginx_3Alatest"))
})

t("a name pulled again from another image: the old image's own layers and config go with the name; shared ones stay", async () => {
  const dir = path.join(tempDir("moving"), "ostree")
  const first = await run(Effect.flatMap(Ostree.init({ path: dir }), (repo) => pull({ from: "docker://redis:alpine", name: "moving", repo })))
  await run(Effect.flatMap(Ostree.open(dir), (repo) => pull({ from: "docker://nginx:alpine", name: "keeps-base", repo })))
  const then = await run(Effect.flatMap(Ostree.open(dir), (repo) => pull({ from: "docker://busybox", name: "moving", repo })))
  const refs = await ostreeRefs(dir)
  const blob = (d: string) => `ociimage/${d.slice(7)}`
  const [base, ...redisOwn] = first.image.manifest.layers.map((l) => l.digest)
  for (const d of [first.image.manifest.config.digest, ...redisOwn]) assert.not.ok(refs.includes(blob(d)), `redis's own ${d} went`)
  assert.ok(refs.includes(blob(base!)), "the base layer nginx shares stays")
  for (const d of [then.image.manifest.config.digest, ...then.image.manifest.layers.map((l) => l.digest)]) assert.ok(refs.includes(blob(d)))
  assert.equal(await run(Effect.flatMap(Ostree.open(dir), (repo) => Images.list(repo))), ["keeps-base:latest", "moving:latest"])
  assert.match(await sh(["ostree", "fsck", `--repo=${dir}`]), /no errors found/)
})

t("an oci: layout is a source too; the default name is the layout's", async () => {
  const layout = path.join(tempDir("layout"), "l")
  await sh([...skopeo(), "copy", "--quiet", "docker://busybox", `oci:${layout}:bb`])
  const r = await run(Effect.flatMap(Ostree.open(repoDir), (repo) => pull({ from: `oci:${layout}:bb`, repo })))
  assert.is(r.image.name, "l:bb")
  assert.ok((await ostreeRefs(repoDir)).includes("ociimage/l_3Abb"))
})

t("unknown transport: UnknownTransport, nothing written", async () => {
  const before = await ostreeRefs(repoDir)
  const e = await failure(Effect.flatMap(Ostree.open(repoDir), (repo) => pull({ from: "ftp://x/y", repo })))
  assert.is(e._tag, "UnknownTransport")
  assert.match(e.message, /ftp/)
  assert.equal(await ostreeRefs(repoDir), before)
})

t("missing image: ImageNotFound naming it, nothing written", async () => {
  const before = await ostreeRefs(repoDir)
  const e = await failure(Effect.flatMap(Ostree.open(repoDir), (repo) => pull({ from: "docker://nosuchimage:latest", repo })))
  assert.is(e._tag, "ImageNotFound")
  assert.match(e.message, /nosuchimage/)
  assert.equal(await ostreeRefs(repoDir), before)
  assert.equal(readdirSync(path.join(repoDir, "tmp")).filter((f) => f.startsWith("syscontainers-")), [])
})

t("bad name: InvalidInput before anything is fetched", async () => {
  const e = await failure(Effect.flatMap(Ostree.open(repoDir), (repo) => pull({ from: "docker://busybox", name: "has space", repo })))
  assert.is(e._tag, "InvalidInput")
  assert.match(e.message, /has space/)
})

t("corrupt blob: the pull fails with a digest error and leaves no refs", async () => {
  const layout = path.join(tempDir("corrupt"), "l")
  await sh([...skopeo(), "copy", "--quiet", "docker://redis:alpine", `oci:${layout}:r`])
  const index = JSON.parse(readFileSync(path.join(layout, "index.json"), "utf8"))
  const manifest = JSON.parse(readFileSync(path.join(layout, "blobs/sha256", index.manifests[0].digest.slice(7)), "utf8"))
  const blob = path.join(layout, "blobs/sha256", manifest.layers[2].digest.slice(7))
  const bytes = readFileSync(blob)
  bytes[bytes.length - 20] = (bytes[bytes.length - 20] ?? 0) ^ 0xff
  writeFileSync(blob, bytes)
  const fresh = path.join(tempDir("corrupt-repo"), "ostree")
  const e = await failure(Effect.flatMap(Ostree.init({ path: fresh }), (repo) => pull({ from: `oci:${layout}:r`, name: "broken", repo })))
  assert.ok(["DigestMismatch", "CommandFailed"].includes(e._tag), e._tag)
  assert.match(e.message, /digest|sha256/i)
  assert.equal(await ostreeRefs(fresh), [])
})

t("a repo in another mode: RepoMismatch", async () => {
  const e = await failure(Ostree.init({ path: repoDir, mode: "bare" }))
  assert.is(e._tag, "RepoMismatch")
  assert.match(e.message, /bare-user/)
})

t("ostree's staging race (2022.7): a commit failing with it at its start goes again; a streamed layer goes in from its file", async () => {
  // the race itself is rare (another commit deletes its staging directory between this one's
  // readdir and opendir): the first streamed commit and the first commit of a directory fail as it does
  const real = makeSpawn()
  const raced = new Set<string>()
  const race = (kind: string, argv: ReadonlyArray<string>) => {
    if (raced.has(kind)) return undefined
    raced.add(kind)
    return Effect.fail(new CommandFailed({ argv, exitCode: 1, signal: null, stderrTail: "error: opendir(staging-0fea382c-5486-4895-8c35-7376347b49a5-o76tRU): No such file or directory\n" }))
  }
  const seen: string[] = []
  const racing = Spawn.of({
    ...real,
    run: (argv, o) => {
      if (argv[1] === "commit") seen.push(argv.find((a) => a.startsWith("--tree=")) ?? "")
      const fail = argv[1] !== "commit" ? undefined : o?.input !== undefined ? race("stream", argv) : argv.some((a) => a.startsWith("--tree=dir=")) ? race("dir", argv) : undefined
      return fail ?? real.run(argv, o)
    },
  })
  const dir = path.join(tempDir("pull-race"), "ostree")
  const r = await Effect.runPromise(
    Effect.flatMap(Ostree.init({ path: dir }), (repo) => pull({ from: "docker://redis:alpine", name: "redis", repo })).pipe(Effect.provideService(Spawn, racing)),
  )
  assert.equal([...raced].sort(), ["dir", "stream"], "both failures happened")
  assert.is(r.image.manifest.layers.length, 3)
  const big = r.image.manifest.layers.reduce((a, b) => (b.size > a.size ? b : a))
  assert.ok(seen.includes("--tree=tar="), "the streamed commit (standard input) was tried")
  assert.ok(seen.some((t) => t.endsWith(big.digest.slice(7))), "then the big layer's blob went in from its file")
  // every layer, the config and the image are named, as in an unraced pull
  const refs = await ostreeRefs(dir)
  assert.equal(refs, [...r.image.manifest.layers.map((l) => `ociimage/${l.digest.slice(7)}`), `ociimage/${r.image.manifest.config.digest.slice(7)}`, "ociimage/redis_3Alatest"].sort())
})

t("skopeo missing: ToolMissing names the Debian package", async () => {
  // the real Spawn, asked for a skopeo that is not on this machine: it cannot start (ENOENT)
  const real = makeSpawn()
  const fake = Spawn.of({ ...real, run: (argv, o) => real.run(argv[0] === "skopeo" ? ["/nonexistent/bin/skopeo", ...argv.slice(1)] : argv, o) })
  const r = await Effect.runPromise(
    Effect.flatMap(Ostree.open(repoDir), (repo) => pull({ from: "docker://busybox", name: "bb2", repo, force: true })).pipe(Effect.flip, Effect.provide(Layer.succeed(Spawn, fake))),
  )
  assert.is(r._tag, "ToolMissing")
  assert.is((r as { debianPackage: string }).debianPackage, "skopeo")
  assert.match(r.message, /apt-get install skopeo/)
})

t.run()
