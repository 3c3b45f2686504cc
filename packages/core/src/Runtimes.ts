// Runtimes: picks runc, crun or bubblewrap by name, applying crun's hybrid-cgroup workaround when needed.
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import type { ContainerRuntime, RuntimeName } from "./ContainerRuntime.ts"
import { InvalidInput } from "./Errors.ts"
import { makeOciRuntime } from "./OciRuntime.ts"
import { makeBubblewrapRuntime } from "./Bubblewrap.ts"
import { Spawn } from "./Spawn.ts"

export const runtimeNames: ReadonlyArray<RuntimeName> = ["runc", "crun", "bwrap"]

const unifiedControllers = "/sys/fs/cgroup/unified/cgroup.controllers"

/**
 * crun 1.8 refuses to start at all when the hybrid hierarchy's cgroup v2 mount has controllers
 * ("cgroups in hybrid mode not supported"). Hiding that mount behind a tmpfs in a private mount
 * namespace makes crun see plain cgroup v1. Returns why the workaround is needed, or undefined.
 */
export const crunNeedsCgroupWorkaround = (): string | undefined => {
  try {
    const controllers = readFileSync(unifiedControllers, "utf8").trim()
    return controllers.length > 0 ? `${unifiedControllers} lists "${controllers}" (hybrid cgroups)` : undefined
  } catch {
    return undefined
  }
}

// a constant script: the tool and its arguments arrive as positional parameters, never as shell text
const hideUnified = "mount -t tmpfs -o size=4k syscontainers-cgroup-workaround /sys/fs/cgroup/unified && exec \"$@\""

/** The wrapper argv crun runs under on this host (empty when crun works as is). */
export const crunWrap = (): ReadonlyArray<string> => {
  if (!crunNeedsCgroupWorkaround()) return []
  const root = process.getuid?.() === 0
  return root ? ["unshare", "--mount", "--propagation=private", "sh", "-c", hideUnified, "sh"] : ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", hideUnified, "sh"]
}

/** Builds the named runtime; `log` hears about workarounds applied. */
export const runtime = (name: string, options: { readonly log?: (line: string) => void } = {}) =>
  Effect.gen(function* () {
    switch (name) {
      case "runc":
        return yield* makeOciRuntime({ name: "runc" })
      case "crun": {
        const why = crunNeedsCgroupWorkaround()
        if (why) options.log?.(`crun: ${why}; running it in a private mount namespace with a tmpfs over /sys/fs/cgroup/unified`)
        return yield* makeOciRuntime({ name: "crun", wrap: crunWrap() })
      }
      case "bwrap":
        return yield* makeBubblewrapRuntime()
      default:
        return yield* Effect.fail(new InvalidInput({ input: name, reason: "unknown runtime", fix: `choose one of ${runtimeNames.join(", ")}` }))
    }
  }) as Effect.Effect<ContainerRuntime, InvalidInput, Spawn>

/** Every runtime, for `ps` and for finding which one holds a container. */
export const allRuntimes = Effect.forEach(runtimeNames, (n) => runtime(n))
