#!/usr/bin/env node
/** Entry point of `portunus-client`: parse argv, run, exit with the returned code. */
import { runClientCli } from '../program.js';

process.exit(await runClientCli(process.argv.slice(2)));
