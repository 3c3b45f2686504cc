// rootfs: a root filesystem ready from the store (our checkout, both orders, and --shared) against podman create+mount, umoci unpack and cp -al; disk for 20 containers.
import { mkdir } from "node:fs/promises"
import path from "node:path"
import type { Ctx } from "./context.ts"
import { compare, fmtBytes, interleave, median, row, type Row } from "./measure.ts"
import { cli, libraryCheckout, libraryPull, rmTree } from "./ours.ts"
import { makePodman, ulimits } from "./podman.ts"
import { log, run } from "./proc.ts"
import { du } from "./pull.ts"

/** An image as each tool names it. */
export interface RootfsTarget {
  readonly label: string
  readonly name: string
  readonly docker: string
  readonly qualified: string
  /** LAYOUT:TAG for umoci. */
  readonly layoutRef: string
}

/** Goals: which peer each image is held to (redis: podman; bulk: cp -al and umoci). */
export interface RootfsGoals {
  readonly podman?: number
  readonly cpal?: number
  readonly umoci?: number
}

/** Rootfs ready from the store, interleaved: ours (CLI, both orders; library for context), podman, umoci, cp -al. */
export const rootfsReady = async (ctx: Ctx, t: RootfsTarget, goals: RootfsGoals): Promise<Row[]> => {
  log(`rootfs ready: ${t.label}`)
  const base = path.join(ctx.dir, "rootfs", t.name)
  await mkdir(base, { recursive: true })
  const repo = path.join(base, "repo")
  await libraryPull(repo, ctx.registriesConf, t.docker, t.name)
  // cp -al's source: the same tree, already made (hardlinks into the repo, like ours)
  // a repo as a pull leaves it, copied for each "first checkout" round: whatever a checkout
  // caches in the repo (the merge plan) is not there yet
  const pristine = path.join(base, "pristine")
  await run(["cp", "-a", repo, pristine])
  const reference = path.join(base, "reference")
  await libraryCheckout(repo, t.name, reference, "union")
  const podman = makePodman(path.join(base, "podman"), ctx.registriesConf)
  await podman.run(["pull", "--quiet", "--tls-verify=false", t.qualified])
  const bundle = (kind: string, i: number) => path.join(base, `${kind}-${i}`)
  const ours = (order: "union" | "union-add") => ({
    name: order,
    run: (i: number) => cli(repo, ctx.registriesConf, ["checkout", t.name, bundle(order, i), "--order", order]),
    cleanup: async (i: number) => rmTree(bundle(order, i)),
  })
  try {
    const samples = await interleave(`rootfs ${t.label}`, [
      ours("union"),
      ours("union-add"),
      {
        name: "first",
        prepare: async (i) => void (await run(["cp", "-a", pristine, path.join(base, `first-repo-${i}`)])),
        run: (i) => cli(path.join(base, `first-repo-${i}`), ctx.registriesConf, ["checkout", t.name, bundle("first", i)]),
        cleanup: async (i) => {
          rmTree(bundle("first", i))
          rmTree(path.join(base, `first-repo-${i}`))
        },
      },
      {
        name: "podman",
        // an image with no Cmd needs a command to be created; it never runs
        run: async (i) => {
          await podman.run(["create", "--quiet", "--name", `bench-rootfs-${i}`, ...ulimits, t.qualified, "/bin/true"])
          await podman.run(["mount", `bench-rootfs-${i}`])
        },
        cleanup: async (i) => {
          await podman.run(["umount", `bench-rootfs-${i}`])
          await podman.run(["rm", `bench-rootfs-${i}`])
        },
      },
      {
        name: "umoci",
        run: (i) => run(["umoci", "unpack", "--image", t.layoutRef, bundle("umoci", i)]),
        cleanup: async (i) => rmTree(bundle("umoci", i)),
      },
      {
        name: "cpal",
        run: (i) => run(["cp", "-al", path.join(reference, "rootfs"), bundle("cpal", i)]),
        cleanup: async (i) => rmTree(bundle("cpal", i)),
      },
      {
        name: "library",
        run: (i) => libraryCheckout(repo, t.name, bundle("lib", i), "union"),
        cleanup: async (i) => rmTree(bundle("lib", i)),
      },
      // --shared: the bundle runs on the image's one read-only checkout, made by the warm-up round
      {
        name: "shared",
        run: (i) => cli(repo, ctx.registriesConf, ["checkout", t.name, bundle("shared", i), "--shared"]),
        cleanup: async (i) => rmTree(bundle("shared", i)),
      },
      {
        name: "shared-library",
        run: (i) => libraryCheckout(repo, t.name, bundle("shared-lib", i), "union", undefined, true),
        cleanup: async (i) => rmTree(bundle("shared-lib", i)),
      },
    ], { rounds: ctx.rounds })
    const rows: Row[] = []
    const warm = "a later checkout of an image the repo has checked out before"
    for (const order of ["union", "union-add"] as const) {
      rows.push(
        ...compare(`rootfs ready: ${t.label}, checkout --order ${order}`, samples, order, [
          { name: "podman", label: "podman create + mount", goal: goals.podman ?? null, note: warm },
          { name: "umoci", label: "umoci unpack", goal: goals.umoci ?? null, note: warm },
          { name: "cpal", label: "floor: cp -al of the same tree", goal: goals.cpal ?? null, note: warm },
        ]),
      )
    }
    const goalPeer = goals.podman !== undefined ? "podman" : "cpal"
    rows.push(
      ...compare(`rootfs ready: ${t.label}, first checkout after the pull (union)`, samples, "first", [
        { name: goalPeer, label: goalPeer === "podman" ? "podman create + mount" : "floor: cp -al of the same tree", note: "the repo as the pull left it (nothing cached by an earlier checkout)" },
        ...(goals.umoci !== undefined ? [{ name: "umoci", label: "umoci unpack" }] : []),
      ]),
    )
    rows.push(
      row({
        metric: `rootfs ready: ${t.label} (library applyLayers in-process, no CLI start-up)`,
        peer: goalPeer === "podman" ? "podman create + mount" : "floor: cp -al of the same tree",
        ours: median(samples.get("library")!),
        theirs: median(samples.get(goalPeer)!),
        runs: samples.get("library")!.length,
        note: "context: what the goal would see if the CLI started instantly",
      }),
    )
    const sharedNote = "checkout --shared: no tree of the bundle's own; the image's shared checkout in the repo exists (made once, by the warm-up round)"
    rows.push(
      ...compare(`rootfs ready: ${t.label}, checkout --shared`, samples, "shared", [
        { name: "podman", label: "podman create + mount", note: sharedNote },
        { name: "cpal", label: "floor: cp -al of the same tree", note: sharedNote },
        ...(goals.umoci !== undefined ? [{ name: "umoci", label: "umoci unpack", note: sharedNote }] : []),
      ]),
      row({
        metric: `rootfs ready: ${t.label}, checkout --shared (library in-process, no CLI start-up)`,
        peer: "podman create + mount",
        ours: median(samples.get("shared-library")!),
        theirs: median(samples.get("podman")!),
        runs: samples.get("shared-library")!.length,
        note: "context: what the CLI's start-up costs the shared checkout",
      }),
    )
    return rows
  } finally {
    await podman.destroy()
    rmTree(base)
  }
}

/** Disk for `count` containers of one image: our repo + bundles, umoci unpacks, podman's overlay store. */
export const diskForContainers = async (ctx: Ctx, t: RootfsTarget, count = 20): Promise<Row[]> => {
  log(`disk for ${count} containers of ${t.label}`)
  const base = path.join(ctx.dir, "disk", t.name)
  await mkdir(base, { recursive: true })
  try {
    const repo = path.join(base, "repo")
    await libraryPull(repo, ctx.registriesConf, t.docker, t.name)
    const bundles = path.join(base, "bundles")
    for (let i = 0; i < count; i++) await libraryCheckout(repo, t.name, path.join(bundles, `c${i}`), "union")
    const ours = await du(repo, bundles)
    const repoOnly = await du(repo)
    // what hardlinks cannot share: each bundle's own directories (and its small files)
    const dirs = Number((await run(["find", path.join(bundles, "c0"), "-type", "d", "-printf", "."])).stdout.length)

    const unpacks = path.join(base, "umoci")
    for (let i = 0; i < count; i++) await run(["umoci", "unpack", "--image", t.layoutRef, path.join(unpacks, `c${i}`)])
    const umoci = await du(unpacks)
    const one = await du(path.join(unpacks, "c0", "rootfs"))

    const podman = makePodman(path.join(base, "podman"), ctx.registriesConf)
    let podmanBytes = 0
    try {
      await podman.run(["pull", "--quiet", "--tls-verify=false", t.qualified])
      for (let i = 0; i < count; i++) await podman.run(["create", "--quiet", "--name", `bench-disk-${i}`, ...ulimits, t.qualified, "/bin/true"])
      podmanBytes = await du(podman.dir)
    } finally {
      await podman.destroy()
    }
    // the same containers on the image's one shared checkout (checkout --shared)
    const repoShared = path.join(base, "repo-shared")
    await libraryPull(repoShared, ctx.registriesConf, t.docker, t.name)
    const sharedBundles = path.join(base, "bundles-shared")
    for (let i = 0; i < count; i++) await libraryCheckout(repoShared, t.name, path.join(sharedBundles, `c${i}`), "union", undefined, true)
    const oursShared = await du(repoShared, sharedBundles)
    const repoSharedOnly = await du(repoShared)
    log(`  ours ${ours} B, shared ${oursShared} B, umoci ${umoci} B, podman ${podmanBytes} B, one unpacked rootfs ${one} B`)
    const metric = `disk for ${count} containers of ${t.label}`
    return [
      row({
        metric,
        peer: "one image unpacked (du of one umoci rootfs)",
        ours,
        theirs: one,
        goal: 1.05,
        runs: 1,
        unit: "bytes",
        note: `ours: repo + ${count} hardlinked bundles, du -s with hardlinks counted once: the repo ${fmtBytes(repoOnly)}, the bundles add ${fmtBytes(ours - repoOnly)} (${fmtBytes((ours - repoOnly) / count)} each: ${dirs} directories of their own, which hardlinks cannot share)`,
      }),
      row({
        metric: `${metric}, checkout --shared`,
        peer: "one image unpacked (du of one umoci rootfs)",
        ours: oursShared,
        theirs: one,
        goal: 1.05,
        runs: 1,
        unit: "bytes",
        note: `ours: repo (with the image's one shared checkout) + ${count} bundles of config and manifest: the repo ${fmtBytes(repoSharedOnly)}, the bundles add ${fmtBytes(oursShared - repoSharedOnly)}`,
      }),
      row({ metric, peer: `${count} umoci unpacks`, ours, theirs: umoci, runs: 1, unit: "bytes" }),
      row({ metric, peer: `podman overlay store with ${count} containers`, ours, theirs: podmanBytes, runs: 1, unit: "bytes" }),
    ]
  } finally {
    rmTree(base)
  }
}
