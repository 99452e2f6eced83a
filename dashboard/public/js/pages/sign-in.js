import { useRef, useState, useEffect } from 'preact/hooks';
import { html } from '../lib/html.js';
import { session } from '../lib/api.js';
import { errorProps, FieldError } from '../components/field.js';

/** @param {{onSignedIn: (who: {role: string | null, name: string | null}) => void, expired?: boolean}} props */
export function SignIn({ onSignedIn, expired }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState(/** @type {string | null} */ (null));
  const [busy, setBusy] = useState(false);
  const input = useRef(/** @type {HTMLInputElement | null} */ (null));
  useEffect(() => input.current?.focus(), []);

  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const who = await session.signIn(token);
      setToken('');
      onSignedIn(who);
    } catch (err) {
      const ex = /** @type {any} */ (err);
      setError(ex.fields?.[0]?.message ?? ex.message);
      input.current?.focus();
    } finally {
      setBusy(false);
    }
  };

  return html`
    <main id="main" class="sign-in">
      <form class="card" onSubmit=${submit} aria-labelledby="sign-in-title">
        <h1 id="sign-in-title"><span class="brand-mark" aria-hidden="true"></span>bunryu</h1>
        <p class="muted">Sign in with your experiment-service token. It stays on the dashboard's server: this page never holds it after you submit.</p>
        ${expired && html`<p class="notice info" role="status">Your session ended. Sign in again.</p>`}
        <label for="token">Access token</label>
        <input id="token" ref=${input} type="password" autocomplete="current-password" required value=${token}
          onInput=${(e) => setToken(e.currentTarget.value)} ...${errorProps('token', error)} />
        <${FieldError} id="token" error=${error} />
        <button type="submit" class="primary" disabled=${busy || token.trim() === ''}>${busy ? 'Signing in…' : 'Sign in'}</button>
      </form>
    </main>
  `;
}
