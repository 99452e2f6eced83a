// Every call goes to the dashboard's own server: it holds the token and forwards to the
// experiment-service (/api/es) or the aggregator (/api/agg). Page scripts never see the token.

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {{code?: string, message?: string, details?: any} | undefined} error
   */
  constructor(status, error) {
    super(error?.message ?? `request failed (${status})`);
    this.status = status;
    this.code = error?.code ?? 'BUNRYU_HTTP_' + status;
    this.details = error?.details;
    /** @type {{path: string, message: string}[]} */
    this.fields = Array.isArray(error?.details?.fields) ? error.details.fields : [];
  }
}

/** Listeners told when the server no longer knows the session (expired, revoked, signed out). */
const signedOutListeners = new Set();
/** @param {() => void} fn */
export function onSignedOut(fn) {
  signedOutListeners.add(fn);
  return () => signedOutListeners.delete(fn);
}

/**
 * @param {string} method
 * @param {string} path
 * @param {{body?: unknown, ifMatch?: string | number}} [opts]
 */
export async function request(method, path, opts = {}) {
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json' };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  if (opts.ifMatch !== undefined) headers['if-match'] = String(opts.ifMatch);
  let res;
  try {
    res = await fetch(path, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), credentials: 'same-origin' });
  } catch {
    throw new ApiError(0, { code: 'NETWORK', message: 'The dashboard server cannot be reached.' });
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    if (res.status === 401 && path !== '/api/session') signedOutListeners.forEach((fn) => fn());
    throw new ApiError(res.status, data?.error ?? { message: text.slice(0, 200) || res.statusText });
  }
  return { data, etag: res.headers.get('etag') };
}

const enc = encodeURIComponent;

export const session = {
  get: () => request('GET', '/api/session').then((r) => r.data),
  /** @param {string} token */
  signIn: (token) => request('POST', '/api/session', { body: { token } }).then((r) => r.data),
  signOut: () => request('DELETE', '/api/session'),
};

/**
 * Lists come back as arrays, wrapped ({experiments: [...]}) or as maps keyed by id (the metric
 * catalogue): all become arrays of objects carrying their key.
 */
function list(data, ...keys) {
  if (Array.isArray(data)) return data;
  if (!data || typeof data !== 'object') return [];
  for (const k of [...keys, 'items', 'data']) if (Array.isArray(data[k])) return data[k];
  const map = keys.map((k) => data[k]).find((v) => v && typeof v === 'object') ?? data;
  return Object.entries(map)
    .filter(([, v]) => v && typeof v === 'object' && !Array.isArray(v))
    .map(([key, v]) => ({ key, ...v }));
}

export const es = {
  experiments: () => request('GET', '/api/es/v1/experiments').then((r) => list(r.data, 'experiments')),
  /** @param {string} key */
  experiment: (key) => request('GET', `/api/es/v1/experiments/${enc(key)}`).then((r) => r.data),
  /** @param {object} def */
  create: (def) => request('POST', '/api/es/v1/experiments', { body: def }).then((r) => r.data),
  /** @param {string} key @param {object} def @param {number} version */
  update: (key, def, version) => request('PUT', `/api/es/v1/experiments/${enc(key)}`, { body: def, ifMatch: version }).then((r) => r.data),
  // Status changes carry the version the user looked at: if the experiment changed meanwhile,
  // the service answers 412 instead of acting on buckets the confirmation did not name.
  /** @param {string} key @param {'start'|'pause'|'archive'|'rollback'} action @param {number} [version] */
  transition: (key, action, version) => request('POST', `/api/es/v1/experiments/${enc(key)}/${action}`, { body: {}, ifMatch: version }).then((r) => r.data),
  /** @param {string} key @param {Record<string, number>} weights @param {number} [version] */
  ramp: (key, weights, version) => request('POST', `/api/es/v1/experiments/${enc(key)}/ramp`, { body: { weights }, ifMatch: version }).then((r) => r.data),
  /** @param {string} key @param {string} variant @param {number} [version] */
  promote: (key, variant, version) => request('POST', `/api/es/v1/experiments/${enc(key)}/promote`, { body: { variant }, ifMatch: version }).then((r) => r.data),
  /** @param {string} key */
  rollout: (key) => request('GET', `/api/es/v1/experiments/${enc(key)}/rollout`).then((r) => r.data),
  /** @param {string} key @param {'pause' | 'resume'} mode @param {number} version */
  autopilot: (key, mode, version) => request('POST', `/api/es/v1/experiments/${enc(key)}/rollout/${mode}`, { body: {}, ifMatch: version }).then((r) => r.data),
  /** @param {string} key */
  history: (key) => request('GET', `/api/es/v1/experiments/${enc(key)}/history`).then((r) => list(r.data, 'history', 'entries', 'events')),
  routes: () => request('GET', '/api/es/v1/routes').then((r) => list(r.data, 'routes')),
  /** @param {string} key @param {object} route */
  putRoute: (key, route) => request('PUT', `/api/es/v1/routes/${enc(key)}`, { body: route }).then((r) => r.data),
  /** @param {string} key */
  routeHistory: (key) => request('GET', `/api/es/v1/routes/${enc(key)}/history`).then((r) => r.data),
  /** @param {{route: string, params: Record<string, unknown>, plan?: object, name?: string}} body */
  release: (body) => request('POST', '/api/es/v1/releases', { body }).then((r) => r.data),
  metrics: () => request('GET', '/api/es/v1/metrics').then((r) => list(r.data, 'metrics')),
  /** @param {string} key @param {object} metric */
  putMetric: (key, metric) => request('PUT', `/api/es/v1/metrics/${enc(key)}`, { body: metric }).then((r) => r.data),
  events: () => request('GET', '/api/es/v1/events').then((r) => list(r.data, 'events')),
  /** @param {string} type @param {object} declaration */
  proposeEvent: (type, declaration) => request('PUT', `/api/es/v1/events/${enc(type)}`, { body: declaration }).then((r) => r.data),
  // Approval names the version the reviewer saw: a proposal changed meanwhile answers 412.
  /** @param {string} type @param {number} version */
  approveEvent: (type, version) => request('POST', `/api/es/v1/events/${enc(type)}/approve`, { body: {}, ifMatch: version }).then((r) => r.data),
};

export const agg = {
  /** Per behaviour type over the last hour: events per minute, last seen, share invalid. */
  eventVolume: () => request('GET', '/api/agg/v1/events/volume').then((r) => r.data),
  /** @param {string} key */
  results: (key) => request('GET', `/api/agg/v1/results/${enc(key)}`).then((r) => r.data),
  /** A route's shadow against what its clients were answered (SPEC §13). @param {string} route */
  shadow: (route) => request('GET', `/api/agg/v1/shadow/${enc(route)}`).then((r) => r.data),
  /** The results over units never answered by a fallback: biased, shown beside the headline. @param {string} key */
  asServed: (key) => request('GET', `/api/agg/v1/results/${enc(key)}/as-served`).then((r) => r.data),
  /** Results per value of the experiment's declared slice attributes, corrected across slices. @param {string} key */
  slices: (key) => request('GET', `/api/agg/v1/results/${enc(key)}/slices`).then((r) => r.data),
  /** @param {string} key @param {string} metric @param {string} [interval] e.g. 15s, 5m */
  timeseries: (key, metric, interval) =>
    request('GET', `/api/agg/v1/results/${enc(key)}/timeseries?metric=${enc(metric)}${interval ? `&interval=${enc(interval)}` : ''}`).then((r) => r.data),
};

export const ms = {
  /** Every model with its versions: status, gates, offline metrics (model-server `GET /v1/models`). */
  models: () => request('GET', '/api/ms/v1/models').then((r) => list(r.data, 'models')),
};
