// The tests run as Node strips their types (no compiler in each test process). TypeScript's
// NodeNext imports name the emitted `.js`: from a `.ts` file, a relative `./x.js` that is not
// on disk resolves to the `./x.ts` beside it. Loaded by tap with --import (package.json).
import { existsSync } from 'node:fs'
import * as nodeModule from 'node:module'

if (typeof nodeModule.registerHooks !== 'function') {
  throw new Error(`the tests need Node.js 22.15 or later (module.registerHooks); this is ${process.version}`)
}

nodeModule.registerHooks({
  resolve (specifier, context, nextResolve) {
    if (specifier.endsWith('.js') && (specifier.startsWith('./') || specifier.startsWith('../')) && context.parentURL?.endsWith('.ts')) {
      const js = new URL(specifier, context.parentURL)
      const ts = new URL(specifier.slice(0, -3) + '.ts', context.parentURL)
      if (!existsSync(js) && existsSync(ts)) return nextResolve(ts.href, context)
    }
    return nextResolve(specifier, context)
  }
})
