import { appendFile, mkdir, readFile, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileExperimentStore } from '../src/store/file-experiment-store.ts';
import { tempDir } from './support/service.ts';

const actor = { role: 'admin', name: 'admin' } as const;
const route = { key: 'r', upstream: 'http://127.0.0.1:9/', path: '/', defaultParams: {}, timeoutMs: 1000, updatedAt: 'now' };
const audit = (action: string) => ({ subject: 'route:r', action, actor, at: 'now', before: null, after: null });

describe('FileExperimentStore (crash safety)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = join(await tempDir(), 'experiment-service');
  });
  afterEach(async () => {
    await rm(join(dir, '..'), { recursive: true, force: true });
  });

  it('drops audit entries of a change whose state never landed, and a torn last line', async () => {
    const store = await FileExperimentStore.open(dir);
    await store.commit({ routes: [route], audit: [audit('create')] });
    await store.close();
    // As if the process died after appending the audit of change 2 but before renaming its state.
    await appendFile(join(dir, 'audit.jsonl'), JSON.stringify({ configVersion: 2, ...audit('update') }) + '\n{"configVers');

    const reopened = await FileExperimentStore.open(dir);
    expect((await reopened.audit()).map((e) => [e.configVersion, e.action])).toEqual([[1, 'create']]);
    expect(await reopened.version()).toBe(1);
    await reopened.commit({ routes: [route], audit: [audit('update')] });
    await reopened.close();

    const lines = (await readFile(join(dir, 'audit.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { configVersion: number });
    expect(lines.map((l) => l.configVersion)).toEqual([1, 2]);
  });

  it('keeps the newest AUDIT_MAX_ENTRIES entries of the audit log and of each subject, in memory and on disk', async () => {
    const entry = (subject: string, n: number) => ({ subject, action: `a${n}`, actor, at: 'now', before: null, after: n });
    const store = await FileExperimentStore.open(dir, { auditMaxEntries: 3 });
    for (let n = 1; n <= 5; n++) await store.commit({ routes: [{ ...route, timeoutMs: n }], audit: [entry('route:r', n)] });
    await store.commit({ routes: [route], audit: [entry('holdout', 6)] });
    // The same answers as the Redis store's (redis-experiment-store.test.ts).
    const expectRetained = async (s: FileExperimentStore) => {
      expect((await s.audit()).map((e) => e.action)).toEqual(['a4', 'a5', 'a6']);
      expect((await s.audit({ subject: 'route:r' })).map((e) => [e.action, e.configVersion])).toEqual([
        ['a3', 3],
        ['a4', 4],
        ['a5', 5],
      ]);
    };
    await expectRetained(store);
    for (let n = 7; n <= 30; n++) await store.commit({ routes: [route], audit: [entry('holdout', n)] });
    await store.close();
    // The file does not grow with every change: dropped lines leave it.
    const lines = (await readFile(join(dir, 'audit.jsonl'), 'utf8')).trim().split('\n');
    expect(lines.length).toBeLessThanOrEqual(3 + 3 + 1);

    const reopened = await FileExperimentStore.open(dir, { auditMaxEntries: 3 });
    expect((await reopened.audit()).map((e) => e.action)).toEqual(['a28', 'a29', 'a30']);
    expect((await reopened.audit({ subject: 'route:r' })).map((e) => e.action)).toEqual(['a3', 'a4', 'a5']);
    await reopened.close();
  });

  it('applies nothing when the state cannot be written', async () => {
    const store = await FileExperimentStore.open(dir);
    await store.commit({ routes: [route], audit: [audit('create')] });
    const auditBefore = await readFile(join(dir, 'audit.jsonl'), 'utf8');
    // A directory where the state file should be makes the rename fail.
    await rm(join(dir, 'state.json'));
    await mkdir(join(dir, 'state.json'));

    await expect(store.commit({ routes: [{ ...route, timeoutMs: 5 }], audit: [audit('update')] })).rejects.toThrow();
    expect(await readFile(join(dir, 'audit.jsonl'), 'utf8')).toBe(auditBefore);
    expect((await store.load()).routes[0]!.timeoutMs).toBe(1000);
    expect(await store.version()).toBe(1);

    await rmdir(join(dir, 'state.json'));
    expect((await store.commit({ routes: [route], audit: [audit('update')] })).version).toBe(2);
    expect((await store.audit()).map((e) => e.configVersion)).toEqual([1, 2]);
    await store.close();
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('refuses to start over a state file it cannot read, rather than starting empty', async () => {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'state.json'), '{"format":1,"version":3,');
    await expect(FileExperimentStore.open(dir)).rejects.toThrow(/state\.json is not valid JSON/);
  });
});
