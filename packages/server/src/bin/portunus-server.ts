#!/usr/bin/env node
/** Entry point of `portunus-server`: parse argv, run, exit with the returned code. */
import { runServerCli } from '../cli/program.js';

process.exit(await runServerCli(process.argv.slice(2)));
