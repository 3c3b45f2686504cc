// @syscontainers/dsl: recipes composed from @syscontainers/core steps, with plans, dry-runs and tutorials.
export * from "./Options.ts"
export * from "./Step.ts"
export * from "./Recipe.ts"
export * from "./Runner.ts"
export * from "./Reporters.ts"
export * from "./Command.ts"
export * from "./Shell.ts"
export * from "./Steps.ts"
export * from "./Ports.ts"

// What a recipe needs from Effect and the core beyond the steps, from here: a recipe that imports
// only this module loads one bundled build instead of hundreds of modules through tsx's hooks.
export * as Effect from "effect/Effect"
export * as Containers from "@syscontainers/core/Containers"
export { Spawn, heldReports, inOrder } from "@syscontainers/core/Spawn"
