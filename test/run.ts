// run: the test command. Starts the offline mirror once, runs every test file in its own
// process (a crash or a leak stays in its file), and ends with "N passed, N failed".
import { readdirSync } from "node:fs"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import path from "node:path"
import { startMirror } from "./fixtures/mirror.ts"

const here = path.dirname(fileURLToPath(import.meta.url))
const only = process.argv.slice(2)
const files = readdirSync(here)
  .filter((f) => f.endsWith(".test.ts"))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort()

const runFile = (file: string, env: NodeJS.ProcessEnv) =>
  new Promise<{ passed: number; failed: number; skipped: number; out: string; code: number | null }>((resolve) => {
    const child = spawn(process.execPath, ["--conditions=syscontainers-source", "--import", "tsx", path.join(here, file)], { env, stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    child.stdout.on("data", (d: Buffer) => { out += d; process.stdout.write(d) })
    child.stderr.on("data", (d: Buffer) => { out += d; process.stderr.write(d) })
    child.on("close", (code) => {
      const num = (label: string) => Number(new RegExp(`${label}:\\s+(\\d+)`).exec(out.replace(/\x1b\[[0-9;]*m/g, ""))?.[1] ?? 0)
      const total = num("Total")
      const passed = num("Passed")
      const skipped = num("Skipped")
      // a file that crashed before reporting counts as one failure
      const failed = total - passed - skipped + (code !== 0 && total === passed + skipped ? 1 : 0)
      resolve({ passed, failed, skipped, out, code })
    })
  })

const mirror = await startMirror()
let passed = 0
let failed = 0
let skipped = 0
const failedFiles: string[] = []
try {
  for (const file of files) {
    console.log(`\n# ${file}`)
    const r = await runFile(file, { ...process.env, ...mirror.env })
    passed += r.passed
    failed += r.failed
    skipped += r.skipped
    if (r.failed > 0) failedFiles.push(file)
  }
} finally {
  await mirror.stop()
}
if (failedFiles.length) console.log(`\nfailed in: ${failedFiles.join(", ")}`)
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`)
process.exitCode = failed > 0 || passed === 0 ? 1 : 0
