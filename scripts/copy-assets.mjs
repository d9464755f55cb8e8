// Copies non-TypeScript files the build needs next to the compiled code (Lua scripts).
import { cpSync, chmodSync } from 'node:fs';
cpSync('memory/redis/lua', 'dist/memory/redis/lua', { recursive: true });
chmodSync('dist/bin/skynet-linker.js', 0o755);
