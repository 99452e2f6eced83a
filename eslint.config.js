// @ts-check
import tseslint from 'typescript-eslint';

const SERVICES = ['gateway', 'experiment-service', 'model-server', 'aggregator', 'dashboard'];

/** Each service may use core and platform, never another service. */
const serviceBoundaries = SERVICES.map((service) => ({
  files: [`${service}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          ...SERVICES.filter((s) => s !== service).map((other) => ({
            group: [`@bunryu/${other}`, `**/${other}/**`, `../${other}`, `../../${other}`],
            message: `Services never import each other: put shared logic in core/ (pure) or platform/ (plumbing), and talk to ${other} over HTTP or Kafka.`,
          })),
          {
            group: ['**/scripts/**', '**/bench/scenarios/**'],
            message: 'scripts/ and bench/scenarios/ combine several services (start, demo, cross-service benches): a service, its tests and benches never import them. Move what is shared to core/, platform/ or bench/lib/.',
          },
        ],
      },
    ],
  },
}));

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', 'data/**', 'dashboard/public/vendor/**', 'test-artifacts/**', 'infra/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'warn',
    },
  },
  ...serviceBoundaries,
  {
    files: ['core/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*', 'fs', 'path', 'http', 'net', 'os', 'child_process'], message: 'core is pure: no I/O. Put it in platform/ or the service that needs it.' },
            { group: ['ioredis', 'kafkajs', '@clickhouse/*', 'chdb', 'chdb/*', 'onnxruntime-node', 'undici', 'prom-client'], message: 'core is pure: adapters live in the services.' },
            { group: ['fastify', 'fastify/*', '@fastify/*', '@bunryu/*'], message: 'core is pure and at the bottom: no web framework, and no other package of ours (HTTP plumbing lives in platform/).' },
          ],
        },
      ],
      'no-restricted-globals': ['error', { name: 'process', message: 'core takes its environment as an argument.' }, { name: 'console', message: 'core logs nothing: return the information.' }],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'core takes a clock as an argument.' },
        { object: 'Math', property: 'random', message: 'core takes a random source as an argument.' },
      ],
    },
  },
  {
    files: ['**/test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts', 'e2e/**/*.ts', 'chaos/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
);
