import type { ConfigSnapshot } from '@bunryu/core';
import type { ExperimentStore } from '../store/experiment-store.ts';
import { buildSnapshot, serializeSnapshot } from './build-snapshot.ts';

/** A built snapshot with its serialized form, shared by every response and stream. */
export interface PublishedSnapshot {
  version: number;
  epoch: string | undefined;
  snapshot: ConfigSnapshot;
  json: string;
  etag: string;
}

export interface ConfigSnapshotsOptions {
  onBuilt?: (published: PublishedSnapshot, seconds: number) => void;
  onError?: (err: unknown) => void;
}

/**
 * The latest config snapshot of this process. It is rebuilt when the store announces a change
 * (from this or any replica) and when a reader finds the store ahead of it, so a GET right after
 * a write sees the write. One rebuild runs at a time; subscribers see versions in order.
 */
export class ConfigSnapshots {
  private current: PublishedSnapshot | undefined;
  private building: Promise<PublishedSnapshot> | undefined;
  private queued: Promise<PublishedSnapshot> | undefined;
  private readonly subscribers = new Set<(p: PublishedSnapshot) => void>();
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly store: ExperimentStore,
    private readonly options: ConfigSnapshotsOptions = {},
  ) {}

  /** Starts following the store's changes; resolves once no later change can be missed. */
  async start(): Promise<void> {
    this.unsubscribe ??= await this.store.onChange((version) => {
      if (this.current && version !== -1 && version <= this.current.version) return;
      this.rebuild().catch((err: unknown) => this.options.onError?.(err));
    });
  }

  /** The snapshot at the store's current version (or newer). */
  async latest(): Promise<PublishedSnapshot> {
    const version = await this.store.version();
    let p = this.current;
    while (!p || p.version < version) p = await this.rebuild();
    return p;
  }

  /** Rebuilds now, whatever the version: after an import, whose version may be lower. */
  async refresh(): Promise<PublishedSnapshot> {
    return this.rebuild();
  }

  /** Calls `listener` with every newer snapshot this process builds. */
  subscribe(listener: (p: PublishedSnapshot) => void): () => void {
    this.subscribers.add(listener);
    return () => this.subscribers.delete(listener);
  }

  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.subscribers.clear();
  }

  private rebuild(): Promise<PublishedSnapshot> {
    // A rebuild that has not started reading yet will see every change made so far: join it.
    // One already reading may miss the latest change: queue another after it.
    if (this.queued) return this.queued;
    const previous = this.building ?? Promise.resolve(undefined);
    const run: Promise<PublishedSnapshot> = previous
      .catch(() => undefined)
      .then(() => {
        if (this.queued === run) this.queued = undefined;
        return this.build();
      });
    this.queued = run;
    this.building = run;
    return run;
  }

  private async build(): Promise<PublishedSnapshot> {
    const started = performance.now();
    const state = await this.store.load();
    // Another epoch is an import (a lost store fails to load instead): its version may be lower.
    if (this.current && state.epoch === this.current.epoch && state.version <= this.current.version) return this.current;
    const snapshot = buildSnapshot(state);
    const published: PublishedSnapshot = { version: snapshot.version, epoch: snapshot.epoch, snapshot, json: serializeSnapshot(snapshot), etag: `"${snapshot.version}"` };
    this.current = published;
    this.options.onBuilt?.(published, (performance.now() - started) / 1000);
    for (const s of this.subscribers) s(published);
    return published;
  }
}
