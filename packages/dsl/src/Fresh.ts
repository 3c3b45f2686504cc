// Fresh: what --fresh removes before a run (what the steps say they made), or why it may not.
import * as Effect from "effect/Effect"
import { readFileSync, rmSync } from "node:fs"
import path from "node:path"
import * as Containers from "@syscontainers/core/Containers"
import { InvalidInput } from "@syscontainers/core/Errors"
import * as Layers from "@syscontainers/core/Layers"
import { within } from "@syscontainers/core/Paths"
import type { Spawn } from "@syscontainers/core/Spawn"
import type { PlanContext, Step } from "./Step.ts"

/** A refusal, charged to the step whose directory is in use. */
export interface Refusal {
  readonly index: number
  readonly error: unknown
}

/**
 * Removes every directory a step owns (its repo, its bundle), never the rest of the workdir; or
 * refuses, removing nothing, while a container (not stopped) has its bundle or its root there, or
 * a bundle elsewhere is checked out on a shared tree of a repo that would go.
 */
export const clearWhatStepsMade = <O>(steps: ReadonlyArray<Step<O>>, plan: PlanContext<O>): Effect.Effect<Refusal | undefined, never, Spawn> =>
  Effect.gen(function* () {
    const owned = steps.flatMap((step, index) => (step.spec.owns?.(plan) ?? []).map((dir) => ({ dir, index })))
    const listed = yield* Containers.listStrict().pipe(Effect.either)
    if (listed._tag === "Left") return { index: 0, error: listed.left }
    const running = listed.right.filter((c) => c.status !== "stopped")
    const uses = (c: { readonly bundle: string }, dir: string) => {
      const root = rootOf(c.bundle)
      return within(c.bundle, dir) || (root !== undefined && within(root, dir))
    }
    const busy = owned.map((d) => ({ ...d, users: running.filter((c) => uses(c, d.dir)).map((c) => c.name) })).find((d) => d.users.length > 0)
    if (busy)
      return {
        index: busy.index,
        error: new InvalidInput({ input: "--fresh", reason: `container ${busy.users.join(", ")} runs from ${busy.dir}, which --fresh would remove`, fix: `stop and remove it first (syscontainers rm --force ${busy.users[0]})` }),
      }
    const outside: string[] = []
    for (const { dir } of owned) for (const b of yield* Layers.sharedCheckoutUsers(dir)) if (!owned.some((o) => within(b, o.dir))) outside.push(b)
    if (outside.length > 0)
      return { index: 0, error: new InvalidInput({ input: "--fresh", reason: `bundles ${outside.join(", ")} are checked out on a shared checkout in the repo --fresh would remove`, fix: "remove those bundles first, or run without --fresh" }) }
    for (const { dir } of owned) rmSync(dir, { recursive: true, force: true })
    return undefined
  })

/** The root filesystem a bundle's config.json names, resolved; undefined when it cannot be read. */
const rootOf = (bundle: string): string | undefined => {
  try {
    const root = (JSON.parse(readFileSync(path.join(bundle, "config.json"), "utf8")) as { root?: { path?: string } }).root?.path
    return root === undefined ? undefined : path.resolve(bundle, root)
  } catch {
    return undefined
  }
}
