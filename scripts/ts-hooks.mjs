// ts-hooks: how setup.sh's tsx wrapper runs a TypeScript file of this checkout (`tsx recipes/redis.ts`).
// tsx's loader costs ~45 ms a start here, before the script's first line, even when every file is
// in its transform cache; a recipe's whole second run is ~250 ms. These hooks do the part a script
// of this checkout needs, in node's own thread (module.registerHooks): strip the types with esbuild
// (tsx's transformer) under the checkout's tsconfig.json, once per distinct source, kept in
// node_modules/.cache; map `./x.js` and `./x` to `./x.ts` (or .tsx, or ./x/index.ts), as tsx does.
// Anything else goes to tsx's loader: a script outside the checkout (tsx finds its tsconfig and
// paths), a node without registerHooks, a user who cannot write the cache.
import { createHash, randomBytes } from "node:crypto"
import { accessSync, constants, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs"
import module from "node:module"
import path from "node:path"
import { fileURLToPath } from "node:url"

const checkout = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const cacheDir = path.join(checkout, "node_modules", ".cache", "ts-hooks")
const require = module.createRequire(import.meta.url)

const writable = (dir) => {
  try {
    mkdirSync(dir, { recursive: true })
    accessSync(dir, constants.W_OK)
    return true
  } catch {
    return false
  }
}

// the checkout's own compiler options (esbuild reads what changes its output: target, class
// fields, verbatimModuleSyntax, jsx); a tsconfig esbuild's JSON cannot take sends the run to tsx
const tsconfig = (() => {
  try {
    return JSON.stringify({ compilerOptions: JSON.parse(readFileSync(path.join(checkout, "tsconfig.json"), "utf8")).compilerOptions ?? {} })
  } catch {
    return undefined
  }
})()

const main = process.argv[1] ? path.resolve(process.argv[1]) : ""
const ours = main.startsWith(checkout + path.sep) && !main.startsWith(path.join(checkout, "node_modules") + path.sep)

if (typeof module.registerHooks !== "function" || !ours || tsconfig === undefined || !writable(cacheDir)) {
  await import("tsx")
} else {
  // errors point at the TypeScript lines, as under tsx
  process.setSourceMapsEnabled(true)
  const target = `node${process.versions.node}`
  // a hit needs only esbuild's version (its module takes ~6 ms to load): the cache key names it,
  // and this file's own text, which holds the transform's options
  const esbuildVersion = JSON.parse(readFileSync(require.resolve("esbuild/package.json"), "utf8")).version
  const hooksText = readFileSync(fileURLToPath(import.meta.url), "utf8")
  let esbuild
  const transform = (source, file, format) => {
    const key = createHash("sha256").update(JSON.stringify([hooksText, esbuildVersion, target, tsconfig, format, file])).update(source).digest("hex")
    const cached = path.join(cacheDir, `${key}.js`)
    try {
      return readFileSync(cached, "utf8")
    } catch {
      // not cached yet
    }
    esbuild ??= require("esbuild")
    const code = esbuild.transformSync(source, {
      loader: file.endsWith("x") ? "tsx" : "ts",
      format: format === "module" ? "esm" : "cjs",
      target,
      tsconfigRaw: tsconfig,
      sourcefile: file,
      sourcemap: "inline",
    }).code
    // written whole or not at all: a run that dies mid-write leaves no half a module for the next
    const tmp = `${cached}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`
    try {
      writeFileSync(tmp, code)
      renameSync(tmp, cached)
    } catch {
      // a cache that cannot be written costs the next run a transform, nothing else
    }
    pruneOnce()
    return code
  }
  // every edit of a file leaves an entry: on a miss (an edit, say), entries older than a month go,
  // and one still in use comes back at the cost of one transform
  let pruned = false
  const pruneOnce = () => {
    if (pruned) return
    pruned = true
    const monthAgo = Date.now() - 30 * 24 * 3600 * 1000
    let names = []
    try {
      names = readdirSync(cacheDir)
    } catch {
      // a cache we cannot list: the next run's miss tries again
    }
    for (const name of names) {
      const file = path.join(cacheDir, name)
      try {
        if (statSync(file).mtimeMs < monthAgo) rmSync(file, { force: true })
      } catch {
        // gone already: another run pruned it
      }
    }
  }

  // the file a specifier that node could not find names under TypeScript's conventions
  const typescriptFor = (specifier) => {
    const js = /\.([cm]?)jsx?$/.exec(specifier)
    if (js) return [specifier.slice(0, js.index) + `.${js[1]}ts`, ...(js[1] === "" ? [specifier.slice(0, js.index) + ".tsx"] : [])]
    if (path.extname(specifier) === "") return [`${specifier}.ts`, `${specifier}.tsx`, `${specifier}/index.ts`]
    return []
  }
  const packageType = (url) => {
    try {
      const found = module.findPackageJSON?.(url)
      return found ? JSON.parse(readFileSync(found, "utf8")).type : undefined
    } catch {
      return undefined
    }
  }
  const isPath = (specifier) => /^(\.{1,2}\/|\/|file:)/.test(specifier)
  // node's own formats for a TypeScript file would have it strip the types again (and load its
  // stripper, ~60 ms)
  const jsFormat = { "module-typescript": "module", "commonjs-typescript": "commonjs" }

  // what node throws for a path with no file there: import, require, a directory beside x.ts
  const notFound = new Set(["ERR_MODULE_NOT_FOUND", "MODULE_NOT_FOUND", "ERR_UNSUPPORTED_DIR_IMPORT"])

  module.registerHooks({
    resolve(specifier, context, next) {
      try {
        return next(specifier, context)
      } catch (error) {
        if (!notFound.has(error?.code) || !isPath(specifier)) throw error
        for (const candidate of typescriptFor(specifier)) {
          try {
            return next(candidate, context)
          } catch {
            // the next candidate
          }
        }
        throw error
      }
    },
    load(url, context, next) {
      if (!url.startsWith("file:") || !/\.[cm]?tsx?$/.test(url)) return next(url, context)
      const file = fileURLToPath(url)
      // node says which format a .ts is (its package's type, or the syntax it finds); a .tsx it
      // does not know: its package's type says
      let loaded
      try {
        loaded = next(url, context)
      } catch (error) {
        if (error?.code !== "ERR_UNKNOWN_FILE_EXTENSION") throw error
        loaded = { format: packageType(url) === "commonjs" ? "commonjs" : "module" }
      }
      const format = jsFormat[loaded.format] ?? loaded.format ?? (file.endsWith(".cts") ? "commonjs" : "module")
      const source = typeof loaded.source === "string" ? loaded.source : Buffer.from(loaded.source ?? readFileSync(file)).toString("utf8")
      return { format, source: transform(source, file, format), shortCircuit: true }
    },
  })
}
