// Types for the tests, which import this browser module from TypeScript.
export declare const TOTAL: number;
export declare function toHundredths(percent: number): number;
export declare function toPercent(h: number): number;
export declare function sum(hs: number[]): number;
export declare function evenSplit(n: number): number[];
export declare function rebalance(hs: number[], index: number, value: number): number[];
export declare function parseWeight(text: string): number | null;
export declare function formatWeight(h: number): string;
