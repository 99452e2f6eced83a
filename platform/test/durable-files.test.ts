import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeFileDurably } from '../src/durable-files.ts';

describe('writeFileDurably', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bunryu-durable-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('replaces the file and leaves no temporary file behind', async () => {
    const path = join(dir, 'state.json');
    await writeFileDurably(path, '{"v":1}');
    await Promise.all([writeFileDurably(path, '{"v":2}'), writeFileDurably(path, '{"v":3}')]);
    expect(['{"v":2}', '{"v":3}']).toContain(readFileSync(path, 'utf8'));
    expect(readdirSync(dir)).toEqual(['state.json']);
  });

  it('rejects, and cleans up, when the folder does not exist', async () => {
    await expect(writeFileDurably(join(dir, 'missing', 'f.json'), 'x')).rejects.toMatchObject({ code: 'ENOENT' });
    expect(readdirSync(dir)).toEqual(['state.json']);
  });
});
