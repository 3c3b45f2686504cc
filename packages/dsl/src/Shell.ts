// Shell: quoting words for the bash scripts that --dry-run prints.

/** Quotes one word for bash; plain words stay readable. */
export const quote = (word: string): string => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`)

/** One command line from an argv. */
export const line = (argv: ReadonlyArray<string>): string => argv.map(quote).join(" ")

/** A printf format that writes `text` back byte for byte (NULs included, which no bash word can hold). */
const printfFormat = (text: string): string =>
  text.replace(/\\/g, "\\\\").replace(/%/g, "%%").replace(/\0/g, "\\000").replace(/\n/g, "\\n")

/** One command line from an argv, with its standard input piped in by printf when it had one. */
export const lineWithInput = (argv: ReadonlyArray<string>, input?: string): string =>
  input === undefined ? line(argv) : `printf ${quote(printfFormat(input))} | ${line(argv)}`
