// Errors: every failure a user can cause, as tagged values that say what failed and what to do.
import * as Data from "effect/Data"

const tail = (text: string, lines = 12): string => text.trimEnd().split("\n").slice(-lines).join("\n")

/** A process exited non-zero or was killed: carries its argv, exit code, signal and stderr tail. */
export class CommandFailed extends Data.TaggedError("CommandFailed")<{
  readonly argv: ReadonlyArray<string>
  readonly exitCode: number | null
  readonly signal: string | null
  readonly stderrTail: string
}> {
  override get message() {
    const how = this.signal ? `killed by ${this.signal}` : `exit ${this.exitCode}`
    return `${this.argv.join(" ")}: ${how}\n${tail(this.stderrTail)}`
  }
}

/** A tool we drive is not installed; names the Debian package that ships it. */
export class ToolMissing extends Data.TaggedError("ToolMissing")<{
  readonly tool: string
  readonly debianPackage: string
}> {
  override get message() {
    return `${this.tool} is not installed: install it with 'apt-get install ${this.debianPackage}'`
  }
}

/** The user gave something we cannot parse or use: names the input and how to fix it. */
export class InvalidInput extends Data.TaggedError("InvalidInput")<{
  readonly input: string
  readonly reason: string
  readonly fix: string
}> {
  override get message() {
    return `${JSON.stringify(this.input)}: ${this.reason}. ${this.fix}`
  }
}

/** An image reference names a transport skopeo does not know. */
export class UnknownTransport extends Data.TaggedError("UnknownTransport")<{
  readonly reference: string
  readonly transport: string
}> {
  override get message() {
    return `${this.reference}: unknown transport '${this.transport}'; use docker://, oci:, oci-archive:, docker-archive: or dir:`
  }
}

/** No such image, in a registry (pull) or in the repo (inspect, checkout). */
export class ImageNotFound extends Data.TaggedError("ImageNotFound")<{
  readonly image: string
  readonly where: string
  readonly detail: string
}> {
  override get message() {
    return `image ${this.image} not found in ${this.where}${this.detail ? `: ${tail(this.detail, 3)}` : ""}. Check the name and tag (syscontainers images lists what the repo holds)`
  }
}

/** A blob's content does not hash to the digest its manifest names. */
export class DigestMismatch extends Data.TaggedError("DigestMismatch")<{
  readonly image: string
  readonly expected: string
  readonly actual: string
}> {
  override get message() {
    return `${this.image}: blob ${this.expected} hashes to ${this.actual}; the source is corrupt, nothing was imported. Pull again or fix the source`
  }
}

/** A layer holds an entry we refuse to apply (escapes, bad whiteouts, non-UTF-8 names). */
export class LayerRejected extends Data.TaggedError("LayerRejected")<{
  readonly layer: string
  readonly entry: string
  readonly reason: string
}> {
  override get message() {
    return `layer ${this.layer}: entry ${JSON.stringify(this.entry)} rejected: ${this.reason}. The image is malformed or hostile; nothing was imported`
  }
}

/** One violation of the runtime-spec schema, at a JSON pointer. */
export interface SpecViolation {
  readonly pointer: string
  readonly message: string
}

/** A config.json (or an edit to one) breaks the OCI runtime-spec or our safety rules. */
export class SpecInvalid extends Data.TaggedError("SpecInvalid")<{
  readonly path: string
  readonly violations: ReadonlyArray<SpecViolation>
}> {
  override get message() {
    const list = this.violations.map((v) => `  ${v.pointer || "/"}: ${v.message}`).join("\n")
    return `${this.path}: the runtime config is invalid; it was left as it was:\n${list}`
  }
}

/** A container name is already taken in the runtime's state. */
export class ContainerExists extends Data.TaggedError("ContainerExists")<{
  readonly name: string
  readonly runtime: string
}> {
  override get message() {
    return `a container named ${this.name} already exists (${this.runtime}); pick another name, or remove it with 'syscontainers rm --force ${this.name}'`
  }
}

/** The container exists but its process is gone: nothing to signal or exec into. */
export class ContainerNotRunning extends Data.TaggedError("ContainerNotRunning")<{
  readonly name: string
  readonly runtime: string
}> {
  override get message() {
    return `container ${this.name} is not running (${this.runtime}); remove it with 'syscontainers rm ${this.name}', then run it again`
  }
}

/** No container of that name in any runtime's state. */
export class ContainerNotFound extends Data.TaggedError("ContainerNotFound")<{
  readonly name: string
}> {
  override get message() {
    return `no container named ${this.name}; 'syscontainers ps' lists them`
  }
}

/** A repo exists with another mode than the one asked for, or is not a repo. */
export class RepoMismatch extends Data.TaggedError("RepoMismatch")<{
  readonly path: string
  readonly found: string
  readonly wanted: string
}> {
  override get message() {
    return `${this.path} is an ostree repo in mode ${this.found}, not ${this.wanted}; use another path or mode`
  }
}

/** Hardlinks from the repo into the bundle are impossible (another filesystem, or a mode mismatch). */
export class HardlinkImpossible extends Data.TaggedError("HardlinkImpossible")<{
  readonly repo: string
  readonly into: string
  readonly detail: string
}> {
  override get message() {
    return `cannot hardlink from ${this.repo} into ${this.into} (${this.detail}); put the bundle on the repo's filesystem or use copy mode (--copy / mode: "copy")`
  }
}

/** An image's shared checkout is the root of containers that still exist: removing it would empty theirs. */
export class ImageInUse extends Data.TaggedError("ImageInUse")<{
  readonly image: string
  readonly containers: ReadonlyArray<string>
  /** Bundles checked out on its shared checkout (their config.json roots there), running or not. */
  readonly bundles?: ReadonlyArray<string>
}> {
  override get message() {
    const on = [
      ...(this.containers.length ? [`containers ${this.containers.join(", ")} run on its shared checkout`] : []),
      ...(this.bundles?.length ? [`bundles ${this.bundles.join(", ")} are checked out on it`] : []),
    ]
    return `${this.image} is in use: ${on.join("; ")}; remove them first ('syscontainers rm --force NAME', then the bundle directory)`
  }
}

/** A signal given by a name or number no signal has. */
export const unknownSignal = (signal: string) =>
  new InvalidInput({ input: signal, reason: `unknown signal ${JSON.stringify(signal)}`, fix: "Use a name like TERM or SIGKILL, or a number" })
