/**
 * `owner-cap list|get|set|delete` (reference §1.2): the owner rate-limit envelopes of a running
 * server, over its operator API (`/v1/clients/{id}/owners…`), so the CLI and the routes answer
 * from the same use cases (services/owner-rate-limits.ts). A client is named by its id or its
 * display name, resolved through `GET /v1/clients` (no match: client_not_found; several:
 * ambiguous_client_name). `set` takes the seven cap flags of push-rule and runs the shared
 * @portunus/api check before anything is sent. Talks HTTP only: no store, no control stream.
 */
import type { Command } from 'commander';

import {
  RATE_LIMIT_FIELDS,
  checkRateLimit,
  rateLimitFlag,
  type ClientOwnerView,
  type ClientView,
  type OwnerRateLimitView,
} from '@portunus/api';
import { PortunusError } from '@portunus/core';

import {
  endpointOption,
  formatOption,
  printJson,
  printTable,
  text,
  type Format,
  type HttpOptions,
} from './output.js';
import { addCapOptions, capsFromFlags, type CapFlags } from './rule-flags.js';
import { capsText } from './rule-format.js';
import { operatorClient, type OperatorClient } from './operator-client.js';
import type { CliIo } from './program.js';

type Options = HttpOptions & { format: Format };

/** The client a command names: an exact client id first, else the one client of that name. */
export async function resolveClient(api: OperatorClient, reference: string): Promise<ClientView> {
  const clients = await api.request<ClientView[]>('GET', '/v1/clients');
  const byId = clients.find((client) => client.client_id === reference);
  if (byId) return byId;
  const named = clients.filter((client) => client.client_name === reference);
  const [only] = named;
  if (named.length > 1) {
    throw new PortunusError(
      'ambiguous_client_name',
      `${named.length} clients are named ${JSON.stringify(reference)} (${named
        .map((client) => client.client_id)
        .join(', ')}); use the client id`,
    );
  }
  if (!only) {
    throw new PortunusError(
      'client_not_found',
      `no client with id or name ${JSON.stringify(reference)}`,
    );
  }
  return only;
}

const envelopePath = (clientId: string, owner: string): string =>
  `/v1/clients/${encodeURIComponent(clientId)}/owners/${encodeURIComponent(owner)}/rate-limit`;

export function registerOwnerCapCommands(program: Command, io: CliIo): void {
  const api = (options: HttpOptions): OperatorClient =>
    operatorClient(options.httpEndpoint, io.env);
  const ownerCap = program
    .command('owner-cap')
    .description('per-owner rate-limit envelopes on a client (superadmin, HTTP)');

  ownerCap
    .command('list')
    .description('owners of a client (with rules or an envelope) and their caps')
    .argument('<client>', 'client id or display name')
    .addOption(formatOption())
    .addOption(endpointOption())
    .action(async (reference: string, options: Options) => {
      const client = api(options);
      const { client_id: clientId } = await resolveClient(client, reference);
      const owners = await client.request<ClientOwnerView[]>(
        'GET',
        `/v1/clients/${encodeURIComponent(clientId)}/owners`,
      );
      if (options.format === 'json') {
        printJson(io, { owners });
        return;
      }
      const rows: string[][] = [];
      for (const owner of owners) {
        const caps = owner.has_rate_limit
          ? (
              await client.request<OwnerRateLimitView>(
                'GET',
                envelopePath(clientId, owner.owner_id),
              )
            ).rate_limit
          : null;
        rows.push([
          text(owner.owner_id),
          String(owner.rule_count),
          capsText(caps),
          owner.has_rate_limit ? 'capped' : 'uncapped',
        ]);
      }
      printTable(io, ['OWNER', 'RULES', 'CAP', 'STATUS'], rows);
    });

  ownerCap
    .command('get')
    .description("an owner's envelope on a client, one labelled line per cap")
    .argument('<client>', 'client id or display name')
    .argument('<owner>', 'owner user id')
    .addOption(formatOption())
    .addOption(endpointOption())
    .action(async (reference: string, owner: string, options: Options) => {
      const client = api(options);
      const { client_id: clientId } = await resolveClient(client, reference);
      const view = await client.request<OwnerRateLimitView>('GET', envelopePath(clientId, owner));
      if (options.format === 'json') {
        printJson(io, view);
        return;
      }
      for (const spec of RATE_LIMIT_FIELDS) {
        io.writeOut(`${spec.label}=${text(view.rate_limit[spec.name])}\n`);
      }
    });

  addCapOptions(
    ownerCap
      .command('set')
      .description(
        "replace an owner's envelope on a connected client (every cap not given is cleared)",
      )
      .argument('<client>', 'client id or display name')
      .argument('<owner>', 'owner user id'),
    '',
  )
    .addOption(formatOption())
    .addOption(endpointOption())
    .action(async (reference: string, owner: string, options: Options & CapFlags) => {
      const body = capsFromFlags(options);
      // The route's own check, before the client is even resolved: nothing leaves on bad flags.
      const checked = checkRateLimit(body);
      if ('problem' in checked)
        throw new PortunusError(checked.problem.code, checked.problem.message);
      if (checked.caps === null) {
        throw new PortunusError(
          'validation.rate_limit_no_caps_provided',
          `give at least one of ${RATE_LIMIT_FIELDS.map(rateLimitFlag).join(', ')}; owner-cap delete removes the envelope`,
        );
      }
      const client = api(options);
      const { client_id: clientId } = await resolveClient(client, reference);
      const view = await client.request<OwnerRateLimitView>(
        'PUT',
        envelopePath(clientId, owner),
        body,
      );
      if (options.format === 'json') {
        printJson(io, view);
        return;
      }
      io.writeOut(
        `owner-cap set client=${view.client_name} owner=${view.owner_id} updated_at_unix_ms=${view.updated_at_unix_ms}\n`,
      );
    });

  ownerCap
    .command('delete')
    .description("remove an owner's envelope (idempotent)")
    .argument('<client>', 'client id or display name')
    .argument('<owner>', 'owner user id')
    .addOption(formatOption())
    .addOption(endpointOption())
    .action(async (reference: string, owner: string, options: Options) => {
      const client = api(options);
      const resolved = await resolveClient(client, reference);
      await client.request('DELETE', envelopePath(resolved.client_id, owner));
      if (options.format === 'json') {
        printJson(io, { client_id: resolved.client_id, owner_id: owner, deleted: true });
        return;
      }
      io.writeOut(`owner-cap deleted client=${resolved.client_name} owner=${owner}\n`);
    });
}
