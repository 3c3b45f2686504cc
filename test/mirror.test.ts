// mirror: the offline mirror serves the fixture images as a user meets them, through skopeo and registries.conf.
import { suite } from "uvu"
import * as assert from "uvu/assert"
import * as Effect from "effect/Effect"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { makeSpawn, type RunOptions } from "../packages/core/src/Spawn.ts"
import { buildScript, defaultCacheDir, useMirror, type Mirror } from "./fixtures/mirror.ts"
import { loud } from "./fixtures/harness.ts"

const t = suite("mirror")
const spawn = makeSpawn()
let mirror: Mirror
let work: string

const run = (argv: ReadonlyArray<string>, options: RunOptions = {}) => Effect.runPromise(spawn.run(argv, options))
// skopeo 1.9 ignores $CONTAINERS_REGISTRIES_CONF: the file is always passed by flag
const skopeo = (...args: ReadonlyArray<string>) => run(["skopeo", "--registries-conf", mirror.registriesConf, ...args])
const inspect = async (ref: string) => JSON.parse((await skopeo("inspect", "--no-tags", ref)).stdout) as { Name: string; Digest: string; Layers: string[]; Labels: Record<string, string> | null }
const config = async (ref: string) =>
  JSON.parse((await skopeo("inspect", "--config", ref)).stdout) as { config: { Cmd?: string[]; Entrypoint?: string[]; Env?: string[]; Labels?: Record<string, string>; StopSignal?: string; ExposedPorts?: Record<string, object>; WorkingDir?: string; Volumes?: Record<string, object> } }

// copies an image into a fresh oci: layout under work/; returns the layout and its one manifest
const copyToLayout = async (ref: string, name: string) => {
  const layout = path.join(work, `layout-${name}`)
  await skopeo("copy", "--quiet", ref, `oci:${layout}:${name}`)
  const blob = (digest: string) => path.join(layout, "blobs", "sha256", digest.replace(/^sha256:/, ""))
  const index = JSON.parse(readFileSync(path.join(layout, "index.json"), "utf8")) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> }
  const entry = index.manifests.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === name)
  assert.ok(entry, `index.json of ${layout} names ${name}`)
  const manifest = JSON.parse(readFileSync(blob(entry.digest), "utf8")) as { layers: Array<{ digest: string }> }
  const listLayer = async (i: number) => {
    const layer = manifest.layers[i]
    assert.ok(layer, `${ref} has a layer ${i}`)
    return (await run(["tar", "-tzf", blob(layer.digest)])).stdout.split("\n").filter(Boolean)
  }
  return { layout, digest: entry.digest, manifest, listLayer }
}

const layoutDigests = (cacheDir: string) => {
  const index = JSON.parse(readFileSync(path.join(cacheDir, "oci", "index.json"), "utf8")) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> }
  return Object.fromEntries(index.manifests.map((m) => [m.annotations?.["org.opencontainers.image.ref.name"] ?? "", m.digest]))
}

t.before(loud("before", async () => {
  mirror = await useMirror()
  work = mkdtempSync(path.join(os.tmpdir(), "sc-test-mirror-"))
}))
t.after(async () => {
  rmSync(work, { recursive: true, force: true })
  await mirror.stop()
})

t("redis:alpine resolves through the mirror with its Cmd, Entrypoint and three layers", async () => {
  const info = await inspect("docker://redis:alpine")
  assert.is(info.Name, "docker.io/library/redis")
  assert.is(info.Layers.length, 3)
  const { config: c } = await config("docker://redis:alpine")
  assert.equal(c.Cmd, ["redis-server"])
  assert.equal(c.Entrypoint, ["docker-entrypoint.sh"])
  assert.equal(c.ExposedPorts, { "6379/tcp": {} })
  assert.equal(c.Volumes, { "/data": {} })
  assert.is(c.WorkingDir, "/data")
  assert.ok(c.Env?.some((e) => /^REDIS_VERSION=\d+\.\d+\.\d+$/.test(e)), `REDIS_VERSION in ${c.Env}`)
})

t("the registries.conf mirrors each upstream, insecure, on this port", () => {
  const text = readFileSync(mirror.registriesConf, "utf8")
  for (const upstream of ["docker.io", "quay.io", "registry.fedoraproject.org"]) {
    assert.match(text, `prefix = "${upstream}"`)
    assert.match(text, `location = "127.0.0.1:${mirror.port}/${upstream}"`)
  }
  assert.is(mirror.env["SYSCONTAINERS_MIRROR_PORT"], String(mirror.port))
  assert.is(mirror.env["CONTAINERS_REGISTRIES_CONF"], mirror.registriesConf)
})

t("redis:alpine copies into an oci: layout that names it, digest unchanged", async () => {
  const info = await inspect("docker://redis:alpine")
  const copy = await copyToLayout("docker://redis:alpine", "redis")
  assert.is(copy.digest, info.Digest)
  assert.is(copy.manifest.layers.length, 3)
})

t("nginx:alpine shares redis's first layer and stops with SIGQUIT", async () => {
  const redis = await inspect("docker://redis:alpine")
  const nginx = await inspect("docker://nginx:alpine")
  assert.is(nginx.Layers.length, 2)
  assert.is(nginx.Layers[0], redis.Layers[0])
  assert.is.not(nginx.Layers[1], redis.Layers[1])
  const { config: c } = await config("docker://nginx:alpine")
  assert.equal(c.Cmd, ["nginx", "-g", "daemon off;"])
  assert.is(c.StopSignal, "SIGQUIT")
  assert.equal(c.ExposedPorts, { "80/tcp": {} })
})

t("redis's layers delete a lower file (.wh.) and make a lower directory opaque (.wh..wh..opq)", async () => {
  const copy = await copyToLayout("docker://redis:alpine", "redis-markers")
  const [base, second, third] = [await copy.listLayer(0), await copy.listLayer(1), await copy.listLayer(2)]
  // what the markers hide is really below them
  assert.ok(base.includes("etc/motd"), "the base has /etc/motd")
  assert.ok(base.includes("etc/redis-placeholder/from-base-1.conf"), "the base fills /etc/redis-placeholder")
  assert.ok(second.includes("etc/.wh.motd"), `layer 2 whites out /etc/motd: ${second.join(" ")}`)
  assert.ok(third.includes("etc/redis-placeholder/.wh..wh..opq"), `layer 3 makes the directory opaque: ${third.join(" ")}`)
  assert.ok(third.includes("etc/redis-placeholder/redis.conf"))
  assert.ok(second.includes("usr/bin/redis-server"))
  assert.ok(third.includes("usr/local/bin/docker-entrypoint.sh"))
})

t("f27/etcd and f27/flannel are system containers with their /exports", async () => {
  for (const [name, defaults] of [["etcd", "ETCD_DATA_DIR"], ["flannel", "FLANNELD_ETCD_PREFIX"]] as const) {
    const ref = `docker://registry.fedoraproject.org/f27/${name}`
    const info = await inspect(ref)
    assert.is(info.Name, `registry.fedoraproject.org/f27/${name}`)
    assert.is(info.Labels?.["atomic.type"], "system")
    const copy = await copyToLayout(ref, name)
    const files = await copy.listLayer(copy.manifest.layers.length - 1)
    for (const f of ["manifest.json", "config.json.template", "service.template", "tmpfiles.template"]) {
      assert.ok(files.includes(`exports/${f}`), `${name} has /exports/${f}`)
    }
    // manifest.json is shaped like Fedora's: a version and the template variables' defaults
    const layer = copy.manifest.layers.at(-1)
    assert.ok(layer)
    const manifestJson = (await run(["tar", "-xzOf", path.join(copy.layout, "blobs", "sha256", layer.digest.slice(7)), "exports/manifest.json"])).stdout
    const parsed = JSON.parse(manifestJson) as { version: string; defaultValues: Record<string, string> }
    assert.is(parsed.version, "1.0")
    assert.ok(defaults in parsed.defaultValues, `${name}'s defaultValues has ${defaults}`)
  }
})

t("busybox resolves as a short name: one layer", async () => {
  const info = await inspect("docker://busybox")
  assert.is(info.Name, "docker.io/library/busybox")
  assert.is(info.Layers.length, 1)
})

t("an image the mirror lacks fails at once with manifest unknown, not after a network timeout", async () => {
  const started = Date.now()
  const r = await run(["skopeo", "--registries-conf", mirror.registriesConf, "inspect", "--no-tags", "docker://syscontainers-no-such-image:latest"], { okExitCodes: [1] })
  assert.is(r.exitCode, 1)
  assert.match(r.stderr, "manifest unknown")
  assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`)
})

t("a second build.sh run is a no-op: silent, same key, same digests as the registry serves", async () => {
  if (!existsSync(path.join(defaultCacheDir, "oci.key"))) return // a mirror from another cache dir: nothing to compare
  const key = readFileSync(path.join(defaultCacheDir, "oci.key"), "utf8")
  const before = layoutDigests(defaultCacheDir)
  const r = await run(["bash", buildScript, defaultCacheDir])
  assert.is(r.stdout + r.stderr, "")
  assert.is(readFileSync(path.join(defaultCacheDir, "oci.key"), "utf8"), key)
  assert.equal(layoutDigests(defaultCacheDir), before)
  assert.is((await inspect("docker://redis:alpine")).Digest, before["redis-alpine"])
})

t("a build from scratch elsewhere gives the very same digests", async () => {
  const other = path.join(work, "cache")
  const r = await run(["bash", buildScript, other])
  assert.match(r.stdout, "images: redis-alpine sha256:")
  const digests = layoutDigests(other)
  for (const tag of ["busybox-latest", "redis-alpine", "nginx-alpine", "f27-etcd", "f27-flannel"]) assert.ok(digests[tag], `built ${tag}`)
  assert.is(digests["redis-alpine"], (await inspect("docker://redis:alpine")).Digest)
  assert.is(digests["f27-flannel"], (await inspect("docker://registry.fedoraproject.org/f27/flannel")).Digest)
  if (existsSync(path.join(defaultCacheDir, "oci.key"))) assert.equal(digests, layoutDigests(defaultCacheDir))
})

t.run()
