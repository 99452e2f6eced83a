import { buildGateway } from '../gateway/build.ts';

/** The five services, their folders and default ports (SPEC §2). */
export const SERVICES = [
  { name: 'experiment-service', port: 8081 },
  { name: 'model-server', port: 8082 },
  { name: 'aggregator', port: 8083 },
  { name: 'gateway', port: 8080 },
  { name: 'dashboard', port: 8084 },
] as const;
export type ServiceName = (typeof SERVICES)[number]['name'];

/**
 * What node runs for a service: the gateway from its bundle (built now, see gateway/build.ts:
 * its processes must stay small), the others from source through tsx.
 */
export async function serviceArgs(name: ServiceName): Promise<string[]> {
  if (name === 'gateway') return [await buildGateway()];
  return ['--import', 'tsx', `${name}/src/server.ts`];
}
