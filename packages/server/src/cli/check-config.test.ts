// Proves check-config's verdicts on the fixtures: every valid_*.toml passes, every invalid_*.toml
// fails with config_invalid (exit 2), and a file plus environment with several problems is
// reported in one error naming each of them — and that it runs against a data dir that does not
// exist without creating it (no lock, no store).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { PortunusError } from '@portunus/core';

import { checkServerConfig, requireValidConfig } from './check-config.js';
import { runServerCli } from './program.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/config/', import.meta.url));
const fixtures = (prefix: string): string[] =>
  fs.readdirSync(FIXTURES).filter((name) => name.startsWith(prefix) && name.endsWith('.toml'));

/** A reader that serves one fixture as `<dir>/server.toml`. */
const serving =
  (name: string) =>
  (file: string): string | undefined => {
    assert.equal(path.basename(file), 'server.toml');
    return fs.readFileSync(path.join(FIXTURES, name), 'utf8');
  };

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'portunus-check-config-'));
after(() => {
  fs.rmSync(scratch, { recursive: true, force: true });
});

describe('check-config', () => {
  it('accepts every valid fixture and a data dir without server.toml', () => {
    assert.ok(fixtures('valid_').length >= 4);
    for (const name of fixtures('valid_')) {
      const result = checkServerConfig('/srv/portunus', {}, serving(name));
      assert.deepEqual(result.problems, [], name);
      assert.equal(result.file, '/srv/portunus/server.toml');
    }
    assert.deepEqual(
      checkServerConfig('/srv/portunus', {}, () => undefined),
      { file: null, problems: [] },
    );
  });

  it('refuses every invalid fixture with config_invalid, exit 2', () => {
    assert.ok(fixtures('invalid_').length >= 5);
    for (const name of fixtures('invalid_')) {
      assert.throws(
        () => requireValidConfig('/srv/portunus', {}, serving(name)),
        (error: unknown) =>
          error instanceof PortunusError && error.code === 'config_invalid' && error.exitCode === 2,
        name,
      );
    }
  });

  it('names every bad key of the file and every bad variable at once', () => {
    const { problems } = checkServerConfig(
      '/srv/portunus',
      {
        PORTUNUS_CONTROL_LISTEN: '7443',
        PORTUNUS_OPERATOR_HTTP_LISTEN: '127.0.0.1:70800',
        PORTUNUS_METRICS_LISTEN: '0.0.0.0:7081',
        PORTUNUS_ADVERTISED_ENDPOINT: 'https://portunus.example.com:7443',
      },
      serving('invalid_many.toml'),
    );
    const expected = [
      /unknown key "control_listn"/,
      /udp_flow_idle_secs: expected an integer from 30 to 300/,
      /udp_max_flows_per_rule: expected an integer from 1 to 65535/,
      /metrics_listen: must be a loopback address/,
      /^PORTUNUS_CONTROL_LISTEN="7443"/,
      /^PORTUNUS_OPERATOR_HTTP_LISTEN="127\.0\.0\.1:70800"/,
      /^PORTUNUS_METRICS_LISTEN: must be a loopback address/,
      /^PORTUNUS_ADVERTISED_ENDPOINT=.*scheme/,
    ];
    assert.equal(problems.length, expected.length, problems.join('\n'));
    expected.forEach((pattern, i) => {
      assert.match(problems[i] ?? '', pattern);
    });
  });

  it('accepts good overrides and ignores a host-less advertised endpoint, as serve does', () => {
    const { problems } = checkServerConfig(
      '/srv/portunus',
      {
        PORTUNUS_CONTROL_LISTEN: '[::]:7443',
        PORTUNUS_METRICS_LISTEN: '[::1]:0',
        PORTUNUS_ADVERTISED_ENDPOINT: ':7443',
      },
      () => undefined,
    );
    assert.deepEqual(problems, []);
  });

  it('prints ok, exits 0 and creates nothing in a missing data dir', async () => {
    const dataDir = path.join(scratch, 'missing');
    let out = '';
    const code = await runServerCli(['--data-dir', dataDir, 'check-config'], {
      env: {},
      writeOut: (text) => (out += text),
      writeErr: () => undefined,
    });
    assert.equal(code, 0);
    assert.equal(out, 'ok\n');
    assert.equal(fs.existsSync(dataDir), false);
  });

  it('exits 2 with one error line listing every problem, and prints no ok', async () => {
    const dataDir = path.join(scratch, 'bad');
    fs.mkdirSync(dataDir);
    fs.copyFileSync(path.join(FIXTURES, 'invalid_many.toml'), path.join(dataDir, 'server.toml'));
    let out = '';
    let err = '';
    const code = await runServerCli(['--data-dir', dataDir, 'check-config'], {
      env: { PORTUNUS_CONTROL_LISTEN: 'nope' },
      writeOut: (text) => (out += text),
      writeErr: (text) => (err += text),
    });
    assert.equal(code, 2);
    assert.equal(out, '');
    const errorLines = err.split('\n').filter((line) => line.startsWith('error: '));
    assert.equal(errorLines.length, 1, err);
    assert.match(
      errorLines[0] ?? '',
      /^error: config_invalid: 5 problems \(.*server\.toml, environment\): /,
    );
    for (const name of [
      'control_listn',
      'udp_flow_idle_secs',
      'udp_max_flows_per_rule',
      'metrics_listen',
      'PORTUNUS_CONTROL_LISTEN',
    ]) {
      assert.ok(errorLines[0]?.includes(name), name);
    }
    assert.deepEqual(fs.readdirSync(dataDir), ['server.toml']);
  });
});
