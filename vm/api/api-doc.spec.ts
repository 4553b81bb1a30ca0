import fs from 'node:fs';
import { expect, it } from 'vitest';
import { renderApiDoc } from './api-doc.ts';

it('docs/api.md matches the contract (regenerate: node bin/run-ts.js vm/api/api-doc.ts --write)', () => {
  expect(fs.readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8')).toBe(renderApiDoc());
});
