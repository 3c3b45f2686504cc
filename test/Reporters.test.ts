// Reporters: the tutorial markdown is rendered from a run's events; these events are made by hand,
// as the runner would emit them, to pin what the walkthrough shows for timing-dependent runs.
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { tutorialCollector } from "../packages/dsl/src/Reporters.ts"
import type { RunnerEvent } from "../packages/dsl/src/Runner.ts"

const t = suite("Reporters")

const command = (id: string, argv: ReadonlyArray<string>): RunnerEvent => ({ type: "step-event", id, event: { kind: "command", argv, exitCode: 0, ms: 5 } })

const render = (events: ReadonlyArray<RunnerEvent>) => {
  const c = tutorialCollector()
  for (const e of events) c.onEvent(e)
  return c.render({ title: "T", intro: "I", command: "tsx r.ts --tutorial x.md", workdir: "/w" })
}

const runStep = (polls: number): ReadonlyArray<RunnerEvent> => [
  { type: "recipe-start", recipe: "r", workdir: "/w", steps: 1 },
  { type: "step-start", id: "run", index: 0, total: 1, title: "Run it", explain: "E", shell: [] },
  command("run", ["runc", "run", "--detach", "--bundle=/w/cont1", "redis"]),
  ...Array.from({ length: polls }, () => command("run", ["redis-cli", "-p", "6379", "ping"])),
  command("run", ["redis-cli", "-p", "6379", "save"]),
  command("run", ["redis-cli", "-p", "6379", "ping"]),
  { type: "step-done", id: "run", ms: 60 },
  { type: "recipe-done", ms: 60, ok: true, steps: [{ id: "run", title: "Run it", ms: 60, ok: true }] },
]

t("a readiness poll shows once however often it ran; the same command later in the step still shows", () => {
  const once = render(runStep(1))
  assert.is(render(runStep(4)), once, "the walkthrough does not depend on how many polls timing took")
  const block = /```bash\n([\s\S]*?)```/.exec(once)?.[1] ?? ""
  assert.equal(block.trim().split("\n"), [
    "runc run --detach --bundle=cont1 redis",
    "redis-cli -p 6379 ping",
    "redis-cli -p 6379 save",
    "redis-cli -p 6379 ping",
  ])
})

t.run()
