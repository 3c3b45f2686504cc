// Command: the command line every recipe file gets (--plan, --dry-run, --tutorial, --json, ...).
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { parseArgs } from "node:util"
import { mkdirSync, writeFileSync } from "node:fs"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { Spawn, makeSpawn } from "@syscontainers/core/Spawn"
import type { Recipe } from "./Recipe.ts"
import type { OptionSpecs, OptionValues } from "./Options.ts"
import { describeOptions } from "./Options.ts"
import { runRecipe } from "./Runner.ts"
import type { RunnerEvent } from "./Runner.ts"
import { humanReporter, jsonReporter, tutorialCollector } from "./Reporters.ts"
import { quote } from "./Shell.ts"

/** True when the module at `url` is the file node was asked to run. */
export const isMain = (url: string): boolean => process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(url)

/** What a recipe file's command line asked for. */
export interface Invocation<Opts> {
  readonly mode: "run" | "plan" | "dry-run" | "help"
  readonly options: Opts
  readonly workdir: string
  readonly fresh: boolean
  readonly json: boolean
  readonly tutorial?: string
}

class UsageError extends Error {}

/** Parses argv against the standard flags and the recipe's own options. */
export const parseInvocation = <S extends OptionSpecs>(recipe: Recipe<S, unknown>, argv: ReadonlyArray<string>): Invocation<OptionValues<S>> => {
  const own = Object.fromEntries(Object.entries(recipe.optionSpecs).map(([k, s]) => [k, { type: s.type === "boolean" ? ("boolean" as const) : ("string" as const) }]))
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      ...own,
      plan: { type: "boolean" },
      "dry-run": { type: "boolean" },
      tutorial: { type: "string" },
      json: { type: "boolean" },
      workdir: { type: "string" },
      fresh: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  })
  const options: Record<string, unknown> = {}
  for (const [k, s] of Object.entries(recipe.optionSpecs)) {
    const raw = (values as Record<string, string | boolean | undefined>)[k]
    if (raw === undefined) options[k] = s.default
    else if (s.type === "number") {
      const n = Number(raw)
      if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${k} takes a whole number, not ${JSON.stringify(raw)}`)
      options[k] = n
    } else if (s.type === "string" && s.choices && !s.choices.includes(String(raw))) throw new UsageError(`--${k} takes ${s.choices.join(" or ")}, not ${JSON.stringify(raw)}`)
    else options[k] = raw
  }
  const modes = [values.plan && "plan", values["dry-run"] && "dry-run", values.help && "help"].filter(Boolean) as Array<"plan" | "dry-run" | "help">
  if (modes.length > 1) throw new UsageError(`--${modes.join(" and --")} exclude each other`)
  return {
    mode: modes[0] ?? "run",
    options: options as OptionValues<S>,
    workdir: path.resolve(typeof values.workdir === "string" ? values.workdir : recipe.defaultWorkdir),
    fresh: values.fresh === true,
    json: values.json === true,
    ...(typeof values.tutorial === "string" ? { tutorial: path.resolve(values.tutorial) } : {}),
  }
}

/** `--help`. */
export const helpText = <S extends OptionSpecs>(recipe: Recipe<S, unknown>, program: string): string =>
  [
    `usage: ${program} [options]`,
    "",
    recipe.description,
    "",
    "steps:",
    ...recipe.steps.map((s, i) => `  ${i + 1}. ${s.id}`),
    "",
    "recipe options:",
    ...describeOptions(recipe.optionSpecs),
    "",
    "common options:",
    "  --plan                         show the steps and what each will do; run nothing",
    "  --dry-run                      print the equivalent bash script; run nothing, create nothing",
    "  --tutorial FILE.md             run for real and write the walkthrough to FILE.md",
    "  --json                         one JSON event per line on stdout instead of the human view",
    `  --workdir DIR                  where the repo and bundles go (default ./${recipe.defaultWorkdir})`,
    "  --fresh                        redo everything: first remove what earlier runs made (the repo, the bundles and their data)",
    "  -h, --help                     this text",
  ].join("\n")

/** The plan as text. */
export const planText = <S extends OptionSpecs>(recipe: Recipe<S, unknown>, inv: Invocation<OptionValues<S>>): string =>
  recipe
    .plan({ options: inv.options, workdir: inv.workdir })
    .map((s, i) => [`${i + 1}. ${s.title}`, ...s.explain.split("\n").map((l) => `   ${l}`), ...s.shell.map((l) => `   $ ${l}`)].join("\n"))
    .join("\n\n")

/** The dry-run script: the same job in bash, from an empty workdir. */
export const dryRunScript = <S extends OptionSpecs>(recipe: Recipe<S, unknown>, inv: Invocation<OptionValues<S>>, preamble: ReadonlyArray<string> = []): string => {
  const plan = recipe.plan({ options: inv.options, workdir: inv.workdir })
  return [
    "#!/usr/bin/env bash",
    `# ${recipe.name}: ${recipe.description.split("\n")[0]}`,
    "# Generated by --dry-run: the commands the recipe runs, in order.",
    "set -euo pipefail",
    ...preamble,
    `mkdir -p ${quote(inv.workdir)}`,
    `cd ${quote(inv.workdir)}`,
    ...plan.flatMap((s, i) => ["", `# ${i + 1}. ${s.title}`, ...s.shell]),
    "",
  ].join("\n")
}

/** Runs a recipe file's command line; resolves with the exit code. */
export const runCommand = async <S extends OptionSpecs>(
  recipe: Recipe<S, unknown>,
  argv: ReadonlyArray<string> = process.argv.slice(2),
  extra: { readonly program?: string; readonly dryRunPreamble?: ReadonlyArray<string>; readonly title?: string; readonly intro?: string } = {},
): Promise<number> => {
  const program = extra.program ?? `tsx ${path.relative(process.cwd(), process.argv[1] ?? recipe.name)}`
  let inv: Invocation<OptionValues<S>>
  try {
    inv = parseInvocation(recipe, argv)
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n\n${helpText(recipe, program)}\n`)
    return 2
  }
  if (inv.mode === "help") return process.stdout.write(`${helpText(recipe, program)}\n`), 0
  if (inv.mode === "plan") return process.stdout.write(`${planText(recipe, inv)}\n`), 0
  if (inv.mode === "dry-run") return process.stdout.write(dryRunScript(recipe, inv, extra.dryRunPreamble)), 0

  // --fresh removes what the steps made, after their checks (the runner): never the whole workdir
  mkdirSync(inv.workdir, { recursive: true })
  const tutorial = inv.tutorial ? tutorialCollector() : undefined
  const show = inv.json ? jsonReporter() : humanReporter()
  let current = ""
  const onEvent = (e: RunnerEvent) => {
    if (e.type === "step-start") current = e.id
    show(e)
    tutorial?.onEvent(e)
  }
  // every command a step runs is recorded: the tutorial shows the real ones
  const spawn = makeSpawn(({ argv, input, inputFrom, result }) => {
    if (result && current)
      onEvent({ type: "step-event", id: current, event: { kind: "command", argv, ...(input !== undefined ? { input } : {}), ...(inputFrom ? { inputFrom } : {}), exitCode: result.exitCode, ms: result.durationMs } })
  })
  const fiber = Effect.runFork(runRecipe(recipe, { options: inv.options, workdir: inv.workdir, fresh: inv.fresh, onEvent }).pipe(Effect.provide(Layer.succeed(Spawn, spawn))))
  // Ctrl-C interrupts the recipe: the scope's finalizers stop containers and remove half-made bundles
  let stoppedBy: NodeJS.Signals | undefined
  const interrupt = (sig: NodeJS.Signals) => {
    stoppedBy = sig
    Effect.runFork(Fiber.interrupt(fiber))
  }
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, interrupt)
  const exit = await Effect.runPromise(Fiber.await(fiber))
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.off(sig, interrupt)
  if (tutorial && inv.tutorial) {
    mkdirSync(path.dirname(inv.tutorial), { recursive: true })
    writeFileSync(inv.tutorial, tutorial.render({ title: extra.title ?? recipe.name, intro: extra.intro ?? recipe.description, command: `${program} --tutorial ${path.relative(process.cwd(), inv.tutorial)}`, workdir: inv.workdir }))
  }
  if (Exit.isSuccess(exit)) return 0
  // as a shell reports a command a signal ended: 128 + its number
  if (Cause.isInterruptedOnly(exit.cause)) return stoppedBy === "SIGTERM" ? 143 : 130
  const failure = Cause.failureOption(exit.cause)
  const message = Option.isSome(failure) ? failure.value.message : Cause.pretty(exit.cause)
  if (!inv.json) process.stderr.write(`\n${recipe.name}: ${message}\n`)
  return 1
}
