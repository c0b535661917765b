// Proves the offline fleet commands of `portunus-server` with the real binary: enroll-client
// (the reference's three lines plus client_id, a pin equal to the certificate serve then
// presents, only a hash stored, the endpoint tiers, validation exits 2 with nothing written),
// revoke by name (idempotent) and rename-client, all refusing with exit 75 while serve runs; and
// list-clients against a running server.
import assert from 'node:assert/strict';
import { randomBytes, X509Certificate, createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { insertClient, openStore, setAdvertisedEndpointOverride } from '@portunus/store';

import { Harness, SLOW_STEP_MS, inspect, listenersOf, type CliResult } from './harness.js';

const harness = new Harness();
after(() => harness.close());

const ULID_SHAPE = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const RFC3339_SHAPE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const ENROLL_LINE =
  /^portunus-client enroll 'portunus:\/\/([^/]+)\/enroll\?pin=sha256:([0-9a-f]{64})&code=([A-Za-z0-9_-]{43})'$/;

function portunus(
  args: readonly string[],
  env: Record<string, string | undefined> = {},
): Promise<CliResult> {
  return harness.run(args, { env });
}

/** Asserts the exit code and the one `error: <code>:` line, with nothing on stdout. */
function assertFails(result: CliResult, exitCode: number, errorCode: string): void {
  assert.equal(result.code, exitCode, `${errorCode}: ${result.stderr}`);
  assert.match(result.stderr, new RegExp(`^error: ${errorCode}(:|$)`, 'm'));
  assert.equal(result.stdout, '');
}

interface Enrolled {
  clientName: string;
  expiresAt: number;
  endpoint: string;
  pin: string;
  code: string;
  clientId: string;
}

/** Parses enroll-client's four lines: client_name, expires_at, the command, client_id. */
function parseEnrolled(result: CliResult): Enrolled {
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 4, result.stdout);
  const [nameLine = '', expiresLine = '', commandLine = '', idLine = ''] = lines;
  assert.match(nameLine, /^client_name=/);
  assert.match(expiresLine, /^expires_at=/);
  assert.match(idLine, /^client_id=/);
  const expires = expiresLine.slice('expires_at='.length);
  assert.match(expires, RFC3339_SHAPE);
  const command = ENROLL_LINE.exec(commandLine);
  assert.ok(command, commandLine);
  const clientId = idLine.slice('client_id='.length);
  assert.match(clientId, ULID_SHAPE);
  return {
    clientName: nameLine.slice('client_name='.length),
    expiresAt: Date.parse(expires),
    endpoint: command[1] ?? '',
    pin: command[2] ?? '',
    code: command[3] ?? '',
    clientId,
  };
}

function certFingerprint(dataDir: string): string {
  const cert = new X509Certificate(fs.readFileSync(path.join(dataDir, 'server.crt')));
  return createHash('sha256').update(cert.raw).digest('hex');
}

function seedClients(dataDir: string, clients: readonly [string, string, string | null][]): void {
  const store = openStore(dataDir);
  try {
    for (const [clientId, clientName, clientAddress] of clients) {
      insertClient(store.db, { clientId, clientName, clientAddress, now: Date.now() });
    }
  } finally {
    store.close();
  }
}

function revokedAt(dataDir: string): Record<string, number | null> {
  return inspect(path.join(dataDir, 'state.db'), (db) =>
    Object.fromEntries(
      (
        db.prepare('SELECT client_id, revoked_at FROM clients').all() as {
          client_id: string;
          revoked_at: number | null;
        }[]
      ).map((row) => [row.client_id, row.revoked_at]),
    ),
  );
}

describe('enroll-client (offline)', () => {
  it('prints the three reference lines and client_id; stores only the hash and an audit row', async () => {
    const dataDir = harness.newDataDir();
    const started = Date.now();
    const result = await portunus([
      '--data-dir',
      dataDir,
      'enroll-client',
      'Edge One',
      '--address',
      '203.0.113.7',
      '--ttl-secs',
      '120',
    ]);
    const enrolled = parseEnrolled(result);
    assert.equal(enrolled.clientName, 'Edge One');
    // No override, no seed, no Host header: the loopback tier with the default control port.
    assert.equal(enrolled.endpoint, '127.0.0.1:7443');
    assert.equal(enrolled.pin, certFingerprint(dataDir));
    assert.ok(
      enrolled.expiresAt >= started + 119_000 && enrolled.expiresAt <= Date.now() + 120_000,
    );
    inspect(path.join(dataDir, 'state.db'), (db) => {
      const rows = db.prepare('SELECT * FROM client_enrollments').all() as Record<
        string,
        unknown
      >[];
      assert.equal(rows.length, 1);
      const [row] = rows;
      assert.equal(row?.['client_id'], enrolled.clientId);
      assert.equal(row['client_address'], '203.0.113.7');
      assert.equal(row['advertised_endpoint'], '127.0.0.1:7443');
      assert.equal(row['consumed_at'], null);
      assert.ok(!JSON.stringify(row).includes(enrolled.code));
      // The client exists only once the code is redeemed.
      assert.equal(db.prepare('SELECT count(*) FROM clients').pluck().get(), 0);
      const audit = db
        .prepare(
          "SELECT actor, action, resource_value, details_json FROM audit WHERE action LIKE 'audit.%'",
        )
        .all() as Record<string, unknown>[];
      assert.equal(audit.length, 1);
      assert.equal(audit[0]?.['actor'], '_local_cli');
      assert.equal(audit[0]['action'], 'audit.client_enrollment_created');
      assert.equal(audit[0]['resource_value'], enrolled.clientId);
      assert.ok(!String(audit[0]['details_json']).includes(enrolled.code));
    });
    assert.ok(!result.stderr.includes(enrolled.code), 'the code must not be logged');
  });

  it('takes the seed from --advertised-endpoint or the env, and the stored override first', async () => {
    const dataDir = harness.newDataDir();
    const flag = parseEnrolled(
      await portunus([
        '--data-dir',
        dataDir,
        '--advertised-endpoint',
        'localhost:9443',
        'enroll-client',
        'a',
      ]),
    );
    assert.equal(flag.endpoint, 'localhost:9443');
    const env = parseEnrolled(
      await portunus(['--data-dir', dataDir, 'enroll-client', 'b'], {
        PORTUNUS_ADVERTISED_ENDPOINT: 'localhost:9444',
      }),
    );
    assert.equal(env.endpoint, 'localhost:9444');
    const store = openStore(dataDir);
    try {
      setAdvertisedEndpointOverride(store.db, '127.0.0.1:7999', Date.now());
    } finally {
      store.close();
    }
    const override = parseEnrolled(
      await portunus([
        '--data-dir',
        dataDir,
        '--advertised-endpoint',
        'localhost:9443',
        'enroll-client',
        'c',
      ]),
    );
    assert.equal(override.endpoint, '127.0.0.1:7999');

    const uncovered = openStore(dataDir);
    try {
      setAdvertisedEndpointOverride(uncovered.db, 'uncovered.invalid:7443', Date.now());
    } finally {
      uncovered.close();
    }
    assertFails(
      await portunus(['--data-dir', dataDir, 'enroll-client', 'd']),
      2,
      'endpoint_not_in_cert_san',
    );
    assert.equal(
      inspect(path.join(dataDir, 'state.db'), (db) =>
        db.prepare('SELECT count(*) FROM client_enrollments').pluck().get(),
      ),
      3,
    );
  });

  it('refuses a bad ttl, name or address with exit 2 before touching the data dir', async () => {
    const dataDir = harness.newDataDir();
    const cases: [string[], string][] = [
      [['enroll-client', 'edge', '--ttl-secs', '0'], 'invalid_enrollment_ttl'],
      [['enroll-client', 'edge', '--ttl-secs', '86401'], 'invalid_enrollment_ttl'],
      [['enroll-client', 'edge', '--ttl-secs', 'ten'], 'invalid_enrollment_ttl'],
      [['enroll-client', '  '], 'invalid_client_name'],
      [['enroll-client', 'edge', '--address', 'edge.example.com:443'], 'invalid_client_address'],
    ];
    const results = await Promise.all(
      cases.map(([args]) => portunus(['--data-dir', dataDir, ...args])),
    );
    results.forEach((result, i) => {
      assertFails(result, 2, cases[i]?.[1] ?? '');
    });
    assert.equal(fs.existsSync(dataDir), false);
  });
});

describe('revoke and rename-client (offline)', () => {
  it('revoke revokes every client of a name, idempotently; rename-client prints id and name', async () => {
    const dataDir = harness.newDataDir();
    const [a, b, c] = [
      '01J9FLEET00000000000000001',
      '01J9FLEET00000000000000002',
      '01J9FLEET00000000000000003',
    ];
    seedClients(dataDir, [
      [a, 'twin', null],
      [b, 'twin', null],
      [c, 'other', null],
    ]);
    const first = await portunus(['--data-dir', dataDir, 'revoke', 'twin']);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, '');
    const once = revokedAt(dataDir);
    assert.ok(once[a] !== null && once[b] !== null);
    assert.equal(once[c], null);
    for (const name of ['twin', 'nobody']) {
      const again = await portunus(['--data-dir', dataDir, 'revoke', name]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout, '');
    }
    assert.deepEqual(revokedAt(dataDir), once);

    const renamed = await portunus([
      '--data-dir',
      dataDir,
      'rename-client',
      '--client-id',
      c,
      '--name',
      'Other Ω',
    ]);
    assert.equal(renamed.code, 0, renamed.stderr);
    assert.equal(renamed.stdout, `client_id=${c}\nclient_name=Other Ω\n`);
    assertFails(
      await portunus([
        '--data-dir',
        dataDir,
        'rename-client',
        '--client-id',
        '01J9FLEET00000000000000009',
        '--name',
        'x',
      ]),
      5,
      'client_not_found',
    );
    assertFails(
      await portunus(['--data-dir', dataDir, 'rename-client', '--client-id', c, '--name', ' ']),
      2,
      'invalid_client_name',
    );
  });
});

describe('while serve runs', () => {
  it('offline commands exit 75; list-clients answers over HTTP; serve pins the same certificate', async () => {
    const dataDir = harness.newDataDir();
    const enrolled = parseEnrolled(
      await portunus(['--data-dir', dataDir, 'enroll-client', 'edge']),
    );
    const edge = '01J9FLEET00000000000000011';
    const lab = '01J9FLEET00000000000000012';
    seedClients(dataDir, [
      [edge, 'edge-1', '198.51.100.20'],
      [lab, 'lab', null],
    ]);
    const operatorToken = randomBytes(32).toString('base64url');
    fs.writeFileSync(path.join(dataDir, 'server.toml'), `operator_token = "${operatorToken}"\n`, {
      mode: 0o600,
    });
    const server = await harness.serveWithin(dataDir);
    const listening = server.events.find((line) => line.event === 'server.listening');
    assert.equal(listening?.['tls_fingerprint_sha256'], enrolled.pin);

    const offline = await Promise.all([
      portunus(['--data-dir', dataDir, 'enroll-client', 'edge-2']),
      portunus(['--data-dir', dataDir, 'revoke', 'edge-1']),
      portunus(['--data-dir', dataDir, 'rename-client', '--client-id', edge, '--name', 'x']),
    ]);
    for (const result of offline) assertFails(result, 75, 'store_in_use');

    const endpoint = listenersOf(server).operator_http;
    const online = (args: readonly string[], token: string | undefined = operatorToken) =>
      portunus([...args, '--http-endpoint', endpoint], { PORTUNUS_OPERATOR_TOKEN: token });
    const [textList, jsonList, noToken] = await Promise.all([
      online(['list-clients']),
      online(['list-clients', '--format', 'json']),
      online(['list-clients'], ''),
    ]);
    assert.equal(textList.code, 0, textList.stderr);
    const table = textList.stdout
      .trimEnd()
      .split('\n')
      .map((line) => line.split(/\s{2,}/));
    assert.deepEqual(table, [
      ['CLIENT_ID', 'NAME', 'STATE', 'REMOTE_ADDR', 'CONNECTED_AT'],
      [edge, 'edge-1', 'disconnected', '198.51.100.20', '-'],
      [lab, 'lab', 'disconnected', '-', '-'],
    ]);
    assert.equal(jsonList.code, 0, jsonList.stderr);
    const clients = JSON.parse(jsonList.stdout) as Record<string, unknown>[];
    assert.deepEqual(
      clients.map((client) => [client['client_id'], client['connected'], client['client_address']]),
      [
        [edge, false, '198.51.100.20'],
        [lab, false, null],
      ],
    );
    assertFails(noToken, 4, 'operator_token_missing');

    server.kill('SIGTERM');
    assert.equal(await server.exited(SLOW_STEP_MS), 0, server.stderr());
  });
});
