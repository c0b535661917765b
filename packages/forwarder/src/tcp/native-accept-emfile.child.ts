/**
 * The child process of native-accept-faults.test.ts: a forwarder with one ungated TCP rule (so
 * the splice addon accepts natively) to the target port given as argv[2], run under a low
 * `ulimit -n` by the test. Its log lines go to stderr as JSON, each `rule.accept_error` with the
 * addon's wake-up count at that moment. SIGUSR2 opens /dev/null until the process is out of
 * descriptors (EMFILE), SIGHUP closes them again. Test fixture only: it is not a test file.
 */
import fs from 'node:fs';

import type { LogFields, Logger } from '@portunus/core';

import { FORWARDER_EVENTS, Forwarder, simpleRule, spliceStats } from '../index.js';

function emit(level: string, event: string, fields: LogFields = {}): void {
  const extra =
    event === FORWARDER_EVENTS.acceptError ? { wakeups: spliceStats()?.wakeups ?? -1 } : {};
  process.stderr.write(`${JSON.stringify({ level, event, ...fields, ...extra })}\n`);
}

const logger: Logger = {
  debug: (event, fields) => {
    emit('debug', event, fields);
  },
  info: (event, fields) => {
    emit('info', event, fields);
  },
  warn: (event, fields) => {
    emit('warn', event, fields);
  },
  error: (event, fields) => {
    emit('error', event, fields);
  },
  child: () => logger,
};

const forwarder = new Forwarder({ logger, listenHost: '127.0.0.1' });
const { ports } = await forwarder.activate(
  simpleRule({
    ruleId: 'emfile',
    protocol: 'tcp',
    listenPort: 0,
    targetHost: '127.0.0.1',
    targetPort: Number(process.argv[2]),
  }),
);

const held: number[] = [];
process.on('SIGUSR2', () => {
  try {
    for (;;) held.push(fs.openSync('/dev/null', 'r'));
  } catch (error) {
    emit('info', 'test.filled', { held: held.length, code: (error as { code?: string }).code });
  }
});
process.on('SIGHUP', () => {
  for (const fd of held.splice(0)) fs.closeSync(fd);
  emit('info', 'test.freed');
});
emit('info', 'test.ready', { port: ports[0] });
