/**
 * The real stack the faults act on: a Redis server of its own (never the machine's 6379), a
 * private Kafka broker from the jars infra/kafka fetched, and the five services as processes
 * started the way `npm start` starts them (scripts/services.ts). Every process is ours and is
 * signalled by its PID only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { serviceArgs, type ServiceName } from '../../scripts/services.ts';
import { freePort, waitFor } from '../../e2e/test/support/stack.ts';
import { privateKafkaAvailable, startPrivateKafka, type PrivateKafka } from '../../gateway/test/support/private-kafka.ts';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const TOPIC = 'bunryu.events.chaos';
export const GROUP = 'bunryu-chaos';
export const TOKEN = 'chaos-admin-token';

/** One service process: an instance name (two aggregators are two instances), its port, its PID. */
export class ServiceProcess {
  child: ChildProcess | null = null;
  readonly log: string[] = [];
  /** Wraps the command, e.g. in a shell that sets `ulimit -f` first. */
  wrap: ((argv: string[]) => string[]) | null = null;

  constructor(
    readonly instance: string,
    readonly service: ServiceName,
    readonly port: number,
    readonly env: Record<string, string>,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get alive(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(): Promise<void> {
    if (this.alive) return;
    const argv = [process.execPath, ...(await serviceArgs(this.service))];
    const [command, ...args] = this.wrap ? this.wrap(argv) : argv;
    const child = spawn(command!, args, { cwd: root, env: { ...this.env, PORT: String(this.port) }, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer) => {
      this.log.push(...chunk.toString().split('\n').filter(Boolean));
      if (this.log.length > 5000) this.log.splice(0, this.log.length - 5000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    this.child = child;
    await waitFor(`${this.instance} /healthz`, async () => {
      if (child.exitCode !== null) throw new Error(`${this.instance} exited with ${child.exitCode}: ${this.log.slice(-8).join('\n')}`);
      return (await fetch(`${this.url}/healthz`)).ok;
    }, 180_000);
  }

  /** Sends `signal` to our PID and, for a terminating signal, waits until the process is gone. */
  async signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child || !this.alive) return;
    if (signal === 'SIGSTOP' || signal === 'SIGCONT') {
      process.kill(child.pid!, signal);
      return;
    }
    await killAndWait(child, signal);
  }

  async stop(): Promise<void> {
    await this.signal('SIGTERM');
  }
}

/** Signals our child by its PID and waits until it is gone. */
function killAndWait(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid!, signal);
  return exited;
}

export interface RedisServer {
  url: string;
  port: number;
  /** SIGKILL (appendfsync always: every acknowledged write is on disk). */
  kill(): Promise<void>;
  /** Starts again on the same port, with the same data directory or, when `empty`, a new one. */
  start(empty?: boolean): Promise<void>;
}

export async function startRedis(dir: string): Promise<RedisServer> {
  const port = await freePort();
  let child: ChildProcess | null = null;
  let generation = 0;
  const start = async (empty = false) => {
    if (empty) generation++;
    const dataDir = join(dir, `redis-${generation}`);
    mkdirSync(dataDir, { recursive: true });
    const proc = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--dir', dataDir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'], { stdio: 'ignore' });
    child = proc;
    await waitFor('redis-server', async () => {
      if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}`);
      return pingRedis(port);
    }, 30_000, 50);
  };
  const kill = async () => {
    const proc = child;
    child = null;
    if (proc && proc.exitCode === null) await killAndWait(proc, 'SIGKILL');
  };
  process.once('exit', () => (child as ChildProcess | null)?.kill('SIGKILL'));
  await start();
  return { url: `redis://127.0.0.1:${port}`, port, kill, start };
}

async function pingRedis(port: number): Promise<boolean> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d) => done(d.toString().startsWith('+PONG')));
    socket.once('error', () => done(false));
  });
}

export interface Stack {
  dir: string;
  redis: RedisServer;
  kafka: PrivateKafka;
  experimentService: ServiceProcess;
  modelServer: ServiceProcess;
  gateway: ServiceProcess;
  dashboard: ServiceProcess;
  /** Every aggregator ever started (each with its own store), the first being the usual one. */
  aggregators: ServiceProcess[];
  /** Another aggregator in the same consumer group, with a store of its own. */
  addAggregator(): Promise<ServiceProcess>;
  close(): Promise<void>;
}

export async function startStack(dir: string, modelDir: string): Promise<Stack> {
  if (!privateKafkaAvailable()) throw new Error('no Kafka jars or no java: run `bash infra/up.sh` once (it fetches them into infra/kafka/lib)');
  const redis = await startRedis(join(dir, 'redis'));
  const kafka = await startPrivateKafka(join(dir, 'kafka'));
  await createTopic(kafka.brokers);

  const names = ['experiment-service', 'model-server', 'aggregator', 'gateway', 'dashboard'] as const;
  const ports = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await freePort()] as const))) as Record<(typeof names)[number], number>;
  const url = (n: (typeof names)[number]) => `http://127.0.0.1:${ports[n]}`;
  const inherited = { ...process.env } as Record<string, string>;
  for (const name of ['REDIS_URL', 'REDIS_PREFIX', 'KAFKA_BROKERS', 'CLICKHOUSE_URL', 'PORT', 'NODE_OPTIONS']) delete inherited[name];
  const common = {
    ...inherited,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    BUNRYU_ADMIN_TOKEN: TOKEN,
    EXPERIMENT_SERVICE_TOKEN: TOKEN,
    EXPERIMENT_SERVICE_URL: url('experiment-service'),
    MODEL_SERVER_URL: url('model-server'),
    AGGREGATOR_URL: url('aggregator'),
    GATEWAY_URL: url('gateway'),
    REDIS_URL: redis.url,
    KAFKA_BROKERS: kafka.brokers,
    BUNRYU_EVENTS_TOPIC: TOPIC,
    AGGREGATOR_CONSUMER_GROUP: GROUP,
    AGGREGATOR_CONFIG_REFRESH_MS: '300',
    MODEL_DIR: modelDir,
    MODEL_WATCH: 'false',
    // One process per gateway: a SIGKILL then reaches everything that holds its events.
    GATEWAY_WORKERS: '1',
  };
  const proc = (instance: string, service: ServiceName, port: number) => {
    const dataDir = join(dir, instance);
    mkdirSync(dataDir, { recursive: true });
    return new ServiceProcess(instance, service, port, { ...common, BUNRYU_DATA_DIR: dataDir });
  };
  const experimentService = proc('experiment-service', 'experiment-service', ports['experiment-service']);
  const modelServer = proc('model-server', 'model-server', ports['model-server']);
  const gateway = proc('gateway', 'gateway', ports.gateway);
  const dashboard = proc('dashboard', 'dashboard', ports.dashboard);
  const aggregators = [proc('aggregator', 'aggregator', ports.aggregator)];

  await experimentService.start();
  await Promise.all([modelServer.start(), aggregators[0]!.start(), gateway.start(), dashboard.start()]);
  const all = () => [gateway, dashboard, ...aggregators, modelServer, experimentService];
  process.once('exit', () => {
    for (const p of all()) if (p.alive) p.child!.kill('SIGKILL');
  });
  return {
    dir,
    redis,
    kafka,
    experimentService,
    modelServer,
    gateway,
    dashboard,
    aggregators,
    async addAggregator() {
      const p = proc(`aggregator-${aggregators.length + 1}`, 'aggregator', await freePort());
      aggregators.push(p);
      await p.start();
      return p;
    },
    async close() {
      for (const p of all()) {
        if (p.alive) {
          await p.signal('SIGCONT');
          await p.stop();
        }
      }
      await kafka.stop();
      await redis.kill();
    },
  };
}

async function createTopic(brokers: string): Promise<void> {
  const admin = new Kafka({ brokers: brokers.split(','), logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 4, replicationFactor: 1 }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

/** The value of a Prometheus series summed over its labels; null when unreachable. */
export async function metric(base: string, name: string): Promise<number | null> {
  try {
    const res = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(2000) });
    if (!res.ok) return null;
    let sum = 0;
    let seen = false;
    for (const line of (await res.text()).split('\n')) {
      if (line.startsWith(name) && (line[name.length] === ' ' || line[name.length] === '{')) {
        sum += Number(line.slice(line.lastIndexOf(' ') + 1));
        seen = true;
      }
    }
    return seen ? sum : 0;
  } catch {
    return null;
  }
}

export { waitFor };
