// Step: one named, explained, effectful step of a recipe, with its equivalent shell commands.
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { Spawn } from "@syscontainers/core/Spawn"

/** What every step can see while planning (no I/O happens then). */
export interface PlanContext<Opts> {
  readonly options: Opts
  /** Absolute path of the recipe's working directory. */
  readonly workdir: string
}

/** Something a step shows: for the human view, the JSON log and the tutorial. */
export type StepEvent =
  | { readonly kind: "progress"; readonly text: string }
  | { readonly kind: "excerpt"; readonly label: string; readonly text: string }
  | { readonly kind: "note"; readonly text: string }
  /** A command that really ran (recorded through the Spawn service). */
  | { readonly kind: "command"; readonly argv: ReadonlyArray<string>; readonly input?: string; readonly inputFrom?: ReadonlyArray<string>; readonly exitCode?: number | null; readonly ms?: number }

/** What a step may start ahead of its turn (see StepSpec.ahead). */
export type Ahead = Effect.Effect<unknown, unknown, Spawn>

/** A step that starts nothing ahead: its `c.ahead` gives nothing a caller could use. */
export type NothingAhead = Effect.Effect<never, never, never>

/** What a running step can see: the options, the workdir and every earlier step's handle. */
export interface StepContext<Opts, Done, A extends Ahead = NothingAhead> extends PlanContext<Opts> {
  readonly fresh: boolean
  readonly results: Done
  readonly emit: (e: StepEvent) => void
  /** What the step's `ahead` gives, waited for when used (a step without one: a defect to use). */
  readonly ahead: Effect.Effect<Effect.Effect.Success<A>, Effect.Effect.Error<A>>
}

/** A step: how it reads in the tutorial, what shell commands it stands for, and what it does. */
export interface StepSpec<Opts, Done, Out, A extends Ahead = NothingAhead> {
  readonly title: string | ((p: PlanContext<Opts>) => string)
  /** The tutorial paragraph: why this step, and what it does. */
  readonly explain: string | ((p: PlanContext<Opts>) => string)
  /** The same job as bash lines, run from the workdir (for --dry-run and the tutorial). */
  readonly shell: (p: PlanContext<Opts>) => ReadonlyArray<string>
  readonly run: (c: StepContext<Opts, Done, A>) => Effect.Effect<Out, unknown, Spawn | Scope.Scope>
  /**
   * A read the step may start when the recipe starts, before its turn, so that it overlaps the
   * steps before (a manifest fetch, say). It must change nothing: a recipe whose checks refuse, or
   * that fails before this step, stops it, and so does the end of this step if `run` never waited
   * for it. Its commands are reported under this step, when its turn comes; `run` gets it as
   * `c.ahead`.
   */
  readonly ahead?: (p: PlanContext<Opts>) => A
  /**
   * What must hold before the recipe changes anything (a container name that is free, say): every
   * step's check runs before the first step, so a run that cannot end well fails before step 1.
   */
  readonly check?: (p: PlanContext<Opts>) => Effect.Effect<void, unknown, Spawn>
  /** What this step makes in the workdir (its repo, its bundle): all that `--fresh` removes. */
  readonly owns?: (p: PlanContext<Opts>) => ReadonlyArray<string>
}

/** A step as the recipe keeps it (its output type erased). */
export interface Step<Opts> {
  readonly id: string
  readonly spec: StepSpec<Opts, any, unknown, any>
}

/** Resolves a title or paragraph that may depend on the options. */
export const text = <Opts>(t: string | ((p: PlanContext<Opts>) => string), p: PlanContext<Opts>): string => (typeof t === "string" ? t : t(p))
