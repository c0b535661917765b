// Proves the control listener over real gRPC/TLS on loopback: each bearer failure reason is
// refused as UNAUTHENTICATED before the stream opens and counted in
// portunus_auth_failures_total{reason}; a valid client gets Welcome with the UDP tunables and
// shows as connected; Enroll answers unknown, used and expired codes by name and a good code with
// a bundle whose token then opens the stream, and redeeming a re-enrollment ends the old session.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { silentLogger } from '@portunus/core';
import {
  ControlClient,
  EnrollmentClient,
  bearerMetadata,
  grpc,
  type ClientMessage,
  type CredentialBundle,
  type ServerMessage,
} from '@portunus/proto';
import {
  createEnrollment,
  insertClient,
  insertRule,
  insertUser,
  openStore,
  revokeClient,
  type Store,
} from '@portunus/store';
import { tempDirs } from '@portunus/test-support';

import { generateSecret, hashSecret, ulid } from '../identity/secrets.js';
import { createServerMetrics, type ServerMetrics } from '../metrics.js';
import { loadOrCreateServerIdentity, type ServerIdentity } from '../tls/certificate.js';
import { ControlFleet } from './fleet.js';
import { startControlService, type ControlService } from './service.js';

const dirs = tempDirs();
let store: Store;
let metrics: ServerMetrics;
let fleet: ControlFleet;
let service: ControlService;
let identity: ServerIdentity;
let now = Date.UTC(2026, 4, 1);
const goodToken = generateSecret();
const revokedToken = generateSecret();
const EDGE = ulid(now);
const GONE = ulid(now + 1);
const clients: grpc.Client[] = [];

function credentials(): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(Buffer.from(identity.certPem), null, null, {
    checkServerIdentity: () => undefined,
  });
}

const target = (): string => `127.0.0.1:${service.address.port}`;
const options = { 'grpc.ssl_target_name_override': 'localhost' };

type Channel = grpc.ClientDuplexStream<ClientMessage, ServerMessage>;

function openChannel(metadata: grpc.Metadata): Channel {
  const client = new ControlClient(target(), credentials(), options);
  clients.push(client);
  const method = (client as unknown as Record<string, (m: grpc.Metadata) => Channel>)['Channel'];
  assert.ok(method);
  return method.call(client, metadata);
}

/** The status the server ends a stream with, or the first message it sends. */
function firstAnswer(
  channel: Channel,
): Promise<{ status?: grpc.StatusObject; message?: ServerMessage }> {
  return new Promise((resolve) => {
    channel.on('data', (message: ServerMessage) => {
      resolve({ message });
    });
    channel.on('error', () => undefined);
    channel.on('status', (status: grpc.StatusObject) => {
      resolve({ status });
    });
  });
}

function enroll(code: string): Promise<{ bundle?: CredentialBundle; error?: grpc.ServiceError }> {
  const client = new EnrollmentClient(target(), credentials(), options);
  clients.push(client);
  const method = (
    client as unknown as Record<
      string,
      (r: { code: string }, cb: (e: grpc.ServiceError | null, b?: CredentialBundle) => void) => void
    >
  )['Enroll'];
  assert.ok(method);
  return new Promise((resolve) => {
    method.call(client, { code }, (error, bundle) => {
      resolve(error ? { error } : bundle ? { bundle } : {});
    });
  });
}

async function failureCount(reason: string): Promise<number> {
  const metric = await metrics.authFailures.get();
  return metric.values.find((value) => value.labels['reason'] === reason)?.value ?? 0;
}

before(async () => {
  const dataDir = dirs.make('portunus-control-');
  store = openStore(dataDir);
  identity = await loadOrCreateServerIdentity({
    dataDir,
    logger: silentLogger,
    hostname: 'localhost',
  });
  metrics = createServerMetrics({ collectProcessMetrics: false });
  fleet = new ControlFleet({ db: store.db, logger: silentLogger, metrics, now: () => now });
  service = await startControlService(
    { host: '127.0.0.1', port: 0 },
    {
      db: store.db,
      logger: silentLogger,
      metrics,
      fleet,
      certPem: identity.certPem,
      keyPem: identity.keyPem,
      fingerprintSha256: identity.fingerprintSha256,
      now: () => now,
      fallbackEndpoint: () => target(),
      udpFlowIdleSecs: 45,
      udpMaxFlowsPerRule: 512,
    },
  );
  insertClient(store.db, {
    clientId: EDGE,
    clientName: 'edge-1',
    tokenHash: hashSecret(goodToken),
    now,
  });
  insertClient(store.db, {
    clientId: GONE,
    clientName: 'gone',
    tokenHash: hashSecret(revokedToken),
    now,
  });
  revokeClient(store.db, GONE, now);
  insertUser(store.db, { userId: 'owner', role: 'superadmin', displayName: 'Owner', now });
  for (const [port, kind] of [
    [20001, 'active'],
    [20002, 'pending'],
    [20003, 'active'],
  ] as const) {
    insertRule(store.db, {
      clientId: EDGE,
      ownerUserId: 'owner',
      protocol: 'tcp',
      listenPort: port,
      targets: [{ host: '10.0.0.1', port: 80, portEnd: null, priority: 0, proxyProtocol: null }],
      state: { kind },
      now,
    });
  }
});

after(async () => {
  for (const client of clients) client.close();
  await service.close();
  store.close();
  dirs.cleanup();
});

describe('Control.Channel bearer check', () => {
  it('refuses each failure reason as UNAUTHENTICATED and counts it', async () => {
    const cases: [string, grpc.Metadata][] = [
      ['missing_token', new grpc.Metadata()],
      [
        'malformed_token',
        (() => {
          const m = new grpc.Metadata();
          m.set('authorization', `Token ${goodToken}`);
          return m;
        })(),
      ],
      ['token_not_found', bearerMetadata(generateSecret())],
      ['token_revoked', bearerMetadata(revokedToken)],
    ];
    for (const [reason, metadata] of cases) {
      const before = await failureCount(reason);
      const answer = await firstAnswer(openChannel(metadata));
      assert.equal(answer.status?.code, grpc.status.UNAUTHENTICATED, reason);
      assert.equal(answer.status.details, reason);
      assert.equal(await failureCount(reason), before + 1, reason);
    }
    assert.equal(fleet.connectedCount(), 0);
  });

  it('welcomes a valid client with the UDP tunables and registers it as connected', async () => {
    const channel = openChannel(bearerMetadata(goodToken));
    channel.write({
      hello: {
        protocol_version: '1.0.0',
        client_version: '0.1.0',
        supported_protocols: ['TCP', 'UDP'],
      },
    });
    const answer = await firstAnswer(channel);
    assert.ok(answer.message && 'welcome' in answer.message);
    assert.equal(answer.message.welcome.udp_flow_idle_secs, 45);
    assert.equal(answer.message.welcome.udp_max_flows_per_rule, 512);
    // The replay manifest names exactly the Active rules that follow, so a client that kept
    // running across the reconnect can stop the rest.
    assert.equal(answer.message.welcome.replay_manifest, true);
    assert.equal(answer.message.welcome.replay_rule_ids.length, 2);
    assert.equal(fleet.isConnected(EDGE), true);
    assert.equal((await metrics.clientsConnected.get()).values[0]?.value, 1);
    const ended = new Promise<grpc.StatusObject>((resolve) => channel.on('status', resolve));
    fleet.disconnect(EDGE, 'revoked');
    const status = await ended;
    assert.equal(status.code, grpc.status.UNAUTHENTICATED);
    assert.equal(status.details, 'token_revoked');
  });
});

describe('ClientEnrollment.Enroll', () => {
  const issue = (clientId: string, name: string, ttlSecs = 600): string => {
    const code = generateSecret();
    createEnrollment(store.db, {
      clientId,
      clientName: name,
      clientAddress: null,
      advertisedEndpoint: 'edge.example.com:7443',
      codeHash: hashSecret(code),
      now,
      ttlSecs,
    });
    return code;
  };

  it('names unknown, used and expired codes', async () => {
    assert.equal((await enroll(generateSecret())).error?.details, 'enrollment_invalid');
    const code = issue(ulid(now + 2), 'fresh');
    assert.ok((await enroll(code)).bundle);
    const used = await enroll(code);
    assert.equal(used.error?.code, grpc.status.UNAUTHENTICATED);
    assert.equal(used.error.details, 'enrollment_used');
    const expiring = issue(ulid(now + 3), 'late', 1);
    now += 1_000;
    assert.equal((await enroll(expiring)).error?.details, 'enrollment_expired');
  });

  it('answers a bundle whose token opens the stream; re-enrolling ends the old session', async () => {
    const clientId = ulid(now + 4);
    const { bundle } = await enroll(issue(clientId, 'new-edge'));
    assert.ok(bundle);
    assert.deepEqual(
      { ...bundle, token: bundle.token.length },
      {
        version: 1,
        client_name: 'new-edge',
        client_id: clientId,
        server_endpoint: 'edge.example.com:7443',
        server_cert_sha256: identity.fingerprintSha256,
        token: 43,
      },
    );
    const channel = openChannel(bearerMetadata(bundle.token));
    channel.write({
      hello: { protocol_version: '1.0.0', client_version: '0.1.0', supported_protocols: [] },
    });
    const answer = await firstAnswer(channel);
    assert.ok(answer.message && 'welcome' in answer.message);
    const ended = new Promise<grpc.StatusObject>((resolve) => channel.on('status', resolve));
    const again = await enroll(issue(clientId, 'new-edge'));
    assert.ok(again.bundle);
    assert.notEqual(again.bundle.token, bundle.token);
    assert.equal((await ended).details, 'token_rotated');
    const stale = await firstAnswer(openChannel(bearerMetadata(bundle.token)));
    assert.equal(stale.status?.details, 'token_not_found');
  });
});
