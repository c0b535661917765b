// Proves server.toml parsing: every valid fixture loads, every invalid one fails with
// config_invalid (exit 2) naming each problem, unknown keys by name.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { PortunusError } from '@portunus/core';

import {
  DEFAULT_CONFIG,
  isLoopbackHost,
  loadServerConfig,
  parseListenAddress,
  parseServerConfig,
} from './config.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/config/', import.meta.url));
const fixture = (name: string): string => fs.readFileSync(`${FIXTURES}${name}`, 'utf8');

function configError(name: string): PortunusError {
  try {
    parseServerConfig(name, fixture(name));
  } catch (error) {
    assert.ok(error instanceof PortunusError);
    assert.equal(error.code, 'config_invalid');
    assert.equal(error.exitCode, 2);
    return error;
  }
  assert.fail(`${name} was accepted`);
}

describe('server.toml', () => {
  it('loads every valid fixture', () => {
    const names = fs.readdirSync(FIXTURES).filter((name) => name.startsWith('valid_'));
    assert.ok(names.length >= 3);
    for (const name of names)
      assert.doesNotThrow(() => parseServerConfig(name, fixture(name)), name);
  });

  it('reads every key of the full fixture', () => {
    const config = parseServerConfig('full', fixture('valid_full.toml'));
    assert.deepEqual(config.operatorHttpListen, { host: '127.0.0.1', port: 0 });
    assert.deepEqual(config.metricsListen, { host: '::1', port: 7081 });
    assert.equal(config.operatorHttpPublicOrigin, 'https://portunus.example.com');
    assert.equal(config.rangeRuleMaxPorts, 2048);
    assert.equal(config.udpFlowIdleSecs, 120);
    assert.equal(config.udpMaxFlowsPerRule, 4096);
    assert.equal(config.shutdownDrainTimeoutSecs, 10);
    assert.equal(config.tlsKeyPath, '/etc/portunus/server.key');
    assert.ok(Object.isFrozen(config));
  });

  it('uses the defaults for an empty file and a missing one', () => {
    const empty = parseServerConfig('empty', fixture('valid_empty.toml'));
    assert.deepEqual(empty.controlListen, DEFAULT_CONFIG.controlListen);
    assert.deepEqual(empty.operatorHttpListen, { host: '127.0.0.1', port: 7080 });
    assert.deepEqual(empty.metricsListen, { host: '127.0.0.1', port: 7081 });
    assert.equal(
      loadServerConfig('/nonexistent', () => undefined),
      DEFAULT_CONFIG,
    );
  });

  it('names an unknown key', () => {
    const error = configError('invalid_unknown_key.toml');
    assert.match(error.message, /unknown key "opertor_token"/);
  });

  it('refuses a metrics listener off loopback', () => {
    assert.match(
      configError('invalid_metrics_public.toml').message,
      /metrics_listen: must be a loopback/,
    );
  });

  it('reports every bad value at once', () => {
    const { message } = configError('invalid_types.toml');
    for (const key of [
      'control_listen',
      'udp_flow_idle_secs',
      'range_rule_max_ports',
      'log_format',
      'operator_http_public_origin',
    ]) {
      assert.match(message, new RegExp(`${key}:`), key);
    }
  });

  it('reports a syntax error with its line', () => {
    assert.match(configError('invalid_syntax.toml').message, /not valid TOML \(line 1/);
  });

  it('refuses blank TLS paths instead of falling back to the data dir defaults', () => {
    const { message } = configError('invalid_blank_paths.toml');
    assert.match(message, /tls_cert_path: must be a path/);
    assert.match(message, /tls_key_path: must be a path/);
  });

  it('rejects tables it does not know', () => {
    assert.match(configError('invalid_table.toml').message, /unknown key "listeners"/);
  });

  it('reads [alerts] with its defaults and sorted thresholds', () => {
    const config = parseServerConfig('alerts', fixture('valid_alerts.toml'));
    assert.deepEqual(config.alerts, {
      webhookUrls: ['https://hooks.example.com/portunus', 'http://127.0.0.1:9000/alerts'],
      secret: '0123456789abcdef0123456789abcdef',
      quotaThresholds: [0.5, 0.9, 1],
      clientOfflineGraceSecs: 120,
      targetDebounceSecs: 10,
    });
    const minimal = parseServerConfig(
      'minimal',
      '[alerts]\nwebhook_urls = ["http://127.0.0.1:1/h"]\nsecret = "0123456789abcdef"\n',
    );
    assert.deepEqual(minimal.alerts?.quotaThresholds, [0.8, 1]);
    assert.equal(minimal.alerts.clientOfflineGraceSecs, 60);
    assert.equal(minimal.alerts.targetDebounceSecs, 30);
    assert.equal(parseServerConfig('none', '').alerts, undefined);
  });

  it('names every [alerts] problem and never the secret', () => {
    const { message } = configError('invalid_alerts.toml');
    assert.match(message, /unknown key "alerts.webhook_url"/);
    assert.match(message, /alerts.webhook_urls\[0\]: expected an http\(s\) URL/);
    assert.match(
      message,
      /alerts.webhook_urls\[1\]: expected an http\(s\) URL without credentials/,
    );
    assert.match(message, /alerts.secret: expected a string of 16..256 bytes/);
    assert.match(message, /alerts.quota_thresholds/);
    assert.match(message, /alerts.client_offline_grace_secs/);
    assert.ok(!message.includes('short-secret'), 'the secret stays out of the message');
  });

  it('refuses a server.toml holding the alerts secret that group or others can read', () => {
    const text = fixture('valid_alerts.toml');
    const load = (mode: number) =>
      loadServerConfig(
        '/srv/portunus',
        () => text,
        () => mode,
      );
    assert.ok(load(0o100600).alerts);
    assert.throws(
      () => load(0o100640),
      (error: unknown) =>
        error instanceof PortunusError &&
        error.code === 'config_invalid' &&
        /readable by group or others; chmod 600/.test(error.message),
    );
    // Without [alerts] the mode is not the server's business.
    assert.doesNotThrow(() =>
      loadServerConfig(
        '/srv/portunus',
        () => 'log_format = "json"',
        () => 0o100644,
      ),
    );
  });

  it('covers every fixture with a test', () => {
    const names = fs.readdirSync(FIXTURES).filter((name) => name.startsWith('invalid_'));
    for (const name of names) configError(name);
  });
});

describe('listen addresses', () => {
  it('parses host:port and [v6]:port', () => {
    assert.deepEqual(parseListenAddress('0.0.0.0:7443'), { host: '0.0.0.0', port: 7443 });
    assert.deepEqual(parseListenAddress('[::]:0'), { host: '::', port: 0 });
    assert.deepEqual(parseListenAddress('localhost:80'), { host: 'localhost', port: 80 });
    for (const bad of [
      '7443',
      ':7443',
      '0.0.0.0:',
      '0.0.0.0:65536',
      '::1:80',
      '[zz]:80',
      'a b:1',
    ]) {
      assert.equal(parseListenAddress(bad), undefined, bad);
    }
  });

  it('knows loopback hosts', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost'])
      assert.ok(isLoopbackHost(host), host);
    for (const host of ['0.0.0.0', '10.0.0.1', '::', 'example.com'])
      assert.ok(!isLoopbackHost(host), host);
  });
});
