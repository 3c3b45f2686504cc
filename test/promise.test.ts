// the Promise form: the same steps for scripts without Effect; a rejection carries the tagged error.
import { suite } from "uvu"
import * as assert from "uvu/assert"
import path from "node:path"
import * as sc from "../packages/core/src/Promise.ts"
import { cleanupTemps, tempDir, loud } from "./fixtures/harness.ts"
import { useMirror, type Mirror } from "./fixtures/mirror.ts"

const t = suite("Promise")
let mirror: Mirror
t.before(loud("before", async () => {
  mirror = await useMirror()
}))
t.after(async () => {
  cleanupTemps()
  await mirror.stop()
})

t("init, copy, inspect, checkout and spec as plain async calls", async () => {
  const dir = tempDir("promise")
  const repo = await sc.ostreeInit({ path: path.join(dir, "ostree"), mode: "bare-user" })
  const { image } = await sc.skopeoCopy({ from: "docker://busybox", name: "busybox", repo })
  const again = await sc.inspect(repo, "busybox")
  assert.is(again.digest, image.digest)
  const bundle = await sc.applyLayers({ image, into: path.join(dir, "b") })
  const config = await sc.runcSpec({ bundle, rootless: true, terminal: false })
  assert.is(config.root?.readonly, true)
  const patched = await sc.patchConfig({ bundle, edits: [{ kind: "args", args: ["/bin/true"] }] })
  assert.equal(patched.process?.args, ["/bin/true"])
})

t("a failure rejects with the tagged error itself", async () => {
  const dir = tempDir("promise-fail")
  const repo = await sc.ostreeInit({ path: path.join(dir, "ostree") })
  try {
    await sc.inspect(repo, "nothing-here")
    assert.unreachable("inspect of a missing image resolved")
  } catch (e) {
    assert.is((e as { _tag?: string })._tag, "ImageNotFound")
    assert.match((e as Error).message, /nothing-here/)
  }
})

t.run()
