/**
 * Placeholder until the settings routes land: registers nothing yet, so the app builds. Tracked by the
 * control-plane issue; replaced in the next commits.
 */
import type { FastifyInstance } from 'fastify';

import type { OperatorContext } from '../context.js';

// eslint-disable-next-line @typescript-eslint/no-unused-vars -- placeholder: nothing to register yet
export function registerSettingsRoutes(_app: FastifyInstance, _ctx: OperatorContext): void {}
