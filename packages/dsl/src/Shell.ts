// Shell: quoting words for the bash scripts that --dry-run prints.

/** Quotes one word for bash; plain words stay readable. */
export const quote = (word: string): string => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`)

/** One command line from an argv. */
export const line = (argv: ReadonlyArray<string>): string => argv.map(quote).join(" ")

/** A printf format that writes `text` back byte for byte (NULs included, which no bash word can hold). */
const printfFormat = (text: string): string =>
  text.replace(/\\/g, "\\\\").replace(/%/g, "%%").replace(/\0/g, "\\000").replace(/\n/g, "\\n")

/** One command line from an argv, with its standard input piped in: from the command that makes it, or by printf. */
export const lineWithInput = (argv: ReadonlyArray<string>, stdin: { readonly input?: string; readonly inputFrom?: ReadonlyArray<string> } = {}): string =>
  stdin.inputFrom ? `${line(stdin.inputFrom)} | ${line(argv)}` : stdin.input !== undefined ? `printf ${quote(printfFormat(stdin.input))} | ${line(argv)}` : line(argv)
