// Promise: the core steps as plain async functions, for scripts that do not use Effect.
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { Spawn, SpawnLive } from "./Spawn.ts"
import * as Steps from "./Steps.ts"

// a rejected promise carries the tagged error itself (its _tag, argv, exit code, stderr tail)
const promised =
  <A extends ReadonlyArray<unknown>, R, E>(f: (...a: A) => Effect.Effect<R, E, Spawn | Scope.Scope>) =>
  (...a: A): Promise<R> =>
    Effect.runPromise(Effect.scoped(f(...a)).pipe(Effect.provide(SpawnLive), Effect.catchAll((e) => Effect.die(e)))).catch((e: unknown) => {
      throw unwrap(e)
    })

const unwrap = (e: unknown): unknown => {
  // Effect wraps a die in a FiberFailure whose cause holds our error
  const cause = (e as { [k: symbol]: unknown })?.[Symbol.for("effect/Runtime/FiberFailure/Cause")] as { defect?: unknown } | undefined
  return cause?.defect ?? e
}

export const ostreeInit = promised(Steps.ostreeInit)
export const skopeoCopy = promised(Steps.skopeoCopy)
export const inspect = promised(Steps.inspect)
export const applyLayers = promised(Steps.applyLayers)
export const runcSpec = promised(Steps.runcSpec)
export const patchConfig = promised(Steps.patchConfig)
export const fromImage = promised(Steps.fromImage)
/** Starts detached; the container keeps running after the promise resolves. */
export const run = promised(Steps.run)
export const runAttached = promised(Steps.runAttached)
export const exec = promised(Steps.exec)
export const list = promised(Steps.list)
export const state = promised(Steps.state)
export const kill = promised(Steps.kill)
export const remove = promised(Steps.remove)
