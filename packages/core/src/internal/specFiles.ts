// specFiles: the file side of runtime configs: atomic writes, and reading files inside an untrusted rootfs.
import { randomBytes } from "node:crypto"
import { constants, promises as fs } from "node:fs"
import path from "node:path"

/**
 * Replaces `file` with `data` so that a reader sees the old or the new content, never a mix:
 * a temp file in the same directory (rename is atomic only within one filesystem), fsync,
 * rename over, fsync the directory. The temp file is removed if anything fails.
 */
export const writeFileAtomic = async (file: string, data: string): Promise<void> => {
  const dir = path.dirname(file)
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`)
  // keep the mode of the file we replace (runc writes 0644 under a usual umask)
  const mode = await fs.stat(file).then((s) => s.mode & 0o777, () => 0o644)
  try {
    const handle = await fs.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode)
    try {
      await handle.writeFile(data)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await fs.rename(tmp, file)
  } catch (e) {
    await fs.rm(tmp, { force: true })
    throw e
  }
  // the rename itself is durable only once the directory is synced
  const d = await fs.open(dir, constants.O_RDONLY | constants.O_DIRECTORY)
  try {
    await d.sync()
  } finally {
    await d.close()
  }
}

/**
 * Resolves `inside` (an absolute path in the container) to a host path under `root`, following
 * symlinks as if `root` were `/`: an image's /etc/passwd -> /usr/share/... stays in the image
 * instead of reading the host's file. Undefined when a component does not exist or links loop.
 */
export const resolveInRoot = async (root: string, inside: string): Promise<string | undefined> => {
  const todo = inside.split("/").filter((c) => c !== "" && c !== ".")
  const done: string[] = []
  let links = 0
  while (todo.length > 0) {
    const part = todo.shift() as string
    if (part === "..") {
      done.pop()
      continue
    }
    const host = path.join(root, ...done, part)
    const stat = await fs.lstat(host).catch(() => undefined)
    if (!stat) return undefined
    if (!stat.isSymbolicLink()) {
      done.push(part)
      continue
    }
    // Linux gives up after 40 links (ELOOP); so do we
    if (++links > 40) return undefined
    const target = await fs.readlink(host)
    if (target.startsWith("/")) done.length = 0
    todo.unshift(...target.split("/").filter((c) => c !== "" && c !== "."))
  }
  return path.join(root, ...done)
}

/** Reads a file inside a rootfs (see resolveInRoot); undefined when it is not there. */
export const readInRoot = async (root: string, inside: string): Promise<string | undefined> => {
  const host = await resolveInRoot(root, inside)
  return host === undefined ? undefined : fs.readFile(host, "utf8").catch(() => undefined)
}

/** Reads a file; undefined when it does not exist (other errors propagate). */
export const readIfExists = (file: string): Promise<string | undefined> =>
  fs.readFile(file, "utf8").catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return undefined
    throw e
  })
