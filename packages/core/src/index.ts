// @syscontainers/core: daemonless containers from OCI images, as typed Effect steps.
export * from "./Errors.ts"
export * from "./Spawn.ts"
