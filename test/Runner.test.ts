// Runner: the reads a step starts ahead of its turn (a pull's manifest fetch): when they start, where
// their commands are reported, and that a recipe which stops early stops them too. Real processes.
import { suite } from "uvu"
import * as assert from "uvu/assert"
import * as Effect from "effect/Effect"
import { existsSync, readFileSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { makeSpawn, Spawn } from "../packages/core/src/Spawn.ts"
import { recipe, type Recipe } from "../packages/dsl/src/Recipe.ts"
import { runRecipe, type RunnerEvent } from "../packages/dsl/src/Runner.ts"
import { cleanupTemps, tempDir } from "./fixtures/harness.ts"

const t = suite("Runner")

const sh = (script: string) => Effect.flatMap(Spawn, (s) => s.run(["sh", "-c", script]))

/** Runs a recipe as runCommand does: each command reported under the step that is running when it is. */
const runIt = async <D,>(r: Recipe<{}, D>) => {
  const events: Array<{ step: string; what: string; at: number }> = []
  let current = ""
  const t0 = Date.now()
  const onEvent = (e: RunnerEvent) => {
    if (e.type === "step-start") current = e.id
    if (e.type === "step-start" || e.type === "step-done") events.push({ step: e.id, what: e.type, at: Date.now() - t0 })
  }
  const spawn = makeSpawn(({ argv, result }) => {
    if (result) events.push({ step: current, what: argv.join(" "), at: Date.now() - t0 })
  })
  const exit = await Effect.runPromiseExit(runRecipe(r, { options: {}, workdir: os.tmpdir(), fresh: false, onEvent }).pipe(Effect.provideService(Spawn, spawn)))
  return { exit, events, ms: Date.now() - t0 }
}

/** What becomes of `pid` within a second: "gone", "Z" (dead, not yet reaped: its pid still answers kill 0), or its state letter. */
const endOf = async (pid: number) => {
  const state = () => {
    try {
      return readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "")[0] ?? "?"
    } catch {
      return "gone"
    }
  }
  for (let i = 0; i < 50 && !["gone", "Z"].includes(state()); i++) await new Promise((r) => setTimeout(r, 20))
  return state()
}

const build = (o: { readonly pidFile: string; readonly refuse: boolean; readonly readFor?: string }) =>
  recipe({ name: "ahead", description: "a step that reads ahead", options: {} })
    .step("first", { title: "first", explain: "takes a while", shell: () => [], run: () => sh("sleep 0.4") })
    .step("second", {
      title: "second",
      explain: "refuses, when asked to, after a moment",
      shell: () => [],
      check: () => (o.refuse ? Effect.zipRight(Effect.sleep("300 millis"), Effect.fail(new Error("refused"))) : Effect.void),
      run: () => Effect.void,
    })
    .step("third", {
      title: "third",
      explain: "uses what it read ahead",
      shell: () => [],
      ahead: () => sh(`echo $$ > ${o.pidFile}; exec sleep ${o.readFor ?? "0.4"}`).pipe(Effect.as("read ahead")),
      run: (c) => c.ahead,
    })

t("a step's ahead starts with the recipe, beside the steps before it; its command is reported under its own step", async () => {
  const dir = tempDir("runner")
  const { exit, events, ms } = await runIt(build({ pidFile: path.join(dir, "pid"), refuse: false }))
  assert.is(exit._tag, "Success", String(exit))
  if (exit._tag === "Success") assert.is((exit.value as { third: string }).third, "read ahead")
  // one after the other would take 0.8 s: the read ran while step one slept
  assert.ok(ms < 700, `ran beside the first step (${ms} ms)`)
  const read = events.find((e) => e.what.includes("exec sleep 0.4"))
  assert.ok(read, JSON.stringify(events))
  assert.is(read!.step, "third", "reported under its step, though it ended during the first")
  const thirdStarts = events.findIndex((e) => e.step === "third" && e.what === "step-start")
  assert.ok(events.indexOf(read!) > thirdStarts, `after its step's start: ${JSON.stringify(events)}`)
})

t("a read its step never waited for ends with that step, and reports nothing under the next", async () => {
  const dir = tempDir("runner")
  const pidFile = path.join(dir, "pid")
  const r = recipe({ name: "unjoined", description: "a step that ignores its read", options: {} })
    .step("reads", { title: "reads", explain: "starts a read, never waits for it", shell: () => [], ahead: () => sh(`echo $$ > ${pidFile}; exec sleep 30`), run: () => sh(`while [ ! -s ${pidFile} ]; do sleep 0.01; done`) })
    .step("after", { title: "after", explain: "runs once the step before has ended", shell: () => [], run: () => Effect.sync(() => readFileSync(pidFile, "utf8").trim()).pipe(Effect.flatMap((pid) => Effect.promise(() => endOf(Number(pid))))) })
  const { exit, events } = await runIt(r)
  assert.is(exit._tag, "Success", String(exit))
  if (exit._tag === "Success") assert.ok(["gone", "Z"].includes(exit.value.after), `the read had ended: ${JSON.stringify(exit.value)}`)
  assert.ok(!events.some((e) => e.what.includes("sleep 30")), JSON.stringify(events))
})

t("a check that refuses stops what was started ahead: its process ends", async () => {
  const dir = tempDir("runner")
  const pidFile = path.join(dir, "pid")
  // a read that would outlive the refusal by far
  const { exit, events, ms } = await runIt(build({ pidFile, refuse: true, readFor: "30" }))
  assert.is(exit._tag, "Failure")
  assert.ok(ms < 5000, `did not wait for the read (${ms} ms)`)
  assert.ok(existsSync(pidFile), "the read had started")
  const pid = Number(readFileSync(pidFile, "utf8"))
  assert.ok(["gone", "Z"].includes(await endOf(pid)), `sleep ${pid} was stopped`)
  assert.ok(!events.some((e) => e.what.includes("sleep 30")), "an interrupted read reports nothing")
})

t.after(() => cleanupTemps())

t.run()
