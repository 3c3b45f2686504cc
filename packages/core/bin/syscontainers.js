#!/usr/bin/env node
// The syscontainers command: registers tsx (TypeScript without a build step), then runs the CLI.
import { register } from "tsx/esm/api"

register()
const { main } = await import("../src/Cli.ts")
process.exitCode = await main(process.argv.slice(2))
