import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from '../lib/html.js';

/**
 * A modal confirmation (native <dialog>: focus moves in, Escape cancels, focus returns after).
 * `onConfirm` may reject; its error is shown inside the dialog, which stays open.
 * @param {{open: boolean, title: string, confirmLabel: string, danger?: boolean,
 *   onConfirm: () => Promise<void> | void, onClose: () => void, children?: any}} props
 */
export function ConfirmDialog(props) {
  const ref = useRef(/** @type {HTMLDialogElement | null} */ (null));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(/** @type {string | null} */ (null));

  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (props.open && !d.open) {
      setError(null);
      d.showModal();
    } else if (!props.open && d.open) d.close();
  }, [props.open]);

  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await props.onConfirm();
      props.onClose();
    } catch (err) {
      const e = /** @type {any} */ (err);
      setError(
        e?.status === 403
          ? `Refused (403): ${e.message}`
          : e?.status === 412
            ? 'Not done: the experiment changed since this page loaded it. Cancel, check its new state, and try again.'
            : e?.message ?? String(err),
      );
    } finally {
      setBusy(false);
    }
  };

  return html`
    <dialog ref=${ref} class="confirm" aria-labelledby="confirm-title" onClose=${props.onClose} onCancel=${(e) => busy && e.preventDefault()}>
      <h2 id="confirm-title">${props.title}</h2>
      <div class="confirm-body">${props.children}</div>
      ${error && html`<p class="field-error" role="alert">${error}</p>`}
      <div class="actions">
        <button type="button" onClick=${props.onClose} disabled=${busy}>Cancel</button>
        <button type="button" class=${props.danger ? 'danger' : 'primary'} onClick=${confirm} disabled=${busy}>${busy ? 'Working…' : props.confirmLabel}</button>
      </div>
    </dialog>
  `;
}
