// Layers: an image's layers into BUNDLE/rootfs as hardlinks from ostree, bottom-up (union) or top-down (union-add).
import * as Effect from "effect/Effect"
import { chmod, chown, lchown, link as hardlinkFile, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises"
import { existsSync } from "node:fs"
import path from "node:path"
import * as Ostree from "./Ostree.ts"
import { blobRef } from "./OstreeRefs.ts"
import type { Image } from "./Images.ts"
import { CommandFailed, HardlinkImpossible, ImageInUse, ImageNotFound, InvalidInput } from "./Errors.ts"
import { parseOstreeLs, planMerge, skipListText, type MergePlan } from "./internal/mergePlan.ts"
import type { Repo } from "./Ostree.ts"
import { createHash, randomBytes } from "node:crypto"
import type { DeviceEntry } from "./internal/layerScan.ts"
import { layerExtrasKey, type LayerExtras } from "./Pull.ts"
import { Spawn } from "./Spawn.ts"
import { realOf, within } from "./Paths.ts"
import * as RepoLock from "./RepoLock.ts"

/** union: bottom-up, upper files overwrite; union-add: top-down, existing files stay. */
export type LayerOrder = "union" | "union-add"

/** A bundle directory: `manifest.json`, `rootfs/`, later `config.json`. */
export interface Bundle {
  readonly path: string
  readonly rootfs: string
  readonly image: Image
  readonly link: "hardlink" | "copy"
  readonly order: LayerOrder
}

/** Written beside rootfs: how it was made (RuntimeSpec refuses a writable root over hardlinks). */
export interface CheckoutMarker {
  readonly mode: "hardlink" | "copy"
  readonly image: string
  readonly digest: string
  readonly order: LayerOrder
  /** The image's shared read-only checkout the bundle runs on, when it has no rootfs of its own. */
  readonly rootfs?: string
}

export const markerFile = ".syscontainers-checkout.json"

/** What applyLayers takes. */
export interface ApplyLayersOptions {
  readonly image: Image
  /** The bundle directory; created, must not hold a rootfs yet. */
  readonly into: string
  readonly order?: LayerOrder
  /** hardlink (default) shares inodes with the store; copy makes a writable private tree. */
  readonly link?: "hardlink" | "copy"
  /**
   * Run on the image's one read-only checkout, kept in the repo and made at most once, instead of a
   * tree of the bundle's own: a bundle then costs its config and nothing more (20 containers, one
   * tree). Hardlinks only: the root must stay read-only anyway.
   */
  readonly shared?: boolean
  /** Hears who holds the repo's lock while the checkout waits for it (a pull naming its image, an rmi). */
  readonly waiting?: (holder: string) => void
}

const isRoot = () => process.getuid?.() === 0

const recreateDevice = (rootfs: string, d: DeviceEntry) =>
  Effect.gen(function* () {
    const target = path.join(rootfs, d.path)
    if (isRoot()) {
      const spawn = yield* Spawn
      const kind = d.type === "fifo" ? ["p"] : [d.type === "char" ? "c" : "b", String(d.devmajor), String(d.devminor)]
      yield* spawn.run(["mknod", "-m", (d.mode & 0o7777).toString(8), target, ...kind])
      yield* Effect.promise(() => lchown(target, d.uid, d.gid))
    } else if (d.type === "fifo") {
      const spawn = yield* Spawn
      yield* spawn.run(["mkfifo", "-m", (d.mode & 0o777).toString(8), target])
    } else {
      // a rootless user cannot mknod: an empty file marks the place, as rootless unpackers do
      yield* Effect.promise(() => writeFile(target, "", { mode: d.mode & 0o777 }))
    }
  })

const checkoutFailed = (repo: string, into: string) => (e: CommandFailed) =>
  /cross-device|EXDEV|Invalid cross-device link|Unable to do hardlink/i.test(e.stderrTail)
    ? new HardlinkImpossible({ repo, into, detail: e.stderrTail.trim().split("\n").pop() ?? "" })
    : e

/** Lays the image's layers down into `rootfs` (which exists, empty): the batches, then the fix-ups. */
const layDown = (image: Image, rootfs: string, order: LayerOrder, link: "hardlink" | "copy", into: string) =>
  Effect.gen(function* () {
    const repo = image.repo
    const { plan, skipDir } = yield* cachedPlan(repo, image)
    // one ostree process per batch of layers (see MergePlan.batches), bottom-up or top-down
    const batches = plan.batches.map(({ layers }, k) => ({ layers, k }))
    for (const { layers, k } of order === "union" ? batches : [...batches].reverse()) {
      const refs = (order === "union" ? layers : [...layers].reverse()).map((i) => blobRef(plan.layers[i]!.digest))
      yield* Ostree.checkoutMany(repo, refs, { into: rootfs, union: order, skipList: path.join(skipDir, `batch-${k}.skip`), link }).pipe(
        Effect.mapError((e) => (e._tag === "CommandFailed" ? checkoutFailed(repo.path, into)(e) : e)),
      )
    }

    // a directory in several layers keeps the metadata of the first checkout: set the final one
    for (const d of plan.directories) {
      const target = path.join(rootfs, d.path)
      yield* Effect.promise(() => chmod(target, d.mode & 0o7777))
      if (isRoot() && repo.mode === "bare") yield* Effect.promise(() => chown(target, d.uid, d.gid))
    }
    for (const d of plan.devices) yield* recreateDevice(rootfs, d)
    // hardlinks ostree could not commit (their target was in a lower layer)
    for (const h of plan.hardlinks) {
      const at = path.join(rootfs, h.path)
      yield* Effect.promise(() => rm(at, { force: true }))
      if (h.sameAsFinal) yield* Effect.promise(() => hardlinkFile(path.join(rootfs, h.target), at))
      else yield* Ostree.checkout(repo, { ref: blobRef(h.source.layer), into: at, subpath: `/${h.source.path}`, link })
    }
  })

const writeMarker = (dir: string, marker: CheckoutMarker) => Effect.promise(() => writeFile(path.join(dir, markerFile), JSON.stringify(marker, null, 2) + "\n"))

/** Where a repo keeps an image's shared read-only checkout (one per set of layers; both orders give the same tree). */
export const sharedCheckoutDir = (repo: Repo, image: Image) => path.join(repo.path, "syscontainers", "rootfs", planKey(image))

/**
 * The image's shared checkout, made now if the repo has none: laid down in a directory of its own
 * and renamed into place whole, so a reader (or a racing maker) never sees half a tree.
 */
const sharedCheckout = (image: Image, order: LayerOrder, into: string) =>
  Effect.gen(function* () {
    const dir = sharedCheckoutDir(image.repo, image)
    const rootfs = path.join(dir, "rootfs")
    if (existsSync(path.join(dir, markerFile))) return rootfs
    const tmp = asideOf(dir, "tmp")
    yield* Effect.gen(function* () {
      yield* Effect.promise(() => mkdir(path.join(tmp, "rootfs"), { recursive: true }))
      yield* layDown(image, path.join(tmp, "rootfs"), order, "hardlink", into)
      // the marker goes in last: a tree with one is whole
      yield* writeMarker(tmp, { mode: "hardlink", image: image.name, digest: image.digest, order })
      yield* Effect.promise(() => installWhole(tmp, dir, (d) => existsSync(path.join(d, markerFile))))
    }).pipe(Effect.onExit((exit) => (exit._tag === "Failure" ? Effect.promise(() => rm(tmp, { recursive: true, force: true })) : Effect.void)))
    return rootfs
  })

/** A name beside `dir` for a tree on its way in or out, unique to this process and call. */
const asideOf = (dir: string, why: "tmp" | "gone") => `${dir}.${why}-${process.pid}-${randomBytes(4).toString("hex")}`

/**
 * Puts the tree made aside at `tmp` in place at `dir`, whole. A `dir` already there is either
 * whole (another maker won: theirs stands, ours goes) or a leftover that never was (an interrupted
 * removal): that one is removed and ours goes in.
 */
const installWhole = async (tmp: string, dir: string, whole: (dir: string) => boolean): Promise<void> => {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await rename(tmp, dir)
      return
    } catch {
      if (whole(dir)) return rm(tmp, { recursive: true, force: true })
      await removeWhole(dir)
    }
  }
  throw new Error(`cannot put ${tmp} in place at ${dir}`)
}

/** Removes a tree so that no reader sees it half gone: renamed aside (one atomic step), then deleted. */
const removeWhole = async (dir: string): Promise<void> => {
  const gone = asideOf(dir, "gone")
  try {
    await rename(dir, gone)
  } catch {
    return // not there
  }
  await rm(gone, { recursive: true, force: true })
}

/** Checks the image's layers out into `into/rootfs` (or uses the shared checkout) and writes `into/manifest.json`. */
export const applyLayers = Effect.fn("Layers.applyLayers")(function* (o: ApplyLayersOptions) {
  const order = o.order ?? "union"
  const link = o.link ?? "hardlink"
  const into = path.resolve(o.into)
  const own = path.join(into, "rootfs")
  if (o.shared && link === "copy")
    return yield* Effect.fail(new InvalidInput({ input: into, reason: "a shared checkout is read-only hardlinks; a copy is a private writable tree", fix: "drop one of copy and shared" }))

  // a reader's lock: no rmi or pull takes away the commits or the shared tree this reads until it is
  // done (and, shared, recorded as the tree's user); other checkouts go on at the same time. What
  // follows is checked once it is held: a wait may be long, and a writer may change things meanwhile
  const locked = RepoLock.hold(o.image.repo, `checkout ${o.image.name} into ${into}`, { shared: true, ...(o.waiting ? { waiting: o.waiting } : {}) })
  const checkout = Effect.gen(function* () {
    if (existsSync(own) && (yield* Effect.promise(() => readdir(own))).length > 0)
      return yield* Effect.fail(new InvalidInput({ input: own, reason: "already holds a rootfs", fix: "remove the bundle first or check out into a new directory" }))
    if (o.shared && existsSync(path.join(into, markerFile)))
      return yield* Effect.fail(new InvalidInput({ input: into, reason: `already holds a checkout (${markerFile})`, fix: "remove the bundle first or check out into a new directory" }))
    // the image was read before the lock: an rmi, or a pull that moved its name, may have taken
    // its layers since (layers another image shares stay, and serve this checkout as well)
    const gone = o.image.manifest.layers.find((l) => !Ostree.hasRef(o.image.repo, blobRef(l.digest)))
    if (gone)
      return yield* Effect.fail(new ImageNotFound({ image: o.image.name, where: o.image.repo.path, detail: `its layer ${gone.digest} was removed (by an rmi, or a pull that moved the name) since the image was read: pull it again` }))
    const bundleExisted = existsSync(into)
    return yield* Effect.gen(function* () {
      yield* Effect.promise(() => mkdir(o.shared ? into : own, { recursive: true }))
      yield* Effect.promise(() => writeFile(path.join(into, "manifest.json"), JSON.stringify(o.image.manifest, null, 2) + "\n"))
      const rootfs = o.shared ? yield* sharedCheckout(o.image, order, into) : own
      if (o.shared) yield* recordSharedUser(o.image, into)
      if (!o.shared) yield* layDown(o.image, own, order, link, into)
      yield* writeMarker(into, { mode: link, image: o.image.name, digest: o.image.digest, order, ...(o.shared ? { rootfs } : {}) })
      return { path: into, rootfs, image: o.image, link, order } satisfies Bundle
    }).pipe(
      // a failed checkout leaves no half-made bundle behind
      Effect.onExit((exit) =>
        exit._tag === "Failure"
          ? Effect.promise(async () => {
              if (!bundleExisted) return rm(into, { recursive: true, force: true })
              // what this call wrote in the bundle it found, and nothing else there
              await rm(own, { recursive: true, force: true })
              await Promise.all([markerFile, "manifest.json"].map((f) => rm(path.join(into, f), { force: true })))
            })
          : Effect.void,
      ),
    )
  })
  return yield* Effect.scoped(Effect.zipRight(locked, checkout))
})

/** A bundle's root filesystem: the shared checkout its marker names, else its own rootfs/. */
export const rootfsOf = (bundle: string): Effect.Effect<string> =>
  Effect.map(readMarker(bundle), (m) => m?.rootfs ?? path.join(path.resolve(bundle), "rootfs"))

/**
 * Removes an image's shared checkout, unless a container still runs on it (its config's root is
 * there): emptying it would empty theirs.
 */
export const forgetSharedCheckout = (image: Image, containers: ReadonlyArray<{ readonly name: string; readonly bundle: string }>) =>
  Effect.gen(function* () {
    const dir = sharedCheckoutDir(image.repo, image)
    if (!existsSync(dir)) return
    // bundles checked out on it, running or not: without the tree they could never run again
    const bundles = yield* usersOf(dir)
    const users: string[] = []
    for (const c of containers) {
      const root = yield* Effect.promise(() =>
        readFile(path.join(c.bundle, "config.json"), "utf8").then((t) => (JSON.parse(t) as { root?: { path?: string } }).root?.path, () => undefined),
      )
      // by real paths: a repo reached through a symlink names the same tree
      if (root !== undefined && within(path.resolve(c.bundle, root), dir)) users.push(c.name)
    }
    if (users.length > 0 || bundles.length > 0) return yield* Effect.fail(new ImageInUse({ image: image.name, containers: users, bundles }))
    yield* Effect.promise(() => removeWhole(dir))
  })

// the bundles a shared checkout was made for: one file each, named by the bundle's path's hash
const usersDir = (dir: string) => path.join(dir, "users")
const recordSharedUser = (image: Image, bundle: string) =>
  Effect.promise(async () => {
    const users = usersDir(sharedCheckoutDir(image.repo, image))
    await mkdir(users, { recursive: true })
    await writeFile(path.join(users, createHash("sha256").update(realOf(bundle)).digest("hex").slice(0, 32)), realOf(bundle))
  })
/** The recorded bundles of the shared tree at `dir` whose marker still points at it. */
const usersOf = (dir: string) =>
  Effect.gen(function* () {
    const users: string[] = []
    for (const bundle of yield* sharedUsers(dir)) {
      const marker = yield* readMarker(bundle)
      if (marker?.rootfs !== undefined && realOf(marker.rootfs) === realOf(path.join(dir, "rootfs"))) users.push(bundle)
    }
    return users
  })
const sharedUsers = (dir: string) =>
  Effect.promise(async () => {
    const names = await readdir(usersDir(dir)).catch(() => [] as string[])
    return Promise.all(names.map((n) => readFile(path.join(usersDir(dir), n), "utf8")))
  })

/** Every bundle still checked out on one of the shared trees of the repo at `repoPath`. */
export const sharedCheckoutUsers = (repoPath: string): Effect.Effect<ReadonlyArray<string>> =>
  Effect.gen(function* () {
    const top = path.join(repoPath, "syscontainers", "rootfs")
    const trees = yield* Effect.promise(() => readdir(top).catch(() => [] as string[]))
    const users: string[] = []
    for (const tree of trees) users.push(...(yield* usersOf(path.join(top, tree))))
    return users
  })

/** Where a repo keeps the merge plans of its images (a layer commit never changes, so neither does a plan). */
export const planCacheDir = (repo: Repo) => path.join(repo.path, "syscontainers", "plans")

// the version names the plan's shape: a cache written by an older shape is not read
const planKey = (image: Image) =>
  createHash("sha256").update(["plan v2", ...image.manifest.layers.map((l) => l.digest)].join("\n")).digest("hex")

/** Plans the merged tree from what each layer commit holds (whiteout files included). */
const planLayers = (repo: Repo, image: Image) =>
  Effect.forEach(
    image.manifest.layers,
    (l) =>
      Effect.gen(function* () {
        const ref = blobRef(l.digest)
        const [listing, extras] = yield* Effect.all([Ostree.listRecursive(repo, ref), Ostree.metadata(repo, ref, layerExtrasKey)], { concurrency: 2 })
        const { devices, implicitDirs, externalHardlinks }: LayerExtras = extras ? JSON.parse(extras) : { devices: [], implicitDirs: [], externalHardlinks: [] }
        return { digest: l.digest, entries: parseOstreeLs(listing), devices, implicitDirs, externalHardlinks }
      }),
    { concurrency: 4 },
  ).pipe(Effect.flatMap(planMerge))

/**
 * The plan and its skip-list files, computed once per set of layers and kept in the repo: later
 * checkouts of the image spend no process on planning (two ostree calls per layer saved).
 */
const cachedPlan = (repo: Repo, image: Image) =>
  Effect.gen(function* () {
    const dir = path.join(planCacheDir(repo), planKey(image))
    const file = path.join(dir, "plan.json")
    const cached = yield* Effect.promise(() => readFile(file, "utf8").then((t) => JSON.parse(t) as MergePlan, () => undefined))
    if (cached) return { plan: cached, skipDir: dir }
    const plan = yield* planLayers(repo, image)
    // written whole into a temp dir, then renamed: a reader never sees half a plan (plan.json last)
    const tmp = asideOf(dir, "tmp")
    yield* Effect.promise(async () => {
      await mkdir(tmp, { recursive: true })
      await Promise.all(plan.batches.map((b, k) => writeFile(path.join(tmp, `batch-${k}.skip`), skipListText(b.skip))))
      await writeFile(path.join(tmp, "plan.json"), JSON.stringify(plan))
      await installWhole(tmp, dir, (d) => existsSync(path.join(d, "plan.json")))
    })
    return { plan, skipDir: dir }
  })

/** Forgets the cached plans of an image (rmi). */
export const forgetPlan = (repo: Repo, image: Image) => Effect.promise(() => removeWhole(path.join(planCacheDir(repo), planKey(image))))

/**
 * Removes what applyLayers put in a bundle (its own rootfs/, manifest.json, the marker) and leaves
 * the rest: the container's own directories (data/), its logs and config.json, which a new
 * checkout of another image or order must not take with it.
 */
export const removeCheckout = (bundle: string): Effect.Effect<void> =>
  Effect.promise(() => Promise.all([rm(path.join(bundle, "rootfs"), { recursive: true, force: true }), rm(path.join(bundle, "manifest.json"), { force: true })]))
    // the marker goes last: a bundle that still has one still has its tree
    .pipe(Effect.zipRight(Effect.promise(() => rm(path.join(bundle, markerFile), { force: true }))))

/** Reads a bundle's checkout marker, if it was made by applyLayers. */
export const readMarker = (bundle: string): Effect.Effect<CheckoutMarker | undefined> =>
  Effect.promise(async () => {
    try {
      return JSON.parse(await readFile(path.join(bundle, markerFile), "utf8")) as CheckoutMarker
    } catch {
      return undefined
    }
  })

