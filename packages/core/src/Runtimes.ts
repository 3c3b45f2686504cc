// Runtimes: picks runc, crun or bubblewrap by name, applying crun's hybrid-cgroup workaround when needed.
import * as Effect from "effect/Effect"
import { readFileSync } from "node:fs"
import type { ContainerRuntime, RuntimeName } from "./ContainerRuntime.ts"
import { InvalidInput, SpecInvalid, type SpecViolation } from "./Errors.ts"
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
export const crunNeedsCgroupWorkaround = (controllersFile = unifiedControllers): string | undefined => {
  try {
    const controllers = readFileSync(controllersFile, "utf8").trim()
    return controllers.length > 0 ? `${controllersFile} lists "${controllers}" (hybrid cgroups)` : undefined
  } catch {
    return undefined
  }
}

// a constant script: the tool and its arguments arrive as positional parameters, never as shell text
const hideUnified = "mount -t tmpfs -o size=4k syscontainers-cgroup-workaround /sys/fs/cgroup/unified && exec \"$@\""

/**
 * The wrapper argv `crun run` goes under on this host (empty when crun works as is). Only `run`
 * needs it: state, list, kill, exec and delete work bare, and must, rootless: from another
 * `unshare --user` crun exec may not join the container's user namespace (setns: EPERM).
 */
export const crunWrap = (o: { readonly controllersFile?: string; readonly uid?: number } = {}): ReadonlyArray<string> => {
  if (!crunNeedsCgroupWorkaround(o.controllersFile)) return []
  const root = (o.uid ?? process.geteuid?.() ?? 0) === 0
  return root ? ["unshare", "--mount", "--propagation=private", "sh", "-c", hideUnified, "sh"] : ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", hideUnified, "sh"]
}

const notHere = "crun runs rootless here inside `unshare --user --map-root-user` (the hybrid-cgroup workaround), where only your own uid and gid exist"
const instead = "use runc or bwrap for this config"

/**
 * crun rootless under `unshare --map-root-user`: the config's mappings of container ids to the
 * caller's uid/gid must name 0 instead, which is the caller in that outer namespace. Ranges
 * (subuids) cannot be mapped from there, and a config without its own user namespace would run
 * as the outer one's fake root: both are refused, naming runc or bwrap.
 */
export const crunRootlessConfig = (ids: { readonly uid: number; readonly gid: number }) =>
  (config: Record<string, unknown>, configPath: string): Effect.Effect<Record<string, unknown>, SpecInvalid> => {
    const violations: SpecViolation[] = []
    const linux = (config["linux"] ?? {}) as Record<string, unknown>
    const namespaces = Array.isArray(linux["namespaces"]) ? (linux["namespaces"] as ReadonlyArray<{ readonly type?: unknown }>) : []
    if (!namespaces.some((n) => n.type === "user"))
      violations.push({ pointer: "/linux/namespaces", message: `no user namespace: ${notHere}, so the config needs its own (runc spec --rootless makes one); or ${instead}` })
    const remap = (key: "uidMappings" | "gidMappings", own: number, what: string) => {
      const list = linux[key]
      if (list === undefined) return undefined
      if (!Array.isArray(list)) {
        violations.push({ pointer: `/linux/${key}`, message: "not a list" })
        return undefined
      }
      return list.map((m: { readonly containerID?: unknown; readonly hostID?: unknown; readonly size?: unknown }, i: number) => {
        if (m.hostID === own && m.size === 1) return { ...m, hostID: 0 }
        violations.push({ pointer: `/linux/${key}/${i}`, message: `maps to host ${what} ${String(m.hostID)} (size ${String(m.size)}): ${notHere} (${what} ${own}, size 1); ${instead}` })
        return m
      })
    }
    const uidMappings = remap("uidMappings", ids.uid, "uid")
    const gidMappings = remap("gidMappings", ids.gid, "gid")
    if (violations.length) return Effect.fail(new SpecInvalid({ path: configPath, violations }))
    return Effect.succeed({
      ...config,
      linux: { ...linux, ...(uidMappings ? { uidMappings } : {}), ...(gidMappings ? { gidMappings } : {}) },
    })
  }

/** How crun is driven on this host: the wrap for `run`, the rootless config rewrite, and why (undefined: crun as is). */
export const crunSetup = (o: { readonly controllersFile?: string; readonly uid?: number; readonly gid?: number } = {}):
  { readonly wrap: ReadonlyArray<string>; readonly rewriteConfig?: ReturnType<typeof crunRootlessConfig>; readonly why: string } | undefined => {
  const why = crunNeedsCgroupWorkaround(o.controllersFile)
  if (!why) return undefined
  const uid = o.uid ?? process.geteuid?.() ?? 0
  const wrap = crunWrap({ uid, ...(o.controllersFile ? { controllersFile: o.controllersFile } : {}) })
  if (uid === 0) return { wrap, why: `crun: ${why}; crun run goes into a private mount namespace with a tmpfs over /sys/fs/cgroup/unified` }
  return {
    wrap,
    rewriteConfig: crunRootlessConfig({ uid, gid: o.gid ?? process.getegid?.() ?? uid }),
    why: `crun: ${why}; crun run goes into \`unshare --user --map-root-user --mount\` with a tmpfs over /sys/fs/cgroup/unified, and gets a copy of config.json whose mappings name 0 for uid ${uid}`,
  }
}

/** Builds the named runtime; `log` hears about workarounds applied. */
export const runtime = (name: string, options: { readonly log?: (line: string) => void } = {}) =>
  Effect.gen(function* () {
    switch (name) {
      case "runc":
        return yield* makeOciRuntime({ name: "runc" })
      case "crun": {
        const setup = crunSetup()
        if (!setup) return yield* makeOciRuntime({ name: "crun" })
        options.log?.(setup.why)
        return yield* makeOciRuntime({ name: "crun", wrap: setup.wrap, ...(setup.rewriteConfig ? { rewriteConfig: setup.rewriteConfig } : {}) })
      }
      case "bwrap":
        return yield* makeBubblewrapRuntime()
      default:
        return yield* Effect.fail(new InvalidInput({ input: name, reason: "unknown runtime", fix: `choose one of ${runtimeNames.join(", ")}` }))
    }
  }) as Effect.Effect<ContainerRuntime, InvalidInput, Spawn>

/** Every runtime, for `ps` and for finding which one holds a container. */
export const allRuntimes = Effect.forEach(runtimeNames, (n) => runtime(n))
