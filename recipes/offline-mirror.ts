// offline-mirror: recipes pull real names (docker://redis:alpine); with no registries.conf given and
// no internet, they go through the local mirror of images built from Debian binaries (test/fixtures).

/** Runs `job` with CONTAINERS_REGISTRIES_CONF set: the caller's, or the local mirror's for the job's length. */
export const withOfflineMirror = async (job: () => Promise<number>): Promise<number> => {
  const wantsMirror = !process.env["CONTAINERS_REGISTRIES_CONF"] && process.env["SYSCONTAINERS_MIRROR"] !== "none" && !process.argv.some((a) => a === "--plan" || a === "--dry-run" || a === "--help" || a === "-h")
  if (!wantsMirror) return job()
  process.stderr.write("no CONTAINERS_REGISTRIES_CONF: pulling through the local offline mirror (set SYSCONTAINERS_MIRROR=none to use your registries)\n")
  // loaded only when needed: the mirror's code brings the core's sources with it (~0.4 s under tsx)
  const { startMirror } = await import("../test/fixtures/mirror.ts")
  const mirror = await startMirror()
  Object.assign(process.env, mirror.env)
  try {
    return await job()
  } finally {
    await mirror.stop()
    for (const k of Object.keys(mirror.env)) delete process.env[k]
  }
}
