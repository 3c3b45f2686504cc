// Bubblewrap: config.json → bwrap argv mappings, checked argument by argument.
import { test } from "uvu"
import * as assert from "uvu/assert"
import path from "node:path"
import { bwrapArgs, encodeArgs, parseSize, splitCommand, type PathKind } from "../packages/core/src/internal/bwrapArgs.ts"
import { cleanupTemps, run, tempDir } from "./fixtures/harness.ts"
import { makeProbeBundle } from "./fixtures/probeBundle.ts"

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
const tr = (c: Cfg, o: { hostUid?: number; known?: Record<string, PathKind> } = {}) =>
  bwrapArgs(c, bundleDir, { hostUid: o.hostUid ?? 0, hostGid: o.hostUid ?? 0, probe: probeOf(o.known ?? {}) })
const head = ["--die-with-parent"]
const tailOf = ["--new-session", "--cap-drop", "ALL", "--chdir", "/", "--clearenv", "--setenv", "PATH", "/bin"]
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
  const t = tr(cfg({ process: { args: ["/bin/echo", "--", "a b", "--die-with-parent"], cwd: "/srv", env: ["A=1", "B=x=y", "EMPTY=", "junk"], terminal: false } }))
  assert.equal(t.args, [...head, "--new-session", "--cap-drop", "ALL", "--chdir", "/srv", "--clearenv", "--setenv", "A", "1", "--setenv", "B", "x=y", "--setenv", "EMPTY", "", ...rootBind, "--", "/bin/echo", "--", "a b", "--die-with-parent"])
  assert.equal(t.warnings, ['/process/env/3: "junk" is not KEY=VALUE; skipped'])
  assert.equal(t.env, ["A=1", "B=x=y", "EMPTY="])
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

test("mounts: sysfs and cgroup become read-only binds of the host's, with warnings", () => {
  const t = tr(cfg({ mounts: [
    { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
    { destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"] },
  ] }))
  assert.equal(fsOps(t.args), ["--ro-bind", "/sys", "/sys", "--ro-bind", "/sys/fs/cgroup", "/sys/fs/cgroup"])
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
    "--chdir", "/", "--clearenv", "--setenv", "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "--setenv", "TERM", "xterm",
    "--bind", path.join(dir, "rootfs"), "/", "--proc", "/proc", "--dev", "/dev",
    "--perms", "1777", "--size", "67108864", "--tmpfs", "/dev/shm", "--mqueue", "/dev/mqueue",
    "--ro-bind", "/sys", "/sys", "--ro-bind", "/sys/fs/cgroup", "/sys/fs/cgroup",
    "--ro-bind", "/proc/bus", "/proc/bus", "--ro-bind", "/proc/sys", "/proc/sys",
    "--tmpfs", "/proc/acpi", "--remount-ro", "/proc/acpi", "--dev-bind", "/dev/null", "/proc/keys",
    "--tmpfs", "/sys/firmware", "--remount-ro", "/sys/firmware",
    "--remount-ro", "/", "--", "sh",
  ])
  assert.equal(t.unsupported, ["/mounts/3: bwrap cannot mount /dev/shm noexec: files on it could be executed"])
  assert.equal(t.prefix, ["prlimit", "--nofile=1024:1024", "--"])
})

test("helpers: sizes and the --args encoding", () => {
  assert.equal([parseSize("65536k"), parseSize("64M"), parseSize("2g"), parseSize("512"), parseSize("10%")], [67108864, 67108864, 2 * 1024 ** 3, 512, undefined])
  assert.equal(splitCommand(["--a", "--", "x", "--", "y"]), { options: ["--a"], command: ["x", "--", "y"] })
  assert.equal(encodeArgs(["--bind", "a b", "/"]).toString("utf8"), "--bind\0a b\0/\0")
})

test.after(() => cleanupTemps())

test.run()
