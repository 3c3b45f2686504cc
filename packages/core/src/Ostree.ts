// Ostree: the content-addressed store, driven through the `ostree` command line.
import * as Effect from "effect/Effect"
import { existsSync, readFileSync, readdirSync } from "node:fs"
import { mkdir } from "node:fs/promises"
import path from "node:path"
import type { Readable } from "node:stream"
import { Spawn, type RunOptions } from "./Spawn.ts"
import { CommandFailed, InvalidInput, RepoMismatch, ToolMissing } from "./Errors.ts"
import { parseGVariantString } from "./internal/gvariant.ts"

/** The repo modes we use: bare-user for rootless, bare as root. */
export type RepoMode = "bare-user" | "bare"

/** An opened ostree repository. */
export interface Repo {
  readonly path: string
  readonly mode: RepoMode
}

// non-ASCII names in layers need a UTF-8 locale; C.UTF-8 exists on every Debian
const env = { LC_ALL: "C.UTF-8" }

const ostree = (repo: Repo | string, args: ReadonlyArray<string>, more: Pick<RunOptions, "input" | "inputFrom" | "ownProcessGroup"> = {}) =>
  Effect.flatMap(Spawn, (spawn) => spawn.run(["ostree", ...args, `--repo=${typeof repo === "string" ? repo : repo.path}`], { env, ...more }))

const modeOf = (repoPath: string): string | undefined => {
  const config = path.join(repoPath, "config")
  if (!existsSync(config)) return undefined
  return /^mode=(.*)$/m.exec(readFileSync(config, "utf8"))?.[1]?.trim()
}

/** Creates the repo at `path`, or opens it when it exists in that mode. */
export const init = Effect.fn("Ostree.init")(function* (o: { readonly path: string; readonly mode?: RepoMode }) {
  const mode = o.mode ?? "bare-user"
  const repoPath = path.resolve(o.path)
  const found = modeOf(repoPath)
  if (found !== undefined) {
    if (found !== mode) return yield* Effect.fail(new RepoMismatch({ path: repoPath, found, wanted: mode }))
    return { path: repoPath, mode } satisfies Repo
  }
  if (existsSync(repoPath) && !existsSync(path.join(repoPath, "config"))) {
    if (readdirSync(repoPath).length > 0)
      return yield* Effect.fail(new InvalidInput({ input: repoPath, reason: "exists and is not an ostree repo", fix: "choose an empty or new directory for the repo" }))
  }
  // ostree init makes only the last directory; the per-user default (~/.local/share/...) may not exist yet
  yield* Effect.promise(() => mkdir(repoPath, { recursive: true }))
  yield* ostree(repoPath, ["init", `--mode=${mode}`])
  return { path: repoPath, mode } satisfies Repo
})

/** Opens an existing repo, whatever its mode. */
export const open = Effect.fn("Ostree.open")(function* (repoPath: string) {
  const abs = path.resolve(repoPath)
  const mode = modeOf(abs)
  if (mode !== "bare-user" && mode !== "bare")
    return yield* Effect.fail(new InvalidInput({ input: abs, reason: mode ? `repo mode ${mode} is not supported` : "not an ostree repo", fix: "create one with 'ostree init --mode=bare-user' or let syscontainers pull create it" }))
  return { path: abs, mode } satisfies Repo
})

/**
 * What to commit: a tar file (gzip is fine), a tar read from a stream as it is written, a directory,
 * or the tree of an existing commit (committed again with new metadata, no file touched).
 */
export type Tree =
  | { readonly tar: string }
  /** `from`: a command that prints the same tar, for the record (a tutorial shows `from | ostree commit`). */
  | { readonly tarStream: Readable; readonly from?: ReadonlyArray<string> }
  | { readonly dir: string }
  | { readonly ref: string }

const treeArg = (t: Tree): string =>
  "tar" in t
    ? `--tree=tar=${t.tar}`
    : // an empty name is standard input to libarchive; /dev/stdin fails to open when it is a socket, as node's pipes are
      "tarStream" in t
      ? "--tree=tar="
      : "dir" in t
        ? `--tree=dir=${t.dir}`
        : `--tree=ref=${t.ref}`

/**
 * ostree 2022.7 (Debian 12) lists the repo's staging directories as a transaction starts and fails
 * when one vanishes before it opens it: another commit ending at that moment deletes its own (fixed
 * upstream later). Nothing was written yet; the commit can go again (a streamed one from the file).
 */
export const isStagingRace = (e: unknown): boolean =>
  e instanceof CommandFailed && /opendir\(staging-[^)]*\): No such file or directory/.test(e.stderrTail)

/**
 * Commits a tree with string metadata; writes `branch` unless `orphan`. Returns the checksum.
 * A commit that writes a ref runs in a process group of its own: ostree killed while it writes
 * the ref leaves its temporary file in refs/heads, which ostree lists as a ref ever after, and a
 * Ctrl-C at the terminal reaches our whole group (the caller makes the effect uninterruptible).
 */
export const commit = Effect.fn("Ostree.commit")(function* (
  repo: Repo,
  o: { readonly branch?: string; readonly tree: Tree; readonly metadata?: Readonly<Record<string, string>>; readonly subject?: string },
) {
  const fromTar = "tar" in o.tree || "tarStream" in o.tree
  const args = [
    "commit",
    // layer tars often omit parent directories (umoci, docker): ostree must make them
    ...(fromTar ? ["--tar-autocreate-parents"] : []),
    o.branch ? `--branch=${o.branch}` : "--orphan",
    treeArg(o.tree),
    // a commit's tree was written without xattrs already; --no-xattrs would make ostree walk and
    // rewrite it (130 ms for redis's biggest layer) where reusing it takes 15 ms
    ...("ref" in o.tree ? [] : ["--no-xattrs"]),
    // durability comes from writing the image ref last: a crash loses a pull, not the repo
    "--fsync=false",
    "--timestamp=1970-01-01T00:00:00Z",
    `--subject=${o.subject ?? o.branch ?? "syscontainers"}`,
    ...Object.entries(o.metadata ?? {}).map(([k, v]) => `--add-metadata-string=${k}=${v}`),
  ]
  const run = ostree(repo, args, {
    ...("tarStream" in o.tree ? { input: o.tree.tarStream, ...(o.tree.from ? { inputFrom: o.tree.from } : {}) } : {}),
    ...(o.branch ? { ownProcessGroup: true } : {}),
  })
  // a stream is read once: its caller commits again from the file instead
  const r = yield* ("tarStream" in o.tree ? run : run.pipe(Effect.retry({ times: 3, while: isStagingRace })))
  return r.stdout.trim()
})

/** All refs in the repo: read from refs/heads, as `ostree refs` lists them, without starting a process. */
export const refs = Effect.fn("Ostree.refs")(function* (repo: Repo) {
  const heads = path.join(repo.path, "refs", "heads")
  const walk = (dir: string, prefix: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]))
  return yield* Effect.sync(() => (existsSync(heads) ? walk(heads, "").sort() : []))
})

/** Whether a ref exists (a file under refs/heads), without starting a process. */
export const hasRef = (repo: Repo, ref: string): boolean => existsSync(path.join(repo.path, "refs", "heads", ref))

/** Deletes refs (objects go at the next prune). */
export const deleteRefs = Effect.fn("Ostree.deleteRefs")(function* (repo: Repo, names: ReadonlyArray<string>) {
  if (names.length > 0) yield* ostree(repo, ["refs", "--delete", ...names])
})

/** Removes objects no ref reaches. */
export const prune = Effect.fn("Ostree.prune")(function* (repo: Repo) {
  yield* ostree(repo, ["prune", "--refs-only"])
})

/** One string metadata value of a commit, or undefined when the key is absent. */
export const metadata = Effect.fn("Ostree.metadata")(function* (repo: Repo, ref: string, key: string) {
  const r = yield* ostree(repo, ["show", `--print-metadata-key=${key}`, ref]).pipe(
    Effect.catchTag("CommandFailed", (e) =>
      /No such metadata key/.test(e.stderrTail) ? Effect.succeed(undefined) : Effect.fail(e),
    ),
  )
  return r === undefined ? undefined : parseGVariantString(r.stdout)
})

/** The content of one file in a commit. */
export const cat = Effect.fn("Ostree.cat")(function* (repo: Repo, ref: string, file: string) {
  const r = yield* ostree(repo, ["cat", ref, file])
  return r.stdout
})

/** `ostree ls -R` of a commit, raw. */
export const listRecursive = Effect.fn("Ostree.listRecursive")(function* (repo: Repo, ref: string) {
  const r = yield* ostree(repo, ["ls", "-R", ref])
  return r.stdout
})

/** How one checkout lays a commit over what is already in the destination. */
export interface CheckoutOptions {
  readonly ref: string
  readonly into: string
  readonly union?: "union" | "union-add"
  readonly skipList?: string
  readonly whiteouts?: boolean
  /** hardlink (fail if impossible) or copy. */
  readonly link: "hardlink" | "copy"
  readonly subpath?: string
}

const checkoutFlags = (repo: Repo, o: Omit<CheckoutOptions, "ref" | "into">): string[] => [
  ...(repo.mode === "bare-user" ? ["-U"] : []),
  ...(o.union ? [`--${o.union}`] : []),
  ...(o.whiteouts ? ["--whiteouts"] : []),
  ...(o.skipList ? [`--skip-list=${o.skipList}`] : []),
  ...(o.subpath ? [`--subpath=${o.subpath}`] : []),
  o.link === "hardlink" ? "--require-hardlinks" : "--force-copy",
  "--fsync=false",
]

/** Checks out one commit. */
export const checkout = Effect.fn("Ostree.checkout")(function* (repo: Repo, o: CheckoutOptions) {
  yield* ostree(repo, ["checkout", ...checkoutFlags(repo, o), o.ref, o.into])
})

/**
 * Checks out several commits, in the order given, into one destination with one set of options:
 * one process (`--from-stdin`, which reads "REF\0SUBPATH\0" pairs) instead of one per commit.
 */
export const checkoutMany = Effect.fn("Ostree.checkoutMany")(function* (repo: Repo, refs: ReadonlyArray<string>, o: Omit<CheckoutOptions, "ref" | "subpath">) {
  if (refs.some((r) => r.includes("\0"))) return yield* Effect.die(new Error(`a ref holds a NUL: ${JSON.stringify(refs)}`))
  yield* ostree(repo, ["checkout", ...checkoutFlags(repo, o), "--from-stdin", o.into], { input: refs.map((r) => `${r}\0/\0`).join("") })
})

/** `ostree fsck`: verifies every object. */
export const fsck = Effect.fn("Ostree.fsck")(function* (repo: Repo) {
  return yield* ostree(repo, ["fsck"])
})

export type { CommandFailed, ToolMissing }
