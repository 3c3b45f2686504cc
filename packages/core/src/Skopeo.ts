// Skopeo: copies images from any transport skopeo reads into an OCI layout, and reads raw manifests.
import * as Effect from "effect/Effect"
import { Spawn } from "./Spawn.ts"
import { CommandFailed, ImageNotFound, ToolMissing } from "./Errors.ts"
import type { SourceRef } from "./ImageRef.ts"

/** Where skopeo finds registries and their mirrors. */
export interface SkopeoOptions {
  /** A containers registries.conf; defaults to $CONTAINERS_REGISTRIES_CONF, then the system's. */
  readonly registriesConf?: string
}

const globalArgs = (o: SkopeoOptions): string[] => {
  const conf = o.registriesConf ?? process.env["CONTAINERS_REGISTRIES_CONF"]
  return conf ? [`--registries-conf=${conf}`] : []
}

// skopeo says "not found" in many ways depending on the transport
const notFound = /manifest unknown|name unknown|not found|no such file or directory|does not exist|reference does not exist|no such host|connection refused|unauthorized/i

const classify = (source: SourceRef) => (e: CommandFailed | ToolMissing) =>
  e._tag === "CommandFailed" && notFound.test(e.stderrTail)
    ? new ImageNotFound({ image: source.reference, where: source.transport === "docker" ? "the registry (or its mirror)" : source.path, detail: e.stderrTail.trim().split("\n").pop() ?? "" })
    : e

/** `skopeo copy SRC oci:LAYOUT:TAG`: the image's blobs land in LAYOUT, verified by skopeo. */
export const copyToLayout = Effect.fn("Skopeo.copyToLayout")(function* (
  source: SourceRef,
  o: SkopeoOptions & { readonly layout: string; readonly tag: string },
) {
  const spawn = yield* Spawn
  yield* spawn
    .run(["skopeo", ...globalArgs(o), "copy", "--quiet", source.reference, `oci:${o.layout}:${o.tag}`])
    .pipe(Effect.mapError(classify(source)))
})

/** The source's manifest as stored (`skopeo inspect --raw --no-tags`): one small fetch. */
export const rawManifest = Effect.fn("Skopeo.rawManifest")(function* (source: SourceRef, o: SkopeoOptions) {
  const spawn = yield* Spawn
  const r = yield* spawn
    .run(["skopeo", ...globalArgs(o), "inspect", "--raw", "--no-tags", source.reference])
    .pipe(Effect.mapError(classify(source)))
  return r.stdout
})
