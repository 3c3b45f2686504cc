// Runner: runs a recipe's steps in order inside one scope, timing each and reporting events.
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import { type Spawn, heldReports } from "@syscontainers/core/Spawn"
import type { Recipe } from "./Recipe.ts"
import type { OptionSpecs, OptionValues } from "./Options.ts"
import type { Ahead, StepEvent } from "./Step.ts"
import { text } from "./Step.ts"
import { clearWhatStepsMade } from "./Fresh.ts"

/** Everything a reporter hears while a recipe runs. */
export type RunnerEvent =
  | { readonly type: "recipe-start"; readonly recipe: string; readonly workdir: string; readonly steps: number }
  | { readonly type: "step-start"; readonly id: string; readonly index: number; readonly total: number; readonly title: string; readonly explain: string; readonly shell: ReadonlyArray<string> }
  | { readonly type: "step-event"; readonly id: string; readonly event: StepEvent }
  | { readonly type: "step-done"; readonly id: string; readonly ms: number }
  | { readonly type: "step-failed"; readonly id: string; readonly ms: number; readonly error: string; readonly message: string }
  | { readonly type: "recipe-done"; readonly ms: number; readonly ok: boolean; readonly steps: ReadonlyArray<{ readonly id: string; readonly title: string; readonly ms: number; readonly ok: boolean }> }

/** A step failed: names the step and carries the underlying error's message. */
export class StepFailed extends Data.TaggedError("StepFailed")<{
  readonly step: string
  readonly title: string
  readonly cause: unknown
}> {
  override get message() {
    const inner = this.cause as { _tag?: string; message?: string }
    return `step ${this.step} (${this.title}) failed: ${inner?._tag ? `${inner._tag}: ` : ""}${inner?.message ?? String(this.cause)}`
  }
}

/** How to run a recipe. */
export interface RunOptions<Opts> {
  readonly options: Opts
  readonly workdir: string
  readonly fresh: boolean
  readonly onEvent: (e: RunnerEvent) => void
}

/** Runs every step; on failure or interruption the scope's finalizers release what the steps acquired. */
export const runRecipe = <S extends OptionSpecs, Done>(recipe: Recipe<S, Done>, o: RunOptions<OptionValues<S>>): Effect.Effect<Done, StepFailed, Spawn> =>
  Effect.scoped(
    Effect.gen(function* () {
      const started = Date.now()
      const plan = { options: o.options, workdir: o.workdir }
      const results: Record<string, unknown> = {}
      const timings: Array<{ id: string; title: string; ms: number; ok: boolean }> = []
      o.onEvent({ type: "recipe-start", recipe: recipe.name, workdir: o.workdir, steps: recipe.steps.length })
      const total = recipe.steps.length
      // the reads steps start ahead of their turn begin now, beside the checks and the steps before
      // them; the recipe's scope stops any still running when it ends
      const aheads = new Map<string, { readonly fiber: Fiber.Fiber<unknown, unknown>; readonly release: Effect.Effect<void> }>()
      for (const step of recipe.steps) {
        if (!step.spec.ahead) continue
        const reports = heldReports()
        aheads.set(step.id, { fiber: yield* Effect.forkScoped(reports.hold(step.spec.ahead(plan) as Ahead)), release: reports.release })
      }
      // every step's check before step 1: a run that one refuses changes nothing, and reads as that
      // step failing at once (its header, its error), with no step before it run
      let refusal: { readonly index: number; readonly error: unknown } | undefined
      for (const [index, step] of recipe.steps.entries()) {
        const failed = step.spec.check ? yield* step.spec.check(plan).pipe(Effect.flip, Effect.option) : Option.none()
        if (Option.isSome(failed)) {
          refusal = { index, error: failed.value }
          break
        }
      }
      // --fresh: what the steps made goes (not the rest of the workdir), unless something uses it
      if (o.fresh && !refusal) refusal = yield* clearWhatStepsMade(recipe.steps, plan)
      const toRun = refusal ? [{ step: recipe.steps[refusal.index]!, index: refusal.index }] : recipe.steps.map((step, index) => ({ step, index }))
      const exit = yield* Effect.exit(
        Effect.forEach(toRun, ({ step, index }) =>
          Effect.gen(function* () {
            const title = text(step.spec.title, plan)
            const t0 = Date.now()
            o.onEvent({ type: "step-start", id: step.id, index, total, title, explain: text(step.spec.explain, plan), shell: step.spec.shell(plan) })
            const ahead = aheads.get(step.id)
            // its commands so far show under this step, and from now on as they come
            if (ahead && !refusal) yield* ahead.release
            const run = refusal
              ? Effect.fail(refusal.error)
              : step.spec.run({
                  ...plan,
                  fresh: o.fresh,
                  results,
                  emit: (event) => o.onEvent({ type: "step-event", id: step.id, event }),
                  ahead: ahead ? Fiber.join(ahead.fiber) : Effect.dieMessage(`step ${step.id} has nothing started ahead`),
                }).pipe(
                  // a read its step did not wait for ends with the step: it would report under the next
                  Effect.ensuring(ahead ? Fiber.interrupt(ahead.fiber) : Effect.void),
                )
            const out = yield* run
              .pipe(
                Effect.catchAllCause((cause) => {
                  const ms = Date.now() - t0
                  timings.push({ id: step.id, title, ms, ok: false })
                  const failure = Cause.failureOption(cause)
                  const err = Option.isSome(failure) ? failure.value : Cause.isInterruptedOnly(cause) ? { _tag: "Interrupted", message: "interrupted (Ctrl-C)" } : Cause.squash(cause)
                  const e = err as { _tag?: string; message?: string }
                  o.onEvent({ type: "step-failed", id: step.id, ms, error: e._tag ?? "Error", message: e.message ?? String(err) })
                  return Cause.isInterruptedOnly(cause) ? (Effect.failCause(cause) as Effect.Effect<never>) : Effect.fail(new StepFailed({ step: step.id, title, cause: err }))
                }),
              )
            results[step.id] = out
            const ms = Date.now() - t0
            timings.push({ id: step.id, title, ms, ok: true })
            o.onEvent({ type: "step-done", id: step.id, ms })
          }),
        ),
      )
      o.onEvent({ type: "recipe-done", ms: Date.now() - started, ok: Exit.isSuccess(exit), steps: timings })
      if (Exit.isFailure(exit)) return yield* Effect.failCause(exit.cause)
      return results as Done
    }),
  )

