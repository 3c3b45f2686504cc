// signals: signal names or numbers as users give them to `kill`, checked before any runtime sees them.
import os from "node:os"

/** Signal names ("TERM", "SIGTERM", "kill") or numbers ("9") to a signal number; undefined if unknown. */
export const parseSignal = (signal: string): number | undefined => {
  if (/^\d+$/.test(signal)) {
    const n = Number(signal)
    return n >= 1 && n <= 64 ? n : undefined
  }
  const up = signal.toUpperCase()
  return (os.constants.signals as Readonly<Record<string, number>>)[up.startsWith("SIG") ? up : `SIG${up}`]
}
