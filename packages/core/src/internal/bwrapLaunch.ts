// bwrapLaunch: the argv that starts bwrap with its status, args and userns fds open, attached or detached (setsid, sh).

/**
 * Opens the fds bwrap reads and writes, then runs it. A constant script: every path and argument
 * comes in as a positional parameter, so nothing is ever parsed by a shell.
 *   $1 attached|detached  $2 status file (fd 3, --json-status-fd)  $3 args file (fd 4, --args)
 *   $4 log file or -  $5 userns fifo or - (fd 5, --userns-block-fd)  $6 info file or - (fd 6)
 *   $7 umask or -  then the argv to run.
 * Attached, sh execs bwrap so bwrap's parent is us (--die-with-parent ties the container to our
 * life). Detached, sh stays as bwrap's parent: it outlives us, so --die-with-parent still only
 * fires if someone kills it, and it records bwrap's own exit status when bwrap was killed.
 */
export const launchScript = [
  'mode=$1 status=$2 args=$3 log=$4 block=$5 info=$6 mask=$7',
  "shift 7",
  'if [ "$mask" != - ]; then umask "$mask" || exit 125; fi',
  'if [ "$log" != - ]; then exec </dev/null >>"$log" 2>&1; fi',
  'exec 3>"$status" 4<"$args"',
  'if [ "$block" != - ]; then exec 5<>"$block" 6>"$info"; fi',
  'if [ "$mode" = attached ]; then exec "$@"; fi',
  '"$@"',
  'rc=$?',
  "printf '{ \"bwrap-exit\": %d }\\n' \"$rc\" >&3",
  'exit "$rc"',
].join("\n")

/** The fds the script opens for bwrap. */
export const fds = { status: "3", args: "4", block: "5", info: "6" } as const

/** Everything one launch needs. */
export interface Launch {
  readonly mode: "attached" | "detached"
  readonly bwrap: string
  readonly statusFile: string
  readonly argsFile: string
  readonly logFile?: string
  /** A fifo and an info file when the runtime writes the id maps itself. */
  readonly userns?: { readonly fifo: string; readonly infoFile: string }
  readonly umask?: number
  readonly prefix: ReadonlyArray<string>
  readonly command: ReadonlyArray<string>
}

/** The argv for one launch: setsid, sh with the script, the prefix, bwrap reading its options from fd 4. */
export const launchArgv = (l: Launch): ReadonlyArray<string> => [
  // detached: fork into a new session so nothing ties it to us; attached: a new session too, so
  // the terminal's ^C reaches only us and we forward it (it would kill bwrap, which SIGKILLs all)
  ...(l.mode === "detached" ? ["setsid", "-f"] : ["setsid", "-w"]),
  "sh", "-c", launchScript, "sh",
  l.mode,
  l.statusFile,
  l.argsFile,
  l.logFile ?? "-",
  l.userns?.fifo ?? "-",
  l.userns?.infoFile ?? "-",
  l.umask === undefined ? "-" : l.umask.toString(8).padStart(4, "0"),
  ...l.prefix,
  l.bwrap,
  "--args", fds.args,
  "--json-status-fd", fds.status,
  ...(l.userns ? ["--userns-block-fd", fds.block, "--info-fd", fds.info] : []),
  "--",
  ...l.command,
]
