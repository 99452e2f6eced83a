import { useRef } from 'preact/hooks';
import { html } from '../lib/html.js';

/**
 * WAI-ARIA tabs: arrow keys, Home and End move between tabs; only the selected one is in the
 * tab order.
 * @param {{id: string, tabs: [string, string][], selected: string, onSelect: (id: string) => void, children: any}} props
 */
export function Tabs({ id, tabs, selected, onSelect, children }) {
  const list = useRef(/** @type {HTMLDivElement | null} */ (null));
  const onKey = (e) => {
    const i = tabs.findIndex(([t]) => t === selected);
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
    if (next === undefined) return;
    e.preventDefault();
    const [t] = tabs[(next + tabs.length) % tabs.length];
    onSelect(t);
    queueMicrotask(() => /** @type {HTMLElement | null | undefined} */ (list.current?.querySelector(`#${id}-tab-${t}`))?.focus());
  };
  return html`
    <div class="tabs" role="tablist" aria-label="Experiment sections" ref=${list} onKeyDown=${onKey}>
      ${tabs.map(
        ([t, label]) => html`<button type="button" role="tab" id=${`${id}-tab-${t}`} aria-selected=${t === selected ? 'true' : 'false'}
          aria-controls=${`${id}-panel`} tabindex=${t === selected ? 0 : -1} onClick=${() => onSelect(t)}>${label}</button>`,
      )}
    </div>
    <div role="tabpanel" id=${`${id}-panel`} aria-labelledby=${`${id}-tab-${selected}`} tabindex="0" class="tabpanel">${children}</div>
  `;
}
