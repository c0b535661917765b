// Proves portunus.toml is read as the reference §12 says: defaults, ranges mapped onto the
// forwarder's RuleSpec, multi-target lists, the stable id from the name, and every problem at
// once with its key path (unknown keys, both/neither of a pair, widths, the shared host checks),
// and source allow/deny lists normalised by the shared CIDR parser or refused entry by entry.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';

import { PortunusError } from '@portunus/core';

import { parseConfig, parseTargetString, ruleIdForName } from './config.js';

function problems(text: string): string[] {
  try {
    parseConfig(text, 'test.toml');
  } catch (error) {
    assert.ok(error instanceof PortunusError);
    assert.equal(error.code, 'standalone_config_invalid');
    assert.equal(error.exitCode, 2);
    return (error.fields['problems'] as { path: string; message: string }[]).map(
      (p) => `${p.path}: ${p.message}`,
    );
  }
  return [];
}

describe('parseConfig', () => {
  it('fills the reference defaults', () => {
    const config = parseConfig(
      '[[rule]]\nname = "a"\nlisten_port = 80\ntarget = "h.example:8080"',
      'x',
    );
    assert.equal(config.global.logLevel, 'warn');
    assert.equal(config.global.logFormat, 'json');
    assert.equal(config.global.shutdownDrainSecs, 30);
    assert.deepEqual(config.stats, {
      enabled: true,
      socketPath: '/run/portunus/standalone.sock',
      refreshMs: 1000,
    });
    const [rule] = config.rules;
    assert.ok(rule);
    assert.equal(rule.udpMaxFlows, 1024);
    assert.equal(rule.udpFlowIdleSecs, 60);
    assert.equal(rule.spec.protocol, 'tcp');
    assert.equal(rule.spec.preferIpv6, false);
    assert.deepEqual(rule.spec.targets, [
      { host: 'h.example', port: 8080, portEnd: null, priority: 0, proxyProtocol: null },
    ]);
    assert.ok(Object.isFrozen(config) && Object.isFrozen(rule.spec.targets));
  });

  it('maps ranges, [defaults], multi-target lists and per-rule overrides', () => {
    const config = parseConfig(
      [
        '[defaults]',
        'protocol = "udp"',
        'udp_max_flows = 10',
        'prefer_ipv6 = true',
        '[[rule]]',
        'name = "range"',
        'listen_ports = "5000-5009"',
        'target = "[::1]:6000-6009"',
        '[[rule]]',
        'name = "multi"',
        'protocol = "tcp"',
        'listen_port = 443',
        'prefer_ipv6 = false',
        'targets = [{ host = "a.example", port = 443, priority = 5, proxy_protocol = "V2" }, { host = "10.0.0.1", port = 443 }]',
      ].join('\n'),
      'x',
    );
    const [range, multi] = config.rules;
    assert.ok(range && multi);
    assert.equal(range.spec.protocol, 'udp');
    assert.equal(range.spec.listenPort, 5000);
    assert.equal(range.spec.listenPortEnd, 5009);
    assert.equal(range.spec.targets[0]?.host, '::1');
    assert.equal(range.spec.targets[0].portEnd, 6009);
    assert.equal(range.udpMaxFlows, 10);
    assert.equal(range.spec.preferIpv6, true);
    assert.equal(multi.spec.protocol, 'tcp');
    assert.equal(multi.spec.preferIpv6, false);
    assert.deepEqual(
      multi.spec.targets.map((t) => [t.host, t.priority, t.proxyProtocol]),
      [
        ['a.example', 5, 'v2'],
        ['10.0.0.1', 1, null],
      ],
    );
  });

  it('reads source lists in their normal spelling and refuses bad entries by index', () => {
    const config = parseConfig(
      [
        '[[rule]]',
        'name = "src"',
        'listen_port = 80',
        'target = "h.example:8080"',
        'allowed_sources = ["10.0.0.0/8", "2001:DB8::/32"]',
        'denied_sources = ["10.0.0.7"]',
      ].join('\n'),
      'x',
    );
    assert.deepEqual(config.rules[0]!.spec.allowedSources, ['10.0.0.0/8', '2001:db8::/32']);
    assert.deepEqual(config.rules[0]!.spec.deniedSources, ['10.0.0.7/32']);
    const tooMany = JSON.stringify(Array.from({ length: 65 }, (_, i) => `10.${i}.0.0/16`));
    const found = problems(
      [
        '[[rule]]',
        'name = "bad"',
        'listen_port = 81',
        'target = "h.example:1"',
        'allowed_sources = ["10.0.0.0/8", "10.0.0.1/8"]',
        'denied_sources = "10.0.0.0/8"',
        '[[rule]]',
        'name = "long"',
        'listen_port = 82',
        'target = "h.example:1"',
        `allowed_sources = ${tooMany}`,
      ].join('\n'),
    );
    assert.deepEqual(found, [
      'rule[0].allowed_sources[1]: host bits are set below /8',
      'rule[0].denied_sources: must be a list of CIDR strings',
      'rule[1].allowed_sources: holds at most 64 entries',
    ]);
  });

  it('derives a stable 64-bit id from the name', () => {
    assert.equal(ruleIdForName('web'), ruleIdForName('web'));
    assert.notEqual(ruleIdForName('web'), ruleIdForName('web2'));
    assert.ok(BigInt(ruleIdForName('web')) < 2n ** 64n);
  });

  it('reports every problem at once with its key path', () => {
    const found = problems(
      [
        'extra = 1',
        '[global]',
        'log_format = "xml"',
        '[stats]',
        'refresh_ms = 6000',
        'colour = "red"',
        '[[rule]]',
        'name = "both"',
        'listen_port = 1',
        'listen_ports = "1-2"',
        'target = "a.example:1"',
        '[[rule]]',
        'name = "width"',
        'listen_ports = "100-109"',
        'target = "a.example:200-201"',
        '[[rule]]',
        'name = "multi-range"',
        'listen_ports = "300-301"',
        'targets = [{ host = "a.example", port = 1 }, { host = "b.example", port = 1 }]',
        '[[rule]]',
        'name = "targets"',
        'listen_port = 400',
        'targets = [{ host = "1.2.3", port = 1 }, { host = "x.example", port = 1, weight = 3 }, { host = "X.example", port = 1 }]',
        '[[rule]]',
        'listen_port = 500',
        'target = "nohostport"',
      ].join('\n'),
    );
    const expected = [
      'extra: unknown key',
      'global.log_format: must be one of json, pretty; got "xml"',
      'stats.colour: unknown key',
      'stats.refresh_ms: must be an integer in 250..5000',
      'rule[0]: give exactly one of listen_port or listen_ports',
      'rule[1]: the listen and target ranges must have the same length',
      'rule[2]: a listen range takes exactly one target',
      'rule[3].targets[0].host: invalid_target_host:',
      'rule[3].targets[1].weight: unknown key',
      'rule[3].targets[2]: duplicates rule[3].targets[1] (x.example:1)',
      'rule[4].name: is required',
      'rule[4].target: must be "host:port"',
    ];
    for (const prefix of expected) {
      assert.ok(
        found.some((line) => line.startsWith(prefix)),
        `${prefix}\n in\n${found.join('\n')}`,
      );
    }
  });

  it('refuses SNI patterns, saying SNI routing is client/server mode only', () => {
    const rule = '[[rule]]\nname = "tls"\nlisten_port = 443\ntarget = "10.0.0.1:443"';
    assert.deepEqual(problems(`${rule}\nsni_pattern = "a.example.com"`), [
      'rule[0].sni_pattern: SNI routing is client/server mode only (portunus-client); the standalone does not route by SNI',
    ]);
  });

  it('refuses two rules on one protocol/port, but not tcp and udp on the same port', () => {
    const base = 'listen_port = 53\ntarget = "10.0.0.1:53"';
    assert.deepEqual(
      problems(`[[rule]]\nname="t"\n${base}\n[[rule]]\nname="u"\nprotocol="udp"\n${base}`),
      [],
    );
    assert.deepEqual(problems(`[[rule]]\nname="a"\n${base}\n[[rule]]\nname="b"\n${base}`), [
      'rule[1]: tcp port 53 is also listened on by rule "a"',
    ]);
  });

  it('names a TOML syntax error', () => {
    assert.equal(problems('[[rule]\nname = ')[0]?.startsWith('(file): '), true);
  });

  it('accepts the shipped sample portunus.toml', () => {
    const sample = new URL('../../../packaging/portunus.toml', import.meta.url);
    const config = parseConfig(fs.readFileSync(sample, 'utf8'), 'sample');
    assert.ok(config.rules.length >= 3);
  });
});

describe('parseTargetString', () => {
  it('reads host:port, host:lo-hi and bracketed IPv6', () => {
    assert.deepEqual(parseTargetString('example.com:80'), {
      host: 'example.com',
      port: 80,
      portEnd: null,
      priority: 0,
      proxyProtocol: null,
    });
    assert.equal((parseTargetString('[2001:db8::1]:80') as { host: string }).host, '2001:db8::1');
    assert.equal((parseTargetString('10.0.0.1:10-20') as { portEnd: number }).portEnd, 20);
  });

  it('explains what is wrong', () => {
    assert.match(parseTargetString('10.0.0.1:0') as string, /not 1\.\.65535/);
    assert.match(parseTargetString('2001:db8::1:80') as string, /IPv6 in brackets/);
    assert.match(parseTargetString('bad_host:80') as string, /^invalid_target_host/);
  });
});
