#!/usr/bin/env node
// The installed entry point. It is committed (not built) because npm links workspace bins
// during `npm ci`, before `prepare` compiles dist/; the compiled entry does the work.
import '../dist/bin/portunus-standalone.js';
