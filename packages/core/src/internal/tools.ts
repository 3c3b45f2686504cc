// tools: where a tool is on PATH, and which Debian package ships each tool we drive (ToolMissing's advice).
import { accessSync, constants } from "node:fs"
import path from "node:path"
const packages: Readonly<Record<string, string>> = {
  ostree: "ostree",
  skopeo: "skopeo",
  runc: "runc",
  crun: "crun",
  bwrap: "bubblewrap",
  umoci: "umoci",
  newuidmap: "uidmap",
  newgidmap: "uidmap",
  unshare: "util-linux",
  nsenter: "util-linux",
  flock: "util-linux",
  "docker-registry": "docker-registry",
  "redis-cli": "redis-tools",
  etcdctl: "etcd-client",
  curl: "curl",
  tar: "tar",
  "systemd-analyze": "systemd",
}

/** The Debian package to install for `tool` (its own name when we do not know better). */
export const debianPackageOf = (tool: string): string => packages[tool.split("/").pop() ?? tool] ?? tool

/**
 * The path of an executable `tool` on `searchPath` (default: our PATH, then the usual sbin and bin
 * directories); undefined when there is none. A name with a slash is its own path.
 */
export const which = (tool: string, searchPath?: string): string | undefined => {
  if (tool.includes("/")) return tool
  const dirs = searchPath !== undefined ? searchPath.split(":") : [...(process.env["PATH"] ?? "").split(":"), "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
  for (const dir of dirs.filter(Boolean)) {
    const candidate = path.join(dir, tool)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // next
    }
  }
  return undefined
}
