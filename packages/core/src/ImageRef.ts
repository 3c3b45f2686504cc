// ImageRef: parsing the source references skopeo takes (docker://, oci:, oci-archive:, ...).
import { InvalidInput, UnknownTransport } from "./Errors.ts"

/** Transports skopeo reads from. */
export const transports = ["docker", "oci", "oci-archive", "docker-archive", "dir", "containers-storage", "docker-daemon"] as const
export type Transport = (typeof transports)[number]

/** A parsed source reference. */
export interface SourceRef {
  /** As the user wrote it, normalised to what skopeo takes. */
  readonly reference: string
  readonly transport: Transport
  /** Everything after the transport prefix. */
  readonly path: string
  /** The name an image gets when the caller names none (ostree transport style: name[:tag]). */
  readonly defaultName: string
}

const unknown = (reference: string, transport: string) => new UnknownTransport({ reference, transport })

/** Parses `docker://redis:alpine`, `oci:/dir:tag`, ...; a bare `redis:alpine` is taken as docker://. */
export const parseSource = (reference: string): SourceRef | UnknownTransport | InvalidInput => {
  const m = /^([a-z-]+):(.*)$/.exec(reference)
  const looksLikeTransport = m !== null && (m[2]!.startsWith("//") || (transports as ReadonlyArray<string>).includes(m[1]!))
  if (!looksLikeTransport) {
    // `redis:alpine` or `quay.io/x/y:tag`: what a docker/podman user types
    if (/^[a-z0-9][a-z0-9._\/-]*(:[A-Za-z0-9._-]+)?(@sha256:[0-9a-f]{64})?$/.test(reference)) return parseSource(`docker://${reference}`)
    if (m) return unknown(reference, m[1]!)
    return new InvalidInput({ input: reference, reason: "not an image reference", fix: "write it like docker://redis:alpine or oci:/path/to/layout:tag" })
  }
  const transport = m![1]!
  const path = m![2]!
  if (!(transports as ReadonlyArray<string>).includes(transport)) return unknown(reference, transport)
  if (transport === "docker") {
    if (!path.startsWith("//") || path.length <= 2)
      return new InvalidInput({ input: reference, reason: "docker references start with docker://", fix: "write it like docker://redis:alpine" })
    const name = path.slice(2)
    if (!/^[a-z0-9][A-Za-z0-9._\/:-]*(@sha256:[0-9a-f]{64})?$/.test(name) || name.includes("//"))
      return new InvalidInput({ input: reference, reason: "not a valid registry image name", fix: "write it like docker://redis:alpine or docker://quay.io/org/name:tag" })
    return { reference, transport, path, defaultName: shortName(name) }
  }
  if (path.length === 0) return new InvalidInput({ input: reference, reason: `${transport}: needs a path`, fix: `write it like ${transport}:/path/to/image` })
  const base = path.split(":")[0]!.split("/").filter(Boolean).pop() ?? "image"
  const tag = transport === "oci" || transport === "oci-archive" ? path.split(":")[1] : undefined
  return { reference, transport: transport as Transport, path, defaultName: tag ? `${base}:${tag}` : base }
}

/** `docker.io/library/redis:alpine` → `redis:alpine`: the name a user would type. */
const shortName = (name: string): string => {
  const noDigest = name.split("@")[0]!
  const parts = noDigest.split("/")
  const first = parts[0]!
  const hasRegistry = parts.length > 1 && (first.includes(".") || first.includes(":") || first === "localhost")
  const rest = hasRegistry ? parts.slice(1) : parts
  if ((first === "docker.io" || !hasRegistry) && rest[0] === "library") rest.shift()
  return rest.join("/")
}
