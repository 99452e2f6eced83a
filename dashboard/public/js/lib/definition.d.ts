// Types for the tests, which import this browser module from TypeScript.
/* eslint-disable @typescript-eslint/no-explicit-any -- form state is plain data shaped by the UI */
export declare const TARGETING_OPS: [string, string][];
export declare function parseScalar(text: string): string | number | boolean;
export declare function parseList(text: string): (string | number | boolean)[];
export declare function emptyForm(metricKeys?: string[]): any;
export declare function formFromExperiment(e: any): any;
export declare function parseParams(text: string): { value?: Record<string, unknown>; error?: string };
export declare function toDefinition(form: any): { definition: any; errors: Record<string, string> };
export declare function fieldFor(path: string, fields: Set<string>): string | null;
export declare function fieldId(path: string): string;
