// Pull: any skopeo source into the ostree repo, laid out like containers/image's old ostree transport.
import * as Effect from "effect/Effect"
import { createHash, randomBytes } from "node:crypto"
import { existsSync } from "node:fs"
import { mkdir, readFile, rm, writeFile } from "node:fs/promises"
import path from "node:path"
import { PassThrough } from "node:stream"
import * as Ostree from "./Ostree.ts"
import type { Repo } from "./Ostree.ts"
import * as Skopeo from "./Skopeo.ts"
import { blobRef, checkImageName, imageRef, isDigest, withTag } from "./OstreeRefs.ts"
import { parseSource, type SourceRef } from "./ImageRef.ts"
import { DigestMismatch, InvalidInput } from "./Errors.ts"
import type { CommandFailed, ImageNotFound, ToolMissing, UnknownTransport } from "./Errors.ts"
import type { Spawn } from "./Spawn.ts"
import type { Descriptor, ImageConfigBlob, ImageManifest } from "./ImageConfig.ts"
import * as Images from "./Images.ts"
import * as RepoLock from "./RepoLock.ts"
import type { Image } from "./Images.ts"
import { scanLayer, writeSanitizedTar } from "./internal/layerScan.ts"
import type { DeviceEntry, ExternalHardlink } from "./internal/layerScan.ts"

/** Commit metadata of a layer: what its ostree commit cannot hold (devices, implicit parents, outside hardlinks). */
export const layerExtrasKey = "syscontainers.layer-extras"

/** The value of layerExtrasKey. */
export interface LayerExtras {
  readonly devices: ReadonlyArray<DeviceEntry>
  readonly implicitDirs: ReadonlyArray<string>
  readonly externalHardlinks: ReadonlyArray<ExternalHardlink>
}

/** What a pull reports while it runs. */
export type PullEvent =
  | { readonly kind: "fetch"; readonly source: string }
  | { readonly kind: "fetched"; readonly layers: number; readonly bytes: number }
  | { readonly kind: "layer"; readonly digest: string; readonly size: number; readonly state: "reused" | "imported"; readonly done: number; readonly total: number }
  | { readonly kind: "unchanged"; readonly digest: string }
  /** Another writer holds the repo (who, and what it does): the pull waits for it. */
  | { readonly kind: "waiting"; readonly holder: string }
  | { readonly kind: "done"; readonly image: string; readonly digest: string }

/**
 * Layers this big (compressed) stream into ostree as they are scanned; a smaller one is committed
 * from its blob after the scan, since the streamed path's second commit costs more than it saves.
 */
const streamFrom = 1 << 20

/** What `pull` takes. */
export interface PullOptions {
  readonly from: string
  /** Name in the repo (`redis` → `ociimage/redis_3Alatest`); defaults to the source's short name. */
  readonly name?: string
  readonly repo: Repo
  readonly registriesConf?: string
  /** Layers imported at once. */
  readonly concurrency?: number
  /** Re-import even when the repo already holds the source's manifest. */
  readonly force?: boolean
  readonly onProgress?: (e: PullEvent) => void
  /**
   * The source manifest's digest, when the caller started fetching it earlier (`sourceDigest`,
   * begun while other work ran); fetched here otherwise. It must be this pull's source, through
   * this pull's registries.conf: another is refused (InvalidInput), as it would decide the skip.
   */
  readonly sourceDigest?: Effect.Effect<SourceDigest, SourceDigestError>
}

/** A source's manifest digest, with what it was fetched for. */
export interface SourceDigest {
  readonly reference: string
  readonly registriesConf: string | undefined
  readonly digest: string
}

/** Why the source's manifest could not be fetched. */
export type SourceDigestError = InvalidInput | UnknownTransport | ImageNotFound | CommandFailed | ToolMissing

/**
 * The digest of the manifest `from` names (`skopeo inspect --raw`: one small fetch, no blob), what
 * decides whether a pull has anything to do. It reads and changes nothing, so it may run ahead.
 */
export const sourceDigest = Effect.fn("Pull.sourceDigest")(function* (from: string, o: { readonly registriesConf?: string } = {}) {
  const source = parseSource(from)
  if ("_tag" in source) return yield* Effect.fail(source)
  const raw = yield* Skopeo.rawManifest(source, o.registriesConf ? { registriesConf: o.registriesConf } : {})
  return { reference: source.reference, registriesConf: o.registriesConf, digest: sha256(raw) } satisfies SourceDigest
})

/** The digest fetched ahead, if it is this source's through this registries.conf. */
const aheadFor = (source: SourceRef, o: PullOptions, ahead: Effect.Effect<SourceDigest, SourceDigestError>) =>
  Effect.flatMap(ahead, (d) =>
    d.reference === source.reference && d.registriesConf === o.registriesConf
      ? Effect.succeed(d.digest)
      : Effect.fail(new InvalidInput({ input: `${d.reference} (its digest, fetched ahead)`, reason: `this pull is of ${source.reference}${o.registriesConf ? ` through ${o.registriesConf}` : ""}`, fix: "fetch the digest ahead with the pull's own source and registriesConf" })),
  )

/** What a pull did, for reports and benchmarks. */
export interface PullResult {
  readonly image: Image
  readonly skipped: boolean
  readonly layersImported: number
  readonly layersReused: number
  readonly bytesImported: number
  readonly bytesReused: number
}

const sha256 = (data: Buffer | string) => `sha256:${createHash("sha256").update(data).digest("hex")}`

const blobPath = (layout: string, digest: string) => path.join(layout, "blobs", "sha256", digest.slice("sha256:".length))

const checkDescriptor = (image: string, d: Descriptor) =>
  isDigest(d.digest)
    ? Effect.void
    : Effect.fail(new InvalidInput({ input: d.digest, reason: `${image} names a blob with an unsupported digest`, fix: "only sha256 digests are supported" }))

/** Reads a blob of the layout and checks it hashes to its digest. */
const readVerified = (image: string, layout: string, d: Descriptor) =>
  Effect.gen(function* () {
    const data = yield* Effect.promise(() => readFile(blobPath(layout, d.digest)))
    const actual = sha256(data)
    if (actual !== d.digest) return yield* Effect.fail(new DigestMismatch({ image, expected: d.digest, actual }))
    return data
  })

const layerKeys = ["docker.size", "docker.uncompressed_size", "docker.uncompressed_digest"] as const

/**
 * A layer counts as present only when its ref carries all three keys (the transport's rule). A
 * commit never changes, so the answer is kept under its checksum: a later pull of an image sharing
 * the layer reads one small file instead of starting three ostree processes.
 */
const layerPresent = (repo: Repo, digest: string, existing: ReadonlySet<string>) =>
  Effect.gen(function* () {
    if (!existing.has(blobRef(digest))) return false
    const commit = yield* Effect.promise(() => readFile(path.join(repo.path, "refs", "heads", blobRef(digest)), "utf8").then((t) => t.trim(), () => ""))
    if (commit && existsSync(presenceFile(repo, commit))) return true
    const values = yield* Effect.forEach(layerKeys, (k) => Ostree.metadata(repo, blobRef(digest), k), { concurrency: "unbounded" })
    const present = values.every((v) => v !== undefined)
    if (present) yield* rememberPresent(repo, commit)
    return present
  })

/** A cache write that may fail (a full disk, a read-only repo) without failing what it caches. */
const bestEffort = <A, E, R>(e: Effect.Effect<A, E, R>) => e.pipe(Effect.asVoid, Effect.catchAllCause(() => Effect.void))

const presenceFile = (repo: Repo, commit: string) => path.join(repo.path, "syscontainers", "layers", `${commit}.present`)

/** Keeps the verdict for a commit known to carry every layer key (one we wrote, or one checked). */
const rememberPresent = (repo: Repo, commit: string) =>
  /^[0-9a-f]{64}$/.test(commit)
    ? Effect.promise(() => mkdir(path.dirname(presenceFile(repo, commit)), { recursive: true }).then(() => writeFile(presenceFile(repo, commit), "")))
    : Effect.void

/** Pulls `from` into the repo. Layers and the config are committed first, the image ref last. */
export const pull = Effect.fn("Pull.pull")(function* (o: PullOptions) {
  const source = parseSource(o.from)
  if ("_tag" in source) return yield* Effect.fail(source)
  const name = withTag(o.name ?? source.defaultName)
  const bad = checkImageName(name)
  if (bad) return yield* Effect.fail(bad)
  const repo = o.repo
  const ref = imageRef(name)
  const report = o.onProgress ?? (() => {})

  const conf = o.registriesConf ? { registriesConf: o.registriesConf } : {}
  // the source's manifest digest: the one fetched ahead, else fetched now
  const fetchDigest = o.sourceDigest ? aheadFor(source, o, o.sourceDigest) : Skopeo.rawManifest(source, conf).pipe(Effect.map(sha256))
  // one manifest fetch decides whether anything needs doing, when the repo has the image at all
  const known = !o.force && Ostree.hasRef(repo, ref)
  // the fetch and what the repo holds, at once (the image usually comes from its cache: no process)
  const [sourceDigest, had] = known
    ? yield* Effect.all(
        [
          fetchDigest,
          Images.get(repo, name).pipe(Effect.option),
        ],
        { concurrency: 2 },
      )
    : [undefined, undefined]
  if (known && had?._tag === "Some") {
    const image = had.value
    if (image.sourceDigest === sourceDigest) {
      report({ kind: "unchanged", digest: image.digest })
      const bytes = image.manifest.layers.reduce((n, l) => n + l.size, 0)
      return { image, skipped: true, layersImported: 0, layersReused: image.manifest.layers.length, bytesImported: 0, bytesReused: bytes } satisfies PullResult
    }
  }

  const created: string[] = []
  // once the image ref is written the pull has happened: nothing after it may take refs back
  let named = false
  const work = path.join(repo.path, "tmp", `syscontainers-pull-${randomBytes(6).toString("hex")}`)
  const result = yield* Effect.gen(function* () {
    const layout = path.join(work, "layout")
    yield* Effect.promise(() => mkdir(work, { recursive: true }))
    report({ kind: "fetch", source: source.reference })
    // the source's own manifest digest, for the next pull's skip check, fetched while the copy runs
    const [, sourceDigestNow] = yield* Effect.all(
      [Skopeo.copyToLayout(source, { layout, tag: "image", ...conf }), sourceDigest ? Effect.succeed(sourceDigest) : fetchDigest],
      { concurrency: 2 },
    )

    const index = JSON.parse(yield* Effect.promise(() => readFile(path.join(layout, "index.json"), "utf8"))) as { manifests: Descriptor[] }
    const manifestDesc = index.manifests[0]!
    yield* checkDescriptor(name, manifestDesc)
    const manifestBytes = yield* readVerified(name, layout, manifestDesc)
    const manifest = JSON.parse(manifestBytes.toString("utf8")) as ImageManifest
    for (const d of [manifest.config, ...manifest.layers]) yield* checkDescriptor(name, d)
    const configBytes = yield* readVerified(name, layout, manifest.config)
    const config = JSON.parse(configBytes.toString("utf8")) as ImageConfigBlob
    report({ kind: "fetched", layers: manifest.layers.length, bytes: manifest.layers.reduce((n, l) => n + l.size, 0) })

    // from what the refs say now to the image's name (and the tidying after it), no other writer:
    // a layer seen here must not go before the name holds it (the fetch above needs no lock)
    yield* RepoLock.hold(repo, `pull ${source.reference} as ${name}`, { waiting: (holder) => report({ kind: "waiting", holder }) })
    // the image this name names now, if any: once the name moves, what only it used goes
    const previous = Ostree.hasRef(repo, ref) ? yield* Images.get(repo, name).pipe(Effect.option) : undefined
    const existing = new Set(yield* Ostree.refs(repo))
    let done = 0
    // biggest first: the longest scan and commit start at once, the small ones fill in beside them
    const bySize = manifest.layers.map((layer, i) => ({ layer, i })).sort((a, b) => b.layer.size - a.layer.size)
    const importLayers = Effect.forEach(
      bySize,
      ({ layer, i }) =>
        Effect.gen(function* () {
          const present = yield* layerPresent(repo, layer.digest, existing)
          if (!present) {
            const blob = blobPath(layout, layer.digest)
            const branch = blobRef(layer.digest)
            // a big layer streams: the scan's gunzipped tar goes straight into an orphan commit, so
            // ostree works beside the scan and gunzips nothing; the layer's ref and metadata come
            // after the scan's verdict, as a second commit of the same tree (~15 ms)
            const stream = layer.size >= streamFrom ? new PassThrough({ highWaterMark: 1 << 20 }) : undefined
            const orphan = stream
              ? Ostree.commit(repo, { tree: { tarStream: stream, from: ["gzip", "-dcf", blob] }, subject: layer.digest }).pipe(
                  // once ostree is done, by success or failure, nothing reads the stream: the scan
                  // must not wait on it (bytes after the tar's end, or a refused entry)
                  Effect.ensuring(Effect.sync(() => stream.destroy())),
                  Effect.either,
                )
              : Effect.succeed(undefined)
            const [scan, streamed] = yield* Effect.all(
              [scanLayer({ path: blob, digest: layer.digest, mediaType: layer.mediaType, image: name, ...(stream ? { tee: stream } : {}) }), orphan],
              { concurrency: 2 },
            )
            const expectedDiffId = config.rootfs?.diff_ids?.[i]
            if (expectedDiffId && expectedDiffId !== scan.diffId)
              return yield* Effect.fail(new DigestMismatch({ image: `${name} layer ${layer.digest} (uncompressed)`, expected: expectedDiffId, actual: scan.diffId }))
            let tree: Ostree.Tree = { tar: blob }
            if (scan.needsRewrite) {
              // whatever the streamed commit made of it is an unnamed commit, gone at the next prune;
              // the rewritten tar goes in unnamed too, so the named commit below stays short
              const tar = path.join(work, `${layer.digest.slice(7)}.tar`)
              yield* writeSanitizedTar({ path: blob, to: tar, digest: layer.digest })
              tree = { ref: yield* Ostree.commit(repo, { tree: { tar }, subject: layer.digest }) }
            } else if (streamed?._tag === "Left") {
              if (!Ostree.isStagingRace(streamed.left)) return yield* Effect.fail(streamed.left)
              // ostree's own race at the start of the streamed commit: the blob on disk goes in instead
              tree = { ref: yield* Ostree.commit(repo, { tree: { tar: blob }, subject: layer.digest }) }
            } else if (streamed?._tag === "Right") tree = { ref: streamed.right }
            const metadata: Record<string, string> = {
              "docker.size": String(layer.size),
              "docker.uncompressed_size": String(scan.uncompressedSize),
              "docker.uncompressed_digest": scan.diffId,
            }
            // what the commit cannot hold, kept (one key: one read at checkout) for the checkout plan
            const extras: LayerExtras = { devices: scan.devices, implicitDirs: scan.implicitDirs, externalHardlinks: scan.externalHardlinks }
            if (scan.devices.length + scan.implicitDirs.length + scan.externalHardlinks.length > 0) metadata[layerExtrasKey] = JSON.stringify(extras)
            created.push(branch)
            // its metadata holds every layer key: the next image sharing the layer need not ask ostree.
            // Not interrupted (see Ostree.commit): a tree already in the repo, or a tar under 1 MiB
            // compressed, so a Ctrl-C waits for this one commit at most
            const commit = yield* Ostree.commit(repo, { branch, tree, metadata, subject: layer.digest }).pipe(Effect.uninterruptible)
            yield* rememberPresent(repo, commit).pipe(bestEffort)
          }
          done += 1
          report({ kind: "layer", digest: layer.digest, size: layer.size, state: present ? "reused" : "imported", done, total: manifest.layers.length })
          return { present, size: layer.size }
        }),
      { concurrency: o.concurrency ?? 2 },
    )

    // the config blob as one file /content, like the transport; committed while the layers import
    const commitConfig = existing.has(blobRef(manifest.config.digest))
      ? Effect.void
      : Effect.gen(function* () {
          const dir = path.join(work, "config")
          yield* Effect.promise(() => mkdir(dir, { recursive: true }).then(() => writeFile(path.join(dir, "content"), configBytes)))
          created.push(blobRef(manifest.config.digest))
          // not interrupted, as the layers' named commits: one small file
          yield* Ostree.commit(repo, { branch: blobRef(manifest.config.digest), tree: { dir }, metadata: { "docker.size": String(manifest.config.size) } }).pipe(Effect.uninterruptible)
        })
    const [outcomes] = yield* Effect.all([importLayers, commitConfig], { concurrency: 2 })

    // the named image last: until this ref exists, the image does not
    const mdir = path.join(work, "manifest")
    yield* Effect.promise(() => mkdir(mdir, { recursive: true }).then(() => writeFile(path.join(mdir, "manifest.json"), manifestBytes)))
    const imageCommit = yield* Ostree.commit(repo, {
      branch: ref,
      tree: { dir: mdir },
      metadata: {
        "docker.manifest": manifestBytes.toString("utf8"),
        "docker.digest": manifestDesc.digest,
        "docker.size": String(manifestBytes.length),
        signatures: "0",
        "syscontainers.source": source.reference,
        // the source's own manifest digest (skopeo may convert the manifest on the way into the layout)
        "syscontainers.source-digest": sourceDigestNow,
      },
    }).pipe(
      // the ref and the flag together: a Ctrl-C in between would take back the layers of a named image
      Effect.tap(() => Effect.sync(() => (named = true))),
      Effect.uninterruptible,
    )
    // what the next Images.get would read back with three ostree processes, kept now
    yield* Images.remember(repo, imageCommit, { digest: manifestDesc.digest, manifest, config, sourceDigest: sourceDigestNow }).pipe(bestEffort)
    // the name is the new image's: the old one's own layers would stay, named by nothing (the pull
    // has happened, so this tidying may fail without failing it)
    if (previous?._tag === "Some" && previous.value.digest !== manifestDesc.digest) yield* Images.forgetReplaced(repo, previous.value).pipe(bestEffort)
    report({ kind: "done", image: name, digest: manifestDesc.digest })
    const imported = outcomes.filter((x) => !x.present)
    const reused = outcomes.filter((x) => x.present)
    const image: Image = { repo, name, ref, digest: manifestDesc.digest, manifest, config, sourceDigest: sourceDigestNow }
    return {
      image,
      skipped: false,
      layersImported: imported.length,
      layersReused: reused.length,
      bytesImported: imported.reduce((n, x) => n + x.size, 0),
      bytesReused: reused.reduce((n, x) => n + x.size, 0),
    } satisfies PullResult
  }).pipe(
    // a failed or interrupted pull takes back the refs it wrote, so nothing half-made stays named
    Effect.onExit((exit) =>
      exit._tag === "Failure" && !named && created.length > 0
        ? Ostree.refs(repo).pipe(
            Effect.flatMap((now) => Ostree.deleteRefs(repo, created.filter((r) => now.includes(r)))),
            Effect.ignore,
          )
        : Effect.void,
    ),
    // the lock goes once that is done
    Effect.scoped,
    Effect.ensuring(Effect.promise(() => rm(work, { recursive: true, force: true }))),
  )
  return result
})
