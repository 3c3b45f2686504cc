// @syscontainers/dsl as node loads it: the bundled build (dist/index.mjs, from scripts/build-cli.mjs)
// when no source of dsl or core is newer, else the TypeScript sources (the caller runs under tsx).
// Written by scripts/build-cli.mjs: the export list follows src/index.ts.
import path from "node:path"
import { fileURLToPath } from "node:url"
import { bundleIsCurrent } from "@syscontainers/core/freshBundle"

const here = path.dirname(fileURLToPath(import.meta.url))
const sources = [path.join(here, "src"), path.join(here, "..", "core", "src")]
const dsl = bundleIsCurrent(path.join(here, "dist", "index.mjs"), sources) ? await import("./dist/index.mjs") : await import("./src/index.ts")

export const {
  Containers,
  Effect,
  Recipe,
  Spawn,
  StepFailed,
  checkoutLayers,
  describeOptions,
  dryRunPreamble,
  dryRunScript,
  generateSpec,
  helpText,
  humanReporter,
  initRepo,
  isMain,
  jsonReporter,
  line,
  lineWithInput,
  parseInvocation,
  patchSpec,
  planText,
  pullImage,
  quote,
  recipe,
  runCommand,
  runContainer,
  runRecipe,
  showImage,
  syscontainersBin,
  text,
  tutorialCollector,
} = dsl
