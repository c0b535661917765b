// Proves alert delivery against a real HTTP receiver on loopback: the body shape, the HMAC-SHA256
// signature the test recomputes from the raw body, the timestamp header, delivery to every
// webhook, retries with backoff while the receiver is down (connection refused) and when it
// answers 500, then delivery once it is up; giving up after the attempts and counting it; a full
// queue dropping the oldest; an audit row per alert; the secret never logged. And the sources:
// client.offline only after the grace period (a reconnect within it sends nothing), client.online
// after an offline alert, target.down/up only once a health change held for the debounce time.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, describe, it } from 'node:test';

import { Registry } from 'prom-client';

import type { PerTargetStats } from '@portunus/proto';
import type { AuditRecord } from '@portunus/store';
import { WebhookReceiver, freePort, recordingLogger, waitFor } from '@portunus/test-support';

import {
  AlertDispatcher,
  Alerter,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  signBody,
  type AlertBody,
} from './alerts.js';

const SECRET = 'a-webhook-secret-of-enough-bytes';
const receivers: WebhookReceiver[] = [];
const dispatchers: AlertDispatcher[] = [];

after(async () => {
  for (const dispatcher of dispatchers) dispatcher.close();
  for (const receiver of receivers) await receiver.stop();
});

async function receiver(): Promise<WebhookReceiver> {
  const made = new WebhookReceiver();
  await made.start();
  receivers.push(made);
  return made;
}

function dispatcher(
  urls: string[],
  delivery: ConstructorParameters<typeof AlertDispatcher>[0]['delivery'] = {},
) {
  const registry = new Registry();
  const audit: AuditRecord[] = [];
  const logger = recordingLogger();
  const made = new AlertDispatcher({
    config: { webhookUrls: urls, secret: SECRET },
    logger,
    registry,
    audit: {
      offer: (record) => {
        audit.push(record);
        return true;
      },
    },
    now: () => Date.UTC(2026, 4, 1, 12),
    delivery: { backoffBaseMs: 20, backoffMaxMs: 80, timeoutMs: 2_000, ...delivery },
  });
  dispatchers.push(made);
  const sent = async (event: string, outcome: string): Promise<number> => {
    const metric = await registry.getSingleMetric('portunus_alerts_sent_total')?.get();
    return (
      metric?.values.find(
        (value) => value.labels['event'] === event && value.labels['outcome'] === outcome,
      )?.value ?? 0
    );
  };
  return { dispatcher: made, audit, logger, sent };
}

const sample = {
  event: 'client.offline' as const,
  subject: { client_id: '01HCLIENT', client_name: 'edge-1' },
  message: 'Client edge-1 has been disconnected for more than 60 s.',
};

describe('alert delivery', () => {
  it('POSTs a signed JSON body to every webhook, audits it and never logs the secret', async () => {
    const [a, b] = [await receiver(), await receiver()];
    const { dispatcher: d, audit, logger, sent } = dispatcher([a.url, b.url]);
    d.send(sample);
    await d.idle();
    for (const hook of [a, b]) {
      assert.equal(hook.received.length, 1);
      const { headers, body } = hook.received[0]!;
      const expected = `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;
      assert.equal(headers[SIGNATURE_HEADER], expected, 'the receiver can verify the body');
      assert.equal(headers[TIMESTAMP_HEADER], String(Date.UTC(2026, 4, 1, 12) / 1000));
      assert.equal(headers['content-type'], 'application/json');
      const parsed = JSON.parse(body) as AlertBody;
      assert.deepEqual(parsed, { ...sample, time: '2026-05-01T12:00:00.000Z' });
    }
    assert.equal(
      signBody(SECRET, 'x'),
      `sha256=${createHmac('sha256', SECRET).update('x').digest('hex')}`,
    );
    assert.equal(await sent('client.offline', 'delivered'), 2);
    assert.equal(audit.length, 1, 'one audit row per alert, not per webhook');
    assert.equal(audit[0]?.action, 'alert.client.offline');
    assert.equal(audit[0].actor, '_server');
    assert.ok(!JSON.stringify(logger.lines).includes(SECRET));
  });

  it('retries with backoff while the receiver is down, then delivers once it is up', async () => {
    const port = await freePort();
    const hook = new WebhookReceiver();
    receivers.push(hook);
    const {
      dispatcher: d,
      logger,
      sent,
    } = dispatcher([`http://127.0.0.1:${port}/hook`], {
      maxAttempts: 50,
    });
    d.send(sample);
    // Refused at least twice (the receiver is down), then it comes up on the same port.
    await waitFor(() => logger.count('alert.retry') >= 2, { what: 'two refused attempts' });
    assert.ok(d.pending > 0, 'still queued, the caller never waited');
    await hook.start(port);
    await d.idle();
    assert.equal(hook.received.length, 1);
    assert.equal(await sent('client.offline', 'delivered'), 1);
    const retry = logger.lines.find((line) => line.event === 'alert.retry');
    assert.equal(retry?.fields['problem'], 'ECONNREFUSED');
    assert.ok(Number(retry.fields['retry_in_ms']) >= 20);
  });

  it('retries a receiver answering 500 and gives up after the attempts, counting a failure', async () => {
    const hook = await receiver();
    hook.status = 500;
    const { dispatcher: d, logger, sent } = dispatcher([hook.url], { maxAttempts: 3 });
    d.send(sample);
    await d.idle();
    assert.equal(hook.received.length, 3, 'three attempts');
    assert.equal(await sent('client.offline', 'failed'), 1);
    assert.equal(await sent('client.offline', 'delivered'), 0);
    assert.equal(
      logger.lines.find((line) => line.event === 'alert.failed')?.fields['problem'],
      'http_500',
    );
  });

  it('drops the oldest delivery when the queue is full, and counts it', async () => {
    const port = await freePort();
    const { dispatcher: d, sent } = dispatcher([`http://127.0.0.1:${port}/hook`], {
      queueCapacity: 2,
      concurrency: 1,
      maxAttempts: 2,
    });
    for (let i = 0; i < 5; i++) d.send(sample);
    assert.ok(d.pending <= 3, `pending ${d.pending}`);
    assert.ok((await sent('client.offline', 'dropped')) >= 2);
    await d.idle();
  });
});

describe('alert sources', () => {
  function alerter(graceSecs = 60, debounceSecs = 30) {
    const sent: Omit<AlertBody, 'time'>[] = [];
    let clock = 1_000_000;
    const timers = new Map<number, () => void>();
    let next = 0;
    const made = new Alerter({
      dispatcher: {
        send: (alert) => {
          sent.push(alert);
          return { ...alert, time: '' };
        },
      },
      config: { clientOfflineGraceSecs: graceSecs, targetDebounceSecs: debounceSecs },
      now: () => clock,
      timers: {
        setTimeout: (run) => {
          timers.set(++next, run);
          return next;
        },
        clearTimeout: (handle) => {
          timers.delete(handle as number);
        },
      },
    });
    return {
      alerter: made,
      sent,
      fireTimers: () => {
        for (const [id, run] of [...timers]) {
          timers.delete(id);
          run();
        }
      },
      pendingTimers: () => timers.size,
      advance: (ms: number) => {
        clock += ms;
      },
    };
  }
  const client = { clientId: '01HCLIENT', clientName: 'edge-1' };

  it('sends nothing for a reconnect within the grace period', () => {
    const { alerter: a, sent, pendingTimers } = alerter();
    a.clientOffline(client);
    assert.equal(pendingTimers(), 1);
    a.clientOnline(client);
    assert.equal(pendingTimers(), 0);
    assert.deepEqual(sent, []);
  });

  it('sends client.offline after the grace period and client.online when it returns', () => {
    const { alerter: a, sent, fireTimers } = alerter();
    a.clientOffline(client);
    a.clientOffline(client);
    fireTimers();
    assert.deepEqual(
      sent.map((alert) => alert.event),
      ['client.offline'],
    );
    assert.equal(sent[0]?.subject['client_id'], '01HCLIENT');
    a.clientOnline(client);
    a.clientOnline(client);
    assert.deepEqual(
      sent.map((alert) => alert.event),
      ['client.offline', 'client.online'],
    );
  });

  it('debounces target health: a flap shorter than the debounce sends nothing', () => {
    const { alerter: a, sent, advance } = alerter(60, 30);
    const rule = { ruleId: 7, clientId: '01HCLIENT', clientName: 'edge-1', ownerUserId: 'alice' };
    const target = (health: number): PerTargetStats => ({
      index: 1,
      host: '192.0.2.9',
      port: 443,
      priority: 1,
      health,
      consecutive_failures: health === 0 ? 0 : 3,
      last_failure_at_unix_ms: 0,
      last_success_at_unix_ms: 0,
      bytes_in: 0,
      bytes_out: 0,
      connections_accepted: 0,
    });
    a.targetHealth(rule, [target(0)]);
    advance(5_000);
    a.targetHealth(rule, [target(1)]);
    advance(10_000);
    a.targetHealth(rule, [target(0)]);
    advance(60_000);
    a.targetHealth(rule, [target(0)]);
    assert.equal(sent.length, 0, 'a 10 s flap is not an alert');
    a.targetHealth(rule, [target(1)]);
    advance(29_000);
    a.targetHealth(rule, [target(1)]);
    assert.equal(sent.length, 0);
    advance(1_000);
    a.targetHealth(rule, [target(1)]);
    assert.deepEqual(
      sent.map((alert) => alert.event),
      ['target.down'],
    );
    assert.equal(sent[0]?.subject['target'], '192.0.2.9:443');
    a.targetHealth(rule, [target(1)]);
    a.targetHealth(rule, [target(0)]);
    advance(30_000);
    a.targetHealth(rule, [target(0)]);
    assert.deepEqual(
      sent.map((alert) => alert.event),
      ['target.down', 'target.up'],
    );
  });
});
