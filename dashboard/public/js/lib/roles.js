// SPEC §4 roles, lowest first; each may do what the roles below it may: viewer reads; editor
// creates, edits, starts and pauses, and proposes events; reviewer also approves event
// declarations (SPEC §16); releaser also ramps, promotes and rolls back; admin also
// manages routes, metrics and keys. The experiment-service is the authority (it answers 403):
// the UI disables what the role may not do so nobody is surprised by the refusal.

export const ROLES = ['viewer', 'editor', 'reviewer', 'releaser', 'admin'];

/** @typedef {'edit' | 'review' | 'release' | 'admin'} Action */
const NEEDS = { edit: 'editor', review: 'reviewer', release: 'releaser', admin: 'admin' };

/**
 * @param {string | null | undefined} role null when the service did not say: then nothing is
 *   disabled and the service's 403 is the only refusal.
 * @param {Action} action
 */
export function may(role, action) {
  if (role === null || role === undefined) return true;
  const have = ROLES.indexOf(role);
  return have >= 0 && have >= ROLES.indexOf(NEEDS[action]);
}

/** Why a control is disabled. @param {string | null | undefined} role @param {Action} action */
export function refusal(role, action) {
  const what = { edit: 'create, edit, start or pause experiments', review: 'approve event declarations', release: 'ramp, promote or roll back', admin: 'change routes and metrics' }[action];
  return `Your role (${role}) may not ${what}; it needs ${NEEDS[action]}.`;
}
