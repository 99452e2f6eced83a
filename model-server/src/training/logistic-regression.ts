/**
 * Logistic regression fitted by iteratively reweighted least squares (Newton's method on the
 * log-likelihood). With a handful of features each step is one pass over the rows plus a tiny
 * linear solve, and it converges in under ten steps, so training takes well under a second.
 */

export interface LogisticModel {
  /** In the units of the raw features (standardisation folded in). */
  weights: number[];
  bias: number;
}

export interface FitOptions {
  maxIterations?: number;
  /** Stop once no standardised coefficient moves by more than this. */
  tolerance?: number;
  /** L2 penalty on the standardised weights (not the intercept), keeps the solve well posed. */
  l2?: number;
  onIteration?: (info: { iteration: number; logLoss: number; step: number }) => void;
}

export interface FitResult extends LogisticModel {
  iterations: number;
  converged: boolean;
}

export const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));

export function predictLogistic(model: LogisticModel, x: ArrayLike<number>): number {
  let z = model.bias;
  for (let j = 0; j < model.weights.length; j++) z += model.weights[j]! * x[j]!;
  return sigmoid(z);
}

/** Fits on `rows` (each a vector in feature order) and binary `labels`. Deterministic. */
export function fitLogisticRegression(rows: ArrayLike<number>[], labels: ArrayLike<number>, opts: FitOptions = {}): FitResult {
  const n = rows.length;
  const d = rows[0]?.length ?? 0;
  const maxIterations = opts.maxIterations ?? 25;
  const tolerance = opts.tolerance ?? 1e-9;
  const l2 = opts.l2 ?? 1e-6 * n;

  // Standardise so one Newton step size suits every feature scale (price ~ 20, popularity ~ 0.5).
  const mean = new Float64Array(d);
  const sd = new Float64Array(d);
  for (const r of rows) for (let j = 0; j < d; j++) mean[j]! += r[j]! / n;
  for (const r of rows) for (let j = 0; j < d; j++) sd[j]! += (r[j]! - mean[j]!) ** 2 / n;
  for (let j = 0; j < d; j++) sd[j] = Math.sqrt(sd[j]!) || 1;
  const p = d + 1; // intercept first
  const z = rows.map((r) => {
    const v = new Float64Array(p);
    v[0] = 1;
    for (let j = 0; j < d; j++) v[j + 1] = (r[j]! - mean[j]!) / sd[j]!;
    return v;
  });

  const beta = new Float64Array(p);
  let iterations = 0;
  let converged = false;
  while (iterations < maxIterations && !converged) {
    iterations++;
    const gradient = new Float64Array(p);
    const hessian = Array.from({ length: p }, () => new Float64Array(p));
    let loss = 0;
    for (let i = 0; i < n; i++) {
      const v = z[i]!;
      let eta = 0;
      for (let k = 0; k < p; k++) eta += beta[k]! * v[k]!;
      const mu = sigmoid(eta);
      const y = labels[i]!;
      loss -= y === 1 ? Math.log(Math.max(mu, 1e-300)) : Math.log(Math.max(1 - mu, 1e-300));
      const w = mu * (1 - mu);
      const residual = y - mu;
      for (let a = 0; a < p; a++) {
        gradient[a]! += residual * v[a]!;
        const wa = w * v[a]!;
        for (let b = 0; b <= a; b++) hessian[a]![b]! += wa * v[b]!;
      }
    }
    for (let a = 0; a < p; a++) for (let b = 0; b < a; b++) hessian[b]![a] = hessian[a]![b]!;
    for (let a = 1; a < p; a++) {
      gradient[a]! -= l2 * beta[a]!;
      hessian[a]![a]! += l2;
    }
    const delta = solve(hessian, gradient);
    let step = 0;
    for (let k = 0; k < p; k++) {
      beta[k]! += delta[k]!;
      step = Math.max(step, Math.abs(delta[k]!));
    }
    opts.onIteration?.({ iteration: iterations, logLoss: loss / n, step });
    converged = step < tolerance;
  }

  const weights = Array.from({ length: d }, (_, j) => beta[j + 1]! / sd[j]!);
  let bias = beta[0]!;
  for (let j = 0; j < d; j++) bias -= (beta[j + 1]! * mean[j]!) / sd[j]!;
  return { weights, bias, iterations, converged };
}

/** Solves A x = b (A symmetric positive definite here) by Gaussian elimination with pivoting. */
function solve(a: Float64Array[], b: Float64Array): Float64Array {
  const n = b.length;
  const m = a.map((row, i) => {
    const r = new Float64Array(n + 1);
    r.set(row);
    r[n] = b[i]!;
    return r;
  });
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r]![col]!) > Math.abs(m[pivot]![col]!)) pivot = r;
    [m[col], m[pivot]] = [m[pivot]!, m[col]!];
    const pv = m[col]![col]!;
    if (Math.abs(pv) < 1e-300) throw new Error('singular system: a feature is constant or duplicated');
    for (let r = col + 1; r < n; r++) {
      const f = m[r]![col]! / pv;
      if (f === 0) continue;
      for (let c = col; c <= n; c++) m[r]![c]! -= f * m[col]![c]!;
    }
  }
  const x = new Float64Array(n);
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r]![n]!;
    for (let c = r + 1; c < n; c++) s -= m[r]![c]! * x[c]!;
    x[r] = s / m[r]![r]!;
  }
  return x;
}
