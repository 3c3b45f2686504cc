// runcSpecMemo: what `runc spec` wrote for a bundle, kept in the bundle with what its output depends
// on (the runc binary, --rootless, our effective uid and gid), so a re-run need not start runc to get it again.
import { readFileSync, statSync } from "node:fs"
import path from "node:path"
import { which } from "./tools.ts"
import { writeFileAtomic } from "./specFiles.ts"

/** The memo's file in a bundle: beside config.json, left alone by a new checkout of the rootfs. */
export const memoFileOf = (bundle: string) => path.join(bundle, ".syscontainers-runc-spec.json")

/** What runc's output depends on; undefined when `tool` is not found on PATH (runc's own error will say). */
export const memoKeyOf = (tool: string, rootless: boolean): string | undefined => {
  const file = which(tool, process.env["PATH"] ?? "")
  if (!file) return undefined
  try {
    const st = statSync(file)
    // a new runc (an upgrade replaces the file) may write another default spec; runc writes the
    // effective ids into a rootless spec's mappings
    return JSON.stringify({ tool: file, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, rootless, uid: process.geteuid?.(), gid: process.getegid?.() })
  } catch {
    return undefined
  }
}

/** runc's output as remembered under `key`, or undefined (none, another key, unreadable). */
export const recall = (bundle: string, key: string): unknown => {
  try {
    const memo = JSON.parse(readFileSync(memoFileOf(bundle), "utf8")) as { key?: unknown; spec?: unknown }
    return memo.key === key && typeof memo.spec === "object" && memo.spec !== null ? memo.spec : undefined
  } catch {
    return undefined
  }
}

/** Keeps runc's output under `key` (atomically: a reader sees the old memo or the new one). */
export const remember = (bundle: string, key: string, spec: unknown): Promise<void> => writeFileAtomic(memoFileOf(bundle), `${JSON.stringify({ key, spec })}\n`)
