// Every test counts towards the coverage of the packages' sources, and of nothing else
// (fixtures, harnesses and benchmarks are not the product).
import { readdirSync } from 'node:fs'

const sources = ['core', 'cluster', 'fastify', 'express', 'check'].flatMap((pkg) =>
  readdirSync(new URL(`../packages/${pkg}/src/`, import.meta.url))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => `packages/${pkg}/src/${f}`))

export default function coverageMap () {
  return sources
}
