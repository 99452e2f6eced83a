// Types for the tests, which import this browser module from TypeScript.
type Figures = { mean: number; variance: number; units: number };
type Point = { t: number; lift: number | null; lo: number | null; hi: number | null };
export declare function relativeLift(c: Figures, t: Figures): { lift: number | null; lo: number | null; hi: number | null };
export declare function liftSeries(ts: unknown, variantOrder: string[]): { variant: string; index: number; points: Point[] }[];
export declare function chooseInterval(startedAt: string | undefined, now: number): string | undefined;
