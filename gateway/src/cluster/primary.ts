import cluster, { type Worker } from 'node:cluster';
import type { Readable } from 'node:stream';
import { pino } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { LogSink } from '@bunryu/platform';
import type { Config } from '../config.ts';
import { composeEvents } from '../compose.ts';
import { registerPublisherMetrics } from '../metrics/gateway-metrics.ts';
import { EVENT_PIPE_FD, FrameReader } from './event-frames.ts';
import { isMessage, type ToPrimary, type ToWorker, type WorkerMetrics } from './protocol.ts';

/**
 * Set on the workers this primary forks: a process that another cluster primary forked (a
 * process manager's cluster mode) has no event pipe and runs as a gateway of its own.
 */
const WORKER_ENV = 'BUNRYU_GATEWAY_WORKER';
const COLLECT_TIMEOUT_MS = 2000;
/** How often the publisher's state is looked at for the workers (its refusal also ends with time). */
const EVENTS_STATE_MS = 50;
const SHUTDOWN_GRACE_MS = 15_000;
const RESTART_MIN_MS = 500;
const RESTART_MAX_MS = 30_000;
/** A worker that ran this long before dying resets the restart backoff. */
const HEALTHY_UPTIME_MS = 60_000;

interface Collection {
  requester: Worker;
  /** The requester's id for its request. */
  requestId: number;
  parts: WorkerMetrics[];
  waiting: Set<number>;
  timer: NodeJS.Timeout;
}

/**
 * The gateway as a cluster: GATEWAY_WORKERS processes share the port and serve requests (the
 * hot path is CPU-bound, and one Node process uses one core); this primary serves none. It holds
 * the one event publisher (the embedded log has a single writer, and one queue and one spill keep
 * the single-process rules: nothing blocks a request, nothing accepted is lost), answers the
 * workers' flushes, gathers every process's metrics for /metrics, and restarts a worker that
 * dies. SIGTERM/SIGINT: the workers drain their requests and hand over their last events, then
 * the publisher makes everything durable.
 */
export async function runPrimary(config: Readonly<Config>): Promise<void> {
  // The same pino lines as the workers' fastify logger, so one log shows the whole gateway.
  const logger = new LogSink('gateway', config.LOG_LEVEL === 'silent');
  logger.use(pino({ level: config.LOG_LEVEL, base: { service: 'gateway' } }));
  const events = await composeEvents(config, logger);
  const registry = new Registry();
  registry.setDefaultLabels({ service: 'gateway' });
  collectDefaultMetrics({ register: registry, labels: { process: 'primary' } });
  registerPublisherMetrics(registry, () => events.publisher.stats());

  const collections = new Map<number, Collection>();
  let nextCollection = 0;
  const started = new Map<Worker, number>();
  /** Per worker: resolves once its event pipe has ended and every frame on it was read. */
  const pipesRead = new Map<Worker, Promise<void>>();
  const listened = new Set<Worker>();
  let serving = false;
  let stopping = false;
  let restartDelay = RESTART_MIN_MS;

  const workers = () => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
  const send = (worker: Worker, message: ToWorker) => {
    if (worker.isConnected()) worker.send(message);
  };

  // Whatever has answered by the deadline is served: a stuck worker must not stall /metrics.
  const finishCollection = async (key: number) => {
    const c = collections.get(key);
    if (!c) return;
    collections.delete(key);
    clearTimeout(c.timer);
    const id = c.requestId;
    try {
      c.parts.push(await registry.getMetricsAsJSON());
      send(c.requester, { type: 'bunryu:metrics', id, parts: c.parts });
    } catch (err) {
      send(c.requester, { type: 'bunryu:metrics', id, parts: [], error: String(err) });
    }
  };

  const onMessage = (worker: Worker, message: unknown) => {
    if (!isMessage<ToPrimary>(message)) return;
    switch (message.type) {
      case 'bunryu:metrics': {
        const key = ++nextCollection;
        const asked = workers().filter((w) => w.isConnected());
        collections.set(key, {
          requester: worker,
          requestId: message.id,
          parts: [],
          waiting: new Set(asked.map((w) => w.id)),
          timer: setTimeout(() => void finishCollection(key), COLLECT_TIMEOUT_MS),
        });
        for (const w of asked) send(w, { type: 'bunryu:collect', id: key });
        return;
      }
      case 'bunryu:collected': {
        const c = collections.get(message.id);
        if (!c || !c.waiting.delete(worker.id)) return;
        c.parts.push(message.metrics);
        if (c.waiting.size === 0) void finishCollection(message.id);
        return;
      }
    }
  };

  const readEvents = (worker: Worker) => {
    const pipe = worker.process.stdio[EVENT_PIPE_FD] as Readable;
    const reader = new FrameReader({
      event: (key, value) => events.publisher.publishJson(key, value),
      // Frames of one pipe arrive in order: the events sent before this flush are all queued by now.
      flush: (id) =>
        events.publisher.flush().then(
          () => send(worker, { type: 'bunryu:flushed', id }),
          (err: unknown) => send(worker, { type: 'bunryu:flushed', id, error: String(err) }),
        ),
    });
    const done = new Promise<void>((resolve) => {
      pipe.on('data', (chunk: Buffer) => {
        try {
          reader.push(chunk);
        } catch (err) {
          logger.error({ worker: worker.process.pid, err: String(err) }, 'a gateway worker wrote a broken event stream; stopping it');
          pipe.destroy();
          worker.process.kill('SIGKILL');
        }
      });
      pipe.once('close', () => {
        // A worker killed hard can stop in the middle of a frame: the events of its last milliseconds.
        if (reader.pendingBytes > 0) logger.warn({ worker: worker.process.pid, bytes: reader.pendingBytes }, 'a gateway worker stopped in the middle of an event');
        resolve();
      });
    });
    pipesRead.set(worker, done);
  };

  // Workers answer on their own: they learn from here when answers must wait for the spill.
  const eventsState = (): ToWorker => ({ type: 'bunryu:events-state', flushBeforeAnswer: events.publisher.flushBeforeAnswer(), refusal: events.publisher.refusal() });
  let lastState = JSON.stringify(eventsState());
  const stateTimer = setInterval(() => {
    const state = eventsState();
    const text = JSON.stringify(state);
    if (text === lastState) return;
    lastState = text;
    for (const w of workers()) send(w, state);
  }, EVENTS_STATE_MS);
  stateTimer.unref();

  const fork = () => {
    const worker = cluster.fork({ [WORKER_ENV]: '1' });
    started.set(worker, Date.now());
    worker.once('online', () => send(worker, eventsState()));
    readEvents(worker);
  };

  cluster.on('message', onMessage);
  cluster.on('listening', (worker) => {
    listened.add(worker);
    if (!serving && listened.size === config.GATEWAY_WORKERS) {
      serving = true;
      logger.info({ workers: config.GATEWAY_WORKERS, pid: process.pid }, 'gateway cluster serving');
    }
  });
  cluster.on('exit', (worker, code, signal) => {
    const uptime = Date.now() - (started.get(worker) ?? Date.now());
    started.delete(worker);
    void pipesRead.get(worker)?.finally(() => pipesRead.delete(worker));
    if (stopping) return;
    const didListen = listened.delete(worker);
    // A worker that could not even start (port taken, bad config) would fail again: stop the gateway.
    if (!serving && !didListen) {
      logger.error({ worker: worker.process.pid, code }, 'a gateway worker failed to start; stopping');
      void shutdown(1);
      return;
    }
    if (uptime > HEALTHY_UPTIME_MS) restartDelay = RESTART_MIN_MS;
    logger.error({ worker: worker.process.pid, code, signal, restartInMs: restartDelay }, 'a gateway worker died; starting another');
    setTimeout(() => !stopping && fork(), restartDelay).unref();
    restartDelay = Math.min(RESTART_MAX_MS, restartDelay * 2);
  });

  const shutdown = async (exitCode: number) => {
    if (stopping) return;
    stopping = true;
    clearInterval(stateTimer);
    const force = setTimeout(() => process.exit(1), SHUTDOWN_GRACE_MS);
    force.unref();
    await Promise.all(
      workers().map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.isDead()) return resolve();
            w.once('exit', () => resolve());
            w.process.kill('SIGTERM');
          }),
      ),
    );
    // What the workers wrote before they exited, a worker killed hard included, is read before the publisher closes.
    await Promise.all(pipesRead.values());
    try {
      await events.close();
    } catch (err) {
      logger.error({ err: String(err) }, 'closing the event publisher failed');
      exitCode = 1;
    }
    process.exit(exitCode);
  };
  process.once('SIGINT', () => void shutdown(0));
  process.once('SIGTERM', () => void shutdown(0));

  // stdin, stdout, stderr and IPC as node:cluster sets them, and the event pipe (EVENT_PIPE_FD).
  cluster.setupPrimary({ stdio: ['inherit', 'inherit', 'inherit', 'ipc', 'pipe'] });
  for (let i = 0; i < config.GATEWAY_WORKERS; i++) fork();
}
