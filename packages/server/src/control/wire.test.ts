// Proves the capability gates (reference §4.4, proto's FEATURE_MIN_VERSION): a client of this
// line at 0.10 gets multi-target, PROXY (also v2 on UDP) and DNS targets; an older client still
// gets the reference's *_unsupported_by_client codes; SNI needs 0.11; rate limits stay gated
// above the current client; and a stored rule becomes the data plane's RuleSpec and the wire Rule.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { Rule, RuleTarget } from '@portunus/store';

import { capabilityGate, capabilitiesOf, ruleSpecOf, toWireRule } from './wire.js';

function target(host: string, port: number, extra: Partial<RuleTarget> = {}): RuleTarget {
  return { host, port, portEnd: null, priority: 0, proxyProtocol: null, ...extra };
}

function rule(overrides: Partial<Rule> = {}): Rule {
  return {
    ruleId: 4,
    clientId: '01JCLIENT',
    clientName: 'edge',
    ownerUserId: 'alice',
    protocol: 'tcp',
    listenPort: 8443,
    listenPortEnd: null,
    preferIpv6: false,
    healthCheckIntervalSecs: null,
    sniPattern: null,
    rateLimit: null,
    state: { kind: 'active' },
    targets: [target('10.0.0.1', 443)],
    createdAt: 0,
    updatedAt: 0,
    lastStateChangeAt: 0,
    ...overrides,
  };
}

const caps = (version: string, protocols: ('TCP' | 'UDP')[] = ['TCP', 'UDP']) =>
  capabilitiesOf({
    protocol_version: '1.0.0',
    client_version: version,
    supported_protocols: protocols,
  });

const multi = rule({ targets: [target('a.example', 1), target('10.0.0.2', 2, { priority: 1 })] });
const proxied = rule({ targets: [target('10.0.0.1', 443, { proxyProtocol: 'v1' })] });
const udpV2 = rule({
  protocol: 'udp',
  targets: [target('10.0.0.1', 53, { proxyProtocol: 'v2' })],
});

describe('capabilityGate', () => {
  it('lets a current (0.10) client have multi-target, PROXY, UDP PROXY v2 and DNS targets', () => {
    for (const r of [multi, proxied, udpV2, rule({ targets: [target('db.internal', 5432)] })]) {
      assert.equal(capabilityGate(r, caps('0.10.0')), undefined);
    }
  });

  it('refuses an older client with the reference codes', () => {
    assert.equal(capabilityGate(multi, caps('0.1.0')), 'multi_target_unsupported_by_client');
    assert.equal(capabilityGate(proxied, caps('0.1.0')), 'proxy_protocol_unsupported_by_client');
    assert.equal(capabilityGate(udpV2, caps('0.9.3')), 'proxy_protocol_unsupported_by_client');
    assert.equal(capabilityGate(udpV2, caps('0.10.0', ['TCP'])), 'unsupported_protocol');
    // An unknown version passes the multi-target gate at push (reference), not the PROXY gate.
    assert.equal(capabilityGate(multi, caps('')), undefined);
    assert.equal(capabilityGate(proxied, caps('')), 'proxy_protocol_unsupported_by_client');
  });

  it('gates SNI at 0.11 and keeps rate limits above the current client', () => {
    assert.equal(
      capabilityGate(rule({ sniPattern: 'app.example.com' }), caps('0.10.0')),
      'sni_unsupported_by_client',
    );
    assert.equal(
      capabilityGate(rule({ sniPattern: 'app.example.com' }), caps('0.11.0')),
      undefined,
    );
    // An unknown version passes the SNI gate at push, as in the reference (§4.4).
    assert.equal(capabilityGate(rule({ sniPattern: 'app.example.com' }), caps('')), undefined);
    assert.equal(
      capabilityGate(rule({ rateLimit: { bandwidthInBps: 1000 } }), caps('0.10.0')),
      'rate_limit_unsupported_by_client',
    );
  });
});

describe('toWireRule', () => {
  it('sends the targets list for multi-target and PROXY rules, the legacy fields always', () => {
    const wire = toWireRule({ ...multi, preferIpv6: true, healthCheckIntervalSecs: 5 });
    assert.equal(wire.target_host, 'a.example');
    assert.deepEqual(
      wire.targets.map((t) => [t.host, t.port, t.priority, t.proxy_protocol]),
      [
        ['a.example', 1, 0, null],
        ['10.0.0.2', 2, 1, null],
      ],
    );
    assert.equal(wire.prefer_ipv6, true);
    assert.equal(wire.health_check_interval_secs, 5);
    assert.equal(wire.owner_id, 'alice');
    assert.deepEqual(toWireRule(rule()).targets, [], 'a plain rule looks as it always did');
    assert.equal(toWireRule(udpV2).targets[0]?.proxy_protocol, 'V2');
  });

  it('maps a stored rule onto the forwarder RuleSpec', () => {
    const spec = ruleSpecOf(proxied);
    assert.equal(spec.ruleId, '4');
    assert.equal(spec.ownerId, 'alice');
    assert.deepEqual(spec.targets, proxied.targets);
  });
});
