// Which statuses each action may start from (the experiment-service enforces this with 409;
// the UI only uses it to offer the buttons that can work).
export const ALLOWED_FROM = {
  edit: ['draft', 'running', 'paused'],
  ramp: ['draft', 'running', 'paused'],
  start: ['draft', 'paused'],
  pause: ['running'],
  promote: ['running', 'paused'],
  rollback: ['running', 'paused', 'released'],
  archive: ['draft', 'paused', 'released', 'rolled_back'],
};

/** @param {keyof typeof ALLOWED_FROM} action @param {string} status */
export const allowed = (action, status) => ALLOWED_FROM[action].includes(status);

/** @param {keyof typeof ALLOWED_FROM} action */
export const allowedText = (action) => `possible when ${ALLOWED_FROM[action].join(', ').replace('_', ' ')}`;
