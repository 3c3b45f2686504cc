/** True when `bundle` exists and is at least as new as every file under `sourceDirs`. */
export declare const bundleIsCurrent: (bundle: string, sourceDirs: ReadonlyArray<string>) => boolean
