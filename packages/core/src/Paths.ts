// Paths: whether two paths name one place, or one is inside the other, through symlinks.
import { realpathSync } from "node:fs"
import path from "node:path"

/** The real path of `p`, or `p` resolved when it does not exist (yet, or any more). */
export const realOf = (p: string): string => {
  try {
    return realpathSync(p)
  } catch {
    return path.resolve(p)
  }
}

/** Whether `a` and `b` name one directory. */
export const sameDir = (a: string, b: string): boolean => realOf(a) === realOf(b)

/** Whether `p` is `dir` or inside it (`/a/bc` is not inside `/a/b`). */
export const within = (p: string, dir: string): boolean => {
  const [a, d] = [realOf(p), realOf(dir)]
  return a === d || a.startsWith(`${d}/`)
}
