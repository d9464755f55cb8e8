/** `gemini-cli`: Google's Gemini CLI in non-interactive mode, a preset of `command` (`gemini -p {prompt}`). */
import { commandDefinition } from './command.js';

export const geminiCliConnector = commandDefinition({ name: 'gemini-cli', title: 'Gemini CLI (a preset of command)', exec: 'gemini -p {prompt}' });
