import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { closedPort } from './upstream.ts';

const LIB = fileURLToPath(new URL('../../../infra/kafka/lib', import.meta.url));
const LOG4J = fileURLToPath(new URL('../../../infra/kafka/log4j.properties', import.meta.url));

/**
 * A single-node KRaft broker of this test alone, from the jars infra/kafka fetched, on free
 * ports: the test may kill and restart it without touching the shared broker on 9092.
 */
export interface PrivateKafka {
  brokers: string;
  /** Kills the broker (SIGKILL: an outage, not a polite shutdown). */
  kill(): Promise<void>;
  /** Starts it again on the same ports and data. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function privateKafkaAvailable(): boolean {
  return existsSync(join(LIB, '.complete')) && spawnSync('java', ['-version']).status === 0;
}

export async function startPrivateKafka(dir: string): Promise<PrivateKafka> {
  const port = await closedPort();
  const controllerPort = await closedPort();
  const props = join(dir, 'server.properties');
  await mkdir(join(dir, 'logs'), { recursive: true });
  await writeFile(
    props,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      `log.dirs=${join(dir, 'data')}`,
      'num.partitions=4',
      'default.replication.factor=1',
      'min.insync.replicas=1',
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=1',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'group.initial.rebalance.delay.ms=0',
      // After a kill the controller refuses the broker's new incarnation until the old session
      // expires (9 s by default): keep that short so the restart is quick.
      'broker.session.timeout.ms=2000',
      'broker.heartbeat.interval.ms=500',
      '',
    ].join('\n'),
  );
  const java = (args: string[]) => ['-Xms64m', '-Xmx256m', '-XX:TieredStopAtLevel=1', '-Djava.awt.headless=true', `-Dkafka.logs.dir=${join(dir, 'logs')}`, `-Dlog4j.configuration=file:${LOG4J}`, '-cp', `${LIB}/*`, ...args];
  // Kafka's own ids never start with '-': its command line would take one for an option.
  let clusterId: string;
  do clusterId = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64url');
  while (clusterId.startsWith('-'));
  const format = spawnSync('java', java(['kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', props]), { encoding: 'utf8' });
  if (format.status !== 0) throw new Error(`formatting the private broker failed: ${format.stderr}`);

  let child: ChildProcess | null = null;
  const start = async () => {
    const proc = spawn('java', java(['-XX:+UseG1GC', 'kafka.Kafka', props]), { stdio: 'ignore' });
    child = proc;
    const deadline = Date.now() + 60_000;
    while (!(await reachable(port))) {
      if (proc.exitCode !== null) throw new Error(`the private broker exited with ${proc.exitCode} (logs in ${dir}/logs)`);
      if (Date.now() > deadline) throw new Error('the private broker did not listen within 60 s');
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const kill = async () => {
    const proc = child;
    child = null;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
  };
  // Never outlive the test process, whatever happens to it.
  process.once('exit', () => {
    const proc = child as ChildProcess | null;
    proc?.kill('SIGKILL');
  });
  await start();
  return { brokers: `127.0.0.1:${port}`, kill, start, stop: kill };
}

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
