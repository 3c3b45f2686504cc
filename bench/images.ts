// images: the bench's own larger images (many small files, a few big ones, the scaling set), built with GNU tar + umoci and pushed to the mirror.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { readFile } from "node:fs/promises"
import path from "node:path"
import { buildImage, type EntrySpec, type LayerSpec } from "../test/fixtures/layers.ts"
import { run } from "./proc.ts"

/** A bench image: where its OCI layout is, and the names it is pulled by. */
export interface BenchImage {
  readonly key: string
  /** "LAYOUT:TAG", for umoci and skopeo's oci: transport. */
  readonly layoutRef: string
  readonly layout: string
  /** What `syscontainers pull` takes: docker://NAME:TAG, resolved through the registries.conf. */
  readonly docker: string
  /** What podman takes: fully qualified, no short-name lookup. */
  readonly qualified: string
  readonly files: number
}

// deterministic bytes (xorshift32): rebuilds give the same layers, and nothing dedupes by accident
const prng = (seed: number) => {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x
  }
}

/** `n` small files (64 B to 4 KiB of text), 100 to a directory, each unlike the others. */
export const smallFiles = (n: number, prefix: string, seed = 1): EntrySpec[] => {
  const next = prng(seed)
  const out: EntrySpec[] = []
  for (let i = 0; i < n; i++) {
    const size = 64 + (next() % 4032)
    const words: string[] = [`${prefix} file ${i}`]
    let len = words[0]!.length
    while (len < size) {
      const w = next().toString(36)
      words.push(w)
      len += w.length + 1
    }
    out.push({ type: "file", path: `${prefix}/d${String(Math.floor(i / 100)).padStart(4, "0")}/f${String(i).padStart(6, "0")}.txt`, content: words.join(" ").slice(0, size) + "\n" })
  }
  return out
}

/** `count` files of `mb` MiB, about half compressible like binaries are: random blocks and text blocks. */
export const bigFiles = (count: number, mb: number, prefix: string, seed = 7): EntrySpec[] => {
  const next = prng(seed)
  const out: EntrySpec[] = []
  for (let f = 0; f < count; f++) {
    const buf = Buffer.alloc(mb << 20)
    for (let off = 0; off < buf.length; off += 4096) {
      const end = Math.min(off + 4096, buf.length)
      if ((off >> 12) % 2 === 0) for (let i = off; i < end; i += 4) buf.writeUInt32LE(next(), i)
      else buf.write(`block ${f}:${off} `.repeat(256), off, end - off, "latin1")
    }
    out.push({ type: "file", path: `${prefix}/blob${f}.bin`, content: buf, mode: 0o755 })
  }
  return out
}

const build = async (dir: string, key: string, layers: ReadonlyArray<LayerSpec>, tag: string, name: string): Promise<BenchImage> => {
  const img = await buildImage(dir, layers, tag)
  // the staged trees and tars were only for umoci
  rmSync(path.join(dir, "tars"), { recursive: true, force: true })
  const files = layers.reduce((n, l) => n + l.entries.filter((e) => e.type === "file").length, 0)
  return { key, layoutRef: `${img.layout}:${tag}`, layout: img.layout, docker: `docker://${name}:${tag}`, qualified: `docker.io/library/${name}:${tag}`, files }
}

/** The bulk image: one layer of ~5,000 small files, one of five 20 MiB files. */
export const buildBulk = (dir: string, o: { readonly smallFiles?: number; readonly bigFiles?: number } = {}) =>
  build(
    path.join(dir, "bulk"),
    "bulk",
    [{ entries: smallFiles(o.smallFiles ?? 5000, "usr/share/bench") }, { entries: bigFiles(o.bigFiles ?? 5, 20, "usr/lib/bench") }],
    "latest",
    "bench-bulk",
  )

/** One scaling image: a single layer of `n` small files. */
export const buildScale = (dir: string, n: number) =>
  build(path.join(dir, `scale-${n}`), `scale-${n}`, [{ entries: smallFiles(n, "srv/scale", n) }], `n${n}`, "bench-scale")

/** Pushes the image to the mirror under its docker.io/library name. */
export const push = async (image: BenchImage, o: { readonly port: number; readonly dir: string }) => {
  mkdirSync(o.dir, { recursive: true })
  const policy = path.join(o.dir, "policy.json")
  // our own trust policy: pushing local images must not depend on /etc/containers/policy.json
  writeFileSync(policy, JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }))
  await run(["skopeo", "--policy", policy, "copy", "--quiet", "--dest-tls-verify=false", `oci:${image.layoutRef}`, `docker://127.0.0.1:${o.port}/${image.qualified}`])
}

/** Paths of the layer blobs of an OCI layout's tag, bottom-up, with their digests. */
export const layerBlobs = async (layout: string, tag: string): Promise<Array<{ readonly digest: string; readonly path: string }>> => {
  const index = JSON.parse(await readFile(path.join(layout, "index.json"), "utf8")) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> }
  const desc = index.manifests.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === tag) ?? index.manifests[0]!
  const blob = (d: string) => path.join(layout, "blobs", ...d.split(":"))
  const manifest = JSON.parse(await readFile(blob(desc.digest), "utf8")) as { layers: Array<{ digest: string }> }
  return manifest.layers.map((l) => ({ digest: l.digest, path: blob(l.digest) }))
}

/** Number of entries (files, dirs, links) below `dir`, for per-file costs. */
export const countEntries = (dir: string): number => {
  let n = 0
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      n++
      if (e.isDirectory()) walk(path.join(d, e.name))
    }
  }
  walk(dir)
  return n
}
