// scratch: the journaled ext4 the benchmarks run on: a sparse image file, loop-mounted, unmounted and deleted at the end.
import { execFileSync } from "node:child_process"
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync } from "node:fs"
import path from "node:path"

/** A mounted scratch filesystem. */
export interface Scratch {
  /** The mount point: every bench file goes below it. */
  readonly dir: string
  /** What the results say about where they were measured. */
  readonly description: string
  /** Unmounts whatever is mounted below, then the filesystem; deletes the image. Idempotent, synchronous (exit handlers). */
  readonly release: () => void
}

const sh = (argv: ReadonlyArray<string>) => execFileSync(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] }).toString()

// /proc/mounts escapes spaces and friends as octal
const unescapeMount = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))

/** Mount points at or below `dir`, deepest first (so each unmounts before its parent). */
export const mountsBelow = (dir: string): string[] =>
  readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .map((l) => unescapeMount(l.split(" ")[1] ?? ""))
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length)

const unmountAll = (dir: string) => {
  for (const m of mountsBelow(dir)) {
    try {
      sh(["umount", m])
    } catch {
      // busy (a process still in there): lazy, so the loop device goes when it lets go
      try {
        sh(["umount", "-l", m])
      } catch {
        // already gone
      }
    }
  }
}

/**
 * Makes `base/scratch.img` (sparse, `sizeGb`), ext4 with its journal, mounted at `base/mnt`.
 * The root disk here has no journal, and creating files after a mass deletion is 10x slower there:
 * numbers taken on it would measure that, not the tools.
 */
export const mountScratch = (base: string, sizeGb = 8): Scratch => {
  const image = path.join(base, "scratch.img")
  const dir = path.join(base, "mnt")
  mkdirSync(base, { recursive: true })
  // a previous run killed hard may have left its mount: start clean
  unmountAll(dir)
  rmSync(image, { force: true })
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  sh(["truncate", "-s", `${sizeGb}G`, image])
  // one inode per 8 KiB: the scaling set, 20 unpacks and podman's copies are mostly small files
  sh(["mkfs.ext4", "-q", "-F", "-i", "8192", "-O", "has_journal", image])
  sh(["mount", "-o", "loop", image, dir])
  const opts = readFileSync("/proc/mounts", "utf8").split("\n").find((l) => unescapeMount(l.split(" ")[1] ?? "") === dir)?.split(" ")[3] ?? ""
  const device = sh(["findmnt", "-n", "-o", "SOURCE", dir]).trim()
  let released = false
  return {
    dir,
    description: `ext4 with journal (${opts}) on ${device}, a ${sizeGb} GB sparse file on the root disk`,
    release: () => {
      if (released) return
      released = true
      unmountAll(dir)
      // mount -o loop sets autoclear: the loop device goes with the last unmount
      if (mountsBelow(dir).length === 0) {
        rmSync(dir, { recursive: true, force: true })
        rmSync(image, { force: true })
        try {
          rmdirSync(base)
        } catch {
          // not empty: someone else's files, left alone
        }
      } else if (existsSync(image)) {
        process.stderr.write(`bench: ${dir} is still mounted; unmount it and delete ${image}\n`)
      }
    },
  }
}
