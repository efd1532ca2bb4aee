#!/usr/bin/env node
// The `qbnn` command: see `qbnn --help`.
import { main } from './cli.js';

process.exitCode = await main(process.argv.slice(2));
