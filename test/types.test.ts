// The type errors a user sees for bad options (test/types/route-options.ts): type-checks that file with its
// `@ts-expect-error` comments taken out, and checks that every error is the one its comment announces — code
// and message — on the line below it, and that no other line has an error. `pnpm typecheck` alone would only
// say that each of those lines has some error.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const FILE = fileURLToPath(new URL('./types/route-options.ts', import.meta.url))
const DIRECTIVE = /^\s*\/\/ @ts-expect-error (TS\d+): (.+)$/

interface Expected { line: number, code: number, text: string }

t.test('per-route and adapter options: each expected type error has the announced code and message, and nothing else errs', (t) => {
  const source = readFileSync(FILE, 'utf8')
  const lines = source.split('\n')
  const expected: Expected[] = []
  const stripped = lines.map((line, i) => {
    const m = DIRECTIVE.exec(line)
    if (m === null) return line
    expected.push({ line: i + 1, code: Number((m[1] as string).slice(2)), text: (m[2] as string).trim() })
    return '' // keeps the line numbers
  })
  t.ok(expected.length >= 8, `the file announces its errors (${expected.length})`)

  const config = ts.getParsedCommandLineOfConfigFile(`${ROOT}tsconfig.json`, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} })
  if (config === undefined) throw new Error('tsconfig.json could not be read')
  const host = ts.createCompilerHost(config.options)
  const readFile = host.readFile
  host.readFile = (name) => name === FILE ? stripped.join('\n') : readFile.call(host, name)
  const getSourceFile = host.getSourceFile
  host.getSourceFile = (name, target, ...rest) => name === FILE
    ? ts.createSourceFile(name, stripped.join('\n'), target)
    : getSourceFile.call(host, name, target, ...rest)
  const program = ts.createProgram([FILE], { ...config.options, noEmit: true }, host)
  const diagnostics = ts.getPreEmitDiagnostics(program).filter((d) => d.file?.fileName === FILE)
  const found = diagnostics.map((d) => ({
    line: (d.file as ts.SourceFile).getLineAndCharacterOfPosition(d.start ?? 0).line + 1,
    code: d.code,
    message: ts.flattenDiagnosticMessageText(d.messageText, '\n')
  }))

  for (const e of expected) {
    const target = e.line + 1
    const here = found.filter((f) => f.line === target)
    t.ok(here.some((f) => f.code === e.code && f.message.includes(e.text)),
      `line ${target}: TS${e.code} containing "${e.text}"`, { found: here })
  }
  const stray = found.filter((f) => !expected.some((e) => e.line + 1 === f.line))
  t.same(stray, [], 'no error on any other line (a misspelt option without satisfies type-checks, as the file says)')
  t.end()
})
