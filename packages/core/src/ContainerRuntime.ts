// ContainerRuntime: what every runtime (runc, crun, bubblewrap) offers, so callers pick one per container.
import type * as Effect from "effect/Effect"
import type { CommandFailed, ContainerExists, ContainerNotFound, ContainerNotRunning, InvalidInput, SpecInvalid, ToolMissing } from "./Errors.ts"

/** The runtimes we drive. */
export type RuntimeName = "runc" | "crun" | "bwrap"

/** A container as its runtime reports it. */
export interface ContainerState {
  readonly name: string
  readonly runtime: RuntimeName
  readonly pid: number
  readonly status: "creating" | "created" | "running" | "paused" | "stopped"
  readonly bundle: string
}

/** How to start a container from a prepared bundle. */
export interface StartOptions {
  readonly bundle: string
  readonly name: string
}

/** Errors a runtime operation can end in. */
export type RuntimeError = CommandFailed | ToolMissing | ContainerExists | ContainerNotFound | ContainerNotRunning | InvalidInput | SpecInvalid

/** One runtime's lifecycle verbs (names follow runc's). */
export interface ContainerRuntime {
  readonly name: RuntimeName
  /** Runs attached: stdio is the caller's; signals are forwarded; resolves with the container's exit code. */
  readonly runAttached: (o: StartOptions) => Effect.Effect<number, RuntimeError>
  /** Starts detached, stdout/stderr to `BUNDLE/<name>.log`; resolves once the container runs. */
  readonly runDetached: (o: StartOptions) => Effect.Effect<ContainerState, RuntimeError>
  /** Runs argv inside the running container; stdout/stderr are returned. */
  readonly exec: (name: string, argv: ReadonlyArray<string>) => Effect.Effect<{ readonly exitCode: number; readonly stdout: string; readonly stderr: string }, RuntimeError>
  readonly list: () => Effect.Effect<ReadonlyArray<ContainerState>, RuntimeError>
  /**
   * Whether this runtime keeps a container by that name, known from the filesystem without running
   * anything (runc and crun keep one as a directory of their state root); absent where only asking
   * the runtime can tell.
   */
  readonly holds?: (name: string) => boolean
  /**
   * Every container this runtime keeps in our state root, with the bundle its state names
   * (undefined when the state cannot be read), from the filesystem without running anything: one
   * started by hand with our `--root` (as a dry-run script's `runc run` is) counts too; one under
   * the runtime's default root is not seen. Absent where only asking the runtime can tell.
   */
  readonly kept?: () => ReadonlyArray<{ readonly name: string; readonly bundle: string | undefined }>
  readonly state: (name: string) => Effect.Effect<ContainerState, RuntimeError>
  /** Sends a signal by name ("TERM", "SIGKILL", "9"). */
  readonly kill: (name: string, signal?: string) => Effect.Effect<void, RuntimeError>
  /** Removes the container's state; `force` kills a running one first. */
  readonly delete: (name: string, options?: { readonly force?: boolean }) => Effect.Effect<void, RuntimeError>
}
