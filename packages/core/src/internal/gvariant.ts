// gvariant: reads the GVariant text format ostree prints for string metadata ('…' or "…").
const simple: Readonly<Record<string, string>> = { a: "\x07", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v" }

/** Parses one printed GVariant string literal, e.g. `'12'` or `"{\"a\":1}"`. */
export const parseGVariantString = (printed: string): string => {
  const text = printed.trim()
  const quote = text[0]
  if ((quote !== "'" && quote !== '"') || text[text.length - 1] !== quote) throw new Error(`not a GVariant string: ${text.slice(0, 40)}`)
  let out = ""
  for (let i = 1; i < text.length - 1; i++) {
    const ch = text[i]!
    if (ch !== "\\") {
      out += ch
      continue
    }
    const next = text[++i]!
    if (next in simple) out += simple[next]
    else if (next === "u") {
      out += String.fromCodePoint(parseInt(text.slice(i + 1, i + 5), 16))
      i += 4
    } else if (next === "U") {
      out += String.fromCodePoint(parseInt(text.slice(i + 1, i + 9), 16))
      i += 8
    } else out += next
  }
  return out
}
