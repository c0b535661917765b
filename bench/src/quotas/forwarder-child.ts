/**
 * A forwarder in a process of its own for the quotas benchmark:
 * `node forwarder-child.js '{"rules":[…],"budgets":{"owner":bytes}}'`. It activates the RuleSpecs,
 * gives each listed owner its quota budget (what a `TrafficQuotaUpdate{SET}` does on a client),
 * and prints one JSON ready line with the bound ports. On SIGTERM it prints what remains of each
 * budget (negative: bytes paid past it) and closes every rule, which lets the process exit.
 * Depends only on @portunus/forwarder.
 */
import { Forwarder, type RuleSpec } from '@portunus/forwarder';

const [configJson] = process.argv.slice(2);
if (configJson === undefined) {
  throw new Error('usage: node forwarder-child.js \'{"rules":[…],"budgets":{…}}\'');
}
const config = JSON.parse(configJson) as { rules: RuleSpec[]; budgets: Record<string, number> };
const forwarder = new Forwarder({ listenHost: '127.0.0.1' });
const ports: Record<string, number[]> = {};
for (const rule of config.rules) ports[rule.ruleId] = (await forwarder.activate(rule)).ports;
for (const [owner, bytes] of Object.entries(config.budgets)) forwarder.quotas.set(owner, bytes);
console.log(JSON.stringify({ event: 'bench.quotas_forwarder_ready', pid: process.pid, ports }));
process.on('SIGTERM', () => {
  console.log(
    JSON.stringify({
      event: 'bench.quotas_forwarder_budgets',
      budgets: forwarder.quotas.snapshot(),
    }),
  );
  void forwarder.close({ drainMs: 0 });
});
