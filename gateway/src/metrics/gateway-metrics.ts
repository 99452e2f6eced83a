import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Assignment } from '@bunryu/core';
import type { PublisherStats } from '../events/event-publisher.ts';
import type { LiveConfig } from '../config-source/snapshot-store.ts';

export interface MetricSources {
  /** Absent in a cluster worker: the primary, which holds the publisher, reports these. */
  publisher?: () => PublisherStats;
  config: () => LiveConfig | null;
  configStreamConnected: () => boolean;
  now?: () => number;
}

type StatusCounts = Map<number, number>;

/**
 * The gateway's Prometheus metrics. Request counts are tallied in plain maps on the hot path and
 * copied into prom-client only when /metrics is scraped: with 20 experiments on a route a request
 * touches 20 variant cells, and label hashing per cell would cost more than the assignment.
 */
export class GatewayMetrics {
  private readonly routeTally = new Map<string, StatusCounts>();
  /** route → experiment → variant → status → count */
  private readonly variantTally = new Map<string, Map<string, Map<string, StatusCounts>>>();
  private readonly latency: Histogram<'route'>;
  private readonly latencyByRoute = new Map<string, { observe(v: number): void }>();
  private readonly fallbacks: Counter<'route' | 'reason'>;

  constructor(registry: Registry, sources: MetricSources) {
    const routeTally = this.routeTally;
    const variantTally = this.variantTally;
    const now = sources.now ?? Date.now;
    new Counter({
      name: 'bunryu_gateway_requests_total',
      help: 'Requests on /v1/routes by route and answered status',
      labelNames: ['route', 'status'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [route, counts] of routeTally) for (const [status, n] of counts) this.inc({ route, status }, n);
      },
    });
    new Counter({
      name: 'bunryu_gateway_variant_requests_total',
      help: 'Requests on /v1/routes by route, experiment, assigned variant and answered status',
      labelNames: ['route', 'experiment', 'variant', 'status'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [route, experiments] of variantTally)
          for (const [experiment, variants] of experiments)
            for (const [variant, counts] of variants) for (const [status, n] of counts) this.inc({ route, experiment, variant, status }, n);
      },
    });
    this.latency = new Histogram({
      name: 'bunryu_gateway_upstream_latency_seconds',
      help: 'Upstream answer time (connection, headers and body) by route',
      labelNames: ['route'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    });
    this.fallbacks = new Counter({
      name: 'bunryu_gateway_fallbacks_total',
      help: 'Requests answered from the route fallback, by reason (error, timeout, status)',
      labelNames: ['route', 'reason'],
      registers: [registry],
    });
    if (sources.publisher) registerPublisherMetrics(registry, sources.publisher);
    new Gauge({
      name: 'bunryu_gateway_config_version',
      help: 'Version of the config snapshot being served (-1 before any)',
      registers: [registry],
      // Across cluster workers: the oldest version any of them serves.
      aggregator: 'min',
      collect() {
        this.set(sources.config()?.version ?? -1);
      },
    });
    new Gauge({
      name: 'bunryu_gateway_config_age_seconds',
      help: 'Seconds since the snapshot being served was loaded (-1 before any)',
      registers: [registry],
      aggregator: 'max',
      collect() {
        const live = sources.config();
        this.set(live ? (now() - live.loadedAt) / 1000 : -1);
      },
    });
    new Gauge({
      name: 'bunryu_gateway_config_stream_connected',
      help: '1 while the experiment-service config stream is open',
      registers: [registry],
      aggregator: 'min',
      collect() {
        this.set(sources.configStreamConnected() ? 1 : 0);
      },
    });
  }

  /** One proxied request: its status and every assignment it carried. */
  request(route: string, assignments: readonly Assignment[], status: number, upstreamSeconds: number): void {
    bump(this.routeTally, route, status);
    if (assignments.length > 0) {
      let experiments = this.variantTally.get(route);
      if (!experiments) this.variantTally.set(route, (experiments = new Map()));
      for (let i = 0; i < assignments.length; i++) {
        const a = assignments[i]!;
        let variants = experiments.get(a.experiment);
        if (!variants) experiments.set(a.experiment, (variants = new Map()));
        bump(variants, a.variant, status);
      }
    }
    if (upstreamSeconds >= 0) {
      let child = this.latencyByRoute.get(route);
      if (!child) this.latencyByRoute.set(route, (child = this.latency.labels({ route })));
      child.observe(upstreamSeconds);
    }
  }

  fallback(route: string, reason: 'error' | 'timeout' | 'status'): void {
    this.fallbacks.inc({ route, reason });
  }
}

/** Queue depth, spill and delivery counts of the event publisher. */
export function registerPublisherMetrics(registry: Registry, stats: () => PublisherStats): void {
  new Gauge({
    name: 'bunryu_gateway_event_queue_depth',
    help: 'Events in memory waiting for the event log',
    registers: [registry],
    collect() {
      this.set(stats().queued);
    },
  });
  new Gauge({
    name: 'bunryu_gateway_event_spill_pending',
    help: 'Events on disk waiting for the event log to come back',
    registers: [registry],
    collect() {
      this.set(stats().spillPending);
    },
  });
  new Counter({
    name: 'bunryu_gateway_events_spilled_total',
    help: 'Events written to the disk spill since start',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(stats().spilled);
    },
  });
  new Counter({
    name: 'bunryu_gateway_events_published_total',
    help: 'Events acknowledged by the event log since start',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(stats().published);
    },
  });
  new Counter({
    name: 'bunryu_gateway_event_append_failures_total',
    help: 'Failed appends to the event log (each batch went to the spill)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(stats().failures);
    },
  });
}

function bump(tally: Map<string, StatusCounts>, key: string, status: number): void {
  let counts = tally.get(key);
  if (!counts) tally.set(key, (counts = new Map()));
  counts.set(status, (counts.get(status) ?? 0) + 1);
}
