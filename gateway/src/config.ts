import { z } from 'zod';
import { baseEnv, csv, eventLogEnv, eventPolicyEnv, experimentServiceEnv, flag, port } from '@bunryu/core';
import { loadConfig } from '@bunryu/platform';
import { cpuBudget } from './cluster/cpu-budget.ts';

const MAX_WORKERS = 64;

export const ConfigSchema = z.object({
  ...baseEnv,
  ...experimentServiceEnv,
  ...eventLogEnv,
  PORT: port(8080),
  /**
   * The epoch of the experiment-service's data this gateway may switch to, or `any`. A snapshot of
   * another epoch than the one served (the service lost its data, or an operator imported an
   * export) is refused without it: set it, once the new data is right, and restart the gateway.
   */
  GATEWAY_ACCEPT_EPOCH: z.string().min(1).max(100).optional(),
  /**
   * How behaviour events are checked against the approved event catalogue (SPEC §16): `open`
   * (no check), `warn` (accepted, marked and counted) or `strict` (rejected by index), optionally
   * per route after the default: `warn,checkout:strict`. Set the same on the experiment-service,
   * which refuses or warns about metrics on undeclared events from it.
   */
  BUNRYU_EVENT_POLICY: eventPolicyEnv,
  /** Set: `x-api-key` must be one of these on the client API. */
  BUNRYU_CLIENT_KEYS: csv.pipe(z.array(z.string()).min(1)).optional(),
  /** Most keep-alive connections per upstream origin (opened as needed; as @fastify/reply-from). */
  GATEWAY_UPSTREAM_CONNECTIONS: z.coerce.number().int().min(1).max(1024).default(128),
  /**
   * `own`: connections that come for /v1/routes are served by the gateway's own HTTP/1.1 server on
   * node's request parser; `node`: every connection through node:http (slower; the way back if a
   * Node release changes the internal parser, which the gateway also detects by itself).
   */
  GATEWAY_HTTP_SERVER: z.enum(['own', 'node']).default('own'),
  /** Processes serving requests (one per core it may use, cgroup CPU limits included); with more than one, a primary process holds the event publisher. */
  GATEWAY_WORKERS: z.coerce.number().int().min(1).max(MAX_WORKERS).default(Math.min(MAX_WORKERS, cpuBudget())),
  /** Shadow copies (SPEC §13) pending at once per gateway process; more are dropped and counted. */
  GATEWAY_SHADOW_MAX_IN_FLIGHT: z.coerce.number().int().min(1).max(100_000).default(64),
  /** Events held in memory before the publisher spills to disk. */
  GATEWAY_EVENT_QUEUE_LIMIT: z.coerce.number().int().min(1000).max(10_000_000).default(100_000),
  /** Set by the primary on the worker processes it forks; not for operators. */
  BUNRYU_GATEWAY_WORKER: flag(false),
  /** The same bound in MiB of serialized events: what keeps the publisher's memory bounded whatever the events' size. */
  GATEWAY_EVENT_QUEUE_MB: z.coerce.number().int().min(1).max(4096).default(32),
});
export type Config = z.infer<typeof ConfigSchema>;

export const readConfig = (): Readonly<Config> => loadConfig('gateway', ConfigSchema);
