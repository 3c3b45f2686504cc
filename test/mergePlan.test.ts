// mergePlan tests: hand-written layers planned and replayed, then real images checked out by ostree in both orders vs umoci unpack.
import { test } from "uvu"
import * as assert from "uvu/assert"
import * as Effect from "effect/Effect"
import { execFileSync } from "node:child_process"
import { chmodSync, chownSync, copyFileSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { LayerRejected } from "../packages/core/src/Errors.ts"
import { scanLayer, writeSanitizedTar } from "../packages/core/src/internal/layerScan.ts"
import { parseOstreeLs, planMerge, skipListText, type LayerEntry, type MergePlan, type PlanLayer } from "../packages/core/src/internal/mergePlan.ts"
import { buildImage, type EntrySpec, type LayerSpec } from "./fixtures/layers.ts"
import { diffTrees, snapshotTree } from "./fixtures/tree.ts"

let work = ""
test.before(() => {
  work = mkdtempSync(path.join(os.tmpdir(), "sc-test-mergeplan-"))
})
test.after(() => {
  rmSync(work, { recursive: true, force: true })
})

// --- hand-written layers ------------------------------------------------------------------------

const d = (p: string, mode = 0o755, uid = 0): LayerEntry => ({ path: p, type: "dir", mode, uid, gid: 0, size: 0 })
const f = (p: string, mode = 0o644): LayerEntry => ({ path: p, type: "file", mode, uid: 0, gid: 0, size: 1 })
const s = (p: string, target: string): LayerEntry => ({ path: p, type: "symlink", mode: 0o777, uid: 0, gid: 0, size: 0, target })
const layer = (digest: string, entries: LayerEntry[], extra: Partial<PlanLayer> = {}): PlanLayer => ({ digest, entries: [d(""), ...entries], ...extra })

const plan = (layers: PlanLayer[]): MergePlan => Effect.runSync(planMerge(layers))
const rejection = (layers: PlanLayer[]): LayerRejected => Effect.runSync(Effect.flip(planMerge(layers)))
const skips = (p: MergePlan) => p.layers.map((l) => l.skip)

const skipped = (skip: ReadonlyArray<string>, e: LayerEntry): boolean => {
  const set = new Set(skip)
  if (set.has(e.type === "dir" ? `/${e.path}/` : `/${e.path}`)) return true
  const parts = e.path.split("/")
  for (let i = 1; i < parts.length; i++) if (set.has(`/${parts.slice(0, i).join("/")}/`)) return true
  return false
}

// replays a plan the way ostree applies it, in one order; throws where ostree would fail
const replay = (layers: PlanLayer[], p: MergePlan, order: "union" | "union-add"): string[] => {
  const tree = new Map<string, { type: string; layer: number }>()
  const idx = layers.map((_, i) => i)
  if (order === "union-add") idx.reverse()
  for (const i of idx) {
    for (const e of layers[i]!.entries) {
      if (e.path === "" || skipped(p.layers[i]!.skip, e)) continue
      const have = tree.get(e.path)
      const parent = tree.get(e.path.split("/").slice(0, -1).join("/"))
      if (e.path.includes("/") && parent && parent.type !== "dir") throw new Error(`${order}: ${e.path} below a ${parent.type}`)
      if (have && (have.type === "dir") !== (e.type === "dir")) throw new Error(`${order}: ${e.path} ${e.type} meets ${have.type}`)
      if (have && e.type !== "dir" && order === "union") throw new Error(`${order}: ${e.path} overwritten: the plan left two`)
      if (!have) tree.set(e.path, { type: e.type, layer: i })
    }
  }
  for (const dev of p.devices) tree.set(dev.path, { type: dev.type, layer: -1 })
  return [...tree].map(([k, v]) => `${k} ${v.type}${v.type === "dir" ? "" : `@${v.layer}`}`).sort()
}

// replays the plan's batches: one shared skip list per batch, a later non-directory overwriting an
// earlier one bottom-up (--union) and never top-down (--union-add)
const replayBatched = (layers: PlanLayer[], p: MergePlan, order: "union" | "union-add"): string[] => {
  const tree = new Map<string, { type: string; layer: number }>()
  const batches = order === "union" ? p.batches : [...p.batches].reverse()
  for (const b of batches) {
    for (const i of order === "union" ? b.layers : [...b.layers].reverse()) {
      for (const e of layers[i]!.entries) {
        if (e.path === "" || skipped(b.skip, e)) continue
        const have = tree.get(e.path)
        const parent = tree.get(e.path.split("/").slice(0, -1).join("/"))
        if (e.path.includes("/") && parent && parent.type !== "dir") throw new Error(`batched ${order}: ${e.path} below a ${parent.type}`)
        if (have && (have.type === "dir") !== (e.type === "dir")) throw new Error(`batched ${order}: ${e.path} ${e.type} meets ${have.type}`)
        if (!have || (e.type !== "dir" && order === "union")) tree.set(e.path, { type: e.type, layer: i })
      }
    }
  }
  for (const dev of p.devices) tree.set(dev.path, { type: dev.type, layer: -1 })
  return [...tree].map(([k, v]) => `${k} ${v.type}${v.type === "dir" ? "" : `@${v.layer}`}`).sort()
}

const final = (layers: PlanLayer[], p: MergePlan): string[] => {
  const a = replay(layers, p, "union")
  const b = replay(layers, p, "union-add")
  assert.equal(a, b, "bottom-up and top-down give the same tree")
  assert.equal(p.batches.flatMap((x) => x.layers), layers.map((_, i) => i), "every layer in one batch, in order")
  assert.equal(replayBatched(layers, p, "union"), a, "batched bottom-up gives the same tree")
  assert.equal(replayBatched(layers, p, "union-add"), a, "batched top-down gives the same tree")
  return a
}

test("plain override: the lower file is skipped, the upper one wins", () => {
  const layers = [layer("L0", [d("etc"), f("etc/a"), f("etc/b")]), layer("L1", [d("etc"), f("etc/a")])]
  const p = plan(layers)
  assert.equal(skips(p), [["/etc/a"], []])
  assert.equal(final(layers, p), ["etc dir", "etc/a file@1", "etc/b file@0"])
})

test("whiteout of a file: the lower file and the whiteout are skipped", () => {
  const layers = [layer("L0", [d("etc"), f("etc/a"), f("etc/b")]), layer("L1", [d("etc"), f("etc/.wh.a")])]
  const p = plan(layers)
  assert.equal(skips(p), [["/etc/a"], ["/etc/.wh.a"]])
  assert.equal(final(layers, p), ["etc dir", "etc/b file@0"])
})

test("whiteout of a directory: one line skips the whole lower subtree", () => {
  const layers = [layer("L0", [d("var"), d("var/log"), f("var/log/x"), f("var/y"), f("z")]), layer("L1", [f(".wh.var")])]
  const p = plan(layers)
  assert.equal(skips(p), [["/var/"], ["/.wh.var"]])
  assert.equal(final(layers, p), ["z file@0"])
})

test("opaque directory: lower children skipped, the directory and the layer's own children stay", () => {
  const layers = [
    layer("L0", [d("etc"), f("etc/x"), d("etc/sub"), f("etc/sub/z"), f("other")]),
    layer("L1", [d("etc", 0o700), f("etc/.wh..wh..opq"), f("etc/new")]),
  ]
  const p = plan(layers)
  assert.equal(skips(p), [["/etc/x", "/etc/sub/"], ["/etc/.wh..wh..opq"]])
  assert.equal(final(layers, p), ["etc dir", "etc/new file@1", "other file@0"])
  assert.equal(p.directories.find((x) => x.path === "etc")?.mode, 0o700)
})

test("batches: overrides and whiteouts share one checkout process; a type change needs its own", () => {
  const batches = (layers: PlanLayer[]) => plan(layers).batches.map((b) => ({ ...b, layers: [...b.layers] }))
  // the override's line goes: --union overwrites bottom-up, --union-add keeps the upper file top-down
  assert.equal(batches([layer("L0", [d("etc"), f("etc/a"), f("etc/b")]), layer("L1", [d("etc"), f("etc/a")])]), [{ layers: [0, 1], skip: [] }])
  assert.equal(batches([layer("L0", [d("etc"), f("etc/a"), f("etc/b")]), layer("L1", [d("etc"), f("etc/.wh.a")])]), [{ layers: [0, 1], skip: ["/etc/a", "/etc/.wh.a"] }])
  assert.equal(batches([layer("L0", [f("a"), d("b"), f("b/x")]), layer("L1", [d("a"), f("a/inner"), f("b")])]), [{ layers: [0], skip: ["/a", "/b/"] }, { layers: [1], skip: [] }])
  // a file whited out in L1 and put back in L2: L0's line names a path L2 keeps, an override again
  const back = [layer("L0", [f("p"), f("q")]), layer("L1", [f(".wh.p")]), layer("L2", [f("p")])]
  assert.equal(batches(back), [{ layers: [0, 1, 2], skip: ["/.wh.p"] }])
  assert.equal(final(back, plan(back)), ["p file@2", "q file@0"])
  // the batch keeps going after a type change: L2 and L3 share again
  const four = [layer("L0", [f("a")]), layer("L1", [d("a"), f("a/x")]), layer("L2", [f("b")]), layer("L3", [f("b"), f(".wh.c")])]
  assert.equal(batches(four).map((b) => b.layers), [[0], [1, 2, 3]])
})

test("a file replaced by a directory and a directory replaced by a file, without whiteouts", () => {
  const layers = [layer("L0", [f("a"), d("b"), f("b/x"), d("b/y"), f("b/y/z")]), layer("L1", [d("a"), f("a/inner"), f("b")])]
  const p = plan(layers)
  assert.equal(skips(p), [["/a", "/b/"], []])
  assert.equal(final(layers, p), ["a dir", "a/inner file@1", "b file@1"])
})

test("a whiteout after a same-layer file of that name hides only the lower one (OCI: whiteouts apply to lower layers)", () => {
  const layers = [layer("L0", [f("w"), d("dd"), f("dd/old")]), layer("L1", [f("w"), f(".wh.w"), d("dd"), f("dd/new"), f(".wh.dd")])]
  const p = plan(layers)
  assert.equal(skips(p), [["/w", "/dd/"], [".wh.w", ".wh.dd"].map((n) => `/${n}`)])
  assert.equal(final(layers, p), ["dd dir", "dd/new file@1", "w file@1"])
})

test("a whiteout deletes what a layer between added: three layers", () => {
  const layers = [layer("L0", [d("a"), f("a/1")]), layer("L1", [d("a"), f("a/2")]), layer("L2", [f(".wh.a")]), layer("L3", [d("a"), f("a/3")])]
  const p = plan(layers)
  assert.equal(skips(p), [["/a/"], ["/a/"], ["/.wh.a"], []])
  assert.equal(final(layers, p), ["a dir", "a/3 file@3"])
})

test("a symlink in a lower layer and an entry under it in an upper one: rejected, naming the entry", () => {
  const lower = layer("L0", [s("lib", "/etc"), f("x")])
  // the upper layer's tar did not list lib/ itself: ostree made it up, an unpacker would write through the link
  const e1 = rejection([lower, layer("L1", [d("lib"), f("lib/passwd")], { implicitDirs: ["lib"] })])
  assert.instance(e1, LayerRejected)
  assert.is(e1._tag, "LayerRejected")
  assert.is(e1.layer, "L1")
  assert.is(e1.entry, "lib")
  assert.match(e1.reason, /symlink/)
  const e2 = rejection([lower, layer("L1", [f("lib/passwd")])])
  assert.is(e2.entry, "lib/passwd")
  assert.match(e2.message, /lib\/passwd.*symlink from a lower layer/)
  // removing through the symlink is as bad as writing through it
  const e3 = rejection([lower, layer("L1", [d("lib"), f("lib/.wh.passwd")])])
  assert.is(e3.entry, "lib/.wh.passwd")
  const e4 = rejection([layer("L0", [d("usr"), s("usr/lib", "/lib")]), layer("L1", [d("usr"), d("usr/lib/x"), f("usr/lib/x/.wh.y")])])
  assert.is(e4.entry, "usr/lib/x/.wh.y")
})

test("an upper layer that lists the directory itself replaces a lower symlink (as umoci does); the symlink is skipped", () => {
  const layers = [layer("L0", [s("lib", "/etc")]), layer("L1", [d("lib"), f("lib/x")])]
  const p = plan(layers)
  assert.equal(skips(p), [["/lib"], []])
  assert.equal(final(layers, p), ["lib dir", "lib/x file@1"])
})

test("a listing without a root entry still plans (the rootfs exists before any layer)", () => {
  const layers: PlanLayer[] = [{ digest: "L0", entries: [d("etc"), f("etc/a")] }, { digest: "L1", entries: [f(".wh.etc")] }]
  const p = plan(layers)
  assert.equal(skips(p), [["/etc/"], ["/.wh.etc"]])
  assert.equal(p.directories, [{ path: "", mode: 0o755, uid: 0, gid: 0 }])
})

test("entries under a same-layer symlink or file are rejected", () => {
  assert.match(rejection([layer("L0", [s("l", "/"), f("l/x")])]).reason, /symlink in the same layer/)
  assert.match(rejection([layer("L0", [f("f"), f("f/x")])]).reason, /not a directory in the same layer/)
  assert.match(rejection([layer("L0", [f(".wh.")])]).reason, /whiteout of an empty/)
  assert.match(rejection([layer("L0", [f("a/.wh..")])]).reason, /'\.'/)
})

test("a directory's mode changed by an upper layer is listed with the upper metadata; unchanged ones are not", () => {
  const layers = [layer("L0", [d("etc"), d("usr"), d("opt", 0o700, 5)]), layer("L1", [d("etc", 0o700), d("usr"), d("opt", 0o700, 5)])]
  const p = plan(layers)
  assert.equal(p.directories, [
    { path: "", mode: 0o755, uid: 0, gid: 0 },
    { path: "etc", mode: 0o700, uid: 0, gid: 0 },
  ])
})

test("a directory ostree invented keeps the lower layer's metadata", () => {
  const layers = [layer("L0", [d("etc", 0o750)]), layer("L1", [d("etc"), f("etc/x")], { implicitDirs: ["", "etc"] }), layer("L2", [d("new"), f("new/y")], { implicitDirs: ["new"] })]
  const p = plan(layers)
  assert.equal(p.directories, [
    { path: "", mode: 0o755, uid: 0, gid: 0 },
    { path: "etc", mode: 0o750, uid: 0, gid: 0 },
  ])
})

test("devices: the top-most wins, whiteouts remove them, and they override lower files", () => {
  const dev = (p: string, minor: number) => ({ path: p, type: "char" as const, mode: 0o666, uid: 0, gid: 0, devmajor: 1, devminor: minor })
  const layers = [
    layer("L0", [d("dev"), f("dev/console")], { devices: [dev("dev/null", 3), dev("dev/zero", 5), dev("dev/tty", 0)] }),
    layer("L1", [d("dev"), f("dev/.wh.zero")], { devices: [dev("dev/null", 9), dev("dev/console", 1)] }),
  ]
  const p = plan(layers)
  assert.equal(p.devices.map((x) => `${x.path} ${x.devminor}`).sort(), ["dev/console 1", "dev/null 9", "dev/tty 0"])
  assert.equal(skips(p), [["/dev/console"], ["/dev/.wh.zero"]])
})

test("hardlinks from outside their layer resolve to the lower file, and say when the target changed since", () => {
  const layers = [
    layer("L0", [d("bin"), f("bin/a")]),
    layer("L1", [d("bin")], { externalHardlinks: [{ path: "bin/b", target: "bin/a" }] }),
    layer("L2", [d("bin")], { externalHardlinks: [{ path: "bin/c", target: "bin/b" }] }),
  ]
  const p = plan(layers)
  assert.equal(p.hardlinks, [
    { path: "bin/b", target: "bin/a", source: { layer: "L0", path: "bin/a" }, sameAsFinal: true },
    { path: "bin/c", target: "bin/b", source: { layer: "L0", path: "bin/a" }, sameAsFinal: true },
  ])
  const changed = plan([...layers, layer("L3", [d("bin"), f("bin/a")])])
  assert.equal(changed.hardlinks.map((h) => h.sameAsFinal), [false, false])
  assert.match(rejection([layer("L0", [d("bin")], { externalHardlinks: [{ path: "bin/x", target: "bin/none" }] })]).reason, /no layer up to this one/)
})

test("a 50k-entry layer plans well under a second, and three of them stay linear", () => {
  const big = (n: number, name: string, extra: (i: number) => LayerEntry[]): PlanLayer => {
    const entries: LayerEntry[] = [d("")]
    for (let dir = 0; dir < 500; dir++) {
      entries.push(d(`usr/d${dir}`))
      for (let i = 0; i < n / 500; i++) entries.push(f(`usr/d${dir}/f${i}`))
    }
    entries.push(d("usr"), ...extra(n))
    return { digest: name, entries }
  }
  const layers = [
    big(50_000, "L0", () => []),
    big(50_000, "L1", () => Array.from({ length: 100 }, (_, i) => f(`usr/.wh.d${i + 400}`)).concat(Array.from({ length: 100 }, (_, i) => f(`usr/d${i}/.wh..wh..opq`)))),
    big(50_000, "L2", () => []),
  ]
  const t0 = performance.now()
  plan(layers.slice(0, 1))
  const one = performance.now() - t0
  const t1 = performance.now()
  const p = plan(layers)
  const three = performance.now() - t1
  console.log(`  50k entries planned in ${one.toFixed(0)} ms, 3 x 50k in ${three.toFixed(0)} ms`)
  assert.ok(one < 500, `one layer planned in ${one.toFixed(0)} ms`)
  assert.ok(three < 1500, `three layers planned in ${three.toFixed(0)} ms`)
  // L0: 100 whited-out directories in one line each, its other 40k files lost to L2 one by one;
  // L1: its 50k files lost to L2, and its 200 whiteout files; L2 keeps everything
  assert.equal(p.layers.map((l) => l.skip.length), [40_100, 50_200, 0])
})

// --- ostree facts the plan relies on ----------------------------------------------------------

const ostree = (args: ReadonlyArray<string>) => execFileSync("ostree", [...args], { env: { ...process.env, LC_ALL: "C.UTF-8" }, stdio: ["ignore", "pipe", "pipe"] }).toString()

test("ostree 2022.7 skip lists: '/dir/' skips the subtree, '/dir' and relative paths skip nothing, '/file' skips the file", () => {
  const dir = path.join(work, "skipfacts")
  const repo = path.join(dir, "repo")
  mkdirSync(path.join(dir, "tree/a/b"), { recursive: true })
  writeFileSync(path.join(dir, "tree/a/f"), "f")
  writeFileSync(path.join(dir, "tree/a/b/g"), "g")
  writeFileSync(path.join(dir, "tree/top"), "t")
  ostree(["init", `--repo=${repo}`, "--mode=bare-user"])
  ostree(["commit", `--repo=${repo}`, "--branch=t", `--tree=dir=${path.join(dir, "tree")}`])
  const checkout = (lines: string[]) => {
    const dest = path.join(dir, `co${Math.random().toString(36).slice(2)}`)
    writeFileSync(path.join(dir, "skip"), skipListText(lines))
    ostree(["checkout", `--repo=${repo}`, "-U", "--union", `--skip-list=${path.join(dir, "skip")}`, "t", dest])
    const out: string[] = []
    const walk = (rel: string) => {
      for (const n of readdirSync(path.join(dest, rel)).sort()) {
        out.push(`${rel}${n}`)
        try {
          walk(`${rel}${n}/`)
        } catch {
          // a file
        }
      }
    }
    walk("")
    return out
  }
  const all = ["a", "a/b", "a/b/g", "a/f", "top"]
  assert.equal(checkout(["/a/"]), ["top"])
  assert.equal(checkout(["/a"]), all)
  assert.equal(checkout(["a/", "a/f", "top"]), all)
  assert.equal(checkout(["/a/b/", "/a/f", "/top"]), ["a"])
})

test("parseOstreeLs reads ostree ls -R, names with spaces and ' -> ' exactly when given the NUL name list", () => {
  const dir = path.join(work, "lsfacts")
  const tree = path.join(dir, "tree")
  const repo = path.join(dir, "repo")
  mkdirSync(path.join(tree, "sp ace"), { recursive: true })
  writeFileSync(path.join(tree, "sp ace", "x -> y"), "xy")
  symlinkSync("../a -> z", path.join(tree, "sp ace", "l -> k"))
  writeFileSync(path.join(tree, "suid"), "12345")
  chmodSync(path.join(tree, "suid"), 0o4755)
  mkdirSync(path.join(tree, "tmp"))
  chmodSync(path.join(tree, "tmp"), 0o1777)
  writeFileSync(path.join(tree, "é"), "")
  ostree(["init", `--repo=${repo}`, "--mode=bare-user"])
  ostree(["commit", `--repo=${repo}`, "--branch=t", `--tree=dir=${tree}`])
  const ls = ostree(["ls", `--repo=${repo}`, "-R", "t"])
  const names = ostree(["ls", `--repo=${repo}`, "-R", "--nul-filenames-only", "t"])
  const entries = parseOstreeLs(ls, names)
  const by = new Map(entries.map((e) => [e.path, e]))
  assert.equal([...by.keys()].sort(), ["", "sp ace", "sp ace/l -> k", "sp ace/x -> y", "suid", "tmp", "é"])
  assert.equal(by.get("sp ace/l -> k"), { path: "sp ace/l -> k", type: "symlink", mode: 0o777, uid: 0, gid: 0, size: 0, target: "../a -> z" })
  assert.equal(by.get("suid"), { path: "suid", type: "file", mode: 0o4755, uid: 0, gid: 0, size: 5 })
  assert.is(by.get("tmp")?.mode, 0o1777)
  assert.is(by.get("sp ace/x -> y")?.type, "file")
  // without the name list the first arrow is taken: right for every name without one
  const guessed = new Map(parseOstreeLs(ls).map((e) => [e.path, e]))
  assert.is(guessed.get("sp ace/x -> y")?.type, "file")
  assert.is(guessed.get("sp ace/l")?.target, "k -> ../a -> z")
  assert.throws(() => parseOstreeLs("garbage\n"), /cannot read line/)
})

// --- real images: ostree checkouts in both orders against umoci unpack --------------------------

interface Outcome {
  readonly dir: string
  readonly plan: MergePlan
  readonly diffs: { readonly union: string[]; readonly unionAdd: string[] }
}

const integration = async (name: string, specs: LayerSpec[], outside?: (dir: string) => void): Promise<Outcome> => {
  const dir = path.join(work, name)
  const img = await buildImage(dir, specs)
  const repo = path.join(dir, "repo")
  ostree(["init", `--repo=${repo}`, "--mode=bare-user"])
  const layers: PlanLayer[] = []
  for (const [i, l] of img.layers.entries()) {
    const scan = await Effect.runPromise(scanLayer({ path: l.blob, digest: l.digest, mediaType: l.mediaType }))
    let blob = l.blob
    if (scan.needsRewrite) {
      blob = path.join(dir, `sanitized${i}.tar`)
      await Effect.runPromise(writeSanitizedTar({ path: l.blob, to: blob, digest: l.digest }))
    }
    // real layers rarely list "./" or every parent: ostree must make them
    ostree(["commit", `--repo=${repo}`, `--branch=l${i}`, "--tar-autocreate-parents", `--tree=tar=${blob}`])
    const entries = parseOstreeLs(ostree(["ls", `--repo=${repo}`, "-R", `l${i}`]), ostree(["ls", `--repo=${repo}`, "-R", "--nul-filenames-only", `l${i}`]))
    layers.push({ digest: l.digest, entries, devices: scan.devices, externalHardlinks: scan.externalHardlinks, implicitDirs: scan.implicitDirs })
  }
  const p = await Effect.runPromise(planMerge(layers))
  const checkout = (order: "union" | "union-add") => {
    const base = path.join(dir, order)
    const rootfs = path.join(base, "rootfs")
    mkdirSync(rootfs, { recursive: true })
    // sentinels beside the checkout: a layer that wrote through a symlink would touch them
    writeFileSync(path.join(base, "sentinel"), "keep")
    outside?.(base)
    const idx = p.layers.map((_, i) => i)
    if (order === "union-add") idx.reverse()
    for (const i of idx) {
      const skip = path.join(dir, `${order}-${i}.skip`)
      writeFileSync(skip, skipListText(p.layers[i]!.skip))
      ostree(["checkout", `--repo=${repo}`, "-U", `--${order}`, "-H", `--skip-list=${skip}`, `l${i}`, rootfs])
    }
    fixups(rootfs)
    return rootfs
  }
  const fixups = (rootfs: string) => {
    for (const x of p.directories) chmodSync(path.join(rootfs, x.path), x.mode)
    for (const x of p.devices) {
      const target = path.join(rootfs, x.path)
      execFileSync("mknod", ["-m", x.mode.toString(8), target, ...(x.type === "fifo" ? ["p"] : [x.type === "char" ? "c" : "b", String(x.devmajor), String(x.devminor)])])
      chownSync(target, x.uid, x.gid)
    }
    for (const h of p.hardlinks) {
      if (h.sameAsFinal) linkSync(path.join(rootfs, h.target), path.join(rootfs, h.path))
      else copyFileSync(path.join(rootfs, h.target), path.join(rootfs, h.path))
    }
  }
  // the same plan's batches as applyLayers lays them: one `checkout --from-stdin` each
  const checkoutBatched = (order: "union" | "union-add") => {
    const base = path.join(dir, `${order}-batched`)
    const rootfs = path.join(base, "rootfs")
    mkdirSync(rootfs, { recursive: true })
    const batches = p.batches.map((b, k) => ({ ...b, k }))
    for (const b of order === "union" ? batches : batches.reverse()) {
      const skip = path.join(dir, `${order}-batch-${b.k}.skip`)
      writeFileSync(skip, skipListText(b.skip))
      const refs = (order === "union" ? b.layers : [...b.layers].reverse()).map((i) => `l${i}\0/\0`).join("")
      execFileSync("ostree", ["checkout", `--repo=${repo}`, "-U", `--${order}`, "-H", `--skip-list=${skip}`, "--from-stdin", rootfs], { input: refs, stdio: ["pipe", "pipe", "pipe"] })
    }
    fixups(rootfs)
    return rootfs
  }
  const union = checkout("union")
  const unionAdd = checkout("union-add")
  const unionBatched = checkoutBatched("union")
  const unionAddBatched = checkoutBatched("union-add")
  // raw unpack: only the rootfs; a full unpack also reads /etc/group for config.json, which the churn may replace
  mkdirSync(path.join(dir, "umoci"), { recursive: true })
  execFileSync("umoci", ["raw", "unpack", "--image", `${img.layout}:${img.tag}`, path.join(dir, "umoci", "rootfs")], { stdio: ["ignore", "pipe", "pipe"] })
  const reference = snapshotTree(path.join(dir, "umoci", "rootfs"))
  assert.ok(reference.size > 3, "umoci unpacked something")
  assert.equal(diffTrees(reference, snapshotTree(unionBatched), { modeMask: true }), [], "batched union")
  assert.equal(diffTrees(reference, snapshotTree(unionAddBatched), { modeMask: true }), [], "batched union-add")
  return {
    dir,
    plan: p,
    diffs: {
      union: diffTrees(reference, snapshotTree(union), { modeMask: true }),
      unionAdd: diffTrees(reference, snapshotTree(unionAdd), { modeMask: true }),
    },
  }
}

test("image with whiteouts, a whiteout of a directory and an opaque directory equals umoci's rootfs in both orders", async () => {
  const o = await integration("whiteouts", [
    {
      root: { mode: 0o750 },
      entries: [
        { type: "dir", path: "etc" },
        { type: "file", path: "etc/a", content: "a" },
        { type: "file", path: "etc/b", content: "b" },
        { type: "file", path: "etc/empty" },
        { type: "dir", path: "etc/sub", mode: 0o2775 },
        { type: "file", path: "etc/sub/c", content: "c", mode: 0o4755 },
        { type: "dir", path: "var/log", mode: 0o700 },
        { type: "file", path: "var/log/x", content: "x" },
        { type: "dir", path: "usr/bin" },
        { type: "file", path: "usr/bin/tool", content: "v1", mode: 0o755 },
        { type: "file", path: "with space -> arrow", content: "s" },
      ],
    },
    {
      entries: [
        { type: "whiteout", path: "etc/a" },
        { type: "whiteout", path: "var" },
        { type: "file", path: "usr/bin/tool", content: "v2", mode: 0o700 },
        { type: "whiteout", path: "with space -> arrow" },
      ],
    },
    {
      entries: [
        { type: "dir", path: "etc", mode: 0o700 },
        { type: "opaque", path: "etc" },
        { type: "file", path: "etc/new", content: "n" },
        { type: "dir", path: "var", mode: 0o711 },
        { type: "file", path: "var/n", content: "n" },
      ],
    },
  ])
  assert.equal(o.diffs.union, [])
  assert.equal(o.diffs.unionAdd, [])
  const rootfs = path.join(o.dir, "union", "rootfs")
  assert.is(readFileSync(path.join(rootfs, "usr/bin/tool"), "utf8"), "v2")
  assert.not.ok(existsSync(path.join(rootfs, "etc/b")), "opaque hid etc/b")
  assert.not.ok(existsSync(path.join(rootfs, "var/log")), "whiteout removed var/log")
})

test("image with type changes, a dir mode change, setuid and a whiteout listed after its file equals umoci's rootfs", async () => {
  const o = await integration("types", [
    {
      entries: [
        { type: "file", path: "a", content: "file a" },
        { type: "dir", path: "b" },
        { type: "file", path: "b/x", content: "x" },
        { type: "dir", path: "b/deep/er" },
        { type: "file", path: "b/deep/er/y", content: "y" },
        { type: "dir", path: "c" },
        { type: "symlink", path: "c/link", target: "../a" },
        { type: "dir", path: "d", mode: 0o755 },
        { type: "dir", path: "tmp", mode: 0o1777 },
        { type: "file", path: "w", content: "lower w" },
        { type: "file", path: "hl1", content: "linked", mode: 0o4755 },
        { type: "hardlink", path: "hl2", target: "hl1" },
      ],
    },
    {
      entries: [
        { type: "dir", path: "a", mode: 0o700 },
        { type: "file", path: "a/inside", content: "in" },
        { type: "file", path: "b", content: "now a file" },
        { type: "symlink", path: "c", target: "b" },
        { type: "dir", path: "d", mode: 0o750 },
        // listed after the same-layer file: hides only the lower w
        { type: "file", path: "w", content: "upper w" },
        { type: "whiteout", path: "w" },
      ],
    },
    { entries: [{ type: "dir", path: "d", mode: 0o700 }, { type: "file", path: "d/f", content: "f", mode: 0o600 }] },
  ])
  assert.equal(o.diffs.union, [])
  assert.equal(o.diffs.unionAdd, [])
  assert.ok(o.plan.directories.some((x) => x.path === "d" && x.mode === 0o700), "d's final mode is listed")
  assert.is(readFileSync(path.join(o.dir, "union-add", "rootfs", "w"), "utf8"), "upper w")
})

test("image whose upper layer replaces symlinks to outside the rootfs: nothing beside the checkout is touched", async () => {
  const host = path.join(work, "escape", "host-target")
  const seed = (dir: string) => {
    mkdirSync(dir, { recursive: true })
    writeFileSync(path.join(dir, "sentinel"), "keep")
  }
  seed(host)
  const o = await integration(
    "escape",
    [
      {
        entries: [
          { type: "symlink", path: "abs", target: host },
          { type: "symlink", path: "rel", target: "../beside" },
          { type: "dir", path: "etc" },
          { type: "symlink", path: "etc/up", target: "../../beside" },
        ],
      },
      {
        entries: [
          { type: "dir", path: "abs" },
          { type: "file", path: "abs/pwned", content: "x" },
          { type: "dir", path: "rel" },
          { type: "file", path: "rel/pwned", content: "x" },
          { type: "dir", path: "etc" },
          { type: "dir", path: "etc/up" },
          { type: "file", path: "etc/up/pwned", content: "x" },
        ],
      },
    ],
    (base) => seed(path.join(base, "beside")),
  )
  assert.equal(o.diffs.union, [])
  assert.equal(o.diffs.unionAdd, [])
  for (const dir of [host, path.join(o.dir, "union", "beside"), path.join(o.dir, "union-add", "beside")]) assert.equal(readdirSync(dir), ["sentinel"], dir)
  for (const order of ["union", "union-add"]) assert.is(readFileSync(path.join(o.dir, order, "sentinel"), "utf8"), "keep")
  assert.equal(o.plan.layers[0]!.skip, ["/abs", "/rel", "/etc/up"])
})

test("image with devices, a FIFO, a whiteout of a device and a hardlink to a lower layer equals umoci's rootfs", async () => {
  const o = await integration("devices", [
    {
      entries: [
        { type: "dir", path: "dev" },
        { type: "char", path: "dev/null", major: 1, minor: 3 },
        { type: "char", path: "dev/zero", major: 1, minor: 5 },
        { type: "fifo", path: "dev/initctl", mode: 0o600 },
        { type: "dir", path: "usr/bin" },
        { type: "file", path: "usr/bin/a", content: "binary", mode: 0o755 },
      ],
    },
    {
      entries: [
        { type: "dir", path: "dev" },
        { type: "whiteout", path: "dev/zero" },
        { type: "block", path: "dev/loop0", major: 7, minor: 0, mode: 0o660 },
        { type: "file", path: "dev/null", content: "not a device any more" },
      ],
    },
    {
      writer: "own",
      entries: [
        { type: "dir", path: "usr" },
        { type: "dir", path: "usr/bin" },
        { type: "hardlink", path: "usr/bin/b", target: "usr/bin/a" },
      ],
    },
  ])
  assert.equal(o.diffs.union, [])
  assert.equal(o.diffs.unionAdd, [])
  assert.equal(o.plan.devices.map((x) => x.path).sort(), ["dev/initctl", "dev/loop0"])
  assert.equal(o.plan.hardlinks.map((h) => [h.path, h.target, h.sameAsFinal]), [["usr/bin/b", "usr/bin/a", true]])
})

// the host's /etc as a base layer (symlink farms, odd names, private modes), then a layer that
// deletes, hides, and swaps types across it, chosen by position so the run is the same every time
const fromHost = (root: string, under: string): EntrySpec[] => {
  const out: EntrySpec[] = []
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name
      const full = path.join(root, r)
      const st = lstatSync(full)
      const at = `${under}/${r}`
      if (st.isDirectory()) {
        out.push({ type: "dir", path: at, mode: st.mode & 0o7777 })
        walk(r)
      } else if (st.isSymbolicLink()) out.push({ type: "symlink", path: at, target: readlinkSync(full) })
      else if (st.isFile()) out.push({ type: "file", path: at, content: readFileSync(full), mode: st.mode & 0o7777 })
    }
  }
  walk("")
  return out
}

const churn = (base: ReadonlyArray<EntrySpec>): EntrySpec[] => {
  const out: EntrySpec[] = []
  const touched: string[] = []
  const free = (p: string) => !touched.some((t) => p === t || p.startsWith(`${t}/`) || t.startsWith(`${p}/`))
  base.forEach((e, i) => {
    if (e.type === "raw" || !free(e.path)) return
    const p = e.path
    if (e.type === "dir" && i % 11 === 0) out.push({ type: "dir", path: p, mode: 0o750 }, { type: "opaque", path: p }, { type: "file", path: `${p}/fresh`, content: p })
    else if (e.type === "dir" && i % 17 === 0) out.push({ type: "file", path: p, content: "was a directory" })
    else if (e.type !== "dir" && i % 7 === 0) out.push({ type: "whiteout", path: p })
    else if (e.type !== "dir" && i % 13 === 0) out.push({ type: "dir", path: p }, { type: "file", path: `${p}/inside`, content: "was not a directory" })
    else if (e.type === "file" && i % 5 === 0) out.push({ type: "file", path: p, content: `changed ${i}`, mode: 0o640 })
    else return
    touched.push(p)
  })
  return out
}

test("the host's /etc as a layer, churned by an upper one: both orders equal umoci's rootfs", async () => {
  const base = fromHost("/etc", "etc")
  const upper = churn(base)
  assert.ok(base.length > 100 && upper.length > 50, `${base.length} base entries, ${upper.length} changes`)
  const o = await integration("host-etc", [{ entries: base }, { entries: upper }, { entries: [{ type: "whiteout", path: "etc/ssl" }, { type: "file", path: "etc/last", content: "top" }] }])
  assert.equal(o.diffs.union, [])
  assert.equal(o.diffs.unionAdd, [])
  assert.ok(o.plan.layers[0]!.skip.includes("/etc/ssl/"), "the whited-out tree goes in one line")
})

test.run()
