// podman: the peer, with its own storage under the scratch dir, pulling through the mirror, never touching the system's.
import { mkdirSync, rmSync } from "node:fs"
import path from "node:path"
import { defer, run, runQuiet } from "./proc.ts"
import { mountsBelow } from "./scratch.ts"
import { execFileSync } from "node:child_process"

/** One podman storage (root + runroot) and how to drive it. */
export interface Podman {
  readonly dir: string
  readonly root: string
  /** podman with the global flags this machine needs and this storage. */
  readonly argv: (args: ReadonlyArray<string>) => string[]
  readonly run: (args: ReadonlyArray<string>) => Promise<string>
  /** Removes every container and image, unmounts, deletes the storage. */
  readonly destroy: () => Promise<void>
}

let made = 0

/** The flags `podman run` / `podman create` need here (the default limits exceed what this machine allows). */
export const ulimits = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]

/**
 * A podman storage in `dir`. No systemd here: cgroupfs, file events, runc. TMPDIR keeps podman's
 * image copies on the scratch filesystem too; CONTAINERS_REGISTRIES_CONF sends it to the mirror.
 */
export const makePodman = (dir: string, registriesConf: string): Podman => {
  const root = path.join(dir, "root")
  // podman refuses a runroot over 50 characters: state on /run's tmpfs, as podman's default is
  const runroot = path.join("/run", `bench-podman-${process.pid}-${++made}`)
  const tmp = path.join(dir, "tmp")
  mkdirSync(tmp, { recursive: true })
  const argv = (args: ReadonlyArray<string>) => [
    "podman",
    "--root", root,
    "--runroot", runroot,
    "--tmpdir", path.join(dir, "libpod-tmp"),
    "--network-config-dir", path.join(dir, "networks"),
    "--storage-driver", "overlay",
    "--cgroup-manager=cgroupfs",
    "--events-backend=file",
    "--runtime=runc",
    ...args,
  ]
  const env = { CONTAINERS_REGISTRIES_CONF: registriesConf, TMPDIR: tmp }
  const podman = async (args: ReadonlyArray<string>) => (await run(argv(args), { env })).stdout
  // registered at once: a Ctrl-C before the caller's finally still empties and deletes the storage
  const destroy = defer(`podman storage ${dir}`, async () => {
    // not `system reset`: it also prunes networks, which live outside this storage
    await runQuiet(argv(["rm", "--all", "--force", "--volumes", "--time", "0"]), { env })
    await runQuiet(argv(["rmi", "--all", "--force"]), { env })
    // the overlay driver bind-mounts its own directory, containers their merged trees
    for (const m of [...mountsBelow(dir), ...mountsBelow(runroot)]) {
      try {
        execFileSync("umount", [m], { stdio: "ignore" })
      } catch {
        execFileSync("umount", ["-l", m], { stdio: "ignore" })
      }
    }
    rmSync(dir, { recursive: true, force: true })
    rmSync(runroot, { recursive: true, force: true })
  })
  return {
    dir,
    root,
    argv,
    run: podman,
    destroy,
  }
}
