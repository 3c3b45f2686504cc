// Bubblewrap: config.json → bwrap argv mappings, then real containers under bwrap 0.8, as root and as a fresh non-root user.
import { test } from "uvu"
import * as assert from "uvu/assert"
import * as Effect from "effect/Effect"
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import {
  bwrapArgs, encodeArgs, makeBubblewrapRuntime, parseSignal, parseSize, splitCommand,
  type BubblewrapOptions, type BubblewrapRuntime, type PathKind,
} from "../packages/core/src/Bubblewrap.ts"
import { Spawn, SpawnLive } from "../packages/core/src/Spawn.ts"
import { cleanupTemps, failure, run, runFileAsUser, sh, shAny, tempDir } from "./fixtures/harness.ts"
import { makeProbeBundle, type ProbeBundle } from "./fixtures/probeBundle.ts"

const thisFile = fileURLToPath(import.meta.url)

// ---------------------------------------------------------------------------------------------
// child mode: the rootless test re-runs this file as the test user to drive the runtime there
// ---------------------------------------------------------------------------------------------

interface ChildJob {
  readonly bundle: string
  readonly rangesBundle: string
  readonly detachedBundle: string
}

const childMain = async (job: ChildJob) => {
  const result: Record<string, unknown> = { uid: process.getuid?.(), stateRoot: "" }
  const warnings: string[] = []
  await Effect.runPromise(
    Effect.gen(function* () {
      const rt = yield* makeBubblewrapRuntime({ onWarning: (w) => warnings.push(w) })
      result.stateRoot = rt.stateRoot
      result.attached = yield* rt.runAttached({ bundle: job.bundle, name: "rl-attached" })
      const d = yield* rt.runDetached({ bundle: job.detachedBundle, name: "rl-detached" })
      result.detached = d.status
      result.exec = yield* rt.exec("rl-detached", ["sh", "-c", "id -u; hostname; echo $PROBE"])
      yield* rt.kill("rl-detached", "KILL")
      yield* Effect.sleep("200 millis")
      result.afterKill = (yield* rt.state("rl-detached")).status
      yield* rt.delete("rl-detached")
      result.ranges = yield* rt.runAttached({ bundle: job.rangesBundle, name: "rl-ranges" })
      result.left = (yield* rt.list()).length
    }).pipe(
      Effect.catchAll((e) => Effect.sync(() => void (result.error = `${(e as { _tag?: string })._tag}: ${(e as Error).message}`))),
      Effect.provide(SpawnLive),
    ),
  )
  result.warnings = warnings
  console.log(`CHILD-RESULT ${JSON.stringify(result)}`)
}

// ---------------------------------------------------------------------------------------------
// pure mappings
// ---------------------------------------------------------------------------------------------

const bundleDir = "/b"
type Cfg = Record<string, any>
/** The smallest config: every test adds what it maps. */
const cfg = (extra: Cfg = {}): Cfg => ({
  ociVersion: "1.0.2",
  root: { path: "rootfs" },
  process: { args: ["sh"], cwd: "/", terminal: false, user: { uid: 0, gid: 0 }, env: ["PATH=/bin"] },
  linux: { namespaces: [{ type: "mount" }] },
  ...extra,
})
const withLinux = (linux: Cfg, extra: Cfg = {}) => cfg({ ...extra, linux: { namespaces: [{ type: "mount" }], ...linux } })
const probeOf = (known: Record<string, PathKind>) => (p: string): PathKind => known[p] ?? "missing"
const tr = (c: Cfg, o: { hostUid?: number; known?: Record<string, PathKind>; passwd?: string } = {}) =>
  bwrapArgs(c, bundleDir, { hostUid: o.hostUid ?? 0, hostGid: o.hostUid ?? 0, probe: probeOf(o.known ?? {}), readFile: (p) => (p === "/b/rootfs/etc/passwd" ? o.passwd : undefined) })
const head = ["--die-with-parent"]
const tailOf = ["--new-session", "--cap-drop", "ALL", "--chdir", "/", "--clearenv", "--setenv", "PATH", "/bin", "--setenv", "HOME", "/"]
const rootBind = ["--bind", "/b/rootfs", "/"]
/** The fs ops between the root bind and "--". */
const fsOps = (args: ReadonlyArray<string>) => args.slice(args.indexOf("/b/rootfs") + 2, args.indexOf("--"))

test("minimal config: die-with-parent, new session, no caps, cwd, a clean env, the root bind, then the command", () => {
  const t = tr(cfg())
  assert.equal(t.args, [...head, ...tailOf, ...rootBind, "--", "sh"])
  assert.equal(t.warnings, [])
  assert.equal(t.unsupported, [])
  assert.equal(t.invalid, [])
  assert.equal(t.prefix, [])
})

test("process: args after --, cwd → --chdir, env → --clearenv then --setenv each; malformed env warned", () => {
  const t = tr(cfg({ process: { args: ["/bin/echo", "--", "a b", "--die-with-parent"], cwd: "/srv", env: ["A=1", "B=x=y", "EMPTY=", "junk", "HOME=/h"], terminal: false } }))
  assert.equal(t.args, [...head, "--new-session", "--cap-drop", "ALL", "--chdir", "/srv", "--clearenv", "--setenv", "A", "1", "--setenv", "B", "x=y", "--setenv", "EMPTY", "", "--setenv", "HOME", "/h", ...rootBind, "--", "/bin/echo", "--", "a b", "--die-with-parent"])
  assert.equal(t.warnings, ['/process/env/3: "junk" is not KEY=VALUE; skipped'])
  assert.equal(t.env, ["A=1", "B=x=y", "EMPTY=", "HOME=/h"])
})

test("HOME, when the config has none, is the user's home in the image's /etc/passwd, else / (as runc does)", () => {
  const passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/srv/app:/bin/sh\nnohome:x:1001:1001:::/bin/sh\n"
  const as = (uid: number) => {
    const c = withLinux({ namespaces: [{ type: "mount" }, { type: "user" }] })
    c.process.user = { uid, gid: uid }
    return tr(c, { passwd }).env
  }
  assert.equal([as(0), as(1000), as(1001), as(4242)], [["PATH=/bin", "HOME=/root"], ["PATH=/bin", "HOME=/srv/app"], ["PATH=/bin", "HOME=/"], ["PATH=/bin", "HOME=/"]])
})

test("root.readonly → --remount-ro / after every mount; root.path is relative to the bundle", () => {
  const t = tr(cfg({ root: { path: "rfs", readonly: true }, mounts: [{ destination: "/proc", type: "proc", source: "proc" }, { destination: "/tmp", type: "tmpfs", source: "tmpfs" }] }))
  const a = t.args
  assert.equal(a.slice(a.indexOf("--bind")), ["--bind", "/b/rfs", "/", "--proc", "/proc", "--tmpfs", "/tmp", "--remount-ro", "/", "--", "sh"])
  assert.equal(bwrapArgs(cfg({ root: { path: "/abs/rootfs" } }), bundleDir, { hostUid: 0 }).args.includes("/abs/rootfs"), true)
})

test("namespaces → --unshare-*, cgroup → --unshare-cgroup-try, --as-pid-1 only with a pid namespace", () => {
  const all = tr(withLinux({ namespaces: ["pid", "network", "ipc", "uts", "mount", "cgroup"].map((type) => ({ type })) }))
  assert.equal(all.args.slice(0, 7), ["--die-with-parent", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try", "--as-pid-1"])
  assert.equal(all.namespaces, ["mount", "ipc", "pid", "network", "uts", "cgroup"])
  const noPid = tr(withLinux({ namespaces: [{ type: "mount" }, { type: "network" }] }))
  assert.equal(noPid.args.includes("--as-pid-1"), false)
  assert.equal(noPid.args.slice(0, 2), ["--die-with-parent", "--unshare-net"])
})

test("namespaces bwrap cannot make: a path to join is unsupported, time is a warning, an unknown type is invalid", () => {
  const t = tr(withLinux({ namespaces: [{ type: "mount" }, { type: "network", path: "/run/netns/x" }, { type: "time" }, { type: "bogus" }] }))
  assert.equal(t.unsupported, ["/linux/namespaces/1: joining the existing network namespace /run/netns/x is not possible with bwrap, which only creates new ones"])
  assert.equal(t.warnings, ["/linux/namespaces/2: bwrap cannot create a time namespace; the container sees the host's clocks"])
  assert.equal(t.invalid, [{ pointer: "/linux/namespaces/3/type", message: 'unknown namespace type "bogus"' }])
  assert.equal(t.args.includes("--unshare-net"), false)
  assert.equal(tr(withLinux({ namespaces: [] })).warnings, ["/linux/namespaces: bwrap always creates a mount namespace"])
})

test("hostname → --hostname with a uts namespace; without one it is a warning and left out", () => {
  const t = tr(withLinux({ namespaces: [{ type: "mount" }, { type: "uts" }] }, { hostname: "box" }))
  assert.equal(t.args.slice(0, 4), ["--die-with-parent", "--unshare-uts", "--hostname", "box"])
  const n = tr(cfg({ hostname: "box" }))
  assert.equal(n.args.includes("--hostname"), false)
  assert.equal(n.warnings, ["/hostname: ignored: setting a hostname needs a uts namespace"])
})

test("user: --uid/--gid in a user namespace; without one, root can only run uid 0", () => {
  const c = withLinux({ namespaces: [{ type: "mount" }, { type: "user" }] })
  c.process.user = { uid: 1000, gid: 100 }
  assert.equal(tr(c).args.slice(0, 6), ["--die-with-parent", "--unshare-user", "--uid", "1000", "--gid", "100"])
  const noUserns = cfg()
  noUserns.process.user = { uid: 1000, gid: 100 }
  const t = tr(noUserns)
  assert.equal(t.unsupported, ["/process/user: bwrap switches to uid 1000/gid 100 only inside a user namespace, where it would still be host uid 0; add a user namespace with mappings, or run as 0"])
  assert.equal(t.args.includes("--uid"), false)
})

test("user: running as non-root adds the user namespace bwrap needs anyway, and says so", () => {
  const t = tr(cfg(), { hostUid: 1234 })
  assert.equal(t.args.slice(0, 6), ["--die-with-parent", "--unshare-user", "--uid", "0", "--gid", "0"])
  assert.equal(t.warnings, ["/linux/namespaces: running as uid 1234: bwrap adds a user namespace where container uid 0 is your uid"])
  assert.equal(t.namespaces, ["mount", "user"])
})

test("uid/gid mappings: one id to the caller is bwrap's own map; to anyone else, or an unmapped user, is unsupported", () => {
  const userns = (uidMappings: Cfg[], gidMappings: Cfg[] = uidMappings) => withLinux({ namespaces: [{ type: "mount" }, { type: "user" }], uidMappings, gidMappings })
  const ok = tr(userns([{ containerID: 0, hostID: 1234, size: 1 }]), { hostUid: 1234 })
  assert.equal(ok.unsupported, [])
  assert.equal(ok.args.slice(0, 6), ["--die-with-parent", "--unshare-user", "--uid", "0", "--gid", "0"])
  assert.equal(ok.idMaps, undefined)
  assert.equal(tr(userns([{ containerID: 0, hostID: 0, size: 1 }]), { hostUid: 1234 }).unsupported, [
    "/linux/uidMappings/0: bwrap maps a container uid only to the uid running it (1234), not to 0",
    "/linux/gidMappings/0: bwrap maps a container gid only to the gid running it (1234), not to 0",
  ])
  const other = userns([{ containerID: 5, hostID: 1234, size: 1 }])
  assert.equal(tr(other, { hostUid: 1234 }).unsupported[0], "/linux/uidMappings/0: process.user.uid 0 is not mapped (only 5 is)")
  assert.equal(tr(cfg({ linux: { namespaces: [{ type: "mount" }], uidMappings: [{ containerID: 0, hostID: 0, size: 1 }] } })).warnings, ["/linux/uidMappings: ignored: there is no user namespace"])
})

test("uid/gid ranges: handed to the runtime as maps (no --uid), and the process id must map to the caller", () => {
  const ranges = [{ containerID: 0, hostID: 1234, size: 1 }, { containerID: 1, hostID: 100000, size: 65536 }]
  const c = withLinux({ namespaces: [{ type: "mount" }, { type: "user" }], uidMappings: ranges, gidMappings: ranges })
  const t = tr(c, { hostUid: 1234 })
  assert.equal(t.unsupported, [])
  assert.equal(t.idMaps, { uid: ranges, gid: ranges })
  assert.equal(t.args.includes("--uid"), false)
  c.process.user = { uid: 33, gid: 33 }
  assert.equal(tr(c, { hostUid: 1234 }).unsupported, [
    "/linux/uidMappings: with id ranges bwrap runs the process as the container uid that maps to its own uid 1234; map process.user.uid 33 to 1234",
    "/linux/gidMappings: with id ranges bwrap runs the process as the container gid that maps to its own gid 1234; map process.user.gid 33 to 1234",
  ])
})

test("capabilities: --cap-drop ALL then effective ∪ permitted ∪ ambient; bounding-only ones dropped with a warning", () => {
  const c = cfg()
  c.process.capabilities = { bounding: ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"], effective: ["CAP_KILL"], permitted: ["CAP_KILL", "CAP_NET_BIND_SERVICE"], ambient: ["CAP_KILL"] }
  const t = tr(c)
  const at = t.args.indexOf("--cap-drop")
  assert.equal(t.args.slice(at, at + 6), ["--cap-drop", "ALL", "--cap-add", "CAP_KILL", "--cap-add", "CAP_NET_BIND_SERVICE"])
  assert.equal(t.warnings, [
    "/process/capabilities: CAP_SYS_ADMIN only in bounding/inheritable: dropped, since bwrap would make them effective",
    "/process/capabilities: CAP_NET_BIND_SERVICE granted in every set (bwrap cannot keep the sets apart)",
  ])
  const same = cfg()
  const set = ["CAP_AUDIT_WRITE", "CAP_KILL"]
  same.process.capabilities = { bounding: set, effective: set, permitted: set, ambient: set }
  assert.equal(tr(same).warnings, [])
})

test("mounts: proc, tmpfs with --perms/--size (k/m/g), /dev tmpfs → --dev, devpts under it skipped, mqueue", () => {
  const t = tr(cfg({
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
      { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
      { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "nodev", "mode=1777", "size=64m"] },
      { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
      { destination: "/run", type: "tmpfs", source: "tmpfs", options: ["size=1g", "ro"] },
      { destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["size=4096"] },
    ],
  }))
  assert.equal(fsOps(t.args), [
    "--proc", "/proc", "--dev", "/dev",
    "--perms", "1777", "--size", String(64 * 1024 * 1024), "--tmpfs", "/dev/shm",
    "--mqueue", "/dev/mqueue",
    "--size", String(1024 ** 3), "--tmpfs", "/run", "--remount-ro", "/run",
    "--size", "4096", "--tmpfs", "/tmp",
  ])
  assert.equal(t.unsupported, [])
  assert.equal(t.warnings, [])
})

test("mounts: devtmpfs on /dev is --dev; a devpts without a /dev first is unsupported", () => {
  assert.equal(fsOps(tr(cfg({ mounts: [{ destination: "/dev", type: "devtmpfs", source: "devtmpfs" }] })).args), ["--dev", "/dev"])
  const t = tr(cfg({ mounts: [{ destination: "/dev/pts", type: "devpts", source: "devpts" }] }))
  assert.equal(fsOps(t.args), [])
  assert.equal(t.unsupported, ["/mounts/0: bwrap mounts a devpts only as part of --dev /dev; add a tmpfs on /dev before it"])
})

test("mounts: sysfs and cgroup become read-only binds of the host's (cgroup once, when /sys holds it), with warnings", () => {
  const cgroup = { destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"] }
  const t = tr(cfg({ mounts: [{ destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] }, cgroup] }))
  assert.equal(fsOps(t.args), ["--ro-bind", "/sys", "/sys"])
  assert.equal(fsOps(tr(cfg({ mounts: [cgroup] })).args), ["--ro-bind", "/sys/fs/cgroup", "/sys/fs/cgroup"])
  assert.equal(t.warnings, [
    "/mounts/0: the host's /sys is bound read-only on /sys: /sys/class/net lists the host's interfaces",
    "/mounts/1: the host's cgroup tree is bound read-only on /sys/fs/cgroup",
  ])
  assert.equal(t.unsupported, [])
})

test("mounts: binds by options; relative sources from the bundle; dev → --dev-bind; runc --rootless's /sys rbind", () => {
  const t = tr(cfg({ mounts: [
    { destination: "/data", type: "bind", source: "data", options: ["rbind", "rw"] },
    { destination: "/conf", type: "none", source: "/etc/app", options: ["rbind", "ro"] },
    { destination: "/dev/fuse", type: "none", source: "/dev/fuse", options: ["bind", "dev"] },
    { destination: "/dev/kvm", type: "none", source: "/dev/kvm", options: ["rbind", "dev", "ro"] },
    { destination: "/sys", type: "none", source: "/sys", options: ["rbind", "nosuid", "noexec", "nodev", "ro"] },
  ] }))
  assert.equal(fsOps(t.args), [
    "--bind", "/b/data", "/data",
    "--ro-bind", "/etc/app", "/conf",
    "--dev-bind", "/dev/fuse", "/dev/fuse",
    "--dev-bind", "/dev/kvm", "/dev/kvm", "--remount-ro", "/dev/kvm",
    "--ro-bind", "/sys", "/sys",
  ])
  assert.equal(t.warnings, ["/mounts/2: bwrap binds recursively: mounts below /dev/fuse show up too"])
  assert.equal(t.unsupported, [])
})

test("mounts bwrap cannot make: noexec (where it matters), unknown types; odd options are warnings", () => {
  const t = tr(cfg({ mounts: [
    { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
    { destination: "/data", type: "bind", source: "/srv/data", options: ["rbind", "noexec", "rprivate", "x-foo"] },
    { destination: "/mnt", type: "overlay", source: "overlay", options: ["lowerdir=/a"] },
    { destination: "/t", type: "tmpfs", source: "tmpfs", options: ["nr_inodes=100", "uid=1000", "size=10%"] },
  ] }))
  assert.equal(t.unsupported, [
    "/mounts/0: bwrap cannot mount /dev/shm noexec: files on it could be executed",
    "/mounts/1: bwrap cannot mount /data noexec: files on it could be executed",
    "/mounts/2: bwrap cannot mount a overlay filesystem (only bind, proc, tmpfs, devtmpfs, mqueue, sysfs, cgroup)",
    "/mounts/3: nr_inodes=100 is not applied: bwrap cannot limit tmpfs inodes",
    "/mounts/3: size=10%: bwrap takes a size in bytes (k/m/g suffixes accepted here), not this",
  ])
  assert.equal(t.warnings, [
    "/mounts/1: rprivate ignored: bwrap makes every mount a slave of the host's",
    "/mounts/1: option x-foo ignored",
    "/mounts/3: uid=1000 ignored: bwrap's tmpfs belongs to the sandbox user",
  ])
  assert.equal(fsOps(t.args), ["--perms", "1777", "--size", "67108864", "--tmpfs", "/dev/shm", "--bind", "/srv/data", "/data", "--tmpfs", "/t"])
})

test("maskedPaths: files → /dev/null, dirs → read-only tmpfs, looked up in the container's view; missing ones skipped", () => {
  const t = tr(withLinux({ maskedPaths: ["/proc/kcore", "/proc/keys", "/proc/acpi", "/sys/firmware", "/etc/secret", "/data/x", "/tmp/y"] }, {
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      { destination: "/sys", type: "sysfs", source: "sysfs", options: ["ro"] },
      { destination: "/data", type: "bind", source: "/srv", options: ["rbind"] },
      { destination: "/tmp", type: "tmpfs", source: "tmpfs" },
    ],
  }), { known: { "/proc/keys": "file", "/proc/acpi": "dir", "/sys/firmware": "dir", "/b/rootfs/etc/secret": "file", "/srv/x": "dir", "/etc/secret": "missing" } })
  assert.equal(fsOps(t.args).slice(10), [
    "--dev-bind", "/dev/null", "/proc/keys",
    "--tmpfs", "/proc/acpi", "--remount-ro", "/proc/acpi",
    "--tmpfs", "/sys/firmware", "--remount-ro", "/sys/firmware",
    "--dev-bind", "/dev/null", "/etc/secret",
    "--tmpfs", "/data/x", "--remount-ro", "/data/x",
  ])
  assert.equal(t.unsupported, [])
})

test("readonlyPaths: bind the container's own file read-only; a mount point is remounted; pid dirs are unsupported", () => {
  const t = tr(withLinux({ readonlyPaths: ["/proc/sys", "/proc/sysrq-trigger", "/etc", "/tmp", "/proc/1/environ", "/nope"] }, {
    mounts: [{ destination: "/proc", type: "proc", source: "proc" }, { destination: "/tmp", type: "tmpfs", source: "tmpfs" }],
  }), { known: { "/proc/sys": "dir", "/b/rootfs/etc": "dir", "/proc/1/environ": "file" } })
  assert.equal(fsOps(t.args), ["--proc", "/proc", "--tmpfs", "/tmp", "--ro-bind", "/proc/sys", "/proc/sys", "--ro-bind", "/b/rootfs/etc", "/etc", "--remount-ro", "/tmp"])
  assert.equal(t.unsupported, ["/linux/readonlyPaths/4: bwrap cannot make /proc/1/environ read-only"])
})

test("readonly paths come before masked ones (runc's order) and both before the root goes read-only", () => {
  const t = tr(withLinux({ readonlyPaths: ["/proc/sys"], maskedPaths: ["/proc/sys/kernel"] }, { root: { path: "rootfs", readonly: true }, mounts: [{ destination: "/proc", type: "proc", source: "proc" }] }), {
    known: { "/proc/sys": "dir", "/proc/sys/kernel": "dir" },
  })
  assert.equal(fsOps(t.args), ["--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys", "--tmpfs", "/proc/sys/kernel", "--remount-ro", "/proc/sys/kernel", "--remount-ro", "/"])
})

test("restrictions bwrap cannot apply are unsupported; harmless differences are warnings", () => {
  const c = withLinux({
    seccomp: { defaultAction: "SCMP_ACT_ERRNO" },
    sysctl: { "net.ipv4.ip_forward": "1" },
    resources: { memory: { limit: 1000000 }, pids: { limit: 10 }, cpu: {}, devices: [{ allow: false, access: "rwm" }] },
    cgroupsPath: "/x",
    devices: [{ path: "/dev/fuse", type: "c", major: 10, minor: 229 }],
    rootfsPropagation: "rslave",
  }, { hooks: { prestart: [{ path: "/bin/true" }] }, domainname: "example.org" })
  Object.assign(c.process, { noNewPrivileges: false, terminal: true, apparmorProfile: "docker-default", selinuxLabel: "system_u:system_r:container_t:s0" })
  c.process.user.umask = 0o027
  const t = tr(c)
  assert.equal(t.unsupported, [
    "/process/apparmorProfile: bwrap cannot apply an AppArmor profile",
    "/process/selinuxLabel: not applied (bwrap's --exec-label is not wired up)",
    "/linux/seccomp: bwrap 0.8 takes only a compiled BPF program; the OCI seccomp profile is not applied",
    "/linux/sysctl: bwrap cannot set sysctls (net.ipv4.ip_forward)",
    "/linux/resources/memory: bwrap creates no cgroup: this limit is not applied",
    "/linux/resources/pids: bwrap creates no cgroup: this limit is not applied",
    "/hooks: bwrap runs no hooks",
  ])
  assert.equal(t.warnings, [
    "/process/noNewPrivileges: bwrap always sets no_new_privs",
    "/process/terminal: bwrap allocates no pseudo-terminal: attached runs share the caller's stdio, detached ones write to the log",
    "/linux/cgroupsPath: ignored: bwrap creates no cgroup; the container stays in the caller's",
    "/linux/devices: not created: bwrap's /dev holds only its standard devices",
    "/linux/rootfsPropagation: ignored: bwrap makes every mount a slave of the host's",
    "/domainname: ignored: bwrap sets only the hostname",
  ])
  // terminal: true means the container may keep the caller's session
  assert.equal(t.args.includes("--new-session"), false)
  assert.equal(t.umask, 0o027)
})

test("rlimits → prlimit and oomScoreAdj → choom, as a prefix bwrap runs under; unknown rlimits are unsupported", () => {
  const c = cfg()
  Object.assign(c.process, {
    rlimits: [{ type: "RLIMIT_NOFILE", soft: 1024, hard: 4096 }, { type: "RLIMIT_CORE", soft: 0, hard: 18446744073709551615 }, { type: "RLIMIT_BOGUS", soft: 1, hard: 1 }],
    oomScoreAdj: 500,
  })
  const t = tr(c)
  assert.equal(t.prefix, ["prlimit", "--nofile=1024:4096", "--core=0:unlimited", "--", "choom", "-n", "500", "--"])
  assert.equal(t.unsupported, ["/process/rlimits/2: unknown or malformed rlimit; bwrap cannot apply it"])
})

test("invalid configs: no process, empty args, relative cwd, no root, relative mount destination", () => {
  assert.equal(tr({ root: { path: "rootfs" } }).invalid.map((v) => v.pointer), ["/process", "/process/args"])
  const t = tr(cfg({ root: {}, process: { args: [], cwd: "rel" }, mounts: [{ destination: "rel", type: "tmpfs" }] }))
  assert.equal(t.invalid.map((v) => v.pointer), ["/process/args", "/process/cwd", "/root/path", "/mounts/0"])
})

test("the stock `runc spec` config maps to bwrap-oci's argv, and only /dev/shm's noexec is unsupported", async () => {
  const dir = tempDir("bwrap-spec")
  const b = await run(makeProbeBundle(dir))
  const t = bwrapArgs(b.readConfig(), dir, { hostUid: 0, hostGid: 0, probe: probeOf({ "/proc/keys": "file", "/proc/acpi": "dir", "/sys/firmware": "dir", "/proc/sys": "dir", "/proc/bus": "dir" }) })
  assert.equal(t.args, [
    "--die-with-parent", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--as-pid-1", "--hostname", "runc",
    "--cap-drop", "ALL", "--cap-add", "CAP_AUDIT_WRITE", "--cap-add", "CAP_KILL", "--cap-add", "CAP_NET_BIND_SERVICE",
    "--chdir", "/", "--clearenv", "--setenv", "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "--setenv", "TERM", "xterm", "--setenv", "HOME", "/root",
    "--bind", path.join(dir, "rootfs"), "/", "--proc", "/proc", "--dev", "/dev",
    "--perms", "1777", "--size", "67108864", "--tmpfs", "/dev/shm", "--mqueue", "/dev/mqueue",
    "--ro-bind", "/sys", "/sys",
    "--ro-bind", "/proc/bus", "/proc/bus", "--ro-bind", "/proc/sys", "/proc/sys",
    "--tmpfs", "/proc/acpi", "--remount-ro", "/proc/acpi", "--dev-bind", "/dev/null", "/proc/keys",
    "--tmpfs", "/sys/firmware", "--remount-ro", "/sys/firmware",
    "--remount-ro", "/", "--", "sh",
  ])
  assert.equal(t.unsupported, ["/mounts/3: bwrap cannot mount /dev/shm noexec: files on it could be executed"])
  assert.equal(t.prefix, ["prlimit", "--nofile=1024:1024", "--"])
})

test("helpers: sizes, signals, and the --args encoding", () => {
  assert.equal([parseSize("65536k"), parseSize("64M"), parseSize("2g"), parseSize("512"), parseSize("10%")], [67108864, 67108864, 2 * 1024 ** 3, 512, undefined])
  assert.equal([parseSignal("TERM"), parseSignal("SIGKILL"), parseSignal("hup"), parseSignal("9"), parseSignal("NOPE"), parseSignal("0")], [15, 9, 1, 9, undefined, undefined])
  assert.equal(splitCommand(["--a", "--", "x", "--", "y"]), { options: ["--a"], command: ["x", "--", "y"] })
  assert.equal(encodeArgs(["--bind", "a b", "/"]).toString("utf8"), "--bind\0a b\0/\0")
})

// ---------------------------------------------------------------------------------------------
// real containers as root
// ---------------------------------------------------------------------------------------------

const isRoot = process.getuid?.() === 0
const work = isRoot ? tempDir("bwrap-run") : ""
const stateRoot = path.join(work, "state")
const warnings: string[] = []
const opts: BubblewrapOptions = { stateRoot, onWarning: (w) => void warnings.push(w) }
const withRt = <A, E>(f: (rt: BubblewrapRuntime) => Effect.Effect<A, E, Spawn>) => run(Effect.flatMap(makeBubblewrapRuntime(opts), f))
const failWith = <A, E>(f: (rt: BubblewrapRuntime) => Effect.Effect<A, E, Spawn>) => failure(Effect.flatMap(makeBubblewrapRuntime(opts), f))
let bundles = 0

/** A fresh probe bundle with an rw /out (host dir) to report through, fully supported by bwrap. */
const probe = async (script: string, edit: (c: Record<string, any>) => void = () => {}) => {
  const dir = path.join(work, `b${++bundles}`)
  mkdirSync(dir)
  const b = await run(makeProbeBundle(dir))
  mkdirSync(path.join(dir, "out"))
  b.patch((c) => {
    c.process.args = ["sh", "-c", `{ ${script}\n} >/out/o 2>&1`]
    c.process.terminal = false
    // the one thing in the stock spec bwrap cannot do
    c.mounts = c.mounts.map((m: any) => (m.destination === "/dev/shm" ? { ...m, options: m.options.filter((o: string) => o !== "noexec") } : m))
    c.mounts.push({ destination: "/out", type: "bind", source: "out", options: ["rbind", "rw"] })
    edit(c)
  })
  const out = () => (existsSync(path.join(dir, "out", "o")) ? readFileSync(path.join(dir, "out", "o"), "utf8") : "")
  return { b, dir, out }
}
const attached = async (p: { dir: string }, name = `a${bundles}`) => withRt((rt) => rt.runAttached({ bundle: p.dir, name }))

test("root: a stock runc spec is refused naming what bwrap cannot do, and nothing is left behind", async () => {
  if (!isRoot) return
  const dir = path.join(work, "stock")
  mkdirSync(dir)
  await run(makeProbeBundle(dir))
  const e = await failWith((rt) => rt.runAttached({ bundle: dir, name: "stock" }))
  assert.is((e as { _tag: string })._tag, "SpecInvalid")
  assert.match((e as Error).message, /\/mounts\/3: bwrap cannot mount \/dev\/shm noexec/)
  assert.match((e as Error).message, /allowUnsupported/)
  assert.is(existsSync(path.join(stateRoot, "stock")), false)
})

test("root: args, cwd, env on a clean environment (the caller's is not inherited), hostname, uid, exit code", async () => {
  if (!isRoot) return
  process.env.SC_BWRAP_LEAK = "leaked"
  const p = await probe('echo "args:$0:$1"; pwd; echo "env:$PROBE:${SC_BWRAP_LEAK:-unset}"; hostname; id -u; exit 7', (c) => {
    c.process.args.push("zero", "first")
    c.process.cwd = "/tmp"
    c.process.env.push("PROBE=hello world")
    c.hostname = "probe-host"
  })
  const code = await attached(p)
  delete process.env.SC_BWRAP_LEAK
  assert.is(code, 7)
  assert.is(p.out(), "args:zero:first\n/tmp\nenv:hello world:unset\nprobe-host\n0\n")
  assert.equal(readdirSync(stateRoot).filter((n) => n === `a${bundles}`), [], "an attached run forgets its state")
})

test("root: the root is read-only, tmpfs and rw binds are writable, ro binds are not", async () => {
  if (!isRoot) return
  const p = await probe("touch /rootfile && echo root-rw || echo root-ro; touch /tmp/t && echo tmp-rw; touch /out/w && echo out-rw; touch /ro/x && echo ro-rw || echo ro-ro; cat /ro/f; grep ' /tmp ' /proc/mounts | cut -d' ' -f3", (c) => {
    c.mounts.push({ destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["size=1m", "mode=1777"] })
    c.mounts.push({ destination: "/ro", type: "bind", source: "rodir", options: ["rbind", "ro"] })
  })
  mkdirSync(path.join(p.dir, "rodir"))
  writeFileSync(path.join(p.dir, "rodir", "f"), "from the host\n")
  assert.is(await attached(p), 0)
  assert.is(p.out().replace(/touch: [^\n]*\n/g, ""), "root-ro\ntmp-rw\nout-rw\nro-ro\nfrom the host\ntmpfs\n")
  assert.is(existsSync(path.join(p.dir, "out", "w")), true)
  assert.is(existsSync(path.join(p.dir, "rodir", "x")), false)
})

test("root: a private network namespace has only lo; masked /proc files read empty; rlimits apply", async () => {
  if (!isRoot) return
  const p = await probe("grep -c : /proc/net/dev; grep -o 'lo:' /proc/net/dev; wc -c < /proc/keys 2>&1 || cat /proc/keys | wc -c; grep 'open files' /proc/self/limits", (c) => {
    c.process.rlimits = [{ type: "RLIMIT_NOFILE", soft: 256, hard: 512 }]
  })
  await run(Effect.flatMap(Spawn, (s) => s.run(["ln", "-s", "busybox", path.join(p.b.rootfs, "bin", "wc")])))
  assert.is(await attached(p), 0)
  const lines = p.out().split("\n")
  assert.is(lines[0], "1", "one interface in /proc/net/dev")
  assert.is(lines[1], "lo:")
  if (existsSync("/proc/keys")) assert.is(lines[2]?.trim(), "0", "masked /proc/keys reads as empty")
  assert.match(p.out(), /Max open files\s+256\s+512/)
})

test("root: SIGTERM to us is forwarded to an attached container, which exits with its own code", async () => {
  if (!isRoot) return
  const p = await probe("trap 'echo got TERM; exit 42' TERM; echo up; while :; do sleep 0.05; done")
  const name = `a${bundles}`
  const noop = () => {}
  process.on("SIGTERM", noop) // never let the test process itself die of it
  try {
    const running = attached(p, name)
    const up = await withRt((rt) => Effect.gen(function* () {
      for (let i = 0; i < 200; i++) {
        const s = yield* rt.list()
        if (s.some((c) => c.name === name && c.status === "running") && existsSync(path.join(p.dir, "out", "o")) && p.out().includes("up")) return true
        yield* Effect.sleep("20 millis")
      }
      return false
    }))
    assert.ok(up, "the container came up")
    process.kill(process.pid, "SIGTERM")
    assert.is(await running, 42)
    assert.is(p.out(), "up\ngot TERM\n")
  } finally {
    process.off("SIGTERM", noop)
  }
})

test("root: exec with LD_PRELOAD in the image's environment: the host's nsenter never loads it, the command inside still gets it", async () => {
  if (!isRoot) return
  // a library the host's loader would run as us, had nsenter been started with the image's environment
  const marker = path.join(os.tmpdir(), `sc-preload-${process.pid}`)
  const p = await probe("x", (c) => {
    c.process.args = ["sh", "-c", "while :; do sleep 0.05; done"]
    c.process.env.push(`LD_PRELOAD=${marker}.so`, "LD_LIBRARY_PATH=/opt/lib", "PLAIN=kept")
  })
  const r = await withRt((rt) => Effect.gen(function* () {
    yield* rt.runDetached({ bundle: p.dir, name: "preload" })
    const ex = yield* rt.exec("preload", ["sh", "-c", "echo $LD_PRELOAD $LD_LIBRARY_PATH $PLAIN"])
    yield* rt.kill("preload", "KILL")
    yield* stoppedWithin(rt, "preload")
    yield* rt.delete("preload")
    return ex
  }))
  assert.is(r.exitCode, 0, r.stderr)
  assert.is(r.stdout, `${marker}.so /opt/lib kept\n`, "set inside, by the container's env(1)")
  // the host's loader names a preload it could not open on stderr: nothing of the kind
  assert.not.match(r.stderr, /ld\.so|LD_PRELOAD/, r.stderr)
})

test("root: detached: logs to BUNDLE/NAME.log, state.json, list/state, exec sees hostname/env/cwd, TERM stops it, delete forgets it", async () => {
  if (!isRoot) return
  const p = await probe("x", (c) => {
    c.process.args = ["sh", "-c", "trap 'echo bye; exit 0' TERM; echo hello-log; while :; do sleep 0.05; done"]
    c.hostname = "detached-host"
    c.process.env.push("PROBE=from-config")
    c.process.cwd = "/tmp"
  })
  const r = await withRt((rt) => Effect.gen(function* () {
    const started = yield* rt.runDetached({ bundle: p.dir, name: "det" })
    const stateJson = JSON.parse(readFileSync(path.join(stateRoot, "det", "state.json"), "utf8"))
    const bwrapCmdline = readFileSync(`/proc/${stateJson.bwrapPid}/cmdline`, "utf8").split("\0")
    const missing = yield* rt.exec("det", ["no-such-command"])
    const listed = yield* rt.list()
    const ex = yield* rt.exec("det", ["sh", "-c", "hostname; pwd"])
    const env = yield* rt.exec("det", ["env"])
    yield* rt.kill("det", "TERM")
    const status = yield* stoppedWithin(rt, "det")
    yield* rt.delete("det")
    return { started, stateJson, bwrapCmdline, missing, listed, ex, env, status, after: yield* rt.list() }
  }))
  assert.is(r.started.status, "running")
  assert.ok(r.started.pid > 1)
  assert.equal(r.listed, [r.started])
  assert.is(r.stateJson.name, "det")
  assert.is(r.stateJson.pid, r.started.pid)
  assert.is(r.stateJson.bundle, p.dir)
  assert.ok(r.stateJson.bwrapPid > 1 && r.stateJson.bwrapPid !== r.stateJson.pid, "bwrap's own pid is recorded too")
  assert.match(r.stateJson.pidStartTime, /^\d+$/)
  assert.equal([path.basename(r.bwrapCmdline[0] ?? ""), ...r.bwrapCmdline.slice(1, 5)], ["bwrap", "--args", "4", "--json-status-fd", "3"], "options come through --args")
  assert.not.ok(r.bwrapCmdline.some((a) => a.includes("from-config")), "the env is not on bwrap's command line")
  assert.is(r.missing.exitCode, 127)
  assert.ok(!Number.isNaN(Date.parse(r.stateJson.created)))
  assert.is(r.ex.exitCode, 0)
  assert.is(r.ex.stdout, "detached-host\n/tmp\n")
  assert.equal(r.env.stdout.trimEnd().split("\n").sort(), ["HOME=/root", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PROBE=from-config", "TERM=xterm"], "exactly the config's env, and HOME")
  assert.is(r.status, "stopped")
  assert.equal(r.after, [])
  assert.is(existsSync(path.join(stateRoot, "det")), false)
  assert.is(readFileSync(path.join(p.dir, "det.log"), "utf8"), "hello-log\nbye\n")
})

/** Polls state until stopped (or 2 s); resolves with the last status. */
const stoppedWithin = (rt: BubblewrapRuntime, name: string) =>
  Effect.gen(function* () {
    let status = (yield* rt.state(name)).status
    for (let i = 0; i < 100 && status !== "stopped"; i++) {
      yield* Effect.sleep("20 millis")
      status = (yield* rt.state(name)).status
    }
    return status
  })

test("root: kill takes names and numbers; a plain sleep as pid 1 ignores TERM (as under runc) but not KILL", async () => {
  if (!isRoot) return
  const p = await probe("x", (c) => void (c.process.args = ["sleep", "1000"]))
  const r = await withRt((rt) => Effect.gen(function* () {
    yield* rt.runDetached({ bundle: p.dir, name: "sleeper" })
    yield* rt.kill("sleeper", "SIGTERM")
    yield* Effect.sleep("200 millis")
    const afterTerm = (yield* rt.state("sleeper")).status
    const badSignal = yield* Effect.flip(rt.kill("sleeper", "NOPE"))
    const notForced = yield* Effect.flip(rt.delete("sleeper"))
    yield* rt.kill("sleeper", "9")
    const afterKill = yield* stoppedWithin(rt, "sleeper")
    const notRunning = yield* Effect.flip(rt.kill("sleeper", "KILL"))
    yield* rt.delete("sleeper")
    return { afterTerm, badSignal, notForced, afterKill, notRunning }
  }))
  assert.is(r.afterTerm, "running")
  assert.match(r.badSignal.message, /unknown signal "NOPE"/)
  assert.match(r.notForced.message, /is running \(pid \d+\); kill it first or delete with force/)
  assert.is(r.afterKill, "stopped")
  assert.match(r.notRunning.message, /container sleeper is not running/)
})

test("root: a name in use is ContainerExists; unknown names are ContainerNotFound; delete force stops and forgets", async () => {
  if (!isRoot) return
  const p = await probe("x", (c) => void (c.process.args = ["sleep", "1000"]))
  const r = await withRt((rt) => Effect.gen(function* () {
    const first = yield* rt.runDetached({ bundle: p.dir, name: "taken" })
    const again = yield* Effect.flip(rt.runDetached({ bundle: p.dir, name: "taken" }))
    const attachedAgain = yield* Effect.flip(rt.runAttached({ bundle: p.dir, name: "taken" }))
    const missing = yield* Effect.all([rt.state("nope"), rt.kill("nope"), rt.delete("nope"), rt.exec("nope", ["true"]), rt.state("../etc")].map((e) => Effect.flip(e)))
    yield* rt.delete("taken", { force: true })
    return { first, again, attachedAgain, missing, after: yield* rt.list() }
  }))
  assert.is(r.again._tag, "ContainerExists")
  assert.is(r.attachedAgain._tag, "ContainerExists")
  assert.match(r.again.message, /a container named taken already exists \(bwrap\)/)
  assert.equal(r.missing.map((e) => e._tag), ["ContainerNotFound", "ContainerNotFound", "ContainerNotFound", "ContainerNotFound", "ContainerNotFound"])
  assert.equal(r.after, [])
  let gone = false
  for (let i = 0; i < 50 && !gone; i++) {
    gone = !existsSync(`/proc/${r.first.pid}`) || readFileSync(`/proc/${r.first.pid}/stat`, "utf8").split(") ")[1]?.startsWith("Z") === true
    if (!gone) await new Promise((res) => setTimeout(res, 20))
  }
  assert.ok(gone, "delete --force killed the container")
})

test("root: stale state: a dead pid, or a live pid that started at another time, lists as stopped", async () => {
  if (!isRoot) return
  const fake = (name: string, pid: number, pidStartTime: string) => {
    mkdirSync(path.join(stateRoot, name), { recursive: true })
    writeFileSync(path.join(stateRoot, name, "state.json"), JSON.stringify({
      name, runtime: "bwrap", pid, bwrapPid: pid, pidStartTime, bundle: "/nowhere", created: "2020-01-01T00:00:00.000Z",
      status: "running", attached: false, namespaces: ["mount"], env: [], user: { uid: 0, gid: 0 }, cwd: "/", userns: false,
    }))
  }
  const dead = Number((await sh(["sh", "-c", "echo $$"])).trim())
  fake("stale-dead", dead, "1")
  fake("stale-reused", process.pid, "1") // our pid is alive, but did not start at tick 1
  const r = await withRt((rt) => Effect.gen(function* () {
    const listed = yield* rt.list()
    const exec = yield* Effect.flip(rt.exec("stale-reused", ["true"]))
    const kill = yield* Effect.flip(rt.kill("stale-reused", "KILL"))
    yield* rt.delete("stale-dead")
    yield* rt.delete("stale-reused")
    return { listed, exec, kill }
  }))
  assert.equal(r.listed, [
    { name: "stale-dead", runtime: "bwrap", pid: 0, status: "stopped", bundle: "/nowhere" },
    { name: "stale-reused", runtime: "bwrap", pid: 0, status: "stopped", bundle: "/nowhere" },
  ])
  assert.match(r.exec.message, /not running/)
  assert.match(r.kill.message, /not running/, "never signals a pid that is not the container any more")
})

test("root: a sandbox bwrap cannot set up fails runDetached with bwrap's message, and leaves no state", async () => {
  if (!isRoot) return
  const p = await probe("x", (c) => {
    c.process.args = ["sleep", "1000"]
    c.mounts.push({ destination: "/data", type: "bind", source: "/nonexistent-sc-bwrap", options: ["rbind"] })
  })
  const e = await failWith((rt) => rt.runDetached({ bundle: p.dir, name: "broken" }))
  assert.is((e as { _tag: string })._tag, "CommandFailed")
  assert.match((e as Error).message, /bwrap: Can't find source path \/nonexistent-sc-bwrap/)
  assert.is(existsSync(path.join(stateRoot, "broken")), false)
})

test("root: an attached run bwrap cannot set up ends at once with bwrap's exit code, and leaves no state", async () => {
  if (!isRoot) return
  const p = await probe("true", (c) => void c.mounts.push({ destination: "/data", type: "bind", source: "/nonexistent-sc-bwrap", options: ["rbind"] }))
  const started = Date.now()
  assert.is(await attached(p, "broken-attached"), 1)
  assert.ok(Date.now() - started < 5_000, "does not wait for a child pid that never comes")
  assert.is(existsSync(path.join(stateRoot, "broken-attached")), false)
})

test("root: allowUnsupported runs the stock spec and the user sees what was not applied", async () => {
  if (!isRoot) return
  const dir = path.join(work, "stock-allowed")
  mkdirSync(dir)
  const b = await run(makeProbeBundle(dir))
  b.patch((c) => {
    c.process.args = ["sh", "-c", "exit 3"]
  })
  warnings.length = 0
  const code = await withRt((rt) => rt.runAttached({ bundle: dir, name: "allowed", allowUnsupported: true }))
  assert.is(code, 3)
  assert.ok(warnings.includes("NOT APPLIED (allowUnsupported): /mounts/3: bwrap cannot mount /dev/shm noexec: files on it could be executed"), warnings.join("\n"))
  assert.ok(warnings.includes("/process/terminal: bwrap allocates no pseudo-terminal: attached runs share the caller's stdio, detached ones write to the log"))
})

test("root: subid-style ranges: the runtime writes the maps, and files the container chowns land on the range", async () => {
  if (!isRoot) return
  const ranges = [{ containerID: 0, hostID: 0, size: 1 }, { containerID: 1, hostID: 200000, size: 65536 }]
  const p = await probe("id -u; cat /proc/self/uid_map; touch /out/f && chown 5:5 /out/f && echo chowned", (c) => {
    c.linux.namespaces.push({ type: "user" })
    c.linux.uidMappings = ranges
    c.linux.gidMappings = ranges
    for (const set of ["bounding", "effective", "permitted", "ambient"]) c.process.capabilities[set].push("CAP_CHOWN")
  })
  chmodSync(path.join(p.dir, "out"), 0o777)
  assert.is(await attached(p), 0, p.out())
  assert.match(p.out(), /^0\n\s+0\s+0\s+1\n\s+1\s+200000\s+65536\nchowned\n$/)
  const st = readFileSync(path.join(p.dir, "out", "o")) && (await sh(["stat", "-c", "%u:%g", path.join(p.dir, "out", "f")])).trim()
  assert.is(st, "200004:200004", "container uid 5 is host uid 200004")
})

// ---------------------------------------------------------------------------------------------
// rootless: a real non-root user runs the runtime itself (this file in child mode)
// ---------------------------------------------------------------------------------------------

const testUser = `sc-bwrap-test-${Math.random().toString(36).slice(2, 8)}`
let userMade = false
let userRuntimeDir = ""

test("rootless: a fresh user runs a bundle: uid 0 inside is them, a clean env, read-only root, detached + exec, subuid ranges", async () => {
  if (!isRoot) return
  await sh(["useradd", "-m", "-s", "/bin/sh", testUser])
  userMade = true
  const uid = Number((await sh(["id", "-u", testUser])).trim())
  const gid = Number((await sh(["id", "-g", testUser])).trim())
  const home = (await sh(["getent", "passwd", testUser])).split(":")[5] ?? ""
  const sub = (file: string) => {
    const line = readFileSync(file, "utf8").split("\n").find((l) => l.startsWith(`${testUser}:`))
    return line ? Number(line.split(":")[1]) : undefined
  }
  const subuid = sub("/etc/subuid")
  const subgid = sub("/etc/subgid")
  assert.ok(subuid !== undefined && subgid !== undefined, "useradd gave the user subordinate ids")

  // the user's own copies: a rootless spec mapping container root to them, and one with ranges
  const bundle = path.join(home, "bundle")
  const rangesBundle = path.join(home, "ranges")
  const detachedBundle = path.join(home, "detached")
  for (const [dir, script, uidMaps, gidMaps] of [
    [bundle, 'id -u; id -g; echo "env:$PROBE:${HOME:-nohome}"; touch / 2>/dev/null && echo root-rw || echo root-ro; cat /proc/self/uid_map', [{ containerID: 0, hostID: uid, size: 1 }], [{ containerID: 0, hostID: gid, size: 1 }]],
    [detachedBundle, "sleep 1000", [{ containerID: 0, hostID: uid, size: 1 }], [{ containerID: 0, hostID: gid, size: 1 }]],
    [rangesBundle, "id -u; touch /out/r && chown 7:7 /out/r && echo chowned", [{ containerID: 0, hostID: uid, size: 1 }, { containerID: 1, hostID: subuid!, size: 65536 }], [{ containerID: 0, hostID: gid, size: 1 }, { containerID: 1, hostID: subgid!, size: 65536 }]],
  ] as const) {
    mkdirSync(dir)
    const b = await run(makeProbeBundle(dir, { rootless: true }))
    mkdirSync(path.join(dir, "out"))
    b.patch((c) => {
      c.process.args = ["sh", "-c", `{ ${script}\n} >/out/o 2>&1`]
      c.process.terminal = false
      c.process.env.push("PROBE=rootless")
      c.linux.uidMappings = uidMaps
      c.linux.gidMappings = gidMaps
      for (const set of ["bounding", "effective", "permitted", "ambient"]) c.process.capabilities[set].push("CAP_CHOWN")
      c.mounts = c.mounts.map((m: any) => (m.destination === "/dev/shm" ? { ...m, options: m.options.filter((o: string) => o !== "noexec") } : m))
      c.mounts.push({ destination: "/out", type: "bind", source: "out", options: ["rbind", "rw"] })
    })
  }
  await sh(["chown", "-R", `${uid}:${gid}`, home])
  userRuntimeDir = tempDir("bwrap-user-run") // not under work: the user must be able to reach it
  chownSync(userRuntimeDir, uid, gid)

  const job: ChildJob = { bundle, rangesBundle, detachedBundle }
  const res = await runFileAsUser({ file: thisFile, user: testUser, home, runtimeDir: userRuntimeDir, jobVar: "SC_BWRAP_CHILD", job })
  assert.is(res.error, undefined, res.error)
  assert.is(res.uid, uid)
  assert.is(res.stateRoot, path.join(userRuntimeDir, "syscontainers", "bwrap"))
  assert.is(res.attached, 0)
  assert.is(readFileSync(path.join(bundle, "out", "o"), "utf8").replace(/\s+/g, " ").trim(), `0 0 env:rootless:/root root-ro 0 ${uid} 1`)
  assert.is(res.detached, "running")
  assert.equal(res.exec, { exitCode: 0, stdout: "0\nrunc\nrootless\n", stderr: "" })
  assert.is(res.afterKill, "stopped")
  assert.is(res.ranges, 0)
  assert.is(readFileSync(path.join(rangesBundle, "out", "o"), "utf8"), "0\nchowned\n")
  assert.is((await sh(["stat", "-c", "%u:%g", path.join(rangesBundle, "out", "r")])).trim(), `${subuid! + 6}:${subgid! + 6}`, "container uid 7 is the user's 7th subuid")
  assert.is(res.left, 0)
})

/** Kills (by pid, after checking it is still the same process) every container a state root records, and forgets it. */
const reap = async (root: string) => {
  if (!existsSync(root)) return
  for (const name of readdirSync(root)) {
    try {
      const s = JSON.parse(readFileSync(path.join(root, name, "state.json"), "utf8"))
      const stat = readFileSync(`/proc/${s.pid}/stat`, "utf8")
      if (stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] === s.pidStartTime) process.kill(s.pid, "SIGKILL")
    } catch {
      // gone already, or never started
    }
  }
}

test.after(async () => {
  if (!isRoot) return
  await reap(stateRoot)
  if (userRuntimeDir) await reap(path.join(userRuntimeDir, "syscontainers", "bwrap"))
  if (userMade) {
    await new Promise((res) => setTimeout(res, 200))
    await shAny(["userdel", "-r", testUser])
  }
  cleanupTemps()
})

const childJob = process.env.SC_BWRAP_CHILD
if (childJob) await childMain(JSON.parse(childJob) as ChildJob)
else test.run()
