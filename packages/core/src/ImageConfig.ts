// ImageConfig: the parts of an OCI image config (image-spec config.json) that running needs.

/** The `config` object of an OCI image configuration. */
export interface ImageConfig {
  readonly User?: string
  readonly ExposedPorts?: Readonly<Record<string, object>>
  readonly Env?: ReadonlyArray<string>
  readonly Entrypoint?: ReadonlyArray<string> | null
  readonly Cmd?: ReadonlyArray<string> | null
  readonly Volumes?: Readonly<Record<string, object>>
  readonly WorkingDir?: string
  readonly Labels?: Readonly<Record<string, string>>
  readonly StopSignal?: string
}

/** A whole OCI image configuration blob. */
export interface ImageConfigBlob {
  readonly architecture: string
  readonly os: string
  readonly config?: ImageConfig
  readonly rootfs: { readonly type: string; readonly diff_ids: ReadonlyArray<string> }
  readonly history?: ReadonlyArray<Record<string, unknown>>
  readonly created?: string
}

/** An OCI content descriptor (manifest layers, config). */
export interface Descriptor {
  readonly mediaType: string
  readonly digest: string
  readonly size: number
  readonly annotations?: Readonly<Record<string, string>>
}

/** An OCI image manifest (or a Docker schema 2 one, which has the same shape). */
export interface ImageManifest {
  readonly schemaVersion: number
  readonly mediaType?: string
  readonly config: Descriptor
  readonly layers: ReadonlyArray<Descriptor>
  readonly annotations?: Readonly<Record<string, string>>
}
