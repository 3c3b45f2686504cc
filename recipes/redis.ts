// The seed walkthrough: redis from docker://redis:alpine, stored in ostree, run by runc with no daemon.
import { existsSync, readFileSync } from "node:fs"
import path from "node:path"
import type { RuntimeName } from "@syscontainers/core/ContainerRuntime"
import type { LayerOrder } from "@syscontainers/core/Layers"
import type { Edit } from "@syscontainers/core/RuntimeSpec"
import { Containers, Effect, Spawn, type StepEvent, checkoutLayers, dryRunPreamble, exchange, generateSpec, inOrder, initRepo, isMain, patchSpec, portMustBeFree, pullImage, recipe, runCommand, runContainer, showImage } from "@syscontainers/dsl"
import { withOfflineMirror } from "./offline-mirror.ts"

export const redisRecipe = recipe({
  name: "redis",
  description: "Run redis from docker://redis:alpine with no container daemon: skopeo pulls it into an ostree repo, ostree checks its layers out as hardlinks, runc runs it.",
  options: {
    name: { type: "string", default: "redis", describe: "the container's name" },
    port: { type: "number", default: 6379, describe: "the port redis listens on (host network: pick a free one)" },
    detach: { type: "boolean", default: false, describe: "run in the background and return once redis answers" },
    runtime: { type: "string", default: "runc", choices: ["runc", "crun", "bwrap"], describe: "the OCI runtime" },
    order: { type: "string", default: "union", choices: ["union", "union-add"], describe: "check layers out bottom-up (union) or top-down (union-add)" },
    network: { type: "string", default: "host", choices: ["host", "private"], describe: "share the host's network, or a private network namespace" },
  },
  // nginx's recipe works here too: one repo for both, as in the seed
  workdir: "work/walkthrough",
})
  .step("init", initRepo({
    title: "Create an ostree repository",
    explain: "Every image file goes into a content-addressed ostree repository, so a file that several images hold is stored once. `bare-user` mode needs no root: it keeps ownership and special bits in extended attributes and lets us hardlink checkouts out of it.",
    dir: (p) => path.join(p.workdir, "ostree"),
  }))
  .step("pull", pullImage({
    title: "Pull docker://redis:alpine into the repo as redis",
    explain: "skopeo fetches the image into an OCI layout and checks every digest; then each layer is committed to ostree under `ociimage/<layer digest>` and the manifest under `ociimage/redis_3Alatest`, the names containers/image's old ostree transport used (`skopeo copy docker://redis:alpine ostree:redis@ostree`). The image ref is written last, so an interrupted pull never leaves a named image with missing layers.",
    repo: (d) => d.init,
    repoDir: (p) => path.join(p.workdir, "ostree"),
    from: () => "docker://redis:alpine",
    name: () => "redis",
  }))
  .step("show", showImage({
    title: "Look at the refs and the image config",
    explain: "`ostree refs` lists the image, its config and its layers. The config says how to run the image: its Entrypoint and Cmd, the port it exposes, the volume it wants for its data and its working directory.",
    repo: (d) => d.init,
    repoDir: (p) => path.join(p.workdir, "ostree"),
    name: () => "redis",
  }))
  .step("checkout", checkoutLayers({
    title: (p) => `Check the manifest and the layers out into cont1/ (${p.options.order})`,
    explain: "The layers are checked out one over another into `cont1/rootfs` as hardlinks into the repo: creating the root filesystem copies no file data. We plan the merge ourselves (whiteouts, opaque directories, files replaced by directories) and let ostree place the files, so `union` (bottom-up) and `union-add` (top-down) give the same tree as `umoci unpack`.",
    image: (d) => d.show,
    imageName: () => "redis",
    repoDir: (p) => path.join(p.workdir, "ostree"),
    bundle: (p) => path.join(p.workdir, "cont1"),
    order: (p) => p.options.order as LayerOrder,
  }))
  .step("spec", generateSpec({
    title: "Make the data directory and a rootless runtime spec",
    explain: "`runc spec --rootless` writes a config.json that maps root in the container to us and keeps the root filesystem read-only, which it must be: the files are hardlinks into the repo. redis keeps its data in `cont1/data` on the host.",
    bundle: (p) => path.join(p.workdir, "cont1"),
    rootless: () => true,
    mkdirs: () => ["data"],
  }))
  .step("patch", patchSpec({
    title: "Patch config.json for redis",
    explain: "From the image: the arguments (Entrypoint + Cmd, plus `--bind 127.0.0.1` so that on the host's network redis answers only this machine, and `--port` when you chose one), the environment and the working directory /data. Then what redis needs from us: `data` bound on /data, tmpfs on /tmp and /var/run since the root is read-only, and the network: the host's by default, a private namespace on request.",
    bundle: (p) => path.join(p.workdir, "cont1"),
    repoDir: (p) => path.join(p.workdir, "ostree"),
    fromImage: { image: (d) => d.show, name: () => "redis" },
    edits: (p) => redisEdits(p.options),
  }))
  .step("run", runContainer({
    title: (p) => `Run it: ${p.options.runtime} run ${p.options.name}${p.options.detach ? " (detached)" : ""}`,
    explain: "The runtime starts redis from the bundle. Attached (the default, like the seed) redis holds the terminal and Ctrl-C stops it; `--detach` returns once redis answers, with its output in `cont1/<name>.log`.",
    bundle: (p) => path.join(p.workdir, "cont1"),
    name: (p) => p.options.name,
    runtime: (p) => p.options.runtime as RuntimeName,
    detach: (p) => p.options.detach,
    ready: (c) => answersPing(c.options),
    readySays: (p) => (p.options.network === "host" ? `it answers PING on 127.0.0.1:${p.options.port}` : "redis-cli ping answers PONG inside it"),
    // on the host's network another server on the port would answer our readiness probe
    check: (p) => (p.options.network === "host" ? portMustBeFree(p.options.port) : Effect.void),
  }))
  .step("prove", {
    title: "Prove it works as a user would",
    explain: "From the host, `redis-cli` answers PONG; then, in one redis-cli session, a value round-trips and `SAVE` leaves `dump.rdb` in `cont1/data` on the host. `runc exec` shows redis-server running as PID 1 of the container.",
    shell: (p) => {
      const cli = p.options.network === "private" ? `${p.options.runtime} --root=/run/syscontainers/${p.options.runtime} exec ${p.options.name} redis-cli -p ${p.options.port}` : `redis-cli -p ${p.options.port}`
      return [
        `for i in $(seq 100); do [ "$(${cli} ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done`,
        `${cli} ping`,
        ...(p.options.network === "private"
          ? [`${cli} set greeting hello-from-syscontainers`, `${cli} get greeting`, `${cli} save`]
          : [`printf 'set greeting hello-from-syscontainers\\nget greeting\\nsave\\n' | ${cli}`]),
        "ls -l cont1/data/dump.rdb",
        `"$SYSCONTAINERS" exec ${p.options.name} ps`,
      ]
    },
    run: (c) =>
      Effect.gen(function* () {
        // the two proofs are independent: `runc exec` (~35 ms, the longer) starts first and runs
        // beside the redis-cli round trip (a re-run ~10 ms sooner than starting it second), and its
        // command still reads after the round trip's, as the tutorial lists them. On a
        // private network redis-cli runs in the container, where ps would see it: one after the other
        const proofs = [userRoundTrip(c), Containers.exec(c.options.name, ["ps"])] as const
        const [pong, ps] = c.options.network === "private" ? yield* Effect.all(proofs) : yield* inOrder(proofs, { startFirst: 1 })
        c.emit({ kind: "excerpt", label: `${c.options.runtime} exec ${c.options.name} ps`, text: ps.stdout })
        const pid1 = ps.stdout.split("\n").find((l) => /^\s*1\s/.test(l)) ?? ""
        if (!pid1.includes("redis-server")) return yield* Effect.fail(new Error(`PID 1 is not redis-server:\n${ps.stdout}`))
        const attached = c.results.run.attached
        const log = path.join(c.workdir, "cont1", `${c.options.name}.log`)
        // detached, redis writes to the log (attached, to the terminal): the log keeps every earlier
        // detached run of this name, so this run's banner is the last one
        if (!attached && existsSync(log)) {
          const lines = readFileSync(log, "utf8").split("\n")
          let start = 0
          lines.forEach((l, i) => (start = l.includes("Redis version") ? i : start))
          const banner = lines.slice(start).filter((l) => /Redis version|Ready to accept/.test(l))
          if (banner.length) c.emit({ kind: "excerpt", label: `the redis banner (cont1/${c.options.name}.log)`, text: banner.join("\n") })
        }
        // attached, like the seed: redis keeps the terminal until Ctrl-C
        if (attached) {
          c.emit({ kind: "note", text: "redis runs in the foreground; press Ctrl-C to stop it" })
          yield* attached
        }
        return { pong, ps: ps.stdout }
      }),
  })

type RedisOptions = { readonly network: string; readonly port: number; readonly name: string; readonly runtime: string }

/** The seed's patch: args (plus --port when not the default), /data, tmpfs /tmp and /var/run, the network. */
export const redisEdits = (o: RedisOptions): ReadonlyArray<Edit> => [
  // on the host's network redis would listen on every interface: keep it on loopback
  { kind: "args", args: ["docker-entrypoint.sh", "redis-server", "--bind", "127.0.0.1", ...(o.port !== 6379 ? ["--port", String(o.port)] : [])] },
  { kind: "cwd", cwd: "/data" },
  { kind: "unmount", destination: "/data" },
  { kind: "bind", source: "data", destination: "/data" },
  { kind: "tmpfs", destination: "/tmp" },
  { kind: "tmpfs", destination: "/var/run" },
  // bubblewrap cannot mount /dev/shm noexec, and refuses rather than drop it silently: without it, for bwrap only
  ...(o.runtime === "bwrap" ? [{ kind: "tmpfs", destination: "/dev/shm", options: ["nosuid", "nodev", "mode=1777", "size=65536k"] } as const] : []),
  { kind: "namespace", type: "network", action: o.network === "private" ? "add" : "remove" },
]

/** redis-cli from the host (host network) or inside the container (private network). */
const cli = (o: RedisOptions, args: ReadonlyArray<string>) =>
  o.network === "private"
    ? Containers.exec(o.name, ["redis-cli", "-p", String(o.port), ...args]).pipe(Effect.map((r) => r.stdout))
    : Effect.flatMap(Spawn, (s) => s.run(["redis-cli", "-h", "127.0.0.1", "-p", String(o.port), ...args])).pipe(Effect.map((r) => r.stdout))

const ping = (o: RedisOptions) => cli(o, ["ping"])

/**
 * Readiness: on the host's network, the RESP PING redis-cli sends, from node, so that polling starts
 * no process per try (two redis-cli tries cost ~25 ms of a re-run); on a private network only a
 * process in the container can reach redis, so there it is redis-cli through exec.
 */
const answersPing = (o: RedisOptions) =>
  o.network === "host"
    ? exchange(o.port, "*1\r\n$4\r\nPING\r\n", { complete: (soFar) => soFar.includes("\r\n") }).pipe(Effect.map((answer) => answer === "+PONG\r\n"))
    : ping(o).pipe(Effect.map((out) => out.trim() === "PONG"), Effect.orElseSucceed(() => false))

/**
 * Commands for redis, one line each, and their answers in order: on the host's network one
 * redis-cli session reading them from its standard input (`printf ... | redis-cli`, one process
 * instead of one per command: ~6 ms each here); on a private network one redis-cli per command,
 * inside the container.
 */
const session = (o: RedisOptions, commands: ReadonlyArray<ReadonlyArray<string>>): Effect.Effect<ReadonlyArray<string>, unknown, Spawn> =>
  o.network === "private"
    ? Effect.forEach(commands, (args) => cli(o, args).pipe(Effect.map((out) => out.trim())))
    : Effect.flatMap(Spawn, (s) => s.run(["redis-cli", "-h", "127.0.0.1", "-p", String(o.port)], { input: commands.map((args) => `${args.join(" ")}\n`).join("") })).pipe(
        Effect.map((r) => r.stdout.split("\n").slice(0, commands.length)),
      )

/** What a user types at redis: PING answers PONG, a value round-trips, SAVE leaves dump.rdb in cont1/data on the host. */
const userRoundTrip = (c: { readonly options: RedisOptions; readonly workdir: string; readonly emit: (e: StepEvent) => void }) =>
  Effect.gen(function* () {
    const pong = (yield* ping(c.options)).trim()
    c.emit({ kind: "excerpt", label: "redis-cli ping", text: pong })
    if (pong !== "PONG") return yield* Effect.fail(new Error(`redis answered ${JSON.stringify(pong)}, not PONG`))
    const [set, got, saved] = yield* session(c.options, [["set", "greeting", "hello-from-syscontainers"], ["get", "greeting"], ["save"]])
    c.emit({ kind: "excerpt", label: "redis-cli get greeting", text: got ?? "" })
    if (set !== "OK" || got !== "hello-from-syscontainers") return yield* Effect.fail(new Error(`SET answered ${JSON.stringify(set)}, GET returned ${JSON.stringify(got)}`))
    if (saved !== "OK") return yield* Effect.fail(new Error(`SAVE answered ${JSON.stringify(saved)}`))
    const dump = path.join(c.workdir, "cont1", "data", "dump.rdb")
    if (!existsSync(dump)) return yield* Effect.fail(new Error(`SAVE left no ${dump} on the host`))
    c.emit({ kind: "note", text: `SAVE wrote ${path.relative(c.workdir, dump)} on the host` })
    return pong
  })

if (isMain(import.meta.url)) {
  process.exitCode = await withOfflineMirror(() =>
    runCommand(redisRecipe, process.argv.slice(2), {
      title: "Redis as a daemonless system container",
      dryRunPreamble,
    }),
  )
}
