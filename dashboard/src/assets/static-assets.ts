import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';
import { ALLOWED_FROM, createError, defaultRolloutPlan } from '@bunryu/core';

export const PUBLIC_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../public');

const require = createRequire(import.meta.url);

/**
 * The browser libraries, served straight from node_modules (no build step). Only these files
 * are reachable under /vendor/; the page's import map points bare specifiers at them.
 */
function vendorFiles(): Map<string, { root: string; file: string }> {
  const at = (resolved: string, file: string) => ({ root: dirname(resolved), file });
  return new Map([
    ['preact.mjs', at(require.resolve('preact'), 'preact.mjs')],
    ['preact-hooks.mjs', at(require.resolve('preact/hooks'), 'hooks.mjs')],
    ['htm.mjs', at(require.resolve('htm'), 'htm.mjs')],
    ['chart.umd.min.js', at(require.resolve('chart.js'), 'chart.umd.min.js')],
  ]);
}

/**
 * The Content-Security-Policy: scripts only from this origin, plus the one inline import map,
 * allowed by its hash so no other inline script can run.
 */
export function contentSecurityPolicy(indexHtml: string): string {
  const hashes = [...indexHtml.matchAll(/<script type="importmap">([\s\S]*?)<\/script>/g)].map(
    (m) => `'sha256-${createHash('sha256').update(m[1]!).digest('base64')}'`,
  );
  return [
    "default-src 'self'",
    `script-src 'self' ${hashes.join(' ')}`.trim(),
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'",
  ].join('; ');
}

export async function registerStaticAssets(app: FastifyInstance): Promise<void> {
  const csp = contentSecurityPolicy(readFileSync(join(PUBLIC_DIR, 'index.html'), 'utf8'));
  app.addHook('onSend', async (_request, reply, payload) => {
    void reply.header('x-content-type-options', 'nosniff');
    void reply.header('referrer-policy', 'no-referrer');
    void reply.header('x-frame-options', 'DENY');
    if (String(reply.getHeader('content-type') ?? '').startsWith('text/html')) void reply.header('content-security-policy', csp);
    return payload;
  });

  await app.register(fastifyStatic, { root: PUBLIC_DIR, prefix: '/', index: 'index.html', cacheControl: true, maxAge: 0 });

  // The status-transition table comes from core, the one the experiment-service enforces, so the
  // UI never offers an action the service would refuse with 409 (the UI calls an update "edit").
  const lifecycleModule = `export const ALLOWED_FROM = ${JSON.stringify({ ...ALLOWED_FROM, edit: ALLOWED_FROM.update })};\n`;
  app.get('/js/lib/lifecycle-table.js', async (_request, reply) => reply.type('text/javascript; charset=utf-8').send(lifecycleModule));
  // SPEC §10's default rollout plan, from core, so the plan editor starts where the service would.
  const rolloutModule = `export const DEFAULT_ROLLOUT = ${JSON.stringify(defaultRolloutPlan(['control', 'treatment']))};\n`;
  app.get('/js/lib/rollout-defaults.js', async (_request, reply) => reply.type('text/javascript; charset=utf-8').send(rolloutModule));

  const vendor = vendorFiles();
  app.get<{ Params: { file: string } }>('/vendor/:file', async (request, reply) => {
    const entry = vendor.get(request.params.file);
    if (!entry) throw createError('BUNRYU_NOT_FOUND', `no vendor file ${request.params.file}`);
    return reply.sendFile(entry.file, entry.root, { maxAge: 3_600_000 });
  });
}
