import { BehaviourEventType, EventDeclaration, EventSchemaInput } from '@bunryu/core';
import { catalogueDts, catalogueJsonSchema } from '../events/client-definitions.ts';
import type { EventCatalogue } from '../events/event-catalogue.ts';
import type { ExperimentStore } from '../store/experiment-store.ts';
import { EventDeclarationList, NoBody } from '../openapi/schemas.ts';
import { endpoint, type Endpoint } from './endpoint.ts';
import { etagOf } from './if-match.ts';

/** SPEC §16: declare, list and approve behaviour events; the client definitions made from them. */
export function eventEndpoints(catalogue: EventCatalogue, store: ExperimentStore): Endpoint<never>[] {
  return [
    endpoint({
      method: 'PUT',
      url: '/v1/events/:type',
      operationId: 'proposeEvent',
      summary: 'Declare a behaviour event or change its declaration (201 created, 200 otherwise); a new or changed declaration is `proposed` until approved, and the last approved one stays in force',
      role: 'editor',
      params: { type: BehaviourEventType },
      body: EventSchemaInput,
      response: EventDeclaration,
      alsoAnswers: { 201: 'Created' },
      handler: async ({ params, body, principal, reply }) => {
        const { declaration, created } = await catalogue.propose(params.type!, body, principal!);
        void reply.header('etag', etagOf(declaration.version));
        if (created) void reply.code(201);
        return declaration;
      },
    }),
    endpoint({
      method: 'GET',
      url: '/v1/events',
      operationId: 'listEvents',
      summary: 'Every declared event with its status, sorted by type',
      role: 'viewer',
      response: EventDeclarationList,
      handler: () => catalogue.list(),
    }),
    endpoint({
      method: 'GET',
      url: '/v1/events/catalogue.d.ts',
      operationId: 'getEventCatalogueDts',
      summary: 'TypeScript definitions of the approved events: a union discriminated on `type`, with typed attributes and value',
      role: 'viewer',
      produces: 'application/typescript',
      handler: async ({ reply }) => {
        const [events, version] = await Promise.all([catalogue.list(), store.version()]);
        return reply.type('application/typescript; charset=utf-8').send(catalogueDts(events, version));
      },
    }),
    endpoint({
      method: 'GET',
      url: '/v1/events/catalogue.schema.json',
      operationId: 'getEventCatalogueSchema',
      summary: 'A JSON Schema (2020-12) of one approved behaviour event',
      role: 'viewer',
      produces: 'application/schema+json',
      handler: async ({ reply }) => {
        const [events, version] = await Promise.all([catalogue.list(), store.version()]);
        return reply.type('application/schema+json; charset=utf-8').send(JSON.stringify(catalogueJsonSchema(events, version), null, 2));
      },
    }),
    endpoint({
      method: 'GET',
      url: '/v1/events/:type',
      operationId: 'getEvent',
      summary: 'One declaration; ETag is its version',
      role: 'viewer',
      params: { type: BehaviourEventType },
      response: EventDeclaration,
      errors: ['BUNRYU_NOT_FOUND'],
      handler: async ({ params, reply }) => {
        const declaration = await catalogue.get(params.type!);
        void reply.header('etag', etagOf(declaration.version));
        return declaration;
      },
    }),
    endpoint({
      method: 'POST',
      url: '/v1/events/:type/approve',
      operationId: 'approveEvent',
      summary: 'Approve the proposed declaration (reviewer or admin); with If-Match, only the version the reviewer read',
      role: 'reviewer',
      params: { type: BehaviourEventType },
      body: NoBody,
      ifMatch: 'optional',
      response: EventDeclaration,
      errors: ['BUNRYU_NOT_FOUND', 'BUNRYU_INVALID_TRANSITION', 'BUNRYU_VERSION_MISMATCH'],
      handler: async ({ params, principal, ifMatch, reply }) => {
        const declaration = await catalogue.approve(params.type!, principal!, ifMatch);
        void reply.header('etag', etagOf(declaration.version));
        return declaration;
      },
    }),
  ] as Endpoint<never>[];
}
