import { expressHarness } from './express-harness.js'
import { fastifyHarness } from './fastify-harness.js'
import type { Harness } from './harness.js'

/** Every adapter the contract suite runs against. */
export const harnesses: Harness[] = [fastifyHarness, expressHarness]
