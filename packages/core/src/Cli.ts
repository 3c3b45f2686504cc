// Cli: the `syscontainers` command line over the core steps (pull, images, checkout, spec, run, ps ...).
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import { parseArgs } from "node:util"
import os from "node:os"
import path from "node:path"
import { existsSync } from "node:fs"
import * as Ostree from "./Ostree.ts"
import * as Images from "./Images.ts"
import * as Pull from "./Pull.ts"
import * as Layers from "./Layers.ts"
import * as RepoLock from "./RepoLock.ts"
import * as RuntimeSpec from "./RuntimeSpec.ts"
import * as Containers from "./Containers.ts"
import { runtimeNames } from "./Runtimes.ts"
import type { RuntimeName } from "./ContainerRuntime.ts"
import { SpawnLive } from "./Spawn.ts"

/** The default repo: like atomic's per-user repo, overridable by SYSCONTAINERS_REPO or --repo. */
export const defaultRepo = (): string =>
  process.env["SYSCONTAINERS_REPO"] ?? path.join(os.homedir(), ".local", "share", "containers", "syscontainers", "repo")

class Usage extends Error {}

const help: Record<string, string> = {
  main: `usage: syscontainers [--repo DIR] [--registries-conf FILE] [--json] COMMAND ...

Daemonless containers: images in an ostree repo, bundles hardlinked from it, run by runc, crun or bwrap.

commands:
  pull SRC [NAME]                       copy an image (docker://, oci:, oci-archive:, docker-archive:, dir:) into the repo
  images                                list the repo's images
  inspect NAME                          show an image's manifest digest and config
  rmi NAME                              remove an image and the layers no other image uses
  checkout NAME BUNDLE [--order union|union-add] [--copy | --shared]
                                        check the layers out into BUNDLE/rootfs (hardlinks); --shared:
                                        run on the image's one read-only checkout in the repo instead
  spec BUNDLE [--rootless] [--from-image NAME] [--replace]
                                        write BUNDLE/config.json (runc spec), optionally from the image config
  patch BUNDLE [--from-image NAME] [--edits JSON]
                                        apply typed edits to BUNDLE/config.json (validated, atomic)
  run BUNDLE ID [--runtime runc|crun|bwrap] [--detach]
                                        run a bundle
  exec ID CMD...                        run CMD in a running container
  ps                                    list containers of every runtime
  kill ID [SIGNAL]                      signal a container (default TERM)
  rm ID [--force]                       remove a container

global options:
  --repo DIR              the ostree repo (default $SYSCONTAINERS_REPO or ~/.local/share/containers/syscontainers/repo)
  --registries-conf FILE  containers registries.conf for mirrors (default $CONTAINERS_REGISTRIES_CONF)
  --json                  machine-readable output
exit codes: 0 ok, 1 failure, 2 usage`,
  pull: "usage: syscontainers pull SRC [NAME] [--force]\n  SRC: docker://redis:alpine, oci:/dir:tag, oci-archive:f.tar, docker-archive:f.tar, dir:/d\n  NAME: the name in the repo (ociimage/<encoded NAME:TAG>); default: the source's short name",
  images: "usage: syscontainers images",
  inspect: "usage: syscontainers inspect NAME",
  rmi: "usage: syscontainers rmi NAME",
  checkout: "usage: syscontainers checkout NAME BUNDLE [--order union|union-add] [--copy | --shared]",
  spec: "usage: syscontainers spec BUNDLE [--rootless] [--from-image NAME] [--replace]",
  patch:
    'usage: syscontainers patch BUNDLE [--from-image NAME] [--edits JSON]\n  --from-image: args, env, cwd and volumes from the image config (before the edits)\n  --edits: a JSON array of edits, e.g. \'[{"kind":"cwd","cwd":"/data"},{"kind":"tmpfs","destination":"/tmp"}]\'',
  run: "usage: syscontainers run BUNDLE ID [--runtime runc|crun|bwrap] [--detach]",
  exec: "usage: syscontainers exec ID CMD...",
  ps: "usage: syscontainers ps",
  kill: "usage: syscontainers kill ID [SIGNAL]",
  rm: "usage: syscontainers rm ID [--force]",
}

const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)))
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).join("\n")
}

/** Runs one command line; resolves with the exit code. */
export const main = async (argvIn: ReadonlyArray<string>): Promise<number> => {
  // `exec ID CMD...`: everything after the ID is the container's command line, options included
  const valued = new Set(["--repo", "--registries-conf"])
  let execTail: string[] = []
  let argv = [...argvIn]
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (valued.has(a)) i++
    else if (!a.startsWith("-")) {
      if (a === "exec" && i + 1 < argv.length) {
        execTail = argv.slice(i + 2)
        argv = argv.slice(0, i + 2)
      }
      break
    }
  }
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        repo: { type: "string" },
        "registries-conf": { type: "string" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
        order: { type: "string" },
        copy: { type: "boolean", default: false },
        shared: { type: "boolean", default: false },
        rootless: { type: "boolean", default: false },
        replace: { type: "boolean", default: false },
        "from-image": { type: "string" },
        edits: { type: "string" },
        runtime: { type: "string" },
        detach: { type: "boolean", short: "d", default: false },
        force: { type: "boolean", short: "f", default: false },
      },
    })
  } catch (e) {
    console.error(`syscontainers: ${(e as Error).message}\n\n${help["main"]}`)
    return 2
  }
  const { values: v, positionals: pos } = parsed
  const [command, ...parsedArgs] = pos
  const args = [...parsedArgs, ...execTail]
  if (!command || command === "help") {
    console.log(help["main"])
    return command || v.help ? 0 : 2
  }
  if (!(command in help)) {
    console.error(`syscontainers: unknown command ${command}\n\n${help["main"]}`)
    return 2
  }
  if (v.help) {
    console.log(help[command])
    return 0
  }
  const out = (human: string, json: unknown) => console.log(v.json ? JSON.stringify(json, null, 2) : human)
  const repoPath = v.repo ?? defaultRepo()
  const registriesConf = v["registries-conf"]
  const need = (n: number, max = n) => {
    if (args.length < n || args.length > max) throw new Usage(help[command])
  }
  const openRepo = () => Ostree.open(repoPath)

  const program = Effect.gen(function* () {
    switch (command) {
      case "pull": {
        need(1, 2)
        const repo = yield* Ostree.init({ path: repoPath })
        const r = yield* Pull.pull({
          from: args[0]!,
          ...(args[1] ? { name: args[1] } : {}),
          repo,
          ...(registriesConf ? { registriesConf } : {}),
          force: v.force,
          onProgress: (e) => {
            if (v.json) return
            if (e.kind === "layer") console.error(`  layer ${e.done}/${e.total} ${e.digest.slice(7, 19)} ${e.state} (${e.size} bytes)`)
            if (e.kind === "unchanged") console.error(`  unchanged: the repo already holds this manifest (${e.digest.slice(0, 19)})`)
            if (e.kind === "waiting") console.error(`  ${RepoLock.waitingNote(e.holder)}`)
          },
        })
        out(`${r.image.name} ${r.image.digest}${r.skipped ? " (unchanged)" : ""}\n${r.layersImported} layers imported, ${r.layersReused} reused`, {
          name: r.image.name,
          ref: r.image.ref,
          digest: r.image.digest,
          skipped: r.skipped,
          layersImported: r.layersImported,
          layersReused: r.layersReused,
          bytesImported: r.bytesImported,
          bytesReused: r.bytesReused,
        })
        return 0
      }
      case "images": {
        need(0)
        if (!existsSync(repoPath)) return out("", []), 0
        const repo = yield* openRepo()
        const names = yield* Images.list(repo)
        const rows = yield* Effect.forEach(names, (n) => Images.get(repo, n))
        out(table([["NAME", "DIGEST", "LAYERS"], ...rows.map((i) => [i.name, i.digest.slice(0, 19), String(i.manifest.layers.length)])]), rows.map((i) => ({ name: i.name, ref: i.ref, digest: i.digest, layers: i.manifest.layers.length })))
        return 0
      }
      case "inspect": {
        need(1)
        const image = yield* Images.get(yield* openRepo(), args[0]!)
        const c = image.config.config ?? {}
        out(
          [
            `Name:        ${image.name}`,
            `Ref:         ${image.ref}`,
            `Digest:      ${image.digest}`,
            `Layers:      ${image.manifest.layers.length}`,
            `Entrypoint:  ${JSON.stringify(c.Entrypoint ?? null)}`,
            `Cmd:         ${JSON.stringify(c.Cmd ?? null)}`,
            `Env:         ${JSON.stringify(c.Env ?? [])}`,
            `ExposedPorts:${JSON.stringify(Object.keys(c.ExposedPorts ?? {}))}`,
            `Volumes:     ${JSON.stringify(Object.keys(c.Volumes ?? {}))}`,
            `WorkingDir:  ${JSON.stringify(c.WorkingDir ?? "")}`,
            `User:        ${JSON.stringify(c.User ?? "")}`,
            `Labels:      ${JSON.stringify(c.Labels ?? {})}`,
            `StopSignal:  ${JSON.stringify(c.StopSignal ?? "")}`,
          ].join("\n"),
          { name: image.name, ref: image.ref, digest: image.digest, manifest: image.manifest, config: image.config },
        )
        return 0
      }
      case "rmi": {
        need(1)
        const image = yield* Images.remove(yield* openRepo(), args[0]!)
        out(`removed ${image.name}`, { removed: image.name })
        return 0
      }
      case "checkout": {
        need(2)
        const order = v.order ?? "union"
        if (order !== "union" && order !== "union-add") throw new Usage(`--order takes union or union-add, not ${order}`)
        const image = yield* Images.get(yield* openRepo(), args[0]!)
        if (v.copy && v.shared) throw new Usage("--copy makes a private writable tree, --shared uses the image's read-only one: pick one")
        const waiting = (holder: string) => console.error(`  ${RepoLock.waitingNote(holder)}`)
        const bundle = yield* Layers.applyLayers({ image, into: args[1]!, order, link: v.copy ? "copy" : "hardlink", shared: v.shared, waiting })
        out(`${bundle.rootfs} (${bundle.link}, ${bundle.order})`, { bundle: bundle.path, rootfs: bundle.rootfs, link: bundle.link, order: bundle.order })
        return 0
      }
      case "spec": {
        need(1)
        const bundle = path.resolve(args[0]!)
        yield* RuntimeSpec.generate({ bundle, rootless: v.rootless, replace: v.replace })
        if (v["from-image"]) {
          const image = yield* Images.get(yield* openRepo(), v["from-image"])
          const edits = yield* RuntimeSpec.fromImage({ image: image.config.config ?? {}, rootfs: yield* Layers.rootfsOf(bundle), bundle })
          yield* RuntimeSpec.patchConfig({ bundle, edits })
        }
        out(path.join(bundle, "config.json"), { config: path.join(bundle, "config.json") })
        return 0
      }
      case "patch": {
        need(1)
        const bundle = path.resolve(args[0]!)
        let edits: RuntimeSpec.Edit[] = []
        if (v.edits) {
          try {
            edits = JSON.parse(v.edits) as RuntimeSpec.Edit[]
          } catch (e) {
            throw new Usage(`--edits is not JSON: ${(e as Error).message}`)
          }
          if (!Array.isArray(edits)) throw new Usage("--edits takes a JSON array of edits")
        }
        if (v["from-image"]) {
          const image = yield* Images.get(yield* openRepo(), v["from-image"])
          const fromImage = yield* RuntimeSpec.fromImage({ image: image.config.config ?? {}, rootfs: yield* Layers.rootfsOf(bundle), bundle })
          edits = [...fromImage, ...edits]
        }
        const config = yield* RuntimeSpec.patchConfig({ bundle, edits })
        out(`${path.join(bundle, "config.json")}: ${edits.length} edits`, config)
        return 0
      }
      case "run": {
        need(2)
        const rt = (v.runtime ?? "runc") as RuntimeName
        if (!runtimeNames.includes(rt)) throw new Usage(`--runtime takes ${runtimeNames.join(", ")}, not ${rt}`)
        const o = { bundle: args[0]!, name: args[1]!, runtime: rt, log: (l: string) => console.error(l) }
        if (v.detach) {
          const c = yield* Effect.scoped(Containers.start(o))
          out(`${c.name} running (pid ${c.pid}, ${c.runtime}); logs in ${path.join(c.bundle, `${c.name}.log`)}`, c)
          return 0
        }
        return yield* Containers.runAttached(o)
      }
      case "exec": {
        if (args.length < 2) throw new Usage(help["exec"])
        const r = yield* Containers.exec(args[0]!, args.slice(1))
        process.stdout.write(r.stdout)
        process.stderr.write(r.stderr)
        return r.exitCode
      }
      case "ps": {
        need(0)
        const all = yield* Containers.list()
        out(table([["NAME", "RUNTIME", "PID", "STATUS", "BUNDLE"], ...all.map((c) => [c.name, c.runtime, String(c.pid), c.status, c.bundle])]), all)
        return 0
      }
      case "kill": {
        need(1, 2)
        yield* Containers.kill(args[0]!, args[1] ?? "TERM")
        return 0
      }
      case "rm": {
        need(1)
        yield* Containers.remove(args[0]!, { force: v.force })
        return 0
      }
    }
    return 2
  })

  try {
    // Ctrl-C (or TERM) interrupts the command: what it made goes (a pull's temporary layout and its
    // refs, its running skopeo). Not an attached run: like runc run, it passes the signal to the
    // container and ends with the container's own exit status (what systemd judges a stop by)
    const fiber = Effect.runFork(program.pipe(Effect.provide(SpawnLive)))
    let stoppedBy: NodeJS.Signals | undefined
    const interrupt = (sig: NodeJS.Signals) => {
      stoppedBy = sig
      Effect.runFork(Fiber.interrupt(fiber))
    }
    const attachedRun = command === "run" && !v.detach
    if (!attachedRun) for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, interrupt)
    const exit = await Effect.runPromise(Fiber.await(fiber)).finally(() => {
      for (const sig of ["SIGINT", "SIGTERM"] as const) process.off(sig, interrupt)
    })
    if (Exit.isSuccess(exit)) return exit.value
    if (Cause.isInterruptedOnly(exit.cause)) {
      console.error(v.json ? JSON.stringify({ error: "Interrupted", message: `interrupted (${stoppedBy ?? "SIGINT"})` }) : `syscontainers: interrupted (${stoppedBy ?? "SIGINT"})`)
      // as a shell reports a command a signal ended: 128 + its number
      return stoppedBy === "SIGTERM" ? 143 : 130
    }
    const failure = Cause.failureOption(exit.cause)
    if (Option.isSome(failure)) {
      const e = failure.value as { _tag?: string; message?: string }
      console.error(v.json ? JSON.stringify({ error: e._tag, message: e.message }) : `syscontainers: ${e.message}`)
      return 1
    }
    const defect = Cause.squash(exit.cause)
    if (defect instanceof Usage) {
      console.error(defect.message)
      return 2
    }
    console.error(`syscontainers: ${Cause.pretty(exit.cause)}`)
    return 1
  } catch (e) {
    console.error(`syscontainers: ${(e as Error).message}`)
    return 1
  }
}
