// Images: the named images of a repo, read back from the refs and metadata a pull wrote.
import * as Effect from "effect/Effect"
import * as Ostree from "./Ostree.ts"
import type { Repo } from "./Ostree.ts"
import { blobRef, decodeName, imageRef, isBlobRef, withTag } from "./OstreeRefs.ts"
import { ImageNotFound } from "./Errors.ts"
import type { ImageConfigBlob, ImageManifest } from "./ImageConfig.ts"
import { Spawn } from "./Spawn.ts"
import { forgetPlan } from "./Layers.ts"

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
}

/** Reads a named image (its manifest from `docker.manifest`, as atomic did, and its config blob). */
export const get = Effect.fn("Images.get")(function* (repo: Repo, name: string) {
  const ref = imageRef(name)
  const manifestText = yield* Ostree.metadata(repo, ref, "docker.manifest").pipe(
    Effect.catchTag("CommandFailed", () => Effect.succeed(undefined)),
  )
  if (manifestText === undefined)
    return yield* Effect.fail(new ImageNotFound({ image: withTag(name), where: repo.path, detail: "" }))
  const digest = (yield* Ostree.metadata(repo, ref, "docker.digest")) ?? ""
  const manifest = JSON.parse(manifestText) as ImageManifest
  const config = JSON.parse(yield* Ostree.cat(repo, blobRef(manifest.config.digest), "/content")) as ImageConfigBlob
  return { repo, name: withTag(name), ref, digest, manifest, config } satisfies Image
})

/** The names of all images in the repo. */
export const list = Effect.fn("Images.list")(function* (repo: Repo) {
  const all = yield* Ostree.refs(repo)
  return all
    .filter((r) => r.startsWith("ociimage/") && !isBlobRef(r))
    .map((r) => decodeName(r.slice("ociimage/".length)))
    .sort()
})

/** Removes a named image, then the layer and config refs no other image uses, then unreachable objects. */
export const remove = Effect.fn("Images.remove")(function* (repo: Repo, name: string) {
  const image = yield* get(repo, name)
  const others = (yield* list(repo)).filter((n) => n !== image.name)
  const stillUsed = new Set<string>()
  for (const other of others) {
    const o = yield* get(repo, other)
    for (const d of [o.manifest.config, ...o.manifest.layers]) stillUsed.add(d.digest)
  }
  const blobs = [image.manifest.config, ...image.manifest.layers].map((d) => d.digest).filter((d) => !stillUsed.has(d))
  const existing = new Set(yield* Ostree.refs(repo))
  yield* Ostree.deleteRefs(repo, [image.ref, ...blobs.map(blobRef).filter((r) => existing.has(r))])
  yield* forgetPlan(repo, image)
  yield* Ostree.prune(repo)
  return image
})

export type { Spawn }
