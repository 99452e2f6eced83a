/**
 * The dashboard against the test fakes, seeded with a demo experiment, for working on the UI
 * without the other services: `npx tsx dashboard/test/support/dev-server.ts` (PORT, default 8084).
 * Tokens: admin-token, viewer-token, editor-token, releaser-token.
 */
import { buildApp } from '../../src/app.ts';
import { compose } from '../../src/compose.ts';
import { ConfigSchema } from '../../src/config.ts';
import { fakeAggregator } from './fake-aggregator.ts';
import { fakeExperimentService } from './fake-experiment-service.ts';
import { demoResults, demoTimeseries } from './demo-results.ts';

const tokens = {
  'admin-token': { role: 'admin', name: 'ada' },
  'viewer-token': { role: 'viewer', name: 'vic' },
  'editor-token': { role: 'editor', name: 'eve' },
  'releaser-token': { role: 'releaser', name: 'rex' },
};
const { app: es } = fakeExperimentService(tokens);
const agg = fakeAggregator();
const esUrl = await es.listen({ port: 0, host: '127.0.0.1' });
const aggUrl = await agg.app.listen({ port: 0, host: '127.0.0.1' });

const admin = { authorization: 'Bearer admin-token', 'content-type': 'application/json' };
await fetch(`${esUrl}/v1/routes/recommend`, { method: 'PUT', headers: admin, body: JSON.stringify({ upstream: 'http://127.0.0.1:8082', path: '/v1/models/ranker/predict', defaultParams: { version: '1' } }) });
await fetch(`${esUrl}/v1/metrics/ctr`, { method: 'PUT', headers: admin, body: JSON.stringify({ type: 'proportion', event: 'click' }) });
await fetch(`${esUrl}/v1/metrics/dwell`, { method: 'PUT', headers: admin, body: JSON.stringify({ type: 'mean', event: 'dwell' }) });
await fetch(`${esUrl}/v1/experiments`, {
  method: 'POST',
  headers: admin,
  body: JSON.stringify({
    key: 'ranker-v2', name: 'Ranker v2 against v1', hypothesis: 'v2 lifts CTR by 2%', route: 'recommend', layer: 'ranking', trafficPercent: 100,
    targeting: [{ attribute: 'country', op: 'in', value: ['JP', 'US'] }],
    variants: [{ key: 'control', weight: 50, params: { version: '1' } }, { key: 'treatment', weight: 50, params: { version: '2' } }],
    metrics: { primary: 'ctr', guardrails: ['error_rate', 'latency_ms'] },
  }),
});
await fetch(`${esUrl}/v1/experiments/ranker-v2/start`, { method: 'POST', headers: admin, body: '{}' });
agg.results.set('ranker-v2', demoResults('ranker-v2', Date.now()));
for (const m of ['ctr', 'error_rate', 'latency_ms']) agg.timeseries.set(`ranker-v2:${m}`, demoTimeseries('ranker-v2', m, Date.now()));

const config = ConfigSchema.parse({ EXPERIMENT_SERVICE_URL: esUrl, AGGREGATOR_URL: aggUrl, LOG_LEVEL: 'warn', PORT: process.env.PORT ?? '8084', DASHBOARD_SESSIONS: 'memory' });
const app = await buildApp(config, await compose(config));
process.stdout.write(`dashboard on ${await app.listen({ port: config.PORT, host: '127.0.0.1' })}\n`);
