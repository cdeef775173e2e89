// A self-signed EC certificate for 127.0.0.1 and localhost, valid until 2126: test-only, no secret. It is
// committed (test/fixtures/tls/) rather than made at test time because CI's machine has no openssl.
import { readFileSync } from 'node:fs'

export const KEY = readFileSync(new URL('../fixtures/tls/key.pem', import.meta.url), 'utf8')
export const CERT = readFileSync(new URL('../fixtures/tls/cert.pem', import.meta.url), 'utf8')
