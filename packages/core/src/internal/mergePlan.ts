// mergePlan: which entries of each layer's ostree commit to skip so plain union checkouts give the OCI tree.
// Pure: layer listings in, skip lists and after-checkout fix-ups out; `parseOstreeLs` reads `ostree ls -R`.
import * as Effect from "effect/Effect"
import { LayerRejected } from "../Errors.ts"

/** One path in a layer, as its ostree commit (or its tar) holds it. */
export interface LayerEntry {
  /** Relative to the rootfs, normalized; "" is the root. */
  readonly path: string
  readonly type: "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo"
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly size: number
  /** Symlink or hardlink target, as written. */
  readonly target?: string
}

/** A device node or FIFO: ostree cannot hold it, so it is recreated after checkout. */
export interface DeviceEntry {
  readonly path: string
  readonly type: "char" | "block" | "fifo"
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly devmajor: number
  readonly devminor: number
}

/** A hardlink whose target is not earlier in its own tar: left out of the commit, linked after checkout. */
export interface ExternalHardlink {
  readonly path: string
  /** Normalized path of the file it links to. */
  readonly target: string
}

/** One layer as the planner sees it, bottom-up order. */
export interface PlanLayer {
  readonly digest: string
  /** What the layer's commit holds, whiteout files (`.wh.X`, `.wh..wh..opq`) included. */
  readonly entries: ReadonlyArray<LayerEntry>
  /** Devices and FIFOs the layer had (not in the commit). */
  readonly devices?: ReadonlyArray<DeviceEntry>
  /** Hardlinks left out of the commit (see ExternalHardlink). */
  readonly externalHardlinks?: ReadonlyArray<ExternalHardlink>
  /**
   * Directories the commit holds only because ostree created missing parents (`--tar-autocreate-parents`):
   * they carry no metadata of their own and must not replace what lower layers have there.
   */
  readonly implicitDirs?: ReadonlyArray<string>
}

/** Final metadata of a directory whose on-disk metadata may be another layer's after checkout. */
export interface DirectoryFix {
  readonly path: string
  readonly mode: number
  readonly uid: number
  readonly gid: number
}

/** A hardlink to create after checkout: `path` gets the content `source.layer` had at `target`. */
export interface HardlinkFix {
  readonly path: string
  readonly target: string
  /** The layer whose file at `target` the link points to. */
  readonly source: { readonly layer: string; readonly path: string }
  /** The final tree still holds that very file at `target`, so `link(target, path)` is right. */
  readonly sameAsFinal: boolean
}

/** How to check out the layers so the union equals the OCI result, in either order. */
export interface MergePlan {
  /** Per layer (bottom-up): lines for `ostree checkout --skip-list=FILE`. Directories end in "/" and skip their subtree. */
  readonly layers: ReadonlyArray<{ readonly digest: string; readonly skip: ReadonlyArray<string> }>
  /**
   * Consecutive layers that one `ostree checkout --from-stdin` lays down with one skip list (see
   * batchLayers), bottom-up.
   */
  readonly batches: ReadonlyArray<CheckoutBatch>
  /** Directories to chmod/chown after all checkouts; the root ("") is always listed. */
  readonly directories: ReadonlyArray<DirectoryFix>
  /** Devices and FIFOs of the final tree, to mknod after checkout. */
  readonly devices: ReadonlyArray<DeviceEntry>
  readonly hardlinks: ReadonlyArray<HardlinkFix>
}

const WH = ".wh."
const OPAQUE = ".wh..wh..opq"

const baseName = (p: string): string => p.slice(p.lastIndexOf("/") + 1)
const parentOf = (p: string): string => {
  const i = p.lastIndexOf("/")
  return i === -1 ? "" : p.slice(0, i)
}
const depthOf = (p: string): number => {
  if (p === "") return 0
  let d = 1
  for (let i = 0; i < p.length; i++) if (p.charCodeAt(i) === 47) d++
  return d
}

/** The path a whiteout name hides, "" when it is the opaque marker, undefined when it is not a whiteout. */
export const whiteoutTarget = (name: string): string | undefined =>
  name === OPAQUE ? "" : name.startsWith(WH) ? name.slice(WH.length) : undefined

/** The lines of a skip-list file (ostree reads it as UTF-8, splits on "\n", ignores empty lines, does not trim). */
export const skipListText = (skip: ReadonlyArray<string>): string => skip.map((p) => `${p}\n`).join("")

const lsTypes: Readonly<Record<string, LayerEntry["type"]>> = { "-": "file", d: "dir", l: "symlink", c: "char", b: "block" }
// ostree ls prints "%c0%04o %u %u %6u PATH" and " -> TARGET" for symlinks
const lsLine = /^([-dlcb])0([0-7]{4,}) (\d+) (\d+) +(\d+) (\/.*)$/

/**
 * Reads `ostree ls -R COMMIT` output. A symlink line is "PATH -> TARGET": when a link's name itself holds " -> "
 * only `names` (the NUL-separated `ostree ls -R --nul-filenames-only COMMIT`, same order) splits it right;
 * without it the first " -> " is taken as the separator (scanLayer refuses such link names). Throws on a line it cannot read.
 */
export const parseOstreeLs = (stdout: string, names?: string): LayerEntry[] => {
  const list = names === undefined ? undefined : names.split("\0").filter((n) => n !== "")
  const lines = stdout.split("\n")
  if (lines[lines.length - 1] === "") lines.pop()
  if (list && list.length !== lines.length) throw new Error(`ostree ls: ${lines.length} lines but ${list.length} names`)
  return lines.map((line, i) => {
    const m = lsLine.exec(line)
    if (!m) throw new Error(`ostree ls: cannot read line ${JSON.stringify(line)}`)
    const type = lsTypes[m[1] ?? ""] ?? "file"
    let full = m[6] ?? "/"
    let target: string | undefined
    if (type === "symlink") {
      const known = list?.[i]
      if (known !== undefined) {
        if (!full.startsWith(`${known} -> `)) throw new Error(`ostree ls: line ${JSON.stringify(line)} does not match name ${JSON.stringify(known)}`)
        target = full.slice(known.length + 4)
        full = known
      } else {
        const arrow = full.indexOf(" -> ")
        if (arrow === -1) throw new Error(`ostree ls: symlink without target: ${JSON.stringify(line)}`)
        target = full.slice(arrow + 4)
        full = full.slice(0, arrow)
      }
    } else if (list?.[i] !== undefined && list[i] !== full) {
      throw new Error(`ostree ls: line ${JSON.stringify(line)} does not match name ${JSON.stringify(list[i])}`)
    }
    const entry: LayerEntry = {
      path: full.replace(/^\/+/, ""),
      type,
      mode: parseInt(m[2] ?? "0", 8) & 0o7777,
      uid: Number(m[3]),
      gid: Number(m[4]),
      size: Number(m[5]),
      ...(target !== undefined ? { target } : {}),
    }
    return entry
  })
}

// One layer's contribution at a path, alive while no upper layer hides it
interface Instance {
  readonly layer: number
  readonly kind: "entry" | "device" | "link"
  readonly dir: boolean
  readonly symlink: boolean
  /** Carries metadata (false for directories ostree invented as parents). */
  readonly explicit: boolean
  readonly mode: number
  readonly uid: number
  readonly gid: number
  /** Still part of the merged tree after the last layer. */
  alive: boolean
  device?: DeviceEntry | undefined
  link?: { target: string; source: Instance | undefined; sourcePath: string } | undefined
}

// A path of the merged tree: one instance, or for a directory every layer's that is still merged into it
interface Node {
  readonly instances: Instance[]
  /** Paths of the children, for directories. */
  readonly kids: Set<string> | undefined
  readonly parent: Node | undefined
}

interface Item {
  readonly path: string
  readonly parent: string
  readonly instance: Instance
}

class Rejection {
  constructor(readonly layer: string, readonly entry: string, readonly reason: string) {}
}

const compute = (layers: ReadonlyArray<PlanLayer>): MergePlan => {
  const cur = new Map<string, Node>()
  // per layer, what it holds at each path: its commit's entries (whiteouts aside), devices, links
  const owns: Array<Map<string, Instance>> = []

  // drops a path and everything below it from the merged tree
  const kill = (p: string, node?: Node) => {
    const n = node ?? cur.get(p)
    if (!n) return
    n.parent?.kids?.delete(p)
    if (!n.kids) {
      cur.delete(p)
      return
    }
    const stack = [p]
    while (stack.length > 0) {
      const q = stack.pop()!
      const n = cur.get(q)
      if (!n) continue
      if (n.kids) for (const k of n.kids) stack.push(k)
      cur.delete(q)
    }
  }
  const insert = (p: string, inst: Instance, parent: Node | undefined) => {
    cur.set(p, { instances: [inst], kids: inst.dir ? new Set() : undefined, parent })
    parent?.kids?.add(p)
  }
  const head = (n: Node): Instance => n.instances[n.instances.length - 1]!
  // the rootfs exists before any layer: a listing without "/" still has a root to hang entries on
  insert("", { layer: -1, kind: "entry", dir: true, symlink: false, explicit: false, mode: 0o755, uid: 0, gid: 0, alive: false }, undefined)

  layers.forEach((layer, li) => {
    const reject = (entry: string, reason: string): never => {
      throw new Rejection(layer.digest, entry, reason)
    }
    const implicit = new Set(layer.implicitDirs ?? [])
    const whiteouts: LayerEntry[] = []
    const items: Item[] = []
    const own = new Map<string, Instance>()
    owns.push(own)
    for (const e of layer.entries) {
      if (e.path.includes("\n")) reject(e.path, "a newline in a name cannot be written to ostree's line-based skip list")
      const wt = e.path.includes(WH) ? whiteoutTarget(baseName(e.path)) : undefined
      if (wt !== undefined) {
        if (e.type === "dir") reject(e.path, "a whiteout must not be a directory")
        if (e.path.endsWith(`/${OPAQUE}`) || e.path === OPAQUE) whiteouts.push(e)
        else if (wt === "" || wt === "." || wt === "..") reject(e.path, "whiteout of an empty, '.' or '..' name")
        else whiteouts.push(e)
        continue
      }
      const isImplicit = e.type === "dir" && implicit.has(e.path)
      const inst: Instance = { layer: li, kind: "entry", dir: e.type === "dir", symlink: e.type === "symlink", explicit: !isImplicit, mode: e.mode, uid: e.uid, gid: e.gid, alive: false }
      if (e.path === "" && !inst.dir) reject(e.path, "the root must be a directory")
      own.set(e.path, inst)
      items.push({ path: e.path, parent: parentOf(e.path), instance: inst })
    }
    for (const d of layer.devices ?? []) {
      const inst: Instance = { layer: li, kind: "device", dir: false, symlink: false, explicit: true, mode: d.mode, uid: d.uid, gid: d.gid, alive: false, device: d }
      own.set(d.path, inst)
      items.push({ path: d.path, parent: parentOf(d.path), instance: inst })
    }
    const links: Item[] = []
    for (const h of layer.externalHardlinks ?? []) {
      const inst: Instance = { layer: li, kind: "link", dir: false, symlink: false, explicit: true, mode: 0, uid: 0, gid: 0, alive: false, link: { target: h.target, source: undefined, sourcePath: h.target } }
      own.set(h.path, inst)
      const item = { path: h.path, parent: parentOf(h.path), instance: inst }
      items.push(item)
      links.push(item)
    }

    // whiteouts hide what lower layers have, never what this layer has: apply them before its entries
    for (const w of whiteouts) {
      const dir = parentOf(w.path)
      let q = dir
      while (q !== "" && !cur.has(q)) q = parentOf(q)
      const near = cur.get(q)
      if (near && head(near).symlink)
        reject(w.path, `whiteout below ${JSON.stringify(q)}, a symlink from a lower layer: removing through it would reach outside the rootfs`)
      const dirNode = cur.get(dir)
      if (!dirNode?.kids) continue
      if (baseName(w.path) === OPAQUE) for (const k of [...dirNode.kids]) kill(k)
      else kill(dir === "" ? baseName(w.path).slice(WH.length) : `${dir}/${baseName(w.path).slice(WH.length)}`)
    }

    // parents before children, so a path's parent is in the merged tree when the path arrives
    const buckets: Item[][] = []
    for (const it of items) (buckets[depthOf(it.path)] ??= []).push(it)
    for (const bucket of buckets) {
      if (!bucket) continue
      for (const { path: p, parent: q, instance: inst } of bucket) {
        const below = p === "" ? undefined : cur.get(q)
        if (p !== "") {
          const mine = own.get(q)
          if (mine) {
            if (mine.symlink) reject(p, `its parent ${JSON.stringify(q)} is a symlink in the same layer`)
            if (!mine.dir) reject(p, `its parent ${JSON.stringify(q)} is not a directory in the same layer`)
          } else {
            if (below && head(below).symlink)
              reject(p, `its parent ${JSON.stringify(q)} is a symlink from a lower layer: writing through it would reach outside the rootfs`)
            if (!below?.kids) reject(p, `its parent ${JSON.stringify(q)} is not a directory in the merged tree`)
          }
        }
        const existing = cur.get(p)
        if (!inst.explicit) {
          // a directory ostree made up: it only stands in for whatever lower layers have there
          if (!existing) insert(p, inst, below)
          else if (existing.kids) existing.instances.push(inst)
          else if (head(existing).symlink) reject(p, `a parent directory missing from the layer is a symlink from a lower layer: writing through it would reach outside the rootfs`)
          else reject(p, "a parent directory missing from the layer is a non-directory in a lower layer")
          continue
        }
        if (existing && existing.kids && inst.dir) existing.instances.push(inst)
        else {
          if (existing) kill(p, existing)
          insert(p, inst, below)
        }
      }
    }

    for (const { path: p, instance } of links) {
      const l = instance.link!
      const t = cur.get(l.target)
      if (!t) reject(p, `hardlink to ${JSON.stringify(l.target)}, which no layer up to this one holds`)
      let src = head(t!)
      if (src.dir) reject(p, `hardlink to ${JSON.stringify(l.target)}, a directory`)
      if (src.link) {
        // a link to a link made after checkout is a link to the same file
        if (!src.link.source) reject(p, `hardlink to ${JSON.stringify(l.target)}, a link that points nowhere`)
        l.sourcePath = src.link.sourcePath
        src = src.link.source!
      }
      if (src.device) {
        // a link to a device is another node with the same numbers
        instance.device = { ...src.device, path: p }
        instance.link = undefined
      } else l.source = src
    }
  })

  const directories: DirectoryFix[] = []
  const devices: DeviceEntry[] = []
  const hardlinks: HardlinkFix[] = []
  for (const [p, n] of cur) {
    for (const inst of n.instances) inst.alive = true
    const top = head(n)
    if (n.kids) {
      let meta: { mode: number; uid: number; gid: number } | undefined
      for (let k = n.instances.length - 1; k >= 0 && !meta; k--) if (n.instances[k]!.explicit) meta = n.instances[k]
      // a directory no layer describes gets what an unpacker's mkdir gives it
      const final = meta ?? { mode: 0o755, uid: 0, gid: 0 }
      const differs = n.instances.some((i) => i.mode !== final.mode || i.uid !== final.uid || i.gid !== final.gid)
      if (p === "" || differs) directories.push({ path: p, mode: final.mode, uid: final.uid, gid: final.gid })
    } else if (top.device) devices.push(top.device)
    else if (top.link?.source) {
      const src = top.link.source
      const now = cur.get(top.link.sourcePath)
      hardlinks.push({
        path: p,
        target: top.link.target,
        source: { layer: layers[src.layer]!.digest, path: top.link.sourcePath },
        sameAsFinal: now !== undefined && head(now) === src,
      })
    }
  }

  const plans = layers.map((layer, li) => {
    const own = owns[li]!
    const skip: string[] = []
    for (const e of layer.entries) {
      if (e.path === "" || own.get(e.path)?.alive) continue
      // a skipped directory takes its subtree with it: list only the top of what goes
      let q = parentOf(e.path)
      while (q !== "" && !own.has(q)) q = parentOf(q)
      const above = own.get(q)
      if (above && !above.alive) continue
      if (e.path.includes("\n")) throw new Rejection(layer.digest, e.path, "a newline in a name cannot be written to ostree's line-based skip list")
      skip.push(e.type === "dir" ? `/${e.path}/` : `/${e.path}`)
    }
    return { digest: layer.digest, skip }
  })
  directories.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  return { layers: plans, batches: batchLayers(layers, plans.map((p) => p.skip)), directories, devices, hardlinks }
}

/** Whether a skip list (as a set of its lines) leaves out a directory above `p`. */
const ancestorSkipped = (lines: ReadonlySet<string>, p: string): boolean => {
  for (let q = parentOf(p); q !== ""; q = parentOf(q)) if (lines.has(`/${q}/`)) return true
  return false
}

/** Whether a skip list may leave out `p` (the path itself, whatever its type, or a directory above it). */
const skipped = (lines: ReadonlySet<string>, p: string): boolean => lines.has(`/${p}`) || lines.has(`/${p}/`) || ancestorSkipped(lines, p)

/** A batch: layers (indices, bottom-up) laid down by one process, and the skip list they share. */
export interface CheckoutBatch {
  readonly layers: ReadonlyArray<number>
  readonly skip: ReadonlyArray<string>
}

/**
 * Groups consecutive layers whose checkouts can share one process: each ostree process costs ~20 ms
 * here, more than a small layer's files. One skip list serves the group: the members' lists
 * together, less the lines for plain file overrides inside the group (a lower member's file that
 * an upper member replaces: --union overwrites it bottom-up and --union-add keeps the upper one
 * top-down, so skipping it only saved a write). Any other line that names a path a member keeps
 * would drop that path, so such layers go to separate batches.
 */
export const batchLayers = (layers: ReadonlyArray<PlanLayer>, skips: ReadonlyArray<ReadonlyArray<string>>): CheckoutBatch[] => {
  const sets = skips.map((s) => new Set(s))
  const types = layers.map((l) => new Map(l.entries.map((e) => [e.path, e.type] as const)))
  // what a layer keeps, as ostree reads its own list: a directory's line ends in "/", another's does not
  const kept = layers.map((l, i) =>
    l.entries.filter((e) => e.path !== "" && !sets[i]!.has(e.type === "dir" ? `/${e.path}/` : `/${e.path}`) && !ancestorSkipped(sets[i]!, e.path)),
  )
  // the line `/p` only stands for an overridden lower file: i above j, and p no directory in either
  const override = (i: number, j: number, p: string) => i > j && types[i]!.get(p) !== "dir" && types[j]!.has(p) && types[j]!.get(p) !== "dir" && !sets[j]!.has(`/${p}/`) && !ancestorSkipped(sets[j]!, p)
  const blocks = (i: number, j: number) => sets[j]!.size > 0 && kept[i]!.some((e) => skipped(sets[j]!, e.path) && !override(i, j, e.path))
  const groups: number[][] = []
  for (let i = 0; i < layers.length; i++) {
    const last = groups[groups.length - 1]
    if (last && last.every((j) => !blocks(i, j) && !blocks(j, i))) last.push(i)
    else groups.push([i])
  }
  return groups.map((g) => {
    const keptHere = new Set(g.flatMap((i) => kept[i]!.map((e) => `/${e.path}`)))
    const lines = new Set(g.flatMap((i) => skips[i]!))
    return { layers: g, skip: [...lines].filter((l) => !keptHere.has(l)) }
  })
}

/** Plans the checkout of `layers` (bottom-up); fails with LayerRejected on an entry that would escape through a symlink or is malformed. */
export const planMerge = (layers: ReadonlyArray<PlanLayer>): Effect.Effect<MergePlan, LayerRejected> =>
  Effect.suspend(() => {
    try {
      return Effect.succeed(compute(layers))
    } catch (e) {
      if (e instanceof Rejection) return Effect.fail(new LayerRejected({ layer: e.layer, entry: e.entry, reason: e.reason }))
      throw e
    }
  }).pipe(Effect.withSpan("mergePlan.planMerge"))
