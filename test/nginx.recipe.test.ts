// recipes/nginx.ts: the page under bwrap, runc and crun; dedup against redis in one repo; two runtimes at once.
import { suite } from "uvu"
import * as assert from "uvu/assert"
import * as Effect from "effect/Effect"
import { readFileSync, readdirSync, statSync } from "node:fs"
import path from "node:path"
import * as Containers from "../packages/core/src/Containers.ts"
import { cleanupTemps, freePort, repoRoot, run, sh, shAny, tempDir, loud } from "./fixtures/harness.ts"
import { useMirror, type Mirror } from "./fixtures/mirror.ts"
import { runtimeSpecErrors } from "./fixtures/ociSchemas.ts"

const t = suite("nginx recipe")
let mirror: Mirror
const names: string[] = []
const recipes = path.join(repoRoot, "recipes")
const bin = path.join(repoRoot, "packages/core/bin/syscontainers.js")

const name = (what: string) => {
  const n = `sc-nginx-${what}-${process.pid}`
  names.push(n)
  return n
}
const recipe = (file: string, args: ReadonlyArray<string>) => shAny(["node", "--import", "tsx", path.join(recipes, file), ...args], { env: { ...mirror.env }, cwd: repoRoot })
/** ostree's objects: one file per stored file content (plus dirtree/dirmeta/commit objects). */
const objectCount = (repo: string) => readdirSync(path.join(repo, "objects")).reduce((n, d) => n + readdirSync(path.join(repo, "objects", d)).length, 0)

t.before(loud("before", async () => {
  mirror = await useMirror()
}))
t.after(async () => {
  for (const n of names) await run(Containers.remove(n, { force: true }).pipe(Effect.ignore))
  cleanupTemps()
  await mirror.stop()
})

for (const runtime of ["bwrap", "runc", "crun"]) {
  t(`--runtime ${runtime}: curl gets the page, an edit on the host shows, then it is stopped and deleted`, async () => {
    const work = path.join(tempDir(`nginx-${runtime}`), "w")
    const port = await freePort()
    const n = name(runtime)
    const r = await recipe("nginx.ts", ["--runtime", runtime, "--workdir", work, "--port", String(port), "--name", n])
    assert.is(r.exitCode, 0, r.stderr)
    assert.match(r.stderr, /Welcome to nginx from syscontainers/)
    assert.match(r.stderr, /edited on the host/)
    assert.match(r.stderr, new RegExp(`${n}\\s+${runtime}\\s+\\d+\\s+running`))
    assert.match(r.stderr, new RegExp(`${n} stopped and deleted`))
    assert.is(runtimeSpecErrors(JSON.parse(readFileSync(path.join(work, "cont2", "config.json"), "utf8"))), "", "the official runtime-spec schema")
    const after = await shAny(["curl", "-fsS", "--max-time", "1", `http://127.0.0.1:${port}/`])
    assert.is.not(after.exitCode, 0, "nginx is gone after the recipe")
    const list = await run(Containers.list())
    assert.not.ok(list.some((c) => c.name === n))
  })
}

t("nginx after redis in one repo reuses the base layer: fewer new objects than nginx alone", async () => {
  const alone = path.join(tempDir("alone"), "w")
  const shared = path.join(tempDir("shared"), "w")
  await sh(["node", bin, "--repo", path.join(alone, "ostree"), "pull", "docker://nginx:alpine", "nginx"], { env: { ...mirror.env } })
  const nginxAlone = objectCount(path.join(alone, "ostree"))
  await sh(["node", bin, "--repo", path.join(shared, "ostree"), "pull", "docker://redis:alpine", "redis"], { env: { ...mirror.env } })
  const afterRedis = objectCount(path.join(shared, "ostree"))
  const n = name("reuse")
  const port = await freePort()
  const r = await recipe("nginx.ts", ["--workdir", shared, "--port", String(port), "--name", n])
  assert.is(r.exitCode, 0, r.stderr)
  assert.match(r.stderr, /1 layers imported .*, 1 reused \(7\d+ bytes\)/)
  assert.match(r.stderr, /\(1 of 2 layers, \d+ bytes, reused\)/)
  const growth = objectCount(path.join(shared, "ostree")) - afterRedis
  assert.ok(growth < nginxAlone / 2, `nginx added ${growth} objects after redis; alone it needs ${nginxAlone}`)
  // the shared files are the same inodes in both bundles' source: one object each
  assert.ok(statSync(path.join(shared, "ostree", "config")).isFile())
})

t("redis under runc and nginx under bwrap run at once from one repo; ps lists both with their runtime", async () => {
  const work = path.join(tempDir("both"), "w")
  const redisPort = await freePort()
  const nginxPort = await freePort()
  const rn = name("both-redis")
  const nn = name("both-nginx")
  const a = await recipe("redis.ts", ["--detach", "--workdir", work, "--port", String(redisPort), "--name", rn])
  assert.is(a.exitCode, 0, a.stderr)
  const b = await recipe("nginx.ts", ["--detach", "--workdir", work, "--port", String(nginxPort), "--name", nn])
  assert.is(b.exitCode, 0, b.stderr)
  const ps = await sh(["node", bin, "ps"])
  assert.match(ps, new RegExp(`${rn}\\s+runc\\s+\\d+\\s+running`))
  assert.match(ps, new RegExp(`${nn}\\s+bwrap\\s+\\d+\\s+running`))
  assert.is((await sh(["redis-cli", "-h", "127.0.0.1", "-p", String(redisPort), "ping"])).trim(), "PONG")
  assert.match(await sh(["curl", "-fsS", `http://127.0.0.1:${nginxPort}/`]), /edited on the host/)
  for (const n of [rn, nn]) assert.is((await shAny(["node", bin, "rm", "--force", n])).exitCode, 0)
})

t.run()
