#!/usr/bin/env node
/** Entry point of `portunus-standalone`: parse argv, run, exit with the returned code. */
import { runStandaloneCli } from '../program.js';

process.exit(await runStandaloneCli(process.argv.slice(2)));
