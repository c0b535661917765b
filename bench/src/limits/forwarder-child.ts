/**
 * A forwarder in a process of its own for the limits benchmark:
 * `node forwarder-child.js <forwarder module> '<json rules>'`. The module is given as a path so
 * the same child runs this branch's @portunus/forwarder and a build of an older commit (the CPU
 * comparison of run.ts); the rules are RuleSpec objects, which an older forwarder reads without
 * the fields it does not know. Prints one JSON ready line with the bound ports; on SIGTERM it
 * closes every rule and exits. Depends only on node:url and the module it is handed.
 */
import { pathToFileURL } from 'node:url';

import type { Forwarder, RuleSpec } from '@portunus/forwarder';

const [modulePath, rulesJson] = process.argv.slice(2);
if (modulePath === undefined || rulesJson === undefined) {
  throw new Error("usage: node forwarder-child.js <forwarder index.js> '[rules]'");
}
const imported = (await import(pathToFileURL(modulePath).href)) as {
  Forwarder: new (options: { listenHost: string }) => Forwarder;
};
const forwarder = new imported.Forwarder({ listenHost: '127.0.0.1' });
const ports: Record<string, number[]> = {};
for (const rule of JSON.parse(rulesJson) as RuleSpec[]) {
  ports[rule.ruleId] = (await forwarder.activate(rule)).ports;
}
console.log(JSON.stringify({ event: 'bench.limits_forwarder_ready', pid: process.pid, ports }));
// Closing every listener and connection leaves nothing to keep the process alive: it exits.
process.on('SIGTERM', () => {
  void forwarder.close({ drainMs: 0 });
});
