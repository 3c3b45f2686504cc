// the syscontainers command line: help, exit codes, JSON output, images/inspect/rmi over a real repo.
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { existsSync, readFileSync, readdirSync } from "node:fs"
import path from "node:path"
import { cleanupTemps, repoRoot, sh, shAny, tempDir, loud } from "./fixtures/harness.ts"
import { buildImage } from "./fixtures/layers.ts"
import { useMirror, type Mirror } from "./fixtures/mirror.ts"

const t = suite("cli")
let mirror: Mirror
let repo: string
const bin = path.join(repoRoot, "packages/core/bin/syscontainers.js")
const sc = (...args: string[]) => shAny(["node", bin, "--repo", repo, ...args], { env: { ...mirror.env } })
const objects = (dir: string) => readdirSync(path.join(dir, "objects")).reduce((n, d) => n + readdirSync(path.join(dir, "objects", d)).length, 0)

t.before(loud("before", async () => {
  mirror = await useMirror()
  repo = path.join(tempDir("cli"), "repo")
}))
t.after(async () => {
  cleanupTemps()
  await mirror.stop()
})

t("--help lists every command; exit 0", async () => {
  const r = await sc("--help")
  assert.is(r.exitCode, 0)
  for (const c of ["pull", "images", "inspect", "rmi", "checkout", "spec", "patch", "run", "exec", "ps", "kill", "rm"]) assert.match(r.stdout, new RegExp(`^  ${c}\\b`, "m"))
})

t("each command has its own --help", async () => {
  for (const c of ["pull", "checkout", "run", "kill"]) {
    const r = await sc(c, "--help")
    assert.is(r.exitCode, 0)
    assert.match(r.stdout, new RegExp(`usage: syscontainers ${c}`))
  }
})

t("usage errors exit 2: unknown command, unknown option, missing argument, bad --order", async () => {
  for (const args of [["frobnicate"], ["pull", "--nope"], ["pull"], ["checkout", "redis", "b", "--order", "sideways"]]) {
    const r = await sc(...args)
    assert.is(r.exitCode, 2, args.join(" "))
    assert.ok(r.stderr.length > 0)
  }
})

t("pull, images and inspect, human and --json", async () => {
  const p = await sc("pull", "docker://redis:alpine", "redis")
  assert.is(p.exitCode, 0, p.stderr)
  assert.match(p.stdout, /redis:latest sha256:[0-9a-f]{64}\n3 layers imported, 0 reused/)
  const images = JSON.parse((await sc("--json", "images")).stdout) as Array<{ name: string; ref: string; layers: number }>
  assert.equal(images.map((i) => [i.name, i.ref, i.layers]), [["redis:latest", "ociimage/redis_3Alatest", 3]])
  const human = await sc("inspect", "redis")
  assert.match(human.stdout, /Cmd:\s+\["redis-server"\]/)
  assert.match(human.stdout, /ExposedPorts:\["6379\/tcp"\]/)
  const json = JSON.parse((await sc("--json", "inspect", "redis")).stdout)
  assert.equal(json.config.config.WorkingDir, "/data")
})

t("failures exit 1 with the tagged error's message; --json gives it as JSON", async () => {
  const r = await sc("inspect", "nosuch")
  assert.is(r.exitCode, 1)
  assert.match(r.stderr, /image nosuch:latest not found/)
  const j = await sc("--json", "pull", "ftp://x")
  assert.is(j.exitCode, 1)
  assert.equal(JSON.parse(j.stderr).error, "UnknownTransport")
})

t("rmi removes the image and the layers no other image uses, and prunes their objects", async () => {
  assert.is((await sc("pull", "docker://nginx:alpine", "nginx")).exitCode, 0)
  const before = objects(repo)
  const r = await sc("rmi", "nginx")
  assert.is(r.exitCode, 0, r.stderr)
  const refs = (await sh(["ostree", "refs", `--repo=${repo}`])).split("\n").filter(Boolean)
  assert.not.ok(refs.includes("ociimage/nginx_3Alatest"))
  assert.is(refs.length, 5, "redis's image, config and 3 layers (the shared base layer stays)")
  assert.ok(objects(repo) < before, "objects were pruned")
  const bundle = path.join(tempDir("cli-b"), "b")
  assert.is((await sc("checkout", "redis", bundle)).exitCode, 0, "redis still checks out whole")
  assert.ok(existsSync(path.join(bundle, "rootfs/usr/bin/redis-server")))
})

t("checkout --shared: the bundle runs on the repo's one tree; spec roots it there; --copy with --shared is a usage error", async () => {
  const dir = tempDir("cli-shared")
  const r = await sc("--json", "checkout", "redis", path.join(dir, "s"), "--shared")
  assert.is(r.exitCode, 0, r.stderr)
  const { rootfs } = JSON.parse(r.stdout) as { rootfs: string }
  assert.ok(rootfs.startsWith(path.join(repo, "syscontainers", "rootfs") + "/"), rootfs)
  assert.ok(existsSync(path.join(rootfs, "usr/bin/redis-server")))
  assert.not.ok(existsSync(path.join(dir, "s", "rootfs")))
  assert.is((await sc("spec", path.join(dir, "s"), "--rootless", "--from-image", "redis")).exitCode, 0)
  assert.is(JSON.parse(readFileSync(path.join(dir, "s", "config.json"), "utf8")).root.path, rootfs)
  const both = await sc("checkout", "redis", path.join(dir, "t"), "--shared", "--copy")
  assert.is(both.exitCode, 2)
  assert.not.ok(existsSync(path.join(dir, "t")))
  // the same again: the message names what the bundle holds, and the commands that help
  const again = await sc("checkout", "redis", path.join(dir, "s"), "--shared")
  assert.is(again.exitCode, 1)
  assert.match(again.stderr, /already holds a checkout \(\.syscontainers-checkout\.json\)/)
  const spec = await sc("spec", path.join(dir, "s"), "--rootless")
  assert.is(spec.exitCode, 1)
  assert.match(spec.stderr, /syscontainers spec --replace/)
  assert.is((await sc("spec", path.join(dir, "s"), "--rootless", "--replace")).exitCode, 0)
})

t("Ctrl-C during a pull: exit 130, no temporary layout, no refs, no skopeo or ostree left running", async () => {
  const dir = tempDir("cli-int")
  // 48 MiB gzip cannot shrink: a pull long enough to interrupt while it copies and commits
  const img = await buildImage(path.join(dir, "img"), [{ entries: [{ type: "file", path: "big.bin", content: randomBytes(48 << 20) }] }])
  const own = path.join(dir, "repo")
  assert.is((await shAny(["node", bin, "--repo", own, "images"])).exitCode, 0)
  const child = spawn("node", [bin, "--repo", own, "pull", img.ref, "big"], { stdio: ["ignore", "ignore", "pipe"] })
  let said = ""
  child.stderr.on("data", (d: Buffer) => void (said += d.toString()))
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  const pulling = () => existsSync(path.join(own, "tmp")) && readdirSync(path.join(own, "tmp")).some((f) => f.startsWith("syscontainers-pull-"))
  for (let i = 0; i < 500 && !pulling(); i++) await new Promise((r) => setTimeout(r, 10))
  assert.ok(pulling(), `the pull never started: ${said}`)
  child.kill("SIGINT")
  assert.is(await exited, 130, said)
  assert.match(said, /interrupted/)
  assert.equal(readdirSync(path.join(own, "tmp")).filter((f) => f.startsWith("syscontainers-pull-")), [], "no temporary layout")
  assert.is((await sh(["ostree", "refs", `--repo=${own}`])).trim(), "", "no refs")
  const left = (await shAny(["pgrep", "-f", own])).stdout.trim()
  assert.is(left, "", "no process working on the repo")
})

t.run()
