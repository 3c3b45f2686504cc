// @syscontainers/dsl as node loads it: the bundled build (dist/index.cjs, from scripts/build-cli.mjs,
// through V8's code cache) when no source of dsl or core is newer, else the TypeScript sources (the
// caller runs under tsx). Written by scripts/build-cli.mjs: the export list follows src/index.ts.
import path from "node:path"
import { fileURLToPath } from "node:url"
import { bundleIsCurrent } from "@syscontainers/core/freshBundle"
import { loadCached } from "@syscontainers/core/codeCache"

const here = path.dirname(fileURLToPath(import.meta.url))
const bundle = path.join(here, "dist", "index.cjs")
const sources = [path.join(here, "src"), path.join(here, "..", "core", "src"), path.join(here, "..", "..", "pnpm-lock.yaml")]
const dsl = bundleIsCurrent(bundle, sources) ? loadCached(bundle) : await import("./src/index.ts")

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
  exchange,
  generateSpec,
  heldReports,
  helpText,
  humanReporter,
  inOrder,
  initRepo,
  isMain,
  jsonReporter,
  line,
  lineWithInput,
  listening,
  parseInvocation,
  patchSpec,
  planText,
  portMustBeFree,
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
