/** `codex`: OpenAI's Codex CLI, a preset of `command` (`codex exec {prompt}`; --exec overrides it). */
import { commandDefinition } from './command.js';

export const codexConnector = commandDefinition({ name: 'codex', title: 'Codex CLI (a preset of command)', exec: 'codex exec {prompt}' });
