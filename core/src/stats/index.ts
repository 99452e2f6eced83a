export * from './distributions.ts';
export * from './comparisons.ts';
export * from './srm.ts';
export * from './sequential.ts';
export * from './cuped.ts';
export * from './corrections.ts';
export * from './sign-test.ts';
