#!/usr/bin/env node
// The command, present before the first build (pnpm links bins at install time); the code is in dist/.
import '../dist/cli.js'
