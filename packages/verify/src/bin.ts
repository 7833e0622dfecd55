#!/usr/bin/env node
/// <reference types="node" />
import { runCli } from './cli.js';

runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`keymint-verify: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 2;
  },
);
