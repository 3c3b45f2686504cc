// tar: a streaming reader and a small writer for the tar dialects OCI layers use (ustar, GNU, PAX).
// No dependencies: layers are scanned and sanitized with it before ostree's libarchive sees them.

/** What an entry is, after the typeflag and the old-style "name/" convention are read. */
export type TarEntryType = "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo" | "other"

/** One tar entry, its long-name and PAX extensions applied. */
export interface TarEntry {
  /** Normalized: no leading "./" or "/", no trailing "/", no "." or empty components; "" is the root. */
  readonly path: string
  /** The name as the archive spells it (lossily decoded when it is not UTF-8). */
  readonly rawPath: string
  /** The name's bytes, kept so callers can refuse what is not UTF-8. */
  readonly nameBytes: Uint8Array
  /** The link name's bytes (symlink target or hardlink target). */
  readonly linkBytes: Uint8Array
  /** Both the name and the link name decode as UTF-8. */
  readonly validUtf8: boolean
  /** A PAX record put a NUL byte inside the name or link name. */
  readonly hasNul: boolean
  readonly type: TarEntryType
  /** The raw typeflag character. */
  readonly typeflag: string
  /** Permission bits, setuid/setgid/sticky included. */
  readonly mode: number
  readonly uid: number
  readonly gid: number
  /** Content bytes that follow the header (0 for header-only types whatever the header says). */
  readonly size: number
  /** The size field as written; a header-only type with a non-zero one is suspicious. */
  readonly declaredSize: number
  /** Symlink target or hardlink target, as written. */
  readonly linkname: string
  readonly devmajor: number
  readonly devminor: number
  /** Seconds since the epoch. */
  readonly mtime: number
  /** GNU sparse content (old 'S' or PAX GNU.sparse.*): the bytes are not the file. */
  readonly sparse: boolean
  /** Offset in the uncompressed stream of the first header block of this entry (extensions included). */
  readonly offset: number
}

/** The archive is not a tar we can read (bad checksum, truncated, oversized extension). */
export class TarFormatError extends Error {
  constructor(readonly reason: string, readonly offset: number) {
    super(`${reason} (at byte ${offset})`)
  }
}

/** Callbacks of a TarParser. They run synchronously inside `write`; throwing stops the parse. */
export interface TarHandlers {
  /** One entry with its raw header bytes (extension headers and their data included). */
  readonly onEntry: (entry: TarEntry, header: Buffer) => void
  /** Bytes after the header: the content, then the padding to the next 512-byte block. */
  readonly onData?: (entry: TarEntry, chunk: Buffer, padding: boolean) => void
  /** A PAX global header ('g'), raw: it applies to every later entry, so a copier keeps it. */
  readonly onGlobal?: (header: Buffer) => void
}

const BLOCK = 512
// Extension headers are held in memory; real ones are a few hundred bytes
const MAX_EXTENSION = 1 << 20
const utf8 = new TextDecoder("utf-8", { fatal: true })
const lossy = new TextDecoder("utf-8")

const headerOnly = new Set(["1", "2", "3", "4", "5", "6"])

/** Normalizes a tar name: strips "/" and "./" prefixes, "." and empty components, the trailing "/". Keeps "..". */
export const normalizePath = (name: string): string => {
  const parts = name.split("/")
  const out: string[] = []
  for (const p of parts) if (p !== "" && p !== ".") out.push(p)
  return out.join("/")
}

const decode = (bytes: Uint8Array): { text: string; valid: boolean } => {
  try {
    return { text: utf8.decode(bytes), valid: true }
  } catch {
    return { text: lossy.decode(bytes), valid: false }
  }
}

const cstring = (buf: Buffer, start: number, length: number): Buffer => {
  const field = buf.subarray(start, start + length)
  const nul = field.indexOf(0)
  return nul === -1 ? field : field.subarray(0, nul)
}

const numeric = (buf: Buffer, start: number, length: number, offset: number): number => {
  const field = buf.subarray(start, start + length)
  const first = field[0] ?? 0
  if (first & 0x80) {
    // GNU base-256: big-endian, the first byte's high bit is the marker
    if (first === 0xff) throw new TarFormatError("negative base-256 number in a header", offset)
    let n = first & 0x7f
    for (let i = 1; i < field.length; i++) {
      n = n * 256 + (field[i] ?? 0)
      if (n > Number.MAX_SAFE_INTEGER) throw new TarFormatError("number in a header is too large", offset)
    }
    return n
  }
  let n = 0
  let i = 0
  while (i < field.length && (field[i] === 0x20 || field[i] === 0)) i++
  for (; i < field.length; i++) {
    const c = field[i] ?? 0
    if (c === 0 || c === 0x20) break
    if (c < 0x30 || c > 0x37) throw new TarFormatError("invalid octal number in a header", offset)
    n = n * 8 + (c - 0x30)
  }
  return n
}

const checksumOk = (block: Buffer, offset: number): boolean => {
  const stored = numeric(block, 148, 8, offset)
  let unsigned = 0
  let signed = 0
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : (block[i] ?? 0)
    unsigned += b
    signed += b > 127 ? b - 256 : b
  }
  // some old writers summed signed chars; both are accepted by GNU tar and libarchive
  return stored === unsigned || stored === signed
}

const isZero = (block: Buffer): boolean => {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false
  return true
}

type Pax = Map<string, Buffer>

/** Parses PAX records "LEN key=value\n"; values stay bytes (a path may hold anything). */
const parsePax = (data: Buffer, offset: number): Pax => {
  const out: Pax = new Map()
  let pos = 0
  while (pos < data.length) {
    if (data[pos] === 0) break
    const space = data.indexOf(0x20, pos)
    if (space === -1) throw new TarFormatError("malformed PAX record", offset)
    const len = Number(data.subarray(pos, space).toString("latin1"))
    if (!Number.isInteger(len) || len <= space - pos + 1 || pos + len > data.length)
      throw new TarFormatError("malformed PAX record length", offset)
    const record = data.subarray(space + 1, pos + len)
    if (record[record.length - 1] !== 0x0a) throw new TarFormatError("PAX record without newline", offset)
    const eq = record.indexOf(0x3d)
    if (eq === -1) throw new TarFormatError("PAX record without '='", offset)
    out.set(record.subarray(0, eq).toString("utf8"), Buffer.from(record.subarray(eq + 1, record.length - 1)))
    pos += len
  }
  return out
}

const typeOf = (flag: string, rawName: Buffer): TarEntryType => {
  switch (flag) {
    case "0":
    case "7":
      return "file"
    case "\0":
      // pre-POSIX archives marked directories only by the trailing slash
      return rawName[rawName.length - 1] === 0x2f ? "dir" : "file"
    case "1":
      return "hardlink"
    case "2":
      return "symlink"
    case "3":
      return "char"
    case "4":
      return "block"
    case "5":
      return "dir"
    case "6":
      return "fifo"
    default:
      return "other"
  }
}

type State =
  | { readonly kind: "header" }
  | { readonly kind: "extension"; readonly flag: string; readonly size: number; readonly data: Buffer[]; got: number; padding: number }
  | { readonly kind: "sparse-headers" }
  | { readonly kind: "data"; readonly entry: TarEntry; remaining: number; padding: number }
  | { readonly kind: "end" }

/** A push parser: feed it the uncompressed stream chunk by chunk; entries arrive through the handlers. */
export class TarParser {
  private state: State = { kind: "header" }
  private pending: Buffer[] = []
  private pendingLength = 0
  private position = 0
  // raw bytes of the current entry's headers, from its first extension header on
  private raw: Buffer[] = []
  private entryStart = 0
  private longName: Buffer | undefined
  private longLink: Buffer | undefined
  private pax: Pax | undefined
  private readonly global: Pax = new Map()
  private sparseEntry: { header: Buffer; entry: TarEntry } | undefined

  constructor(private readonly handlers: TarHandlers) {}

  /** True once the end-of-archive block was seen; later bytes are ignored (as GNU tar and libarchive do). */
  get ended(): boolean {
    return this.state.kind === "end"
  }

  /** Feeds bytes; throws TarFormatError, or whatever a handler throws. */
  write(chunk: Uint8Array): void {
    let buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    while (buf.length > 0) {
      const state = this.state
      if (state.kind === "end") {
        this.position += buf.length
        return
      }
      if (state.kind === "data") {
        if (state.remaining > 0) {
          const n = Math.min(state.remaining, buf.length)
          this.handlers.onData?.(state.entry, buf.subarray(0, n), false)
          state.remaining -= n
          this.position += n
          buf = buf.subarray(n)
          continue
        }
        if (state.padding > 0) {
          const n = Math.min(state.padding, buf.length)
          this.handlers.onData?.(state.entry, buf.subarray(0, n), true)
          state.padding -= n
          this.position += n
          buf = buf.subarray(n)
          continue
        }
        this.state = { kind: "header" }
        continue
      }
      if (state.kind === "extension") {
        const want = state.size - state.got + state.padding
        const n = Math.min(want, buf.length)
        const piece = buf.subarray(0, n)
        this.raw.push(Buffer.from(piece))
        const dataPart = Math.min(n, state.size - state.got)
        if (dataPart > 0) state.data.push(Buffer.from(piece.subarray(0, dataPart)))
        state.got += dataPart
        state.padding -= n - dataPart
        this.position += n
        buf = buf.subarray(n)
        if (state.got === state.size && state.padding === 0) this.finishExtension(state.flag, Buffer.concat(state.data))
        continue
      }
      // header or sparse-headers: whole 512-byte blocks
      const need = BLOCK - this.pendingLength
      const n = Math.min(need, buf.length)
      this.pending.push(buf.subarray(0, n))
      this.pendingLength += n
      buf = buf.subarray(n)
      if (this.pendingLength < BLOCK) continue
      const block = Buffer.concat(this.pending, BLOCK)
      this.pending = []
      this.pendingLength = 0
      const at = this.position
      this.position += BLOCK
      if (state.kind === "sparse-headers") this.sparseBlock(block)
      else this.headerBlock(block, at)
    }
  }

  /** Ends the stream; throws if it stopped inside an entry. A missing end-of-archive marker is tolerated. */
  end(): void {
    const s = this.state
    if (s.kind === "end") return
    if (s.kind === "header" && this.pendingLength === 0 && this.raw.length === 0) return
    if (s.kind === "data" && s.remaining === 0) return
    throw new TarFormatError("truncated archive", this.position)
  }

  private headerBlock(block: Buffer, at: number): void {
    if (isZero(block)) {
      if (this.raw.length > 0) throw new TarFormatError("end of archive inside an entry's extension headers", at)
      // libarchive and Go stop at the first zero block: anything after it is not part of the layer
      this.state = { kind: "end" }
      return
    }
    if (!checksumOk(block, at)) throw new TarFormatError("bad header checksum", at)
    if (this.raw.length === 0) this.entryStart = at
    this.raw.push(Buffer.from(block))
    const flag = String.fromCharCode(block[156] ?? 0)
    const size = numeric(block, 124, 12, at)
    if (flag === "L" || flag === "K" || flag === "x" || flag === "g" || flag === "X") {
      if (size > MAX_EXTENSION) throw new TarFormatError(`extension header of ${size} bytes`, at)
      this.state = { kind: "extension", flag, size, data: [], got: 0, padding: (BLOCK - (size % BLOCK)) % BLOCK }
      if (size === 0) this.finishExtension(flag, Buffer.alloc(0))
      return
    }
    const entry = this.buildEntry(block, flag, size, at)
    if (flag === "S" && (block[482] ?? 0) !== 0) {
      // old GNU sparse: more sparse maps follow in whole blocks before the data
      this.sparseEntry = { header: block, entry }
      this.state = { kind: "sparse-headers" }
      return
    }
    this.emit(entry)
  }

  private sparseBlock(block: Buffer): void {
    this.raw.push(Buffer.from(block))
    if ((block[504] ?? 0) !== 0) return
    const s = this.sparseEntry
    this.sparseEntry = undefined
    if (s) this.emit(s.entry)
  }

  private emit(entry: TarEntry): void {
    const header = Buffer.concat(this.raw)
    this.raw = []
    this.longName = undefined
    this.longLink = undefined
    this.pax = undefined
    this.handlers.onEntry(entry, header)
    this.state = { kind: "data", entry, remaining: entry.size, padding: (BLOCK - (entry.size % BLOCK)) % BLOCK }
  }

  private finishExtension(flag: string, data: Buffer): void {
    const at = this.entryStart
    if (flag === "L") this.longName = cstring(data, 0, data.length)
    else if (flag === "K") this.longLink = cstring(data, 0, data.length)
    else if (flag === "g") {
      for (const [k, v] of parsePax(data, at)) {
        if (v.length === 0) this.global.delete(k)
        else this.global.set(k, v)
      }
      const header = Buffer.concat(this.raw)
      this.raw = []
      this.handlers.onGlobal?.(header)
    } else {
      const pax = this.pax ?? new Map<string, Buffer>()
      for (const [k, v] of parsePax(data, at)) pax.set(k, v)
      this.pax = pax
    }
    this.state = { kind: "header" }
  }

  private paxValue(key: string): Buffer | undefined {
    const local = this.pax?.get(key)
    if (local !== undefined) return local.length === 0 ? undefined : local
    return this.global.get(key)
  }

  private paxNumber(key: string, fallback: number, at: number): number {
    const v = this.paxValue(key)
    if (v === undefined) return fallback
    const n = Number(v.toString("latin1"))
    if (!Number.isFinite(n) || n < 0) throw new TarFormatError(`bad PAX ${key}`, at)
    return n
  }

  private buildEntry(block: Buffer, flag: string, headerSize: number, at: number): TarEntry {
    const magic = block.subarray(257, 263).toString("latin1")
    const ustar = magic === "ustar\0"
    let name: Buffer = cstring(block, 0, 100)
    if (ustar) {
      const prefix = cstring(block, 345, 155)
      if (prefix.length > 0) name = Buffer.concat([prefix, Buffer.from("/"), name])
    }
    let link: Buffer = cstring(block, 157, 100)
    if (this.longName) name = this.longName
    if (this.longLink) link = this.longLink
    let hasNul = false
    const paxPath = this.paxValue("path")
    if (paxPath) {
      name = paxPath
      hasNul ||= paxPath.includes(0)
    }
    const paxLink = this.paxValue("linkpath")
    if (paxLink) {
      link = paxLink
      hasNul ||= paxLink.includes(0)
    }
    const sparse = flag === "S" || this.paxValue("GNU.sparse.major") !== undefined || this.paxValue("GNU.sparse.map") !== undefined || this.paxValue("GNU.sparse.size") !== undefined
    const sparseName = this.paxValue("GNU.sparse.name")
    if (sparseName) name = sparseName
    const declaredSize = this.paxNumber("size", headerSize, at)
    const type = typeOf(flag, name)
    const decodedName = decode(name)
    const decodedLink = decode(link)
    return {
      path: normalizePath(decodedName.text),
      rawPath: decodedName.text,
      nameBytes: new Uint8Array(name),
      linkBytes: new Uint8Array(link),
      validUtf8: decodedName.valid && decodedLink.valid,
      hasNul,
      type,
      typeflag: flag,
      mode: numeric(block, 100, 8, at) & 0o7777,
      uid: this.paxNumber("uid", numeric(block, 108, 8, at), at),
      gid: this.paxNumber("gid", numeric(block, 116, 8, at), at),
      // like Go's archive/tar: header-only types carry no content whatever the size field says
      size: headerOnly.has(flag) ? 0 : declaredSize,
      declaredSize,
      linkname: decodedLink.text,
      devmajor: numeric(block, 329, 8, at),
      devminor: numeric(block, 337, 8, at),
      mtime: Math.floor(this.paxNumber("mtime", numeric(block, 136, 12, at), at)),
      sparse,
      offset: this.entryStart,
    }
  }
}

/** The entries of a source (a Node Readable or any async iterable of bytes), content skipped. */
export async function* tarEntries(source: AsyncIterable<Uint8Array>): AsyncGenerator<TarEntry> {
  let ready: TarEntry[] = []
  const parser = new TarParser({ onEntry: (e) => ready.push(e) })
  for await (const chunk of source) {
    parser.write(chunk)
    if (ready.length > 0) {
      const batch = ready
      ready = []
      yield* batch
    }
  }
  parser.end()
  yield* ready
}

/** All entries of a source, in archive order. */
export const listTar = async (source: AsyncIterable<Uint8Array>): Promise<TarEntry[]> => {
  const entries: TarEntry[] = []
  for await (const e of tarEntries(source)) entries.push(e)
  return entries
}

/** What `filterTar` does with one entry: copy it, leave it out, or put these bytes (header + content) instead. */
export type TarDecision = "keep" | "drop" | { readonly replace: Buffer }

/** A new tar stream: kept entries byte for byte (extension headers and content), global headers kept, a fresh end marker. */
export async function* filterTar(source: AsyncIterable<Uint8Array>, decide: (entry: TarEntry) => TarDecision): AsyncGenerator<Buffer> {
  let out: Buffer[] = []
  let copying = false
  const parser = new TarParser({
    onEntry: (entry, header) => {
      const d = decide(entry)
      copying = d === "keep"
      if (d === "keep") out.push(header)
      else if (d !== "drop") out.push(d.replace)
    },
    onData: (_entry, chunk) => {
      if (copying) out.push(Buffer.from(chunk))
    },
    onGlobal: (header) => out.push(header),
  })
  for await (const chunk of source) {
    parser.write(chunk)
    if (out.length > 0) {
      const ready = out
      out = []
      yield* ready
    }
  }
  parser.end()
  yield* out
  yield tarEnd()
}

/** An entry to encode with `tarHeader`. */
export interface TarHeaderInput {
  /** A string is written as UTF-8; bytes are written as given (to make hostile test archives). */
  readonly name: string | Uint8Array
  readonly type: Exclude<TarEntryType, "other">
  readonly mode?: number
  readonly uid?: number
  readonly gid?: number
  readonly size?: number
  readonly linkname?: string | Uint8Array
  readonly devmajor?: number
  readonly devminor?: number
  readonly mtime?: number
  /** Extra PAX records (key to value) written before the header. */
  readonly pax?: Readonly<Record<string, string | Uint8Array>>
}

const flagOf: Record<Exclude<TarEntryType, "other">, string> = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  char: "3",
  block: "4",
  dir: "5",
  fifo: "6",
}

const bytesOf = (v: string | Uint8Array): Buffer => (typeof v === "string" ? Buffer.from(v, "utf8") : Buffer.from(v))

const octal = (block: Buffer, start: number, length: number, value: number): void => {
  const text = value.toString(8).padStart(length - 1, "0")
  if (text.length > length - 1) throw new Error(`tar field too small for ${value}`)
  block.write(text, start, "latin1")
  block[start + length - 1] = 0
}

const paxRecord = (key: string, value: Buffer): Buffer => {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from("\n")])
  // the length counts its own digits
  let len = body.length + 1
  while (String(len).length + body.length !== len) len = String(len).length + body.length
  return Buffer.concat([Buffer.from(String(len)), body])
}

const ustarBlock = (o: { name: Buffer; flag: string; mode: number; uid: number; gid: number; size: number; link: Buffer; major: number; minor: number; mtime: number }): Buffer => {
  const block = Buffer.alloc(BLOCK)
  o.name.copy(block, 0, 0, Math.min(100, o.name.length))
  octal(block, 100, 8, o.mode)
  octal(block, 108, 8, o.uid)
  octal(block, 116, 8, o.gid)
  octal(block, 124, 12, o.size)
  octal(block, 136, 12, o.mtime)
  block.write(o.flag, 156, "latin1")
  o.link.copy(block, 157, 0, Math.min(100, o.link.length))
  block.write("ustar\0" + "00", 257, "latin1")
  block.write("root", 265, "latin1")
  block.write("root", 297, "latin1")
  octal(block, 329, 8, o.major)
  octal(block, 337, 8, o.minor)
  block.fill(0x20, 148, 156)
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += block[i] ?? 0
  block.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, "latin1")
  return block
}

/** Encodes one entry's header (a PAX header first when the name or link is too long or extra records are given). */
export const tarHeader = (h: TarHeaderInput): Buffer => {
  const name = bytesOf(h.name)
  const link = bytesOf(h.linkname ?? "")
  const records: Buffer[] = []
  if (name.length > 100) records.push(paxRecord("path", name))
  if (link.length > 100) records.push(paxRecord("linkpath", link))
  for (const [k, v] of Object.entries(h.pax ?? {})) records.push(paxRecord(k, bytesOf(v)))
  const mode = h.mode ?? (h.type === "dir" ? 0o755 : h.type === "symlink" ? 0o777 : 0o644)
  const common = { mode, uid: h.uid ?? 0, gid: h.gid ?? 0, major: h.devmajor ?? 0, minor: h.devminor ?? 0, mtime: h.mtime ?? 0 }
  const main = ustarBlock({ ...common, name: name.subarray(0, 100), flag: flagOf[h.type], size: h.size ?? 0, link: link.subarray(0, 100) })
  if (records.length === 0) return main
  const data = Buffer.concat(records)
  const paxName = Buffer.from(`PaxHeaders/${name.toString("latin1").split("/").pop()?.slice(0, 80) ?? "x"}`, "latin1")
  const pax = ustarBlock({ ...common, mode: 0o644, name: paxName, flag: "x", size: data.length, link: Buffer.alloc(0) })
  return Buffer.concat([pax, data, Buffer.alloc(tarPadding(data.length)), main])
}

/** A PAX global header ('g'): its records apply to every later entry that does not override them. */
export const tarGlobalHeader = (records: Readonly<Record<string, string | Uint8Array>>): Buffer => {
  const data = Buffer.concat(Object.entries(records).map(([k, v]) => paxRecord(k, bytesOf(v))))
  const head = ustarBlock({ name: Buffer.from("GlobalHead"), flag: "g", mode: 0o644, uid: 0, gid: 0, size: data.length, link: Buffer.alloc(0), major: 0, minor: 0, mtime: 0 })
  return Buffer.concat([head, data, Buffer.alloc(tarPadding(data.length))])
}

/** Zero bytes that pad `size` content bytes to a whole block. */
export const tarPadding = (size: number): number => (BLOCK - (size % BLOCK)) % BLOCK

/** The end-of-archive marker: two zero blocks. */
export const tarEnd = (): Buffer => Buffer.alloc(2 * BLOCK)

/** A whole entry: header, content, padding. */
export const tarEntry = (h: Omit<TarHeaderInput, "size">, content?: string | Uint8Array): Buffer => {
  const body = content === undefined ? Buffer.alloc(0) : bytesOf(content)
  return Buffer.concat([tarHeader({ ...h, size: body.length }), body, Buffer.alloc(tarPadding(body.length))])
}
