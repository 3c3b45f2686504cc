// Images: the named images of a repo, read back from the refs and metadata a pull wrote.
import * as Effect from "effect/Effect"
import { existsSync, readFileSync } from "node:fs"
import { mkdir, readFile, rename, writeFile } from "node:fs/promises"
import path from "node:path"
import * as Ostree from "./Ostree.ts"
import type { Repo } from "./Ostree.ts"
import { blobRef, decodeName, imageRef, isBlobRef, withTag } from "./OstreeRefs.ts"
import { ImageNotFound } from "./Errors.ts"
import type { ImageConfigBlob, ImageManifest } from "./ImageConfig.ts"
import { Spawn } from "./Spawn.ts"
import { forgetPlan, forgetSharedCheckout, sharedCheckoutDir } from "./Layers.ts"
import * as Containers from "./Containers.ts"
import * as RepoLock from "./RepoLock.ts"

/** An image in the repo: what the steps after a pull take. */
export interface Image {
  readonly repo: Repo
  /** The name as given at pull time, with its tag (`redis:latest`). */
  readonly name: string
  readonly ref: string
  /** Digest of the manifest as stored (`docker.digest`). */
  readonly digest: string
  readonly manifest: ImageManifest
  readonly config: ImageConfigBlob
  /** The source's own manifest digest at pull time (`syscontainers.source-digest`): a re-pull compares it. */
  readonly sourceDigest?: string
}

type Kept = Pick<Image, "digest" | "manifest" | "config" | "sourceDigest">

const cacheFileOf = (repo: Repo, commit: string) => path.join(repo.path, "syscontainers", "images", `${commit}.json`)

/** Keeps what an image commit holds under its checksum (written whole: a reader never sees half). */
export const remember = (repo: Repo, commit: string, kept: Kept) =>
  Effect.promise(async () => {
    const file = cacheFileOf(repo, commit)
    await mkdir(path.dirname(file), { recursive: true })
    const tmp = `${file}.${process.pid}.tmp`
    await writeFile(tmp, JSON.stringify(kept))
    await rename(tmp, file)
  })

/** Reads a named image (its manifest from `docker.manifest`, as atomic did, and its config blob). */
export const get = Effect.fn("Images.get")(function* (repo: Repo, name: string) {
  const ref = imageRef(name)
  // a ref names an immutable commit: what we read of it once is kept under the commit's checksum
  const commit = readCommitOf(repo, ref)
  if (commit === undefined) return yield* Effect.fail(new ImageNotFound({ image: withTag(name), where: repo.path, detail: "" }))
  const cached = yield* Effect.promise(() => readFile(cacheFileOf(repo, commit), "utf8").then((t) => JSON.parse(t) as Kept, () => undefined))
  if (cached) return { repo, name: withTag(name), ref, ...cached } satisfies Image

  const [manifestText, digest, sourceDigest] = yield* Effect.all(
    [Ostree.metadata(repo, ref, "docker.manifest"), Ostree.metadata(repo, ref, "docker.digest"), Ostree.metadata(repo, ref, "syscontainers.source-digest")],
    { concurrency: 3 },
  )
  if (manifestText === undefined) return yield* Effect.fail(new ImageNotFound({ image: withTag(name), where: repo.path, detail: `${ref} has no docker.manifest` }))
  const manifest = JSON.parse(manifestText) as ImageManifest
  const config = JSON.parse(yield* Ostree.cat(repo, blobRef(manifest.config.digest), "/content")) as ImageConfigBlob
  const kept: Kept = { digest: digest ?? "", manifest, config, ...(sourceDigest !== undefined ? { sourceDigest } : {}) }
  yield* remember(repo, commit, kept)
  return { repo, name: withTag(name), ref, ...kept } satisfies Image
})

/** The commit a ref points to, read from refs/heads (no process); undefined when there is no such ref. */
const readCommitOf = (repo: Repo, ref: string): string | undefined => {
  try {
    const text = readFileSync(path.join(repo.path, "refs", "heads", ref), "utf8").trim()
    return /^[0-9a-f]{64}$/.test(text) ? text : undefined
  } catch {
    return undefined
  }
}

/** The names of all images in the repo. */
export const list = Effect.fn("Images.list")(function* (repo: Repo) {
  const all = yield* Ostree.refs(repo)
  return all
    .filter((r) => r.startsWith("ociimage/") && !isBlobRef(r))
    .map((r) => decodeName(r.slice("ociimage/".length)))
    .sort()
})

/**
 * After a pull gave `old`'s name to another image: old's layer and config refs that no image uses
 * now, its plans and its shared checkout (unless containers or bundles still use it), then
 * unreachable objects. A podman user would find the old image as a dangling `<none>` to prune;
 * here nothing can name it any more, so it goes.
 */
export const forgetReplaced = Effect.fn("Images.forgetReplaced")(function* (repo: Repo, old: Image) {
  const now = yield* Effect.forEach(yield* list(repo), (n) => get(repo, n))
  const stillUsed = new Set(now.flatMap((o) => [o.manifest.config, ...o.manifest.layers].map((d) => d.digest)))
  const blobs = [old.manifest.config, ...old.manifest.layers].map((d) => d.digest).filter((d) => !stillUsed.has(d))
  const shared = sharedCheckoutDir(repo, old)
  if (!now.some((o) => sharedCheckoutDir(repo, o) === shared)) {
    // a tree containers or bundles still use keeps its layers too, rather than become a tree of
    // nothing (the objects would live on in its hardlinks, and no name could ever remove it)
    const kept = existsSync(shared) ? yield* forgetSharedCheckout(old, yield* Containers.listStrict()).pipe(Effect.as(false), Effect.orElseSucceed(() => true)) : false
    if (kept) return
    yield* forgetPlan(repo, old)
  }
  if (blobs.length === 0) return
  const existing = new Set(yield* Ostree.refs(repo))
  yield* Ostree.deleteRefs(repo, blobs.map(blobRef).filter((r) => existing.has(r)))
  yield* Ostree.prune(repo)
})

/** Removes a named image, then the layer and config refs no other image uses, then unreachable objects. */
export const remove = (repo: Repo, name: string) =>
  // no pull may meanwhile decide to reuse a layer this takes away
  Effect.scoped(Effect.zipRight(RepoLock.hold(repo, `rmi ${name}`), removeUnlocked(repo, name)))

const removeUnlocked = Effect.fn("Images.remove")(function* (repo: Repo, name: string) {
  const image = yield* get(repo, name)
  const others = yield* Effect.forEach((yield* list(repo)).filter((n) => n !== image.name), (n) => get(repo, n))
  const stillUsed = new Set(others.flatMap((o) => [o.manifest.config, ...o.manifest.layers].map((d) => d.digest)))
  const blobs = [image.manifest.config, ...image.manifest.layers].map((d) => d.digest).filter((d) => !stillUsed.has(d))
  // first, as it may refuse: the image's shared checkout, unless containers run on it; it goes
  // with the last image of those layers (an image pulled under two names has one)
  const shared = sharedCheckoutDir(repo, image)
  const sameLayers = others.some((o) => sharedCheckoutDir(repo, o) === shared)
  if (existsSync(shared) && !sameLayers) yield* forgetSharedCheckout(image, yield* Containers.listStrict())
  const existing = new Set(yield* Ostree.refs(repo))
  yield* Ostree.deleteRefs(repo, [image.ref, ...blobs.map(blobRef).filter((r) => existing.has(r))])
  if (!sameLayers) yield* forgetPlan(repo, image)
  yield* Ostree.prune(repo)
  return image
})

export type { Spawn }
