// recipes/redis.ts as a user runs it: plan, dry-run (run by bash), JSON, tutorial, reuse, failure and Ctrl-C cleanup.
import { suite } from "uvu"
import * as assert from "uvu/assert"
import * as Effect from "effect/Effect"
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import path from "node:path"
import * as Containers from "../packages/core/src/Containers.ts"
import { stateRootFor } from "../packages/core/src/OciRuntime.ts"
import { cleanupTemps, freePort, repoRoot, run, sh, shAny, tempDir, loud, redisPing as ping } from "./fixtures/harness.ts"
import { useMirror, type Mirror } from "./fixtures/mirror.ts"
import { runtimeSpecErrors } from "./fixtures/ociSchemas.ts"
import { Spawn } from "../packages/core/src/Spawn.ts"

const t = suite("redis recipe")
let mirror: Mirror
const names: string[] = []
const recipeFile = path.join(repoRoot, "recipes", "redis.ts")


const env = () => ({ ...mirror.env })
const recipe = (args: ReadonlyArray<string>) => shAny(["node", "--import", "tsx", recipeFile, ...args], { env: env(), cwd: repoRoot })
const name = (what: string) => {
  const n = `sc-recipe-${what}-${process.pid}`
  names.push(n)
  return n
}
// a user's script lives in their project: inside the workspace, so @syscontainers/* resolve
const scriptDir = path.join(repoRoot, "work", `test-scripts-${process.pid}`)
const scriptFile = (name: string) => {
  mkdirSync(scriptDir, { recursive: true })
  return path.join(scriptDir, name)
}


t.before(loud("before", async () => {
  mirror = await useMirror()
}))
t.after(async () => {
  for (const n of names) await run(Containers.remove(n, { force: true }).pipe(Effect.ignore))
  cleanupTemps()
  rmSync(scriptDir, { recursive: true, force: true })
  await mirror.stop()
})

t("--help lists the recipe's own options", async () => {
  const r = await recipe(["--help"])
  assert.is(r.exitCode, 0)
  for (const o of ["--name", "--port", "--detach", "--runtime", "--order", "--network", "--plan", "--dry-run", "--tutorial", "--json", "--workdir", "--fresh"]) assert.match(r.stdout, o)
})

t("--plan shows the eight steps and creates nothing", async () => {
  const work = path.join(tempDir("plan"), "w")
  const r = await recipe(["--plan", "--workdir", work])
  assert.is(r.exitCode, 0)
  for (const s of ["Create an ostree repository", "Pull docker://redis:alpine", "Check the manifest and the layers out into cont1/", "runc run redis"]) assert.match(r.stdout, s)
  assert.is((r.stdout.match(/^\d+\. /gm) ?? []).length, 8)
  assert.not.ok(existsSync(work))
})

t("a bad option value is a usage error (exit 2) naming the option", async () => {
  const r = await recipe(["--order", "sideways", "--plan"])
  assert.is(r.exitCode, 2)
  assert.match(r.stderr, /--order takes union or union-add/)
})

t("--dry-run prints a bash script that passes bash -n, creates nothing, and when run brings redis up; a recipe run there then leaves that bundle alone", async () => {
  const work = path.join(tempDir("dry"), "w")
  const port = await freePort()
  const n = name("dry")
  const r = await recipe(["--dry-run", "--detach", "--workdir", work, "--port", String(port), "--name", n])
  assert.is(r.exitCode, 0)
  assert.not.ok(existsSync(work), "dry-run creates nothing")
  const script = path.join(tempDir("dry-script"), "redis.sh")
  writeFileSync(script, r.stdout)
  await sh(["bash", "-n", script])
  for (const cmd of ["ostree init", "pull docker://redis:alpine", "runc spec --rootless", "checkout redis", "runc --root="]) assert.match(r.stdout, cmd)
  const ran = await shAny(["bash", script], { env: env() })
  assert.is(ran.exitCode, 0, ran.stderr)
  assert.is(await ping(port), "PONG")
  assert.match(ran.stdout, /PONG/)
  assert.ok(existsSync(path.join(work, "cont1", "data", "dump.rdb")))
  // the script's raw `runc run` left no record in the bundle, yet runc's state names it: a recipe
  // run there (another name, another port) must not check out anew under the running redis
  const rootfs = path.join(work, "cont1", "rootfs")
  const before = statSync(rootfs).ino
  const again = await recipe(["--detach", "--workdir", work, "--port", String(await freePort()), "--name", name("dry-again")])
  assert.is(again.exitCode, 1, again.stderr)
  assert.match(again.stderr, new RegExp(`container ${n} runs from this bundle`))
  assert.is(statSync(rootfs).ino, before, "the bundle was left as it was")
  assert.is(await ping(port), "PONG")
})

t("--json: one JSON event per line, every step started and done", async () => {
  const work = path.join(tempDir("json"), "w")
  const port = await freePort()
  const n = name("json")
  const r = await recipe(["--json", "--detach", "--workdir", work, "--port", String(port), "--name", n])
  assert.is(r.exitCode, 0, r.stderr)
  const events = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { type: string; id?: string; ok?: boolean; event?: { kind: string; argv?: string[]; input?: string } })
  assert.is(events.filter((e) => e.type === "step-start").length, 8)
  // the manifest fetch, started with the recipe, shows under the pull step; on the host's network
  // readiness is polled from node (no process per try): the run step ran runc alone; the round
  // trip is one redis-cli session
  const commands = events.filter((e) => e.event?.kind === "command")
  const skopeo = commands.filter((e) => e.event!.argv![0] === "skopeo")
  assert.ok(skopeo.some((e) => e.event!.argv!.includes("inspect")), JSON.stringify(skopeo))
  assert.equal([...new Set(skopeo.map((e) => e.id))], ["pull"])
  assert.equal(commands.filter((e) => e.id === "run").map((e) => e.event!.argv![0]), ["runc"])
  const up = events.filter((e) => e.id === "run" && e.event?.kind === "note").map((e) => (e.event as { text?: string }).text ?? "")
  assert.ok(up.some((text) => /is up \(pid \d+, runc\): it answers PING on 127\.0\.0\.1:\d+$/.test(text)), up.join("\n"))
  assert.equal(commands.filter((e) => e.id === "prove" && e.event!.argv![0] === "redis-cli").map((e) => e.event!.input ?? e.event!.argv!.at(-1)), ["ping", "set greeting hello-from-syscontainers\nget greeting\nsave\n"])
  assert.is(events.filter((e) => e.type === "step-done").length, 8)
  assert.is(events.at(-1)?.type, "recipe-done")
  assert.is(events.at(-1)?.ok, true)
  assert.is(await ping(port), "PONG")
  // the config.json the recipe wrote passes the official runtime-spec schema
  assert.is(runtimeSpecErrors(JSON.parse(readFileSync(path.join(work, "cont1", "config.json"), "utf8"))), "")

  // a second run: the pull is skipped and the bundle reused; redis answers again
  await run(Containers.remove(n, { force: true }))
  const again = await recipe(["--detach", "--workdir", work, "--port", String(port), "--name", n])
  assert.is(again.exitCode, 0, again.stderr)
  assert.match(again.stderr, /pull skipped: the repo already holds this manifest/)
  assert.match(again.stderr, /unchanged .* reused/)
  assert.match(again.stderr, /runc spec: same runc, same user as last run: its output reused/)
  assert.is(runtimeSpecErrors(JSON.parse(readFileSync(path.join(work, "cont1", "config.json"), "utf8"))), "")
  assert.is(await ping(port), "PONG")
  // the log holds both runs' output; the banner shown is this run's alone
  assert.is(readFileSync(path.join(work, "cont1", `${n}.log`), "utf8").match(/Redis version/g)?.length, 2)
  assert.is(again.stderr.match(/Redis version/g)?.length, 1, again.stderr)
  const ps = await sh(["node", path.join(repoRoot, "packages/core/bin/syscontainers.js"), "ps"])
  assert.match(ps, new RegExp(`${n}\\s+runc\\s+\\d+\\s+running`))
})

t("--network private: redis in a network namespace of its own; the proofs run inside it, and ps sees only redis and itself", async () => {
  const work = path.join(tempDir("private"), "w")
  const n = name("private")
  const r = await recipe(["--detach", "--network", "private", "--workdir", work, "--name", n])
  assert.is(r.exitCode, 0, r.stderr)
  assert.match(r.stderr, /\| PONG/)
  assert.match(r.stderr, /\| hello-from-syscontainers/)
  // the ps excerpt: redis-server as PID 1 and ps, nothing of the redis-cli calls before it
  const ps = r.stderr.split("\n").filter((l) => /^\s+\|\s+\d+\s+\S+\s+/.test(l)).map((l) => l.replace(/^\s+\|\s+\d+\s+\S+\s+/, ""))
  assert.equal(ps, ["redis-server 127.0.0.1:6379", "ps"], r.stderr)
  const found = await run(Containers.find(n))
  const pid = found.state.pid
  assert.is.not(await sh(["readlink", `/proc/${pid}/ns/net`]), await sh(["readlink", "/proc/self/ns/net"]), "its own network namespace")
})

t("re-running over a running container changes nothing of it; a new order, once it is gone, checks out anew and keeps its data", async () => {
  const work = path.join(tempDir("again"), "w")
  const port = await freePort()
  const n = name("again")
  const redis = (...args: string[]) => sh(["redis-cli", "-h", "127.0.0.1", "-p", String(port), ...args]).then((o) => o.trim())
  const dump = path.join(work, "cont1", "data", "dump.rdb")
  assert.is((await recipe(["--detach", "--workdir", work, "--port", String(port), "--name", n])).exitCode, 0)
  await redis("set", "kept", "across-runs")
  await redis("save")
  assert.ok(existsSync(dump))

  // the same name again: refused before step 1, so the bundle it runs from is not touched at all
  const config = path.join(work, "cont1", "config.json")
  const configBefore = [readFileSync(config, "utf8"), statSync(config).mtimeMs]
  const same = await recipe(["--detach", "--workdir", work, "--port", String(port), "--name", n])
  assert.is(same.exitCode, 1)
  assert.match(same.stderr, new RegExp(`InvalidInput: ".*cont1": container ${n} runs from this bundle`))
  assert.not.match(same.stderr, /\[1\/8\]/, "no step ran")
  assert.equal([readFileSync(config, "utf8"), statSync(config).mtimeMs], configBefore, "config.json not rewritten")
  assert.ok(existsSync(dump), "the running container's data")
  assert.ok(existsSync(path.join(work, "cont1", "rootfs", "usr")), "its root filesystem")
  assert.is(await redis("get", "kept"), "across-runs", "still running, still answering")

  // another name on the same port (host network): refused before step 1, nothing made in a new workdir
  const elsewhere = path.join(tempDir("again-port"), "w")
  const taken = await recipe(["--detach", "--workdir", elsewhere, "--port", String(port), "--name", name("again-port")])
  assert.is(taken.exitCode, 1)
  assert.match(taken.stderr, new RegExp(`InvalidInput: "--port ${port}": something already listens on 127.0.0.1:${port}`))
  assert.not.ok(existsSync(path.join(elsewhere, "ostree")), "no repo made")

  // its name from another workdir: refused before step 1 too
  const sameName = await recipe(["--detach", "--workdir", path.join(tempDir("again-name"), "w"), "--port", String(await freePort()), "--name", n])
  assert.is(sameName.exitCode, 1)
  assert.match(sameName.stderr, new RegExp(`ContainerExists: a container named ${n} already exists \\(runc\\); .*syscontainers rm --force ${n}`))

  // another order under another name: the checkout would replace the running container's root
  // (and the same order under another name would start a second container on its files)
  const other = name("again-other")
  const replace = await recipe(["--detach", "--workdir", work, "--port", String(await freePort()), "--name", other, "--order", "union-add"])
  assert.is(replace.exitCode, 1)
  assert.match(replace.stderr, new RegExp(`InvalidInput: .*container ${n} runs from this bundle`))
  assert.ok(existsSync(path.join(work, "cont1", "rootfs", "usr")))
  assert.is(await redis("get", "kept"), "across-runs")

  // once it is gone, the new order is a new checkout beside the data, and redis starts from that data
  await run(Containers.remove(n, { force: true }))
  const updated = await recipe(["--detach", "--workdir", work, "--port", String(port), "--name", n, "--order", "union-add"])
  assert.is(updated.exitCode, 0, updated.stderr)
  assert.match(updated.stderr, /checked out anew, its other files kept/)
  assert.is(JSON.parse(readFileSync(path.join(work, "cont1", ".syscontainers-checkout.json"), "utf8")).order, "union-add")
  assert.is(await redis("get", "kept"), "across-runs", "loaded from cont1/data/dump.rdb")

  // --fresh removes what the recipe made, never under a running container, never the user's own files
  const notes = path.join(work, "notes.txt")
  writeFileSync(notes, "mine\n")
  const refused = await recipe(["--detach", "--fresh", "--workdir", work, "--port", String(await freePort()), "--name", name("again-fresh")])
  assert.is(refused.exitCode, 1)
  assert.match(refused.stderr, new RegExp(`InvalidInput: ".*cont1": container ${n} runs from this bundle`))
  assert.is(await redis("get", "kept"), "across-runs", "untouched")
  await run(Containers.remove(n, { force: true }))
  const fresh = await recipe(["--detach", "--fresh", "--workdir", work, "--port", String(port), "--name", n])
  assert.is(fresh.exitCode, 0, fresh.stderr)
  assert.not.match(fresh.stderr, /pull skipped/, "the repo was made anew")
  assert.is(await redis("get", "kept"), "", "the old data went with the bundle")
  assert.is(readFileSync(notes, "utf8"), "mine\n", "the user's file in the workdir stays")
})

t("--fresh refuses while a bundle elsewhere is checked out on the repo's shared checkout, then goes ahead without it", async () => {
  const work = path.join(tempDir("fresh-shared"), "w")
  const n = name("fresh-shared")
  const port = await freePort()
  assert.is((await recipe(["--detach", "--workdir", work, "--port", String(port), "--name", n])).exitCode, 0)
  await run(Containers.remove(n, { force: true }))
  const elsewhere = path.join(tempDir("fresh-shared-b"), "b")
  await sh(["node", path.join(repoRoot, "packages/core/bin/syscontainers.js"), "--repo", path.join(work, "ostree"), "checkout", "redis", elsewhere, "--shared"])
  const refused = await recipe(["--detach", "--fresh", "--workdir", work, "--port", String(port), "--name", n])
  assert.is(refused.exitCode, 1)
  assert.match(refused.stderr, new RegExp(`InvalidInput: "--fresh": bundles ${elsewhere} are checked out on a shared checkout`))
  assert.ok(existsSync(path.join(work, "ostree", "config")), "the repo stays")
  rmSync(elsewhere, { recursive: true, force: true })
  const fresh = await recipe(["--detach", "--fresh", "--workdir", work, "--port", String(port), "--name", n])
  assert.is(fresh.exitCode, 0, fresh.stderr)
})

t("--tutorial writes the walkthrough; it matches the committed one but for digests, times and ids", async () => {
  const work = path.join(tempDir("tut"), "w")
  const out = path.join(tempDir("tut-out"), "redis.md")
  const port = await freePort()
  const n = name("tutorial")
  const r = await recipe(["--tutorial", out, "--detach", "--workdir", work, "--port", String(port), "--name", n])
  assert.is(r.exitCode, 0, r.stderr)
  const text = readFileSync(out, "utf8")
  for (const s of ["## 1. Create an ostree repository", "ociimage/redis_3Alatest", "skopeo", "ostree commit", '"redis-server"', "PONG", "redis-server"]) assert.match(text, s)
  const committed = readFileSync(path.join(repoRoot, "docs/tutorials/redis.md"), "utf8")
  // this run's own name and port stand where the committed run had the defaults
  const ours = text.split(n).join("redis").split(`127.0.0.1:${port}`).join("127.0.0.1:6379").split(`-p ${port}`).join("-p 6379")
  if (normalize(ours) !== normalize(committed)) writeFileSync(path.join(repoRoot, "work", "tutorial-diff.md"), normalize(ours))
  assert.fixture(normalize(ours), normalize(committed))
})

/** Commands a step runs concurrently (one ostree call per layer) come in any order: compare each block as a set. */
const sortCommandBlocks = (s: string) => s.replace(/```bash\n([\s\S]*?)```/g, (_, body: string) => "```bash\n" + body.split("\n").filter(Boolean).sort().join("\n") + "\n```")

/** What may differ between two real runs: digests, hex ids, times, ports, pids, names. */
const normalize = (s: string) =>
  sortCommandBlocks(s)
    .replace(/Generated by `[^`]*`/, "Generated by CMD")
    .replace(/sha256:[0-9a-f]{6,64}…?/g, "sha256:DIGEST")
    .replace(/\b[0-9a-f]{12,64}\b/g, "HEX")
    .replace(/syscontainers-(pull|skip|spec)-[0-9a-zA-Z]+/g, "syscontainers-$1-ID")
    .replace(/\| [0-9.]+ \|/g, "| T |")
    .replace(/\(\d+(\.\d+)? s\)/g, "(T)")
    .replace(/\b\d{4}-\d\d-\d\dT[\d:.]+Z?\b/g, "TIME")
    .replace(/sc-recipe-[a-z]+-\d+/g, "NAME")
    .replace(/demo-redis-\d+/g, "NAME")
    .replace(/,"--port","\d+"/g, "")
    .replace(/\(pid \d+/g, "(pid N")
    // ps's own PID counts what ran in the container before it (redis forks for SAVE)
    .replace(/^\s*\d+(\s+\S+\s+ps)$/gm, "N$1")
    .replace(/\d+ bytes/g, "N bytes")
    .replace(/^(\s*\d+\s+\S+\s+)[\d:]+(\s)/gm, "$1T$2")
    .replace(/^.*(Redis version|Ready to accept|Server initialized|\* ).*$/gm, "REDIS-LOG")
    .replace(/(\/tmp|\/work|\/run)\/[^\s'"`]*/g, "PATH")

t("a failure injected in step 6 leaves no container, no state and no bundle", async () => {
  const work = path.join(tempDir("fail"), "w")
  const n = name("fail")
  const script = scriptFile("broken.mts")
  // compose from the recipe's own steps, with the patch step broken: a relative cwd is invalid
  writeFileSync(
    script,
    [
      `import { redisRecipe } from ${JSON.stringify(recipeFile)}`,
      `import { Recipe, runCommand, patchSpec } from "@syscontainers/dsl"`,
      `import path from "node:path"`,
      `const steps = redisRecipe.steps.map((s) => s.id !== "patch" ? s : { id: "patch", spec: patchSpec({ title: "Broken patch", explain: "x", bundle: (p) => path.join(p.workdir, "cont1"), repoDir: (p) => path.join(p.workdir, "ostree"), edits: () => [{ kind: "cwd", cwd: "relative/dir" }] }) })`,
      `const broken = new Recipe("broken", "redis with a broken patch", redisRecipe.optionSpecs, steps)`,
      `process.exitCode = await runCommand(broken)`,
    ].join("\n"),
  )
  const r = await shAny(["node", "--import", "tsx", script, "--detach", "--workdir", work, "--name", n], { env: env(), cwd: repoRoot })
  assert.is(r.exitCode, 1)
  assert.match(r.stderr, /step patch .* failed: SpecInvalid/)
  assert.match(r.stderr, /\/process\/cwd/)
  assert.not.ok(existsSync(path.join(work, "cont1")), "no partial bundle")
  assert.not.ok(existsSync(path.join(stateRootFor("runc"), n)), "no state directory")
  const list = await run(Containers.list())
  assert.not.ok(list.some((c) => c.name === n))
})

/**
 * Runs the recipe attached (as the seed does) and sends it SIGINT once its output satisfies `when`,
 * then, if given, `meanwhile` first; resolves with its exit code and everything it printed.
 */
const interruptWhen = (work: string, port: number, n: string, when: (said: string) => boolean, meanwhile: () => Promise<unknown> = async () => {}, extra: ReadonlyArray<string> = []) =>
  run(
    Effect.scoped(
      Effect.gen(function* () {
        const spawn = yield* Spawn
        const p = yield* spawn.start(["node", "--import", "tsx", recipeFile, "--workdir", work, "--port", String(port), "--name", n, ...extra], { env: env(), cwd: repoRoot })
        let said = ""
        for (const stream of [p.stdout, p.stderr]) stream.on("data", (d: Buffer) => void (said += d.toString()))
        let ended = false
        yield* Effect.fork(p.exited.pipe(Effect.tap(() => Effect.sync(() => void (ended = true)))))
        for (let i = 0; i < 6000 && !when(said) && !ended; i++) yield* Effect.sleep("10 millis")
        // what the recipe said is the only clue to why it never got there
        if (!when(said)) return { exit: -1, said: `never got there${ended ? " (the recipe ended)" : ""}:\n${said.slice(-3000)}` }
        yield* Effect.promise(meanwhile)
        yield* p.kill("SIGINT")
        const r = yield* p.exited.pipe(Effect.timeout("30 seconds"))
        return { exit: r.exitCode, said }
      }),
    ),
  )

t("Ctrl-C on an attached run, once redis holds the terminal: redis saves and stops, container and state go, the bundle and its data stay", async () => {
  const work = path.join(tempDir("int"), "w")
  const port = await freePort()
  const n = name("ctrlc")
  // a key never SAVEd: only the clean shutdown that runc run gives redis on Ctrl-C writes it
  const r = await interruptWhen(work, port, n, (said) => said.includes("press Ctrl-C to stop it"), () => sh(["redis-cli", "-h", "127.0.0.1", "-p", String(port), "set", "ctrlc-key", "saved-on-stop"]))
  assert.is(r.exit, 130, r.said)
  assert.match(r.said, /DB saved on disk/)
  assert.is.not(await ping(port), "PONG")
  assert.not.ok(existsSync(path.join(stateRootFor("runc"), n)), "no state directory")
  const list = await run(Containers.list())
  assert.not.ok(list.some((c) => c.name === n))
  assert.ok(existsSync(path.join(work, "cont1", ".syscontainers-checkout.json")), "the bundle, whole")
  assert.ok(readFileSync(path.join(work, "cont1", "data", "dump.rdb")).includes("saved-on-stop"), "the data redis saved as it stopped")
})

t("--runtime bwrap: redis runs under bubblewrap, and Ctrl-C lets it save before it stops", async () => {
  const work = path.join(tempDir("int-bwrap"), "w")
  const port = await freePort()
  const n = name("ctrlc-bwrap")
  const r = await interruptWhen(work, port, n, (said) => said.includes("press Ctrl-C to stop it"), () => sh(["redis-cli", "-h", "127.0.0.1", "-p", String(port), "set", "bwrap-key", "saved-on-stop"]), ["--runtime", "bwrap"])
  assert.is(r.exit, 130, r.said)
  assert.match(r.said, /\|\s+1 root\s+redis-server/, "ps through bwrap's exec")
  assert.match(r.said, /Saving the final RDB snapshot/)
  assert.is.not(await ping(port), "PONG")
  assert.ok(readFileSync(path.join(work, "cont1", "data", "dump.rdb")).includes("saved-on-stop"))
})

t("Ctrl-C after the checkout, before any container ran: no container, no state directory, no bundle", async () => {
  const work = path.join(tempDir("int-early"), "w")
  const port = await freePort()
  const n = name("ctrlc-early")
  // the spec step: the bundle exists, whole, and nothing has run from it yet
  const r = await interruptWhen(work, port, n, (said) => said.includes("[5/8]"))
  assert.match(r.said, /layers checked out/)
  assert.is(r.exit, 130, r.said)
  assert.not.ok(existsSync(path.join(stateRootFor("runc"), n)), "no state directory")
  assert.not.ok(existsSync(path.join(work, "cont1")), "no bundle")
  const list = await run(Containers.list())
  assert.not.ok(list.some((c) => c.name === n))
})

t("reuse: a new recipe composed from the DSL's steps in a few lines pulls and runs busybox", async () => {
  const work = path.join(tempDir("reuse"), "w")
  const script = scriptFile("echo.mts")
  writeFileSync(
    script,
    [
      `import path from "node:path"`,
      `import { recipe, runCommand, initRepo, pullImage, checkoutLayers, generateSpec, patchSpec, runContainer } from "@syscontainers/dsl"`,
      `import { Effect } from "effect"`,
      `const repo = (p: { workdir: string }) => path.join(p.workdir, "ostree")`,
      `const bundle = (p: { workdir: string }) => path.join(p.workdir, "bb")`,
      `const echo = recipe({ name: "echo", description: "busybox says hello", options: {} })`,
      `  .step("init", initRepo({ title: "repo", explain: "", dir: repo }))`,
      `  .step("pull", pullImage({ title: "pull", explain: "", repo: (d) => d.init, repoDir: repo, from: () => "docker://busybox", name: () => "busybox" }))`,
      `  .step("checkout", checkoutLayers({ title: "checkout", explain: "", image: (d) => d.pull.image, imageName: () => "busybox", repoDir: repo, bundle, order: () => "union" }))`,
      `  .step("spec", generateSpec({ title: "spec", explain: "", bundle, rootless: () => true }))`,
      `  .step("patch", patchSpec({ title: "patch", explain: "", bundle, repoDir: repo, edits: () => [{ kind: "args", args: ["/bin/sh", "-c", "echo hello-from-a-composed-recipe > /out/said"] }, { kind: "bind", source: "out", destination: "/out" }] }))`,
      `process.exitCode = await runCommand(echo)`,
    ].join("\n"),
  )
  const r = await shAny(["node", "--import", "tsx", script, "--workdir", work], { env: env(), cwd: repoRoot })
  assert.is(r.exitCode, 0, r.stderr)
  await sh(["runc", `--root=${tempDir("reuse-state")}`, "run", `--bundle=${path.join(work, "bb")}`, name("reuse")])
  assert.is(readFileSync(path.join(work, "bb", "out", "said"), "utf8").trim(), "hello-from-a-composed-recipe")
})

t.run()
