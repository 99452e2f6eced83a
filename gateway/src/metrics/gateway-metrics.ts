import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { hotCounter, type HotCounter } from '@bunryu/platform';
import type { Assignment } from '@bunryu/core';
import type { PublisherStats } from '../events/event-publisher.ts';
import type { LiveConfig } from '../config-source/snapshot-store.ts';

export interface MetricSources {
  /** Absent in a cluster worker: the primary, which holds the publisher, reports these. */
  publisher?: () => PublisherStats;
  config: () => LiveConfig | null;
  configStreamConnected: () => boolean;
  /** Whether a snapshot of another epoch is being refused. */
  refusedEpoch?: () => boolean;
  now?: () => number;
}

type StatusCounts = Map<number, number>;

const MAX_CATALOGUE_TYPES = 200;

/** Requests of one series: 200s apart, the common case, other statuses in a map made when first needed. */
interface Tally {
  ok: number;
  other: StatusCounts | null;
}

interface VariantTally extends Tally {
  route: string;
  experiment: string;
  variant: string;
}

/**
 * The gateway's Prometheus metrics. Request counts are tallied in plain objects on the hot path and
 * copied into prom-client only when /metrics is scraped: with 20 experiments on a route a request
 * touches 20 variant series, and label hashing per series would cost more than the assignment.
 */
export class GatewayMetrics {
  private readonly routeTally = new Map<string, Tally>();
  private readonly variantTallies: VariantTally[] = [];
  private readonly variantByName = new Map<string, VariantTally>();
  /**
   * By the Assignment objects the core shares per variant and snapshot: one identity lookup per
   * assignment. Weak, so the objects of a replaced snapshot go; their series stay by name.
   */
  private readonly variantByAssignment = new WeakMap<Assignment, VariantTally>();
  private readonly latency: Histogram<'route'>;
  private readonly latencyByRoute = new Map<string, { observe(v: number): void }>();
  private readonly fallbacks: Counter<'route' | 'reason'>;
  private readonly shadows: Counter<'route' | 'outcome'>;
  private readonly catalogue: HotCounter;
  /** Types seen in catalogue mismatches: undeclared ones come from clients, so their number is capped. */
  private readonly catalogueTypes = new Set<string>();

  constructor(registry: Registry, sources: MetricSources) {
    const routeTally = this.routeTally;
    const variantTallies = this.variantTallies;
    const now = sources.now ?? Date.now;
    new Counter({
      name: 'bunryu_gateway_requests_total',
      help: 'Requests on /v1/routes by route and answered status',
      labelNames: ['route', 'status'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [route, tally] of routeTally) forEachStatus(tally, (status, n) => this.inc({ route, status }, n));
      },
    });
    new Counter({
      name: 'bunryu_gateway_variant_requests_total',
      help: 'Requests on /v1/routes by route, experiment, assigned variant and answered status',
      labelNames: ['route', 'experiment', 'variant', 'status'],
      registers: [registry],
      collect() {
        this.reset();
        for (const t of variantTallies) forEachStatus(t, (status, n) => this.inc({ route: t.route, experiment: t.experiment, variant: t.variant, status }, n));
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
    this.shadows = new Counter({
      name: 'bunryu_gateway_shadow_requests_total',
      help: 'Shadow copies of requests (SPEC §13) by route: sent, or dropped because GATEWAY_SHADOW_MAX_IN_FLIGHT were pending',
      labelNames: ['route', 'outcome'],
      registers: [registry],
    });
    this.catalogue = hotCounter(
      registry,
      'bunryu_gateway_catalogue_mismatches_total',
      'Behaviour events that do not match the approved event catalogue (SPEC §16), by type, verdict (undeclared, invalid) and outcome (accepted under warn, rejected under strict)',
      ['type', 'verdict', 'outcome'],
    );
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
    if (sources.refusedEpoch) {
      const refused = sources.refusedEpoch;
      new Gauge({
        name: 'bunryu_gateway_config_epoch_refused',
        help: '1 while the experiment-service offers a snapshot of another epoch than the one served (refused until GATEWAY_ACCEPT_EPOCH names it)',
        registers: [registry],
        aggregator: 'max',
        collect() {
          this.set(refused() ? 1 : 0);
        },
      });
    }
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
    let tally = this.routeTally.get(route);
    if (tally === undefined) this.routeTally.set(route, (tally = { ok: 0, other: null }));
    count(tally, status);
    for (let i = 0; i < assignments.length; i++) {
      const a = assignments[i]!;
      let v = this.variantByAssignment.get(a);
      if (v === undefined) this.variantByAssignment.set(a, (v = this.variantTally(route, a)));
      count(v, status);
    }
    if (upstreamSeconds >= 0) {
      let child = this.latencyByRoute.get(route);
      if (!child) this.latencyByRoute.set(route, (child = this.latency.labels({ route })));
      child.observe(upstreamSeconds);
    }
  }

  private variantTally(route: string, a: Assignment): VariantTally {
    const name = `${route}\n${a.experiment}\n${a.variant}`;
    let v = this.variantByName.get(name);
    if (v === undefined) {
      v = { route, experiment: a.experiment, variant: a.variant, ok: 0, other: null };
      this.variantByName.set(name, v);
      this.variantTallies.push(v);
    }
    return v;
  }

  /** One behaviour event that missed the catalogue; types beyond the first 200 share `(other)`. */
  catalogueMismatch(type: string, verdict: 'undeclared' | 'invalid', policy: 'warn' | 'strict'): void {
    let label = type;
    if (!this.catalogueTypes.has(type)) {
      if (this.catalogueTypes.size < MAX_CATALOGUE_TYPES) this.catalogueTypes.add(type);
      else label = '(other)';
    }
    this.catalogue.inc([label, verdict, policy === 'warn' ? 'accepted' : 'rejected']);
  }

  fallback(route: string, reason: 'error' | 'timeout' | 'status'): void {
    this.fallbacks.inc({ route, reason });
  }

  shadow(route: string, outcome: 'sent' | 'dropped'): void {
    this.shadows.inc({ route, outcome });
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
    name: 'bunryu_gateway_event_spill_errors_total',
    help: 'Failed writes to the disk spill (a full disk): their events stayed in memory',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(stats().spillErrors);
    },
  });
  new Gauge({
    name: 'bunryu_gateway_event_spill_failing',
    help: '1 while the last write to the disk spill failed: /v1/events answers 503 while the event log is down too',
    registers: [registry],
    collect() {
      this.set(stats().spillFailing ? 1 : 0);
    },
  });
  new Counter({
    name: 'bunryu_gateway_events_dropped_total',
    help: 'Events dropped because neither the disk spill nor the bounded memory queue could hold them',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(stats().dropped);
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

function count(tally: Tally, status: number): void {
  if (status === 200) tally.ok++;
  else {
    const other = (tally.other ??= new Map());
    other.set(status, (other.get(status) ?? 0) + 1);
  }
}

function forEachStatus(tally: Tally, fn: (status: number, n: number) => void): void {
  if (tally.ok > 0) fn(200, tally.ok);
  if (tally.other !== null) for (const [status, n] of tally.other) fn(status, n);
}
