// specEdits: applies typed edits to a runtime config, purely (new objects, no I/O).
import path from "node:path"
import type { Capabilities, Edit, EditOf, IdMapping, Linux, Mount, Namespace, Process, RuntimeConfig } from "../RuntimeSpec.ts"

/** Options a tmpfs gets when the edit names none: what /tmp needs. */
export const defaultTmpfsOptions: ReadonlyArray<string> = ["nosuid", "nodev", "mode=1777"]

// "/tmp/" and "/tmp" are one mount point
const samePath = (a: string, b: string): boolean => path.posix.normalize(a).replace(/(.)\/+$/, "$1") === path.posix.normalize(b).replace(/(.)\/+$/, "$1")

/** "net_admin", "NET_ADMIN" and "CAP_NET_ADMIN" all name CAP_NET_ADMIN. */
export const normalizeCapability = (name: string): string => {
  const upper = name.trim().toUpperCase()
  return upper.startsWith("CAP_") ? upper : `CAP_${upper}`
}

/** The variable name of a KEY=VALUE entry. */
export const envKey = (entry: string): string => {
  const i = entry.indexOf("=")
  return i < 0 ? entry : entry.slice(0, i)
}

/** True for a mount that binds a host path (runc decides by the options, not the type). */
export const isBindMount = (m: Mount): boolean =>
  m.type === "bind" || (m.options ?? []).some((o) => o === "bind" || o === "rbind")

const emptyProcess: Process = { cwd: "/", args: [] }

const withProcess = (c: RuntimeConfig, f: (p: Process) => Process): RuntimeConfig => ({ ...c, process: f(c.process ?? emptyProcess) })

const withLinux = (c: RuntimeConfig, f: (l: Linux) => Linux): RuntimeConfig => ({ ...c, linux: f(c.linux ?? {}) })

// a mount at the same destination is replaced where it stood (order matters: parents before children)
const putMount = (c: RuntimeConfig, mount: Mount): RuntimeConfig => {
  const mounts = c.mounts ?? []
  const at = mounts.findIndex((m) => samePath(m.destination, mount.destination))
  return { ...c, mounts: at < 0 ? [...mounts, mount] : mounts.map((m, i) => (i === at ? mount : m)) }
}

const putNamespace = (l: Linux, ns: Namespace): Linux => {
  const list = l.namespaces ?? []
  const at = list.findIndex((n) => n.type === ns.type)
  return { ...l, namespaces: at < 0 ? [...list, ns] : list.map((n, i) => (i === at ? ns : n)) }
}

const setEnv = (env: ReadonlyArray<string>, e: EditOf<"env">): ReadonlyArray<string> => {
  const unset = new Set(e.unset ?? [])
  const set = new Map(Object.entries(e.set ?? {}))
  // existing variables keep their place; new ones are appended in the order given
  const kept = env
    .filter((entry) => !unset.has(envKey(entry)))
    .map((entry) => {
      const key = envKey(entry)
      const value = set.get(key)
      if (value === undefined) return entry
      set.delete(key)
      return `${key}=${value}`
    })
  return [...kept, ...[...set].filter(([k]) => !unset.has(k)).map(([k, v]) => `${k}=${v}`)]
}

// drop first, then add: {drop: ["ALL"], add: ["NET_BIND_SERVICE"]} leaves exactly one capability
const editCapabilities = (caps: Capabilities, e: EditOf<"capabilities">): Capabilities => {
  const drop = new Set((e.drop ?? []).map(normalizeCapability))
  const add = (e.add ?? []).map(normalizeCapability)
  const edit = (set: ReadonlyArray<string>) => {
    const kept = drop.has("CAP_ALL") ? [] : set.filter((c) => !drop.has(c))
    return [...kept, ...add.filter((c, i) => !kept.includes(c) && add.indexOf(c) === i)]
  }
  // runc needs bounding, effective and permitted; inheritable and ambient only where the config uses them
  const out: Record<string, unknown> = { ...caps }
  for (const set of ["bounding", "effective", "permitted"] as const) out[set] = edit(caps[set] ?? [])
  for (const set of ["inheritable", "ambient"] as const) {
    const current = caps[set]
    if (current) out[set] = edit(current)
  }
  return out as Capabilities
}

const setMappings = (l: Linux, key: "uidMappings" | "gidMappings", list: ReadonlyArray<IdMapping>): Linux => {
  const { [key]: _old, ...rest } = l
  return list.length === 0 ? rest : { ...rest, [key]: list.map((m) => ({ containerID: m.containerID, hostID: m.hostID, size: m.size })) }
}

/** Applies one edit. */
export const applyEdit = (c: RuntimeConfig, e: Edit): RuntimeConfig => {
  switch (e.kind) {
    case "args":
      return withProcess(c, (p) => ({ ...p, args: [...e.args] }))
    case "env":
      return withProcess(c, (p) => ({ ...p, env: setEnv(p.env ?? [], e) }))
    case "cwd":
      return withProcess(c, (p) => ({ ...p, cwd: e.cwd }))
    case "tmpfs":
      return putMount(c, { destination: e.destination, type: "tmpfs", source: "tmpfs", options: [...(e.options ?? defaultTmpfsOptions)] })
    case "bind":
      return putMount(c, { destination: e.destination, type: "bind", source: e.source, options: ["rbind", e.readonly ? "ro" : "rw"] })
    case "unmount":
      return { ...c, mounts: (c.mounts ?? []).filter((m) => !samePath(m.destination, e.destination)) }
    case "namespace":
      return withLinux(c, (l) =>
        e.action === "add"
          ? putNamespace(l, e.path === undefined ? { type: e.type } : { type: e.type, path: e.path })
          : { ...l, namespaces: (l.namespaces ?? []).filter((n) => n.type !== e.type) },
      )
    case "idMappings":
      return withLinux(c, (l) => setMappings(setMappings(l, "uidMappings", e.uid), "gidMappings", e.gid))
    case "hostname": {
      const hasUts = (c.linux?.namespaces ?? []).some((n) => n.type === "uts")
      // runc refuses a hostname without its own uts namespace (it would rename the host)
      const withUts = e.hostname === "" || hasUts ? c : withLinux(c, (l) => putNamespace(l, { type: "uts" }))
      return { ...withUts, hostname: e.hostname }
    }
    case "capabilities":
      return withProcess(c, (p) => ({ ...p, capabilities: editCapabilities(p.capabilities ?? {}, e) }))
    case "readonlyRoot":
      return { ...c, root: { ...(c.root ?? { path: "rootfs" }), readonly: e.readonly } }
    case "user":
      return withProcess(c, (p) => {
        // the old user's supplementary groups belong to the old user
        const { additionalGids: _old, ...rest } = p.user ?? { uid: 0, gid: 0 }
        const additional = e.additionalGids ?? []
        return { ...p, user: { ...rest, uid: e.uid, gid: e.gid, ...(additional.length > 0 ? { additionalGids: [...additional] } : {}) } }
      })
  }
}

/** Applies edits in order. */
export const applyAll = (c: RuntimeConfig, edits: ReadonlyArray<Edit>): RuntimeConfig => edits.reduce(applyEdit, c)
