// context: what every benchmark gets: the scratch dir, the mirror, the images, how many rounds.
import type { BenchImage } from "./images.ts"

/** Shared by the benchmark groups. */
export interface Ctx {
  /** A directory on the scratch ext4; each group works in its own subdirectory. */
  readonly dir: string
  readonly quick: boolean
  /** Measured rounds per comparison (after one warm-up round). */
  readonly rounds: number
  readonly registriesConf: string
  readonly mirrorPort: number
  /** The fixtures' OCI layout (tags redis-alpine, nginx-alpine, ...), for umoci. */
  readonly fixtureLayout: string
  readonly bulk: BenchImage
  readonly scale: ReadonlyArray<BenchImage>
  /** Markdown sections of the profile, appended by the groups. */
  readonly profile: string[]
}
