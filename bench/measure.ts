// measure: interleaved runs (A B A B ... after a warm-up), medians, result rows and their markdown table.
import { log, timed } from "./proc.ts"

/** One contender of a comparison: untimed set-up, the timed job, untimed clean-up. */
export interface Contender {
  readonly name: string
  readonly prepare?: (i: number) => Promise<void>
  readonly run: (i: number) => Promise<unknown>
  readonly cleanup?: (i: number) => Promise<void>
}

/** Unrecorded rounds before the measured ones, unless a comparison says otherwise. */
export const WARMUP = 1

/** Milliseconds of each measured run, per contender (warm-up runs left out). */
export type Samples = Map<string, number[]>

/**
 * Runs the contenders in turn, `warmup` rounds unrecorded then `rounds` recorded: A B C A B C ...
 * Interleaving spreads drift (page cache, other load, a warming disk) over every contender alike.
 */
export const interleave = async (what: string, contenders: ReadonlyArray<Contender>, o: { readonly rounds: number; readonly warmup?: number }): Promise<Samples> => {
  const warmup = o.warmup ?? WARMUP
  const samples: Samples = new Map(contenders.map((c) => [c.name, []]))
  for (let i = 0; i < warmup + o.rounds; i++) {
    const line: string[] = []
    for (const c of contenders) {
      await c.prepare?.(i)
      const ms = await timed(() => c.run(i))
      await c.cleanup?.(i)
      if (i >= warmup) samples.get(c.name)!.push(ms)
      line.push(`${c.name} ${fmtMs(ms)}`)
    }
    log(`  ${what} ${i < warmup ? "warm-up" : `round ${i - warmup + 1}/${o.rounds}`}: ${line.join(", ")}`)
  }
  return samples
}

/** The median: robust to one slow outlier in few runs. */
export const median = (xs: ReadonlyArray<number>): number => {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

export const fmtMs = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`)

export const fmtBytes = (b: number) =>
  b >= 1 << 30 ? `${(b / (1 << 30)).toFixed(2)} GiB` : b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(1)} MiB` : b >= 1 << 10 ? `${(b / (1 << 10)).toFixed(0)} KiB` : `${b} B`

/** One line of results.json: ours against one peer; ratio = ours / peer, met when ratio <= goal. */
export interface Row {
  readonly metric: string
  /** Milliseconds (median), or null when the metric is not a time (then see ours_value and unit). */
  readonly ours_ms: number | null
  readonly peer: string
  readonly peer_ms: number | null
  readonly ratio: number
  /** The ratio to stay under; null for rows shown for context only. */
  readonly goal: number | null
  readonly met: boolean | null
  /** Measured runs per side. */
  readonly runs: number
  /** "ms", "bytes", "us/file" or "layers": what ours_value and peer_value count. */
  readonly unit: string
  readonly ours_value: number
  readonly peer_value: number
  readonly note?: string
}

/** A row from two values: ratio, met, and how far a missed goal is off. */
export const row = (o: {
  readonly metric: string
  readonly peer: string
  readonly ours: number
  readonly theirs: number
  readonly goal?: number | null
  readonly runs: number
  readonly unit?: string
  readonly note?: string
}): Row => {
  const unit = o.unit ?? "ms"
  const ratio = o.theirs === 0 ? (o.ours === 0 ? 1 : Infinity) : o.ours / o.theirs
  const goal = o.goal ?? null
  const met = goal === null ? null : ratio <= goal
  // the note reads the ratio as the table shows it (kept to 3 decimals), so the two never disagree
  const shown = Math.round(ratio * 1000) / 1000
  const miss = goal !== null && !met ? `missed: ${shown.toFixed(2)}x against ${goal}x, ${(shown / goal).toFixed(1)}x over the goal` : undefined
  const note = [o.note, miss].filter((x): x is string => !!x).join("; ")
  return {
    metric: o.metric,
    ours_ms: unit === "ms" ? round(o.ours) : null,
    peer: o.peer,
    peer_ms: unit === "ms" ? round(o.theirs) : null,
    ratio: shown,
    goal,
    met,
    runs: o.runs,
    unit,
    ours_value: round(o.ours),
    peer_value: round(o.theirs),
    ...(note ? { note } : {}),
  }
}

const round = (x: number) => Math.round(x * 10) / 10

/** Rows from samples: ours against each peer, goal on the ones that have one. */
export const compare = (
  metric: string,
  samples: Samples,
  ours: string,
  peers: ReadonlyArray<{ readonly name: string; readonly label?: string; readonly goal?: number | null; readonly note?: string }>,
): Row[] => {
  const mine = samples.get(ours) ?? []
  return peers.map((p) =>
    row({
      metric,
      peer: p.label ?? p.name,
      ours: median(mine),
      theirs: median(samples.get(p.name) ?? []),
      goal: p.goal ?? null,
      runs: Math.min(mine.length, samples.get(p.name)?.length ?? 0),
      ...(p.note ? { note: p.note } : {}),
    }),
  )
}

const cell = (r: Row, which: "ours" | "peer") => {
  const v = which === "ours" ? r.ours_value : r.peer_value
  if (r.unit === "ms") return fmtMs(v)
  if (r.unit === "bytes") return fmtBytes(v)
  if (r.unit === "us/file") return `${v.toFixed(1)} µs/file`
  return `${v} ${r.unit}`
}

/** The markdown table of the rows (for bench/results.md and the README). */
export const markdownTable = (rows: ReadonlyArray<Row>): string => {
  const esc = (s: string) => s.replace(/\|/g, "\\|")
  const lines = [
    "| metric | ours | peer | peer value | ratio | goal | met | runs | note |",
    "|---|---:|---|---:|---:|---:|:---:|---:|---|",
    ...rows.map((r) =>
      [
        esc(r.metric),
        cell(r, "ours"),
        esc(r.peer),
        cell(r, "peer"),
        `${r.ratio.toFixed(2)}x`,
        r.goal === null ? "" : `≤ ${r.goal}x`,
        r.met === null ? "" : r.met ? "yes" : "**no**",
        String(r.runs),
        esc(r.note ?? ""),
      ].join(" | "),
    ).map((l) => `| ${l} |`),
  ]
  return lines.join("\n")
}
