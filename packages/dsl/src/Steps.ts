// Steps: the walkthrough's steps as reusable factories; a recipe gives the prose, a factory the work.
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import { existsSync, mkdirSync, rmSync } from "node:fs"
import path from "node:path"
import { fileURLToPath } from "node:url"
import * as Ostree from "@syscontainers/core/Ostree"
import type { Repo } from "@syscontainers/core/Ostree"
import * as Pull from "@syscontainers/core/Pull"
import * as Images from "@syscontainers/core/Images"
import * as RepoLock from "@syscontainers/core/RepoLock"
import type { Image } from "@syscontainers/core/Images"
import * as Layers from "@syscontainers/core/Layers"
import type { Bundle, LayerOrder } from "@syscontainers/core/Layers"
import * as RuntimeSpec from "@syscontainers/core/RuntimeSpec"
import type { Edit } from "@syscontainers/core/RuntimeSpec"
import * as Containers from "@syscontainers/core/Containers"
import { ContainerExists, InvalidInput } from "@syscontainers/core/Errors"
import { sameDir } from "@syscontainers/core/Paths"
import type { Container } from "@syscontainers/core/Containers"
import type { RuntimeName } from "@syscontainers/core/ContainerRuntime"
import { stateRootFor, logFile } from "@syscontainers/core/OciRuntime"
import { imageRef } from "@syscontainers/core/OstreeRefs"
import { blobRef } from "@syscontainers/core/OstreeRefs"
import type { PlanContext, StepContext, StepSpec } from "./Step.ts"
import type { Spawn } from "@syscontainers/core/Spawn"
import { line, quote } from "./Shell.ts"

/** The prose a recipe gives each step. */
export interface Prose<O> {
  readonly title: string | ((p: PlanContext<O>) => string)
  readonly explain: string | ((p: PlanContext<O>) => string)
}

type From<O, T> = (p: PlanContext<O>) => T
type FromResults<D, T> = (d: D) => T

/** The `syscontainers` command as a dry-run script names it (the script sets $SYSCONTAINERS). */
export const syscontainersBin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../core/bin/syscontainers.js")

/** Lines a dry-run script starts with: where the syscontainers command is. */
export const dryRunPreamble = [`SYSCONTAINERS=\${SYSCONTAINERS:-${quote(syscontainersBin)}}`]

const rel = (p: PlanContext<unknown>, target: string) => path.relative(p.workdir, target) || "."

/** `ostree init --mode=bare-user`, or open the repo when it is there. */
export const initRepo = <O, D>(o: Prose<O> & { readonly dir: From<O, string>; readonly mode?: Ostree.RepoMode }): StepSpec<O, D, Repo> => ({
  ...o,
  owns: (p) => [o.dir(p)],
  shell: (p) => [`[ -e ${quote(rel(p, o.dir(p)))}/config ] || ostree init --repo=${quote(rel(p, o.dir(p)))} --mode=${o.mode ?? "bare-user"}`],
  run: (c) =>
    Effect.gen(function* () {
      const repo = yield* Ostree.init({ path: o.dir(c), mode: o.mode ?? "bare-user" })
      c.emit({ kind: "note", text: `repo ${repo.path} (${repo.mode})` })
      return repo
    }),
})

/** Pulls an image into the repo; skipped when the repo already holds the source's manifest. */
export const pullImage = <O, D>(
  o: Prose<O> & { readonly repo: FromResults<D, Repo>; readonly repoDir: From<O, string>; readonly from: From<O, string>; readonly name: From<O, string> },
): StepSpec<O, D, Pull.PullResult, ReturnType<typeof Pull.sourceDigest>> => ({
  ...o,
  shell: (p) => [line(["$SYSCONTAINERS", `--repo=${rel(p, o.repoDir(p))}`, "pull", o.from(p), o.name(p)]).replace("'$SYSCONTAINERS'", '"$SYSCONTAINERS"')],
  // the one manifest fetch that decides whether to pull runs while the recipe checks and makes its repo
  ahead: (p) => Pull.sourceDigest(o.from(p)),
  run: (c) =>
    Effect.gen(function* () {
      const r = yield* Pull.pull({
        from: o.from(c),
        name: o.name(c),
        repo: o.repo(c.results),
        force: c.fresh,
        sourceDigest: c.ahead,
        onProgress: (e) => {
          if (e.kind === "fetch") c.emit({ kind: "progress", text: `fetching ${e.source}` })
          if (e.kind === "fetched") c.emit({ kind: "progress", text: `${e.layers} layers, ${e.bytes} bytes` })
          if (e.kind === "layer") c.emit({ kind: "progress", text: `layer ${e.done}/${e.total} ${e.digest.slice(7, 19)} ${e.state} (${e.size} bytes)` })
          if (e.kind === "waiting") c.emit({ kind: "progress", text: RepoLock.waitingNote(e.holder) })
        },
      })
      c.emit({
        kind: "note",
        text: r.skipped
          ? `pull skipped: the repo already holds this manifest (${r.image.digest.slice(0, 19)}…)`
          : `${r.layersImported} layers imported (${r.bytesImported} bytes), ${r.layersReused} reused (${r.bytesReused} bytes)`,
      })
      return r
    }),
})

/** Shows the refs and the image config, as the seed does with `ostree refs` and `ostree cat`. */
export const showImage = <O, D>(o: Prose<O> & { readonly repo: FromResults<D, Repo>; readonly repoDir: From<O, string>; readonly name: From<O, string> }): StepSpec<O, D, Image> => ({
  ...o,
  shell: (p) => {
    const repo = `--repo=${rel(p, o.repoDir(p))}`
    return [
      `ostree refs ${repo}`,
      `config=$(ostree cat ${repo} ${imageRef(o.name(p))} /manifest.json | jq -r .config.digest | cut -d: -f2)`,
      `ostree cat ${repo} "ociimage/$config" /content | jq '.config | {Entrypoint, Cmd, Env, ExposedPorts, Volumes, WorkingDir, User}'`,
    ]
  },
  run: (c) =>
    Effect.gen(function* () {
      const repo = o.repo(c.results)
      const refs = yield* Ostree.refs(repo)
      c.emit({ kind: "excerpt", label: "ostree refs", text: refs.join("\n") })
      const image = yield* Images.get(repo, o.name(c))
      const cfg = image.config.config ?? {}
      const shown = { Entrypoint: cfg.Entrypoint ?? null, Cmd: cfg.Cmd ?? null, Env: cfg.Env ?? [], ExposedPorts: cfg.ExposedPorts ?? {}, Volumes: cfg.Volumes ?? {}, WorkingDir: cfg.WorkingDir ?? "", User: cfg.User ?? "" }
      c.emit({ kind: "excerpt", label: `the config (${blobRef(image.manifest.config.digest).slice(0, 21)}…:/content)`, text: JSON.stringify(shown, null, 2) })
      return image
    }),
})

/**
 * Checks the layers out into BUNDLE/rootfs. An unchanged bundle (same image digest and order) is
 * reused; a changed one gets a new checkout and keeps its own files (data/, logs). While a
 * container runs from the bundle, the run is refused before step 1. A bundle this run made is
 * removed if a later step fails or is interrupted before a container has run from it (no half-made
 * bundles); one it found is left as it was found, data and all.
 */
export const checkoutLayers = <O, D>(
  o: Prose<O> & {
    readonly image: FromResults<D, Image>
    readonly imageName: From<O, string>
    readonly repoDir: From<O, string>
    readonly bundle: From<O, string>
    readonly order: From<O, LayerOrder>
  },
): StepSpec<O, D, Bundle> => ({
  title: o.title,
  explain: o.explain,
  owns: (p) => [o.bundle(p)],
  // a container running from the bundle has its root filesystem there and reads its files: a new
  // checkout, spec or patch, or a second container, would change them from under it
  check: (p) =>
    Effect.gen(function* () {
      const dir = o.bundle(p)
      if (!existsSync(dir)) return
      const users = yield* Containers.runningFrom(dir)
      if (users.length > 0)
        return yield* new InvalidInput({
          input: dir,
          reason: `container ${users.join(", ")} runs from this bundle`,
          fix: `stop and remove it first (syscontainers rm --force ${users[0]}), or run in another --workdir`,
        })
    }),
  shell: (p) => [
    `rm -rf ${quote(path.join(rel(p, o.bundle(p)), "rootfs"))}`,
    `"$SYSCONTAINERS" ${line([`--repo=${rel(p, o.repoDir(p))}`, "checkout", o.imageName(p), rel(p, o.bundle(p)), `--order=${o.order(p)}`])}`,
  ],
  run: (c) => {
    const dir = o.bundle(c)
    const found = existsSync(dir)
    return Effect.acquireRelease(
      Effect.gen(function* () {
        const image = o.image(c.results)
        const order = o.order(c)
        const marker = yield* Layers.readMarker(dir)
        if (!c.fresh && marker && marker.digest === image.digest && marker.order === order && existsSync(path.join(dir, "rootfs"))) {
          c.emit({ kind: "note", text: `bundle ${dir} is unchanged (${image.digest.slice(0, 19)}…, ${order}): reused` })
          return { path: dir, rootfs: path.join(dir, "rootfs"), image, link: marker.mode, order } satisfies Bundle
        }
        if (found) {
          // (the check made sure no container runs from it)
          yield* Layers.removeCheckout(dir)
          if (marker) c.emit({ kind: "note", text: `bundle ${dir} held ${marker.digest.slice(0, 19)}… (${marker.order}): checked out anew, its other files kept` })
        }
        const bundle = yield* Layers.applyLayers({ image, into: dir, order, waiting: (holder) => c.emit({ kind: "progress", text: RepoLock.waitingNote(holder) }) })
        c.emit({ kind: "note", text: `${image.manifest.layers.length} layers checked out (${order}, ${bundle.link}s from the repo) into ${bundle.rootfs}` })
        return bundle
      }),
      // half-made: this run made it and no container has run from it yet (once one has, the bundle
      // holds that container's data, and Ctrl-C on an attached run is how the seed stops redis)
      (bundle, exit) =>
        Exit.isFailure(exit) && !found && !ranFrom(c.results, bundle.path) ? Effect.sync(() => rmSync(bundle.path, { recursive: true, force: true })) : Effect.void,
    )
  },
})

/** Whether a step that has completed started a container from `bundle` (its handle is in the results). */
const ranFrom = (results: unknown, bundle: string) =>
  Object.values(results as Record<string, unknown>).some((r) => typeof r === "object" && r !== null && "pid" in r && "bundle" in r && typeof r.bundle === "string" && sameDir(r.bundle, bundle))

/** `mkdir` the bundle's own directories, then `runc spec [--rootless]` (replacing an older config.json). */
export const generateSpec = <O, D>(
  o: Prose<O> & { readonly bundle: From<O, string>; readonly rootless: From<O, boolean>; readonly mkdirs?: From<O, ReadonlyArray<string>> },
): StepSpec<O, D, RuntimeSpec.RuntimeConfig> => ({
  ...o,
  shell: (p) => {
    const b = rel(p, o.bundle(p))
    const dirs = (o.mkdirs?.(p) ?? []).map((d) => quote(path.join(b, d)))
    return [
      ...(dirs.length ? [`mkdir -p ${dirs.join(" ")}`] : []),
      `rm -f ${quote(b)}/config.json`,
      line(["runc", "spec", ...(o.rootless(p) ? ["--rootless"] : []), "--bundle", b]),
      // as generate does: no terminal, so the container can run detached
      `sed -i 's/"terminal": true/"terminal": false/' ${quote(b)}/config.json`,
    ]
  },
  run: (c) =>
    Effect.gen(function* () {
      const bundle = o.bundle(c)
      for (const d of o.mkdirs?.(c) ?? []) mkdirSync(path.join(bundle, d), { recursive: true })
      // no terminal: the container's output goes to our stdout or its log, and a TTY would block detaching;
      // a re-run takes runc's output from the bundle while runc and our ids are unchanged (no runc spec)
      const { config, reused } = yield* RuntimeSpec.generateFrom({ bundle, rootless: o.rootless(c), terminal: false, replace: true, reuse: !c.fresh })
      if (reused) c.emit({ kind: "note", text: `runc spec: same runc, same user as last run: its output reused from ${path.relative(c.workdir, reused)}` })
      return config
    }),
})

/** Patches config.json: the image's defaults (when `fromImage`), then the recipe's edits. */
export const patchSpec = <O, D>(
  o: Prose<O> & {
    readonly bundle: From<O, string>
    readonly repoDir: From<O, string>
    readonly fromImage?: { readonly image: FromResults<D, Image>; readonly name: From<O, string> }
    readonly edits: From<O, ReadonlyArray<Edit>>
  },
): StepSpec<O, D, RuntimeSpec.RuntimeConfig> => ({
  ...o,
  shell: (p) => [
    `"$SYSCONTAINERS" ${line([
      `--repo=${rel(p, o.repoDir(p))}`,
      "patch",
      rel(p, o.bundle(p)),
      ...(o.fromImage ? [`--from-image=${o.fromImage.name(p)}`] : []),
      `--edits=${JSON.stringify(o.edits(p))}`,
    ])}`,
  ],
  run: (c) =>
    Effect.gen(function* () {
      const bundle = o.bundle(c)
      const base = o.fromImage
        ? yield* RuntimeSpec.fromImage({ image: o.fromImage.image(c.results).config.config ?? {}, rootfs: yield* Layers.rootfsOf(bundle), bundle })
        : []
      const config = yield* RuntimeSpec.patchConfig({ bundle, edits: [...base, ...o.edits(c)] })
      c.emit({ kind: "excerpt", label: "process.args", text: JSON.stringify(config.process?.args ?? []) })
      return config
    }),
})

/**
 * Runs the bundle. Detached: returns once `ready` says yes (bounded), the container stays up after
 * the recipe; a failure later in the recipe, or Ctrl-C, kills and deletes it. Attached: like
 * `runc run`, in the foreground; `ready` and the steps after run while it does.
 */
export const runContainer = <O, D>(
  o: Prose<O> & {
    readonly bundle: From<O, string>
    readonly name: From<O, string>
    readonly runtime: From<O, RuntimeName>
    readonly detach: From<O, boolean>
    /** Polled until true: 2 ms apart at first, then less often up to 50 ms apart (a server is often up within 10 ms of its start), at most `readyTimeoutMs` (default 10 s). */
    readonly ready: (c: StepContext<O, D>) => Effect.Effect<boolean, unknown, any>
    /** What `ready` saw, for the report (it may run no command to show): "it answered PING", say. */
    readonly readySays?: From<O, string>
    readonly readyTimeoutMs?: number
    /** More to check before the recipe starts (a free port, say), beside the name being free. */
    readonly check?: (p: PlanContext<O>) => Effect.Effect<void, unknown, Spawn>
  },
): StepSpec<O, D, Container & { readonly attached?: Effect.Effect<number, unknown> }> => ({
  ...o,
  // a name in use would fail this step after the earlier ones had rewritten the bundle it runs from
  check: (p) =>
    Effect.gen(function* () {
      const name = o.name(p)
      const held = yield* Containers.holding(name)
      if (held) return yield* new ContainerExists({ name, runtime: held })
      if (o.check) yield* o.check(p)
    }),
  shell: (p) => {
    const rt = o.runtime(p)
    const b = rel(p, o.bundle(p))
    const name = o.name(p)
    // crun needs a cgroup workaround on some hosts that only our runtime layer knows: name it through syscontainers
    if (rt === "runc") {
      const base = [rt, `--root=${stateRootFor(rt)}`, "run"]
      return o.detach(p)
        ? [`${line([...base, "--detach", `--bundle=${b}`, name])} >${quote(path.join(b, `${name}.log`))} 2>&1`]
        : [`${line([...base, `--bundle=${b}`, name])} &`]
    }
    return [`"$SYSCONTAINERS" ${line(["run", b, name, `--runtime=${rt}`, ...(o.detach(p) ? ["--detach"] : [])])}${o.detach(p) ? "" : " &"}`]
  },
  run: (c) =>
    Effect.gen(function* () {
      const bundle = o.bundle(c)
      const name = o.name(c)
      const runtime = o.runtime(c)
      const log = (text: string) => c.emit({ kind: "note", text })
      const waitReady = o.ready(c).pipe(
        Effect.flatMap((yes) => (yes ? Effect.void : Effect.fail("not ready" as const))),
        // 2 ms apart at first (redis answers ~9 ms after runc returns), half as often again each
        // time, never more than 50 ms apart
        Effect.retry(Schedule.exponential("2 millis", 1.5).pipe(Schedule.either(Schedule.spaced("50 millis")), Schedule.upTo(`${o.readyTimeoutMs ?? 10_000} millis`))),
      )
      if (o.detach(c)) {
        const container = yield* Containers.start({ bundle, name, runtime, log })
        yield* waitReady.pipe(Effect.mapError(() => new Error(`${name} did not become ready in ${(o.readyTimeoutMs ?? 10_000) / 1000} s; see ${logFile(bundle, name)}`)))
        c.emit({ kind: "note", text: `${name} is up (pid ${container.pid}, ${runtime})${o.readySays ? `: ${o.readySays(c)}` : ""}` })
        return container
      }
      // attached: the container runs in the foreground while the recipe goes on; the scope ends it
      const fiber = yield* Effect.forkScoped(Containers.runAttached({ bundle, name, runtime, log }))
      // ready only while our run goes on: if it ends first (refused, or exited), that is the answer,
      // not whatever else may answer on the port
      yield* Effect.raceFirst(
        waitReady.pipe(Effect.mapError(() => new Error(`${name} did not become ready in ${(o.readyTimeoutMs ?? 10_000) / 1000} s`))),
        Fiber.join(fiber).pipe(Effect.flatMap((code) => Effect.fail(new Error(`${name} exited (status ${code}) before it was ready`)))),
      )
      // the run's own interruption stops redis as runc run and Ctrl-C would (the signal, then the
      // grace to exit cleanly); a forced delete first would kill it before it saved its data
      yield* Effect.addFinalizer(() => Fiber.interrupt(fiber).pipe(Effect.zipRight(Containers.remove(name, { force: true }).pipe(Effect.ignore))))
      const state = yield* Containers.find(name)
      c.emit({ kind: "note", text: `${name} is up (pid ${state.state.pid}, ${runtime})${o.readySays ? `: ${o.readySays(c)}` : ""}` })
      return { name, runtime, bundle, pid: state.state.pid, attached: fiber.await.pipe(Effect.flatMap((exit) => exit)) } as Container & { attached: Effect.Effect<number, unknown> }
    }),
})
