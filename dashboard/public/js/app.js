import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { html } from './lib/html.js';
import { onSignedOut, session } from './lib/api.js';
import { href, useRoute } from './lib/router.js';
import { Notices } from './components/notices.js';
import { SignIn } from './pages/sign-in.js';
import { ExperimentsList } from './pages/experiments-list.js';
import { ExperimentForm } from './pages/experiment-form.js';
import { ExperimentPage } from './pages/experiment-page.js';
import { RoutesPage } from './pages/routes-page.js';
import { MetricsPage } from './pages/metrics-page.js';
import { ModelsPage } from './pages/models-page.js';
import { EventsPage } from './pages/events-page.js';

/** @typedef {{role: string | null, name: string | null}} Who */

function App() {
  const [who, setWho] = useState(/** @type {Who | null | undefined} */ (undefined));
  const [expired, setExpired] = useState(false);
  const route = useRoute();

  useEffect(() => {
    session.get().then(setWho, () => setWho(null));
    return onSignedOut(() => {
      setWho((w) => {
        if (w) setExpired(true);
        return null;
      });
    });
  }, []);

  useEffect(() => {
    const [section, key, sub] = route;
    const page = { experiments: key === 'new' ? 'New experiment' : key ? (sub === 'edit' ? `Edit ${key}` : key) : 'Experiments', routes: 'Routes', metrics: 'Metrics', models: 'Models', events: 'Events' }[section ?? 'experiments'];
    document.title = `${page ?? 'bunryu'} · bunryu`;
  }, [route.join('/')]);

  if (who === undefined) return html`<main id="main" class="loading" aria-busy="true">Loading…</main>`;
  if (who === null) {
    return html`<${SignIn} expired=${expired} onSignedIn=${(w) => {
      setExpired(false);
      setWho(w);
    }} /><${Notices} />`;
  }

  const signOut = async () => {
    await session.signOut().catch(() => {});
    setExpired(false);
    setWho(null);
  };

  const [section = 'experiments', key, sub] = route;
  let page;
  if (section === 'routes') page = html`<${RoutesPage} who=${who} />`;
  else if (section === 'metrics') page = html`<${MetricsPage} who=${who} />`;
  else if (section === 'models') page = html`<${ModelsPage} who=${who} />`;
  else if (section === 'events') page = html`<${EventsPage} who=${who} />`;
  else if (key === 'new') page = html`<${ExperimentForm} who=${who} />`;
  else if (key && sub === 'edit') page = html`<${ExperimentForm} who=${who} experimentKey=${key} />`;
  else if (key) page = html`<${ExperimentPage} who=${who} experimentKey=${key} />`;
  else page = html`<${ExperimentsList} who=${who} />`;

  const nav = [
    ['experiments', 'Experiments'],
    ['routes', 'Routes'],
    ['metrics', 'Metrics'],
    ['models', 'Models'],
    ['events', 'Events'],
  ];
  return html`
    <a class="skip" href="#main" onClick=${(e) => {
      e.preventDefault();
      document.getElementById('main')?.focus();
    }}>Skip to content</a>
    <header class="top">
      <a class="brand" href=${href('experiments')}><span class="brand-mark" aria-hidden="true"></span>bunryu</a>
      <nav aria-label="Main">
        ${nav.map(([id, label]) => html`<a href=${href(id)} aria-current=${section === id ? 'page' : undefined}>${label}</a>`)}
      </nav>
      <div class="who">
        <span class="who-name">${who.name ?? 'signed in'}</span>
        <span class="badge role" data-testid="role" title="Your role">${who.role ?? 'role unknown'}</span>
        <button type="button" class="small" onClick=${signOut}>Sign out</button>
      </div>
    </header>
    <main id="main" tabindex="-1">${page}</main>
    <${Notices} />
  `;
}

render(html`<${App} />`, /** @type {HTMLElement} */ (document.getElementById('app')));
