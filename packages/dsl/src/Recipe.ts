// Recipe: a value holding named steps in order; each step's output is typed for the steps after it.
import type { OptionSpecs, OptionValues } from "./Options.ts"
import type { Ahead, NothingAhead, PlanContext, Step, StepSpec } from "./Step.ts"
import { text } from "./Step.ts"

/** A recipe: its name, what it reproduces, its options and its steps. */
export class Recipe<S extends OptionSpecs, Done = {}> {
  constructor(
    readonly name: string,
    readonly description: string,
    readonly optionSpecs: S,
    readonly steps: ReadonlyArray<Step<OptionValues<S>>> = [],
    /** Where the recipe works when --workdir is not given (relative to the current directory). */
    readonly defaultWorkdir: string = `work/${name}`,
  ) {}

  /** Adds a step whose output later steps read as `results[id]`. */
  step<K extends string, Out, A extends Ahead = NothingAhead>(id: K, spec: StepSpec<OptionValues<S>, Done, Out, A>): Recipe<S, Done & { readonly [P in K]: Out }> {
    if (this.steps.some((s) => s.id === id)) throw new Error(`recipe ${this.name}: step ${id} twice`)
    return new Recipe(this.name, this.description, this.optionSpecs, [...this.steps, { id, spec }], this.defaultWorkdir)
  }

  /** The plan: each step's title, paragraph and shell commands, computed without any I/O. */
  plan(p: PlanContext<OptionValues<S>>): ReadonlyArray<{ readonly id: string; readonly title: string; readonly explain: string; readonly shell: ReadonlyArray<string> }> {
    return this.steps.map((s) => ({ id: s.id, title: text(s.spec.title, p), explain: text(s.spec.explain, p), shell: s.spec.shell(p) }))
  }
}

/** Starts a recipe. */
export const recipe = <const S extends OptionSpecs>(o: { readonly name: string; readonly description: string; readonly options: S; readonly workdir?: string }): Recipe<S> =>
  new Recipe(o.name, o.description, o.options, [], o.workdir)
