// Shell: quoting words for the bash scripts that --dry-run prints.

/** Quotes one word for bash; plain words stay readable. */
export const quote = (word: string): string => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`)

/** One command line from an argv. */
export const line = (argv: ReadonlyArray<string>): string => argv.map(quote).join(" ")
