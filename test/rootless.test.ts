// rootless: a real non-root user pulls, checks out and runs redis with its own repo and runtime dir.
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from "node:fs"
import path from "node:path"
import { cleanupTemps, freePort, repoRoot, sh, shAny, tempDir, loud, pongWithin } from "./fixtures/harness.ts"
import { useMirror, type Mirror } from "./fixtures/mirror.ts"

const t = suite("rootless")
let mirror: Mirror
const user = `sc-rootless-${process.pid}`
let home = ""
let runtimeDir = ""
let uid = 0
const bin = path.join(repoRoot, "packages/core/bin/syscontainers.js")


/** Runs argv as the test user, with its own HOME, XDG_RUNTIME_DIR and the mirror's registries.conf. */
const asUser = (argv: ReadonlyArray<string>) =>
  shAny(["runuser", "-u", user, "--", "env", "-i", `HOME=${home}`, `USER=${user}`, `XDG_RUNTIME_DIR=${runtimeDir}`, `PATH=${process.env["PATH"]}`, `CONTAINERS_REGISTRIES_CONF=${mirror.env["CONTAINERS_REGISTRIES_CONF"]}`, ...argv], { cwd: home })
const sc = (...args: string[]) => asUser(["node", bin, ...args])

t.before(loud("before", async () => {
  mirror = await useMirror()
  // the registries.conf lives in the mirror's temp dir: the user must be able to read it
  chmodSync(path.dirname(mirror.env["CONTAINERS_REGISTRIES_CONF"]!), 0o755)
  await sh(["useradd", "--create-home", "--shell", "/bin/sh", user])
  uid = Number((await sh(["id", "-u", user])).trim())
  home = (await sh(["getent", "passwd", user])).split(":")[5]!
  const parent = tempDir("xdg")
  chmodSync(parent, 0o755) // mkdtemp makes it 0700: the user must reach its runtime dir inside
  runtimeDir = path.join(parent, "run")
  mkdirSync(runtimeDir, { mode: 0o700 })
  chownSync(runtimeDir, uid, uid)
}))
t.after(async () => {
  for (const n of ["rl-redis", "rl-shared0", "rl-shared1"]) await sc("rm", "--force", n)
  await shAny(["pkill", "-u", user])
  await shAny(["userdel", "--remove", user])
  cleanupTemps()
  await mirror.stop()
})

t("the user is really not root", async () => {
  const r = await asUser(["id", "-u"])
  assert.is(r.stdout.trim(), String(uid))
  assert.is.not(uid, 0)
})

t("pull into the user's own bare-user repo under ~/.local/share", async () => {
  const r = await sc("pull", "docker://redis:alpine", "redis")
  assert.is(r.exitCode, 0, r.stderr)
  const repo = path.join(home, ".local/share/containers/syscontainers/repo")
  assert.match(readFileSync(path.join(repo, "config"), "utf8"), /mode=bare-user/)
  const refs = await asUser(["ostree", "refs", `--repo=${repo}`])
  assert.match(refs.stdout, /ociimage\/redis_3Alatest/)
})

t("checkout, rootless spec from the image, run detached: PONG from the host", async () => {
  const port = await freePort()
  const bundle = path.join(home, "cont1")
  for (const args of [
    ["checkout", "redis", bundle],
    ["spec", bundle, "--rootless", "--from-image", "redis"],
    ["patch", bundle, "--edits", JSON.stringify([{ kind: "args", args: ["redis-server", "--port", String(port)] }, { kind: "tmpfs", destination: "/tmp" }, { kind: "tmpfs", destination: "/var/run" }])],
    ["run", bundle, "rl-redis", "--detach"],
  ]) {
    const r = await sc(...args)
    assert.is(r.exitCode, 0, `${args.join(" ")}: ${r.stderr}`)
  }
  assert.is(await pongWithin(port), "PONG")
  // the container's processes belong to the user on the host
  const ps = await sc("ps", "--json")
  const mine = (JSON.parse(ps.stdout) as Array<{ name: string; pid: number; status: string }>).find((c) => c.name === "rl-redis")
  assert.is(mine?.status, "running")
  const owner = (await sh(["ps", "-o", "uid=", "-p", String(mine!.pid)])).trim()
  assert.is(owner, String(uid))
  // state lives in the user's runtime dir
  assert.ok(existsSync(path.join(runtimeDir, "syscontainers/runc/rl-redis")))
})

t("inside, the user is root of a user namespace, and the hardlinked root is read-only", async () => {
  const r = await sc("exec", "rl-redis", "sh", "-c", "id -u; touch /usr/bin/x 2>&1; true")
  assert.match(r.stdout, /^0$/m, `exec printed: ${r.stdout} ${r.stderr}`)
  assert.match(r.stdout, /Read-only file system/)
})

t("kill and rm as the user leave nothing", async () => {
  assert.is((await sc("rm", "--force", "rl-redis")).exitCode, 0)
  assert.not.ok(existsSync(path.join(runtimeDir, "syscontainers/runc/rl-redis")))
  rmSync(path.join(home, "cont1"), { recursive: true, force: true })
})

t("--shared as the user: two containers on one tree in the user's repo, both answer; rmi refused while they run, done after", async () => {
  const repo = path.join(home, ".local/share/containers/syscontainers/repo")
  const ports = [await freePort(), await freePort()]
  for (const [i, port] of ports.entries()) {
    const bundle = path.join(home, `shared${i}`)
    for (const args of [
      ["checkout", "redis", bundle, "--shared"],
      ["spec", bundle, "--rootless", "--from-image", "redis"],
      ["patch", bundle, "--edits", JSON.stringify([{ kind: "args", args: ["redis-server", "--port", String(port)] }, { kind: "tmpfs", destination: "/tmp" }, { kind: "tmpfs", destination: "/var/run" }])],
      ["run", bundle, `rl-shared${i}`, "--detach"],
    ]) {
      const r = await sc(...args)
      assert.is(r.exitCode, 0, `${args.join(" ")}: ${r.stderr}`)
    }
    assert.not.ok(existsSync(path.join(bundle, "rootfs")), "no tree of the bundle's own")
    assert.ok(JSON.parse(readFileSync(path.join(bundle, "config.json"), "utf8")).root.path.startsWith(path.join(repo, "syscontainers", "rootfs") + "/"))
  }
  for (const port of ports) {
    assert.is(await pongWithin(port), "PONG")
  }
  const refused = await sc("rmi", "redis")
  assert.is(refused.exitCode, 1)
  assert.match(refused.stderr, /in use: containers rl-shared0, rl-shared1/)
  for (const i of [0, 1]) assert.is((await sc("rm", "--force", `rl-shared${i}`)).exitCode, 0)
  // the bundles still root there: refused until they go too
  const bundles = await sc("rmi", "redis")
  assert.is(bundles.exitCode, 1)
  assert.match(bundles.stderr, /bundles .*shared0.*shared1|bundles .*shared1.*shared0/)
  for (const i of [0, 1]) rmSync(path.join(home, `shared${i}`), { recursive: true, force: true })
  const removed = await sc("rmi", "redis")
  assert.is(removed.exitCode, 0, removed.stderr)
  assert.not.ok(existsSync(path.join(repo, "syscontainers", "rootfs")) && readdirSync(path.join(repo, "syscontainers", "rootfs")).length > 0, "the shared tree went with the image")
})

t.run()
