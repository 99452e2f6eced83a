// Which statuses each action may start from: the table core defines and the experiment-service
// enforces with 409, served by the dashboard's server. The UI only uses it to offer the buttons
// that can work.
import { ALLOWED_FROM } from './lifecycle-table.js';

export { ALLOWED_FROM };

/** @param {keyof typeof ALLOWED_FROM} action @param {string} status */
export const allowed = (action, status) => ALLOWED_FROM[action].some((s) => s === status);

/** @param {keyof typeof ALLOWED_FROM} action */
export const allowedText = (action) => `possible when ${ALLOWED_FROM[action].join(', ').replace('_', ' ')}`;
