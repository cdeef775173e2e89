#!/usr/bin/env node
// The graceful-cluster command. A file of its own, not dist/esm/bin.js itself, so that the bin exists before
// the first build: pnpm links a workspace package's bins at install time, and skips one whose file is missing.
import '../dist/esm/bin.js'
