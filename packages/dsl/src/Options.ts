// Options: a recipe's own command-line options, declared once and typed from the declaration.

/** One option a recipe declares. */
export type OptionSpec =
  | { readonly type: "string"; readonly default: string; readonly describe: string; readonly choices?: ReadonlyArray<string> }
  | { readonly type: "number"; readonly default: number; readonly describe: string }
  | { readonly type: "boolean"; readonly default: boolean; readonly describe: string }

export type OptionSpecs = Readonly<Record<string, OptionSpec>>

/** The parsed values of a declaration. */
export type OptionValues<S extends OptionSpecs> = {
  readonly [K in keyof S]: S[K] extends { type: "number" } ? number : S[K] extends { type: "boolean" } ? boolean : string
}

/** `--help` lines for the declared options. */
export const describeOptions = (specs: OptionSpecs): string[] =>
  Object.entries(specs).map(([name, s]) => {
    const flag = s.type === "boolean" ? `--${name}` : `--${name} ${s.type === "number" ? "N" : "choices" in s && s.choices ? s.choices.join("|") : "VALUE"}`
    return `  ${flag.padEnd(30)} ${s.describe} (default: ${JSON.stringify(s.default)})`
  })
