/** `claude-cli`: Claude Code's CLI in print mode, a preset of `command` (`claude -p {prompt}`). */
import { commandDefinition } from './command.js';

export const claudeCliConnector = commandDefinition({ name: 'claude-cli', title: 'Claude Code CLI (a preset of command)', exec: 'claude -p {prompt}' });
