/** Writes protocol/schema.json from the zod schemas (`npm run schema`). */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildJsonSchema } from '../protocol/json-schema.js';

const target = fileURLToPath(new URL('../../protocol/schema.json', import.meta.url));
writeFileSync(target, JSON.stringify(buildJsonSchema(), null, 2) + '\n');
console.log(`wrote ${target}`);
