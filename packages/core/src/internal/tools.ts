// tools: which Debian package ships each tool we drive, for ToolMissing's advice.
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
  "docker-registry": "docker-registry",
  "redis-cli": "redis-tools",
  etcdctl: "etcd-client",
  curl: "curl",
  tar: "tar",
  "systemd-analyze": "systemd",
}

/** The Debian package to install for `tool` (its own name when we do not know better). */
export const debianPackageOf = (tool: string): string => packages[tool.split("/").pop() ?? tool] ?? tool
