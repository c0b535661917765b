/**
 * @portunus/api: the operator HTTP API's request and response shapes, spelled once and imported by
 * the server (routes and views), the CLI and the web UI. It must stay browser-safe: no Node-only
 * imports and no workspace dependency, so Vite can bundle it into the SPA unchanged.
 */
export * from './shapes.js';
export * from './validation.js';
export * from './cidr.js';
export * from './sni.js';
export * from './rule-policy.js';
export * from './schemas.js';
export * from './schemas-rules.js';
