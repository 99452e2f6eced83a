/** The five services, their folders and default ports (SPEC §2). */
export const SERVICES = [
  { name: 'experiment-service', port: 8081 },
  { name: 'model-server', port: 8082 },
  { name: 'aggregator', port: 8083 },
  { name: 'gateway', port: 8080 },
  { name: 'dashboard', port: 8084 },
] as const;
export type ServiceName = (typeof SERVICES)[number]['name'];
