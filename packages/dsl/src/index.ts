// @syscontainers/dsl: recipes composed from @syscontainers/core steps, with plans, dry-runs and tutorials.
export * from "./Options.ts"
export * from "./Step.ts"
export * from "./Recipe.ts"
export * from "./Runner.ts"
export * from "./Reporters.ts"
export * from "./Command.ts"
export * from "./Shell.ts"
export * from "./Steps.ts"
