/** docs/authorization.md's authorization table is the policy module's, row for row. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AUTHORIZATION } from '../../procedures/policy.js';

describe('the documented authorization model', () => {
  it('docs/authorization.md shows exactly procedures/policy.ts AUTHORIZATION', () => {
    const doc = readFileSync(new URL('../../docs/authorization.md', import.meta.url), 'utf8');
    const table = doc.slice(doc.indexOf('<!-- authorization-table:start -->'), doc.indexOf('<!-- authorization-table:end -->'));
    // Cells compared trimmed: a formatter may pad the columns.
    const rows = table
      .split('\n')
      .filter((line) => line.startsWith('|') && !/^\|\s*resource\s*\|/.test(line) && !/^\|\s*-+/.test(line))
      .map((line) =>
        line
          .split('|')
          .slice(1, -1)
          .map((cell) => cell.trim()),
      );
    expect(rows).toEqual(AUTHORIZATION.map((r) => [r.resource, r.read, r.write, r.members]));
  });
});
