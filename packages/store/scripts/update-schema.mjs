// Rewrites packages/store/schema.sql from the migrations (run after `npm run build`).
import fs from 'node:fs';

import { SCHEMA_SNAPSHOT_FILE, renderSchemaSnapshot } from '../dist/schema-snapshot.js';

fs.writeFileSync(SCHEMA_SNAPSHOT_FILE, renderSchemaSnapshot());
console.log(`wrote ${SCHEMA_SNAPSHOT_FILE.pathname}`);
