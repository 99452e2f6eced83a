/**
 * The gateway as it ships: one ES module holding its code and the workspace packages, run by
 * plain node (`node gateway/dist/server.mjs`); npm packages stay external, loaded from
 * node_modules. Without tsx's loader, whose module hooks and esbuild each run on a thread of
 * their own, every gateway process is ~28 MB smaller: SPEC §7 allows a gateway 150 MB.
 * `npm run build -w gateway`; npm start, the e2e suite and the benches build it before use.
 */
import { rename, writeFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export const GATEWAY_BUNDLE = fileURLToPath(new URL('./dist/server.mjs', import.meta.url));

let counter = 0;

/** Builds the bundle and returns its path. Safe to call from several processes at once: the file is replaced by a rename. */
export async function buildGateway(): Promise<string> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL('./src/server.ts', import.meta.url))],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    write: false,
    keepNames: true,
    logLevel: 'warning',
    plugins: [
      {
        name: 'npm-packages-external',
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith('@bunryu/') ? undefined : { external: true }));
        },
      },
    ],
  });
  const code = result.outputFiles[0]!.contents;
  await mkdir(dirname(GATEWAY_BUNDLE), { recursive: true });
  const tmp = `${GATEWAY_BUNDLE}.${process.pid}.${++counter}.tmp`;
  await writeFile(tmp, code);
  await rename(tmp, GATEWAY_BUNDLE);
  return GATEWAY_BUNDLE;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.stdout.write(`built ${await buildGateway()}\n`);
