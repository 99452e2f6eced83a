/**
 * The one catalogue of error codes (docs/errors.md documents each; a test pins both together).
 * Every 4xx/5xx body is `{"error": {"code", "message", "details"?}}`.
 */
export const ERROR_CATALOGUE = {
  BUNRYU_VALIDATION: { status: 400, message: 'The request is invalid' },
  BUNRYU_INVALID_JSON: { status: 400, message: 'The body is not valid JSON' },
  BUNRYU_UNAUTHORIZED: { status: 401, message: 'A valid bearer token or API key is required' },
  BUNRYU_FORBIDDEN: { status: 403, message: 'Your role may not do this' },
  BUNRYU_NOT_FOUND: { status: 404, message: 'Not found' },
  BUNRYU_ALREADY_EXISTS: { status: 409, message: 'It already exists' },
  BUNRYU_INVALID_TRANSITION: { status: 409, message: 'That status change is not allowed' },
  BUNRYU_LAYER_FULL: { status: 409, message: 'The layer has no free range for this traffic' },
  BUNRYU_PARAM_CONFLICT: { status: 409, message: 'Another running experiment sets the same parameter' },
  BUNRYU_VERSION_MISMATCH: { status: 412, message: 'The resource changed since you read it' },
  BUNRYU_PAYLOAD_TOO_LARGE: { status: 413, message: 'The body is larger than 1 MiB' },
  BUNRYU_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'The body must be JSON' },
  BUNRYU_PRECONDITION_REQUIRED: { status: 428, message: 'An If-Match header is required' },
  BUNRYU_RATE_LIMITED: { status: 429, message: 'Too many requests' },
  BUNRYU_INTERNAL: { status: 500, message: 'Internal error' },
  BUNRYU_UPSTREAM_FAILED: { status: 502, message: 'The upstream failed and the route has no fallback' },
  BUNRYU_NOT_READY: { status: 503, message: 'The service is not ready' },
  BUNRYU_MODEL_UNAVAILABLE: { status: 503, message: 'No version of the model can answer' },
  BUNRYU_UPSTREAM_TIMEOUT: { status: 504, message: 'The upstream timed out and the route has no fallback' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

export class BunryuError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly details?: unknown;

  constructor(code: ErrorCode, message?: string, details?: unknown) {
    super(message ?? ERROR_CATALOGUE[code].message);
    this.name = 'BunryuError';
    this.code = code;
    this.statusCode = ERROR_CATALOGUE[code].status;
    if (details !== undefined) this.details = details;
  }

  toBody(): ErrorBody {
    return errorBody(this.code, this.message, this.details);
  }
}

export function createError(code: ErrorCode, message?: string, details?: unknown): BunryuError {
  return new BunryuError(code, message, details);
}

/** What a client is told: the error's body, with an internal error's message hidden (it goes to the log). */
export function clientErrorBody(error: BunryuError): ErrorBody {
  return error.code === 'BUNRYU_INTERNAL' ? errorBody(error.code, 'Internal error') : error.toBody();
}

export function errorBody(code: string, message: string, details?: unknown): ErrorBody {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

export interface FieldIssue {
  path: string;
  message: string;
}

/** Structural view of a zod error, so this module depends on no zod version. */
interface IssueLike {
  path: readonly PropertyKey[];
  message: string;
}

export function fieldPath(path: readonly PropertyKey[]): string {
  return path.length === 0 ? '(body)' : path.map(String).join('.');
}

/** A 400 naming every invalid field; `prefix` locates the payload (e.g. `events.3`). */
export function validationError(issues: readonly IssueLike[], prefix?: string): BunryuError {
  const fields: FieldIssue[] = issues.map((i) => ({
    path: prefix ? [prefix, ...i.path.map(String)].join('.') : fieldPath(i.path),
    message: i.message,
  }));
  const first = fields[0];
  const message = first ? `${first.path}: ${first.message}` : ERROR_CATALOGUE.BUNRYU_VALIDATION.message;
  return new BunryuError('BUNRYU_VALIDATION', message, { fields });
}

/** Parses with a zod schema or throws a 400 naming the fields. */
export function parseOrThrow<T>(
  schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: readonly IssueLike[] } } },
  value: unknown,
  prefix?: string,
): T {
  const r = schema.safeParse(value);
  if (!r.success) throw validationError(r.error.issues, prefix);
  return r.data;
}
