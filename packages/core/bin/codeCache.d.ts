/** The cache's file for the bundle as it is now (its size and mtime in the name). */
export declare const cacheFileOf: (bundle: string) => string
/** Every cache file a bundle ever had. */
export declare const cacheFilesOf: (bundle: string) => ReadonlyArray<string>
/** Loads `bundle` (CommonJS) through V8's code cache and returns its exports. */
export declare const loadCached: (bundle: string) => Record<string, unknown>
/** The cache in `file` (V8's data, and the CPU time the process that wrote it had used), or undefined. */
export declare const readCache: (file: string) => { readonly cpuMs: number; readonly data: Buffer } | undefined
