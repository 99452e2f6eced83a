import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { MAX_EVENTS_PER_CALL, UnitId, assign, createError, exposureEvent, parseOrThrow } from '@bunryu/core';
import type { SnapshotStore } from '../config-source/snapshot-store.ts';
import type { EventSink } from '../events/event-publisher.ts';
import { ingestEvents, type EventPolicyCheck } from '../events/client-events.ts';

export interface ClientRouteDeps {
  store: SnapshotStore;
  publisher: EventSink;
  /** The event policy and where mismatches are counted; null: every event open. */
  eventPolicy: EventPolicyCheck | null;
}

const Scalar = z.union([z.string(), z.number(), z.boolean()]);

const AssignRequest = z.strictObject({
  unitId: UnitId,
  route: z.string().min(1).max(64),
  attributes: z.record(z.string(), Scalar).default({}),
  /** false: a preview (QA, dashboards) that logs no exposure. */
  track: z.boolean().default(true),
});

const EventsRequest = z.strictObject({
  events: z.array(z.unknown()).max(MAX_EVENTS_PER_CALL, `at most ${MAX_EVENTS_PER_CALL} events per call`),
});

/** `POST /v1/assign` and `POST /v1/events` (SPEC §4). */
export async function clientRoutes(app: FastifyInstance, deps: ClientRouteDeps): Promise<void> {
  const { store, publisher, eventPolicy } = deps;

  function live() {
    const current = store.current;
    if (!current) throw createError('BUNRYU_NOT_READY', 'no config snapshot loaded yet');
    return current;
  }

  app.post('/v1/assign', async (request, reply) => {
    const body = parseOrThrow(AssignRequest, request.body);
    const config = live();
    if (!(body.route in config.snapshot.routes)) throw createError('BUNRYU_NOT_FOUND', `no route "${body.route}"`);
    const result = assign(config.snapshot, body.route, body.unitId, body.attributes);
    if (body.track) {
      const exposure = exposureEvent(
        result.assignments,
        { unitId: body.unitId, route: body.route, requestId: request.id.slice(0, 128), ts: Date.now(), attributes: body.attributes },
        randomUUID(),
      );
      if (exposure) {
        publisher.publish(body.unitId, exposure);
        // The event log is down: the exposure is on disk before the answer (a failing disk does not fail the answer).
        if (publisher.flushBeforeAnswer()) await publisher.flush().catch(() => {});
      }
    }
    reply.header('x-request-id', request.id);
    return { unitId: body.unitId, route: body.route, assignments: result.assignments, params: result.params, holdout: result.holdout };
  });

  app.post('/v1/events', async (request, reply) => {
    const body = parseOrThrow(EventsRequest, request.body);
    const config = live();
    // Neither the event log nor the disk spill takes events: refused whole, nothing published.
    const refused = publisher.refusal();
    if (refused !== null) throw createError('BUNRYU_NOT_READY', refused);
    const result = ingestEvents(body.events, config, (key, event) => publisher.publish(key, event), Date.now(), eventPolicy);
    if (result.accepted > 0 && publisher.flushBeforeAnswer()) {
      // The event log is down: a 202 promises the events outlive this process, so they are on disk first.
      try {
        await publisher.flush();
      } catch {
        throw createError('BUNRYU_NOT_READY', publisher.refusal() ?? "the gateway's disk spill failed: send the events again later");
      }
    }
    reply.header('x-request-id', request.id);
    return reply.code(202).send(result);
  });
}
