#!/usr/bin/env node
// The bin lives outside dist so that `pnpm install` can link it before the first build (a bin whose file
// does not exist yet is skipped, and stays missing until the next install); it runs the built CLI.
import '../dist/esm/bin.js'
