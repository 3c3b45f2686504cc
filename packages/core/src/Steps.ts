// Steps: the walkthrough's steps under the names of the design card, as Effect values.
import * as Effect from "effect/Effect"
import * as Ostree from "./Ostree.ts"
import * as Pull from "./Pull.ts"
import * as Images from "./Images.ts"
import * as Layers from "./Layers.ts"
import * as RuntimeSpec from "./RuntimeSpec.ts"
import * as Containers from "./Containers.ts"
import type { Repo } from "./Ostree.ts"
import type { Image } from "./Images.ts"
import type { Bundle } from "./Layers.ts"

/** Creates or opens a repo: `{ path, mode: "bare-user" | "bare" }` → Repo. */
export const ostreeInit = Ostree.init

/** Copies an image from any skopeo source into the repo → PullResult (with the Image). */
export const skopeoCopy = Pull.pull

/** The image's manifest and config → Image. */
export const inspect = (repo: Repo, name: string) => Images.get(repo, name)

/** Image layers into BUNDLE/rootfs → Bundle. */
export const applyLayers = Layers.applyLayers

/** `runc spec [--rootless]` into a bundle → the config. */
export const runcSpec = (o: { readonly bundle: Bundle | string; readonly rootless: boolean; readonly terminal?: boolean; readonly replace?: boolean }) =>
  RuntimeSpec.generate({ ...o, bundle: typeof o.bundle === "string" ? o.bundle : o.bundle.path })

/** Typed edits to config.json, validated and written atomically → the config. */
export const patchConfig = (o: { readonly bundle: Bundle | string; readonly edits: ReadonlyArray<RuntimeSpec.Edit> }) =>
  RuntimeSpec.patchConfig({ bundle: typeof o.bundle === "string" ? o.bundle : o.bundle.path, edits: o.edits })

/** The edits that make a spec run an image (args, env, cwd, volumes, user). */
export const fromImage = (bundle: Bundle) => RuntimeSpec.fromImage({ image: bundle.image.config.config ?? {}, rootfs: bundle.rootfs, bundle: bundle.path })

/** Runs a bundle: detached → Container (needs a Scope: it is removed if the scope fails), else the exit code. */
export const run = Containers.start
export const runAttached = Containers.runAttached
export const exec = Containers.exec
export const list = Containers.list
export const state = (name: string) => Containers.find(name).pipe(Effect.map((f) => f.state))
export const kill = Containers.kill
export const remove = Containers.remove

export type { Repo, Image, Bundle }
