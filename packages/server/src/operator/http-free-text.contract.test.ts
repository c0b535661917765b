// Proves that free text an operator types (display names, credential labels, grant notes) never
// stores a terminal control character: each is refused with 400 validation_failed naming the
// field, and the refused request changes nothing in the store.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import type { InjectOptions } from 'fastify';

import { errorCode, harnessPool, type ContractHarness } from './contract.harness.js';
import { storeSnapshot } from './hostile.harness.js';

const harnesses = harnessPool();
after(() => harnesses.closeAll());

/** ESC (a cursor move), CR (a fake line), C1 NEL, U+2028 and a bidi override. */
const CONTROLS = ['\u001b[2J', '\r', '\u0085', '\u2028', '\u202e'];

describe('free text with control characters', () => {
  let h: ContractHarness;
  let root: string;

  before(async () => {
    h = harnesses.fresh();
    root = await h.addUser('root', 'superadmin');
    await h.addUser('alice', 'user');
  });

  const cases: { field: string; request: (text: string) => InjectOptions }[] = [
    {
      field: 'display_name',
      request: (text) => ({
        method: 'POST',
        url: '/v1/users',
        payload: {
          user_id: 'mallory',
          display_name: `Mal${text}lory`,
          initial_password: 'a long enough initial password',
        },
      }),
    },
    {
      field: 'label',
      request: (text) => ({
        method: 'POST',
        url: '/v1/credentials',
        payload: { user_id: 'alice', label: `ci${text}token` },
      }),
    },
    {
      field: 'note',
      request: (text) => ({
        method: 'POST',
        url: '/v1/grants',
        payload: {
          user_id: 'alice',
          client: '*',
          listen_port_start: 80,
          listen_port_end: 80,
          note: `web${text}`,
        },
      }),
    },
  ];

  for (const { field, request } of cases) {
    it(`refuses ${field} holding a control character, naming the field, storing nothing`, async () => {
      for (const control of CONTROLS) {
        const before = storeSnapshot(h.store.db);
        const response = await h.bearer(root, request(control));
        assert.equal(response.statusCode, 400, `${JSON.stringify(control)}: ${response.body}`);
        assert.equal(errorCode(response), 'validation_failed');
        assert.match(
          response.json<{ error: { message: string } }>().error.message,
          new RegExp(field),
        );
        assert.deepEqual(storeSnapshot(h.store.db), before, JSON.stringify(control));
      }
    });
  }

  it('still accepts printable Unicode in the same fields', async () => {
    for (const { field, request } of cases) {
      const response = await h.bearer(root, request(' Zoë 東京'));
      assert.ok(response.statusCode < 300, `${field}: ${response.statusCode} ${response.body}`);
    }
  });
});
