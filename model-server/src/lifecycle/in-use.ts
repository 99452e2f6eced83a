import { ConfigSnapshot, createError } from '@bunryu/core';

/**
 * Who still uses a model version, by the experiment-service's config snapshot (SPEC §12: a
 * version is retired only when no running experiment or route default uses it): routes that
 * call the model and default to the version, and live experiments on such routes with a variant
 * that asks for it. An experiment-service that cannot be asked is a 503: not knowing is not
 * "unused".
 */
export async function usersOfVersion(opts: { url: string; token?: string | undefined; fetch?: typeof fetch }, model: string, version: string): Promise<string[]> {
  let snapshot: ConfigSnapshot;
  try {
    const res = await (opts.fetch ?? fetch)(new URL('/v1/config', opts.url), {
      headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {},
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) throw new Error(`GET /v1/config answered ${res.status}`);
    snapshot = ConfigSnapshot.parse(await res.json());
  } catch (err) {
    throw createError('BUNRYU_NOT_READY', `cannot check whether a route or an experiment uses ${model}/${version}: the experiment-service at ${opts.url} did not answer (${(err as Error).message})`);
  }
  const users: string[] = [];
  const callsModel = new Set<string>();
  for (const [key, route] of Object.entries(snapshot.routes)) {
    const params = route.defaultParams as Record<string, unknown>;
    const named = params.model === model || (params.model === undefined && route.path.includes(`/v1/models/${model}/`));
    if (!named) continue;
    callsModel.add(key);
    if (params.version === version) users.push(`route ${key} (defaultParams)`);
  }
  for (const e of snapshot.experiments) {
    if (!callsModel.has(e.route) || !['running', 'paused', 'released'].includes(e.status)) continue;
    const variants = e.variants.filter((v) => (v.params as Record<string, unknown>).version === version && (e.status !== 'released' || v.key === e.releasedVariant));
    if (variants.length > 0) users.push(`experiment ${e.key} (${e.status}, variant ${variants.map((v) => v.key).join(', ')})`);
  }
  return users;
}
