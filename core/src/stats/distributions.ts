/**
 * Special functions and distributions for the statistics (SPEC §6), in plain double precision.
 *
 * Tails are always computed directly (erfc, the incomplete beta and gamma functions), never as
 * `1 - cdf`: p-values of 1e-70 and below occur in real experiments and in the reference vectors.
 * Accuracy is about 1e-13 relative over the ranges the analysis uses.
 */

const SQRT2 = Math.SQRT2;
const LN_SQRT_2PI = 0.9189385332046727; // ln(sqrt(2π))
const SQRT_2PI = 2.5066282746310002;
const EPS = 1e-16;
const TINY = 1e-300;

// ---------------------------------------------------------------- error function

// W. J. Cody, "Rational Chebyshev approximations for the error function", Math. Comp. 23 (1969),
// the coefficient sets of SPECFUN's CALERF: erf on [0, 0.46875], erfc·exp(x²) on [0.46875, 4]
// and beyond 4; relative accuracy near machine precision.
const A = [3.1611237438705656, 113.864154151050156, 377.485237685302021, 3209.37758913846947, 0.185777706184603153];
const B = [23.6012909523441209, 244.024637934444173, 1282.61652607737228, 2844.23683343917062];
const C = [
  0.564188496988670089, 8.88314979438837594, 66.1191906371416295, 298.635138197400131, 881.95222124176909, 1712.04761263407058,
  2051.07837782607147, 1230.33935479799725, 2.15311535474403846e-8,
];
const D = [
  15.7449261107098347, 117.693950891312499, 537.181101862009858, 1621.38957456669019, 3290.79923573345963, 4362.61909014324716,
  3439.36767414372164, 1230.33935480374942,
];
const P = [0.305326634961232344, 0.360344899949804439, 0.125781726111229246, 0.0160837851487422766, 6.58749161529837803e-4, 0.0163153871373020978];
const Q = [2.56852019228982242, 1.87295284992346047, 0.527905102951428412, 0.0605183413124413191, 0.00233520497626869185];
const ONE_OVER_SQRT_PI = 0.56418958354775628695;
const ERFC_UNDERFLOW = 26.543;

/** erf(x) for |x| <= 0.46875. */
function erfSmall(x: number): number {
  const z = Math.abs(x) > 1.11e-16 ? x * x : 0;
  let num = A[4]! * z;
  let den = z;
  for (let i = 0; i < 3; i++) {
    num = (num + A[i]!) * z;
    den = (den + B[i]!) * z;
  }
  return (x * (num + A[3]!)) / (den + B[3]!);
}

/** exp(-y²) without the rounding error of squaring y (Cody's split at 1/16). */
function expMinusSquare(y: number): number {
  const ysq = Math.trunc(16 * y) / 16;
  const del = (y - ysq) * (y + ysq);
  return Math.exp(-ysq * ysq) * Math.exp(-del);
}

/** erfc(y) for y > 0.46875. */
function erfcPositive(y: number): number {
  if (y <= 4) {
    let num = C[8]! * y;
    let den = y;
    for (let i = 0; i < 7; i++) {
      num = (num + C[i]!) * y;
      den = (den + D[i]!) * y;
    }
    return expMinusSquare(y) * ((num + C[7]!) / (den + D[7]!));
  }
  if (y >= ERFC_UNDERFLOW) return 0;
  const z = 1 / (y * y);
  let num = P[5]! * z;
  let den = z;
  for (let i = 0; i < 4; i++) {
    num = (num + P[i]!) * z;
    den = (den + Q[i]!) * z;
  }
  const r = (z * (num + P[4]!)) / (den + Q[4]!);
  return expMinusSquare(y) * ((ONE_OVER_SQRT_PI - r) / y);
}

export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const y = Math.abs(x);
  if (y <= 0.46875) return erfSmall(x);
  const r = 1 - erfcPositive(y);
  return x < 0 ? -r : r;
}

/** The complementary error function, with full relative accuracy in the upper tail. */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const y = Math.abs(x);
  if (y <= 0.46875) return 1 - erfSmall(x);
  const r = erfcPositive(y);
  return x < 0 ? 2 - r : r;
}

// ---------------------------------------------------------------- normal distribution

export function normalPdf(z: number): number {
  return Math.exp(-0.5 * z * z) / SQRT_2PI;
}

/** Φ(z), accurate in the lower tail (Φ(-37) ≈ 6e-300 keeps its digits). */
export function normalCdf(z: number): number {
  return 0.5 * erfc(-z / SQRT2);
}

/** 1 − Φ(z), accurate in the upper tail. */
export function normalSf(z: number): number {
  return 0.5 * erfc(z / SQRT2);
}

// P. J. Acklam's rational approximation (relative error 1.15e-9), refined below.
const QA = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
const QB = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
const QC = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
const QD = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];

function acklamLower(p: number): number {
  if (p < 0.02425) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (
      (((((QC[0]! * q + QC[1]!) * q + QC[2]!) * q + QC[3]!) * q + QC[4]!) * q + QC[5]!) /
      ((((QD[0]! * q + QD[1]!) * q + QD[2]!) * q + QD[3]!) * q + 1)
    );
  }
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((QA[0]! * r + QA[1]!) * r + QA[2]!) * r + QA[3]!) * r + QA[4]!) * r + QA[5]!) * q) /
    (((((QB[0]! * r + QB[1]!) * r + QB[2]!) * r + QB[3]!) * r + QB[4]!) * r + 1)
  );
}

/** Φ⁻¹(p): Acklam's approximation polished by Halley steps on the exact cdf (≈ 1e-15 relative). */
export function normalQuantile(p: number): number {
  if (Number.isNaN(p) || p < 0 || p > 1) return NaN;
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  // Work in the lower tail, where Φ keeps its relative accuracy; 1 - p is exact for p >= 0.5.
  if (p > 0.5) return -normalQuantile(1 - p);
  let x = acklamLower(p);
  for (let i = 0; i < 2; i++) {
    const e = normalCdf(x) - p;
    const u = (e * SQRT_2PI) * Math.exp(0.5 * x * x);
    x = x - u / (1 + 0.5 * x * u);
  }
  return x;
}

// ---------------------------------------------------------------- gamma and beta functions

/** Stirling's series remainder: ln Γ(x) − [(x − ½) ln x − x + ln √(2π)], for x >= 10. */
function stirlingCorrection(x: number): number {
  const z = 1 / (x * x);
  return (
    (1 / 12 + z * (-1 / 360 + z * (1 / 1260 + z * (-1 / 1680 + z * (1 / 1188 + z * (-691 / 360360 + z * (1 / 156))))))) / x
  );
}

/** ln Γ(x) for x > 0. */
export function logGamma(x: number): number {
  if (!(x > 0)) return x === 0 ? Infinity : NaN;
  if (x === Infinity) return Infinity;
  let shift = 0;
  let prod = 1;
  let y = x;
  while (y < 10) {
    prod *= y;
    y += 1;
    // Keep the product finite for tiny x.
    if (prod > 1e280) {
      shift += Math.log(prod);
      prod = 1;
    }
  }
  return (y - 0.5) * Math.log(y) - y + LN_SQRT_2PI + stirlingCorrection(y) - shift - Math.log(prod);
}

/**
 * ln B(a, b). For large arguments the Stirling terms are combined analytically so that
 * ln Γ(a) − ln Γ(a + b) does not cancel (a Student t with 300,000 degrees of freedom needs it).
 */
export function logBeta(a: number, b: number): number {
  if (!(a > 0 && b > 0)) return NaN;
  const p = Math.min(a, b);
  const q = Math.max(a, b);
  if (p >= 10) {
    return (
      LN_SQRT_2PI -
      0.5 * Math.log(q) +
      (p - 0.5) * Math.log(p / (p + q)) -
      q * Math.log1p(p / q) +
      stirlingCorrection(p) +
      stirlingCorrection(q) -
      stirlingCorrection(p + q)
    );
  }
  if (q >= 10) {
    // ln Γ(q) − ln Γ(p + q), from the two Stirling expansions.
    const diff = -(q - 0.5) * Math.log1p(p / q) - p * Math.log(p + q) + p + stirlingCorrection(q) - stirlingCorrection(p + q);
    return logGamma(p) + diff;
  }
  return logGamma(p) + logGamma(q) - logGamma(p + q);
}

const MAX_ITERATIONS = 100_000;

/** The continued fraction of I_x(a, b) (modified Lentz), valid for x < (a + 1) / (a + b + 2). */
function betaContinuedFraction(x: number, a: number, b: number): number {
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < TINY) d = TINY;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= MAX_ITERATIONS; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < EPS) return h;
  }
  return h;
}

const FACTORIALS: number[] = [1];
for (let i = 1; i <= 80; i++) FACTORIALS.push(FACTORIALS[i - 1]! * i);

/**
 * I_x(a, b) for a >= 15, b <= 1, x > 0.7: DiDonato & Morris's BGRAT (ACM TOMS 708, 1992, eq. 9–9.6),
 * I_x(a,b) = Γ(a+b)/(Γ(a) T^b) · Σ p_n J_n(b, u) with T = a + (b − 1)/2 and u = −T ln x, whose
 * leading term is the gamma tail Q(b, u).
 */
function largeAsmallB(a: number, b: number, x: number, y: number): number {
  const bm1 = b - 1;
  const t = a + bm1 / 2;
  const lx = y < 0.35 ? Math.log1p(-y) : Math.log(x);
  const u = -t * lx;
  // Γ(a + b) / (Γ(a) T^b), from the cancellation-free ln B.
  const ratio = Math.exp(logGamma(b) - logBeta(a, b) - b * Math.log(t));
  const q = regularizedGammaQ(b, u);
  // h = u^b e^{−u} / Γ(b): the J_n recursion works in units of it.
  const h = Math.exp(b * Math.log(u) - u - logGamma(b));
  if (h === 0) return ratio * q;
  const prefix = h * ratio;
  const p: number[] = [1];
  let j = q / h;
  let sum = prefix * j;
  const lx2 = (lx / 2) * (lx / 2);
  let lxp = 1;
  const t4 = 4 * t * t;
  let b2n = b;
  for (let n = 1; n < 30; n++) {
    let pn = 0;
    for (let m = 1; m < n; m++) pn += ((m * b - n) * p[n - m]!) / FACTORIALS[2 * m + 1]!;
    pn = pn / n + bm1 / FACTORIALS[2 * n + 1]!;
    p.push(pn);
    j = (b2n * (b2n + 1) * j + (u + b2n + 1) * lxp) / t4;
    lxp *= lx2;
    b2n += 2;
    const r = prefix * pn * j;
    sum += r;
    if (Math.abs(r) <= Math.abs(sum) * EPS) break;
  }
  return sum;
}

/**
 * The regularized incomplete beta function I_x(a, b). `y` is 1 − x when the caller knows it more
 * precisely than `1 - x` would give it (the Student t passes t²/(ν + t²)).
 */
export function regularizedBeta(x: number, a: number, b: number, y: number = 1 - x): number {
  if (Number.isNaN(x) || !(a > 0 && b > 0) || x < 0 || x > 1) return NaN;
  if (x === 0) return 0;
  if (y === 0) return 1;
  const lnx = x < 0.5 ? Math.log(x) : Math.log1p(-y);
  const lny = y < 0.5 ? Math.log(y) : Math.log1p(-x);
  const front = (swap: boolean) =>
    swap ? Math.exp(b * lny + a * lnx - logBeta(a, b) - Math.log(b)) : Math.exp(a * lnx + b * lny - logBeta(a, b) - Math.log(a));
  // Large a with small b and x near 1 (a Student t with many degrees of freedom): the continued
  // fraction cancels there, so use the asymptotic expansion in incomplete gamma functions.
  if (a >= 15 && b <= 1 && y < 0.3) return probability(largeAsmallB(a, b, x, y));
  // Use the fraction where it converges fast, the symmetry I_x(a,b) = 1 − I_{1−x}(b,a) elsewhere.
  if (x * (a + b + 2) < a + 1) return probability(front(false) * betaContinuedFraction(x, a, b));
  return probability(1 - front(true) * betaContinuedFraction(y, b, a));
}

/** Rounding can carry a value an ulp or so past [0, 1]; a probability (a p-value shown to analysts) never is. */
function probability(p: number): number {
  return p > 1 ? 1 : p < 0 ? 0 : p;
}

/** The regularized upper incomplete gamma function Q(a, x) = Γ(a, x) / Γ(a). */
export function regularizedGammaQ(a: number, x: number): number {
  if (Number.isNaN(x) || !(a > 0) || x < 0) return NaN;
  if (x === 0) return 1;
  if (x === Infinity) return 0;
  const logFront = -x + a * Math.log(x) - logGamma(a);
  if (x < a + 1) {
    // Series for P(a, x); Q = 1 − P is not small here, so the subtraction is harmless.
    let ap = a;
    let del = 1 / a;
    let sum = del;
    for (let n = 0; n < MAX_ITERATIONS; n++) {
      ap += 1;
      del *= x / ap;
      sum += del;
      if (Math.abs(del) < Math.abs(sum) * EPS) break;
    }
    return 1 - sum * Math.exp(logFront);
  }
  // Continued fraction for Q (modified Lentz).
  let b = x + 1 - a;
  let c = 1 / TINY;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i <= MAX_ITERATIONS; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < TINY) d = TINY;
    c = b + an / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < EPS) break;
  }
  return Math.exp(logFront) * h;
}

// ---------------------------------------------------------------- Student t and chi-square

export function studentTPdf(t: number, df: number): number {
  if (df === Infinity) return normalPdf(t);
  return Math.exp(-((df + 1) / 2) * Math.log1p((t * t) / df) - 0.5 * Math.log(df) - logBeta(df / 2, 0.5));
}

/** P(T > t) for Student's t with `df` degrees of freedom, accurate in the upper tail. */
export function studentTSf(t: number, df: number): number {
  if (Number.isNaN(t) || !(df > 0)) return NaN;
  if (df === Infinity) return normalSf(t);
  const t2 = t * t;
  // I_{ν/(ν+t²)}(ν/2, ½) is the two-sided tail P(|T| > |t|).
  const twoSided = regularizedBeta(df / (df + t2), df / 2, 0.5, t2 / (df + t2));
  return t >= 0 ? twoSided / 2 : 1 - twoSided / 2;
}

export function studentTCdf(t: number, df: number): number {
  return studentTSf(-t, df);
}

/** The two-sided p-value P(|T| >= |t|). */
export function studentTTwoSided(t: number, df: number): number {
  if (Number.isNaN(t) || !(df > 0)) return NaN;
  if (df === Infinity) return erfc(Math.abs(t) / SQRT2);
  const t2 = t * t;
  return regularizedBeta(df / (df + t2), df / 2, 0.5, t2 / (df + t2));
}

/** The t quantile: safeguarded Newton on the tail probability, started from a Cornish–Fisher guess. */
export function studentTQuantile(p: number, df: number): number {
  if (Number.isNaN(p) || p < 0 || p > 1 || !(df > 0)) return NaN;
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  if (df === Infinity) return normalQuantile(p);
  if (p > 0.5) return -studentTQuantile(1 - p, df);
  if (p === 0.5) return 0;
  if (df === 1) return -1 / Math.tan(Math.PI * p);
  if (df === 2) return (2 * p - 1) / Math.sqrt(2 * p * (1 - p));
  // Solve P(T < t) = p for t < 0, i.e. P(T > −t) = p.
  const z = normalQuantile(p);
  const z3 = z * z * z;
  let t = z + (z3 + z) / (4 * df) + (5 * z3 * z * z + 16 * z3 + 3 * z) / (96 * df * df);
  let lo = -Infinity;
  let hi = 0;
  for (let i = 0; i < 200; i++) {
    const f = studentTCdf(t, df) - p;
    if (f > 0) hi = Math.min(hi, t);
    else lo = Math.max(lo, t);
    const step = f / studentTPdf(t, df);
    let next = t - step;
    if (!(next > lo && next < hi)) next = lo === -Infinity ? 2 * Math.min(t, -1) : (lo + hi) / 2;
    if (Math.abs(next - t) <= 1e-15 * Math.abs(next)) return next;
    t = next;
  }
  return t;
}

/** P(X > x) for a chi-square with `df` degrees of freedom. */
export function chiSquareSf(x: number, df: number): number {
  if (Number.isNaN(x) || !(df > 0)) return NaN;
  if (x <= 0) return 1;
  return regularizedGammaQ(df / 2, x / 2);
}
