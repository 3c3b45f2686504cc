/** True when `bundle` exists and is at least as new as every file and directory under `sources` (a missing one is skipped). */
export declare const bundleIsCurrent: (bundle: string, sources: ReadonlyArray<string>) => boolean
