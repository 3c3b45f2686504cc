// layerScan: one pass over a layer blob: digests checked, hostile entries refused, and what ostree cannot take found.
// `writeSanitizedTar` then writes the tar `ostree commit --tree=tar=` accepts (no devices, no dangling hardlinks).
import * as Effect from "effect/Effect"
import { createHash } from "node:crypto"
import { createReadStream, createWriteStream } from "node:fs"
import { open, rm } from "node:fs/promises"
import { pipeline } from "node:stream/promises"
import type { Writable } from "node:stream"
import { createGunzip } from "node:zlib"

// zlib's default 16 KiB output chunks cost a callback each: 1 MiB chunks made the pass ~45% faster here
const gunzipChunk = 1 << 20
import { DigestMismatch, LayerRejected } from "../Errors.ts"
import type { DeviceEntry, ExternalHardlink, LayerEntry } from "./mergePlan.ts"
import { filterTar, normalizePath, TarFormatError, tarHeader, TarParser, type TarDecision, type TarEntry } from "./tar.ts"

export type { DeviceEntry, ExternalHardlink, LayerEntry } from "./mergePlan.ts"

/** What one pass over a layer blob found. */
export interface LayerScan {
  /** The compressed digest, verified. */
  readonly digest: string
  /** Compressed size in bytes. */
  readonly size: number
  /** sha256 of the uncompressed tar (the config's rootfs.diff_ids entry). */
  readonly diffId: string
  readonly uncompressedSize: number
  readonly compression: "gzip" | "none"
  /** Every path the tar names, once (the last entry for a path wins), whiteouts and devices included. */
  readonly entries: ReadonlyArray<LayerEntry>
  /** Devices and FIFOs (ostree refuses them): recreated after checkout. */
  readonly devices: ReadonlyArray<DeviceEntry>
  /** Hardlinks whose target is not earlier in this tar (ostree refuses them): linked after checkout. */
  readonly externalHardlinks: ReadonlyArray<ExternalHardlink>
  /** Parents the tar never lists ("" is the root): `ostree commit` needs `--tar-autocreate-parents` for them. */
  readonly implicitDirs: ReadonlyArray<string>
  /** ostree cannot take the blob as is: commit `writeSanitizedTar`'s output instead. */
  readonly needsRewrite: boolean
  /** Why a rewrite is needed, one line per kind of problem. */
  readonly reasons: ReadonlyArray<string>
}

/** Which blob to scan. */
export interface ScanOptions {
  readonly path: string
  /** The manifest's digest for the blob ("sha256:..." or "sha512:..."). */
  readonly digest: string
  readonly mediaType?: string
  /** Names the image in a DigestMismatch (default: the layer digest). */
  readonly image?: string
  /**
   * Receives the uncompressed tar as the scan reads it (ostree's stdin: the commit runs beside the
   * scan and gunzips nothing), and is ended with it. Once destroyed (its reader gave up), the scan
   * goes on alone: a reader's failure is its own to report.
   */
  readonly tee?: Writable
}

/** Which blob to rewrite, and where. */
export interface SanitizeOptions {
  readonly path: string
  /** The uncompressed tar to write. */
  readonly to: string
  /** Entries to leave out besides devices, FIFOs and dangling hardlinks (always left out). */
  readonly drop?: (e: TarEntry) => boolean
  /** Names the layer in a LayerRejected (default: the path). */
  readonly digest?: string
}

/** What writeSanitizedTar left out or changed. */
export interface SanitizedTar {
  readonly to: string
  readonly dropped: ReadonlyArray<string>
  /** Whiteouts stored as links or devices, written as the empty files ostree keeps. */
  readonly converted: ReadonlyArray<string>
  readonly devices: ReadonlyArray<DeviceEntry>
  readonly externalHardlinks: ReadonlyArray<ExternalHardlink>
}

const WH = ".wh."
const OPAQUE = ".wh..wh..opq"
// ostree refuses paths over PATH_MAX; the kernel refuses names over NAME_MAX
const PATH_MAX = 4095
const NAME_MAX = 255

const REASON_DEVICES = "device nodes or FIFOs (ostree refuses the whole layer)"
const REASON_EXTERNAL = "hardlinks to files not earlier in the same tar (ostree refuses them)"
const REASON_WHITEOUT = "whiteouts stored as links or devices (written as empty files)"

class Rejection {
  constructor(readonly entry: string, readonly reason: string) {}
}

const baseName = (p: string): string => p.slice(p.lastIndexOf("/") + 1)
const parentOf = (p: string): string => {
  const i = p.lastIndexOf("/")
  return i === -1 ? "" : p.slice(0, i)
}

// shows a name as written, bytes that are not UTF-8 as \xNN
const printable = (e: TarEntry): string => {
  if (e.validUtf8) return e.rawPath
  let out = ""
  for (const b of e.nameBytes) out += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`
  return out
}

interface Seen {
  readonly type: "dir" | "file" | "symlink" | "device"
  readonly kept: boolean
  readonly implicit: boolean
  readonly device?: DeviceEntry
}

/** The per-entry rules, shared by the scan and the rewrite so both decide alike. Throws Rejection. */
class LayerChecker {
  readonly entries = new Map<string, LayerEntry>()
  readonly devices = new Map<string, DeviceEntry>()
  readonly external = new Map<string, ExternalHardlink>()
  readonly implicit = new Set<string>()
  readonly reasons = new Set<string>()
  readonly dropped: string[] = []
  readonly converted: string[] = []
  private readonly seen = new Map<string, Seen>()

  constructor(private readonly extraDrop?: (e: TarEntry) => boolean) {}

  visit(e: TarEntry): "keep" | "drop" | "empty-file" {
    const name = printable(e)
    const refuse = (reason: string): never => {
      throw new Rejection(name, reason)
    }
    if (e.type === "other") refuse(`unsupported entry type ${JSON.stringify(e.typeflag)}`)
    if (e.sparse) refuse("sparse files are not supported")
    if (e.hasNul) refuse("the name or link target holds a NUL byte")
    if (!e.validUtf8) refuse("the name or link target is not UTF-8 (ostree cannot store it)")
    if (e.rawPath.includes("\n") || (e.type === "symlink" && e.linkname.includes("\n")))
      refuse("a newline in a name or link target cannot go through ostree's line-based listings and skip lists")
    const p = e.path
    const parts = p === "" ? [] : p.split("/")
    if (parts.includes("..")) refuse("a '..' component escapes the rootfs")
    if (Buffer.byteLength(p) > PATH_MAX) refuse(`the path is longer than ${PATH_MAX} bytes`)
    if (parts.some((c) => Buffer.byteLength(c) > NAME_MAX)) refuse(`a component is longer than ${NAME_MAX} bytes`)
    if (e.type !== "file" && e.declaredSize > 0) refuse(`a ${e.type} entry with ${e.declaredSize} bytes of content (readers disagree on such entries)`)
    if (p === "" && e.type !== "dir") refuse("refusing to change the type of the root directory")
    if (e.type === "symlink" && e.linkname === "") refuse("a symlink with an empty target")
    // `ostree ls` prints a symlink as "NAME -> TARGET": the plan must be able to split that line
    if ((e.type === "symlink" || e.type === "hardlink") && baseName(p).includes(" -> "))
      refuse("a link whose name holds ' -> ' cannot be told apart from its target in ostree's listing")

    const base = baseName(p)
    const whiteout = p !== "" && base.startsWith(WH)
    if (whiteout) {
      if (e.type === "dir") refuse("a whiteout must not be a directory")
      if (base !== OPAQUE) {
        const target = base.slice(WH.length)
        if (target === "" || target === "." || target === "..") refuse("a whiteout of an empty, '.' or '..' name")
      }
    }

    // parents: the same layer's own parent must be a real directory; missing ones ostree would invent
    if (p !== "") {
      let q = parentOf(p)
      for (;;) {
        const s = this.seen.get(q)
        if (s) {
          if (s.type === "symlink") refuse(`its parent ${JSON.stringify(q)} is a symlink in the same layer`)
          if (s.type !== "dir") refuse(`its parent ${JSON.stringify(q)} is not a directory in the same layer`)
          break
        }
        this.seen.set(q, { type: "dir", kept: true, implicit: true })
        this.implicit.add(q)
        if (q === "") break
        q = parentOf(q)
      }
    }

    const prev = this.seen.get(p)
    if (prev && (prev.type === "dir") !== (e.type === "dir"))
      refuse("the path appears twice, as a directory and as a non-directory (ostree refuses to replace one by the other)")
    if (prev) {
      this.devices.delete(p)
      this.external.delete(p)
    }
    this.implicit.delete(p)

    let decision: "keep" | "drop" | "empty-file" = "keep"
    let seen: Seen
    let entry: LayerEntry = { path: p, type: e.type === "other" ? "file" : e.type, mode: e.mode, uid: e.uid, gid: e.gid, size: e.size }
    if (e.type === "hardlink") {
      const target = normalizePath(e.linkname)
      if (target === "" || target.split("/").includes("..")) refuse(`a hardlink to ${JSON.stringify(e.linkname)} escapes the rootfs`)
      if (target === p) refuse("a hardlink to itself")
      entry = { ...entry, target }
      const t = this.seen.get(target)
      if (t && t.type === "dir") refuse(`a hardlink to ${JSON.stringify(target)}, a directory`)
      if (t?.device) {
        // another node with the same numbers: recreated after checkout like the first
        const device: DeviceEntry = { ...t.device, path: p }
        this.devices.set(p, device)
        this.reasons.add(REASON_DEVICES)
        decision = "drop"
        seen = { type: "device", kept: false, implicit: false, device }
      } else if (t && t.kept) {
        seen = { type: t.type, kept: true, implicit: false }
      } else if (whiteout) {
        // only the name of a whiteout matters
        this.reasons.add(REASON_WHITEOUT)
        decision = "empty-file"
        seen = { type: "file", kept: true, implicit: false }
      } else {
        // ostree resolves hardlinks only within the tar: the planner links these after checkout
        this.external.set(p, { path: p, target })
        this.reasons.add(REASON_EXTERNAL)
        decision = "drop"
        seen = { type: "file", kept: false, implicit: false }
      }
    } else if (e.type === "char" || e.type === "block" || e.type === "fifo") {
      if (whiteout) {
        this.reasons.add(REASON_WHITEOUT)
        decision = "empty-file"
        seen = { type: "file", kept: true, implicit: false }
      } else {
        const device: DeviceEntry = { path: p, type: e.type, mode: e.mode, uid: e.uid, gid: e.gid, devmajor: e.devmajor, devminor: e.devminor }
        this.devices.set(p, device)
        this.reasons.add(REASON_DEVICES)
        decision = "drop"
        seen = { type: "device", kept: false, implicit: false, device }
      }
    } else {
      const type = e.type === "dir" ? "dir" : e.type === "symlink" ? "symlink" : "file"
      if (e.type === "symlink") entry = { ...entry, target: e.linkname }
      seen = { type, kept: true, implicit: false }
    }
    if (decision === "empty-file") entry = { path: p, type: "file", mode: e.mode, uid: e.uid, gid: e.gid, size: 0 }
    if (decision !== "drop" && this.extraDrop?.(e)) {
      decision = "drop"
      seen = { ...seen, kept: false }
    }
    if (decision === "drop") this.dropped.push(p)
    if (decision === "empty-file") this.converted.push(p)
    this.seen.set(p, seen)
    this.entries.set(p, entry)
    return decision
  }
}

const digestParts = (digest: string): { alg: "sha256" | "sha512"; hex: string } => {
  const m = /^(sha256|sha512):([0-9a-f]+)$/.exec(digest)
  const alg = m?.[1] === "sha512" ? "sha512" : "sha256"
  if (!m || m[2]!.length !== (alg === "sha256" ? 64 : 128)) throw new Rejection("", `malformed or unsupported digest ${JSON.stringify(digest)}`)
  return { alg, hex: m[2]! }
}

type Compression = "gzip" | "none"

// the bytes decide; the media type only breaks the tie for formats we refuse
const compressionOf = async (file: string, mediaType: string | undefined): Promise<Compression> => {
  const fh = await open(file, "r")
  const head = Buffer.alloc(6)
  try {
    await fh.read(head, 0, 6, 0)
  } finally {
    await fh.close()
  }
  if (head[0] === 0x1f && head[1] === 0x8b) return "gzip"
  if (head.readUInt32LE(0) === 0xfd2fb528 || mediaType?.endsWith("+zstd")) throw new Rejection("", "zstd-compressed layers are not supported")
  if (head.subarray(0, 3).toString("latin1") === "BZh" || head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])))
    throw new Rejection("", "bzip2 and xz layers are not OCI layers")
  return "none"
}

const fileDigest = async (file: string, alg: string): Promise<string> => {
  const h = createHash(alg)
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer)
  return `${alg}:${h.digest("hex")}`
}

/** Resolves when `w` can take more, or is gone (a destroyed stream never drains). */
const drained = (w: Writable) =>
  new Promise<void>((resolve) => {
    const done = () => {
      w.off("drain", done)
      w.off("close", done)
      resolve()
    }
    w.on("drain", done)
    w.on("close", done)
  })

const scanBlob = async (o: ScanOptions, signal: AbortSignal): Promise<LayerScan> => {
  const { alg } = digestParts(o.digest)
  const compression = await compressionOf(o.path, o.mediaType)
  const compressed = createHash(alg)
  const uncompressed = createHash("sha256")
  let size = 0
  let uncompressedSize = 0
  const checker = new LayerChecker()
  const parser = new TarParser({ onEntry: (e) => void checker.visit(e) })
  async function* countCompressed(source: AsyncIterable<Buffer>) {
    for await (const chunk of source) {
      compressed.update(chunk)
      size += chunk.length
      yield chunk
    }
  }
  const tee = o.tee
  const consume = async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) {
      uncompressed.update(chunk)
      uncompressedSize += chunk.length
      parser.write(chunk)
      if (tee && !tee.destroyed && !tee.write(chunk)) await drained(tee)
    }
  }
  const mismatch = (actual: string) => new DigestMismatch({ image: o.image ?? `layer ${o.digest}`, expected: o.digest, actual })
  try {
    const source = createReadStream(o.path, { highWaterMark: 1 << 20, signal })
    if (compression === "gzip") await pipeline(source, countCompressed, createGunzip({ chunkSize: gunzipChunk }), consume, { signal })
    else await pipeline(source, countCompressed, consume, { signal })
    parser.end()
  } catch (err) {
    tee?.destroy()
    if (signal.aborted) throw err
    // a corrupt download explains any failure better than a malformed entry does
    const actual = await fileDigest(o.path, alg).catch(() => undefined)
    if (actual !== undefined && actual !== o.digest) throw mismatch(actual)
    throw err
  }
  const actual = `${alg}:${compressed.digest("hex")}`
  if (actual !== o.digest) {
    tee?.destroy()
    throw mismatch(actual)
  }
  if (tee && !tee.destroyed) tee.end()
  return {
    digest: o.digest,
    size,
    diffId: `sha256:${uncompressed.digest("hex")}`,
    uncompressedSize,
    compression,
    entries: [...checker.entries.values()],
    devices: [...checker.devices.values()],
    externalHardlinks: [...checker.external.values()],
    implicitDirs: [...checker.implicit],
    needsRewrite: checker.reasons.size > 0,
    reasons: [...checker.reasons],
  }
}

const toTagged = (layer: string) => (e: unknown): LayerRejected | DigestMismatch => {
  if (e instanceof DigestMismatch || e instanceof LayerRejected) return e
  if (e instanceof Rejection) return new LayerRejected({ layer, entry: e.entry, reason: e.reason })
  if (e instanceof TarFormatError) return new LayerRejected({ layer, entry: "", reason: `not a readable tar: ${e.message}` })
  const err = e as NodeJS.ErrnoException
  if (typeof err?.code === "string" && err.code.startsWith("Z_")) return new LayerRejected({ layer, entry: "", reason: `not readable gzip: ${err.message}` })
  return new LayerRejected({ layer, entry: "", reason: `cannot read the blob: ${err?.message ?? String(e)}` })
}

/** Reads a layer blob once: checks its digest, computes its diff_id, refuses hostile entries, says if ostree needs a rewrite. */
export const scanLayer = Effect.fn("LayerScan.scanLayer")(function* (o: ScanOptions) {
  return yield* Effect.tryPromise({ try: (signal) => scanBlob(o, signal), catch: toTagged(o.digest) })
})

const sanitize = async (o: SanitizeOptions, signal: AbortSignal): Promise<SanitizedTar> => {
  const compression = await compressionOf(o.path, undefined)
  const checker = new LayerChecker(o.drop)
  const decide = (e: TarEntry): TarDecision => {
    const d = checker.visit(e)
    if (d !== "empty-file") return d
    return { replace: tarHeader({ name: e.nameBytes, type: "file", mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, size: 0 }) }
  }
  const filter = (source: AsyncIterable<Buffer>) => filterTar(source, decide)
  try {
    const source = createReadStream(o.path, { highWaterMark: 1 << 20, signal })
    const sink = createWriteStream(o.to)
    if (compression === "gzip") await pipeline(source, createGunzip({ chunkSize: gunzipChunk }), filter, sink, { signal })
    else await pipeline(source, filter, sink, { signal })
  } catch (err) {
    await rm(o.to, { force: true })
    throw err
  }
  return {
    to: o.to,
    dropped: checker.dropped,
    converted: checker.converted,
    devices: [...checker.devices.values()],
    externalHardlinks: [...checker.external.values()],
  }
}

/** Writes `to`: the layer as an uncompressed tar without devices, FIFOs, dangling hardlinks and what `drop` picks. */
export const writeSanitizedTar = Effect.fn("LayerScan.writeSanitizedTar")(function* (o: SanitizeOptions) {
  return yield* Effect.tryPromise({
    try: (signal) => sanitize(o, signal),
    catch: (e) => {
      const t = toTagged(o.digest ?? o.path)(e)
      return t instanceof DigestMismatch ? new LayerRejected({ layer: o.digest ?? o.path, entry: "", reason: t.message }) : t
    },
  })
})
