// bwrapArgs: translates an OCI runtime config.json into bubblewrap 0.8 arguments (pure, no processes).
import { closeSync, constants, lstatSync, openSync, readFileSync } from "node:fs"
import path from "node:path"
import type { SpecViolation } from "../Errors.ts"

/** Where a host path stands, as bwrap would see it while setting up. */
export type PathKind = "file" | "dir" | "missing"

/** One line of a uid_map or gid_map. */
export interface IdMapEntry {
  readonly containerID: number
  readonly hostID: number
  readonly size: number
}

/** How the translation is done: who runs bwrap, and how host paths are looked at. */
export interface BwrapArgsOptions {
  /** The uid bwrap runs as (default: this process's euid). */
  readonly hostUid?: number
  readonly hostGid?: number
  /** Looks at a host path without following a final symlink (default: lstat). */
  readonly probe?: (hostPath: string) => PathKind
  /** Reads a file of the rootfs (for /etc/passwd), undefined when absent (default: no symlinks followed). */
  readonly readFile?: (hostPath: string) => string | undefined
}

/** What bwrap needs to run a config, and what it cannot do. */
export interface BwrapTranslation {
  /** bwrap options, then "--", then process.args. */
  readonly args: ReadonlyArray<string>
  /** Things bwrap does differently that do not narrow less than asked; shown to the user. */
  readonly warnings: ReadonlyArray<string>
  /** Restrictions bwrap cannot apply (or mounts it cannot make); running needs allowUnsupported. */
  readonly unsupported: ReadonlyArray<string>
  /** Structural errors in the config; no option makes these run. */
  readonly invalid: ReadonlyArray<SpecViolation>
  /** argv to start bwrap under (prlimit for rlimits, choom for oomScoreAdj); empty if none. */
  readonly prefix: ReadonlyArray<string>
  /** process.user.umask, applied by the launcher (bwrap keeps its caller's umask). */
  readonly umask?: number
  /** Maps with ranges the runtime must write itself (bwrap --userns-block-fd), or undefined. */
  readonly idMaps?: { readonly uid: ReadonlyArray<IdMapEntry>; readonly gid: ReadonlyArray<IdMapEntry> }
  /** The namespaces bwrap unshares (OCI names), for exec. */
  readonly namespaces: ReadonlyArray<string>
  /** The container's environment (K=V), for exec. */
  readonly env: ReadonlyArray<string>
  /** process.user inside the container, for exec. */
  readonly user: { readonly uid: number; readonly gid: number }
  readonly cwd: string
}

type Obj = Readonly<Record<string, unknown>>
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v)
const isStrings = (v: unknown): v is ReadonlyArray<string> => Array.isArray(v) && v.every((x) => typeof x === "string")
const isId = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0 && v < 2 ** 32

const defaultProbe = (p: string): PathKind => {
  try {
    return lstatSync(p).isDirectory() ? "dir" : "file"
  } catch {
    return "missing"
  }
}

const defaultReadFile = (p: string): string | undefined => {
  try {
    // an image's /etc/passwd may be a symlink to anywhere on the host: do not follow one
    if (!lstatSync(path.dirname(p)).isDirectory()) return undefined
    const fd = openSync(p, constants.O_RDONLY | constants.O_NOFOLLOW)
    try {
      return readFileSync(fd, "utf8")
    } finally {
      closeSync(fd)
    }
  } catch {
    return undefined
  }
}

/** The home directory of `uid` in a passwd file, "/" when it has none (what runc uses for HOME). */
export const homeOf = (passwd: string | undefined, uid: number): string => {
  for (const line of (passwd ?? "").split("\n")) {
    const f = line.split(":")
    if (f.length >= 7 && Number(f[2]) === uid && f[2] !== "") return f[5] || "/"
  }
  return "/"
}

// bwrap's --dev populates /dev with exactly these entries
const devEntries = new Set(["null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "ptmx", "fd", "stdin", "stdout", "stderr", "core"])

// prlimit's option for each RLIMIT_* type
const prlimitNames: Readonly<Record<string, string>> = {
  RLIMIT_AS: "as", RLIMIT_CORE: "core", RLIMIT_CPU: "cpu", RLIMIT_DATA: "data", RLIMIT_FSIZE: "fsize",
  RLIMIT_LOCKS: "locks", RLIMIT_MEMLOCK: "memlock", RLIMIT_MSGQUEUE: "msgqueue", RLIMIT_NICE: "nice",
  RLIMIT_NOFILE: "nofile", RLIMIT_NPROC: "nproc", RLIMIT_RSS: "rss", RLIMIT_RTPRIO: "rtprio",
  RLIMIT_RTTIME: "rttime", RLIMIT_SIGPENDING: "sigpending", RLIMIT_STACK: "stack",
}

const unshareFlags: ReadonlyArray<readonly [string, string]> = [
  ["user", "--unshare-user"],
  ["ipc", "--unshare-ipc"],
  ["pid", "--unshare-pid"],
  ["network", "--unshare-net"],
  ["uts", "--unshare-uts"],
  // runc on cgroup v2 asks for one; a kernel without cgroup namespaces must not make that fatal
  ["cgroup", "--unshare-cgroup-try"],
]

const atimeOptions = new Set(["atime", "noatime", "relatime", "norelatime", "strictatime", "nostrictatime", "diratime", "nodiratime", "lazytime", "nolazytime"])
const propagationOptions = new Set(["private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable"])
// filesystems where noexec changes nothing: nobody can put an executable there
const noexecMoot = new Set(["proc", "sysfs", "mqueue", "devpts", "cgroup", "cgroup2"])
const knownTypes = new Set(["proc", "tmpfs", "devtmpfs", "mqueue", "devpts", "sysfs", "cgroup", "cgroup2"])

/** Parses tmpfs `size=` (bytes, or with k/m/g suffix) into bytes; undefined when it is not that. */
export const parseSize = (value: string): number | undefined => {
  const m = /^(\d+)([kmg]?)$/i.exec(value)
  if (!m) return undefined
  const scale = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? "").toLowerCase() as "" | "k" | "m" | "g"]
  return Number(m[1]) * scale
}

const octal = (mode: number) => mode.toString(8).padStart(4, "0")

const within = (parent: string, child: string) => parent === "/" || child === parent || child.startsWith(`${parent}/`)

/** What is mounted where in the container, to look paths up the way bwrap will see them. */
type ViewMount =
  | { readonly dest: string; readonly kind: "host"; readonly source: string }
  | { readonly dest: string; readonly kind: "empty" | "dev" }

/** Translates config.json (as parsed JSON) for bubblewrap 0.8; `bundleDir` anchors relative paths. */
export const bwrapArgs = (config: unknown, bundleDir: string, options: BwrapArgsOptions = {}): BwrapTranslation => {
  const hostUid = options.hostUid ?? process.geteuid?.() ?? 0
  const hostGid = options.hostGid ?? process.getegid?.() ?? 0
  const probe = options.probe ?? defaultProbe
  const readFile = options.readFile ?? defaultReadFile
  const warnings: string[] = []
  const unsupported: string[] = []
  const invalid: SpecViolation[] = []
  const warn = (pointer: string, message: string) => void warnings.push(`${pointer}: ${message}`)
  const refuse = (pointer: string, message: string) => void unsupported.push(`${pointer}: ${message}`)
  const bad = (pointer: string, message: string) => void invalid.push({ pointer, message })

  const cfg: Obj = isObj(config) ? config : {}
  if (!isObj(config)) bad("", "config.json must hold a JSON object")
  const proc: Obj = isObj(cfg.process) ? cfg.process : {}
  if (!isObj(cfg.process)) bad("/process", "a process to run is required")
  const linux: Obj = isObj(cfg.linux) ? cfg.linux : {}
  const root: Obj = isObj(cfg.root) ? cfg.root : {}

  // process
  const argv = isStrings(proc.args) ? proc.args : []
  if (argv.length === 0) bad("/process/args", "must be a non-empty array of strings")
  const cwd = typeof proc.cwd === "string" ? proc.cwd : "/"
  if (!cwd.startsWith("/")) bad("/process/cwd", "must be an absolute path")
  const env = isStrings(proc.env) ? proc.env : []
  if (proc.env !== undefined && !isStrings(proc.env)) bad("/process/env", "must be an array of KEY=VALUE strings")
  const user: Obj = isObj(proc.user) ? proc.user : {}
  const uid = isId(user.uid) ? user.uid : 0
  const gid = isId(user.gid) ? user.gid : 0
  if (user.uid !== undefined && !isId(user.uid)) bad("/process/user/uid", "must be a non-negative integer")
  if (user.gid !== undefined && !isId(user.gid)) bad("/process/user/gid", "must be a non-negative integer")
  for (const [i, a] of [...argv, ...env].entries()) if (a.includes("\0")) bad(i < argv.length ? `/process/args/${i}` : `/process/env/${i - argv.length}`, "holds a NUL byte")

  // namespaces: which ones bwrap unshares
  const unshared = new Set<string>()
  const namespaces = Array.isArray(linux.namespaces) ? linux.namespaces : []
  for (const [i, ns] of namespaces.entries()) {
    const at = `/linux/namespaces/${i}`
    if (!isObj(ns) || typeof ns.type !== "string") {
      bad(at, "must be an object with a type")
      continue
    }
    if (typeof ns.path === "string" && ns.path !== "") {
      refuse(at, `joining the existing ${ns.type} namespace ${ns.path} is not possible with bwrap, which only creates new ones`)
      continue
    }
    if (ns.type === "mount") continue
    if (ns.type === "time") warn(at, "bwrap cannot create a time namespace; the container sees the host's clocks")
    else if (unshareFlags.some(([t]) => t === ns.type)) unshared.add(ns.type)
    else bad(`${at}/type`, `unknown namespace type ${JSON.stringify(ns.type)}`)
  }
  if (!namespaces.some((ns) => isObj(ns) && ns.type === "mount")) warn("/linux/namespaces", "bwrap always creates a mount namespace")
  if (hostUid !== 0 && !unshared.has("user")) {
    // bwrap unprivileged must have one; say so rather than let bwrap imply it silently
    unshared.add("user")
    warn("/linux/namespaces", `running as uid ${hostUid}: bwrap adds a user namespace where container uid ${uid} is your uid`)
  }

  // user and id mappings
  const userArgs: string[] = []
  let idMaps: BwrapTranslation["idMaps"]
  const mappings = (key: "uidMappings" | "gidMappings"): IdMapEntry[] | undefined => {
    const list = linux[key]
    if (list === undefined) return undefined
    if (!Array.isArray(list) || !list.every((m) => isObj(m) && isId(m.containerID) && isId(m.hostID) && isId(m.size) && m.size > 0)) {
      bad(`/linux/${key}`, "must be an array of {containerID, hostID, size} with size > 0")
      return undefined
    }
    return list.map((m: Obj) => ({ containerID: m.containerID as number, hostID: m.hostID as number, size: m.size as number }))
  }
  const uidMaps = mappings("uidMappings")
  const gidMaps = mappings("gidMappings")
  if (unshared.has("user")) {
    const isRange = (maps?: IdMapEntry[]) => maps !== undefined && (maps.length > 1 || (maps[0]?.size ?? 1) > 1)
    if (isRange(uidMaps) || isRange(gidMaps)) {
      // bwrap 0.8 maps one id only; with --userns-block-fd the runtime writes the maps itself.
      // bwrap then sets up as its own uid and never calls setuid: the process runs as whatever
      // container id the caller's uid maps to, so that must be process.user.
      const check = (kind: "uid" | "gid", maps: IdMapEntry[] | undefined, id: number, host: number) => {
        const list = maps ?? [{ containerID: id, hostID: host, size: 1 }]
        const hit = list.find((m) => id >= m.containerID && id < m.containerID + m.size)
        if (!hit || hit.hostID + (id - hit.containerID) !== host)
          refuse(`/linux/${kind}Mappings`, `with id ranges bwrap runs the process as the container ${kind} that maps to its own ${kind} ${host}; map process.user.${kind} ${id} to ${host}`)
        return list
      }
      idMaps = { uid: check("uid", uidMaps, uid, hostUid), gid: check("gid", gidMaps, gid, hostGid) }
    } else {
      const single = (kind: "uid" | "gid", maps: IdMapEntry[] | undefined, id: number, host: number) => {
        const m = maps?.[0]
        if (m === undefined) return
        if (m.hostID !== host) refuse(`/linux/${kind}Mappings/0`, `bwrap maps a container ${kind} only to the ${kind} running it (${host}), not to ${m.hostID}`)
        else if (m.containerID !== id) refuse(`/linux/${kind}Mappings/0`, `process.user.${kind} ${id} is not mapped (only ${m.containerID} is)`)
      }
      single("uid", uidMaps, uid, hostUid)
      single("gid", gidMaps, gid, hostGid)
      userArgs.push("--uid", String(uid), "--gid", String(gid))
    }
  } else {
    if (uidMaps !== undefined || gidMaps !== undefined) warn("/linux/uidMappings", "ignored: there is no user namespace")
    if (uid !== hostUid || gid !== hostGid)
      refuse("/process/user", `bwrap switches to uid ${uid}/gid ${gid} only inside a user namespace, where it would still be host uid ${hostUid}; add a user namespace with mappings, or run as ${hostUid}`)
  }
  if (Array.isArray(user.additionalGids) && user.additionalGids.length > 0) warn("/process/user/additionalGids", "bwrap cannot set supplementary groups; the process keeps those of the user running bwrap")
  const umask = isId(user.umask) ? user.umask : undefined
  if (typeof user.username === "string") warn("/process/user/username", "ignored (a Windows field)")

  // capabilities: bwrap grants each added capability in every set
  const capArgs: string[] = ["--cap-drop", "ALL"]
  const caps: Obj = isObj(proc.capabilities) ? proc.capabilities : {}
  const capSet = (k: string): ReadonlyArray<string> => (isStrings(caps[k]) ? caps[k] : [])
  for (const k of ["bounding", "effective", "permitted", "inheritable", "ambient"]) if (caps[k] !== undefined && !isStrings(caps[k])) bad(`/process/capabilities/${k}`, "must be an array of capability names")
  // under no_new_privs (always on in bwrap) a process can only ever use what it has permitted
  // now, so bounding- or inheritable-only capabilities are dropped rather than granted
  const granted = [...new Set([...capSet("effective"), ...capSet("permitted"), ...capSet("ambient")])]
  for (const cap of granted) {
    if (!/^CAP_[A-Z_]+$/.test(cap)) bad("/process/capabilities", `unknown capability ${JSON.stringify(cap)}`)
    else capArgs.push("--cap-add", cap)
  }
  const dropped = [...new Set([...capSet("bounding"), ...capSet("inheritable")])].filter((c) => !granted.includes(c))
  if (dropped.length) warn("/process/capabilities", `${dropped.join(", ")} only in bounding/inheritable: dropped, since bwrap would make them effective`)
  const partial = granted.filter((c) => !capSet("effective").includes(c) || !capSet("ambient").includes(c) || !capSet("bounding").includes(c))
  if (partial.length && proc.capabilities !== undefined) warn("/process/capabilities", `${partial.join(", ")} granted in every set (bwrap cannot keep the sets apart)`)

  // rlimits and oomScoreAdj are set on bwrap by a wrapper and inherited by the container
  const prefix: string[] = []
  const prlimit: string[] = []
  if (proc.rlimits !== undefined && !Array.isArray(proc.rlimits)) bad("/process/rlimits", "must be an array")
  for (const [i, r] of (Array.isArray(proc.rlimits) ? proc.rlimits : []).entries()) {
    const name = isObj(r) && typeof r.type === "string" ? prlimitNames[r.type] : undefined
    if (!isObj(r) || name === undefined || typeof r.soft !== "number" || typeof r.hard !== "number") {
      refuse(`/process/rlimits/${i}`, "unknown or malformed rlimit; bwrap cannot apply it")
      continue
    }
    // JSON numbers lose uint64 precision: anything past 2^63 is RLIM_INFINITY
    const v = (n: number) => (n >= 2 ** 63 ? "unlimited" : String(n))
    prlimit.push(`--${name}=${v(r.soft)}:${v(r.hard)}`)
  }
  if (prlimit.length) prefix.push("prlimit", ...prlimit, "--")
  if (proc.oomScoreAdj !== undefined) {
    if (typeof proc.oomScoreAdj === "number" && Number.isInteger(proc.oomScoreAdj)) prefix.push("choom", "-n", String(proc.oomScoreAdj), "--")
    else bad("/process/oomScoreAdj", "must be an integer")
  }

  // process fields bwrap has no knob for
  if (proc.noNewPrivileges === false) warn("/process/noNewPrivileges", "bwrap always sets no_new_privs")
  if (proc.terminal === true) warn("/process/terminal", "bwrap allocates no pseudo-terminal: attached runs share the caller's stdio, detached ones write to the log")
  if (typeof proc.apparmorProfile === "string" && proc.apparmorProfile) refuse("/process/apparmorProfile", "bwrap cannot apply an AppArmor profile")
  if (typeof proc.selinuxLabel === "string" && proc.selinuxLabel) refuse("/process/selinuxLabel", "not applied (bwrap's --exec-label is not wired up)")
  if (proc.scheduler !== undefined) warn("/process/scheduler", "ignored: bwrap cannot set a scheduling policy")
  if (proc.ioPriority !== undefined) warn("/process/ioPriority", "ignored: bwrap cannot set an I/O priority")
  if (proc.execCPUAffinity !== undefined) warn("/process/execCPUAffinity", "ignored")

  // linux fields bwrap has no knob for
  if (isObj(linux.seccomp)) refuse("/linux/seccomp", "bwrap 0.8 takes only a compiled BPF program; the OCI seccomp profile is not applied")
  if (isObj(linux.sysctl) && Object.keys(linux.sysctl).length) refuse("/linux/sysctl", `bwrap cannot set sysctls (${Object.keys(linux.sysctl).join(", ")})`)
  if (isObj(linux.resources)) {
    for (const [key, value] of Object.entries(linux.resources)) {
      const empty = value === null || (Array.isArray(value) && value.length === 0) || (isObj(value) && Object.keys(value).length === 0)
      if (empty) continue
      if (key === "devices" && Array.isArray(value)) {
        // a device cgroup that only denies is what bwrap gives anyway: every mount is nodev
        // except its own /dev (null, zero, full, random, urandom, tty, pts) and --dev-bind mounts
        if (value.some((d) => isObj(d) && d.allow === true)) warn("/linux/resources/devices", "allow rules are not applied: bwrap's /dev holds only null, zero, full, random, urandom, tty, ptmx")
        continue
      }
      refuse(`/linux/resources/${key}`, "bwrap creates no cgroup: this limit is not applied")
    }
  }
  if (isObj(linux.intelRdt)) refuse("/linux/intelRdt", "bwrap cannot apply Intel RDT limits")
  if (typeof linux.mountLabel === "string" && linux.mountLabel) refuse("/linux/mountLabel", "not applied (bwrap's --file-label is not wired up)")
  if (typeof linux.cgroupsPath === "string") warn("/linux/cgroupsPath", "ignored: bwrap creates no cgroup; the container stays in the caller's")
  if (Array.isArray(linux.devices) && linux.devices.length) warn("/linux/devices", "not created: bwrap's /dev holds only its standard devices")
  if (typeof linux.rootfsPropagation === "string") warn("/linux/rootfsPropagation", "ignored: bwrap makes every mount a slave of the host's")
  if (isObj(linux.personality)) warn("/linux/personality", "ignored")
  if (isObj(linux.timeOffsets)) warn("/linux/timeOffsets", "ignored: no time namespace")
  if (isObj(cfg.hooks) && Object.values(cfg.hooks).some((h) => Array.isArray(h) && h.length)) refuse("/hooks", "bwrap runs no hooks")
  if (typeof cfg.domainname === "string" && cfg.domainname) warn("/domainname", "ignored: bwrap sets only the hostname")

  // filesystem: the root, the mounts in order, readonly then masked paths (runc's order), then
  // the root read-only last so bwrap can still create mount points in it while setting up
  const fs: string[] = []
  const view: ViewMount[] = []
  if (typeof root.path !== "string" || root.path === "") bad("/root/path", "a root filesystem path is required")
  const rootPath = path.resolve(bundleDir, typeof root.path === "string" ? root.path : "rootfs")
  fs.push("--bind", rootPath, "/")
  view.push({ dest: "/", kind: "host", source: rootPath })
  let devMounted = false
  if (cfg.mounts !== undefined && !Array.isArray(cfg.mounts)) bad("/mounts", "must be an array")
  for (const [i, m] of (Array.isArray(cfg.mounts) ? cfg.mounts : []).entries()) {
    const at = `/mounts/${i}`
    if (!isObj(m) || typeof m.destination !== "string" || !m.destination.startsWith("/")) {
      bad(at, "a mount needs an absolute destination")
      continue
    }
    const dest = path.posix.normalize(m.destination)
    const type = typeof m.type === "string" ? m.type : ""
    const source = typeof m.source === "string" ? m.source : ""
    const opts = isStrings(m.options) ? m.options : []
    const isBind = type === "bind" || opts.includes("bind") || opts.includes("rbind")
    const ro = opts.includes("ro")
    const handled = new Set(["ro", "rw", "nosuid", "suid", "nodev", "dev", "bind", "rbind", "exec", "noexec", ...atimeOptions])
    const moot = noexecMoot.has(type) || (isBind && (within("/sys", source) || within("/proc", source)))
    if (opts.includes("noexec") && !moot) refuse(at, `bwrap cannot mount ${dest} noexec: files on it could be executed`)
    const propagation = opts.filter((o) => propagationOptions.has(o))
    if (propagation.length) warn(at, `${propagation.join(",")} ignored: bwrap makes every mount a slave of the host's`)
    // tmpfs options are read below; devpts ones belong to the devpts bwrap's --dev makes; a type
    // bwrap cannot mount at all is refused below, its options are beside the point
    if (type !== "tmpfs" && type !== "devpts" && (isBind || knownTypes.has(type)))
      for (const o of opts) if (!handled.has(o) && !propagationOptions.has(o)) warn(at, `option ${o} ignored`)

    if (isBind) {
      if (!source) {
        bad(`${at}/source`, "a bind mount needs a source")
        continue
      }
      const src = path.isAbsolute(source) ? source : path.resolve(bundleDir, source)
      if (opts.includes("bind") && !opts.includes("rbind")) warn(at, `bwrap binds recursively: mounts below ${src} show up too`)
      if (opts.includes("dev")) fs.push("--dev-bind", src, dest, ...(ro ? ["--remount-ro", dest] : []))
      else fs.push(ro ? "--ro-bind" : "--bind", src, dest)
      view.push({ dest, kind: "host", source: src })
    } else if (type === "proc") {
      fs.push("--proc", dest)
      view.push({ dest, kind: "host", source: "/proc" })
    } else if ((type === "tmpfs" || type === "devtmpfs") && dest === "/dev") {
      // bwrap's --dev is a tmpfs with the safe devices, a private devpts and /dev/shm
      fs.push("--dev", "/dev")
      view.push({ dest, kind: "dev" })
      devMounted = true
      continue
    } else if (type === "devtmpfs") {
      fs.push("--dev", dest)
      view.push({ dest, kind: "dev" })
    } else if (type === "tmpfs") {
      for (const o of opts) {
        const [k, v = ""] = o.split("=", 2) as [string, string?]
        if (k === "mode") {
          if (!/^[0-7]{1,4}$/.test(v)) bad(at, `mode=${v} is not octal`)
          else fs.push("--perms", octal(parseInt(v, 8)))
        } else if (k === "size") {
          const bytes = parseSize(v)
          if (bytes === undefined) refuse(at, `size=${v}: bwrap takes a size in bytes (k/m/g suffixes accepted here), not this`)
          else fs.push("--size", String(bytes))
        } else if (k === "nr_inodes") refuse(at, `${o} is not applied: bwrap cannot limit tmpfs inodes`)
        else if (k === "uid" || k === "gid") warn(at, `${o} ignored: bwrap's tmpfs belongs to the sandbox user`)
        else if (!handled.has(o) && !propagationOptions.has(o)) warn(at, `option ${o} ignored`)
      }
      fs.push("--tmpfs", dest, ...(ro ? ["--remount-ro", dest] : []))
      view.push({ dest, kind: "empty" })
      continue
    } else if (type === "mqueue") {
      fs.push("--mqueue", dest)
      view.push({ dest, kind: "empty" })
    } else if (type === "devpts") {
      if (devMounted && dest === "/dev/pts") continue // --dev already made a private devpts there
      refuse(at, "bwrap mounts a devpts only as part of --dev /dev; add a tmpfs on /dev before it")
      continue
    } else if (type === "sysfs") {
      // bwrap cannot mount a new sysfs; the host's, read-only, is what runc --rootless binds too
      fs.push("--ro-bind", "/sys", dest)
      view.push({ dest, kind: "host", source: "/sys" })
      warn(at, `the host's /sys is bound read-only on ${dest}: /sys/class/net lists the host's interfaces`)
    } else if (type === "cgroup" || type === "cgroup2") {
      // a read-only bind of the host's /sys on /sys already holds the cgroup tree (bwrap binds recursively)
      const underSys = dest === "/sys/fs/cgroup" && view.some((v) => v.kind === "host" && v.dest === "/sys" && v.source === "/sys")
      if (!underSys) fs.push("--ro-bind", "/sys/fs/cgroup", dest)
      view.push({ dest, kind: "host", source: "/sys/fs/cgroup" })
      warn(at, `the host's cgroup tree is bound read-only on ${dest}`)
    } else {
      refuse(at, `bwrap cannot mount a ${type || "typeless"} filesystem (only bind, proc, tmpfs, devtmpfs, mqueue, sysfs, cgroup)`)
      continue
    }
    if (type !== "sysfs" && type !== "cgroup" && type !== "cgroup2" && !isBind && ro) fs.push("--remount-ro", dest)
  }

  // where a container path is on the host as bwrap sees it during setup (bind sources are host paths)
  const locate = (p: string): { mount: ViewMount; host?: string; kind: PathKind } => {
    const mount = [...view].reverse().find((v) => within(v.dest, p)) ?? view[0]!
    const rest = mount.dest === "/" ? p : p.slice(mount.dest.length)
    if (mount.kind === "host") {
      const host = path.posix.join(mount.source, rest)
      return { mount, host, kind: probe(host) }
    }
    if (rest === "") return { mount, kind: "dir" }
    if (mount.kind === "dev") {
      const first = rest.split("/")[1] ?? ""
      return { mount, kind: devEntries.has(first) && rest === `/${first}` ? (first === "pts" || first === "shm" ? "dir" : "file") : "missing" }
    }
    return { mount, kind: "missing" }
  }
  const pidSpecific = (host: string) => /^\/proc\/(\d+|self|thread-self)(\/|$)/.test(host)

  const readonlyPaths = isStrings(linux.readonlyPaths) ? linux.readonlyPaths : []
  for (const [i, raw] of readonlyPaths.entries()) {
    if (!raw.startsWith("/")) {
      bad(`/linux/readonlyPaths/${i}`, "must be absolute")
      continue
    }
    const p = path.posix.normalize(raw)
    const where = locate(p)
    if (where.kind === "missing") continue // runc skips what is not there, so do we
    if (where.mount.dest === p && where.mount.kind !== "host") fs.push("--remount-ro", p)
    else if (where.host === undefined || (where.mount.kind === "host" && where.mount.source === "/proc" && pidSpecific(where.host)))
      refuse(`/linux/readonlyPaths/${i}`, `bwrap cannot make ${p} read-only`)
    else fs.push("--ro-bind", where.host, p)
  }
  const maskedPaths = isStrings(linux.maskedPaths) ? linux.maskedPaths : []
  for (const [i, raw] of maskedPaths.entries()) {
    if (!raw.startsWith("/")) {
      bad(`/linux/maskedPaths/${i}`, "must be absolute")
      continue
    }
    const p = path.posix.normalize(raw)
    const where = locate(p)
    if (where.kind === "missing") continue
    // /dev/null with devices allowed: reading gives EOF like runc's mask (a nodev bind gives EACCES)
    if (where.kind === "file") fs.push("--dev-bind", "/dev/null", p)
    else fs.push("--tmpfs", p, "--remount-ro", p)
  }
  if (root.readonly === true) fs.push("--remount-ro", "/")

  // the rest of the options, then the filesystem ops with --remount-ro / last, then the command
  const args: string[] = ["--die-with-parent"]
  for (const [t, flag] of unshareFlags) if (unshared.has(t)) args.push(flag)
  if (unshared.has("pid")) args.push("--as-pid-1") // bwrap allows it only with a pid namespace
  args.push(...userArgs)
  if (typeof cfg.hostname === "string" && cfg.hostname) {
    if (unshared.has("uts")) args.push("--hostname", cfg.hostname)
    else warn("/hostname", "ignored: setting a hostname needs a uts namespace")
  }
  if (proc.terminal !== true) args.push("--new-session") // no controlling tty: blocks TIOCSTI into the caller's terminal
  args.push(...capArgs)
  args.push("--chdir", cwd)
  args.push("--clearenv")
  const containerEnv: string[] = []
  for (const [i, kv] of env.entries()) {
    const eq = kv.indexOf("=")
    if (eq <= 0) warn(`/process/env/${i}`, `${JSON.stringify(kv)} is not KEY=VALUE; skipped`)
    else containerEnv.push(kv)
  }
  // like runc: HOME from the image's /etc/passwd for process.user, else /
  if (!containerEnv.some((kv) => kv.startsWith("HOME="))) containerEnv.push(`HOME=${homeOf(readFile(path.join(rootPath, "etc", "passwd")), uid)}`)
  for (const kv of containerEnv) args.push("--setenv", kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1))
  args.push(...fs, "--", ...argv)

  return {
    args,
    warnings,
    unsupported,
    invalid,
    prefix,
    ...(umask !== undefined ? { umask } : {}),
    ...(idMaps !== undefined ? { idMaps } : {}),
    namespaces: ["mount", ...unshareFlags.map(([t]) => t).filter((t) => unshared.has(t))],
    env: containerEnv,
    user: { uid, gid },
    cwd,
  }
}

/** Splits translated args at the first "--": options go through `--args FD`, the command stays on argv. */
export const splitCommand = (args: ReadonlyArray<string>): { readonly options: ReadonlyArray<string>; readonly command: ReadonlyArray<string> } => {
  const at = args.indexOf("--")
  return at < 0 ? { options: args, command: [] } : { options: args.slice(0, at), command: args.slice(at + 1) }
}

/** The NUL-separated form bwrap's `--args FD` reads. */
export const encodeArgs = (options: ReadonlyArray<string>): Buffer => Buffer.from(options.map((o) => `${o}\0`).join(""), "utf8")
