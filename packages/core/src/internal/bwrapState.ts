// bwrapState: where the bubblewrap runtime keeps each container's state, and how it reads /proc to tell live pids from reused ones.
import { chmodSync, lstatSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from "node:fs"
import os from "node:os"
import path from "node:path"

/** What state.json holds for one container. */
export interface BwrapStateFile {
  readonly name: string
  readonly runtime: "bwrap"
  /** The container's first process (bwrap's child-pid), 0 until known. */
  readonly pid: number
  /** bwrap's own (monitor) process. */
  readonly bwrapPid: number
  /** /proc/PID/stat field 22 of `pid` when it started: a reused pid has another. */
  readonly pidStartTime: string
  readonly bundle: string
  readonly created: string
  readonly status: "creating" | "running"
  readonly attached: boolean
  /** What exec needs: the namespaces bwrap made, the container's env, user and cwd. */
  readonly namespaces: ReadonlyArray<string>
  readonly env: ReadonlyArray<string>
  readonly user: { readonly uid: number; readonly gid: number }
  readonly cwd: string
  readonly userns: boolean
}

/** The default state root: $XDG_RUNTIME_DIR/syscontainers/bwrap, else /run/... for root, else a private dir in tmp. */
export const defaultStateRoot = (): string => {
  const xdg = process.env.XDG_RUNTIME_DIR
  if (xdg) return path.join(xdg, "syscontainers", "bwrap")
  const uid = process.geteuid?.() ?? 0
  return uid === 0 ? "/run/syscontainers/bwrap" : path.join(os.tmpdir(), `syscontainers-${uid}`, "bwrap")
}

/** Creates the state root (0700); says why when it is not safe to use (someone else's, or open to others). */
export const ensureStateRoot = (root: string): string | undefined => {
  mkdirSync(root, { recursive: true, mode: 0o700 })
  const uid = process.geteuid?.() ?? 0
  const st = lstatSync(root)
  if (!st.isDirectory() || st.uid !== uid) return `${root} is not a directory owned by uid ${uid}`
  if ((st.mode & 0o022) !== 0) chmodSync(root, 0o700)
  // in a shared tmp anyone can create syscontainers-UID first: trust only our own private one
  const parent = path.dirname(root)
  if (path.basename(parent).startsWith("syscontainers-")) {
    const p = lstatSync(parent)
    if (!p.isDirectory() || p.uid !== uid || (p.mode & 0o077) !== 0) return `${parent} belongs to uid ${p.uid} or is open to others; remove it or set XDG_RUNTIME_DIR`
  }
  return undefined
}

/** A container name is a directory name: keep it to what runc accepts. */
export const validName = (name: string): boolean => /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$/.test(name)

export const stateFile = (dir: string) => path.join(dir, "state.json")

/** Writes state.json atomically, so a reader never sees half of it. */
export const writeState = (dir: string, state: BwrapStateFile): void => {
  const tmp = path.join(dir, `.state.json.${process.pid}`)
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 })
  renameSync(tmp, stateFile(dir))
}

/** Reads state.json; undefined when it is missing or not ours. */
export const readState = (dir: string): BwrapStateFile | undefined => {
  try {
    const s: unknown = JSON.parse(readFileSync(stateFile(dir), "utf8"))
    if (typeof s !== "object" || s === null) return undefined
    const o = s as Record<string, unknown>
    if (typeof o.name !== "string" || typeof o.pid !== "number" || typeof o.bundle !== "string") return undefined
    return s as BwrapStateFile
  } catch {
    return undefined
  }
}

/** Names of the containers under a state root. */
export const listNames = (root: string): ReadonlyArray<string> => {
  try {
    return readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory() && validName(d.name)).map((d) => d.name).sort()
  } catch {
    return []
  }
}

/** The fields of /proc/PID/stat after the command name (field 3 is index 0); undefined if gone. */
const statFields = (pid: number): ReadonlyArray<string> | undefined => {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8")
    // the command name may hold spaces and parentheses: split after the last ')'
    return text.slice(text.lastIndexOf(")") + 2).split(" ")
  } catch {
    return undefined
  }
}

/** Field 22 of /proc/PID/stat (start time in clock ticks since boot); undefined if gone. */
export const startTime = (pid: number): string | undefined => statFields(pid)?.[19]

/** Field 4 (parent pid). */
export const parentPid = (pid: number): number | undefined => {
  const f = statFields(pid)?.[1]
  return f === undefined ? undefined : Number(f)
}

/** The pid runs, is not a zombie, and is the same process that was recorded. */
export const isAlive = (pid: number, recordedStart: string): boolean => {
  if (pid <= 0) return false
  const f = statFields(pid)
  return f !== undefined && f[0] !== "Z" && f[0] !== "X" && f[19] === recordedStart
}

/** /proc/PID/comm, or undefined when the process is gone. */
export const comm = (pid: number): string | undefined => {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trimEnd()
  } catch {
    return undefined
  }
}

/** What bwrap wrote to --json-status-fd so far (child-pid, then exit-code), and the launcher's bwrap-exit. */
export interface BwrapStatus {
  readonly childPid?: number
  readonly exitCode?: number
  /** bwrap itself ended (written by the detached launcher, also when bwrap was killed). */
  readonly bwrapExit?: number
}

export const readStatus = (file: string): BwrapStatus => {
  let text = ""
  try {
    text = readFileSync(file, "utf8")
  } catch {
    return {}
  }
  const out: { childPid?: number; exitCode?: number; bwrapExit?: number } = {}
  // one JSON document per line; the last may still be half-written
  for (const line of text.split("\n")) {
    try {
      const doc: unknown = JSON.parse(line)
      if (typeof doc !== "object" || doc === null) continue
      const d = doc as Record<string, unknown>
      if (typeof d["child-pid"] === "number") out.childPid = d["child-pid"]
      if (typeof d["exit-code"] === "number") out.exitCode = d["exit-code"]
      if (typeof d["bwrap-exit"] === "number") out.bwrapExit = d["bwrap-exit"]
    } catch {
      // partial line
    }
  }
  return out
}
