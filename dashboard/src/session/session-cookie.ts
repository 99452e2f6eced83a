export const SESSION_COOKIE = 'bunryu_session';

/** The value of one cookie from a `Cookie` header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * HttpOnly keeps the session id away from page scripts; SameSite=Strict keeps other sites from
 * riding on it. No Max-Age: the server decides expiry, and closing the browser ends it too.
 */
export function sessionCookie(id: string, opts: { secure: boolean }): string {
  return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict${opts.secure ? '; Secure' : ''}`;
}

export function clearedSessionCookie(opts: { secure: boolean }): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${opts.secure ? '; Secure' : ''}`;
}
