// OstreeRefs: the `ociimage/...` branch names of containers/image's old ostree transport.
import { InvalidInput } from "./Errors.ts"

const keep = /^[A-Za-z0-9.-]$/

/** Encodes an image name byte by byte: `[A-Za-z0-9.-]` stay, anything else becomes `_%02X`. */
export const encodeName = (name: string): string => {
  let out = ""
  for (const byte of Buffer.from(name, "utf8")) {
    const ch = String.fromCharCode(byte)
    out += keep.test(ch) ? ch : `_${byte.toString(16).toUpperCase().padStart(2, "0")}`
  }
  return out
}

/** Inverse of encodeName (for `images`): `_XX` back to its byte. */
export const decodeName = (encoded: string): string => {
  const bytes: number[] = []
  for (let i = 0; i < encoded.length; i++) {
    const ch = encoded[i]!
    if (ch === "_" && /^[0-9A-F]{2}$/.test(encoded.slice(i + 1, i + 3))) {
      bytes.push(parseInt(encoded.slice(i + 1, i + 3), 16))
      i += 2
    } else bytes.push(ch.charCodeAt(0))
  }
  return Buffer.from(bytes).toString("utf8")
}

/** `name` with `:latest` appended when it has no tag (no docker.io normalisation, like the transport). */
export const withTag = (name: string): string => {
  const lastSlash = name.lastIndexOf("/")
  const tail = name.slice(lastSlash + 1)
  return tail.includes(":") || tail.includes("@") ? name : `${name}:latest`
}

/** The image ref of a name: `redis` → `ociimage/redis_3Alatest`. */
export const imageRef = (name: string): string => `ociimage/${encodeName(withTag(name))}`

/** The ref of a blob (layer or config): `sha256:abc…` → `ociimage/abc…`. */
export const blobRef = (digest: string): string => `ociimage/${hexOf(digest)}`

/** True for a well-formed `sha256:<64 hex>` digest. */
export const isDigest = (digest: string): boolean => /^sha256:[0-9a-f]{64}$/.test(digest)

/** The hex part of a digest already checked with isDigest. */
export const hexOf = (digest: string): string => digest.slice("sha256:".length)

/** True for refs that hold blobs (layers, configs) rather than named images. */
export const isBlobRef = (ref: string): boolean => /^ociimage\/[0-9a-f]{64}$/.test(ref)

/** Validates a user-chosen image name before anything is written. */
export const checkImageName = (name: string): InvalidInput | undefined => {
  if (name.length === 0) return new InvalidInput({ input: name, reason: "an image name cannot be empty", fix: "name it like redis or redis:alpine" })
  if (/[\s\x00-\x1f]/.test(name)) return new InvalidInput({ input: name, reason: "an image name cannot contain spaces or control characters", fix: "name it like redis or redis:alpine" })
  if (/^[0-9a-f]{64}$/.test(name)) return new InvalidInput({ input: name, reason: "a 64-hex name would collide with blob refs", fix: "choose a name that is not a digest" })
  if (name.length > 200) return new InvalidInput({ input: name, reason: "the name is too long for an ostree ref", fix: "use a shorter name" })
  return undefined
}
