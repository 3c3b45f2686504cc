// The seed's second walkthrough: nginx from the same repo as redis, run by bubblewrap (or runc, crun).
import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import path from "node:path"
import type { RuntimeName } from "@syscontainers/core/ContainerRuntime"
import type { LayerOrder } from "@syscontainers/core/Layers"
import type { Edit } from "@syscontainers/core/RuntimeSpec"
import { Containers, Effect, Spawn, checkoutLayers, dryRunPreamble, generateSpec, initRepo, isMain, patchSpec, portMustBeFree, pullImage, recipe, runCommand, runContainer } from "@syscontainers/dsl"
import { withOfflineMirror } from "./offline-mirror.ts"

const repoDir = (p: { workdir: string }) => path.join(p.workdir, "ostree")
const bundleDir = (p: { workdir: string }) => path.join(p.workdir, "cont2")

export const nginxRecipe = recipe({
  name: "nginx",
  description: "Run nginx from docker://nginx:alpine out of the same ostree repo as redis: only the layers redis does not already have are imported, and bubblewrap runs it.",
  options: {
    name: { type: "string", default: "nginx", describe: "the container's name" },
    port: { type: "number", default: 8080, describe: "the port nginx listens on, on 127.0.0.1" },
    runtime: { type: "string", default: "bwrap", choices: ["bwrap", "runc", "crun"], describe: "the OCI runtime" },
    order: { type: "string", default: "union", choices: ["union", "union-add"], describe: "check layers out bottom-up (union) or top-down (union-add)" },
    detach: { type: "boolean", default: false, describe: "leave nginx running after proving it works" },
  },
  workdir: "work/walkthrough",
})
  .step("init", initRepo({
    title: "Open the repository redis's walkthrough made (or create it)",
    explain: "nginx goes into the same ostree repository as redis. Both images start from the same base layer, and ostree stores every file once, whatever image brought it.",
    dir: repoDir,
  }))
  .step("size", {
    title: "Measure the repository before the pull",
    explain: "`du` of the repository now, to compare after the pull.",
    shell: () => ["du -sb ostree"],
    run: (c) => du(repoDir(c)),
  })
  .step("pull", pullImage({
    title: "Pull docker://nginx:alpine into the same repo",
    explain: "The layers already in the repo (the base layer redis brought) are not fetched into ostree again: a layer counts as present when its `ociimage/<digest>` ref carries its size and uncompressed digest.",
    repo: (d) => d.init,
    repoDir,
    from: () => "docker://nginx:alpine",
    name: () => "nginx",
  }))
  .step("growth", {
    title: "How much the repository grew",
    explain: "The repository grows by less than nginx's layers: the shared base layer and any file that redis's layers already hold are stored once.",
    shell: () => ["du -sb ostree"],
    run: (c) =>
      Effect.gen(function* () {
        const after = yield* du(repoDir(c))
        const pulled = c.results.pull
        const layerBytes = pulled.image.manifest.layers.reduce((n, l) => n + l.size, 0)
        const text = `repo grew by ${after - c.results.size} bytes; nginx's layers are ${layerBytes} bytes (${pulled.layersReused} of ${pulled.image.manifest.layers.length} layers, ${pulled.bytesReused} bytes, reused)`
        c.emit({ kind: "excerpt", label: "reuse", text })
        return { before: c.results.size, after, layerBytes }
      }),
  })
  .step("checkout", checkoutLayers({
    title: "Check nginx out into cont2/",
    explain: "The same hardlinked checkout as redis: files the two images share are the very same inodes in both bundles.",
    image: (d) => d.pull.image,
    imageName: () => "nginx",
    repoDir,
    bundle: bundleDir,
    order: (p) => p.options.order as LayerOrder,
  }))
  .step("spec", generateSpec({
    title: "A rootless runtime spec",
    explain: "`runc spec --rootless`, as for redis; bubblewrap reads the same config.json.",
    bundle: bundleDir,
    rootless: () => true,
  }))
  .step("configure", {
    title: "nginx's configuration and pages, from the bundle",
    explain:
      "The root filesystem is read-only (it is hardlinked into the repo), so what we change lives beside it in the bundle: a copy of the image's nginx.conf listening on the port you chose, and the html directory, both bound into the container. The image's config switches workers to the `nginx` user; in a rootless container only root (you) is mapped, so the copy says `user root;`, which inside the user namespace is you and nothing more.",
    shell: (p) => [
      "mkdir -p cont2/html",
      "cp -r cont2/rootfs/usr/share/nginx/html/. cont2/html/",
      `sed -e 's/^user .*;/user root;/' -e 's/listen [^;]*;/listen 127.0.0.1:${p.options.port};/' cont2/rootfs/etc/nginx/nginx.conf > cont2/nginx.conf`,
    ],
    run: (c) =>
      Effect.sync(() => {
        const b = bundleDir(c)
        mkdirSync(path.join(b, "html"), { recursive: true })
        cpSync(path.join(b, "rootfs/usr/share/nginx/html"), path.join(b, "html"), { recursive: true, dereference: true })
        const conf = readFileSync(path.join(b, "rootfs/etc/nginx/nginx.conf"), "utf8")
          .replace(/^user .*;/m, "user root;")
          .replace(/listen [^;]*;/g, `listen 127.0.0.1:${c.options.port};`)
        writeFileSync(path.join(b, "nginx.conf"), conf)
        c.emit({ kind: "excerpt", label: "cont2/nginx.conf (listen)", text: conf.split("\n").filter((l) => /listen|^user/.test(l)).join("\n") })
        return path.join(b, "nginx.conf")
      }),
  })
  .step("patch", patchSpec({
    title: "Patch config.json for nginx",
    explain:
      "Args, env and working directory from the image. nginx needs more than the bare rootless defaults: CAP_CHOWN, CAP_SETUID and CAP_SETGID (it switches its worker's user and owns its temp directories), writable /var/cache/nginx, /var/lib/nginx, /var/log/nginx and /run (tmpfs), the config and the pages bound from the bundle, the host's network so the host can reach it on 127.0.0.1, and /dev/shm without `noexec`: bubblewrap cannot mount it noexec and refuses to pretend it did, so we choose it here, in the open, for every runtime.",
    bundle: bundleDir,
    repoDir,
    fromImage: { image: (d) => d.pull.image, name: () => "nginx" },
    edits: () => nginxEdits,
  }))
  .step("run", runContainer({
    title: (p) => `Run it with ${p.options.runtime}`,
    explain: "Detached, with its output in `cont2/<name>.log`; the step returns once nginx serves the page.",
    bundle: bundleDir,
    name: (p) => p.options.name,
    runtime: (p) => p.options.runtime as RuntimeName,
    detach: () => true,
    ready: (c) => curl(c.options.port).pipe(Effect.map((page) => page.length > 0), Effect.orElseSucceed(() => false)),
    check: (p) => portMustBeFree(p.options.port),
  }))
  .step("prove", {
    title: "Prove it as a user would",
    explain: "curl gets the page; editing the bind-mounted index.html on the host changes what curl gets; the container shows in the list; then it is stopped and deleted (unless --detach).",
    shell: (p) => [
      `curl -fsS http://127.0.0.1:${p.options.port}/`,
      "echo '<h1>edited on the host</h1>' > cont2/html/index.html",
      `curl -fsS http://127.0.0.1:${p.options.port}/`,
      '"$SYSCONTAINERS" ps',
      ...(p.options.detach ? [] : [`"$SYSCONTAINERS" kill ${p.options.name} QUIT`, `"$SYSCONTAINERS" rm --force ${p.options.name}`]),
    ],
    run: (c) =>
      Effect.gen(function* () {
        const first = yield* curl(c.options.port)
        c.emit({ kind: "excerpt", label: `curl http://127.0.0.1:${c.options.port}/`, text: first })
        if (!/nginx/i.test(first)) return yield* Effect.fail(new Error(`unexpected page: ${first.slice(0, 200)}`))
        const edited = `<h1>edited on the host at ${Date.now()}</h1>\n`
        writeFileSync(path.join(bundleDir(c), "html", "index.html"), edited)
        const second = yield* curl(c.options.port)
        c.emit({ kind: "excerpt", label: "after editing cont2/html/index.html on the host", text: second })
        if (second !== edited) return yield* Effect.fail(new Error(`the edit did not show: ${second.slice(0, 200)}`))
        const list = yield* Containers.list()
        const me = list.find((x) => x.name === c.options.name)
        c.emit({ kind: "excerpt", label: "syscontainers ps", text: list.map((x) => `${x.name}  ${x.runtime}  ${x.pid}  ${x.status}`).join("\n") })
        if (!me || me.status !== "running") return yield* Effect.fail(new Error(`${c.options.name} is not listed as running`))
        if (!c.options.detach) {
          yield* Containers.kill(c.options.name, "QUIT").pipe(Effect.ignore)
          yield* Containers.remove(c.options.name, { force: true })
          c.emit({ kind: "note", text: `${c.options.name} stopped and deleted` })
        }
        return { page: first }
      }),
  })

/** What nginx needs beyond the image's defaults, as explicit edits. */
export const nginxEdits: ReadonlyArray<Edit> = [
  { kind: "capabilities", add: ["CAP_CHOWN", "CAP_SETUID", "CAP_SETGID"] },
  { kind: "tmpfs", destination: "/var/cache/nginx" },
  { kind: "tmpfs", destination: "/var/lib/nginx" },
  { kind: "tmpfs", destination: "/var/log/nginx" },
  { kind: "tmpfs", destination: "/run" },
  { kind: "tmpfs", destination: "/tmp" },
  { kind: "bind", source: "nginx.conf", destination: "/etc/nginx/nginx.conf", readonly: true, create: false },
  { kind: "bind", source: "html", destination: "/usr/share/nginx/html", readonly: true },
  { kind: "namespace", type: "network", action: "remove" },
  // bubblewrap cannot mount noexec (it refuses rather than silently drop it): /dev/shm without it, for every runtime
  { kind: "tmpfs", destination: "/dev/shm", options: ["nosuid", "nodev", "mode=1777", "size=65536k"] },
]

const du = (dir: string) =>
  Effect.flatMap(Spawn, (s) => s.run(["du", "-sb", dir])).pipe(Effect.map((r) => Number(r.stdout.split(/\s/)[0])))

const curl = (port: number) =>
  Effect.flatMap(Spawn, (s) => s.run(["curl", "-fsS", "--max-time", "2", `http://127.0.0.1:${port}/`])).pipe(Effect.map((r) => r.stdout))

if (isMain(import.meta.url)) {
  process.exitCode = await withOfflineMirror(() => runCommand(nginxRecipe, process.argv.slice(2), { title: "nginx from the same store, under bubblewrap", dryRunPreamble }))
}
