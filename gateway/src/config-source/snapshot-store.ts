import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConfigSnapshot, assign, compileEventChecks, type EventCheck } from '@bunryu/core';
import { writeFileDurably } from '@bunryu/platform/durable-files';
import type { Logger } from '@bunryu/platform/log';
import { buildRouteTable, interleavedExperiments, type InterleavedExperiment, type RouteRuntime } from '../proxy/route-table.ts';
import type { UpstreamPools } from '../proxy/upstream-pools.ts';

/** Everything the hot path reads, swapped as one reference so a request never sees half a config. */
export interface LiveConfig {
  snapshot: ConfigSnapshot;
  routes: ReadonlyMap<string, RouteRuntime>;
  /** Routes with running experiments: where a behaviour event without a route is tagged from. */
  experimentRoutes: readonly string[];
  /** The approved event catalogue compiled to one check per type, once per snapshot. */
  eventChecks: ReadonlyMap<string, EventCheck>;
  /** Running interleaving experiments (SPEC §13) by key: the two rankings each request merges. */
  interleaved: ReadonlyMap<string, InterleavedExperiment>;
  version: number;
  /** When this gateway took the snapshot (ms since epoch). */
  loadedAt: number;
  source: 'service' | 'disk';
}

export interface SnapshotStoreOptions {
  /** Where the last snapshot is persisted (`<BUNRYU_DATA_DIR>/gateway/snapshot.json`). */
  file: string;
  pools: UpstreamPools;
  logger: Logger;
  now?: () => number;
  /**
   * The epoch an operator allows this gateway to switch to (GATEWAY_ACCEPT_EPOCH), or `any`.
   * Without it a snapshot of another epoch than the one served is refused.
   */
  acceptEpoch?: string;
}

export type UpdateOutcome = 'applied' | 'unchanged' | 'invalid' | 'other-epoch';

/** A snapshot refused because it belongs to another epoch. */
export interface RefusedEpoch {
  epoch: string;
  version: number;
  /** The epoch still served. */
  serving: string;
}

/**
 * Holds the config snapshot the gateway serves. A new snapshot is validated, compiled and only
 * then swapped in; the previous one keeps serving until that moment. Every applied snapshot from
 * the experiment-service is written to disk (temp file, fsync, rename) so a restarted gateway can
 * serve while the experiment-service is down (SPEC §8).
 *
 * A snapshot carries the epoch of the experiment-service's data. One of another epoch comes from
 * data that was lost (Redis restarted empty) or replaced (an import): taking it could drop every
 * route at once, so it is refused, loudly, and the served snapshot kept, until an operator names
 * the new epoch in GATEWAY_ACCEPT_EPOCH. Snapshots without an epoch (older services) are taken.
 */
export class SnapshotStore {
  private live: LiveConfig | null = null;
  private persisting: Promise<void> = Promise.resolve();
  private readonly listeners: ((live: LiveConfig) => void)[] = [];
  private readonly now: () => number;
  private refused: RefusedEpoch | null = null;

  constructor(private readonly options: SnapshotStoreOptions) {
    this.now = options.now ?? Date.now;
  }

  get current(): LiveConfig | null {
    return this.live;
  }

  /** The last snapshot refused for its epoch, while no snapshot has been applied since. */
  get refusedEpoch(): RefusedEpoch | null {
    return this.refused;
  }

  onChange(listener: (live: LiveConfig) => void): void {
    this.listeners.push(listener);
  }

  /** Resolves true once a snapshot is served, or false after `timeoutMs` without one. */
  loaded(timeoutMs: number): Promise<boolean> {
    if (this.live) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.onChange(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Loads the persisted snapshot, unless a fresher one already arrived. */
  async loadPersisted(): Promise<boolean> {
    let text: string;
    try {
      text = await readFile(this.options.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.options.logger.warn({ err: String(err) }, 'cannot read the persisted snapshot');
      return false;
    }
    if (this.live) return false;
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      this.options.logger.warn({ err: String(err), file: this.options.file }, 'the persisted snapshot is not JSON: ignored');
      return false;
    }
    return this.update(raw, 'disk') === 'applied';
  }

  /**
   * Validates and swaps in a snapshot. One with the version already served from the service is
   * ignored before validation (each reconnection sends the current snapshot again).
   */
  update(raw: unknown, source: 'service' | 'disk'): UpdateOutcome {
    const head = raw as { version?: unknown; epoch?: unknown } | null;
    if (this.live?.source === 'service' && head?.version === this.live.version && head?.epoch === this.live.snapshot.epoch) return 'unchanged';
    const parsed = ConfigSnapshot.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      this.options.logger.warn({ source, path: issue?.path.join('.'), message: issue?.message }, 'invalid config snapshot ignored');
      return 'invalid';
    }
    const snapshot = parsed.data;
    const serving = this.live?.snapshot.epoch;
    if (serving !== undefined && snapshot.epoch !== undefined && snapshot.epoch !== serving && !this.accepts(snapshot.epoch)) {
      if (this.refused?.epoch !== snapshot.epoch) {
        this.options.logger.error(
          { serving, version: this.live!.version, refused: snapshot.epoch, refusedVersion: snapshot.version, source },
          `config snapshot of another epoch refused: the experiment-service's data is not the data this gateway serves (lost or replaced). ` +
            `Still serving epoch ${serving}. To switch, restart with GATEWAY_ACCEPT_EPOCH=${snapshot.epoch}`,
        );
      }
      this.refused = { epoch: snapshot.epoch, version: snapshot.version, serving };
      return 'other-epoch';
    }
    // A version going backwards is taken too: the experiment-service is the source of truth.
    // The same version from disk and then from the service is taken again, to be persisted.
    if (this.live && this.live.version === snapshot.version && this.live.snapshot.epoch === snapshot.epoch && this.live.source === source) return 'unchanged';
    const routes = buildRouteTable(snapshot, this.options.pools);
    // Compile now (assign caches per snapshot object), not on the first request after the swap.
    for (const name of routes.keys()) assign(snapshot, name, 'warm-up');
    const experimentRoutes = [...new Set(snapshot.experiments.filter((e) => e.status === 'running').map((e) => e.route))].sort();
    const eventChecks = compileEventChecks(snapshot.events);
    const interleaved = interleavedExperiments(snapshot, this.options.pools);
    const live: LiveConfig = { snapshot, routes, experimentRoutes, eventChecks, interleaved, version: snapshot.version, loadedAt: this.now(), source };
    this.live = live;
    this.refused = null;
    this.options.logger.info({ version: snapshot.version, epoch: snapshot.epoch, source, routes: routes.size, experiments: snapshot.experiments.length }, 'config snapshot applied');
    if (source === 'service') this.persist(snapshot);
    for (const listener of this.listeners) listener(live);
    return 'applied';
  }

  private accepts(epoch: string): boolean {
    return this.options.acceptEpoch === 'any' || this.options.acceptEpoch === epoch;
  }

  /** Resolves when every snapshot applied so far is on disk. */
  async persisted(): Promise<void> {
    await this.persisting;
  }

  private persist(snapshot: ConfigSnapshot): void {
    const text = JSON.stringify(snapshot);
    this.persisting = this.persisting.then(async () => {
      // A newer snapshot may already be queued behind this one: write only the latest.
      if (this.live?.snapshot !== snapshot) return;
      try {
        await mkdir(dirname(this.options.file), { recursive: true });
        await writeFileDurably(this.options.file, text);
      } catch (err) {
        this.options.logger.warn({ err: String(err), file: this.options.file }, 'cannot persist the config snapshot');
      }
    });
  }
}
