// Types for the tests, which import this browser module from TypeScript.
type V = { key: string; weight: number };
export declare const BUCKETS: number;
export declare function variantRanges(variants: V[]): { key: string; start: number; end: number }[];
export declare function rampMoves(before: V[], after: V[]): { from: string; to: string; start: number; end: number }[];
export declare function rangeText(r: { start: number; end: number }): string;
export declare function bucketShare(n: number): string;
