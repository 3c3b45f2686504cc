// demo: `npm run demo`, the redis walkthrough end to end through the offline mirror, then cleaned up.
import * as Effect from "effect/Effect"
import path from "node:path"
import { fileURLToPath } from "node:url"
import * as Containers from "@syscontainers/core/Containers"
import { SpawnLive } from "@syscontainers/core/Spawn"
import { runCommand } from "@syscontainers/dsl"
import { dryRunPreamble } from "@syscontainers/dsl"
import { redisRecipe } from "../recipes/redis.ts"
import { startMirror } from "../test/fixtures/mirror.ts"
import { freePort } from "../test/fixtures/harness.ts"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

const name = `demo-redis-${process.pid}`
const mirror = await startMirror()
Object.assign(process.env, mirror.env)
let code = 1
try {
  const port = await freePort()
  console.error(`demo: mirror on 127.0.0.1:${mirror.port}; redis will listen on 127.0.0.1:${port}\n`)
  code = await runCommand(redisRecipe, ["--detach", "--port", String(port), "--name", name, "--workdir", path.join(root, "work", "demo")], {
    program: "npm run demo",
    dryRunPreamble,
  })
} finally {
  // the demo leaves nothing running: its container, then the mirror
  await Effect.runPromise(Containers.remove(name, { force: true }).pipe(Effect.ignore, Effect.provide(SpawnLive)))
  await mirror.stop()
}
console.error(code === 0 ? `\ndemo: done; ${name} stopped and deleted, mirror stopped` : `\ndemo: failed (exit ${code})`)
process.exitCode = code
