// The dashboard's server generates rollout-defaults.js from core's defaultRolloutPlan (see
// dashboard/src/assets/static-assets.ts); its type comes from the same place.
import type { RolloutPlan } from '../../../../core/src/schemas.ts';

export declare const DEFAULT_ROLLOUT: RolloutPlan;
