// Types of scripts/pack.mjs, for the tests that use it.
export const ROOT: string
export const PACKAGES: readonly string[]
export const cleanEnv: NodeJS.ProcessEnv
export function fileInTarball (tarball: string, path: string): string
export function filesInTarball (tarball: string): string[]
export function packAll (dir: string): Record<string, string>
